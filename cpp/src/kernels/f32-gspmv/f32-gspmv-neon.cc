// f32-gspmv, NEON (aarch64, FMA) variants: B = 1, 2, 4, 8.
//
// B = 8, 4: the B weights of a nonzero are 2 or 1 q vectors, times x[col]
// (fmla by scalar); B = 2: one d vector per nonzero; B = 1: four consecutive
// nonzeros per q vector, their x values loaded lane by lane. Four (B <= 4) or
// two (B = 8) nonzeros in flight in separate partial sums, which are added at
// the end of the row (a fixed pattern: results depend only on the row).
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/simd-neon.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

inline float32x4_t clampq(float32x4_t v, float lo, float hi) {
  return vminq_f32(vmaxq_f32(v, vdupq_n_f32(lo)), vdupq_n_f32(hi));
}

void gspmv8(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float32x4_t a0 = vld1q_f32(w), a1 = vld1q_f32(w + 4);
    float32x4_t b0 = vdupq_n_f32(0.0f), b1 = b0;
    w += 8;
    uint32_t n = nnz[r];
    for (; n >= 2; n -= 2) {
      const float x0 = x[col[0]], x1 = x[col[1]];
      a0 = vfmaq_n_f32(a0, vld1q_f32(w), x0);
      a1 = vfmaq_n_f32(a1, vld1q_f32(w + 4), x0);
      b0 = vfmaq_n_f32(b0, vld1q_f32(w + 8), x1);
      b1 = vfmaq_n_f32(b1, vld1q_f32(w + 12), x1);
      w += 16;
      col += 2;
    }
    if (n) {
      const float x0 = x[col[0]];
      a0 = vfmaq_n_f32(a0, vld1q_f32(w), x0);
      a1 = vfmaq_n_f32(a1, vld1q_f32(w + 4), x0);
      w += 8;
      col += 1;
    }
    vst1q_f32(y + r * 8, clampq(vaddq_f32(a0, b0), min, max));
    vst1q_f32(y + r * 8 + 4, clampq(vaddq_f32(a1, b1), min, max));
  }
}

void gspmv4(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float32x4_t a0 = vld1q_f32(w), a1 = vdupq_n_f32(0.0f), a2 = a1, a3 = a1;
    w += 4;
    uint32_t n = nnz[r];
    for (; n >= 4; n -= 4) {
      a0 = vfmaq_n_f32(a0, vld1q_f32(w), x[col[0]]);
      a1 = vfmaq_n_f32(a1, vld1q_f32(w + 4), x[col[1]]);
      a2 = vfmaq_n_f32(a2, vld1q_f32(w + 8), x[col[2]]);
      a3 = vfmaq_n_f32(a3, vld1q_f32(w + 12), x[col[3]]);
      w += 16;
      col += 4;
    }
    if (n & 2) {
      a0 = vfmaq_n_f32(a0, vld1q_f32(w), x[col[0]]);
      a1 = vfmaq_n_f32(a1, vld1q_f32(w + 4), x[col[1]]);
      w += 8;
      col += 2;
    }
    if (n & 1) {
      a2 = vfmaq_n_f32(a2, vld1q_f32(w), x[col[0]]);
      w += 4;
      col += 1;
    }
    vst1q_f32(y + r * 4, clampq(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)), min, max));
  }
}

void gspmv2(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  const float32x2_t vmin = vdup_n_f32(min), vmax = vdup_n_f32(max);
  for (size_t r = 0; r < block_rows; ++r) {
    float32x2_t a0 = vld1_f32(w), a1 = vdup_n_f32(0.0f), a2 = a1, a3 = a1;
    w += 2;
    uint32_t n = nnz[r];
    for (; n >= 4; n -= 4) {
      a0 = vfma_n_f32(a0, vld1_f32(w), x[col[0]]);
      a1 = vfma_n_f32(a1, vld1_f32(w + 2), x[col[1]]);
      a2 = vfma_n_f32(a2, vld1_f32(w + 4), x[col[2]]);
      a3 = vfma_n_f32(a3, vld1_f32(w + 6), x[col[3]]);
      w += 8;
      col += 4;
    }
    if (n & 2) {
      a0 = vfma_n_f32(a0, vld1_f32(w), x[col[0]]);
      a1 = vfma_n_f32(a1, vld1_f32(w + 2), x[col[1]]);
      w += 4;
      col += 2;
    }
    if (n & 1) {
      a2 = vfma_n_f32(a2, vld1_f32(w), x[col[0]]);
      w += 2;
      col += 1;
    }
    const float32x2_t s = vadd_f32(vadd_f32(a0, a1), vadd_f32(a2, a3));
    vst1_f32(y + r * 2, vmin_f32(vmax_f32(s, vmin), vmax));
  }
}

// x[col[0..3]] in lanes 0..3.
inline float32x4_t gather4(const float* x, const uint16_t* col) {
  float32x4_t v = vld1q_dup_f32(x + col[0]);
  v = vld1q_lane_f32(x + col[1], v, 1);
  v = vld1q_lane_f32(x + col[2], v, 2);
  return vld1q_lane_f32(x + col[3], v, 3);
}

void gspmv1(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float s = *w++;  // bias, then the last n % 4 nonzeros
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    uint32_t n = nnz[r];
    for (; n >= 8; n -= 8) {
      a0 = vfmaq_f32(a0, vld1q_f32(w), gather4(x, col));
      a1 = vfmaq_f32(a1, vld1q_f32(w + 4), gather4(x, col + 4));
      w += 8;
      col += 8;
    }
    if (n & 4) {
      a0 = vfmaq_f32(a0, vld1q_f32(w), gather4(x, col));
      w += 4;
      col += 4;
    }
    for (n &= 3; n != 0; --n) s += *w++ * x[*col++];
    const float t = vaddvq_f32(vaddq_f32(a0, a1)) + s;
    y[r] = std::min(std::max(t, min), max);
  }
}

}  // namespace

void sde_f32_gspmv_ukernel_1__neon(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv1(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_2__neon(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv2(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_4__neon(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv4(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_8__neon(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv8(block_rows, x, w, col, nnz, y, min, max);
}

}  // namespace sde
