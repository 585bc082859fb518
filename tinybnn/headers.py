"""The written schema of a model file's header, checked once, on load, before anything is used.

What each field of the JSON header (:mod:`tinybnn.serialization`) may hold,
in :mod:`tinybnn.schema`'s notation. The architecture is checked layer by
layer against each layer's own ``config_schema`` by
:func:`tinybnn.architecture.footprint`; everything else is here:

- the header: ``format``, ``version``, ``kind``, ``input_shape`` (1 to 3
  sizes of 1 to 65536), ``arrays`` (name, dtype, shape), ``metadata``;
- ``metadata``: free JSON (finite numbers, bounded size and depth), except
  the entries tinybnn itself reads: ``training`` (a run's settings, whose
  ``dataset`` names the classes ``predict`` prints), ``history`` (one entry
  per epoch), ``converted_from`` and ``checkpoint``;
- ``metadata.checkpoint``: ``epoch`` (>= 0), ``rng_state`` and every ``generators`` entry exactly as
  NumPy's PCG64 writes its state (so that restoring it cannot fail), the
  ``history``, the optimizer's ``lr`` and ``step_count``, and the ``run``.
"""

from __future__ import annotations

from typing import Any

from .schema import SIZE, Bool, Either, Float, Int, Json, List, Null, Obj, Str, Tuple, validate

FORMAT = "tinybnn-model"
VERSION = 1
KINDS = ("float", "binarized")
#: dtypes a model file may hold (no object dtype, so nothing is ever unpickled)
DTYPES = ("float32", "float64", "uint64", "int64", "int32", "uint8")
MAX_EPOCHS = 1_000_000

#: ``Generator.bit_generator.state`` of NumPy's PCG64, the only generator tinybnn uses
PCG64_STATE = Obj(
    {
        "bit_generator": Str(("PCG64",)),
        "state": Obj({"state": Int(0, (1 << 128) - 1), "inc": Int(1, (1 << 128) - 1, odd=True)}),
        "has_uint32": Int(0, 1),
        "uinteger": Int(0, (1 << 32) - 1),
    }
)

SHARE = Float(0.0, 1.0)
#: one binary layer's entry of :mod:`tinybnn.diagnostics`
LAYER_DIAGNOSTICS = Obj(
    {"layer": Str(max_len=256), "type": Str(max_len=64)},
    {"flip_ratio": SHARE, "at_bound": SHARE, "outside_window": SHARE, "positive": SHARE},
)
#: one epoch of :class:`tinybnn.training.EpochResult`, with the binary layers' diagnostics if recorded
EPOCH = Obj(
    {
        "epoch": Int(1, MAX_EPOCHS),
        "loss": Float(0.0),
        "train_accuracy": Float(0.0, 1.0),
        "test_loss": Float(0.0),
        "test_accuracy": Float(0.0, 1.0),
        "seconds": Float(0.0),
        "images_per_second": Float(0.0),
        "lr": Float(0.0),
    },
    {"diagnostics": List(LAYER_DIAGNOSTICS, max_len=4096)},
)
HISTORY = List(EPOCH, max_len=MAX_EPOCHS)

LIMIT = Either(Null(), Int(1, 1 << 40))
NAME = Str(max_len=64)
#: :class:`tinybnn.recipe.RunSettings`, field by field
RUN = Obj(
    optional={
        "model": NAME,
        "act_bit": Int(1, 32),
        "weight_bit": Int(1, 32),
        "dataset": NAME,
        "epochs": Int(1, MAX_EPOCHS),
        "batch_size": Int(1, 1 << 20),
        "optimizer": NAME,
        "lr": Float(0.0),
        "momentum": Float(0.0, 1.0),
        "weight_decay": Float(0.0),
        "schedule": NAME,
        "seed": Int(0, (1 << 64) - 1),
        "train_limit": LIMIT,
        "test_limit": LIMIT,
        "bop_gamma": Float(0.0, 1.0),
        "bop_tau": Float(0.0),
        "diagnostics": Bool(),
    },
    other=Json(),
)  # a library caller's save_checkpoint may store more; the command line refuses it

CHECKPOINT = Obj(
    {
        "epoch": Int(0, MAX_EPOCHS),
        "rng_state": PCG64_STATE,
        "history": HISTORY,
        "optimizer": Obj({"lr": Float(0.0), "step_count": Int(0, 1 << 62)}, other=Json()),
        "run": RUN,
    },
    {"generators": Obj(other=PCG64_STATE)},
)

METADATA = Obj(
    optional={"training": RUN, "history": HISTORY, "converted_from": Str(), "checkpoint": CHECKPOINT}, other=Json()
)

ARRAY_ENTRY = Tuple(Str(max_len=256), Str(DTYPES), List(SIZE, max_len=8))

HEADER = Obj(
    {
        "format": Str((FORMAT,)),
        "version": Int(1, VERSION),
        "kind": Str(KINDS),
        "input_shape": List(Int(1, 1 << 16), max_len=3, min_len=1),
        "architecture": Obj({"type": Str(max_len=64)}, {"config": Obj(other=Json())}),
        "metadata": METADATA,
        "arrays": List(ARRAY_ENTRY),
    }
)


def check_header(header: Any) -> None:
    """Raise :class:`~tinybnn.schema.SchemaError` naming the first field ``header`` gets wrong."""
    validate(header, HEADER)


__all__ = ["CHECKPOINT", "DTYPES", "FORMAT", "HEADER", "KINDS", "PCG64_STATE", "RUN", "VERSION", "check_header"]
