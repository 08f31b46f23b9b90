// f32-gspmm, AVX2+FMA variants: 32x1, 32x2, 24x4, 24x8 (the loaded X vectors
// are reused by the channels of a block).
//
// 24 pixels rather than 16 (B = 4) or 8 (B = 8): every pixel tile re-streams
// the whole weight stream, so wider tiles read it fewer times. 12
// accumulators + 3 X vectors + 1 weight fill the 16 ymm registers; B = 8 runs
// as two passes of 4 channels over each row's nonzeros (1.1-1.3x per
// MobileNet-v1 pointwise layer at 80% over 16x4, 1.2-1.4x over 8x8).
//
// Pixel remainder: narrower tiles of 16, 8 (ymm), 4, 2 (xmm), which run 2-4
// block rows jointly when one row has fewer than 8 accumulators, and a
// 1-pixel tile that vectorises across the B channels instead (with 4 block
// rows in flight). All of them keep the same per-element order (bias, then
// FMAs in stream order), so results are bitwise independent of how the pixels
// are split into tiles.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/f32-gspmm/f32-gspmm.h"

namespace sde {
namespace {

inline const float* input_row(const char* input, size_t input_stride, int32_t r) {
  return reinterpret_cast<const float*>(input + size_t(uint32_t(r)) * input_stride);
}

// Pixel vectors: 8 (ymm), 4 and 2 (xmm) pixels.
struct Y8 {
  using V = __m256;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V clamp(V a, float lo, float hi) {
    return _mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
  }
  static void store(float* p, V a) { _mm256_storeu_ps(p, a); }
};
struct X4 {
  using V = __m128;
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static V bcast(const float* p) { return _mm_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm_fmadd_ps(a, b, c); }
  static V clamp(V a, float lo, float hi) {
    return _mm_min_ps(_mm_max_ps(a, _mm_set1_ps(lo)), _mm_set1_ps(hi));
  }
  static void store(float* p, V a) { _mm_storeu_ps(p, a); }
};
struct X2 : X4 {
  static V load(const float* p) {
    return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
  }
  static void store(float* p, V a) { _mm_store_sd(reinterpret_cast<double*>(p), _mm_castps_pd(a)); }
};

// Calls f(std::integral_constant<size_t, q>) for q = 0 .. Q-1: the accumulator
// arrays are then indexed by constants only and stay in registers.
template <size_t Q, class F, size_t... q>
inline void unroll_impl(F&& f, std::index_sequence<q...>) {
  (f(std::integral_constant<size_t, q>()), ...);
}
template <size_t Q, class F>
inline void unroll(F&& f) {
  unroll_impl<Q>(f, std::make_index_sequence<Q>());
}

// NV pixel vectors x B channels for R block rows jointly. One row has B * NV
// independent accumulators; Zen 3 needs 8 FMAs in flight (2 per cycle, 4
// cycles latency), so tiles with fewer run R = 2 rows over their common
// nonzero count, then each row finishes alone. The per-element order (bias,
// then nonzeros in stream order) is the same for every R and tile width.
// Not inlined into gspmm(): inlined, the register allocator spilled an X
// vector of the 32x2 loop to the stack (clamp bounds kept live across tiles).
template <class P, size_t B, size_t NV, size_t R>
__attribute__((noinline)) void tile(size_t block_rows, const char* input, size_t input_stride, const float* w,
          const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
          float min, float max) {
  using V = typename P::V;
  constexpr size_t kW = sizeof(V) / sizeof(float);
  // Rows in flight: R while at least R remain, then one at a time.
  auto step = [&](auto rows_c) {
    constexpr size_t Q = decltype(rows_c)::value;
    const float* wq[Q];
    const int32_t* iq[Q];
    uint32_t nq[Q];
    uint32_t common = nnz[0];
    wq[0] = w;
    iq[0] = row_index;
    for (size_t q = 0; q < Q; ++q) {
      nq[q] = nnz[q];
      if (q > 0) {
        wq[q] = wq[q - 1] + B * (1 + nq[q - 1]);
        iq[q] = iq[q - 1] + nq[q - 1];
      }
      common = nq[q] < common ? nq[q] : common;
    }
    V acc[Q][B][NV];
    unroll<Q>([&](auto q_c) {
      constexpr size_t q = decltype(q_c)::value;
      for (size_t b = 0; b < B; ++b) {
        const V vb = P::bcast(wq[q] + b);
        for (size_t v = 0; v < NV; ++v) acc[q][b][v] = vb;
      }
      wq[q] += B;
    });
    auto fma_row = [&](auto q_c) {
      constexpr size_t q = decltype(q_c)::value;
      const float* x = input_row(input, input_stride, *iq[q]++);
      V xv[NV];
      for (size_t v = 0; v < NV; ++v) xv[v] = P::load(x + kW * v);
      for (size_t b = 0; b < B; ++b) {
        const V wb = P::bcast(wq[q] + b);
        for (size_t v = 0; v < NV; ++v) acc[q][b][v] = P::fma(wb, xv[v], acc[q][b][v]);
      }
      wq[q] += B;
    };
    for (uint32_t n = common; n != 0; --n) unroll<Q>(fma_row);
    unroll<Q>([&](auto q_c) {
      for (uint32_t n = nq[decltype(q_c)::value] - common; n != 0; --n) fma_row(q_c);
    });
    unroll<Q>([&](auto q_c) {
      constexpr size_t q = decltype(q_c)::value;
      for (size_t b = 0; b < B; ++b) {
        float* o = reinterpret_cast<float*>(output + (q * B + b) * output_stride);
        for (size_t v = 0; v < NV; ++v) P::store(o + kW * v, P::clamp(acc[q][b][v], min, max));
      }
    });
    w = wq[Q - 1];
    row_index = iq[Q - 1];
    nnz += Q;
    output += Q * B * output_stride;
  };
  size_t r = 0;
  if constexpr (R > 1) {
    for (; r + R <= block_rows; r += R) step(std::integral_constant<size_t, R>());
  }
  for (; r < block_rows; ++r) step(std::integral_constant<size_t, 1>());
}

// B channels in passes of C over the same nonzeros (B = 8: two passes of 4).
// 24 pixels x 8 channels would need 24 accumulators; a pass keeps 12 and the
// second one finds the row's indices and X rows in L1. Per element the order
// is still bias, then nonzeros in stream order.
template <class P, size_t B, size_t C, size_t NV>
__attribute__((noinline)) void tile_split(size_t block_rows, const char* input,
                                          size_t input_stride, const float* w,
                                          const int32_t* row_index, const uint32_t* nnz,
                                          char* output, size_t output_stride, float min,
                                          float max) {
  using V = typename P::V;
  constexpr size_t kW = sizeof(V) / sizeof(float);
  for (size_t r = 0; r < block_rows; ++r) {
    const uint32_t row_nnz = nnz[r];
    for (size_t g = 0; g < B; g += C) {
      const float* wp = w + g;
      const int32_t* ip = row_index;
      V acc[C][NV];
      for (size_t c = 0; c < C; ++c) {
        const V vb = P::bcast(wp + c);
        for (size_t v = 0; v < NV; ++v) acc[c][v] = vb;
      }
      wp += B;
      for (uint32_t n = row_nnz; n != 0; --n) {
        const float* x = input_row(input, input_stride, *ip++);
        V xv[NV];
        for (size_t v = 0; v < NV; ++v) xv[v] = P::load(x + kW * v);
        for (size_t c = 0; c < C; ++c) {
          const V wc = P::bcast(wp + c);
          for (size_t v = 0; v < NV; ++v) acc[c][v] = P::fma(wc, xv[v], acc[c][v]);
        }
        wp += B;
      }
      for (size_t c = 0; c < C; ++c) {
        float* o = reinterpret_cast<float*>(output + (r * B + g + c) * output_stride);
        for (size_t v = 0; v < NV; ++v) P::store(o + kW * v, P::clamp(acc[c][v], min, max));
      }
    }
    w += B * (1 + row_nnz);
    row_index += row_nnz;
  }
}

// One pixel: the B weights of a nonzero are one vector, the pixel is broadcast.
// A single accumulator per row would be bound by the FMA latency, so 4 block
// rows run jointly over their common nonzero count, then each finishes alone
// (the order of the sum per element is unchanged).
template <size_t B>
void tile_1(size_t block_rows, const char* input, size_t input_stride, const float* w,
            const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
            float min, float max) {
  using P = typename std::conditional<B == 8, Y8, X4>::type;
  using V = typename P::V;
  constexpr size_t R = 4;
  auto load_w = [](const float* p) -> V {
    if constexpr (B == 8) return _mm256_loadu_ps(p);
    if constexpr (B == 4) return _mm_loadu_ps(p);
    if constexpr (B == 2) return _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p)));
    if constexpr (B == 1) return _mm_load_ss(p);
  };
  size_t r = 0;
  for (; r < block_rows; r += R) {
    const size_t rows = block_rows - r < R ? block_rows - r : R;
    const float* wq[R];
    const int32_t* iq[R];
    uint32_t nq[R];
    V acc[R];
    uint32_t common = nnz[r];
    for (size_t q = 0; q < R; ++q) {
      // Missing rows (last group) alias row 0's stream with no nonzeros.
      nq[q] = q < rows ? nnz[r + q] : 0;
      wq[q] = q == 0 ? w : q < rows ? wq[q - 1] + B * (1 + nq[q - 1]) : w;
      iq[q] = q == 0 ? row_index : q < rows ? iq[q - 1] + nq[q - 1] : row_index;
      if (q < rows) common = nq[q] < common ? nq[q] : common;
    }
    for (size_t q = 0; q < R; ++q) {
      acc[q] = load_w(wq[q]);
      wq[q] += B;
    }
    for (uint32_t n = common; n != 0; --n) {
      for (size_t q = 0; q < R; ++q) {
        acc[q] = P::fma(load_w(wq[q]), P::bcast(input_row(input, input_stride, *iq[q]++)), acc[q]);
        wq[q] += B;
      }
    }
    for (size_t q = 0; q < R; ++q) {
      for (uint32_t n = q < rows ? nq[q] - common : 0; n != 0; --n) {
        acc[q] = P::fma(load_w(wq[q]), P::bcast(input_row(input, input_stride, *iq[q]++)), acc[q]);
        wq[q] += B;
      }
    }
    for (size_t q = 0; q < rows; ++q) {
      alignas(32) float y[8];
      if constexpr (B == 8) {
        _mm256_store_ps(y, P::clamp(acc[q], min, max));
      } else {
        _mm_store_ps(y, P::clamp(acc[q], min, max));
      }
      for (size_t b = 0; b < B; ++b) {
        *reinterpret_cast<float*>(output + ((r + q) * B + b) * output_stride) = y[b];
      }
    }
    w = wq[rows - 1];
    row_index = iq[rows - 1];
  }
}

// Rows in flight for a tile of `accumulators` per row: >= 8 in flight, <= 12 registers.
constexpr size_t rows_for(size_t accumulators) { return accumulators >= 8 ? 1 : accumulators >= 4 ? 2 : 4; }

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
    if constexpr (B == 8 && MR > 8) {
      tile_split<Y8, B, 4, MR / 8>(block_rows, in, input_stride, weights, row_index, nnz, out,
                                   output_stride, min, max);
    } else {
      tile<Y8, B, MR / 8, rows_for(B * (MR / 8))>(block_rows, in, input_stride, weights,
                                                  row_index, nnz, out, output_stride, min, max);
    }
    advance(MR);
  }
  if constexpr (MR > 16) {
    if (pixels & 16) {
      if constexpr (B == 8) {
        tile_split<Y8, B, 4, 2>(block_rows, in, input_stride, weights, row_index, nnz, out,
                                output_stride, min, max);
      } else {
        tile<Y8, B, 2, rows_for(B * 2)>(block_rows, in, input_stride, weights, row_index, nnz,
                                        out, output_stride, min, max);
      }
      advance(16);
    }
  }
  if constexpr (MR >= 16) {
    if (pixels & 8) {
      tile<Y8, B, 1, rows_for(B)>(block_rows, in, input_stride, weights, row_index, nnz, out,
                     output_stride, min, max);
      advance(8);
    }
  }
  if (pixels & 4) {
    tile<X4, B, 1, rows_for(B)>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
    advance(4);
  }
  if (pixels & 2) {
    tile<X2, B, 1, rows_for(B)>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
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
SDE_GSPMM_AVX2(24, 4)
SDE_GSPMM_AVX2(24, 8)
#undef SDE_GSPMM_AVX2

}  // namespace sde
