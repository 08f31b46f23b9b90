// f32-gspmv, portable scalar variants: B = 1, 2, 4, 8.
// B accumulators per block row; with U = 4 / B > 1 (B = 1, 2) nonzero j goes
// into partial sum j mod U, so U independent chains hide the add latency.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace sde {
namespace {

template <size_t B>
void gspmv(size_t block_rows, const float* x, const float* w, const uint16_t* col,
           const uint32_t* nnz, float* y, float min, float max) {
  constexpr size_t U = B >= 4 ? 1 : 4 / B;
  for (size_t r = 0; r < block_rows; ++r) {
    float acc[U][B];
    for (size_t b = 0; b < B; ++b) {
      acc[0][b] = w[b];
      for (size_t u = 1; u < U; ++u) acc[u][b] = 0.0f;
    }
    w += B;
    uint32_t n = nnz[r];
    for (; n >= U; n -= U) {
      for (size_t u = 0; u < U; ++u) {
        const float xv = x[col[u]];
        for (size_t b = 0; b < B; ++b) acc[u][b] += w[u * B + b] * xv;
      }
      w += U * B;
      col += U;
    }
    for (size_t u = 0; u < n; ++u) {
      const float xv = x[col[u]];
      for (size_t b = 0; b < B; ++b) acc[u][b] += w[u * B + b] * xv;
    }
    w += n * B;
    col += n;
    for (size_t b = 0; b < B; ++b) {
      float s = acc[0][b];
      if constexpr (U == 4) {
        s = (s + acc[1][b]) + (acc[2][b] + acc[3][b]);
      } else if constexpr (U == 2) {
        s += acc[1][b];
      }
      y[r * B + b] = std::min(std::max(s, min), max);
    }
  }
}

}  // namespace

#define SDE_GSPMV_SCALAR(b)                                                                   \
  void sde_f32_gspmv_ukernel_##b##__scalar(size_t block_rows, const float* x, const float* w, \
                                           const uint16_t* col, const uint32_t* nnz, float* y, \
                                           float min, float max) {                           \
    gspmv<b>(block_rows, x, w, col, nnz, y, min, max);                                       \
  }
SDE_GSPMV_SCALAR(1)
SDE_GSPMV_SCALAR(2)
SDE_GSPMV_SCALAR(4)
SDE_GSPMV_SCALAR(8)
#undef SDE_GSPMV_SCALAR

}  // namespace sde
