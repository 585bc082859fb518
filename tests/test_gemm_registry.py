"""The registry: one place listing every GEMM implementation, with its kind."""

import dataclasses

import numpy as np
import pytest

from tinybnn.errors import ArgumentError
from tinybnn.gemm import REGISTRY, GemmImpl, get_impl, impl_names


def test_registry_lists_the_required_kernels():
    assert impl_names("float") == ["naive", "blocked", "parallel", "numpy"]
    assert impl_names("xnor") == ["xnor_naive", "xnor_blocked", "xnor_parallel"]
    assert impl_names() == impl_names("float") + impl_names("xnor")


def test_entries_are_consistent():
    for name, impl in REGISTRY.items():
        assert impl.name == name
        assert impl.kind in ("float", "xnor")
        assert callable(impl.function)
        assert impl.description and "\n" not in impl.description
        assert impl.function.__doc__  # the math lives in the docstrings


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        REGISTRY["numpy"].name = "other"


def test_kind_is_checked():
    with pytest.raises(ArgumentError, match="kind"):
        GemmImpl("x", "int8", np.dot, "no such kind")
    with pytest.raises(ArgumentError, match="kind"):
        impl_names("int8")


def test_get_impl():
    assert get_impl("xnor_parallel") is REGISTRY["xnor_parallel"]
    with pytest.raises(ArgumentError, match="unknown GEMM implementation 'fast'.*xnor_parallel"):
        get_impl("fast")
