"""Inference speed of the converted binary LeNet; see tinybnn/benchmarks/infer.py.

python scripts/bench_infer.py --data ../shared/datasets
"""

import sys

from tinybnn.benchmarks.infer import main

if __name__ == "__main__":
    sys.exit(main())
