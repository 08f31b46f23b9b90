// f32-delta-attn, WebAssembly SIMD128: the NEON structure (4-wide), without
// FMA (mul then add); Cephes-style exp with wasm_f32x4_nearest.
#include <wasm_simd128.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace sde {
namespace {

inline v128_t madd(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }

inline float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 2)) +
         (wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 3));
}

inline float hmax(v128_t v) {
  return std::fmax(std::fmax(wasm_f32x4_extract_lane(v, 0), wasm_f32x4_extract_lane(v, 1)),
                   std::fmax(wasm_f32x4_extract_lane(v, 2), wasm_f32x4_extract_lane(v, 3)));
}

inline v128_t exp4(v128_t x) {
  x = wasm_f32x4_min(wasm_f32x4_max(x, wasm_f32x4_splat(-87.33654f)), wasm_f32x4_splat(88.37626f));
  const v128_t fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
  x = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t y = wasm_f32x4_splat(1.9875691500e-4f);
  y = madd(wasm_f32x4_splat(1.3981999507e-3f), y, x);
  y = madd(wasm_f32x4_splat(8.3334519073e-3f), y, x);
  y = madd(wasm_f32x4_splat(4.1665795894e-2f), y, x);
  y = madd(wasm_f32x4_splat(1.6666665459e-1f), y, x);
  y = madd(wasm_f32x4_splat(5.0000001201e-1f), y, x);
  y = madd(wasm_f32x4_add(x, wasm_f32x4_splat(1.f)), y, wasm_f32x4_mul(x, x));
  const v128_t n = wasm_i32x4_trunc_sat_f32x4(fx);
  const v128_t half = wasm_i32x4_shr(n, 1);
  const v128_t p1 = wasm_i32x4_shl(wasm_i32x4_add(half, wasm_i32x4_splat(127)), 23);
  const v128_t p2 = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_sub(n, half), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(wasm_f32x4_mul(y, p1), p2);
}

inline float dot_tail(const float* a, const float* b, size_t i, size_t d) {
  float t = 0.f;
  for (; i < d; ++i) t += a[i] * b[i];
  return t;
}

}  // namespace

float sde_f32_attn_dots__wasmsimd(size_t n, size_t d, const float* q, const float* k, size_t k_stride, float scale,
                                  float* s) {
  float mx = -INFINITY;
  const size_t d4 = d / 4 * 4;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = k + j * k_stride;
    const float* k1 = k0 + k_stride;
    const float* k2 = k1 + k_stride;
    const float* k3 = k2 + k_stride;
    v128_t a0 = wasm_f32x4_splat(0.f), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < d4; i += 4) {
      const v128_t qv = wasm_v128_load(q + i);
      a0 = madd(a0, qv, wasm_v128_load(k0 + i));
      a1 = madd(a1, qv, wasm_v128_load(k1 + i));
      a2 = madd(a2, qv, wasm_v128_load(k2 + i));
      a3 = madd(a3, qv, wasm_v128_load(k3 + i));
    }
    const float v0 = (hsum(a0) + dot_tail(q, k0, d4, d)) * scale;
    const float v1 = (hsum(a1) + dot_tail(q, k1, d4, d)) * scale;
    const float v2 = (hsum(a2) + dot_tail(q, k2, d4, d)) * scale;
    const float v3 = (hsum(a3) + dot_tail(q, k3, d4, d)) * scale;
    s[j] = v0; s[j + 1] = v1; s[j + 2] = v2; s[j + 3] = v3;
    mx = std::fmax(mx, std::fmax(std::fmax(v0, v1), std::fmax(v2, v3)));
  }
  for (; j < n; ++j) {
    const float* kj = k + j * k_stride;
    v128_t a0 = wasm_f32x4_splat(0.f);
    for (size_t i = 0; i < d4; i += 4) a0 = madd(a0, wasm_v128_load(q + i), wasm_v128_load(kj + i));
    const float v = (hsum(a0) + dot_tail(q, kj, d4, d)) * scale;
    s[j] = v;
    mx = std::fmax(mx, v);
  }
  return mx;
}

float sde_f32_attn_sparse_update__wasmsimd(size_t n, size_t nnz, const uint32_t* idx, const float* dq,
                                           const float* kt, size_t kt_stride, float* s) {
  v128_t vmax = wasm_f32x4_splat(-INFINITY);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    v128_t s0 = wasm_v128_load(s + j), s1 = wasm_v128_load(s + j + 4);
    v128_t s2 = wasm_v128_load(s + j + 8), s3 = wasm_v128_load(s + j + 12);
    for (size_t i = 0; i < nnz; ++i) {
      const v128_t c = wasm_f32x4_splat(dq[i]);
      const float* row = kt + static_cast<size_t>(idx[i]) * kt_stride + j;
      s0 = madd(s0, c, wasm_v128_load(row));
      s1 = madd(s1, c, wasm_v128_load(row + 4));
      s2 = madd(s2, c, wasm_v128_load(row + 8));
      s3 = madd(s3, c, wasm_v128_load(row + 12));
    }
    wasm_v128_store(s + j, s0); wasm_v128_store(s + j + 4, s1);
    wasm_v128_store(s + j + 8, s2); wasm_v128_store(s + j + 12, s3);
    vmax = wasm_f32x4_pmax(vmax, wasm_f32x4_pmax(wasm_f32x4_pmax(s0, s1), wasm_f32x4_pmax(s2, s3)));
  }
  for (; j + 4 <= n; j += 4) {
    v128_t s0 = wasm_v128_load(s + j);
    for (size_t i = 0; i < nnz; ++i)
      s0 = madd(s0, wasm_f32x4_splat(dq[i]), wasm_v128_load(kt + static_cast<size_t>(idx[i]) * kt_stride + j));
    wasm_v128_store(s + j, s0);
    vmax = wasm_f32x4_pmax(vmax, s0);
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

float sde_f32_attn_exp_sum__wasmsimd(size_t n, float* s, float m) {
  const v128_t vm = wasm_f32x4_splat(m);
  v128_t acc = wasm_f32x4_splat(0.f);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(s + j), vm));
    wasm_v128_store(s + j, e);
    acc = wasm_f32x4_add(acc, e);
  }
  float sum = hsum(acc);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

float sde_f32_attn_exp_select__wasmsimd(size_t n, const float* s, float m, float* ehat, float thr,
                                        uint32_t* sel_idx, float* sel_c, size_t* count) {
  const v128_t vm = wasm_f32x4_splat(m), vthr = wasm_f32x4_splat(thr);
  size_t c = 0;
  float sum = 0.f;
  size_t j = 0;
  float chv[4];
  for (; j + 4 <= n; j += 4) {
    const v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(s + j), vm));
    const v128_t old = wasm_v128_load(ehat + j);
    const v128_t ch = wasm_f32x4_sub(e, old);
    const v128_t big = wasm_f32x4_gt(wasm_f32x4_abs(ch), vthr);
    int bits = wasm_i32x4_bitmask(big);
    if (bits == 0) continue;
    wasm_v128_store(ehat + j, wasm_v128_bitselect(e, old, big));
    wasm_v128_store(chv, ch);
    for (int l = 0; l < 4; ++l) {
      if (!(bits & (1 << l))) continue;
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

void sde_f32_attn_gather_axpy__wasmsimd(size_t n, size_t d, const uint32_t* idx, const float* c, const float* v,
                                        size_t v_stride, float* u) {
  size_t i0 = 0;
  for (; i0 + 16 <= d; i0 += 16) {
    v128_t u0 = wasm_v128_load(u + i0), u1 = wasm_v128_load(u + i0 + 4);
    v128_t u2 = wasm_v128_load(u + i0 + 8), u3 = wasm_v128_load(u + i0 + 12);
    for (size_t j = 0; j < n; ++j) {
      const v128_t w = wasm_f32x4_splat(c[j]);
      const float* row = v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0;
      u0 = madd(u0, w, wasm_v128_load(row));
      u1 = madd(u1, w, wasm_v128_load(row + 4));
      u2 = madd(u2, w, wasm_v128_load(row + 8));
      u3 = madd(u3, w, wasm_v128_load(row + 12));
    }
    wasm_v128_store(u + i0, u0); wasm_v128_store(u + i0 + 4, u1);
    wasm_v128_store(u + i0 + 8, u2); wasm_v128_store(u + i0 + 12, u3);
  }
  for (; i0 + 4 <= d; i0 += 4) {
    v128_t u0 = wasm_v128_load(u + i0);
    for (size_t j = 0; j < n; ++j)
      u0 = madd(u0, wasm_f32x4_splat(c[j]), wasm_v128_load(v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0));
    wasm_v128_store(u + i0, u0);
  }
  for (; i0 < d; ++i0) {
    float acc = u[i0];
    for (size_t j = 0; j < n; ++j) acc += c[j] * v[(idx ? static_cast<size_t>(idx[j]) : j) * v_stride + i0];
    u[i0] = acc;
  }
}

}  // namespace sde
