// Portable 4x4 GEMM microkernel: the fallback on every architecture and the
// baseline the SIMD variants are tested against.
#include <algorithm>

#include "kernels/ukernels.h"

namespace sde {

void sde_f32_gemm_ukernel_4x4__scalar(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                      const float* b, size_t ldb, float* c, size_t ldc,
                                      const float* bias, int accumulate, float min,
                                      float max) {
  constexpr size_t MR = 4, NR = 4;
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const size_t nw = std::min(NR, nc - n0);
    float acc[MR][NR];
    for (size_t r = 0; r < MR; ++r) {
      for (size_t j = 0; j < NR; ++j) {
        if (r < mr && j < nw) {
          acc[r][j] = accumulate ? c[r * ldc + n0 + j] : (bias ? bias[r] : 0.0f);
        } else {
          acc[r][j] = 0.0f;
        }
      }
    }
    const float* ap = a_packed;
    const float* bp = b + n0;
    if (nw == NR) {
      for (size_t k = 0; k < kc; ++k) {
        const float b0 = bp[0], b1 = bp[1], b2 = bp[2], b3 = bp[3];
        for (size_t r = 0; r < MR; ++r) {
          const float a = ap[r];
          acc[r][0] += a * b0;
          acc[r][1] += a * b1;
          acc[r][2] += a * b2;
          acc[r][3] += a * b3;
        }
        ap += MR;
        bp += ldb;
      }
    } else {
      for (size_t k = 0; k < kc; ++k) {
        for (size_t r = 0; r < MR; ++r) {
          for (size_t j = 0; j < nw; ++j) acc[r][j] += ap[r] * bp[j];
        }
        ap += MR;
        bp += ldb;
      }
    }
    for (size_t r = 0; r < mr; ++r) {
      for (size_t j = 0; j < nw; ++j) {
        c[r * ldc + n0 + j] = std::min(std::max(acc[r][j], min), max);
      }
    }
  }
}

}  // namespace sde
