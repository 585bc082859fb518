/* Deliberately wrong kernels with tinybnn's C calling convention, for tests/test_verify.py.
 * Each is the correct kernel of docs/examples/xnor_gemm.c with one classic mistake. */
#include <stdint.h>
#include <stdlib.h>

/* Register tiles of 4 rows of a, and the remainder rows (m % 4) forgotten. */
void xnor_rows_skipped(const uint64_t *a, const uint64_t *b, int32_t *out,
                       int64_t m, int64_t n, int64_t words, int64_t k)
{
    for (int64_t i = 0; i + 4 <= m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t differ = 0;
            for (int64_t w = 0; w < words; w++)
                differ += __builtin_popcountll(a[i * words + w] ^ b[j * words + w]);
            out[i * n + j] = (int32_t)(k - 2 * differ);
        }
}

/* A 16-bit count of differing bits: wraps past 32767. */
void xnor_acc16(const uint64_t *a, const uint64_t *b, int32_t *out,
                int64_t m, int64_t n, int64_t words, int64_t k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int16_t differ = 0;
            for (int64_t w = 0; w < words; w++)
                differ += __builtin_popcountll(a[i * words + w] ^ b[j * words + w]);
            out[i * n + j] = (int32_t)(k - 2 * differ);
        }
}

/* Reads far past the end of a when a row holds more than one word. */
void xnor_crash(const uint64_t *a, const uint64_t *b, int32_t *out,
                int64_t m, int64_t n, int64_t words, int64_t k)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t differ = 0;
            for (int64_t w = 0; w < words; w++)
                differ += __builtin_popcountll(a[i * words + w * (1LL << 40)] ^ b[j * words + w]);
            out[i * n + j] = (int32_t)(k - 2 * differ);
        }
}

/* Aborts when b has more than two rows. */
void xnor_abort(const uint64_t *a, const uint64_t *b, int32_t *out,
                int64_t m, int64_t n, int64_t words, int64_t k)
{
    if (n > 2)
        abort();
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t differ = 0;
            for (int64_t w = 0; w < words; w++)
                differ += __builtin_popcountll(a[i * words + w] ^ b[j * words + w]);
            out[i * n + j] = (int32_t)(k - 2 * differ);
        }
}

/* Never returns. */
void xnor_hang(const uint64_t *a, const uint64_t *b, int32_t *out,
               int64_t m, int64_t n, int64_t words, int64_t k)
{
    for (volatile int forever = 1; forever;)
        ;
}

/* Packs with x > 0: sign(0) taken as -1. */
void pack_sign0(const float *x, uint64_t *out, int64_t rows, int64_t k)
{
    int64_t words = (k + 63) / 64;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t w = 0; w < words; w++)
            out[r * words + w] = 0;
        for (int64_t t = 0; t < k; t++)
            if (x[r * k + t] > 0.0f)
                out[r * words + t / 64] |= 1ULL << (t % 64);
    }
}

/* The correct packing: bit 1 where x >= 0 (-0.0 >= 0 too). */
void pack_bits(const float *x, uint64_t *out, int64_t rows, int64_t k)
{
    int64_t words = (k + 63) / 64;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t w = 0; w < words; w++)
            out[r * words + w] = 0;
        for (int64_t t = 0; t < k; t++)
            if (x[r * k + t] >= 0.0f)
                out[r * words + t / 64] |= 1ULL << (t % 64);
    }
}
