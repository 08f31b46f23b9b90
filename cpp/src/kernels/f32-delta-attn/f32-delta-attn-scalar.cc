// f32-delta-attn, scalar: the reference the SIMD variants are tested against.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace sde {

float sde_f32_attn_dots__scalar(size_t n, size_t d, const float* q, const float* k, size_t k_stride,
                                float scale, float* s) {
  float mx = -INFINITY;
  for (size_t j = 0; j < n; ++j, k += k_stride) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
      for (size_t l = 0; l < 8; ++l) acc[l] += q[i + l] * k[i + l];
    for (; i < d; ++i) acc[0] += q[i] * k[i];
    const float v = (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) * scale;
    s[j] = v;
    mx = v > mx ? v : mx;
  }
  return mx;
}

float sde_f32_attn_sparse_update__scalar(size_t n, size_t nnz, const uint32_t* idx, const float* dq,
                                         const float* kt, size_t kt_stride, float* s) {
  for (size_t i = 0; i < nnz; ++i) {
    const float c = dq[i];
    const float* row = kt + static_cast<size_t>(idx[i]) * kt_stride;
    for (size_t j = 0; j < n; ++j) s[j] += c * row[j];
  }
  float mx = -INFINITY;
  for (size_t j = 0; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
  return mx;
}

float sde_f32_attn_exp_sum__scalar(size_t n, float* s, float m) {
  float sum = 0.f;
  for (size_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

float sde_f32_attn_exp_select__scalar(size_t n, const float* s, float m, float* ehat, float thr,
                                      uint32_t* sel_idx, float* sel_c, size_t* count) {
  size_t c = 0;
  float sum = 0.f;
  for (size_t j = 0; j < n; ++j) {
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

void sde_f32_attn_gather_axpy__scalar(size_t n, size_t d, const uint32_t* idx, const float* c,
                                      const float* v, size_t v_stride, float* u) {
  for (size_t j = 0; j < n; ++j) {
    const float w = c[j];
    const float* row = v + (idx ? static_cast<size_t>(idx[j]) : j) * v_stride;
    for (size_t i = 0; i < d; ++i) u[i] += w * row[i];
  }
}

}  // namespace sde
