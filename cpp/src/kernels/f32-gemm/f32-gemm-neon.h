// Shared body of the NEON (aarch64 ASIMD, FMA) GEMM microkernels, included
// only by f32-gemm-*-neon.cc files.
//
// MR rows x NV vectors of 4 columns: MR*NV accumulators; per k, NV loads of B
// and MR/4 loads of the packed A column, whose lanes feed the FMAs directly
// (fmla by element), so A needs no broadcast instruction.
// Column remainders: full 4-column vectors first, then one 1..3-column vector
// loaded and stored piecewise, so nothing beyond nc columns of B or C is read
// or written. Rows beyond mr alias the last valid row (their A rows are zero)
// and are stored first, so the valid row's value lands last.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <utility>

#include "kernels/simd-neon.h"

namespace sde {
namespace gemm_neon {

// Loads/stores the first n (1..4) floats; lanes beyond n are zero.
inline float32x4_t load_first(const float* p, size_t n) {
  switch (n) {
    case 4: return vld1q_f32(p);
    case 3: return vcombine_f32(vld1_f32(p), vld1_lane_f32(p + 2, vdup_n_f32(0.0f), 0));
    case 2: return vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    default: return vld1q_lane_f32(p, vdupq_n_f32(0.0f), 0);
  }
}

// acc[r] += b * A[r] for each row r, with A[r] taken as a lane of `a`.
template <int NV, size_t... R>
inline void fma_rows(float32x4_t (*acc)[NV], const float32x4_t* vb, const float32x4_t* a,
                     std::index_sequence<R...>) {
  SDE_NEON_UNROLL
  for (int v = 0; v < NV; ++v) {
    ((acc[R][v] = vfmaq_laneq_f32(acc[R][v], vb[v], a[R / 4], R % 4)), ...);
  }
}

// One MR x (4*NV) tile; if PARTIAL, vector NV-1 covers `last` (1..3) columns.
template <int MR, int NV, bool PARTIAL>
inline void tile(size_t kc, const float* a, const float* b, size_t ldb, float* const* c,
                 const float* bv, int accumulate, float32x4_t vmin, float32x4_t vmax,
                 size_t last) {
  static_assert(MR % 4 == 0, "A columns are loaded as whole vectors");
  float32x4_t acc[MR][NV];
  SDE_NEON_UNROLL
  for (int r = 0; r < MR; ++r) {
    SDE_NEON_UNROLL
    for (int v = 0; v < NV; ++v) {
      if (accumulate) {
        acc[r][v] = (PARTIAL && v == NV - 1) ? load_first(c[r] + 4 * v, last)
                                             : vld1q_f32(c[r] + 4 * v);
      } else {
        acc[r][v] = vdupq_n_f32(bv[r]);
      }
    }
  }
  for (size_t k = kc; k != 0; --k) {
    float32x4_t vb[NV];
    SDE_NEON_UNROLL
    for (int v = 0; v < NV; ++v) {
      vb[v] = (PARTIAL && v == NV - 1) ? load_first(b + 4 * v, last) : vld1q_f32(b + 4 * v);
    }
    b += ldb;
    float32x4_t va[MR / 4];
    SDE_NEON_UNROLL
    for (int i = 0; i < MR / 4; ++i) va[i] = vld1q_f32(a + 4 * i);
    a += MR;
    fma_rows<NV>(acc, vb, va, std::make_index_sequence<MR>());
  }
  SDE_NEON_UNROLL
  for (int r = MR - 1; r >= 0; --r) {
    SDE_NEON_UNROLL
    for (int v = 0; v < NV; ++v) {
      const float32x4_t y = vminq_f32(vmaxq_f32(acc[r][v], vmin), vmax);
      if (PARTIAL && v == NV - 1) {
        store_first(c[r] + 4 * v, y, last);
      } else {
        vst1q_f32(c[r] + 4 * v, y);
      }
    }
  }
}

template <int MR, int NV>
void gemm(size_t mr, size_t nc, size_t kc, const float* a_packed, const float* b, size_t ldb,
          float* c, size_t ldc, const float* bias, int accumulate, float min, float max) {
  constexpr size_t NR = 4 * NV;
  float* crow[MR];
  float bv[MR];
  for (int r = 0; r < MR; ++r) {
    const size_t rr = std::min<size_t>(r, mr - 1);
    crow[r] = c + rr * ldc;
    bv[r] = (bias != nullptr && size_t(r) < mr) ? bias[r] : 0.0f;
  }
  const float32x4_t vmin = vdupq_n_f32(min), vmax = vdupq_n_f32(max);
  size_t n = nc;
  for (; n >= NR; n -= NR) {
    tile<MR, NV, false>(kc, a_packed, b, ldb, crow, bv, accumulate, vmin, vmax, 0);
    b += NR;
    for (int r = 0; r < MR; ++r) crow[r] += NR;
  }
  for (; n >= 4; n -= 4) {
    tile<MR, 1, false>(kc, a_packed, b, ldb, crow, bv, accumulate, vmin, vmax, 0);
    b += 4;
    for (int r = 0; r < MR; ++r) crow[r] += 4;
  }
  if (n != 0) tile<MR, 1, true>(kc, a_packed, b, ldb, crow, bv, accumulate, vmin, vmax, n);
}

}  // namespace gemm_neon
}  // namespace sde
