// Declarations of the f32-gspmm microkernels, generated from f32-gspmm.inc
// (the same list feeds dispatch.cc, test_gspmm and bench_gspmm).
#pragma once

#include "kernels/kernels.h"

namespace sde {

#define SDE_GSPMM_UKERNEL(fn, mr, b, isa)                                                  \
  void fn(size_t pixels, size_t block_rows, const float* input, size_t input_stride,       \
          const float* weights, const int32_t* row_index, const uint32_t* nnz, float* output, \
          size_t output_stride, float min, float max);
#include "kernels/f32-gspmm/f32-gspmm.inc"
#undef SDE_GSPMM_UKERNEL

}  // namespace sde
