"""Does the compiled XNOR kernel use a vector popcount? Print what LLVM emitted.

    python scripts/check_popcount_asm.py [--show]

Numba's ``inspect_asm`` returns nothing useful for functions loaded from the
on-disk cache, so the kernels are compiled afresh here (without cache) from
their Python source, for this machine's CPU, and the assembly is searched for
``vpopcntq`` (AVX-512 VPOPCNTDQ, 8 words per instruction), ``vpxorq`` on zmm
registers, and scalar ``popcnt``. Exit status 0 if ``vpopcntq`` is there, 1
if not (for instance on a CPU without AVX-512 VPOPCNTDQ, where LLVM falls
back to another sequence: still correct, only slower). ``--show`` prints
the hot loop. Not a unit test: the answer depends on the CPU.
"""

import re
import sys
from pathlib import Path

import numba
import numpy as np
from llvmlite import binding as llvm

try:
    from tinybnn.gemm import xnor
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tinybnn.gemm import xnor
from tinybnn.gemm.bitpack import pack_bits


def fresh_asm(dispatcher, parallel, *args):
    """Assembly of ``dispatcher``'s Python function compiled now, without the disk cache."""
    fresh = numba.njit(parallel=parallel, cache=False)(dispatcher.py_func)
    fresh(*args)
    return fresh.inspect_asm(fresh.signatures[0])


def count(asm, pattern):
    return len(re.findall(pattern, asm, flags=re.MULTILINE))


def hottest_block(asm):
    """The basic block (from one ``.LBB`` label to the next) with the most ``vpopcntq``."""
    blocks = re.split(r"^(?=\.LBB\S*:)", asm, flags=re.MULTILINE)
    block = max(blocks, key=lambda block: block.count("vpopcntq"))
    label = block.split(":", 1)[0]
    lines = []
    for line in block.splitlines():
        lines.append(line)
        if line.strip().startswith("j") and line.strip().endswith(label):
            break  # the jump back to the top of the loop
    return "\n".join(lines)


def main() -> int:
    k = 1600
    a = pack_bits(np.ones((8, k)), pad_words_to=8)
    b = pack_bits(np.ones((8, k)), pad_words_to=8)
    out = np.empty((8, 8), dtype=np.int32)
    print(f"host CPU for LLVM: {llvm.get_host_cpu_name()}; numba {numba.__version__}")
    found = True
    for name, dispatcher, parallel in (
        ("xnor_blocked", xnor._xnor_blocked_kernel, False),
        ("xnor_parallel", xnor._xnor_parallel_kernel, True),
    ):
        asm = fresh_asm(dispatcher, parallel, a, b, k, out)
        vpop_zmm = count(asm, r"^\s*vpopcntq\s+.*%zmm")
        vpop_any = count(asm, r"^\s*vpopcntq\b")
        vpxor_zmm = count(asm, r"^\s*vpxorq\s+.*%zmm")
        scalar = count(asm, r"^\s*popcnt[lq]?\s")
        print(
            f"{name}: vpopcntq on zmm: {vpop_zmm}, vpopcntq (any width): {vpop_any}, "
            f"vpxorq on zmm: {vpxor_zmm}, scalar popcnt: {scalar}"
        )
        found &= vpop_zmm > 0
        if "--show" in sys.argv[1:]:
            print(f"--- {name}: the block with the most vpopcntq (the 4x4 tile's word loop) ---")
            print(hottest_block(asm).rstrip())
    print("vector popcount (vpopcntq) in the kernels: " + ("yes" if found else "NO"))
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
