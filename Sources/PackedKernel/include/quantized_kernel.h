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

/// The weights' codes: w = d·code + m, code in 0..<16 with d and m per 32 inputs, or
/// one code per byte with d and m per 16 inputs (Q6_K's scales cover 16): in 0..<256,
/// or known to be below 32 (the Q5 types) or 64 (Q6_K), which the AVX2 path sums in
/// fewer steps. The three byte forms share one layout.
enum { SUNEUNG_Q_CODES4 = 0, SUNEUNG_Q_CODES8 = 1, SUNEUNG_Q_CODES5 = 2, SUNEUNG_Q_CODES6 = 3 };

/// The kernels, fastest last; `available` says which this CPU runs.
enum { SUNEUNG_Q_PLAIN = 0, SUNEUNG_Q_AVX2 = 1, SUNEUNG_Q_AVX512VNNI = 2 };
int suneung_q_available(int path);

/// Bytes of one panel-block: 16 rows × 32 codes, then the 16 rows' fp16 scales d and
/// fp16 mins m (per half block for 8-bit codes: d of the first 16 inputs, of the
/// second, then m likewise).
size_t suneung_q_block_bytes(int codes);

/// Writes one row's codes (inner of them), scales and mins (inner / 16 each: for 4-bit
/// codes the two halves of a block must be equal) into its panel; rows write disjoint
/// bytes, so they may be packed in parallel.
void suneung_q_pack_row(int codes, const uint8_t *code, const float *d, const float *m, int inner, int row, uint8_t *packed);

/// The weights of input blocks first..<first+count as float32, one row per output
/// (outer rows of count·32): the strip of W that dx = dy·W needs, with no transposed copy.
void suneung_q_unpack_columns(int codes, const uint8_t *packed, int outer, int inner, int first, int count, float *out);

/// The row's affine 8-bit form, per 16 inputs: d and m rounded to fp16 first, then
/// code = round((w − m) / d) in 0...255 (for float weights, which have no codes).
void suneung_q_requantize_row(const float *w, int inner, uint8_t *code, float *d, float *m);

/// Activations to 8 bits per block of 32: q = round(x / d), d = max|x| / 127, and
/// s = d · Σq over each 16 (for the mins' term; inner / 16 per row). x is rows × inner,
/// rows `strideX` apart.
void suneung_q_quantize(int path, const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s);

/// The same in two parts per row, for products closer to float32's: row 2r of q, d, s
/// holds x's row r quantised as above, row 2r + 1 the remainder x − d·q quantised the
/// same way (about 15 bits in all); a product over the 2·rows rows gives y's row r as
/// the sum of its rows 2r and 2r + 1.
void suneung_q_quantize_two_part(int path, const float *x, int rows, int inner, int strideX, int8_t *q, float *d, float *s);

/// y[r][c] = Σ (d_w·d_x·Σ code·q + m_w·s_x) over blocks (or halves) for the columns of panels
/// firstPanel..<lastPanel, y's rows strideY apart; outer is the number of weight rows.
void suneung_q_product(int path, int codes, const int8_t *q, const float *d, const float *s, int rows, int inner,
                       const uint8_t *packed, int outer, int firstPanel, int lastPanel, float *y, int strideY);

#endif
