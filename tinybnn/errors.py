"""The exceptions tinybnn raises for a user's mistakes.

Everything a user can get wrong (a data file, a model file, an argument)
raises a subclass of :class:`TinyBNNError`. The command line turns these into
one line on stderr and exit status 2; any other exception is a bug in tinybnn
and keeps its traceback.

=====================  ====================================================
exception              raised for
=====================  ====================================================
``DataFileError``      an IDX file that is missing, truncated, corrupt or
                       inconsistent; a download that failed its checksum
``ModelFileError``     a model file that is not ours, is damaged, or does
                       not match the architecture it describes
``ShapeError``         an input whose rank or size a layer cannot take
``ArgumentError``      a parameter outside its allowed range
``NotANumberError``    NaN where a sign is taken (it has no sign): an
                       ``ArgumentError``
``TrainingError``      training that cannot continue (a NaN loss)
=====================  ====================================================

``ShapeError`` and ``ArgumentError`` also derive from ``ValueError`` so that
code written against NumPy conventions still catches them.
"""


class TinyBNNError(Exception):
    """Base class of every error caused by input rather than by a bug."""


class DataFileError(TinyBNNError):
    """A data file (IDX, gzip, download) is missing, corrupt or inconsistent."""


class ModelFileError(TinyBNNError):
    """A model file cannot be loaded: foreign, damaged, or inconsistent."""


class ArgumentError(TinyBNNError, ValueError):
    """An argument to a layer, function or command is outside its range."""


class NotANumberError(ArgumentError):
    """NaN reached a sign (1-bit activations, bit packing): NaN has no sign, so it is refused."""


class ShapeError(TinyBNNError, ValueError):
    """An array's shape does not fit the layer or function it was given to."""


class TrainingError(TinyBNNError):
    """Training stopped because it cannot continue (e.g. the loss is NaN)."""
