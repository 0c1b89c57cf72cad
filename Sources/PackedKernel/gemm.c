// y = x · Wᵀ with W packed once into panels of 32 rows. OpenBLAS packs both operands
// on every call; for a layer's product over a ~400-token prompt it spends 7% of the
// time in copies and its kernel reaches ~85% of this CPU's FMA peak. Here each weight
// panel is read straight from memory in the kernel's order, and a 12 × 32 block of y
// stays in 24 AVX-512 registers while k runs over the whole inner dimension
// (BENCHMARKS.md has the measured gain; suneung-bench prints it).
#include "packed_kernel.h"
#include <immintrin.h>
#include <stddef.h>

#define PANEL SUNEUNG_PANEL_ROWS
#define BLOCK_ROWS 12
#define CHUNK_ROWS 96

int suneung_packed_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

void suneung_pack(const float *w, int outer, int inner, float *out) {
    int panels = (outer + PANEL - 1) / PANEL;
    for (int p = 0; p < panels; p++) {
        float *panel = out + (size_t)p * inner * PANEL;
        for (int j = 0; j < PANEL; j++) {
            int row = p * PANEL + j;
            const float *source = w + (size_t)row * inner;
            for (int k = 0; k < inner; k++) panel[(size_t)k * PANEL + j] = row < outer ? source[k] : 0;
        }
    }
}

// One block: rows (≤ 12, a constant after inlining) of x times one panel. The masks
// cut the panel's last columns when outer is not a multiple of 32.
__attribute__((target("avx512f"), always_inline))
static inline void block(int rows, int inner, const float *x, int strideX, const float *panel, float *y, int strideY,
                         __mmask16 low, __mmask16 high) {
    __m512 sum[BLOCK_ROWS][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < BLOCK_ROWS; r++) {
        if (r < rows) { sum[r][0] = _mm512_setzero_ps(); sum[r][1] = _mm512_setzero_ps(); }
    }
    for (int k = 0; k < inner; k++) {
        __m512 w0 = _mm512_loadu_ps(panel + (size_t)k * PANEL), w1 = _mm512_loadu_ps(panel + (size_t)k * PANEL + 16);
#pragma clang loop unroll(full)
        for (int r = 0; r < BLOCK_ROWS; r++) {
            if (r < rows) {
                __m512 a = _mm512_set1_ps(x[(size_t)r * strideX + k]);
                sum[r][0] = _mm512_fmadd_ps(a, w0, sum[r][0]);
                sum[r][1] = _mm512_fmadd_ps(a, w1, sum[r][1]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < BLOCK_ROWS; r++) {
        if (r < rows) {
            _mm512_mask_storeu_ps(y + (size_t)r * strideY, low, sum[r][0]);
            _mm512_mask_storeu_ps(y + (size_t)r * strideY + 16, high, sum[r][1]);
        }
    }
}

__attribute__((target("avx512f")))
void suneung_packed_product(const float *x, int rows, int inner, int strideX, const float *packed, int outer,
                            int firstPanel, int lastPanel, float *y, int strideY) {
    // Chunks of rows keep their part of x in L2 while the panels go by.
    for (int first = 0; first < rows; first += CHUNK_ROWS) {
        int end = first + CHUNK_ROWS < rows ? first + CHUNK_ROWS : rows;
        for (int p = firstPanel; p < lastPanel; p++) {
            int columns = outer - p * PANEL < PANEL ? outer - p * PANEL : PANEL;
            __mmask16 low = columns >= 16 ? 0xFFFF : (__mmask16)((1u << columns) - 1);
            __mmask16 high = columns >= 32 ? 0xFFFF : columns > 16 ? (__mmask16)((1u << (columns - 16)) - 1) : 0;
            const float *panel = packed + (size_t)p * inner * PANEL;
            for (int r = first; r < end; r += BLOCK_ROWS) {
                const float *xr = x + (size_t)r * strideX;
                float *yr = y + (size_t)r * strideY + p * PANEL;
                switch (end - r < BLOCK_ROWS ? end - r : BLOCK_ROWS) {
#define ROWS(n) case n: block(n, inner, xr, strideX, panel, yr, strideY, low, high); break;
                ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12)
#undef ROWS
                }
            }
        }
    }
}
