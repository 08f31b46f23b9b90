// NEON (aarch64, FMA) f32-gemv over NR = 8 or 16 wide strips (the 8x8 and
// 4x16 GEMMs' packing): NR/4 accumulators per k step and 32/NR k steps in
// flight (8 accumulators), x read four k at a time and used by lane.
#include <arm_neon.h>

#include <algorithm>

#include "kernels/simd-neon.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

template <size_t NR>
void gemv_neon(size_t nc, size_t k, const float* x, const float* w, const float* bias, float* y,
               float min, float max) {
  constexpr size_t V = NR / 4;   // vectors per k step
  constexpr size_t S = 32 / NR;  // k steps in flight: 4 (NR = 8) or 2 (NR = 16)
  const float32x4_t vmin = vdupq_n_f32(min), vmax = vdupq_n_f32(max);
  for (size_t j0 = 0; j0 < nc; j0 += NR, w += k * NR) {
    const size_t cols = std::min(NR, nc - j0);
    float32x4_t acc[S][V];
    SDE_NEON_UNROLL
    for (size_t s = 0; s < S; ++s)
      SDE_NEON_UNROLL
      for (size_t v = 0; v < V; ++v) acc[s][v] = vdupq_n_f32(0.0f);
    const float* row = w;
    size_t kk = 0;
    for (; kk + 4 <= k; kk += 4) {
      const float32x4_t xv = vld1q_f32(x + kk);
      SDE_NEON_UNROLL
      for (size_t q = 0; q < 4; ++q) {
        SDE_NEON_UNROLL
        for (size_t v = 0; v < V; ++v) {
          const float32x4_t wv = vld1q_f32(row + q * NR + 4 * v);
          switch (q) {
            case 0: acc[0 % S][v] = vfmaq_laneq_f32(acc[0 % S][v], wv, xv, 0); break;
            case 1: acc[1 % S][v] = vfmaq_laneq_f32(acc[1 % S][v], wv, xv, 1); break;
            case 2: acc[2 % S][v] = vfmaq_laneq_f32(acc[2 % S][v], wv, xv, 2); break;
            default: acc[3 % S][v] = vfmaq_laneq_f32(acc[3 % S][v], wv, xv, 3); break;
          }
        }
      }
      row += 4 * NR;
    }
    for (; kk < k; ++kk, row += NR) {
      SDE_NEON_UNROLL
      for (size_t v = 0; v < V; ++v) acc[0][v] = vfmaq_n_f32(acc[0][v], vld1q_f32(row + 4 * v), x[kk]);
    }
    SDE_NEON_UNROLL
    for (size_t v = 0; v < V; ++v) {
      float32x4_t s = acc[0][v];
      SDE_NEON_UNROLL
      for (size_t q = 1; q < S; ++q) s = vaddq_f32(s, acc[q][v]);
      const size_t c0 = 4 * v;
      if (c0 >= cols) break;
      const size_t n = std::min<size_t>(4, cols - c0);
      if (bias != nullptr) {
        float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (size_t j = 0; j < n; ++j) b[j] = bias[j0 + c0 + j];
        s = vaddq_f32(s, vld1q_f32(b));
      }
      store_first(y + j0 + c0, vminq_f32(vmaxq_f32(s, vmin), vmax), n);
    }
  }
}

}  // namespace

void sde_f32_gemv_ukernel_8__neon(size_t nc, size_t k, const float* x, const float* w, const float* bias,
                                  float* y, float min, float max) {
  gemv_neon<8>(nc, k, x, w, bias, y, min, max);
}
void sde_f32_gemv_ukernel_16__neon(size_t nc, size_t k, const float* x, const float* w, const float* bias,
                                   float* y, float min, float max) {
  gemv_neon<16>(nc, k, x, w, bias, y, min, max);
}

}  // namespace sde
