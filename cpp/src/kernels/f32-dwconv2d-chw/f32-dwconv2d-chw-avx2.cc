// AVX2+FMA depthwise CHW kernels (one channel), 3x3/5x5 at stride 1/2.
//
// 8 output columns per vector. Stride 1 uses unaligned loads at each tap
// offset. Stride 2 loads 16 consecutive inputs and deinterleaves even/odd
// columns (shuffle + cross-lane permute); a tap at offset kx is the even
// (kx even) or odd (kx odd) half of the pair starting at 2*(kx/2). Reads stay
// within the 32 floats of row slack the contract guarantees; the last partial
// vector of a row is stored masked.
#include <immintrin.h>

#include "kernels/ukernels.h"

namespace sde {
namespace {

alignas(64) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                            0,  0,  0,  0,  0,  0,  0,  0};

inline __m256 even_lanes(__m256 lo, __m256 hi) {
  const __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline __m256 odd_lanes(__m256 lo, __m256 hi) {
  const __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

template <int K, int S>
inline __m256 conv_block(const float* const* rows, size_t ox, const __m256* vw, __m256 acc) {
  for (int ky = 0; ky < K; ++ky) {
    if (S == 1) {
      const float* p = rows[ky] + ox;
      for (int kx = 0; kx < K; ++kx) {
        acc = _mm256_fmadd_ps(vw[ky * K + kx], _mm256_loadu_ps(p + kx), acc);
      }
    } else {
      const float* p = rows[ky] + 2 * ox;
      for (int kx = 0; kx < K; kx += 2) {
        const __m256 lo = _mm256_loadu_ps(p + kx);
        const __m256 hi = _mm256_loadu_ps(p + kx + 8);
        acc = _mm256_fmadd_ps(vw[ky * K + kx], even_lanes(lo, hi), acc);
        if (kx + 1 < K) acc = _mm256_fmadd_ps(vw[ky * K + kx + 1], odd_lanes(lo, hi), acc);
      }
    }
  }
  return acc;
}

template <int K, int S>
void dwconv_avx2(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w,
                 float bias, float* out, size_t out_stride, float min, float max) {
  __m256 vw[K * K];
  for (int i = 0; i < K * K; ++i) vw[i] = _mm256_set1_ps(w[i]);
  const __m256 vbias = _mm256_set1_ps(bias);
  const __m256 vmin = _mm256_set1_ps(min);
  const __m256 vmax = _mm256_set1_ps(max);
  const size_t tail = out_w % 8;
  const __m256i tail_mask =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - (tail ? tail : 8)));
  for (size_t oy = 0; oy < out_h; ++oy) {
    const float* rows[K];
    for (int ky = 0; ky < K; ++ky) rows[ky] = in + (oy * S + ky) * in_stride;
    float* o = out + oy * out_stride;
    size_t ox = 0;
    for (; ox + 8 <= out_w; ox += 8) {
      __m256 acc = conv_block<K, S>(rows, ox, vw, vbias);
      acc = _mm256_min_ps(_mm256_max_ps(acc, vmin), vmax);
      _mm256_storeu_ps(o + ox, acc);
    }
    if (tail) {
      __m256 acc = conv_block<K, S>(rows, ox, vw, vbias);
      acc = _mm256_min_ps(_mm256_max_ps(acc, vmin), vmax);
      _mm256_maskstore_ps(o + ox, tail_mask, acc);
    }
  }
}

}  // namespace

#define SDE_DEFINE(fn, K, S)                                                              \
  void fn(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w, \
          float bias, float* out, size_t out_stride, float min, float max) {             \
    dwconv_avx2<K, S>(out_h, out_w, in, in_stride, w, bias, out, out_stride, min, max);   \
  }
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s1__avx2, 3, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_3x3s2__avx2, 3, 2)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s1__avx2, 5, 1)
SDE_DEFINE(sde_f32_dwconv2d_chw_ukernel_5x5s2__avx2, 5, 2)
#undef SDE_DEFINE

}  // namespace sde
