/* An XNOR GEMM in C with tinybnn's calling convention (docs/verify.md):
 *
 *   a (m, words) and b (n, words): rows of sign bits, 64 to a uint64_t word,
 *   least significant bit first, 1 for +1, 0 for -1, tail bits 0;
 *   out (m, n): out[i][j] = k - 2 popcount(a[i] XOR b[j]), the +-1 dot product.
 *
 * Build: cc -O2 -shared -fPIC docs/examples/xnor_gemm.c -o xnor_gemm.so
 * Check: tinybnn verify xnor-gemm --c ./xnor_gemm.so:xnor_gemm
 */
#include <stdint.h>

void xnor_gemm(const uint64_t *a, const uint64_t *b, int32_t *out,
               int64_t m, int64_t n, int64_t words, int64_t k)
{
    for (int64_t i = 0; i < m; i++) {
        const uint64_t *row = a + i * words;
        for (int64_t j = 0; j < n; j++) {
            const uint64_t *col = b + j * words;
            int64_t differ = 0;   /* 64 bits: no overflow for any k */
            for (int64_t w = 0; w < words; w++)
                differ += __builtin_popcountll(row[w] ^ col[w]);
            /* tail bits are 0 in both operands, so they never differ */
            out[i * n + j] = (int32_t)(k - 2 * differ);
        }
    }
}
