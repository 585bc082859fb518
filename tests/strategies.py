"""Hypothesis strategies shared by the tests."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def shapes(min_dims: int = 1, max_dims: int = 3, max_side: int = 4):
    """Array shapes with every side from 1 to ``max_side``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def arrays_f64(shape, low: float = -2.0, high: float = 2.0):
    """float64 arrays of ``shape`` with finite values in [low, high]."""
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False, width=64))


def with_zeros(array: np.ndarray, data, fraction_max: float = 0.5) -> np.ndarray:
    """A copy of ``array`` with some entries set to exactly 0 (so sign(0) = +1 is exercised)."""
    out = np.array(array, copy=True)
    flat = out.reshape(-1)
    count = data.draw(st.integers(1, max(1, int(flat.size * fraction_max))))
    where = data.draw(st.lists(st.integers(0, flat.size - 1), min_size=count, max_size=count))
    flat[where] = 0
    return out
