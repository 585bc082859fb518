"""A training run as the ``tinybnn train`` command describes it.

:class:`RunSettings` are the choices that define a run (model, data, epochs,
optimizer, schedule, seed, ...); they are stored in every checkpoint, so
``--resume`` continues with exactly the same ones. :func:`run` loads the data,
builds the model and the optimizer, restores a checkpoint if given, trains
with :func:`tinybnn.training.fit` writing a checkpoint after every epoch,
and saves the final model with the settings and the per-epoch history in
its metadata.
"""

from __future__ import annotations

import contextlib
import math
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .checkpoint import Checkpoint, save_checkpoint
from .data import load_dataset, to_float_nchw
from .diagnostics import BinaryDiagnostics
from .errors import ArgumentError, ModelFileError
from .interrupt import Interrupted, StopRequest
from .models import build_model
from .outputs import check_output
from .optim import OPTIMIZERS, Adam, Optimizer, make_schedule
from .optim_bop import DEFAULT_GAMMA, DEFAULT_TAU, bop_with, check_bop_settings
from .serialization import save_model
from .progress import Progress
from .training import TrainState, checkpoint_path, fit, model_path_of


@dataclass
class RunSettings:
    """Everything that decides a run's numbers (the data folder and output path do not)."""

    model: str = "binary-lenet"
    act_bit: int = 1
    weight_bit: int = 1
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    bop_gamma: float = DEFAULT_GAMMA
    bop_tau: float = DEFAULT_TAU
    diagnostics: bool = False  # record tinybnn.diagnostics per epoch (the numbers stay the same)

    def check(self) -> None:
        for name in ("epochs", "batch_size", "train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ArgumentError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.optimizer not in (*OPTIMIZERS, "bop"):
            raise ArgumentError(f"--optimizer must be one of {sorted((*OPTIMIZERS, 'bop'))}, got {self.optimizer!r}")
        check_bop_settings(self.bop_gamma, self.bop_tau, where="--bop-gamma/--bop-tau")
        if self.optimizer == "bop" and (not self.model.startswith("binary-") or self.weight_bit != 1):
            raise ArgumentError(
                "--optimizer bop trains 1-bit weights: it needs a binary model with "
                f"--weight-bit 1 (got --model {self.model} --weight-bit {self.weight_bit})"
            )
        for name in ("act_bit", "weight_bit"):
            value = getattr(self, name)
            if not 1 <= value <= 32:
                raise ArgumentError(f"--{name.replace('_', '-')} must be an integer from 1 to 32, got {value}")
        if not self.lr >= 0:  # NaN fails this too; inf is allowed and diverges (a TrainingError)
            raise ArgumentError(f"--lr must be a number >= 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ArgumentError(f"--momentum must lie in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < math.inf:
            raise ArgumentError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if self.seed < 0:
            raise ArgumentError(f"--seed must be an integer >= 0, got {self.seed}")

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> "RunSettings":
        try:
            return cls(**checkpoint.run)
        except TypeError as error:
            raise ModelFileError(
                f"{checkpoint.path}: the checkpoint's run settings are not this tinybnn's ({error})"
            ) from None


def training_data(settings: RunSettings, data_dir: str | Path | None, log: Callable[[str], None]):
    """((train images, labels), (test images, labels), dataset) as float32 NCHW, limited as asked.

    ``--train-limit N`` keeps N training images drawn with the run's seed (the
    MNIST subset on disk is sorted by class, so the first N would be one digit)."""
    data = load_dataset(settings.dataset, data_dir=data_dir, log=log)
    train = data.train_images, data.train_labels
    test = data.test_images, data.test_labels
    if settings.train_limit:
        keep = np.sort(np.random.default_rng(settings.seed).permutation(len(train[0]))[: settings.train_limit])
        train = train[0][keep], train[1][keep]
    if settings.test_limit:
        test = test[0][: settings.test_limit], test[1][: settings.test_limit]
    return (to_float_nchw(train[0]), train[1]), (to_float_nchw(test[0]), test[1]), data


def run(
    settings: RunSettings,
    out: Path,
    data_dir: str | Path | None = None,
    resume: Checkpoint | None = None,
    log: Callable[[str], None] = print,
    force: bool = False,
    progress: Progress | None = None,
) -> TrainState:
    """Train as ``settings`` say, checkpointing to ``MODEL.ckpt.npz``; save the model to ``out``.

    ``resume``: a loaded checkpoint (:func:`~tinybnn.checkpoint.load_checkpoint`) to continue from;
    it may be ``MODEL.ckpt.npz`` itself, which then keeps being updated. Before the data is loaded,
    ``out`` and the checkpoint are checked (:func:`tinybnn.outputs.check_output`): neither may be
    the other or an input, and an existing file there must be a trained model file and a
    checkpoint respectively, unless ``force``. ``progress`` shows how far each epoch has got
    (:mod:`tinybnn.progress`)."""
    settings.check()
    out = check_output(out, "float", inputs=[resume.path] if resume is not None else [], force=force)
    ckpt = check_output(checkpoint_path(out), "checkpoint", inputs=[out], force=force, option="the checkpoint")
    if resume is not None and resume.state.epoch > settings.epochs:
        raise ArgumentError(f"--epochs {settings.epochs}: {resume.path} has already done {resume.state.epoch} epochs")
    train, test, data = training_data(settings, data_dir, log)

    rng = np.random.default_rng(settings.seed)
    model, input_shape = build_model(settings.model, rng=rng, act_bit=settings.act_bit, weight_bit=settings.weight_bit)
    optimizer = make_optimizer(settings, model)
    state = None
    if resume is not None:
        model.load_state_dict(resume.model_file.model.state_dict())
        resume.restore_optimizer(optimizer, resume.path)
        resume.restore_generators(model)
        rng.bit_generator.state = resume.state.rng_state
        state = resume.state
        log(f"resuming {resume.path} after epoch {state.epoch} of {settings.epochs}")

    log(
        f"training {settings.model} on {data.name} ({len(train[0]):,} training images from {data.source_dir}, "
        f"{len(test[0]):,} test images), {settings.epochs} epochs, batch {settings.batch_size}, "
        f"{settings.optimizer} lr {settings.lr:g} ({settings.schedule}), seed {settings.seed}"
    )
    saved = SavedSoFar(resume, settings.epochs, out, data_dir)

    def on_epoch_end(done: TrainState) -> None:
        save_checkpoint(ckpt, model, input_shape, optimizer, done, asdict(settings))
        saved.saved(ckpt, done.epoch)

    watching = BinaryDiagnostics(model) if settings.diagnostics else contextlib.nullcontext()
    with StopRequest(saved.message) as stop, watching as diagnostics:
        try:
            state = fit(
                model,
                optimizer,
                make_schedule(settings.schedule, settings.lr, settings.epochs),
                train,
                test,
                settings.epochs,
                settings.batch_size,
                rng,
                state=state,
                log=log,
                on_epoch_end=on_epoch_end,
                should_stop=lambda: stop.requested,
                diagnostics=diagnostics,
                progress=progress,
            )
        except Interrupted:
            raise Interrupted(saved.message()) from None
        metadata = {"training": asdict(settings), "history": state.history}
        save_model(out, model, input_shape, metadata=metadata)
        final = state.history[-1]["test_accuracy"] if state.history else float("nan")
        log(f"saved {out} (test accuracy {final:.4f}); checkpoint {ckpt}")
    if stop.requested:
        raise Interrupted(f"interrupted as the run finished; {out} and {ckpt} are saved")
    return state


def make_optimizer(settings: RunSettings, model) -> Optimizer:
    """The run's optimizer over ``model``'s parameters; "bop": Bop on the binary weights, Adam on the rest."""
    if settings.optimizer == "bop":
        return bop_with(
            model,
            Adam,
            gamma=settings.bop_gamma,
            tau=settings.bop_tau,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
        )
    extra = {"momentum": settings.momentum} if settings.optimizer == "sgd" else {}
    return OPTIMIZERS[settings.optimizer](
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, **extra
    )


class SavedSoFar:
    """What a stopped run has kept, and the command that continues it, as one line."""

    def __init__(self, resume: Checkpoint | None, epochs: int, out: Path, data_dir: str | Path | None):
        self.checkpoint = resume.path if resume is not None else None
        self.epoch = resume.state.epoch if resume is not None else 0
        self.stored_epochs = resume.run.get("epochs") if resume is not None else epochs
        self.epochs, self.out, self.data_dir = epochs, out, data_dir

    def saved(self, checkpoint: Path, epoch: int) -> None:
        self.checkpoint, self.epoch, self.stored_epochs = checkpoint, epoch, self.epochs

    def message(self) -> str:
        if self.checkpoint is None:
            return "interrupted before the first epoch finished; nothing was saved"
        command = ["tinybnn", "train", "--resume", str(self.checkpoint)]
        if model_path_of(self.checkpoint) != self.out:
            command += ["--out", str(self.out)]
        if self.stored_epochs != self.epochs:  # the resumed checkpoint, with --epochs changed
            command += ["--epochs", str(self.epochs)]
        if self.data_dir is not None:
            command += ["--data", str(self.data_dir)]
        return (
            f"interrupted; {self.checkpoint} holds epoch {self.epoch} of {self.epochs}; continue with: "
            + shlex.join(command)
        )
