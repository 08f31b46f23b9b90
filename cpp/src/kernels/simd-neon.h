// Helpers shared by the NEON kernels. Include only from *-neon.cc files (or
// headers only they include): those are the files built for aarch64.
#pragma once

#include <arm_neon.h>

#include <cstddef>

#if defined(__clang__)
#define SDE_NEON_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SDE_NEON_UNROLL _Pragma("GCC unroll 16")
#else
#define SDE_NEON_UNROLL
#endif

namespace sde {

// Stores the first n floats of v (all four when n >= 4).
inline void store_first(float* p, float32x4_t v, size_t n) {
  if (n >= 4) {
    vst1q_f32(p, v);
    return;
  }
  float32x2_t lo = vget_low_f32(v);
  if (n & 2) {
    vst1_f32(p, lo);
    lo = vget_high_f32(v);
    p += 2;
  }
  if (n & 1) vst1_lane_f32(p, lo, 0);
}

}  // namespace sde
