// Portable depthwise CHW kernels (one channel), 3x3/5x5 at stride 1/2.
#include <algorithm>

#include "kernels/ukernels.h"

namespace sde {
namespace {

template <int K, int S>
void dwconv_scalar(size_t out_h, size_t out_w, const float* in, size_t in_stride,
                   const float* w, float bias, float* out, size_t out_stride, float min,
                   float max) {
  float wk[K * K];
  for (int i = 0; i < K * K; ++i) wk[i] = w[i];
  for (size_t oy = 0; oy < out_h; ++oy) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = in + (oy * S + ky) * in_stride;
    float* o = out + oy * out_stride;
    for (size_t ox = 0; ox < out_w; ++ox) {
      float acc = bias;
      for (int ky = 0; ky < K; ++ky) {
        const float* p = rows[ky] + ox * S;
        for (int kx = 0; kx < K; ++kx) acc += wk[ky * K + kx] * p[kx];
      }
      o[ox] = std::min(std::max(acc, min), max);
    }
  }
}

}  // namespace

#define SDE_DEFINE(fn, K, S)                                                              \
  void fn(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w, \
          float bias, float* out, size_t out_stride, float min, float max) {             \
    dwconv_scalar<K, S>(out_h, out_w, in, in_stride, w, bias, out, out_stride, min, max); \
  }
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s1__scalar, 3, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s2__scalar, 3, 2)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s1__scalar, 5, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s2__scalar, 5, 2)
#undef SDE_DEFINE

}  // namespace sde
