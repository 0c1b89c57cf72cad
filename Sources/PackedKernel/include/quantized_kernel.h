// Products over weights kept in 4- or 8-bit codes, with activations quantised to 8 bits
// per block of 32 (as llama.cpp's Q8_0): integer dot products, float32 scales.
// Hand-written because no library offers this layout; see quantized.c.
#ifndef SUNEUNG_QUANTIZED_KERNEL_H
#define SUNEUNG_QUANTIZED_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/// Outputs per panel and inputs per block.
#define SUNEUNG_Q_PANEL 16
#define SUNEUNG_Q_BLOCK 32

/// The weights' codes: w = d·code + m per row and block of 32, code in 0..<16 or 0..<256.
enum { SUNEUNG_Q_CODES4 = 0, SUNEUNG_Q_CODES8 = 1 };

/// The kernels, fastest last; `available` says which this CPU runs.
enum { SUNEUNG_Q_PLAIN = 0, SUNEUNG_Q_AVX2 = 1, SUNEUNG_Q_AVX512VNNI = 2 };
int suneung_q_available(int path);

/// Bytes of one panel-block: 16 rows × 32 codes, then 16 fp16 scales d, then 16 fp16 mins m.
size_t suneung_q_block_bytes(int codes);

/// Writes one row's codes (inner of them), scales and mins (inner / 32 each) into its
/// panel; rows write disjoint bytes, so they may be packed in parallel.
void suneung_q_pack_row(int codes, const uint8_t *code, const float *d, const float *m, int inner, int row, uint8_t *packed);

/// The row's affine 8-bit form, per block of 32: d and m rounded to fp16 first, then
/// code = round((w − m) / d) in 0...255 (for weights without an exact one: Q6_K, floats).
void suneung_q_requantize_row(const float *w, int inner, uint8_t *code, float *d, float *m);

/// Activations to 8 bits per block of 32: q = round(x / d), d = max|x| / 127,
/// s = d · Σq (for the mins' term). x is rows × inner, rows `strideX` apart.
void suneung_q_quantize(int path, const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s);

/// y[r][c] = Σ_blocks (d_w·d_x·Σ code·q + m_w·s_x) for the columns of panels
/// firstPanel..<lastPanel, y's rows strideY apart; outer is the number of weight rows.
void suneung_q_product(int path, int codes, const int8_t *q, const float *d, const float *s, int rows, int inner,
                       const uint8_t *packed, int outer, int firstPanel, int lastPanel, float *y, int strideY);

#endif
