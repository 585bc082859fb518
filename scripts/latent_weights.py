"""Adam on latent weights against Bop on the binary LeNet: accuracy, flip ratio, saturation per epoch.

    nice -n 10 python scripts/latent_weights.py --data ../shared/datasets --epochs 15 --work runs/

Trains the binary LeNet twice with ``tinybnn train --diagnostics``, the same
seed, data and schedule: ``--optimizer adam`` (latent weights clipped to
[-1, 1]) and ``--optimizer bop`` (±1 weights flipped by Bop, Adam on the
float layers), both at once, each in its own process. Then prints one row per
epoch (test accuracy, flip ratio of the binary convolution and the binary
dense layer, Adam's share of latent weights at the bound) and draws
``latent_weights.png`` (the comparison) and ``diagnostics_adam.png``,
``diagnostics_bop.png`` (each run's diagnostics) into ``--img``. With
``--draw-only`` it redraws from the model files already in ``--work`` (or,
for runs still going, from their checkpoints, up to the epochs both finished).
"""

import argparse
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tinybnn.benchmarks.workers import format_table
from tinybnn.diagnostics_chart import diagnostics_image
from tinybnn.pictures import WHITE, draw_panel, draw_title, save_png
from tinybnn.serialization import load_model

OPTIMIZERS = ("adam", "bop")
COLOURS = {"adam": (31, 119, 180), "bop": (214, 39, 40)}


def train(args: argparse.Namespace) -> None:
    running = []
    for name in OPTIMIZERS:
        command = [
            sys.executable,
            "-m",
            "tinybnn.cli",
            "train",
            "--model",
            "binary-lenet",
            "--optimizer",
            name,
            "--epochs",
            str(args.epochs),
            "--diagnostics",
            "--seed",
            str(args.seed),
            "--out",
            str(args.work / f"{name}.npz"),
            "--force",
        ]
        command += ["--data", args.data] if args.data else []
        command += ["--train-limit", str(args.train_limit)] if args.train_limit else []
        command += ["--test-limit", str(args.test_limit)] if args.test_limit else []
        log = open(args.work / f"{name}.log", "w")
        print(" ".join(command[1:]), flush=True)
        running.append((name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log))
    for name, process, log in running:
        if process.wait() != 0:
            sys.exit(f"the {name} run failed; see {args.work / (name + '.log')}")
        log.close()


def layer_value(epoch: dict, kind: str, field: str) -> float:
    """``field`` of the first binary layer of type ``kind`` in one epoch's diagnostics."""
    return next(entry[field] for entry in epoch["diagnostics"] if entry["type"] == kind and field in entry)


def comparison_image(histories: dict[str, list[dict]], title: str) -> Image.Image:
    """Three panels: test accuracy, flip ratio per binary layer, latent weights at the bound; Adam vs Bop."""
    width, height = 1950, 560
    image = Image.new("RGB", (width, height), WHITE)
    top = draw_title(image, title)
    epochs = [row["epoch"] for row in histories["adam"]]
    accuracy = [
        (name, [row["test_accuracy"] for row in history], COLOURS[name], False) for name, history in histories.items()
    ]
    flips = [
        (f"{name} {short}", [layer_value(row, kind, "flip_ratio") for row in history], COLOURS[name], short == "dense")
        for name, history in histories.items()
        for kind, short in (("QConvolution", "conv"), ("QFullyConnected", "dense"))
    ]
    bound = [
        (f"{name} {short}", [layer_value(row, kind, "at_bound") for row in history], COLOURS[name], short == "dense")
        for name, history in histories.items()
        for kind, short in (("QConvolution", "conv"), ("QFullyConnected", "dense"))
    ]
    low = min(v for _, values, _, _ in accuracy for v in values)
    third = width // 3
    draw_panel(
        image, (0, top, third, height), "test accuracy", "accuracy", epochs, accuracy, (max(0.0, low - 0.005), 1.0)
    )
    high = max(v for _, values, _, _ in flips for v in values)
    draw_panel(
        image,
        (third, top, 2 * third, height),
        "flip ratio of the binary weights",
        "share flipped per step",
        epochs,
        flips,
        (0.0, high),
    )
    draw_panel(
        image,
        (2 * third, top, width, height),
        "weights at the clipping bound |w| = 1",
        "share of weights",
        epochs,
        bound,
        (0.0, 1.0),
    )
    return image


def history_of(work: Path, name: str) -> list[dict]:
    """The run's history: from its model file, else (a run still going) from its checkpoint."""
    if (work / f"{name}.npz").is_file():
        return load_model(work / f"{name}.npz").metadata["history"]
    return load_model(work / f"{name}.ckpt.npz").metadata["checkpoint"]["history"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or download)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--work", type=Path, default=Path("latent-weights-runs"), help="folder for the runs")
    parser.add_argument("--img", type=Path, default=Path("docs/img"), help="folder for the pictures")
    parser.add_argument("--draw-only", action="store_true", help="draw from the model files in --work")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.draw_only:
        train(args)
    histories = {name: history_of(args.work, name) for name in OPTIMIZERS}
    done = min(len(history) for history in histories.values())
    histories = {name: history[:done] for name, history in histories.items()}

    rows = []
    for adam, bop in zip(histories["adam"], histories["bop"]):
        rows.append(
            [
                str(adam["epoch"]),
                f"{adam['test_accuracy']:.4f}",
                f"{bop['test_accuracy']:.4f}",
                f"{layer_value(adam, 'QConvolution', 'flip_ratio'):.5f}",
                f"{layer_value(bop, 'QConvolution', 'flip_ratio'):.5f}",
                f"{layer_value(adam, 'QFullyConnected', 'flip_ratio'):.5f}",
                f"{layer_value(bop, 'QFullyConnected', 'flip_ratio'):.5f}",
                f"{layer_value(adam, 'QConvolution', 'at_bound'):.3f}",
                f"{layer_value(adam, 'QFullyConnected', 'at_bound'):.3f}",
            ]
        )
    print(
        format_table(
            [
                "epoch",
                "adam acc",
                "bop acc",
                "adam conv flips",
                "bop conv flips",
                "adam dense flips",
                "bop dense flips",
                "adam conv at bound",
                "adam dense at bound",
            ],
            rows,
        )
    )
    args.img.mkdir(parents=True, exist_ok=True)
    save_png(
        comparison_image(histories, "binary LeNet on mnist-5k: Adam on latent weights vs Bop"),
        args.img / "latent_weights.png",
    )
    for name in OPTIMIZERS:
        save_png(
            diagnostics_image(histories[name], title=f"binary diagnostics, binary LeNet, {name}"),
            args.img / f"diagnostics_{name}.png",
        )
    print(f"wrote {args.img / 'latent_weights.png'}, diagnostics_adam.png, diagnostics_bop.png")


if __name__ == "__main__":
    main()
