// AVX2+FMA GEMM microkernel, 6 rows x 16 columns: 12 accumulators, 2 B
// vectors and 1 broadcast fill the 16 ymm registers. Column remainders use
// masked loads and partial stores, so nothing beyond nc columns of B or C is
// touched.
#include <immintrin.h>

#include <algorithm>

#include "kernels/f32-gemm/f32-gemm-avx2.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

alignas(64) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                            0,  0,  0,  0,  0,  0,  0,  0};

inline __m256i tail_mask(size_t n) {  // first n lanes (1..8) set
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
}

}  // namespace

void sde_f32_gemm_ukernel_6x16__avx2(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                     const float* b, size_t ldb, float* c, size_t ldc,
                                     const float* bias, int accumulate, float min,
                                     float max) {
  // Rows beyond mr alias the last valid row (their A rows are zero); they are
  // stored first so the valid row's value lands last.
  float* c0 = c;
  float* c1 = mr > 1 ? c0 + ldc : c0;
  float* c2 = mr > 2 ? c1 + ldc : c1;
  float* c3 = mr > 3 ? c2 + ldc : c2;
  float* c4 = mr > 4 ? c3 + ldc : c3;
  float* c5 = mr > 5 ? c4 + ldc : c4;
  float bv[6] = {0, 0, 0, 0, 0, 0};
  if (bias != nullptr) {
    for (size_t r = 0; r < 6; ++r) bv[r] = bias[std::min(r, mr - 1)];
  }
  const __m256 vmin = _mm256_set1_ps(min);
  const __m256 vmax = _mm256_set1_ps(max);

  for (; nc >= 16; nc -= 16) {
    __m256 acc00, acc01, acc10, acc11, acc20, acc21, acc30, acc31, acc40, acc41, acc50, acc51;
    if (accumulate) {
      acc00 = _mm256_loadu_ps(c0); acc01 = _mm256_loadu_ps(c0 + 8);
      acc10 = _mm256_loadu_ps(c1); acc11 = _mm256_loadu_ps(c1 + 8);
      acc20 = _mm256_loadu_ps(c2); acc21 = _mm256_loadu_ps(c2 + 8);
      acc30 = _mm256_loadu_ps(c3); acc31 = _mm256_loadu_ps(c3 + 8);
      acc40 = _mm256_loadu_ps(c4); acc41 = _mm256_loadu_ps(c4 + 8);
      acc50 = _mm256_loadu_ps(c5); acc51 = _mm256_loadu_ps(c5 + 8);
    } else {
      acc00 = acc01 = _mm256_set1_ps(bv[0]);
      acc10 = acc11 = _mm256_set1_ps(bv[1]);
      acc20 = acc21 = _mm256_set1_ps(bv[2]);
      acc30 = acc31 = _mm256_set1_ps(bv[3]);
      acc40 = acc41 = _mm256_set1_ps(bv[4]);
      acc50 = acc51 = _mm256_set1_ps(bv[5]);
    }
    const float* ap = a_packed;
    const float* bp = b;
    for (size_t k = kc; k != 0; --k) {
      const __m256 vb0 = _mm256_loadu_ps(bp);
      const __m256 vb1 = _mm256_loadu_ps(bp + 8);
      bp += ldb;
      __m256 va = _mm256_broadcast_ss(ap + 0);
      acc00 = _mm256_fmadd_ps(va, vb0, acc00); acc01 = _mm256_fmadd_ps(va, vb1, acc01);
      va = _mm256_broadcast_ss(ap + 1);
      acc10 = _mm256_fmadd_ps(va, vb0, acc10); acc11 = _mm256_fmadd_ps(va, vb1, acc11);
      va = _mm256_broadcast_ss(ap + 2);
      acc20 = _mm256_fmadd_ps(va, vb0, acc20); acc21 = _mm256_fmadd_ps(va, vb1, acc21);
      va = _mm256_broadcast_ss(ap + 3);
      acc30 = _mm256_fmadd_ps(va, vb0, acc30); acc31 = _mm256_fmadd_ps(va, vb1, acc31);
      va = _mm256_broadcast_ss(ap + 4);
      acc40 = _mm256_fmadd_ps(va, vb0, acc40); acc41 = _mm256_fmadd_ps(va, vb1, acc41);
      va = _mm256_broadcast_ss(ap + 5);
      acc50 = _mm256_fmadd_ps(va, vb0, acc50); acc51 = _mm256_fmadd_ps(va, vb1, acc51);
      ap += 6;
    }
#define SDE_CLAMP(v) v = _mm256_min_ps(_mm256_max_ps(v, vmin), vmax)
    SDE_CLAMP(acc00); SDE_CLAMP(acc01); SDE_CLAMP(acc10); SDE_CLAMP(acc11);
    SDE_CLAMP(acc20); SDE_CLAMP(acc21); SDE_CLAMP(acc30); SDE_CLAMP(acc31);
    SDE_CLAMP(acc40); SDE_CLAMP(acc41); SDE_CLAMP(acc50); SDE_CLAMP(acc51);
    _mm256_storeu_ps(c5, acc50); _mm256_storeu_ps(c5 + 8, acc51);
    _mm256_storeu_ps(c4, acc40); _mm256_storeu_ps(c4 + 8, acc41);
    _mm256_storeu_ps(c3, acc30); _mm256_storeu_ps(c3 + 8, acc31);
    _mm256_storeu_ps(c2, acc20); _mm256_storeu_ps(c2 + 8, acc21);
    _mm256_storeu_ps(c1, acc10); _mm256_storeu_ps(c1 + 8, acc11);
    _mm256_storeu_ps(c0, acc00); _mm256_storeu_ps(c0 + 8, acc01);
    b += 16;
    c0 += 16; c1 += 16; c2 += 16; c3 += 16; c4 += 16; c5 += 16;
  }
  if (nc == 0) return;

  // Remainder of 1..15 columns: up to two 8-lane halves, the last one masked.
  const size_t n_lo = std::min<size_t>(nc, 8);
  const size_t n_hi = nc - n_lo;  // 0..7
  const __m256i m_lo = tail_mask(n_lo);
  const __m256i m_hi = n_hi ? tail_mask(n_hi) : _mm256_setzero_si256();
  float* cr[6] = {c0, c1, c2, c3, c4, c5};
  __m256 acc_lo[6], acc_hi[6];
  for (int r = 0; r < 6; ++r) {
    if (accumulate) {
      acc_lo[r] = _mm256_maskload_ps(cr[r], m_lo);
      acc_hi[r] = _mm256_maskload_ps(cr[r] + 8, m_hi);
    } else {
      acc_lo[r] = acc_hi[r] = _mm256_set1_ps(bv[r]);
    }
  }
  const float* ap = a_packed;
  const float* bp = b;
  if (n_hi) {
    for (size_t k = kc; k != 0; --k) {
      const __m256 vb0 = _mm256_loadu_ps(bp);
      const __m256 vb1 = _mm256_maskload_ps(bp + 8, m_hi);
      bp += ldb;
      for (int r = 0; r < 6; ++r) {
        const __m256 va = _mm256_broadcast_ss(ap + r);
        acc_lo[r] = _mm256_fmadd_ps(va, vb0, acc_lo[r]);
        acc_hi[r] = _mm256_fmadd_ps(va, vb1, acc_hi[r]);
      }
      ap += 6;
    }
  } else {
    for (size_t k = kc; k != 0; --k) {
      const __m256 vb0 = _mm256_maskload_ps(bp, m_lo);
      bp += ldb;
      for (int r = 0; r < 6; ++r) {
        acc_lo[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + r), vb0, acc_lo[r]);
      }
      ap += 6;
    }
  }
  for (int r = 5; r >= 0; --r) {
    SDE_CLAMP(acc_lo[r]);
    SDE_CLAMP(acc_hi[r]);
    store_first_lanes(cr[r], acc_lo[r], n_lo);
    if (n_hi) store_first_lanes(cr[r] + 8, acc_hi[r], n_hi);
  }
#undef SDE_CLAMP
}

}  // namespace sde
