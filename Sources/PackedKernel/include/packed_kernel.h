// A float32 matrix product over weights packed once: hand-written because OpenBLAS
// repacks the weights on every call and has no pre-packed interface (see gemm.c).
#ifndef SUNEUNG_PACKED_KERNEL_H
#define SUNEUNG_PACKED_KERNEL_H

/// Rows of the weight matrix in one panel (stored interleaved by input).
#define SUNEUNG_PANEL_ROWS 32

/// 1 when this CPU runs the packed kernel (AVX-512F), else 0.
int suneung_packed_available(void);

/// Packs w (outer × inner, row-major) into ceil(outer / 32) panels of inner × 32 floats:
/// out[p][k][j] = w[p·32 + j][k], zero past the last row.
void suneung_pack(const float *w, int outer, int inner, float *out);

/// y[r][c] = Σ_k x[r][k] · w[c][k] for the columns c of panels firstPanel..<lastPanel;
/// x is rows × inner with rows `strideX` apart, y has rows `strideY` apart.
/// Needs suneung_packed_available().
void suneung_packed_product(const float *x, int rows, int inner, int strideX, const float *packed, int outer,
                            int firstPanel, int lastPanel, float *y, int strideY);

#endif
