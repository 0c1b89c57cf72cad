// y = x · Wᵀ with W in 4- or 8-bit codes and x quantised to 8 bits per block of 32.
// The weights are repacked once at load into panels of 16 rows: for each block of 32
// inputs, the 16 rows' codes are interleaved four inputs at a time, so one 64-byte load
// holds four inputs of each of the 16 rows, exactly what one `vpdpbusd` (unsigned codes
// × signed activations, four products summed per 32-bit lane) consumes with the four
// activations broadcast. 4-bit codes share a byte: inputs 4i..4i+3 in the low nibble,
// 16+4i..16+4i+3 in the high one. Each block's integer sums are scaled in float32:
//   y += (d_w · d_x) · Σ code·q + m_w · (d_x · Σq),
// per half block for 8-bit codes, whose scales cover 16 inputs so that Q6_K's are
// kept exactly (requantising its 16-input scales to 32 doubled the error to float32).
// Paths: AVX-512 VNNI (`vpdpbusd`), AVX2 (`vpmaddubsw` summed in 16 bits as far as
// the codes' width allows, one `vpmaddwd` per sum; full 8-bit codes split into nibbles
// so that the 16-bit sums cannot saturate), and plain C.
#include "quantized_kernel.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define PANEL SUNEUNG_Q_PANEL
#define QB SUNEUNG_Q_BLOCK
#define ROWS512 8
#define ROWS256 4
#define CHUNK_ROWS 64

static size_t code_bytes(int codes) { return codes == SUNEUNG_Q_CODES4 ? PANEL * QB / 2 : PANEL * QB; }

/// Scales (then mins) per row and block: one, or one per half.
static int scale_count(int codes) { return codes == SUNEUNG_Q_CODES4 ? 1 : 2; }

size_t suneung_q_block_bytes(int codes) { return code_bytes(codes) + 2 * scale_count(codes) * PANEL * sizeof(uint16_t); }

int suneung_q_available(int path) {
    __builtin_cpu_init();
    switch (path) {
    case SUNEUNG_Q_PLAIN: return 1;
    case SUNEUNG_Q_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case SUNEUNG_Q_AVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512vnni");
    default: return 0;
    }
}

static uint16_t to_half(float x) {
    _Float16 h = (_Float16)x;
    uint16_t bits;
    memcpy(&bits, &h, 2);
    return bits;
}

static float from_half(uint16_t bits) {
    _Float16 h;
    memcpy(&h, &bits, 2);
    return (float)h;
}

void suneung_q_pack_row(int codes, const uint8_t *code, const float *d, const float *m, int inner, int row, uint8_t *packed) {
    int blocks = inner / QB, panel = row / PANEL, lane = row % PANEL, halves = scale_count(codes);
    size_t bytes = suneung_q_block_bytes(codes), codeBytes = code_bytes(codes);
    for (int b = 0; b < blocks; b++) {
        uint8_t *block = packed + ((size_t)panel * blocks + b) * bytes;
        const uint8_t *c = code + (size_t)b * QB;
        if (codes == SUNEUNG_Q_CODES4) {
            for (int i = 0; i < 4; i++)
                for (int t = 0; t < 4; t++) block[64 * i + 4 * lane + t] = (uint8_t)((c[4 * i + t] & 15) | (c[16 + 4 * i + t] << 4));
        } else {
            for (int j = 0; j < 8; j++)
                for (int t = 0; t < 4; t++) block[64 * j + 4 * lane + t] = c[4 * j + t];
        }
        for (int h = 0; h < halves; h++) {
            uint16_t scale = to_half(d[2 * b + h]), min = to_half(m[2 * b + h]);
            memcpy(block + codeBytes + 2 * (h * PANEL + lane), &scale, 2);
            memcpy(block + codeBytes + 2 * ((halves + h) * PANEL + lane), &min, 2);
        }
    }
}

void suneung_q_unpack_columns(int codes, const uint8_t *packed, int outer, int inner, int first, int count, float *out) {
    int blocks = inner / QB, halves = scale_count(codes), width = count * QB;
    size_t bytes = suneung_q_block_bytes(codes), codeBytes = code_bytes(codes);
    for (int row = 0; row < outer; row++) {
        int panel = row / PANEL, lane = row % PANEL;
        for (int b = first; b < first + count; b++) {
            const uint8_t *block = packed + ((size_t)panel * blocks + b) * bytes;
            float *o = out + (size_t)row * width + (size_t)(b - first) * QB;
            for (int h = 0; h < halves; h++) {
                uint16_t scale, min;
                memcpy(&scale, block + codeBytes + 2 * (h * PANEL + lane), 2);
                memcpy(&min, block + codeBytes + 2 * ((halves + h) * PANEL + lane), 2);
                float d = from_half(scale), m = from_half(min);
                int span = QB / halves;
                for (int k = h * span; k < (h + 1) * span; k++) {
                    int code;
                    if (codes == SUNEUNG_Q_CODES4) {
                        uint8_t byte = block[64 * ((k % 16) / 4) + 4 * lane + k % 4];
                        code = k < 16 ? byte & 15 : byte >> 4;
                    } else {
                        code = block[64 * (k / 4) + 4 * lane + k % 4];
                    }
                    o[k] = d * (float)code + m;
                }
            }
        }
    }
}

void suneung_q_requantize_row(const float *w, int inner, uint8_t *code, float *d, float *m) {
    for (int g = 0; g < inner / 16; g++) {
        const float *v = w + (size_t)g * 16;
        float low = v[0], high = v[0];
        for (int i = 1; i < 16; i++) {
            low = v[i] < low ? v[i] : low;
            high = v[i] > high ? v[i] : high;
        }
        float mg = from_half(to_half(low)), dg = from_half(to_half((high - low) / 255));
        float inverse = dg > 0 ? 1 / dg : 0;
        for (int i = 0; i < 16; i++) {
            float q = nearbyintf((v[i] - mg) * inverse);
            code[(size_t)g * 16 + i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
        }
        d[g] = dg;
        m[g] = mg;
    }
}

// ---- activations -------------------------------------------------------------------

static void quantize_plain(const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s) {
    int blocks = inner / QB;
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < blocks; b++) {
            const float *v = x + (size_t)r * strideX + b * QB;
            int8_t *out = q + (size_t)r * inner + b * QB;
            float amax = 0;
            for (int i = 0; i < QB; i++) amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
            float scale = amax / 127, inverse = amax > 0 ? 127 / amax : 0;
            int sum[2] = {0, 0};
            for (int i = 0; i < QB; i++) {
                int value = (int)nearbyintf(v[i] * inverse);
                out[i] = (int8_t)value;
                sum[i / 16] += value;
            }
            d[(size_t)r * blocks + b] = scale;
            s[2 * ((size_t)r * blocks + b)] = scale * (float)sum[0];
            s[2 * ((size_t)r * blocks + b) + 1] = scale * (float)sum[1];
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
static void quantize_512(const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s) {
    int blocks = inner / QB;
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < blocks; b++) {
            const float *v = x + (size_t)r * strideX + b * QB;
            __m512 a = _mm512_loadu_ps(v), c = _mm512_loadu_ps(v + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
            float scale = amax / 127, inverse = amax > 0 ? 127 / amax : 0;
            __m512 k = _mm512_set1_ps(inverse);
            // cvtps rounds to nearest even, as nearbyintf does in the default mode.
            __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, k)), qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, k));
            int8_t *out = q + (size_t)r * inner + b * QB;
            _mm_storeu_si128((__m128i *)out, _mm512_cvtepi32_epi8(qa));
            _mm_storeu_si128((__m128i *)(out + 16), _mm512_cvtepi32_epi8(qc));
            d[(size_t)r * blocks + b] = scale;
            s[2 * ((size_t)r * blocks + b)] = scale * (float)_mm512_reduce_add_epi32(qa);
            s[2 * ((size_t)r * blocks + b) + 1] = scale * (float)_mm512_reduce_add_epi32(qc);
        }
    }
}

__attribute__((target("avx2,fma")))
static void quantize_256(const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s) {
    int blocks = inner / QB;
    const __m256 signMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < blocks; b++) {
            const float *v = x + (size_t)r * strideX + b * QB;
            __m256 part[4], top = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                part[i] = _mm256_loadu_ps(v + 8 * i);
                top = _mm256_max_ps(top, _mm256_and_ps(part[i], signMask));
            }
            __m128 half = _mm_max_ps(_mm256_castps256_ps128(top), _mm256_extractf128_ps(top, 1));
            half = _mm_max_ps(half, _mm_movehl_ps(half, half));
            half = _mm_max_ss(half, _mm_movehdup_ps(half));
            float amax = _mm_cvtss_f32(half);
            float scale = amax / 127, inverse = amax > 0 ? 127 / amax : 0;
            __m256 k = _mm256_set1_ps(inverse);
            int32_t values[QB];
            for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *)(values + 8 * i), _mm256_cvtps_epi32(_mm256_mul_ps(part[i], k)));
            int8_t *out = q + (size_t)r * inner + b * QB;
            int sum[2] = {0, 0};
            for (int i = 0; i < QB; i++) {
                out[i] = (int8_t)values[i];
                sum[i / 16] += values[i];
            }
            d[(size_t)r * blocks + b] = scale;
            s[2 * ((size_t)r * blocks + b)] = scale * (float)sum[0];
            s[2 * ((size_t)r * blocks + b) + 1] = scale * (float)sum[1];
        }
    }
}

void suneung_q_quantize(int path, const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s) {
    switch (path) {
    case SUNEUNG_Q_AVX512VNNI: quantize_512(x, rows, inner, strideX, q, d, s); break;
    case SUNEUNG_Q_AVX2: quantize_256(x, rows, inner, strideX, q, d, s); break;
    default: quantize_plain(x, rows, inner, strideX, q, d, s);
    }
}

void suneung_q_quantize_two_part(int path, const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s) {
    int blocks = inner / QB;
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * strideX;
        size_t value = 2 * (size_t)r, remainder = value + 1;
        suneung_q_quantize(path, row, 1, inner, inner, q + value * inner, d + value * blocks, s + 2 * value * blocks);
        for (int b = 0; b < blocks; b++) {
            float rest[QB], step = d[value * blocks + b];
            const int8_t *code = q + value * inner + b * QB;
            for (int k = 0; k < QB; k++) rest[k] = row[b * QB + k] - step * (float)code[k];
            suneung_q_quantize(path, rest, 1, QB, QB, q + remainder * inner + b * QB, d + remainder * blocks + b, s + 2 * (remainder * blocks + b));
        }
    }
}

// ---- products ----------------------------------------------------------------------

static int32_t load32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void product_plain(int codes, const int8_t *q, const float *d, const float *s, int rows, int inner,
                          const uint8_t *packed, int outer, int firstPanel, int lastPanel, float *y, int strideY) {
    int blocks = inner / QB, halves = scale_count(codes);
    size_t bytes = suneung_q_block_bytes(codes), codeBytes = code_bytes(codes);
    for (int p = firstPanel; p < lastPanel; p++) {
        for (int lane = 0; lane < PANEL && p * PANEL + lane < outer; lane++) {
            for (int r = 0; r < rows; r++) {
                float sum = 0;
                for (int b = 0; b < blocks; b++) {
                    const uint8_t *block = packed + ((size_t)p * blocks + b) * bytes;
                    const int8_t *x = q + (size_t)r * inner + b * QB;
                    int dot[2] = {0, 0};
                    for (int k = 0; k < QB; k++) {
                        int code;
                        if (codes == SUNEUNG_Q_CODES4) {
                            int i = (k % 16) / 4, t = k % 4;
                            uint8_t byte = block[64 * i + 4 * lane + t];
                            code = k < 16 ? byte & 15 : byte >> 4;
                        } else {
                            code = block[64 * (k / 4) + 4 * lane + k % 4];
                        }
                        dot[k / 16 * (halves - 1)] += code * x[k];
                    }
                    size_t at = (size_t)r * blocks + b;
                    for (int h = 0; h < halves; h++) {
                        uint16_t scale, min;
                        memcpy(&scale, block + codeBytes + 2 * (h * PANEL + lane), 2);
                        memcpy(&min, block + codeBytes + 2 * ((halves + h) * PANEL + lane), 2);
                        float sums = halves == 2 ? s[2 * at + h] : s[2 * at] + s[2 * at + 1];
                        sum += from_half(scale) * d[at] * (float)dot[h] + from_half(min) * sums;
                    }
                }
                y[(size_t)r * strideY + p * PANEL + lane] = sum;
            }
        }
    }
}

// One block of `rows` (≤ 8, a constant after inlining) rows by one panel of 16 columns.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline))
static inline void block_512(int codes, int rows, int blocks, const int8_t *q, int inner, const float *d, const float *s,
                             const uint8_t *panel, size_t bytes, float *y, int strideY, __mmask16 mask) {
    __m512 sum[ROWS512];
    __m512i dot[ROWS512];
    const __m512i low = _mm512_set1_epi8(0x0F);
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS512; r++) if (r < rows) sum[r] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = panel + (size_t)b * bytes, *scales = block + code_bytes(codes);
        const int8_t *x = q + b * QB;
        if (codes == SUNEUNG_Q_CODES4) {
#pragma clang loop unroll(full)
            for (int r = 0; r < ROWS512; r++) if (r < rows) dot[r] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                __m512i packedCodes = _mm512_loadu_si512(block + 64 * i);
                __m512i lo = _mm512_and_si512(packedCodes, low), hi = _mm512_and_si512(_mm512_srli_epi16(packedCodes, 4), low);
#pragma clang loop unroll(full)
                for (int r = 0; r < ROWS512; r++) {
                    if (r < rows) {
                        dot[r] = _mm512_dpbusd_epi32(dot[r], lo, _mm512_set1_epi32(load32(x + (size_t)r * inner + 4 * i)));
                        dot[r] = _mm512_dpbusd_epi32(dot[r], hi, _mm512_set1_epi32(load32(x + (size_t)r * inner + 16 + 4 * i)));
                    }
                }
            }
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
            __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + 2 * PANEL)));
#pragma clang loop unroll(full)
            for (int r = 0; r < ROWS512; r++) {
                if (r < rows) {
                    size_t at = (size_t)r * blocks + b;
                    sum[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r]), _mm512_mul_ps(dw, _mm512_set1_ps(d[at])), sum[r]);
                    sum[r] = _mm512_fmadd_ps(mw, _mm512_set1_ps(s[2 * at] + s[2 * at + 1]), sum[r]);
                }
            }
        } else {
            // Each half block (16 inputs) with its own scale and min.
#pragma clang loop unroll(full)
            for (int h = 0; h < 2; h++) {
#pragma clang loop unroll(full)
                for (int r = 0; r < ROWS512; r++) if (r < rows) dot[r] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
                for (int j = 4 * h; j < 4 * h + 4; j++) {
                    __m512i w = _mm512_loadu_si512(block + 64 * j);
#pragma clang loop unroll(full)
                    for (int r = 0; r < ROWS512; r++)
                        if (r < rows) dot[r] = _mm512_dpbusd_epi32(dot[r], w, _mm512_set1_epi32(load32(x + (size_t)r * inner + 4 * j)));
                }
                __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + 2 * PANEL * h)));
                __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + 2 * PANEL * (2 + h))));
#pragma clang loop unroll(full)
                for (int r = 0; r < ROWS512; r++) {
                    if (r < rows) {
                        size_t at = (size_t)r * blocks + b;
                        sum[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r]), _mm512_mul_ps(dw, _mm512_set1_ps(d[at])), sum[r]);
                        sum[r] = _mm512_fmadd_ps(mw, _mm512_set1_ps(s[2 * at + h]), sum[r]);
                    }
                }
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS512; r++) if (r < rows) _mm512_mask_storeu_ps(y + (size_t)r * strideY, mask, sum[r]);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static void product_512(int codes, const int8_t *q, const float *d, const float *s, int rows, int inner,
                        const uint8_t *packed, int outer, int firstPanel, int lastPanel, float *y, int strideY) {
    int blocks = inner / QB;
    size_t bytes = suneung_q_block_bytes(codes);
    // Chunks of rows keep their codes in L2 while the panels go by; a panel stays in L1
    // across the chunk's blocks of rows.
    for (int first = 0; first < rows; first += CHUNK_ROWS) {
        int end = first + CHUNK_ROWS < rows ? first + CHUNK_ROWS : rows;
        for (int p = firstPanel; p < lastPanel; p++) {
            int columns = outer - p * PANEL < PANEL ? outer - p * PANEL : PANEL;
            __mmask16 mask = columns == PANEL ? 0xFFFF : (__mmask16)((1u << columns) - 1);
            const uint8_t *panel = packed + (size_t)p * blocks * bytes;
            for (int r = first; r < end; r += ROWS512) {
                const int8_t *xr = q + (size_t)r * inner;
                const float *dr = d + (size_t)r * blocks, *sr = s + 2 * (size_t)r * blocks;
                float *yr = y + (size_t)r * strideY + p * PANEL;
                int n = end - r < ROWS512 ? end - r : ROWS512;
                if (codes == SUNEUNG_Q_CODES4) {
                    switch (n) {
#define ROWS(k) case k: block_512(SUNEUNG_Q_CODES4, k, blocks, xr, inner, dr, sr, panel, bytes, yr, strideY, mask); break;
                    ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8)
#undef ROWS
                    }
                } else {
                    switch (n) {
#define ROWS(k) case k: block_512(SUNEUNG_Q_CODES8, k, blocks, xr, inner, dr, sr, panel, bytes, yr, strideY, mask); break;
                    ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8)
#undef ROWS
                    }
                }
            }
        }
    }
}

// Without VNNI: `vpmaddubsw` sums pairs of u8 × s8 products into 16 bits. A pair of a
// 4-bit code (≤ 15) and an activation (|q| ≤ 127) is at most 3,810, so eight of them
// (a whole block of 4-bit codes, or four steps of one nibble of 8-bit codes) still fit in
// 16 bits: they are added as 16-bit lanes and widened by one `vpmaddwd` per block,
// not per step (the multiplies are the AVX2 path's bottleneck).
__attribute__((target("avx2"), always_inline))
static inline __m256i widen_256(__m256i pairs) {
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// One block of `rows` (≤ 4) rows by half a panel (8 columns, `half` 0 or 1).
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void block_256(int codes, int rows, int blocks, const int8_t *q, int inner, const float *d, const float *s,
                             const uint8_t *panel, size_t bytes, int half, float *y, int strideY, int columns) {
    __m256 sum[ROWS256];
    __m256i pairs[ROWS256], high[ROWS256];
    const __m256i low = _mm256_set1_epi8(0x0F);
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS256; r++) if (r < rows) sum[r] = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        const uint8_t *block = panel + (size_t)b * bytes + 32 * half;
        const uint8_t *scales = panel + (size_t)b * bytes + code_bytes(codes) + 16 * half;
        const int8_t *x = q + b * QB;
        if (codes == SUNEUNG_Q_CODES4) {
#pragma clang loop unroll(full)
            for (int r = 0; r < ROWS256; r++) if (r < rows) pairs[r] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
            for (int i = 0; i < 4; i++) {
                __m256i packedCodes = _mm256_loadu_si256((const __m256i *)(block + 64 * i));
                __m256i lo = _mm256_and_si256(packedCodes, low), hi = _mm256_and_si256(_mm256_srli_epi16(packedCodes, 4), low);
#pragma clang loop unroll(full)
                for (int r = 0; r < ROWS256; r++) {
                    if (r < rows) {
                        __m256i a = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(load32(x + (size_t)r * inner + 4 * i)));
                        __m256i c = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(load32(x + (size_t)r * inner + 16 + 4 * i)));
                        pairs[r] = _mm256_add_epi16(pairs[r], _mm256_add_epi16(a, c));
                    }
                }
            }
            __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)scales));
            __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + 2 * PANEL)));
#pragma clang loop unroll(full)
            for (int r = 0; r < ROWS256; r++) {
                if (r < rows) {
                    size_t at = (size_t)r * blocks + b;
                    sum[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(widen_256(pairs[r])), _mm256_mul_ps(dw, _mm256_set1_ps(d[at])), sum[r]);
                    sum[r] = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[2 * at] + s[2 * at + 1]), sum[r]);
                }
            }
        } else {
            // Each half block (16 inputs, four steps of four) with its own scale and min.
            // Codes below 32 (the Q5 types) keep all four steps' pair sums in 16 bits
            // (4·2·31·127 < 2^15), codes below 64 (Q6_K) two steps in each of two sums;
            // full bytes (Q8_0, requantised floats) go as two nibbles, 16·high + low,
            // each nibble's four steps in 16 bits.
#pragma clang loop unroll(full)
            for (int h = 0; h < 2; h++) {
#pragma clang loop unroll(full)
                for (int r = 0; r < ROWS256; r++) if (r < rows) pairs[r] = high[r] = _mm256_setzero_si256();
#pragma clang loop unroll(full)
                for (int j = 4 * h; j < 4 * h + 4; j++) {
                    __m256i w = _mm256_loadu_si256((const __m256i *)(block + 64 * j));
                    if (codes == SUNEUNG_Q_CODES8) {
                        __m256i lo = _mm256_and_si256(w, low), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
#pragma clang loop unroll(full)
                        for (int r = 0; r < ROWS256; r++) {
                            if (r < rows) {
                                __m256i xv = _mm256_set1_epi32(load32(x + (size_t)r * inner + 4 * j));
                                pairs[r] = _mm256_add_epi16(pairs[r], _mm256_maddubs_epi16(lo, xv));
                                high[r] = _mm256_add_epi16(high[r], _mm256_maddubs_epi16(hi, xv));
                            }
                        }
                    } else {
#pragma clang loop unroll(full)
                        for (int r = 0; r < ROWS256; r++) {
                            if (r < rows) {
                                __m256i product = _mm256_maddubs_epi16(w, _mm256_set1_epi32(load32(x + (size_t)r * inner + 4 * j)));
                                if (codes == SUNEUNG_Q_CODES6 && j % 2 == 1) high[r] = _mm256_add_epi16(high[r], product);
                                else pairs[r] = _mm256_add_epi16(pairs[r], product);
                            }
                        }
                    }
                }
                __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + 2 * PANEL * h)));
                __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + 2 * PANEL * (2 + h))));
#pragma clang loop unroll(full)
                for (int r = 0; r < ROWS256; r++) {
                    if (r < rows) {
                        size_t at = (size_t)r * blocks + b;
                        __m256i dot = codes == SUNEUNG_Q_CODES8 ? _mm256_add_epi32(widen_256(pairs[r]), _mm256_slli_epi32(widen_256(high[r]), 4))
                                    : codes == SUNEUNG_Q_CODES6 ? _mm256_add_epi32(widen_256(pairs[r]), widen_256(high[r]))
                                    : widen_256(pairs[r]);
                        sum[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, _mm256_set1_ps(d[at])), sum[r]);
                        sum[r] = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[2 * at + h]), sum[r]);
                    }
                }
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS256; r++) {
        if (r < rows) {
            if (columns >= 8) {
                _mm256_storeu_ps(y + (size_t)r * strideY, sum[r]);
            } else {
                float out[8];
                _mm256_storeu_ps(out, sum[r]);
                memcpy(y + (size_t)r * strideY, out, sizeof(float) * columns);
            }
        }
    }
}

// block_256 with its rows and codes as constants.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void rows_256(int codes, int n, int blocks, const int8_t *xr, int inner, const float *dr, const float *sr,
                            const uint8_t *panel, size_t bytes, int half, float *yr, int strideY, int columns) {
    switch (n) {
#define ROWS(k) case k: block_256(codes, k, blocks, xr, inner, dr, sr, panel, bytes, half, yr, strideY, columns); break;
    ROWS(1) ROWS(2) ROWS(3) ROWS(4)
#undef ROWS
    }
}

__attribute__((target("avx2,fma,f16c")))
static void product_256(int codes, const int8_t *q, const float *d, const float *s, int rows, int inner,
                        const uint8_t *packed, int outer, int firstPanel, int lastPanel, float *y, int strideY) {
    int blocks = inner / QB;
    size_t bytes = suneung_q_block_bytes(codes);
    for (int first = 0; first < rows; first += CHUNK_ROWS) {
        int end = first + CHUNK_ROWS < rows ? first + CHUNK_ROWS : rows;
        for (int p = firstPanel; p < lastPanel; p++) {
            const uint8_t *panel = packed + (size_t)p * blocks * bytes;
            for (int half = 0; half < 2; half++) {
                int columns = outer - p * PANEL - 8 * half;
                if (columns <= 0) break;
                for (int r = first; r < end; r += ROWS256) {
                    const int8_t *xr = q + (size_t)r * inner;
                    const float *dr = d + (size_t)r * blocks, *sr = s + 2 * (size_t)r * blocks;
                    float *yr = y + (size_t)r * strideY + p * PANEL + 8 * half;
                    int n = end - r < ROWS256 ? end - r : ROWS256;
                    switch (codes) {
#define CODES(c) case c: rows_256(c, n, blocks, xr, inner, dr, sr, panel, bytes, half, yr, strideY, columns); break;
                    CODES(SUNEUNG_Q_CODES4) CODES(SUNEUNG_Q_CODES5) CODES(SUNEUNG_Q_CODES6) CODES(SUNEUNG_Q_CODES8)
#undef CODES
                    }
                }
            }
        }
    }
}

void suneung_q_product(int path, int codes, const int8_t *q, const float *d, const float *s, int rows, int inner,
                       const uint8_t *packed, int outer, int firstPanel, int lastPanel, float *y, int strideY) {
    switch (path) {
    case SUNEUNG_Q_AVX512VNNI: product_512(codes, q, d, s, rows, inner, packed, outer, firstPanel, lastPanel, y, strideY); break;
    case SUNEUNG_Q_AVX2: product_256(codes, q, d, s, rows, inner, packed, outer, firstPanel, lastPanel, y, strideY); break;
    default: product_plain(codes, q, d, s, rows, inner, packed, outer, firstPanel, lastPanel, y, strideY);
    }
}
