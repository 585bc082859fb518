"""The training loop: epochs of mini-batch gradient descent, evaluation, checkpoints.

One epoch: shuffle the training set with the run's generator, and for each
batch compute the logits, the mean softmax cross-entropy, its gradient
(``loss.backward()``) and one optimizer step. After each epoch the model is
evaluated on the test set in evaluation mode (BatchNorm with running
statistics) and a checkpoint is written atomically, holding the weights, the
optimizer's state, the epoch counter and the generator's state: resuming from
it continues exactly as if the run had not stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .autograd import Tensor, no_grad, softmax_cross_entropy
from .data import iterate_batches
from .diagnostics import diagnostics_line
from .errors import NotANumberError, TrainingError
from .interrupt import Interrupted
from .layers import Module
from .optim import Optimizer
from .progress import Progress
from .workspace import Workspace


@dataclass
class EpochResult:
    """What one epoch measured."""

    epoch: int
    loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    images_per_second: float
    lr: float

    def line(self, epochs: int) -> str:
        return (
            f"epoch {self.epoch:>3}/{epochs}  lr {self.lr:.2e}  loss {self.loss:.4f}  "
            f"train accuracy {self.train_accuracy:.4f}  test accuracy {self.test_accuracy:.4f}  "
            f"{self.seconds:6.1f} s  {self.images_per_second:7.0f} images/s"
        )


@dataclass
class TrainState:
    """Everything a resumed run needs besides the weights and the optimizer's arrays."""

    epoch: int = 0  # epochs completed
    rng_state: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def evaluate(
    model: Module,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 500,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` in evaluation mode; restores the previous mode.

    ``should_stop()`` is asked before every batch; True raises :class:`Interrupted`."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    with no_grad():
        for x, y in iterate_batches(images, labels, batch_size, shuffle=False):
            _stop_if_asked(should_stop)
            logits = model(Tensor(x))
            total_loss += softmax_cross_entropy(logits, y).item() * len(y)
            correct += int((logits.data.argmax(axis=1) == y).sum())
    model.train(was_training)
    return total_loss / len(images), correct / len(images)


def _stop_if_asked(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Interrupted()


def _diverged(what: str) -> TrainingError:
    return TrainingError(f"the {what}: lower the learning rate (--lr); the last checkpoint is kept")


def predict_logits(model: Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits of ``model`` in evaluation mode for a stack of images."""
    model.eval()
    with no_grad():
        return np.concatenate(
            [model(Tensor(images[i : i + batch_size])).data for i in range(0, len(images), batch_size)]
        )


def train_epoch(
    model: Module,
    optimizer: Optimizer,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[float, float]:
    """One pass over the shuffled training set; returns (mean loss, train accuracy).

    A loss that is not finite, or a forward pass that meets NaN where a sign
    is taken (``NotANumberError``), raises ``TrainingError``: the run has
    diverged. ``should_stop()`` is asked before every batch; True raises
    :class:`Interrupted`. ``on_batch(images done)`` is called after every step.

    Each step's scratch arrays (outputs, saved tensors, gradients flowing back)
    come from one workspace that the step owns and the next step reuses; what
    outlives a step (parameters, their gradients, the optimizer's state,
    running statistics) is allocated outside it."""
    model.train()
    total_loss, correct = 0.0, 0
    memory = Workspace("training step")
    for step, (x, y) in enumerate(iterate_batches(images, labels, batch_size, shuffle=True, rng=rng)):
        _stop_if_asked(should_stop)
        with memory.use():
            try:
                logits = model(Tensor(x))
            except NotANumberError:
                raise _diverged(f"loss became nan at batch {step + 1} (NaN reached a sign)") from None
            loss = softmax_cross_entropy(logits, y)
            value = loss.item()
            if not math.isfinite(value):
                raise _diverged(f"loss became {value} at batch {step + 1}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += value * len(y)
            correct += int((logits.data.argmax(axis=1) == y).sum())
        if on_batch is not None:
            on_batch(step * batch_size + len(y))
    return total_loss / len(images), correct / len(images)


def fit(
    model: Module,
    optimizer: Optimizer,
    schedule: Any,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    state: TrainState | None = None,
    log: Callable[[str], None] = print,
    on_epoch_end: Callable[[TrainState], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
    diagnostics: Any = None,
) -> TrainState:
    """Train from ``state.epoch`` up to ``epochs``, logging one line per epoch.

    ``on_epoch_end(state)`` runs after each epoch with the generator's state
    recorded (the command line writes the checkpoint there), but only if the
    epoch ended with finite weights and a finite test loss: a diverged epoch
    raises ``TrainingError`` instead, so the last checkpoint stays the last
    good one (NumPy's overflow and invalid-value warnings are silenced
    while it trains: they would only announce that error). ``should_stop()``
    is asked before every batch (training and evaluation); True raises
    :class:`tinybnn.interrupt.Interrupted` with the state as the last
    finished epoch left it. ``progress`` shows how far each epoch has got (on a terminal).
    ``diagnostics``: an attached
    :class:`tinybnn.diagnostics.BinaryDiagnostics`, whose epoch entries go
    into the history (``"diagnostics"``) and into a second log line.
    """
    state = state if state is not None else TrainState()
    images, labels = train
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is caught below
        for epoch in range(state.epoch, epochs):
            optimizer.lr = schedule.lr_at(epoch)
            start = time.perf_counter()
            if progress is not None:
                progress.start(len(images), f"epoch {epoch + 1}/{epochs}")
            try:
                loss, train_accuracy = train_epoch(
                    model,
                    optimizer,
                    images,
                    labels,
                    batch_size,
                    rng,
                    should_stop,
                    None if progress is None else progress.update,
                )
            finally:
                if progress is not None:
                    progress.finish()
            seconds = time.perf_counter() - start
            entries = diagnostics.end_epoch() if diagnostics is not None else None
            if not all(np.isfinite(p.data).all() for p in model.parameters()):
                raise _diverged(f"weights became nan or infinite in epoch {epoch + 1}")
            try:
                test_loss, test_accuracy = evaluate(model, *test, should_stop=should_stop)
            except NotANumberError:
                test_loss, test_accuracy = math.nan, 0.0
            if not math.isfinite(test_loss):
                raise _diverged(f"test loss became {test_loss} after epoch {epoch + 1}")
            result = EpochResult(
                epoch + 1, loss, train_accuracy, test_loss, test_accuracy, seconds, len(images) / seconds, optimizer.lr
            )
            log(result.line(epochs))
            if entries is not None:
                log(diagnostics_line(entries))
            state.epoch = epoch + 1
            state.rng_state = dict(rng.bit_generator.state)
            state.history.append(asdict(result) if entries is None else {**asdict(result), "diagnostics": entries})
            if on_epoch_end is not None:
                on_epoch_end(state)
    return state


def checkpoint_path(out: Path) -> Path:
    """Where a run writing ``out`` keeps its checkpoint: ``model.npz`` -> ``model.ckpt.npz``."""
    return out.with_name(out.stem + ".ckpt" + out.suffix)


def model_path_of(checkpoint: Path) -> Path | None:
    """The model a checkpoint belongs to, undoing :func:`checkpoint_path`: ``run.ckpt.npz`` -> ``run.npz``.

    None for a name :func:`checkpoint_path` does not make (``backup.npz``)."""
    if checkpoint.suffix == ".ckpt" and checkpoint.stem:  # checkpoint_path(Path("model")) = "model.ckpt"
        return checkpoint.with_name(checkpoint.stem)
    stem = Path(checkpoint.stem)
    if stem.suffix == ".ckpt" and stem.stem:
        return checkpoint.with_name(stem.stem + checkpoint.suffix)
    return None
