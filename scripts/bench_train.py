"""Training speed of tinybnn against PyTorch; see tinybnn/benchmarks/train.py.

python scripts/bench_train.py --data ../shared/datasets
"""

import sys

from tinybnn.benchmarks.train import main

if __name__ == "__main__":
    sys.exit(main())
