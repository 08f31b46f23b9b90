// AVX2+FMA depthwise CHW kernels (one channel), 3x3/5x5 at stride 1/2.
//
// 8 output columns per vector. Stride 1 uses unaligned loads at each tap
// offset. Stride 2 loads 16 consecutive inputs and deinterleaves even/odd
// columns; a tap at offset kx is the even (kx even) or odd (kx odd) half of
// the 16 inputs starting at kx rounded down to even. Tiles of up to 4 rows x
// 16 columns give 8 independent accumulators and reuse each input load
// across the output rows it feeds. Reads stay
// within the 32 floats of row slack the contract guarantees; the last partial
// vector of a row is stored in 4/2/1-float pieces.
#include <immintrin.h>

#include "kernels/ukernels.h"
#include "kernels/simd-avx2.h"

namespace sde {
namespace {

#if defined(__clang__)
#define SDE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SDE_UNROLL _Pragma("GCC unroll 32")
#else
#define SDE_UNROLL
#endif

// Stride 2 deinterleaves 16 inputs into even/odd columns with one shuffle
// each. The shuffle leaves the 8 outputs in lane order 0,1,4,5,2,3,6,7; all
// taps share that order, so one cross-lane permute per output vector (at the
// store) restores it.
inline __m256 even_lanes_permuted(__m256 lo, __m256 hi) {
  return _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
}
inline __m256 odd_lanes_permuted(__m256 lo, __m256 hi) {
  return _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
}

inline __m256 unpermute(__m256 v) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

// R output rows x V vectors of 8 columns, starting at output (oy, ox). Each
// loaded input vector feeds every output row it belongs to, and the R*V
// independent accumulators hide the FMA latency. If MASK, the last vector
// of each row holds only `tail` (1..7) columns.
template <int K, int S, int R, int V, bool MASK>
inline void conv_tile(const float* in, size_t in_stride, size_t oy, size_t ox, const __m256* vw,
                      __m256 vbias, float* out, size_t out_stride, __m256 vmin, __m256 vmax,
                      size_t tail) {
  __m256 acc[R][V];
  SDE_UNROLL
  for (int r = 0; r < R; ++r)
    SDE_UNROLL
    for (int v = 0; v < V; ++v) acc[r][v] = vbias;
  SDE_UNROLL
  for (int iy = 0; iy < (R - 1) * S + K; ++iy) {
    const float* row = in + (oy * S + iy) * in_stride + ox * S;
    SDE_UNROLL
    for (int kx = 0; kx < K; kx += S) {
      SDE_UNROLL
      for (int v = 0; v < V; ++v) {
        __m256 x0, x1;  // taps kx and (stride 2) kx + 1
        if (S == 1) {
          x0 = _mm256_loadu_ps(row + v * 8 + kx);
          x1 = x0;
        } else {
          const __m256 lo = _mm256_loadu_ps(row + v * 16 + kx);
          const __m256 hi = _mm256_loadu_ps(row + v * 16 + kx + 8);
          x0 = even_lanes_permuted(lo, hi);
          x1 = kx + 1 < K ? odd_lanes_permuted(lo, hi) : x0;
        }
        SDE_UNROLL
        for (int r = 0; r < R; ++r) {
          const int ky = iy - r * S;
          if (ky < 0 || ky >= K) continue;
          acc[r][v] = _mm256_fmadd_ps(vw[ky * K + kx], x0, acc[r][v]);
          if (S == 2 && kx + 1 < K) acc[r][v] = _mm256_fmadd_ps(vw[ky * K + kx + 1], x1, acc[r][v]);
        }
      }
    }
  }
  SDE_UNROLL
  for (int r = 0; r < R; ++r) {
    float* o = out + (oy + r) * out_stride + ox;
    SDE_UNROLL
    for (int v = 0; v < V; ++v) {
      __m256 y = S == 2 ? unpermute(acc[r][v]) : acc[r][v];
      y = _mm256_min_ps(_mm256_max_ps(y, vmin), vmax);
      if (MASK && v == V - 1) {
        store_first_lanes(o + v * 8, y, tail);
      } else {
        _mm256_storeu_ps(o + v * 8, y);
      }
    }
  }
}

// One band of R output rows across the full width: 16-column tiles, then
// an 8..16 (last vector partial), 8 or 1..7 column remainder.
template <int K, int S, int R>
inline void conv_rows(const float* in, size_t in_stride, size_t oy, size_t out_w, const __m256* vw,
                      __m256 vbias, float* out, size_t out_stride, __m256 vmin, __m256 vmax,
                      size_t tail) {
  size_t ox = 0;
  for (; ox + 16 <= out_w; ox += 16) {
    conv_tile<K, S, R, 2, false>(in, in_stride, oy, ox, vw, vbias, out, out_stride, vmin, vmax, tail);
  }
  const size_t rest = out_w - ox;
  if (rest > 8) {
    conv_tile<K, S, R, 2, true>(in, in_stride, oy, ox, vw, vbias, out, out_stride, vmin, vmax, tail);
  } else if (rest == 8) {
    conv_tile<K, S, R, 1, false>(in, in_stride, oy, ox, vw, vbias, out, out_stride, vmin, vmax, tail);
  } else if (rest > 0) {
    conv_tile<K, S, R, 1, true>(in, in_stride, oy, ox, vw, vbias, out, out_stride, vmin, vmax, tail);
  }
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
  constexpr int kBand = K == 3 ? 4 : 2;  // 5x5 needs its 25 weight registers
  size_t oy = 0;
  for (; oy + kBand <= out_h; oy += kBand) {
    conv_rows<K, S, kBand>(in, in_stride, oy, out_w, vw, vbias, out, out_stride, vmin, vmax, tail);
  }
  for (; oy + 2 <= out_h; oy += 2) {
    conv_rows<K, S, 2>(in, in_stride, oy, out_w, vw, vbias, out, out_stride, vmin, vmax, tail);
  }
  if (oy < out_h) {
    conv_rows<K, S, 1>(in, in_stride, oy, out_w, vw, vbias, out, out_stride, vmin, vmax, tail);
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
