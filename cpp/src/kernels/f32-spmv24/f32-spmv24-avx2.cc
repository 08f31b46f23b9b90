// AVX2 f32-spmv24: the stored 2:4 bytes are decoded in registers, no gather.
// Four group bytes (one 32-bit load) cover 16 inputs and 8 kept weights:
// lane j's position is (word >> shift[j]) & 3 plus 4 * (j / 2), i.e. 0..15.
// vpermps reads only the low three index bits, so permuting the low and the
// high 8 inputs with the same index vector and blending lanes 4..7 from the
// high half yields the 8 activations the 8 weights multiply. Four output rows
// run together so their independent FMA chains overlap.
#include <immintrin.h>

#include <cstring>

#include "kernels/ukernels.h"

namespace sde {
namespace {

inline __m256 gather16(const float* x16, const uint8_t* idx4, __m256i shifts, __m256i base) {
  uint32_t word;
  std::memcpy(&word, idx4, 4);
  const __m256i pos = _mm256_add_epi32(
      _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts),
                       _mm256_set1_epi32(3)),
      base);
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x16), pos);
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x16 + 8), pos);
  return _mm256_blend_ps(lo, hi, 0xF0);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float tail(size_t g0, size_t groups, const float* x, const float* v, const uint8_t* idx) {
  float acc = 0.0f;
  for (size_t g = g0; g < groups; ++g) {
    const float* xg = x + 4 * g;
    acc += v[2 * g] * xg[idx[g] & 3] + v[2 * g + 1] * xg[(idx[g] >> 2) & 3];
  }
  return acc;
}

}  // namespace

void sde_f32_spmv24_ukernel_4__avx2(size_t nc, size_t k, const float* x, const float* values,
                                    const uint8_t* indices, const float* bias, float* y) {
  const __m256i shifts = _mm256_setr_epi32(0, 2, 8, 10, 16, 18, 24, 26);
  const __m256i base = _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12);
  const size_t groups = k / 4, half = k / 2;
  const size_t main_groups = groups & ~size_t(3);  // multiples of 4 groups = 16 inputs
  size_t o = 0;
  for (; o + 4 <= nc; o += 4) {
    const float* v0 = values + o * half;
    const float* v1 = v0 + half;
    const float* v2 = v1 + half;
    const float* v3 = v2 + half;
    const uint8_t* i0 = indices + o * groups;
    const uint8_t* i1 = i0 + groups;
    const uint8_t* i2 = i1 + groups;
    const uint8_t* i3 = i2 + groups;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (size_t g = 0; g < main_groups; g += 4) {
      const float* x16 = x + 4 * g;
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v0 + 2 * g), gather16(x16, i0 + g, shifts, base), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v1 + 2 * g), gather16(x16, i1 + g, shifts, base), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(v2 + 2 * g), gather16(x16, i2 + g, shifts, base), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(v3 + 2 * g), gather16(x16, i3 + g, shifts, base), a3);
    }
    const float b0 = bias != nullptr ? bias[o] : 0.0f, b1 = bias != nullptr ? bias[o + 1] : 0.0f;
    const float b2 = bias != nullptr ? bias[o + 2] : 0.0f, b3 = bias != nullptr ? bias[o + 3] : 0.0f;
    y[o] = hsum(a0) + tail(main_groups, groups, x, v0, i0) + b0;
    y[o + 1] = hsum(a1) + tail(main_groups, groups, x, v1, i1) + b1;
    y[o + 2] = hsum(a2) + tail(main_groups, groups, x, v2, i2) + b2;
    y[o + 3] = hsum(a3) + tail(main_groups, groups, x, v3, i3) + b3;
  }
  for (; o < nc; ++o) {
    const float* v0 = values + o * half;
    const uint8_t* i0 = indices + o * groups;
    __m256 a0 = _mm256_setzero_ps();
    for (size_t g = 0; g < main_groups; g += 4) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v0 + 2 * g), gather16(x + 4 * g, i0 + g, shifts, base), a0);
    }
    y[o] = hsum(a0) + tail(main_groups, groups, x, v0, i0) + (bias != nullptr ? bias[o] : 0.0f);
  }
}

}  // namespace sde
