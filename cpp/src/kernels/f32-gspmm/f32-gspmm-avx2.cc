// f32-gspmm, AVX2+FMA variants: 32x1, 32x2, 16x4, 8x8 (B * pixels / 8 = 4..8
// ymm accumulators, enough to hide the FMA latency; the loaded X vectors are
// reused by all B channels of a block).
//
// Pixel remainder: narrower tiles of 16, 8 (ymm), 4, 2 (xmm) and a 1-pixel
// tile that vectorises across the B channels instead. All of them keep the
// same per-element order (bias, then FMAs in stream order), so results are
// bitwise independent of how the pixels are split into tiles.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/f32-gspmm/f32-gspmm.h"

namespace sde {
namespace {

inline const float* input_row(const char* input, size_t input_stride, int32_t r) {
  return reinterpret_cast<const float*>(input + size_t(uint32_t(r)) * input_stride);
}

// NV ymm vectors (8 * NV pixels) x B channels.
template <size_t B, size_t NV>
void tile_ymm(size_t block_rows, const char* input, size_t input_stride, const float* w,
              const int32_t* row_index, const uint32_t* nnz, char* output,
              size_t output_stride, float min, float max) {
  const __m256 vmin = _mm256_set1_ps(min), vmax = _mm256_set1_ps(max);
  for (size_t r = 0; r < block_rows; ++r) {
    __m256 acc[B][NV];
    for (size_t b = 0; b < B; ++b) {
      const __m256 vb = _mm256_broadcast_ss(w + b);
      for (size_t v = 0; v < NV; ++v) acc[b][v] = vb;
    }
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float* x = input_row(input, input_stride, *row_index++);
      __m256 xv[NV];
      for (size_t v = 0; v < NV; ++v) xv[v] = _mm256_loadu_ps(x + 8 * v);
      for (size_t b = 0; b < B; ++b) {
        const __m256 wb = _mm256_broadcast_ss(w + b);
        for (size_t v = 0; v < NV; ++v) acc[b][v] = _mm256_fmadd_ps(wb, xv[v], acc[b][v]);
      }
      w += B;
    }
    for (size_t b = 0; b < B; ++b) {
      float* o = reinterpret_cast<float*>(output + (r * B + b) * output_stride);
      for (size_t v = 0; v < NV; ++v) {
        _mm256_storeu_ps(o + 8 * v, _mm256_min_ps(_mm256_max_ps(acc[b][v], vmin), vmax));
      }
    }
  }
}

// One xmm of T = 4 or 2 pixels x B channels.
template <size_t B, size_t T>
void tile_xmm(size_t block_rows, const char* input, size_t input_stride, const float* w,
              const int32_t* row_index, const uint32_t* nnz, char* output,
              size_t output_stride, float min, float max) {
  const __m128 vmin = _mm_set1_ps(min), vmax = _mm_set1_ps(max);
  for (size_t r = 0; r < block_rows; ++r) {
    __m128 acc[B];
    for (size_t b = 0; b < B; ++b) acc[b] = _mm_broadcast_ss(w + b);
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float* x = input_row(input, input_stride, *row_index++);
      const __m128 xv = T == 4 ? _mm_loadu_ps(x)
                               : _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(x)));
      for (size_t b = 0; b < B; ++b) acc[b] = _mm_fmadd_ps(_mm_broadcast_ss(w + b), xv, acc[b]);
      w += B;
    }
    for (size_t b = 0; b < B; ++b) {
      float* o = reinterpret_cast<float*>(output + (r * B + b) * output_stride);
      const __m128 y = _mm_min_ps(_mm_max_ps(acc[b], vmin), vmax);
      if (T == 4) {
        _mm_storeu_ps(o, y);
      } else {
        _mm_store_sd(reinterpret_cast<double*>(o), _mm_castps_pd(y));
      }
    }
  }
}

// One pixel: the B weights of a nonzero are one vector, the pixel is broadcast.
template <size_t B>
void tile_1(size_t block_rows, const char* input, size_t input_stride, const float* w,
            const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
            float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    alignas(32) float y[8];
    if constexpr (B == 8) {
      __m256 acc = _mm256_loadu_ps(w);
      w += B;
      for (uint32_t n = nnz[r]; n != 0; --n) {
        const float* x = input_row(input, input_stride, *row_index++);
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_broadcast_ss(x), acc);
        w += B;
      }
      acc = _mm256_min_ps(_mm256_max_ps(acc, _mm256_set1_ps(min)), _mm256_set1_ps(max));
      _mm256_store_ps(y, acc);
    } else {
      auto load_w = [](const float* p) {
        if constexpr (B == 4) return _mm_loadu_ps(p);
        if constexpr (B == 2) return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
        if constexpr (B == 1) return _mm_load_ss(p);
      };
      __m128 acc = load_w(w);
      w += B;
      for (uint32_t n = nnz[r]; n != 0; --n) {
        const float* x = input_row(input, input_stride, *row_index++);
        acc = _mm_fmadd_ps(load_w(w), _mm_broadcast_ss(x), acc);
        w += B;
      }
      acc = _mm_min_ps(_mm_max_ps(acc, _mm_set1_ps(min)), _mm_set1_ps(max));
      _mm_store_ps(y, acc);
    }
    for (size_t b = 0; b < B; ++b) {
      *reinterpret_cast<float*>(output + (r * B + b) * output_stride) = y[b];
    }
  }
}

template <size_t B, size_t MR>
void gspmm(size_t pixels, size_t block_rows, const float* input, size_t input_stride,
           const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,
           size_t output_stride, float min, float max) {
  const char* in = reinterpret_cast<const char*>(input);
  char* out = reinterpret_cast<char*>(output);
  auto advance = [&](size_t t) {
    in += t * sizeof(float);
    out += t * sizeof(float);
  };
  for (; pixels >= MR; pixels -= MR) {
    tile_ymm<B, MR / 8>(block_rows, in, input_stride, weights, row_index, nnz, out,
                        output_stride, min, max);
    advance(MR);
  }
  if constexpr (MR >= 32) {
    if (pixels & 16) {
      tile_ymm<B, 2>(block_rows, in, input_stride, weights, row_index, nnz, out,
                     output_stride, min, max);
      advance(16);
    }
  }
  if constexpr (MR >= 16) {
    if (pixels & 8) {
      tile_ymm<B, 1>(block_rows, in, input_stride, weights, row_index, nnz, out,
                     output_stride, min, max);
      advance(8);
    }
  }
  if (pixels & 4) {
    tile_xmm<B, 4>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
    advance(4);
  }
  if (pixels & 2) {
    tile_xmm<B, 2>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
    advance(2);
  }
  if (pixels & 1) {
    tile_1<B>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride, min,
              max);
  }
}

}  // namespace

#define SDE_GSPMM_AVX2(mr, b)                                                                \
  void sde_f32_gspmm_ukernel_##mr##x##b##__avx2(                                           \
      size_t pixels, size_t block_rows, const float* input, size_t input_stride,           \
      const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,  \
      size_t output_stride, float min, float max) {                                        \
    gspmm<b, mr>(pixels, block_rows, input, input_stride, weights, row_index, nnz, output, \
                 output_stride, min, max);                                                 \
  }
SDE_GSPMM_AVX2(32, 1)
SDE_GSPMM_AVX2(32, 2)
SDE_GSPMM_AVX2(16, 4)
SDE_GSPMM_AVX2(8, 8)
#undef SDE_GSPMM_AVX2

}  // namespace sde
