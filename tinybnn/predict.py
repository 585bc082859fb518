"""Classifying image files: MNIST-style preprocessing with Pillow, then the model.

MNIST digits are white on black, fitted into a 20x20 box (keeping their
aspect ratio) and placed in a 28x28 image so that their centre of mass is
in the middle. :func:`mnist_style` does the same to any PNG or JPEG:

1. any mode becomes 8-bit grey; transparent pixels count as the background
   (a digit drawn on a transparent canvas is composited onto white);
2. a light background (the mean of the border pixels above mid-grey) is
   inverted, so the digit is light on dark;
3. the digit is cropped to the bounding box of pixels above 20% of the
   brightest, scaled so that its longer side is 20 pixels, and pasted into
   a black 28x28 image with its centre of mass at the centre;
4. values become float32 in [0, 1], stretched so that the brightest pixel
   is 1 (MNIST's strokes are saturated; a photo's ink rarely is).

An image is refused (a :class:`~tinybnn.errors.DataFileError` for that file
only; the other files are still classified) when its header declares more
than :data:`MAX_PIXELS` = 4096 x 4096 pixels, checked before a pixel is
decoded: a digit needs 28 x 28, and a 100 KB PNG can declare 30000 x 30000
(a "decompression bomb", 900 million pixels). Pillow's own
DecompressionBombWarning and DecompressionBombError become that file's error too.

A shipped model (``tinybnn/assets/binarized_lenet_mnist.npz``, trained by
``scripts/train_shipped_model.py``) classifies digits on a fresh install.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .autograd import Tensor, no_grad, softmax
from .data import DATASETS
from .errors import DataFileError
from .layers import Module

#: the most pixels an image may declare (a phone photo has 12 million; a digit needs 784)
MAX_PIXELS = 4096 * 4096
SHIPPED_MODEL = Path(__file__).with_name("assets") / "binarized_lenet_mnist.npz"


@dataclass
class Prediction:
    """The top classes of one image, or why it could not be classified."""

    path: str
    top: list[tuple[str, float]]
    error: str | None = None


def open_grey(path: str | Path) -> Image.Image:
    """The image at ``path`` as 8-bit grey, transparency composited onto white."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decoded_grey(path)
    except UnidentifiedImageError:
        raise DataFileError(f"{path}: not an image Pillow can read (PNG, JPEG, ...)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise DataFileError(f"{path}: refused as a decompression bomb ({error})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise DataFileError(f"{path}: damaged image ({error})") from None


def _decoded_grey(path: Path) -> Image.Image:
    """``open_grey``'s decoding, after the declared size is checked against MAX_PIXELS."""
    with Image.open(path) as opened:
        width, height = opened.size
        if width * height > MAX_PIXELS:
            raise DataFileError(
                f"{path}: the image declares {width} x {height} pixels, more than the limit "
                f"of {MAX_PIXELS:,} (4096 x 4096) for a digit"
            )
        opened.load()
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("L")
        return image.convert("L")


def mnist_style(image: Image.Image, size: int = 28, box: int = 20) -> np.ndarray:
    """A grey image as an MNIST digit: float32 (size, size) in [0, 1], light on dark, centred."""
    pixels = np.asarray(image, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.mean() > 127.5:
        pixels = 255.0 - pixels
    if pixels.max() <= 0:
        return np.zeros((size, size), np.float32)
    rows, cols = np.nonzero(pixels > 0.2 * pixels.max())
    digit = pixels[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = digit.shape
    scale = box / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(
        Image.fromarray(digit.astype(np.uint8)).resize(new_size, Image.Resampling.LANCZOS), dtype=np.float32
    )
    canvas = np.zeros((size, size), np.float32)
    total = resized.sum()
    ys, xs = np.indices(resized.shape)
    cy, cx = ((ys * resized).sum() / total, (xs * resized).sum() / total) if total > 0 else (0.0, 0.0)
    top = int(np.clip(round(size / 2 - cy), 0, size - resized.shape[0]))
    left = int(np.clip(round(size / 2 - cx), 0, size - resized.shape[1]))
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = np.maximum(resized, 0)
    return np.clip(canvas / canvas.max(), 0.0, 1.0) if canvas.max() > 0 else canvas


def load_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` as an MNIST-style float32 (28, 28) array."""
    return mnist_style(open_grey(path))


def class_labels(metadata: dict, classes: int) -> list[str]:
    """Names of the classes of a model trained on ``metadata["training"]["dataset"]``, else "0", "1", ..."""
    training = metadata.get("training")
    dataset = training.get("dataset") if isinstance(training, dict) else None
    names = list(DATASETS[dataset].class_names) if dataset in DATASETS else []
    return names if len(names) == classes else [str(k) for k in range(classes)]


def probabilities(model: Module, images: np.ndarray) -> np.ndarray:
    """Softmax of the logits of ``images`` (N, 28, 28) in evaluation mode."""
    model.eval()
    with no_grad():
        return softmax(model(Tensor(images[:, None].astype(np.float32))).data)


def predict_files(model: Module, paths: list[str], metadata: dict | None = None, top: int = 3) -> list[Prediction]:
    """Top-``top`` classes for each file; a file that cannot be read gets its error instead.

    Classes are named after the dataset in the model's ``metadata`` (see :func:`class_labels`)."""
    results: list[Prediction | None] = [None] * len(paths)
    images, where = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path))
            where.append(i)
        except DataFileError as error:
            results[i] = Prediction(str(path), [], str(error))
    if images:
        probs = probabilities(model, np.stack(images))
        labels = class_labels(metadata or {}, probs.shape[1])
        for i, p in zip(where, probs):
            best = np.argsort(-p, kind="stable")[:top]
            results[i] = Prediction(str(paths[i]), [(labels[k], float(p[k])) for k in best])
    return [result for result in results if result is not None]  # every path has its result by now
