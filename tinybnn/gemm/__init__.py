"""GEMM kernels: float reference and fast implementations, bit packing, XNOR GEMMs."""
