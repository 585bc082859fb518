"""Checkpoints: a model file that also holds what training needs to go on.

A checkpoint is an ordinary model file (:mod:`tinybnn.serialization`) whose
metadata has a ``"checkpoint"`` entry — the epochs completed, the shuffling
generator's state and the layers' generators' states (dropout masks), the
history so far, the optimizer's scalars and the run's settings — and whose extra arrays are the optimizer's state
(``optimizer/m.3``).
Resuming from it repeats exactly the computation an uninterrupted run would
have done, so the weights come out bit for bit the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError, TinyBNNError
from .layers import Module
from .optim import Optimizer
from .serialization import ModelFile, load_model, save_model
from .training import TrainState


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model file, the training state, the run's settings and the file's path."""

    model_file: ModelFile
    state: TrainState
    run: dict[str, Any]
    optimizer: dict[str, Any]
    optimizer_arrays: dict[str, np.ndarray]
    path: Path

    def restore_generators(self, model: Module) -> None:
        """Put the layers' random generators back in the states they had at the checkpoint."""
        saved = self.model_file.metadata["checkpoint"].get("generators", {})
        for name, rng in model.generators().items():
            if name in saved:
                rng.bit_generator.state = saved[name]

    def restore_optimizer(self, optimizer: Optimizer, path: Path) -> None:
        """Load the saved moments/velocities and step counter into ``optimizer``."""
        try:
            optimizer.load_state_arrays(self.optimizer_arrays)
        except TinyBNNError as error:
            raise ModelFileError(f"{path}: {error}") from None
        optimizer.step_count = int(self.optimizer.get("step_count", 0))


def save_checkpoint(
    path: str | Path,
    model: Module,
    input_shape: tuple[int, ...],
    optimizer: Optimizer,
    state: TrainState,
    run: dict[str, Any],
) -> Path:
    """Write model, optimizer state and training state to ``path`` atomically."""
    metadata = {
        "checkpoint": {
            "epoch": state.epoch,
            "rng_state": state.rng_state,
            "history": state.history,
            "optimizer": optimizer.hyperparameters(),
            "run": run,
            "generators": {path: rng.bit_generator.state for path, rng in model.generators().items()},
        }
    }
    extra = {f"optimizer/{name}": value for name, value in optimizer.state_arrays().items()}
    return save_model(path, model, input_shape, metadata=metadata, extra=extra)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint; a plain model file is refused with an explanation."""
    path = Path(path)
    model_file = load_model(path, kind="float")
    info = model_file.metadata.get("checkpoint")
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: a model file, not a checkpoint (it has no training state to resume)")
    # every field's type and range was checked on load (tinybnn.headers.CHECKPOINT)
    state = TrainState(epoch=info["epoch"], rng_state=info["rng_state"], history=info["history"])
    run, optimizer = info["run"], info["optimizer"]
    arrays = {
        name[len("optimizer/") :]: value for name, value in model_file.extra.items() if name.startswith("optimizer/")
    }
    return Checkpoint(model_file, state, run, optimizer, arrays, path)
