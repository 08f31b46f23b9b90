// AVX2+FMA f32-gemv over NR = 16 or 24 wide strips: NR/8 accumulators, each
// k step one broadcast and NR/8 FMAs; two k steps in flight to hide FMA latency.
#include <immintrin.h>

#include <algorithm>

#include "kernels/ukernels.h"

namespace sde {
namespace {

template <size_t NR>
void gemv_avx2(size_t nc, size_t k, const float* x, const float* w, const float* bias, float* y,
               float min, float max) {
  constexpr size_t V = NR / 8;
  const __m256 vmin = _mm256_set1_ps(min), vmax = _mm256_set1_ps(max);
  for (size_t j0 = 0; j0 < nc; j0 += NR, w += k * NR) {
    const size_t cols = std::min(NR, nc - j0);
    __m256 acc0[V], acc1[V];
    for (size_t v = 0; v < V; ++v) {
      acc0[v] = _mm256_setzero_ps();
      acc1[v] = _mm256_setzero_ps();
    }
    size_t kk = 0;
    for (; kk + 2 <= k; kk += 2) {
      const __m256 x0 = _mm256_broadcast_ss(x + kk), x1 = _mm256_broadcast_ss(x + kk + 1);
      const float* row = w + kk * NR;
      for (size_t v = 0; v < V; ++v) {
        acc0[v] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(row + 8 * v), acc0[v]);
        acc1[v] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(row + NR + 8 * v), acc1[v]);
      }
    }
    if (kk < k) {
      const __m256 x0 = _mm256_broadcast_ss(x + kk);
      for (size_t v = 0; v < V; ++v) acc0[v] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w + kk * NR + 8 * v), acc0[v]);
    }
    alignas(32) float out[NR];
    for (size_t v = 0; v < V; ++v) {
      __m256 s = _mm256_add_ps(acc0[v], acc1[v]);
      if (bias != nullptr && cols == NR) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + j0 + 8 * v));
      _mm256_store_ps(out + 8 * v, s);
    }
    if (bias != nullptr && cols < NR) {
      for (size_t j = 0; j < cols; ++j) out[j] += bias[j0 + j];
    }
    if (cols == NR) {
      for (size_t v = 0; v < V; ++v) {
        _mm256_storeu_ps(y + j0 + 8 * v, _mm256_min_ps(_mm256_max_ps(_mm256_load_ps(out + 8 * v), vmin), vmax));
      }
    } else {
      for (size_t j = 0; j < cols; ++j) y[j0 + j] = std::min(std::max(out[j], min), max);
    }
  }
}

}  // namespace

void sde_f32_gemv_ukernel_16__avx2(size_t nc, size_t k, const float* x, const float* w, const float* bias,
                                   float* y, float min, float max) {
  gemv_avx2<16>(nc, k, x, w, bias, y, min, max);
}
void sde_f32_gemv_ukernel_24__avx2(size_t nc, size_t k, const float* x, const float* w, const float* bias,
                                   float* y, float min, float max) {
  gemv_avx2<24>(nc, k, x, w, bias, y, min, max);
}

}  // namespace sde
