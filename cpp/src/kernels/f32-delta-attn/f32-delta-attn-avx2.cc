// f32-delta-attn, AVX2 + FMA. Dot products four keys at a time; the sparse
// score update keeps a 32-key block of scores in registers across all the
// query's nonzero deltas (keys transposed: one row per head-dim element);
// exp is a Cephes-style polynomial (about 2 ulp on the range used).
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/simd-avx2.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  // 2^fx: fx in [-126, 127] after the clamp; build the exponent in two halves so fx = -126..127 stays normal.
  const __m256i n = _mm256_cvtps_epi32(fx);
  const __m256i half = _mm256_srai_epi32(n, 1);
  const __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  const __m256 p2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, half), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(y, p1), p2);
}

inline float dot_tail(const float* a, const float* b, size_t i, size_t d) {
  float t = 0.f;
  for (; i < d; ++i) t += a[i] * b[i];
  return t;
}

}  // namespace

float sde_f32_attn_dots__avx2(size_t n, size_t d, const float* q, const float* k, size_t k_stride,
                              float scale, float* s) {
  float mx = -INFINITY;
  const size_t d8 = d / 8 * 8;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = k + j * k_stride;
    const float* k1 = k0 + k_stride;
    const float* k2 = k1 + k_stride;
    const float* k3 = k2 + k_stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (size_t i = 0; i < d8; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
    }
    const float v0 = (hsum(a0) + dot_tail(q, k0, d8, d)) * scale;
    const float v1 = (hsum(a1) + dot_tail(q, k1, d8, d)) * scale;
    const float v2 = (hsum(a2) + dot_tail(q, k2, d8, d)) * scale;
    const float v3 = (hsum(a3) + dot_tail(q, k3, d8, d)) * scale;
    s[j] = v0; s[j + 1] = v1; s[j + 2] = v2; s[j + 3] = v3;
    mx = std::fmax(mx, std::fmax(std::fmax(v0, v1), std::fmax(v2, v3)));
  }
  for (; j < n; ++j) {
    const float* kj = k + j * k_stride;
    __m256 a0 = _mm256_setzero_ps();
    for (size_t i = 0; i < d8; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), a0);
    const float v = (hsum(a0) + dot_tail(q, kj, d8, d)) * scale;
    s[j] = v;
    mx = std::fmax(mx, v);
  }
  return mx;
}

float sde_f32_attn_sparse_update__avx2(size_t n, size_t nnz, const uint32_t* idx, const float* dq,
                                       const float* kt, size_t kt_stride, float* s) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256 s0 = _mm256_loadu_ps(s + j), s1 = _mm256_loadu_ps(s + j + 8);
    __m256 s2 = _mm256_loadu_ps(s + j + 16), s3 = _mm256_loadu_ps(s + j + 24);
    for (size_t i = 0; i < nnz; ++i) {
      const __m256 c = _mm256_broadcast_ss(dq + i);
      const float* row = kt + static_cast<size_t>(idx[i]) * kt_stride + j;
      s0 = _mm256_fmadd_ps(c, _mm256_loadu_ps(row), s0);
      s1 = _mm256_fmadd_ps(c, _mm256_loadu_ps(row + 8), s1);
      s2 = _mm256_fmadd_ps(c, _mm256_loadu_ps(row + 16), s2);
      s3 = _mm256_fmadd_ps(c, _mm256_loadu_ps(row + 24), s3);
    }
    _mm256_storeu_ps(s + j, s0); _mm256_storeu_ps(s + j + 8, s1);
    _mm256_storeu_ps(s + j + 16, s2); _mm256_storeu_ps(s + j + 24, s3);
    vmax = _mm256_max_ps(vmax, _mm256_max_ps(_mm256_max_ps(s0, s1), _mm256_max_ps(s2, s3)));
  }
  for (; j + 8 <= n; j += 8) {
    __m256 s0 = _mm256_loadu_ps(s + j);
    for (size_t i = 0; i < nnz; ++i)
      s0 = _mm256_fmadd_ps(_mm256_broadcast_ss(dq + i), _mm256_loadu_ps(kt + static_cast<size_t>(idx[i]) * kt_stride + j), s0);
    _mm256_storeu_ps(s + j, s0);
    vmax = _mm256_max_ps(vmax, s0);
  }
  float mx = hmax(vmax);
  for (; j < n; ++j) {
    float v = s[j];
    for (size_t i = 0; i < nnz; ++i) v += dq[i] * kt[static_cast<size_t>(idx[i]) * kt_stride + j];
    s[j] = v;
    mx = std::fmax(mx, v);
  }
  return mx;
}

float sde_f32_attn_exp_sum__avx2(size_t n, float* s, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum(acc);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

float sde_f32_attn_exp_select__avx2(size_t n, const float* s, float m, float* ehat, float thr,
                                    uint32_t* sel_idx, float* sel_c, size_t* count) {
  const __m256 vm = _mm256_set1_ps(m), vthr = _mm256_set1_ps(thr);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  size_t c = 0;
  float sum = 0.f;
  size_t j = 0;
  alignas(32) float chv[8], ev[8];
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    const __m256 old = _mm256_loadu_ps(ehat + j);
    const __m256 ch = _mm256_sub_ps(e, old);
    const __m256 big = _mm256_cmp_ps(_mm256_and_ps(ch, abs_mask), vthr, _CMP_GT_OQ);
    int bits = _mm256_movemask_ps(big);
    if (bits == 0) continue;
    _mm256_storeu_ps(ehat + j, _mm256_blendv_ps(old, e, big));
    _mm256_store_ps(chv, ch);
    _mm256_store_ps(ev, e);
    while (bits) {
      const int l = __builtin_ctz(static_cast<unsigned>(bits));
      bits &= bits - 1;
      sel_idx[c] = static_cast<uint32_t>(j + l);
      sel_c[c] = chv[l];
      sum += chv[l];
      ++c;
    }
  }
  for (; j < n; ++j) {
    const float e = std::exp(s[j] - m);
    const float ch = e - ehat[j];
    if (std::fabs(ch) > thr) {
      sel_idx[c] = static_cast<uint32_t>(j);
      sel_c[c] = ch;
      ++c;
      sum += ch;
      ehat[j] = e;
    }
  }
  *count = c;
  return sum;
}

void sde_f32_attn_gather_axpy__avx2(size_t n, size_t d, const uint32_t* idx, const float* c,
                                    const float* v, size_t v_stride, float* u) {
  size_t i0 = 0;
  for (; i0 + 32 <= d; i0 += 32) {
    __m256 u0 = _mm256_loadu_ps(u + i0), u1 = _mm256_loadu_ps(u + i0 + 8);
    __m256 u2 = _mm256_loadu_ps(u + i0 + 16), u3 = _mm256_loadu_ps(u + i0 + 24);
    for (size_t j = 0; j < n; ++j) {
      const __m256 w = _mm256_broadcast_ss(c + j);
      const float* row = v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0;
      u0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row), u0);
      u1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 8), u1);
      u2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 16), u2);
      u3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 24), u3);
    }
    _mm256_storeu_ps(u + i0, u0); _mm256_storeu_ps(u + i0 + 8, u1);
    _mm256_storeu_ps(u + i0 + 16, u2); _mm256_storeu_ps(u + i0 + 24, u3);
  }
  for (; i0 + 8 <= d; i0 += 8) {
    __m256 u0 = _mm256_loadu_ps(u + i0);
    for (size_t j = 0; j < n; ++j)
      u0 = _mm256_fmadd_ps(_mm256_broadcast_ss(c + j),
                           _mm256_loadu_ps(v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0), u0);
    _mm256_storeu_ps(u + i0, u0);
  }
  for (; i0 < d; ++i0) {
    float acc = u[i0];
    for (size_t j = 0; j < n; ++j) acc += c[j] * v[(idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0];
    u[i0] = acc;
  }
}

}  // namespace sde
