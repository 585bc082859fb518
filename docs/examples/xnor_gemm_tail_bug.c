/* The same XNOR GEMM with a classic bug: it counts agreements with XNOR
 * (~(a ^ b)) over whole words, so the tail bits of the last word, 0 in both
 * operands, count as agreements whenever k is not a multiple of 64.
 *
 * Build: cc -O2 -shared -fPIC docs/examples/xnor_gemm_tail_bug.c -o xnor_gemm_tail_bug.so
 * Check: tinybnn verify xnor-gemm --c ./xnor_gemm_tail_bug.so:xnor_gemm
 */
#include <stdint.h>

void xnor_gemm(const uint64_t *a, const uint64_t *b, int32_t *out,
               int64_t m, int64_t n, int64_t words, int64_t k)
{
    for (int64_t i = 0; i < m; i++) {
        const uint64_t *row = a + i * words;
        for (int64_t j = 0; j < n; j++) {
            const uint64_t *col = b + j * words;
            int64_t agree = 0;
            for (int64_t w = 0; w < words; w++)
                agree += __builtin_popcountll(~(row[w] ^ col[w]));
            out[i * n + j] = (int32_t)(2 * agree - k);   /* BUG: tail bits agreed */
        }
    }
}
