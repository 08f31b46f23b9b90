// Helpers shared by the AVX2 kernels. Include only from *-avx2.cc files (or
// headers only they include): those are the files built with AVX2 flags.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace sde {

// Stores the first n (1..8) lanes of v. AMD cores microcode vmaskmovps
// stores (tens of cycles), so a tail goes out in 4/2/1-float pieces.
inline void store_first_lanes(float* dst, __m256 v, size_t n) {
  if (n == 8) {
    _mm256_storeu_ps(dst, v);
    return;
  }
  __m128 x = _mm256_castps256_ps128(v);
  if (n & 4) {
    _mm_storeu_ps(dst, x);
    x = _mm256_extractf128_ps(v, 1);
    dst += 4;
  }
  if (n & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(dst), x);
    x = _mm_movehl_ps(x, x);
    dst += 2;
  }
  if (n & 1) _mm_store_ss(dst, x);
}

}  // namespace sde
