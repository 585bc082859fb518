"""The ``tinybnn`` command line.

Each subcommand is a function ``command_<name>(args) -> int`` that calls the
library. Mistakes in the input (``TinyBNNError``: a bad file, a bad argument)
print one line, ``tinybnn: error: ...``, and exit with status 2; anything else
is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import show
from .errors import ArgumentError, TinyBNNError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and status 2), like our other errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- train ---------------------------------------------------------------------
def add_train_parser(commands) -> None:
    p = commands.add_parser("train", help="train a LeNet on MNIST or Fashion-MNIST",
                            description="Train a model, print one line per epoch, save it and a checkpoint.")
    p.add_argument("--model", default="binary-lenet", choices=["lenet", "binary-lenet"],
                   help="network to train (default: binary-lenet)")
    p.add_argument("--act-bit", type=int, default=1, help="activation bits of binary-lenet's Q-layers (1..32)")
    p.add_argument("--weight-bit", type=int, default=1, help="weight bits of binary-lenet's Q-layers (1..32)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--data", metavar="DIR", help="folder holding the IDX files (or mnist/, mnist-5k/, "
                   "fashion-mnist/ subfolders); default: $TINYBNN_DATA, then the cache, then download")
    p.add_argument("--epochs", type=int, help="epochs to train (default 10; with --resume: as the checkpoint says)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3 adam, 0.1 sgd)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="cosine", choices=["constant", "cosine", "step"],
                   help="learning-rate schedule over the epochs (default: cosine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, metavar="N", help="train on N images drawn with the seed")
    p.add_argument("--test-limit", type=int, metavar="N", help="evaluate on the first N test images")
    p.add_argument("--out", type=Path, default=Path("model.npz"), help="where to save the model")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="continue a run from its checkpoint (MODEL.ckpt.npz)")
    p.set_defaults(handler=command_train)


def command_train(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .recipe import RunSettings, run

    checkpoint = None
    if args.resume is not None:
        checkpoint = load_checkpoint(args.resume)
        settings = RunSettings.from_checkpoint(checkpoint)
        if args.epochs is not None:  # train longer (or shorter) than first planned
            settings.epochs = args.epochs
    else:
        lr = args.lr if args.lr is not None else (1e-3 if args.optimizer == "adam" else 0.1)
        settings = RunSettings(
            model=args.model, act_bit=args.act_bit, weight_bit=args.weight_bit, dataset=args.dataset,
            epochs=10 if args.epochs is None else args.epochs, batch_size=args.batch_size,
            optimizer=args.optimizer, lr=lr, momentum=args.momentum, weight_decay=args.weight_decay,
            schedule=args.schedule, seed=args.seed, train_limit=args.train_limit, test_limit=args.test_limit)
    run(settings, args.out, data_dir=args.data, resume=checkpoint)
    return 0


# --- convert, summary ---------------------------------------------------------------
def add_convert_parser(commands) -> None:
    p = commands.add_parser("convert", help="pack a trained binary model's weights to 1 bit",
                            description="Write binarized_MODEL.npz beside MODEL: 1-bit layers packed, "
                                        "BatchNorm folded, everything else float32.")
    p.add_argument("model", type=Path, help="a model file written by tinybnn train")
    p.add_argument("--out", type=Path, help="where to write (default: binarized_<name> beside the model)")
    p.set_defaults(handler=command_convert)


def command_convert(args: argparse.Namespace) -> int:
    from .convert import convert_file

    before = args.model.stat().st_size if args.model.is_file() else 0
    target = convert_file(args.model, args.out)
    after = target.stat().st_size
    print(f"{args.model}: {before:,} bytes -> {target}: {after:,} bytes ({before / after:.1f}x smaller)")
    return 0


def add_summary_parser(commands) -> None:
    p = commands.add_parser("summary", help="per-layer shapes, parameters, memory and MACs of a model",
                            description="Summarize a model file (trained or converted).")
    p.add_argument("model", type=Path)
    p.set_defaults(handler=command_summary)


def command_summary(args: argparse.Namespace) -> int:
    from .serialization import load_model
    from .summary import format_summary, summarize

    loaded = load_model(args.model)
    rows, predicted = summarize(loaded.model, loaded.input_shape, loaded.metadata)
    size = args.model.stat().st_size
    title = f"{args.model} ({loaded.kind} model file, {size:,} bytes, input {'x'.join(map(str, loaded.input_shape))})"
    print(format_summary(rows, predicted, title))
    return 0


# --- predict -------------------------------------------------------------------------
def add_predict_parser(commands) -> None:
    p = commands.add_parser("predict", help="classify PNG/JPEG images (top-3 classes)",
                            description="Classify images with MODEL (trained or converted). If the first "
                                        "argument is not a .npz file, the binarized LeNet shipped with "
                                        "tinybnn classifies them as MNIST digits.")
    p.add_argument("files", nargs="+", metavar="[MODEL] IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image, one per line")
    p.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    p.set_defaults(handler=command_predict)


def command_predict(args: argparse.Namespace) -> int:
    import json

    from .predict import SHIPPED_MODEL, predict_files
    from .serialization import load_model

    files = list(args.files)
    model_path = Path(files.pop(0)) if files[0].endswith(".npz") else SHIPPED_MODEL
    if not files:
        raise ArgumentError("no image to classify: give MODEL IMAGE... or IMAGE...")
    if args.top < 1:
        raise ArgumentError(f"--top must be at least 1, got {args.top}")
    loaded = load_model(model_path)
    if loaded.input_shape != (1, 28, 28):
        raise ArgumentError(f"{model_path}: takes input {loaded.input_shape}, predict handles 28x28 grey images")
    results = predict_files(loaded.model, files, loaded.metadata, args.top)
    for result in results:
        if args.json:
            print(json.dumps({"file": result.path, "error": result.error,
                              "top": [{"class": name, "probability": round(p, 6)} for name, p in result.top]}))
        elif result.error:
            print(f"{result.path}: error: {result.error}", file=sys.stderr)
        else:
            print(f"{result.path}: " + ", ".join(f"{name} {p:.1%}" for name, p in result.top))
    return 2 if any(result.error for result in results) else 0


# --- bench -----------------------------------------------------------------------
BENCHMARKS = {
    "gemm": "tinybnn.gemm.benchmark",
    "infer": "tinybnn.benchmarks.infer",
    "peers": "tinybnn.benchmarks.peers",
    "train": "tinybnn.benchmarks.train",
}


def add_bench_parser(commands) -> None:
    p = commands.add_parser("bench", help="benchmarks: gemm, infer, train", add_help=False,
                            description="Run a benchmark; options after its name go to it "
                                        "(tinybnn bench train --help).")
    p.add_argument("benchmark", choices=sorted(BENCHMARKS))
    p.add_argument("options", nargs=argparse.REMAINDER)
    p.set_defaults(handler=command_bench)


def command_bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(BENCHMARKS[args.benchmark]).main(args.options)


# --- entry point ---------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tinybnn", description="Binary neural networks on NumPy and Numba.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    add_train_parser(commands)
    add_convert_parser(commands)
    add_summary_parser(commands)
    add_predict_parser(commands)
    add_bench_parser(commands)
    show.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except TinyBNNError as error:
        print(f"tinybnn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinybnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
