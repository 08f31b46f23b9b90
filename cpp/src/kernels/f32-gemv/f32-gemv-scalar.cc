// Portable f32-gemv: one NR-wide accumulator row per strip, written so the
// compiler can vectorise it along NR on any target.
#include <algorithm>

#include "kernels/ukernels.h"

namespace sde {
namespace {

template <size_t NR>
void gemv_scalar(size_t nc, size_t k, const float* x, const float* w, const float* bias, float* y,
                 float min, float max) {
  for (size_t j0 = 0; j0 < nc; j0 += NR, w += k * NR) {
    const size_t cols = std::min(NR, nc - j0);
    float acc[NR];
    for (size_t j = 0; j < NR; ++j) acc[j] = bias != nullptr && j < cols ? bias[j0 + j] : 0.0f;
    for (size_t kk = 0; kk < k; ++kk) {
      const float xv = x[kk];
      const float* row = w + kk * NR;
      for (size_t j = 0; j < NR; ++j) acc[j] += xv * row[j];
    }
    for (size_t j = 0; j < cols; ++j) y[j0 + j] = std::min(std::max(acc[j], min), max);
  }
}

}  // namespace

#define SDE_GEMV_SCALAR(nr)                                                                 \
  void sde_f32_gemv_ukernel_##nr##__scalar(size_t nc, size_t k, const float* x, const float* w, \
                                           const float* bias, float* y, float min, float max) { \
    gemv_scalar<nr>(nc, k, x, w, bias, y, min, max);                                          \
  }
SDE_GEMV_SCALAR(4)
SDE_GEMV_SCALAR(8)
SDE_GEMV_SCALAR(16)
SDE_GEMV_SCALAR(24)
#undef SDE_GEMV_SCALAR

}  // namespace sde
