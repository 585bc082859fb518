"""Draw the forward and backward curves of tinybnn's 1-bit quantizers into docs/img/quantizers.png.

    python scripts/draw_quantizers.py [--out docs/img/quantizers.png]

Every curve is computed by the quantizer itself (forward on 801 points of
[-2, 2], backward of a gradient of ones), so the picture shows what the code
does. magnitude_aware_sign's alpha and TWN's threshold are those of the
plotted points (mean |x| = 1 on [-2, 2]).
"""

import argparse
from pathlib import Path

import numpy as np

from tinybnn.autograd import Tensor
from tinybnn.autograd.larq_quantizers import ACTIVATION_QUANTIZERS
from tinybnn.charts import CurvePanel, quantizer_curves_image
from tinybnn.pictures import save_png

TITLES = {
    "det_sign": "det_sign (BinaryNet STE)",
    "approx_sign": "approx_sign (Bi-Real Net)",
    "swish_sign": "swish_sign, beta = 5 (BNN+)",
    "magnitude_aware_sign": "magnitude_aware_sign (alpha = 1)",
    "ste_tern": "ste_tern, threshold 0.05",
    "ste_tern_twn": "ste_tern, TWN threshold 0.7 mean|x|",
    "ste_heaviside": "ste_heaviside",
}


def curve(method: str, x_values: np.ndarray) -> CurvePanel:
    x = Tensor(x_values.reshape(-1, 1), requires_grad=True)  # 801 samples of one channel
    y = ACTIVATION_QUANTIZERS[method](x, 1.0)
    y.sum().backward()
    return CurvePanel(TITLES[method], list(x_values), list(y.data.ravel()), list(x.grad.ravel()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/img/quantizers.png")
    args = parser.parse_args()
    x_values = np.linspace(-2.0, 2.0, 801)
    panels = [curve(method, x_values) for method in TITLES]
    image = quantizer_curves_image(panels, columns=4, title="1-bit quantizers: forward and backward")
    print(save_png(image, args.out))


if __name__ == "__main__":
    main()
