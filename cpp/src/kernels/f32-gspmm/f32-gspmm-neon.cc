// f32-gspmm, NEON (aarch64 ASIMD, FMA) variants: 32x1, 32x2, 16x4, 8x8
// (B * pixels / 4 = 8..16 q-register accumulators out of 32, enough to hide
// the FMA latency; each loaded X vector is reused by all B channels, whose
// weights feed the FMAs as lanes of one or two loaded vectors).
//
// Pixel remainder: narrower tiles of 16, 8, 4 (q), 2 (d) and a 1-pixel tile
// that vectorises across the B channels instead. All use fused multiply-add
// in the same per-element order (bias, then nonzeros in stream order), so
// results are bitwise independent of how the pixels are split into tiles.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/f32-gspmm/f32-gspmm.h"

#include "kernels/simd-neon.h"

namespace sde {
namespace {

inline const float* input_row(const char* input, size_t input_stride, int32_t r) {
  return reinterpret_cast<const float*>(input + size_t(uint32_t(r)) * input_stride);
}

// The B weights of one nonzero as lanes: (B + 3) / 4 q vectors (B = 1, 2 load
// only what exists; the unused lanes are never read).
template <size_t B>
inline void load_weights(const float* w, float32x4_t* wv) {
  if constexpr (B >= 4) {
    SDE_NEON_UNROLL
    for (size_t i = 0; i < B / 4; ++i) wv[i] = vld1q_f32(w + 4 * i);
  } else if constexpr (B == 2) {
    wv[0] = vcombine_f32(vld1_f32(w), vld1_f32(w));
  } else {
    wv[0] = vld1q_dup_f32(w);
  }
}

template <size_t L>
inline float32x4_t fma_lane(float32x4_t acc, float32x4_t x, const float32x4_t* wv) {
  return vfmaq_laneq_f32(acc, x, wv[L / 4], L % 4);
}
template <size_t L>
inline float32x2_t fma_lane(float32x2_t acc, float32x2_t x, const float32x4_t* wv) {
  return vfma_laneq_f32(acc, x, wv[L / 4], L % 4);
}

template <typename V, size_t NV, size_t... L>
inline void fma_channels(V (*acc)[NV], const V* xv, const float32x4_t* wv,
                         std::index_sequence<L...>) {
  SDE_NEON_UNROLL
  for (size_t v = 0; v < NV; ++v) ((acc[L][v] = fma_lane<L>(acc[L][v], xv[v], wv)), ...);
}

// NV q vectors (4 * NV pixels) x B channels.
template <size_t B, size_t NV>
void tile_q(size_t block_rows, const char* input, size_t input_stride, const float* w,
            const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
            float min, float max) {
  const float32x4_t vmin = vdupq_n_f32(min), vmax = vdupq_n_f32(max);
  for (size_t r = 0; r < block_rows; ++r) {
    float32x4_t acc[B][NV];
    SDE_NEON_UNROLL
    for (size_t b = 0; b < B; ++b) {
      const float32x4_t vb = vld1q_dup_f32(w + b);
      SDE_NEON_UNROLL
      for (size_t v = 0; v < NV; ++v) acc[b][v] = vb;
    }
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float* x = input_row(input, input_stride, *row_index++);
      float32x4_t xv[NV];
      SDE_NEON_UNROLL
      for (size_t v = 0; v < NV; ++v) xv[v] = vld1q_f32(x + 4 * v);
      float32x4_t wv[(B + 3) / 4];
      load_weights<B>(w, wv);
      fma_channels<float32x4_t, NV>(acc, xv, wv, std::make_index_sequence<B>());
      w += B;
    }
    SDE_NEON_UNROLL
    for (size_t b = 0; b < B; ++b) {
      float* o = reinterpret_cast<float*>(output + (r * B + b) * output_stride);
      SDE_NEON_UNROLL
      for (size_t v = 0; v < NV; ++v) {
        vst1q_f32(o + 4 * v, vminq_f32(vmaxq_f32(acc[b][v], vmin), vmax));
      }
    }
  }
}

// Two pixels (one d vector) x B channels.
template <size_t B>
void tile_2(size_t block_rows, const char* input, size_t input_stride, const float* w,
            const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
            float min, float max) {
  const float32x2_t vmin = vdup_n_f32(min), vmax = vdup_n_f32(max);
  for (size_t r = 0; r < block_rows; ++r) {
    float32x2_t acc[B][1];
    SDE_NEON_UNROLL
    for (size_t b = 0; b < B; ++b) acc[b][0] = vld1_dup_f32(w + b);
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float32x2_t xv = vld1_f32(input_row(input, input_stride, *row_index++));
      float32x4_t wv[(B + 3) / 4];
      load_weights<B>(w, wv);
      fma_channels<float32x2_t, 1>(acc, &xv, wv, std::make_index_sequence<B>());
      w += B;
    }
    SDE_NEON_UNROLL
    for (size_t b = 0; b < B; ++b) {
      float* o = reinterpret_cast<float*>(output + (r * B + b) * output_stride);
      vst1_f32(o, vmin_f32(vmax_f32(acc[b][0], vmin), vmax));
    }
  }
}

// One pixel: the B weights of a nonzero are the vector(s), the pixel is
// broadcast. B = 1, 2 use a q vector of which only B lanes are stored.
template <size_t B>
void tile_1(size_t block_rows, const char* input, size_t input_stride, const float* w,
            const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
            float min, float max) {
  constexpr size_t NQ = (B + 3) / 4;
  const float32x4_t vmin = vdupq_n_f32(min), vmax = vdupq_n_f32(max);
  auto load_w = [](const float* p, size_t i) {
    if constexpr (B >= 4) return vld1q_f32(p + 4 * i);
    if constexpr (B == 2) return vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    if constexpr (B == 1) return vld1q_lane_f32(p, vdupq_n_f32(0.0f), 0);
  };
  for (size_t r = 0; r < block_rows; ++r) {
    float32x4_t acc[NQ];
    SDE_NEON_UNROLL
    for (size_t i = 0; i < NQ; ++i) acc[i] = load_w(w, i);
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float32x4_t xv = vld1q_dup_f32(input_row(input, input_stride, *row_index++));
      SDE_NEON_UNROLL
      for (size_t i = 0; i < NQ; ++i) acc[i] = vfmaq_f32(acc[i], load_w(w, i), xv);
      w += B;
    }
    float y[4 * NQ];
    SDE_NEON_UNROLL
    for (size_t i = 0; i < NQ; ++i) vst1q_f32(y + 4 * i, vminq_f32(vmaxq_f32(acc[i], vmin), vmax));
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
    tile_q<B, MR / 4>(block_rows, in, input_stride, weights, row_index, nnz, out,
                      output_stride, min, max);
    advance(MR);
  }
  if constexpr (MR >= 32) {
    if (pixels & 16) {
      tile_q<B, 4>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
      advance(16);
    }
  }
  if constexpr (MR >= 16) {
    if (pixels & 8) {
      tile_q<B, 2>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
      advance(8);
    }
  }
  if (pixels & 4) {
    tile_q<B, 1>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                 min, max);
    advance(4);
  }
  if (pixels & 2) {
    tile_2<B>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride, min,
              max);
    advance(2);
  }
  if (pixels & 1) {
    tile_1<B>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride, min,
              max);
  }
}

}  // namespace

#define SDE_GSPMM_NEON(mr, b)                                                                \
  void sde_f32_gspmm_ukernel_##mr##x##b##__neon(                                           \
      size_t pixels, size_t block_rows, const float* input, size_t input_stride,           \
      const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,  \
      size_t output_stride, float min, float max) {                                        \
    gspmm<b, mr>(pixels, block_rows, input, input_stride, weights, row_index, nnz, output, \
                 output_stride, min, max);                                                 \
  }
SDE_GSPMM_NEON(32, 1)
SDE_GSPMM_NEON(32, 2)
SDE_GSPMM_NEON(16, 4)
SDE_GSPMM_NEON(8, 8)
#undef SDE_GSPMM_NEON

}  // namespace sde
