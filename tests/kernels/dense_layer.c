/* Recompute a binary dense layer from tinybnn's golden vectors (tests/test_vectors.py):
 *
 *   dense_layer INPUT.f32 WEIGHT_BITS.u64 SCALE.f32 SHIFT.f32 OUT.f32 N D H
 *
 * y[i][j] = (float)(D - 2 popcount(bits(x[i]) XOR w[j])) * scale[j] + shift[j],
 * bits(x) packed here: bit t % 64 of word t / 64 is 1 where x >= 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *slurp(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    void *data = malloc(bytes);
    if (!f || !data || fread(data, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot read %zu bytes from %s\n", bytes, path);
        exit(1);
    }
    fclose(f);
    return data;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s INPUT WEIGHT_BITS SCALE SHIFT OUT N D H\n", argv[0]);
        return 2;
    }
    int64_t n = atoll(argv[6]), d = atoll(argv[7]), h = atoll(argv[8]), words = (d + 63) / 64;
    const float *x = slurp(argv[1], n * d * sizeof(float));
    const uint64_t *w = slurp(argv[2], h * words * sizeof(uint64_t));
    const float *scale = slurp(argv[3], h * sizeof(float));
    const float *shift = slurp(argv[4], h * sizeof(float));
    uint64_t *bits = calloc(words, sizeof(uint64_t));
    float *y = malloc(n * h * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        for (int64_t t = 0; t < words; t++)
            bits[t] = 0;
        for (int64_t t = 0; t < d; t++)
            if (x[i * d + t] >= 0.0f)
                bits[t / 64] |= 1ULL << (t % 64);
        for (int64_t j = 0; j < h; j++) {
            int64_t differ = 0;
            for (int64_t t = 0; t < words; t++)
                differ += __builtin_popcountll(bits[t] ^ w[j * words + t]);
            float dot = (float)(d - 2 * differ);
            y[i * h + j] = dot * scale[j] + shift[j];
        }
    }
    FILE *out = fopen(argv[5], "wb");
    if (!out || fwrite(y, sizeof(float), n * h, out) != (size_t)(n * h)) {
        fprintf(stderr, "cannot write %s\n", argv[5]);
        return 1;
    }
    fclose(out);
    return 0;
}
