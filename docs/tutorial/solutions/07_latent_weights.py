"""Solutions of chapter 7's exercises (docs/tutorial/exercises/07_latent_weights.py)."""

import numpy as np


def bop_step(weight, momentum, grad, gamma, tau):
    m = momentum + gamma * (grad - momentum)
    return np.where(weight * m > tau, -weight, weight), m


def steps_to_flip(weight, grad, learning_rate, max_steps=10_000):
    start, w = weight >= 0, weight
    for step in range(1, max_steps + 1):
        w = min(1.0, max(-1.0, w - learning_rate * grad))
        if (w >= 0) != start:
            return step
    return None


def cancelled_share(inputs, grad_cancel=1.0):
    return float(np.mean(np.abs(inputs) > grad_cancel))
