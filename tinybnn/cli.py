"""The ``tinybnn`` command line.

Each subcommand is a function ``command_<name>(args) -> int`` that calls the
library. Mistakes in the input (``TinyBNNError``: a bad file, a bad argument)
print one line, ``tinybnn: error: ...``, and exit with status 2; anything else
is a bug and keeps its traceback. Ctrl-C prints one line and exits with status
130 (:mod:`tinybnn.interrupt`; training first finishes its batch and says how
to resume); a reader that closes the pipe (``| head -1``) ends the command
quietly with status 141; names the terminal cannot encode are printed with
backslash escapes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import show
from .export import command as export_command
from .errors import ArgumentError, TinyBNNError
from .interrupt import EXIT_STATUS, exit_on_interrupt


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and status 2), like our other errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- train ---------------------------------------------------------------------
def add_train_parser(commands) -> None:
    p = commands.add_parser(
        "train",
        help="train a LeNet on MNIST or Fashion-MNIST",
        description="Train a model, print one line per epoch, save it and a checkpoint.",
    )
    p.add_argument(
        "--model",
        default="binary-lenet",
        choices=["lenet", "binary-lenet", "reactnet-lenet"],
        help="network to train (default: binary-lenet)",
    )
    p.add_argument("--act-bit", type=int, default=1, help="activation bits of binary-lenet's Q-layers (1..32)")
    p.add_argument("--weight-bit", type=int, default=1, help="weight bits of binary-lenet's Q-layers (1..32)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder holding the IDX files (or mnist/, mnist-5k/, "
        "fashion-mnist/ subfolders); default: $TINYBNN_DATA, then the cache, then download",
    )
    p.add_argument("--epochs", type=int, help="epochs to train (default 10; with --resume: as the checkpoint says)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument(
        "--optimizer",
        default="adam",
        choices=["adam", "sgd", "bop"],
        help="adam (default), sgd, or bop: Bop flips the binary weights, Adam trains the rest",
    )
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3 adam and bop's Adam, 0.1 sgd)")
    p.add_argument("--bop-gamma", type=float, default=1e-4, help="Bop's adaptivity rate (default 1e-4)")
    p.add_argument("--bop-tau", type=float, default=1e-8, help="Bop's flip threshold (default 1e-8)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument(
        "--schedule",
        default="cosine",
        choices=["constant", "cosine", "step"],
        help="learning-rate schedule over the epochs (default: cosine)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-limit", type=int, metavar="N", help="train on N images drawn with the seed")
    p.add_argument("--test-limit", type=int, metavar="N", help="evaluate on the first N test images")
    p.add_argument(
        "--out",
        type=Path,
        help="where to save the model (default: model.npz; with --resume: "
        "the model of the checkpoint, run.npz for run.ckpt.npz); the checkpoint goes beside it "
        "as MODEL.ckpt.npz",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="CHECKPOINT",
        help="continue a run from its checkpoint (MODEL.ckpt.npz), which keeps being updated",
    )
    p.add_argument(
        "--diagnostics",
        action="store_true",
        help="record per binary layer and epoch the weights' flip ratio, the share of latent weights "
        "at the clipping bound, of sign inputs outside the straight-through window and of +1 "
        "activations, in the training log (tinybnn show diagnostics draws them)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite --out or its checkpoint even if they are not tinybnn files of that kind",
    )
    p.set_defaults(handler=command_train)


def command_train(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .progress import Progress
    from .recipe import RunSettings, run
    from .training import model_path_of

    checkpoint, out = None, args.out if args.out is not None else Path("model.npz")
    if args.resume is not None:
        out = args.out if args.out is not None else model_path_of(args.resume)
        if out is None:
            raise ArgumentError(
                f"--resume {args.resume}: not named MODEL.ckpt.npz, so the model's name is "
                "unknown; give --out MODEL.npz (the checkpoint then goes to MODEL.ckpt.npz)"
            )
        checkpoint = load_checkpoint(args.resume)
        settings = RunSettings.from_checkpoint(checkpoint)
        if args.epochs is not None:  # train longer (or shorter) than first planned
            settings.epochs = args.epochs
        settings.diagnostics = settings.diagnostics or args.diagnostics
    else:
        lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 1e-3)
        settings = RunSettings(
            model=args.model,
            act_bit=args.act_bit,
            weight_bit=args.weight_bit,
            dataset=args.dataset,
            epochs=10 if args.epochs is None else args.epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            schedule=args.schedule,
            seed=args.seed,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
            bop_gamma=args.bop_gamma,
            bop_tau=args.bop_tau,
            diagnostics=args.diagnostics,
        )
    run(settings, out, data_dir=args.data, resume=checkpoint, force=args.force, progress=Progress(sys.stdout))
    return 0


# --- convert, summary ---------------------------------------------------------------
def add_convert_parser(commands) -> None:
    p = commands.add_parser(
        "convert",
        help="pack a trained binary model's weights to 1 bit",
        description="Write binarized_MODEL.npz beside MODEL: 1-bit layers packed, "
        "BatchNorm folded, everything else float32.",
    )
    p.add_argument("model", type=Path, help="a model file written by tinybnn train")
    p.add_argument(
        "--out", type=Path, help="where to write (default: binarized_<name> beside the model); never the model itself"
    )
    p.add_argument("--force", action="store_true", help="overwrite --out even if it is not a converted model file")
    p.set_defaults(handler=command_convert)


def command_convert(args: argparse.Namespace) -> int:
    from .convert import convert_file

    before = args.model.stat().st_size if args.model.is_file() else 0
    target = convert_file(args.model, args.out, force=args.force)
    after = target.stat().st_size
    print(f"{args.model}: {before:,} bytes -> {target}: {after:,} bytes ({before / after:.1f}x smaller)")
    return 0


def add_summary_parser(commands) -> None:
    p = commands.add_parser(
        "summary",
        help="per-layer shapes, parameters, memory and MACs of a model",
        description="Summarize a model file (trained or converted).",
    )
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
    p = commands.add_parser(
        "predict",
        help="classify PNG/JPEG images (top-3 classes)",
        description="Classify images with MODEL (trained or converted). If the first "
        "argument is not a .npz file, the binarized LeNet shipped with "
        "tinybnn classifies them as MNIST digits.",
    )
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
            print(
                json.dumps(
                    {
                        "file": result.path,
                        "error": result.error,
                        "top": [{"class": name, "probability": round(p, 6)} for name, p in result.top],
                    }
                )
            )
        elif result.error:
            print(f"{result.path}: error: {result.error}", file=sys.stderr)
        else:
            print(f"{result.path}: " + ", ".join(f"{name} {p:.1%}" for name, p in result.top))
    return 2 if any(result.error for result in results) else 0


# --- bench -----------------------------------------------------------------------
BENCHMARKS = {
    "gemm": "tinybnn.benchmarks.gemm",
    "infer": "tinybnn.benchmarks.infer",
    "peers": "tinybnn.benchmarks.peers",
    "train": "tinybnn.benchmarks.train",
}


def add_bench_parser(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="benchmarks: gemm, infer, peers, train",
        add_help=False,
        description="Run a benchmark; options after its name go to it (tinybnn bench train --help).",
    )
    p.add_argument("benchmark", choices=sorted(BENCHMARKS))
    p.add_argument("options", nargs=argparse.REMAINDER)
    p.set_defaults(handler=command_bench)


def command_bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(BENCHMARKS[args.benchmark]).main(args.options)


# --- serve -----------------------------------------------------------------------
def add_serve_parser(commands) -> None:
    p = commands.add_parser(
        "serve",
        help="the explorer: draw a digit, see its bits, popcounts and prediction",
        description="Serve the explorer page and its JSON API (see docs/explorer.md) "
        "for MODEL, the shipped binarized LeNet by default, until Ctrl-C "
        "(which exits with status 0).",
    )
    p.add_argument("model", nargs="?", type=Path, help="a model file (trained or converted) taking 28x28 images")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every network)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder holding the MNIST test files for 'load a test digit' "
        "(default: $TINYBNN_DATA, then the cache, else 20 digits shipped with tinybnn)",
    )
    p.set_defaults(handler=command_serve)


def command_serve(args: argparse.Namespace) -> int:
    from .explorer.server import serve

    return serve(args.model, args.host, args.port, args.data)


# --- verify: a user's kernel against tinybnn's references --------------------------------
def add_verify_parser(commands) -> None:
    from .kernel_abi import KINDS

    p = commands.add_parser(
        "verify",
        help="check a binary kernel (Python or C) against tinybnn's references",
        description="Run KIND's edge cases, then hypothesis cases, on a kernel; print a "
        "one-line summary (exit 0) or the smallest failing case (exit 1). "
        "Calling conventions: docs/verify.md.",
    )
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=", ".join(KINDS))
    p.add_argument(
        "target", nargs="?", metavar="TARGET", help="a Python kernel: module:function or path/to/file.py:function"
    )
    p.add_argument("--c", metavar="LIB:SYMBOL", help="a C kernel: path/to/lib.so:symbol (run in a child process)")
    p.add_argument(
        "--examples", type=int, default=200, metavar="N", help="hypothesis cases after the edge cases (default 200)"
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the hypothesis cases (default 0)")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a C kernel taking longer on one case counts as hung (default 10)",
    )
    p.set_defaults(handler=command_verify)


def command_verify(args: argparse.Namespace) -> int:
    if (args.target is None) == (args.c is None):
        raise ArgumentError(
            "verify needs exactly one kernel: TARGET (module:function, file.py:function) or --c lib.so:symbol"
        )
    if args.examples < 0:
        raise ArgumentError(f"--examples must be >= 0, got {args.examples}")
    if not args.timeout > 0:
        raise ArgumentError(f"--timeout must be > 0, got {args.timeout}")
    try:
        from .testing import load_target, run_check
    except ImportError as error:
        raise ArgumentError(f"tinybnn verify needs hypothesis ({error}); pip install 'tinybnn[test]'") from None

    kernel = load_target(args.c or args.target, args.kind, c=args.c is not None, timeout=args.timeout)
    try:
        report = run_check(args.kind, kernel, examples=args.examples, seed=args.seed)
    finally:
        kernel.close()
    print(report)
    return 0 if report.ok else 1


def add_vectors_parser(commands) -> None:
    p = commands.add_parser(
        "vectors",
        help="golden vectors of every layer, to check a device port against",
        description="tinybnn vectors MODEL --images N --out DIR: run MODEL on the first N test "
        "images and write every layer's input and output (float32, and packed "
        "bits for binary layers) with a JSON manifest. tinybnn vectors check DIR "
        "OTHER_DIR: name the first layer and element where OTHER_DIR differs.",
    )
    p.add_argument("paths", nargs="+", metavar="MODEL | check DIR OTHER_DIR")
    p.add_argument("--images", type=int, default=10, metavar="N", help="test images to run (default 10)")
    p.add_argument("--out", type=Path, metavar="DIR", help="the new folder to write")
    p.add_argument(
        "--dataset",
        choices=["mnist", "fashion-mnist"],
        help="whose test images (default: the one the model was trained on, else mnist)",
    )
    p.add_argument("--data", metavar="DIR", help="folder holding the IDX files (as for tinybnn train)")
    p.set_defaults(handler=command_vectors)


def command_vectors(args: argparse.Namespace) -> int:
    from . import vectors

    if args.paths[0] == "check":
        if len(args.paths) != 3:
            raise ArgumentError("usage: tinybnn vectors check DIR OTHER_DIR")
        difference = vectors.compare_vectors(args.paths[1], args.paths[2])
        if difference is None:
            print(
                f"{args.paths[2]}: every file agrees with {args.paths[1]} (floats within rtol "
                f"{vectors.FLOAT_RTOL:g}, atol {vectors.FLOAT_ATOL:g}; bits exactly)"
            )
            return 0
        print(f"{args.paths[2]}: {difference}")
        return 1
    if len(args.paths) != 1 or args.out is None:
        raise ArgumentError("usage: tinybnn vectors MODEL --images N --out DIR, or tinybnn vectors check DIR OTHER_DIR")
    from .data.mnist import load_dataset, to_float_nchw
    from .serialization import load_model

    loaded = load_model(args.paths[0])
    training = loaded.metadata.get("training")
    dataset = args.dataset or (training.get("dataset") if isinstance(training, dict) else None) or "mnist"
    if loaded.input_shape != (1, 28, 28):
        raise ArgumentError(f"{args.paths[0]}: takes input {loaded.input_shape}; vectors uses 28x28 test images")
    data = load_dataset(dataset, data_dir=args.data)
    if not 1 <= args.images <= len(data.test_images):
        raise ArgumentError(f"--images must be from 1 to {len(data.test_images)}, got {args.images}")
    manifest = vectors.write_vectors(
        loaded.model,
        to_float_nchw(data.test_images[: args.images]),
        args.out,
        labels=data.test_labels[: args.images],
        model_name=Path(args.paths[0]).name,
    )
    layers = manifest["layers"]
    files = sum(len(layer["files"]) + len(layer["arrays"]) for layer in layers)
    print(
        f"{args.out}: {args.images} {dataset} test images through {len(layers)} layers "
        f"({sum(layer['binary'] for layer in layers)} binary): manifest.json and {files} raw files"
    )
    return 0


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
    add_serve_parser(commands)
    show.add_parser(commands)
    add_verify_parser(commands)
    add_vectors_parser(commands)
    export_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()  # imports numpy for some subcommands: Ctrl-C may land here too
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("tinybnn: interrupted", file=sys.stderr)
        return EXIT_STATUS
    escaping = _escape_unencodable(sys.stdout)
    try:
        # bench keeps KeyboardInterrupt: its workers are child processes that subprocess ends with it;
        # serve too: it stops its server (closing the socket) and says so in one line
        with contextlib.nullcontext() if args.command in ("bench", "serve") else exit_on_interrupt():
            status = args.handler(args)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
            return status
    except TinyBNNError as error:
        print(f"tinybnn: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # tinybnn predict ... | head -1: the reader has all it wanted
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a C program in the same place
    except KeyboardInterrupt as interrupt:
        print(f"tinybnn: {interrupt}" if str(interrupt) else "tinybnn: interrupted", file=sys.stderr)
        return EXIT_STATUS
    except SystemError as error:  # a KeyboardInterrupt raised while a Numba function ran
        if not isinstance(error.__context__ or error.__cause__, KeyboardInterrupt):
            raise
        print("tinybnn: interrupted", file=sys.stderr)
        return EXIT_STATUS
    finally:
        escaping()


def _escape_unencodable(stream) -> Callable[[], None]:
    """Make ``stream`` write what its encoding cannot hold as backslash escapes (a file name with
    undecodable bytes, printed to a strict ASCII or UTF-8 stdout); return how to undo it."""
    errors = getattr(stream, "errors", None)
    if errors is None or not hasattr(stream, "reconfigure"):
        return lambda: None
    stream.reconfigure(errors="backslashreplace")
    return lambda: stream.reconfigure(errors=errors)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
