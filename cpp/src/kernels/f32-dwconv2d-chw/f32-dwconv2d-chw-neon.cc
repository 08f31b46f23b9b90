// NEON depthwise CHW kernels (one channel), 3x3/5x5 at stride 1/2.
//
// Each output row is computed 4 pixels per vector, two vectors per step so
// two independent FMA chains are in flight. For stride 1 the K taps of an
// input row are vext shifts of two loaded vectors; for stride 2, vld2q_f32
// splits an input row into even and odd columns and the taps are those and
// their vext shifts. The last 1..7 pixels are computed as whole vectors
// (reading into the 32 floats of slack the contract guarantees) and stored
// piecewise, so exactly out_w columns are written.
#include <arm_neon.h>

#include "kernels/simd-neon.h"

#include "kernels/ukernels.h"

namespace sde {
namespace {

// The K input vectors that tap kx = 0..K-1 sees for output pixels x..x+3 of
// an input row starting at `row` (x = 0 here; the caller offsets `row`).
template <int K, int S>
inline void taps(const float* row, float32x4_t* t) {
  if constexpr (S == 1) {
    const float32x4_t v0 = vld1q_f32(row), v1 = vld1q_f32(row + 4);
    t[0] = v0;
    t[1] = vextq_f32(v0, v1, 1);
    t[2] = vextq_f32(v0, v1, 2);
    if constexpr (K == 5) {
      t[3] = vextq_f32(v0, v1, 3);
      t[4] = v1;
    }
  } else {
    const float32x4x2_t p0 = vld2q_f32(row);      // even: cols 0,2,4,6; odd: 1,3,5,7
    const float32x4x2_t p1 = vld2q_f32(row + 8);  // even: 8,10,12,14;  odd: 9,11,...
    t[0] = p0.val[0];
    t[1] = p0.val[1];
    t[2] = vextq_f32(p0.val[0], p1.val[0], 1);
    if constexpr (K == 5) {
      t[3] = vextq_f32(p0.val[1], p1.val[1], 1);
      t[4] = vextq_f32(p0.val[0], p1.val[0], 2);
    }
  }
}

// Output pixels x..x+3 of one output row: bias + sum over kernel rows, one
// accumulator per pair of kernel rows.
template <int K, int S>
inline float32x4_t pixels4(const float* const* rows, size_t x, const float* wk, float bias) {
  float32x4_t acc0 = vdupq_n_f32(bias), acc1 = vdupq_n_f32(0.0f);
  for (int ky = 0; ky < K; ++ky) {
    float32x4_t t[K];
    taps<K, S>(rows[ky] + x * S, t);
    float32x4_t& acc = (ky & 1) ? acc1 : acc0;
    for (int kx = 0; kx < K; ++kx) acc = vfmaq_n_f32(acc, t[kx], wk[ky * K + kx]);
  }
  return vaddq_f32(acc0, acc1);
}

template <int K, int S>
void dwconv_neon(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w,
                 float bias, float* out, size_t out_stride, float min, float max) {
  float wk[K * K];
  for (int i = 0; i < K * K; ++i) wk[i] = w[i];
  const float32x4_t vmin = vdupq_n_f32(min), vmax = vdupq_n_f32(max);
  for (size_t oy = 0; oy < out_h; ++oy) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = in + (oy * S + ky) * in_stride;
    float* o = out + oy * out_stride;
    size_t x = 0;
    for (; x + 8 <= out_w; x += 8) {
      const float32x4_t y0 = pixels4<K, S>(rows, x, wk, bias);
      const float32x4_t y1 = pixels4<K, S>(rows, x + 4, wk, bias);
      vst1q_f32(o + x, vminq_f32(vmaxq_f32(y0, vmin), vmax));
      vst1q_f32(o + x + 4, vminq_f32(vmaxq_f32(y1, vmin), vmax));
    }
    for (; x < out_w; x += 4) {
      const float32x4_t y = pixels4<K, S>(rows, x, wk, bias);
      store_first(o + x, vminq_f32(vmaxq_f32(y, vmin), vmax), out_w - x);
    }
  }
}

}  // namespace

#define SDE_DEFINE(fn, K, S)                                                              \
  void fn(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w, \
          float bias, float* out, size_t out_stride, float min, float max) {             \
    dwconv_neon<K, S>(out_h, out_w, in, in_stride, w, bias, out, out_stride, min, max);   \
  }
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s1__neon, 3, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s2__neon, 3, 2)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s1__neon, 5, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s2__neon, 5, 2)
#undef SDE_DEFINE

}  // namespace sde
