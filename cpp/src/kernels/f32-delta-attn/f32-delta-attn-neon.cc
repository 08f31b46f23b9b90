// f32-delta-attn, NEON (aarch64): the AVX2 structure with 4-wide vectors.
// Dots four keys at a time; sparse score update keeps a 16-key block in
// registers across the query's nonzero deltas; Cephes-style exp.
#include <arm_neon.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/simd-neon.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

inline float32x4_t exp4(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.33654f)), vdupq_n_f32(88.37626f));
  const float32x4_t fx = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
  x = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
  x = vfmsq_f32(x, fx, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
  y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, x);
  y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, x);
  y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, x);
  y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, x);
  y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, x);
  y = vfmaq_f32(vaddq_f32(x, vdupq_n_f32(1.f)), y, vmulq_f32(x, x));
  const int32x4_t n = vcvtq_s32_f32(fx);
  const int32x4_t half = vshrq_n_s32(n, 1);
  const float32x4_t p1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(half, vdupq_n_s32(127)), 23));
  const float32x4_t p2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vsubq_s32(n, half), vdupq_n_s32(127)), 23));
  return vmulq_f32(vmulq_f32(y, p1), p2);
}

inline float dot_tail(const float* a, const float* b, size_t i, size_t d) {
  float t = 0.f;
  for (; i < d; ++i) t += a[i] * b[i];
  return t;
}

}  // namespace

float sde_f32_attn_dots__neon(size_t n, size_t d, const float* q, const float* k, size_t k_stride, float scale,
                              float* s) {
  float mx = -INFINITY;
  const size_t d4 = d / 4 * 4;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = k + j * k_stride;
    const float* k1 = k0 + k_stride;
    const float* k2 = k1 + k_stride;
    const float* k3 = k2 + k_stride;
    float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < d4; i += 4) {
      const float32x4_t qv = vld1q_f32(q + i);
      a0 = vfmaq_f32(a0, qv, vld1q_f32(k0 + i));
      a1 = vfmaq_f32(a1, qv, vld1q_f32(k1 + i));
      a2 = vfmaq_f32(a2, qv, vld1q_f32(k2 + i));
      a3 = vfmaq_f32(a3, qv, vld1q_f32(k3 + i));
    }
    const float v0 = (vaddvq_f32(a0) + dot_tail(q, k0, d4, d)) * scale;
    const float v1 = (vaddvq_f32(a1) + dot_tail(q, k1, d4, d)) * scale;
    const float v2 = (vaddvq_f32(a2) + dot_tail(q, k2, d4, d)) * scale;
    const float v3 = (vaddvq_f32(a3) + dot_tail(q, k3, d4, d)) * scale;
    s[j] = v0; s[j + 1] = v1; s[j + 2] = v2; s[j + 3] = v3;
    mx = std::fmax(mx, std::fmax(std::fmax(v0, v1), std::fmax(v2, v3)));
  }
  for (; j < n; ++j) {
    const float* kj = k + j * k_stride;
    float32x4_t a0 = vdupq_n_f32(0.f);
    for (size_t i = 0; i < d4; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(q + i), vld1q_f32(kj + i));
    const float v = (vaddvq_f32(a0) + dot_tail(q, kj, d4, d)) * scale;
    s[j] = v;
    mx = std::fmax(mx, v);
  }
  return mx;
}

float sde_f32_attn_sparse_update__neon(size_t n, size_t nnz, const uint32_t* idx, const float* dq, const float* kt,
                                       size_t kt_stride, float* s) {
  float32x4_t vmax = vdupq_n_f32(-INFINITY);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    float32x4_t s0 = vld1q_f32(s + j), s1 = vld1q_f32(s + j + 4), s2 = vld1q_f32(s + j + 8), s3 = vld1q_f32(s + j + 12);
    for (size_t i = 0; i < nnz; ++i) {
      const float32x4_t c = vdupq_n_f32(dq[i]);
      const float* row = kt + static_cast<size_t>(idx[i]) * kt_stride + j;
      s0 = vfmaq_f32(s0, c, vld1q_f32(row));
      s1 = vfmaq_f32(s1, c, vld1q_f32(row + 4));
      s2 = vfmaq_f32(s2, c, vld1q_f32(row + 8));
      s3 = vfmaq_f32(s3, c, vld1q_f32(row + 12));
    }
    vst1q_f32(s + j, s0); vst1q_f32(s + j + 4, s1); vst1q_f32(s + j + 8, s2); vst1q_f32(s + j + 12, s3);
    vmax = vmaxq_f32(vmax, vmaxq_f32(vmaxq_f32(s0, s1), vmaxq_f32(s2, s3)));
  }
  for (; j + 4 <= n; j += 4) {
    float32x4_t s0 = vld1q_f32(s + j);
    for (size_t i = 0; i < nnz; ++i)
      s0 = vfmaq_f32(s0, vdupq_n_f32(dq[i]), vld1q_f32(kt + static_cast<size_t>(idx[i]) * kt_stride + j));
    vst1q_f32(s + j, s0);
    vmax = vmaxq_f32(vmax, s0);
  }
  float mx = vmaxvq_f32(vmax);
  for (; j < n; ++j) {
    float v = s[j];
    for (size_t i = 0; i < nnz; ++i) v += dq[i] * kt[static_cast<size_t>(idx[i]) * kt_stride + j];
    s[j] = v;
    mx = std::fmax(mx, v);
  }
  return mx;
}

float sde_f32_attn_exp_sum__neon(size_t n, float* s, float m) {
  const float32x4_t vm = vdupq_n_f32(m);
  float32x4_t acc = vdupq_n_f32(0.f);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(s + j), vm));
    vst1q_f32(s + j, e);
    acc = vaddq_f32(acc, e);
  }
  float sum = vaddvq_f32(acc);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

float sde_f32_attn_exp_select__neon(size_t n, const float* s, float m, float* ehat, float thr, uint32_t* sel_idx,
                                    float* sel_c, size_t* count) {
  const float32x4_t vm = vdupq_n_f32(m), vthr = vdupq_n_f32(thr);
  size_t c = 0;
  float sum = 0.f;
  size_t j = 0;
  float chv[4], ev[4];
  for (; j + 4 <= n; j += 4) {
    const float32x4_t e = exp4(vsubq_f32(vld1q_f32(s + j), vm));
    const float32x4_t old = vld1q_f32(ehat + j);
    const float32x4_t ch = vsubq_f32(e, old);
    const uint32x4_t big = vcgtq_f32(vabsq_f32(ch), vthr);
    if (vmaxvq_u32(big) == 0) continue;
    vst1q_f32(ehat + j, vbslq_f32(big, e, old));
    vst1q_f32(chv, ch);
    vst1q_f32(ev, e);
    uint32_t bits[4];
    vst1q_u32(bits, big);
    for (int l = 0; l < 4; ++l) {
      if (!bits[l]) continue;
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

void sde_f32_attn_gather_axpy__neon(size_t n, size_t d, const uint32_t* idx, const float* c, const float* v,
                                    size_t v_stride, float* u) {
  size_t i0 = 0;
  for (; i0 + 16 <= d; i0 += 16) {
    float32x4_t u0 = vld1q_f32(u + i0), u1 = vld1q_f32(u + i0 + 4), u2 = vld1q_f32(u + i0 + 8), u3 = vld1q_f32(u + i0 + 12);
    for (size_t j = 0; j < n; ++j) {
      const float32x4_t w = vdupq_n_f32(c[j]);
      const float* row = v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0;
      u0 = vfmaq_f32(u0, w, vld1q_f32(row));
      u1 = vfmaq_f32(u1, w, vld1q_f32(row + 4));
      u2 = vfmaq_f32(u2, w, vld1q_f32(row + 8));
      u3 = vfmaq_f32(u3, w, vld1q_f32(row + 12));
    }
    vst1q_f32(u + i0, u0); vst1q_f32(u + i0 + 4, u1); vst1q_f32(u + i0 + 8, u2); vst1q_f32(u + i0 + 12, u3);
  }
  for (; i0 + 4 <= d; i0 += 4) {
    float32x4_t u0 = vld1q_f32(u + i0);
    for (size_t j = 0; j < n; ++j)
      u0 = vfmaq_f32(u0, vdupq_n_f32(c[j]), vld1q_f32(v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0));
    vst1q_f32(u + i0, u0);
  }
  for (; i0 < d; ++i0) {
    float acc = u[i0];
    for (size_t j = 0; j < n; ++j) acc += c[j] * v[(idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0];
    u[i0] = acc;
  }
}

}  // namespace sde
