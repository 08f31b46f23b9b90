// f32-gspmm, portable scalar reference variants: 8x1, 4x2, 2x4, 1x8.
// One template: tile of T pixels x B channels of accumulators; the pixel
// remainder walks halving tiles (T/2, ..., 1), which keep the same summation
// order per element (bias, then nonzeros in stream order).
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/f32-gspmm/f32-gspmm.h"

namespace sde {
namespace {

template <size_t B, size_t T>
void gspmm_tile(size_t block_rows, const char* input, size_t input_stride, const float* w,
                const int32_t* row_index, const uint32_t* nnz, char* output,
                size_t output_stride, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float acc[B][T];
    for (size_t b = 0; b < B; ++b)
      for (size_t t = 0; t < T; ++t) acc[b][t] = w[b];
    w += B;
    for (uint32_t n = nnz[r]; n != 0; --n) {
      const float* x = reinterpret_cast<const float*>(
          input + size_t(uint32_t(*row_index++)) * input_stride);
      float xv[T];
      for (size_t t = 0; t < T; ++t) xv[t] = x[t];
      for (size_t b = 0; b < B; ++b) {
        const float wb = w[b];
        for (size_t t = 0; t < T; ++t) acc[b][t] += wb * xv[t];
      }
      w += B;
    }
    for (size_t b = 0; b < B; ++b) {
      float* o = reinterpret_cast<float*>(output + (r * B + b) * output_stride);
      for (size_t t = 0; t < T; ++t) o[t] = std::min(std::max(acc[b][t], min), max);
    }
  }
}

template <size_t B, size_t MR>
void gspmm(size_t pixels, size_t block_rows, const float* input, size_t input_stride,
           const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,
           size_t output_stride, float min, float max) {
  const char* in = reinterpret_cast<const char*>(input);
  char* out = reinterpret_cast<char*>(output);
  for (; pixels >= MR; pixels -= MR) {
    gspmm_tile<B, MR>(block_rows, in, input_stride, weights, row_index, nnz, out,
                      output_stride, min, max);
    in += MR * sizeof(float);
    out += MR * sizeof(float);
  }
  // pixels < MR (a power of two): one tile per set bit, widest first.
  if (MR >= 8 && (pixels & 4)) {
    gspmm_tile<B, 4>(block_rows, in, input_stride, weights, row_index, nnz, out,
                     output_stride, min, max);
    in += 4 * sizeof(float);
    out += 4 * sizeof(float);
  }
  if (MR >= 4 && (pixels & 2)) {
    gspmm_tile<B, 2>(block_rows, in, input_stride, weights, row_index, nnz, out,
                     output_stride, min, max);
    in += 2 * sizeof(float);
    out += 2 * sizeof(float);
  }
  if (MR >= 2 && (pixels & 1)) {
    gspmm_tile<B, 1>(block_rows, in, input_stride, weights, row_index, nnz, out,
                     output_stride, min, max);
  }
}

}  // namespace

#define SDE_GSPMM_SCALAR(mr, b)                                                              \
  void sde_f32_gspmm_ukernel_##mr##x##b##__scalar(                                         \
      size_t pixels, size_t block_rows, const float* input, size_t input_stride,           \
      const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output,  \
      size_t output_stride, float min, float max) {                                        \
    gspmm<b, mr>(pixels, block_rows, input, input_stride, weights, row_index, nnz, output, \
                 output_stride, min, max);                                                 \
  }
SDE_GSPMM_SCALAR(8, 1)
SDE_GSPMM_SCALAR(4, 2)
SDE_GSPMM_SCALAR(2, 4)
SDE_GSPMM_SCALAR(1, 8)
#undef SDE_GSPMM_SCALAR

}  // namespace sde
