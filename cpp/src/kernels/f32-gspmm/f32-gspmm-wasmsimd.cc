// f32-gspmm, WebAssembly SIMD128 variants: 16x1, 8x2, 8x4, 4x8 (B * pixels / 4
// = 4..8 v128 accumulators: V8 maps v128 onto the 16 xmm/q registers of the
// host, so more would spill). Each loaded X vector is reused by all B channels
// of a block.
//
// SIMD128 has no FMA, so every product is a separate mul then add, exactly as
// in the scalar code: the pixel remainder (tiles of 4 * 2^k pixels, then
// single pixels vectorised across the B channels or plain scalar) therefore
// gives bitwise the same result as the main tile.
#include <wasm_simd128.h>

#include <cstddef>
#include <cstdint>

#include "kernels/f32-gspmm/f32-gspmm.h"

namespace sde {
namespace {

inline const float* input_row(const char* input, size_t input_stride, int32_t r) {
  return reinterpret_cast<const float*>(input + size_t(uint32_t(r)) * input_stride);
}

inline v128_t clamp(v128_t v, v128_t vmin, v128_t vmax) {
  return wasm_f32x4_pmin(wasm_f32x4_pmax(vmin, v), vmax);
}

// NV vectors (4 * NV pixels) x B channels.
template <size_t B, size_t NV>
void tile_vec(size_t block_rows, const char* input, size_t input_stride, const float* w,
              const int32_t* row_index, const uint32_t* nnz, char* output,
              size_t output_stride, float min, float max) {
  const v128_t vmin = wasm_f32x4_splat(min), vmax = wasm_f32x4_splat(max);
  for (size_t r = 0; r < block_rows; ++r) {
    v128_t acc[B][NV];
    for (size_t b = 0; b < B; ++b) {
      const v128_t vb = wasm_f32x4_splat(w[b]);
      for (size_t v = 0; v < NV; ++v) acc[b][v] = vb;
    }
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float* x = input_row(input, input_stride, *row_index++);
      v128_t xv[NV];
      for (size_t v = 0; v < NV; ++v) xv[v] = wasm_v128_load(x + 4 * v);
      for (size_t b = 0; b < B; ++b) {
        const v128_t wb = wasm_f32x4_splat(w[b]);
        for (size_t v = 0; v < NV; ++v) acc[b][v] = wasm_f32x4_add(acc[b][v], wasm_f32x4_mul(wb, xv[v]));
      }
      w += B;
    }
    for (size_t b = 0; b < B; ++b) {
      float* o = reinterpret_cast<float*>(output + (r * B + b) * output_stride);
      for (size_t v = 0; v < NV; ++v) wasm_v128_store(o + 4 * v, clamp(acc[b][v], vmin, vmax));
    }
  }
}

// One pixel. For B >= 4 the B weights of a nonzero are loaded as vectors and
// the pixel is splatted; for B < 4 plain scalar code (same mul-then-add).
template <size_t B>
void tile_1(size_t block_rows, const char* input, size_t input_stride, const float* w,
            const int32_t* row_index, const uint32_t* nnz, char* output, size_t output_stride,
            float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    alignas(16) float y[B < 4 ? 4 : B];
    if constexpr (B >= 4) {
      constexpr size_t NV = B / 4;
      v128_t acc[NV];
      for (size_t v = 0; v < NV; ++v) acc[v] = wasm_v128_load(w + 4 * v);
      w += B;
      for (uint32_t n = nnz[r]; n != 0; --n) {
        const v128_t xv = wasm_v128_load32_splat(input_row(input, input_stride, *row_index++));
        for (size_t v = 0; v < NV; ++v)
          acc[v] = wasm_f32x4_add(acc[v], wasm_f32x4_mul(wasm_v128_load(w + 4 * v), xv));
        w += B;
      }
      const v128_t vmin = wasm_f32x4_splat(min), vmax = wasm_f32x4_splat(max);
      for (size_t v = 0; v < NV; ++v) wasm_v128_store(y + 4 * v, clamp(acc[v], vmin, vmax));
    } else {
      float acc[B];
      for (size_t b = 0; b < B; ++b) acc[b] = w[b];
      w += B;
      for (uint32_t n = nnz[r]; n != 0; --n) {
        const float x = *input_row(input, input_stride, *row_index++);
        for (size_t b = 0; b < B; ++b) acc[b] += w[b] * x;
        w += B;
      }
      for (size_t b = 0; b < B; ++b) {
        // Same as wasm_f32x4_pmin(pmax(min, v), max) lane-wise.
        float v = min < acc[b] ? acc[b] : min;
        y[b] = v < max ? v : max;
      }
    }
    for (size_t b = 0; b < B; ++b) {
      *reinterpret_cast<float*>(output + (r * B + b) * output_stride) = y[b];
    }
  }
}

template <size_t B, size_t NV>
void gspmm(size_t pixels, size_t block_rows, const float* input, size_t input_stride,
           const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,
           size_t output_stride, float min, float max) {
  const char* in = reinterpret_cast<const char*>(input);
  char* out = reinterpret_cast<char*>(output);
  constexpr size_t MR = 4 * NV;
  for (; pixels >= MR; pixels -= MR) {
    tile_vec<B, NV>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                    min, max);
    in += MR * sizeof(float);
    out += MR * sizeof(float);
  }
  if (NV >= 4 && pixels >= 8) {
    tile_vec<B, 2>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
    in += 8 * sizeof(float);
    out += 8 * sizeof(float);
    pixels -= 8;
  }
  if (NV >= 2 && pixels >= 4) {
    tile_vec<B, 1>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride,
                   min, max);
    in += 4 * sizeof(float);
    out += 4 * sizeof(float);
    pixels -= 4;
  }
  for (; pixels != 0; --pixels) {
    tile_1<B>(block_rows, in, input_stride, weights, row_index, nnz, out, output_stride, min,
              max);
    in += sizeof(float);
    out += sizeof(float);
  }
}

}  // namespace

#define SDE_GSPMM_WASMSIMD(mr, b)                                                            \
  void sde_f32_gspmm_ukernel_##mr##x##b##__wasmsimd(                                       \
      size_t pixels, size_t block_rows, const float* input, size_t input_stride,           \
      const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,  \
      size_t output_stride, float min, float max) {                                        \
    gspmm<b, mr / 4>(pixels, block_rows, input, input_stride, weights, row_index, nnz,     \
                     output, output_stride, min, max);                                     \
  }
SDE_GSPMM_WASMSIMD(16, 1)
SDE_GSPMM_WASMSIMD(8, 2)
SDE_GSPMM_WASMSIMD(8, 4)
SDE_GSPMM_WASMSIMD(4, 8)
#undef SDE_GSPMM_WASMSIMD

}  // namespace sde
