"""The benchmark's plumbing (shapes, report, targets, chart, arguments), on made-up timings.

Nothing here times anything: the benchmark itself runs only from
``tinybnn bench gemm`` / ``scripts/bench_gemm.py``.
"""

import pytest
from PIL import Image

from tinybnn.gemm import impl_names
from tinybnn.benchmarks.gemm import (
    TARGETS,
    build_chart,
    check_targets,
    format_report,
    main,
    shapes_for,
)

BASELINES = ("env", "SkylakeX")


def test_shapes_follow_bmxnet_and_lenet():
    shapes = shapes_for("all")
    filters = [s for s in shapes if s.group == "filters"]
    kernels = [s for s in shapes if s.group == "kernel"]
    assert [s.m for s in filters] == [16, 32, 64, 128, 256]
    assert {(s.k, s.n) for s in filters} == {(256 * 5 * 5, 6400)}
    assert [s.x for s in kernels] == list(range(1, 8))
    assert [s.k for s in kernels] == [256 * s * s for s in range(1, 8)]
    assert {s.m for s in kernels} == {64}
    mkn = {(s.m, s.k, s.n) for s in shapes}
    for _, target, _ in TARGETS:
        assert target in mkn
    assert (1000, 1024, 100) in mkn  # LeNet's binary fully connected layer, batch 100
    assert [(s.m, s.k, s.n) for s in shapes_for("targets")] == [t for _, t, _ in TARGETS]
    assert len(shapes_for("all", quick=True)) < len(shapes)


def fake_results():
    """Timings chosen so that xnor_parallel is 25x / 10x faster than np.dot[env] / [SkylakeX]."""
    rows = []
    for shape in shapes_for("all", quick=True):
        base = shape.ops / 200e9
        times = {name: base / 2 for name in impl_names() if name != "numpy"}
        times["naive"] = None
        times["xnor_naive"] = base
        times["xnor_parallel"] = base / 25
        times["pack B"] = base / 100
        times["numpy[env]"] = base
        times["numpy[SkylakeX]"] = base / 2.5
        rows.append(
            {
                "label": shape.label,
                "group": shape.group,
                "m": shape.m,
                "k": shape.k,
                "n": shape.n,
                "x": shape.x,
                "ops": shape.ops,
                "times": times,
            }
        )
    return {"shapes": rows, "baselines": {}, "rounds": 5, "budget": 1.0}


def test_report_has_gops_and_speedups():
    report = format_report(fake_results(), BASELINES)
    assert "M=64 K=6400 N=6400" in report
    assert "x np.dot[SkylakeX]" in report
    line = next(x for x in report.splitlines() if x.startswith("xnor_parallel ") and "+" not in x)
    assert "25.00x" in line and "10.00x" in line
    assert "5000.0" in line  # 200 GOPS * 25
    assert "skipped" in report


def test_targets_are_checked_against_each_baseline():
    lines = check_targets(fake_results(), BASELINES)
    assert len(lines) == 2 * len(TARGETS)
    assert any("25.0x np.dot[env]" in x and "target 20x: met" in x for x in lines)
    assert any("10.0x np.dot[SkylakeX]" in x and "target 20x: NOT met" in x for x in lines)
    assert any("10.0x np.dot[SkylakeX]" in x and "target 8x: met" in x for x in lines)


def test_chart_is_a_png_with_two_panels(tmp_path):
    path = build_chart(fake_results(), tmp_path / "img" / "chart.png", threads=2, baselines=BASELINES)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1400, 620)
        # Something was drawn in both halves (not a blank image).
        left = image.crop((0, 0, 700, 620)).convert("L").getextrema()
        right = image.crop((700, 0, 1400, 620)).convert("L").getextrema()
        assert left[0] < 100 and right[0] < 100
    assert not list(tmp_path.glob("img/*.tmp"))


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--threads", "0"], "--threads must be between 1"),
        (["--impls", "xnor_parallel,fastest"], "unknown implementation"),
        (["--budget", "0"], "--budget must be positive"),
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--suite", "resnet"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_status_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err
