// Shared body of the AVX2+FMA GEMM microkernels (included only by
// f32-gemm-*-avx2.cc files, which are compiled with -mavx2 -mfma).
//
// MR rows x NV vectors of 8 columns: MR*NV accumulators, NV B vectors and a
// broadcast of A per row. Column remainders use masked loads/stores, so
// nothing beyond nc columns of B or C is touched. Rows beyond mr alias the
// last valid row (their A rows are zero) and are stored first, so the valid
// row's value lands last.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/simd-avx2.h"

#if defined(__clang__)
#define SDE_GEMM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SDE_GEMM_UNROLL _Pragma("GCC unroll 16")
#else
#define SDE_GEMM_UNROLL
#endif

namespace sde {
namespace gemm_avx2 {

alignas(64) static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                   0,  0,  0,  0,  0,  0,  0,  0};

// One MR x (8*NV) tile; if MASKED, vector NV-1 covers `last` (1..8) columns
// with mask `m` and the other vectors are full.
template <int MR, int NV, bool MASKED>
inline void tile(size_t kc, const float* a, const float* b, size_t ldb, float* const* c,
                 const float* bv, int accumulate, __m256 vmin, __m256 vmax, __m256i m,
                 size_t last) {
  __m256 acc[MR][NV];
  SDE_GEMM_UNROLL
  for (int r = 0; r < MR; ++r) {
    SDE_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) {
      if (accumulate) {
        acc[r][v] = (MASKED && v == NV - 1) ? _mm256_maskload_ps(c[r] + 8 * v, m)
                                            : _mm256_loadu_ps(c[r] + 8 * v);
      } else {
        acc[r][v] = _mm256_set1_ps(bv[r]);
      }
    }
  }
  for (size_t k = kc; k != 0; --k) {
    __m256 vb[NV];
    SDE_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) {
      vb[v] = (MASKED && v == NV - 1) ? _mm256_maskload_ps(b + 8 * v, m) : _mm256_loadu_ps(b + 8 * v);
    }
    b += ldb;
    SDE_GEMM_UNROLL
    for (int r = 0; r < MR; ++r) {
      const __m256 va = _mm256_broadcast_ss(a + r);
      SDE_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(va, vb[v], acc[r][v]);
    }
    a += MR;
  }
  SDE_GEMM_UNROLL
  for (int r = MR - 1; r >= 0; --r) {
    SDE_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) {
      const __m256 y = _mm256_min_ps(_mm256_max_ps(acc[r][v], vmin), vmax);
      if (MASKED && v == NV - 1) {
        store_first_lanes(c[r] + 8 * v, y, last);
      } else {
        _mm256_storeu_ps(c[r] + 8 * v, y);
      }
    }
  }
}

template <int MR, int NV>
inline void gemm(size_t mr, size_t nc, size_t kc, const float* a_packed, const float* b,
                 size_t ldb, float* c, size_t ldc, const float* bias, int accumulate, float min,
                 float max) {
  constexpr size_t NR = 8 * NV;
  float* cr[MR];
  float bv[MR];
  cr[0] = c;
  for (int r = 1; r < MR; ++r) cr[r] = size_t(r) < mr ? cr[r - 1] + ldc : cr[r - 1];
  for (int r = 0; r < MR; ++r) bv[r] = bias ? bias[std::min(size_t(r), mr - 1)] : 0.0f;
  const __m256 vmin = _mm256_set1_ps(min);
  const __m256 vmax = _mm256_set1_ps(max);
  const __m256i full = _mm256_set1_epi32(-1);
  for (; nc >= NR; nc -= NR) {
    tile<MR, NV, false>(kc, a_packed, b, ldb, cr, bv, accumulate, vmin, vmax, full, 8);
    b += NR;
    for (int r = 0; r < MR; ++r) cr[r] += NR;
  }
  if (nc == 0) return;
  // Remainder: ceil(nc / 8) vectors, the last one masked.
  const size_t last = nc - (nc - 1) / 8 * 8;  // 1..8
  const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - last));
  switch ((nc - 1) / 8) {
    case 0: tile<MR, 1, true>(kc, a_packed, b, ldb, cr, bv, accumulate, vmin, vmax, m, last); break;
    case 1: if (NV > 1) tile<MR, (NV > 1 ? 2 : 1), true>(kc, a_packed, b, ldb, cr, bv, accumulate, vmin, vmax, m, last); break;
    case 2: if (NV > 2) tile<MR, (NV > 2 ? 3 : 1), true>(kc, a_packed, b, ldb, cr, bv, accumulate, vmin, vmax, m, last); break;
    default: if (NV > 3) tile<MR, (NV > 3 ? 4 : 1), true>(kc, a_packed, b, ldb, cr, bv, accumulate, vmin, vmax, m, last); break;
  }
}

}  // namespace gemm_avx2
}  // namespace sde
