// Depthwise CHW kernels (one channel), WebAssembly SIMD128: 3x3/5x5 at
// stride 1/2, four output columns per v128.
//
// The K taps of an input row are built from consecutive loads with
// wasm_i32x4_shuffle (stride 1: sliding windows of two vectors; stride 2:
// even/odd deinterleave, then slides). Each kernel row has its own
// accumulator (K independent add chains instead of one K*K deep chain, as
// SIMD128 has no FMA), summed at the end. Loads may run past the last output
// column into the row's 32 floats of slack (see the contract in kernels.h);
// the last partial block is stored lane by lane.
#include <wasm_simd128.h>

#include <cstddef>

#include "kernels/ukernels.h"

namespace sde {
namespace {

// taps[kx] = in[S * (x + i) + kx] for lanes i = 0..3, from p = in + S * x.
template <int K, int S>
inline void row_taps(const float* p, v128_t* taps) {
  if constexpr (S == 1) {
    const v128_t a = wasm_v128_load(p), b = wasm_v128_load(p + 4);
    taps[0] = a;
    taps[1] = wasm_i32x4_shuffle(a, b, 1, 2, 3, 4);
    taps[2] = wasm_i32x4_shuffle(a, b, 2, 3, 4, 5);
    if constexpr (K == 5) {
      taps[3] = wasm_i32x4_shuffle(a, b, 3, 4, 5, 6);
      taps[4] = b;
    }
  } else {
    const v128_t a = wasm_v128_load(p), b = wasm_v128_load(p + 4), c = wasm_v128_load(p + 8);
    const v128_t even = wasm_i32x4_shuffle(a, b, 0, 2, 4, 6);
    const v128_t odd = wasm_i32x4_shuffle(a, b, 1, 3, 5, 7);
    taps[0] = even;
    taps[1] = odd;
    if constexpr (K == 3) {
      taps[2] = wasm_i32x4_shuffle(even, c, 1, 2, 3, 4);
    } else {
      const v128_t d = wasm_v128_load(p + 12);
      const v128_t even2 = wasm_i32x4_shuffle(c, d, 0, 2, 4, 6);
      const v128_t odd2 = wasm_i32x4_shuffle(c, d, 1, 3, 5, 7);
      taps[2] = wasm_i32x4_shuffle(even, even2, 1, 2, 3, 4);
      taps[3] = wasm_i32x4_shuffle(odd, odd2, 1, 2, 3, 4);
      taps[4] = wasm_i32x4_shuffle(even, even2, 2, 3, 4, 5);
    }
  }
}

template <int K, int S>
void dwconv(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w,
            float bias, float* out, size_t out_stride, float min, float max) {
  v128_t wv[K * K];
  for (int i = 0; i < K * K; ++i) wv[i] = wasm_f32x4_splat(w[i]);
  const v128_t vbias = wasm_f32x4_splat(bias);
  const v128_t vmin = wasm_f32x4_splat(min), vmax = wasm_f32x4_splat(max);
  const v128_t vzero = wasm_f32x4_splat(0.0f);
  for (size_t oy = 0; oy < out_h; ++oy) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = in + (oy * S + ky) * in_stride;
    float* o = out + oy * out_stride;
    for (size_t ox = 0; ox < out_w; ox += 4) {
      v128_t acc[K];
      for (int ky = 0; ky < K; ++ky) {
        v128_t taps[K];
        row_taps<K, S>(rows[ky] + S * ox, taps);
        v128_t a = ky == 0 ? vbias : vzero;
        for (int kx = 0; kx < K; ++kx) a = wasm_f32x4_add(a, wasm_f32x4_mul(wv[ky * K + kx], taps[kx]));
        acc[ky] = a;
      }
      v128_t sum = acc[0];
      for (int ky = 1; ky < K; ++ky) sum = wasm_f32x4_add(sum, acc[ky]);
      const v128_t y = wasm_f32x4_pmin(wasm_f32x4_pmax(vmin, sum), vmax);
      const size_t left = out_w - ox;
      if (left >= 4) {
        wasm_v128_store(o + ox, y);
      } else {
        wasm_v128_store32_lane(o + ox, y, 0);
        if (left >= 2) wasm_v128_store32_lane(o + ox + 1, y, 1);
        if (left >= 3) wasm_v128_store32_lane(o + ox + 2, y, 2);
      }
    }
  }
}

}  // namespace

#define SDE_DEFINE(fn, K, S)                                                              \
  void fn(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w, \
          float bias, float* out, size_t out_stride, float min, float max) {             \
    dwconv<K, S>(out_h, out_w, in, in_stride, w, bias, out, out_stride, min, max);        \
  }
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s1__wasmsimd, 3, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s2__wasmsimd, 3, 2)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s1__wasmsimd, 5, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s2__wasmsimd, 5, 2)
#undef SDE_DEFINE

}  // namespace sde
