"""tinybnn's packed binary LeNet against ONNX Runtime and Larq Compute Engine;
see tinybnn/benchmarks/peers.py and docs/peers.md.

    python scripts/bench_peers.py --data ../shared/datasets --model binary-lenet.npz \
        --float-model lenet.npz --ort-python ORT_VENV/bin/python --lce-python LCE_VENV/bin/python
"""

import sys

from tinybnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "peers", *sys.argv[1:]]))
