// Declarations of every microkernel, generated from the family `.inc` lists
// (the same lists feed dispatch.cc, the tests and the benchmarks).
#pragma once

#include "kernels/kernels.h"

namespace sde {

#define SDE_GEMM_UKERNEL(fn, mr, nr, isa)                                              \
  void fn(size_t mr_, size_t nc, size_t kc, const float* a_packed, const float* b,     \
          size_t ldb, float* c, size_t ldc, const float* bias, int accumulate, float min, \
          float max);
#include "kernels/f32-gemm/f32-gemm.inc"
#undef SDE_GEMM_UKERNEL

#define SDE_GEMV_UKERNEL(fn, nr, isa)                                                  \
  void fn(size_t nc, size_t k, const float* x, const float* w, const float* bias, float* y, \
          float min, float max);
#include "kernels/f32-gemv/f32-gemv.inc"
#undef SDE_GEMV_UKERNEL

#define SDE_GSPMV_UKERNEL(fn, b, isa)                                                      \
  void fn(size_t block_rows, const float* x, const float* weights, const uint16_t* col_index, \
          const uint32_t* nnz, float* y, float min, float max);
#include "kernels/f32-gspmv/f32-gspmv.inc"
#undef SDE_GSPMV_UKERNEL

#define SDE_DWCONV_UKERNEL(fn, k, s, isa)                                                 \
  void fn(size_t out_h, size_t out_w, const float* in, size_t in_stride, const float* w, \
          float bias, float* out, size_t out_stride, float min, float max);
#include "kernels/f32-dwconv2d-chw/f32-dwconv2d-chw.inc"
#undef SDE_DWCONV_UKERNEL

#define SDE_SPMM24_UKERNEL(fn, nr, isa)                                                        \
  void fn(size_t m, size_t nc, size_t k, const float* x, size_t x_stride, const float* w,       \
          const uint32_t* widx, const float* bias, float* y, size_t y_stride);
#include "kernels/f32-spmm24/f32-spmm24.inc"
#undef SDE_SPMM24_UKERNEL

#define SDE_DELTA_ATTN_UKERNEL(sfx, isa)                                                          \
  float sde_f32_attn_dots__##sfx(size_t n, size_t d, const float* q, const float* k, size_t k_stride, \
                                 float scale, float* s);                                             \
  float sde_f32_attn_sparse_update__##sfx(size_t n, size_t nnz, const uint32_t* idx, const float* dq, \
                                          const float* kt, size_t kt_stride, float* s);              \
  float sde_f32_attn_exp_sum__##sfx(size_t n, float* s, float m);                                    \
  float sde_f32_attn_exp_select__##sfx(size_t n, const float* s, float m, float* ehat, float thr,    \
                                       uint32_t* sel_idx, float* sel_c, size_t* count);              \
  void sde_f32_attn_gather_axpy__##sfx(size_t n, size_t d, const uint32_t* idx, const float* c,      \
                                       const float* v, size_t v_stride, float* u);
#include "kernels/f32-delta-attn/f32-delta-attn.inc"
#undef SDE_DELTA_ATTN_UKERNEL

}  // namespace sde
