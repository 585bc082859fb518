"""Chapter 8's exercises (docs/tutorial/exercises/08_explorer.py), against the explorer's explain."""

from functools import cache

import numpy as np

from tinybnn.explorer.digits import SHIPPED_DIGITS, read_test_files
from tinybnn.explorer.model_trace import explain
from tinybnn.predict import SHIPPED_MODEL
from tinybnn.serialization import load_model


@cache
def explained(layer, position):
    model = load_model(SHIPPED_MODEL).model
    image, _ = read_test_files(SHIPPED_DIGITS, "the first 20 MNIST test digits").digit(0)
    return explain(model, image[None], layer, list(position))


def test_first_maximum_takes_the_first_of_equal_values(exercise):
    for window, want in (
        ([[1.0, 3.0], [3.0, 2.0]], [0, 1]),
        ([[5.0, 5.0], [5.0, 5.0]], [0, 0]),
        ([[0.0, -1.0], [2.0, 2.0]], [1, 0]),
    ):
        got = exercise.first_maximum(np.array(window))
        assert list(got) == want, f"in {window} the pooling takes {want}, got {got}"
    e = explained(3, (8, 0, 3))
    got = exercise.first_maximum(np.array(e["pool"]["values"]))
    assert list(got) == e["pool"]["chosen"], f"the explorer chose {e['pool']['chosen']}, got {got}"


def test_output_by_hand_matches_the_packed_layer(exercise):
    for layer, position in ((3, (8, 0, 3)), (3, (0, 2, 1)), (5, (0,))):
        e = explained(layer, position)
        popcount, dot, result = exercise.output_by_hand(e["patch_bits"], e["filter_bits"], e["scale"], e["shift"])
        want = (e["popcount"], e["dot"], np.float32(e["result"]))
        assert (popcount, dot) == want[:2], f"layer {layer} {position}: popcount, dot {want[:2]}, got {(popcount, dot)}"
        assert np.float32(result) == want[2], f"layer {layer} {position}: result {want[2]}, got {result}"
