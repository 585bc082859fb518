"""tinybnn: a small, readable, fully tested engine for binary neural networks."""

__version__ = "0.1.0"
