// 2-D convolution on NCHW tensors, built from the f32-gemm and
// f32-dwconv2d-chw microkernels. Weights are packed once at construction;
// run() allocates nothing and never throws.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "kernels/kernels.h"
#include "operators/aligned_buffer.h"

namespace sde {

class ThreadPool;

struct Conv2dParams {
  size_t in_channels = 0, out_channels = 0, groups = 1;
  size_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  float out_min = -INFINITY, out_max = INFINITY;  // fused clamp (Relu = [0,inf), Relu6 = [0,6])
};

class Conv2dNchw {
 public:
  // weights: ONNX layout [out_c, in_c/groups, kh, kw]; bias: out_c floats or nullptr.
  // table: kernels to use (nullptr = kernels(), the start-up dispatch).
  // Throws std::invalid_argument on inconsistent params.
  //
  // Paths, chosen here once:
  //  - depthwise (groups == in_c == out_c): fast kernels for 3x3/5x5, stride
  //    1/2 (both axes equal), dilation 1; otherwise a direct scalar loop;
  //  - 1x1, stride 1, no padding, groups 1: GEMM straight on the input;
  //  - anything else: im2col per group + GEMM.
  Conv2dNchw(const Conv2dParams& p, const float* weights, const float* bias,
             const KernelTable* table = nullptr);

  size_t out_h(size_t in_h) const;
  size_t out_w(size_t in_w) const;
  // Bytes of scratch run() needs for this input size with up to `threads` threads.
  size_t scratch_bytes(size_t in_h, size_t in_w, size_t threads) const;
  // x: [batch, in_c, in_h, in_w], y: [batch, out_c, out_h, out_w] (must not
  // overlap x). scratch: scratch_bytes(in_h, in_w, t) bytes, 64-byte aligned,
  // with t >= the pool's thread count (1 when pool is null).
  void run(size_t batch, size_t in_h, size_t in_w, const float* x, float* y, void* scratch,
           ThreadPool* pool) const;
  // e.g. "dwconv3x3s2/avx2", "gemm1x1/avx2", "im2col+gemm/scalar", "dwconv-direct/scalar".
  const char* path_name() const { return path_name_.c_str(); }
  const Conv2dParams& params() const { return p_; }

 private:
  enum class Path { kDwFast, kDwDirect, kGemm1x1, kIm2col };

  size_t plane_floats(size_t in_h, size_t in_w) const;  // depthwise padded plane + slack
  void run_dw_fast(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                   void* scratch, ThreadPool* pool) const;
  void run_dw_direct(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                     ThreadPool* pool) const;
  void run_gemm(size_t batch, size_t in_h, size_t in_w, const float* x, float* y, void* scratch,
                ThreadPool* pool) const;

  Conv2dParams p_;
  Path path_;
  std::string path_name_;
  GemmConfig gemm_;
  f32_dwconv2d_chw_fn dw_kernel_ = nullptr;
  size_t kc_ = 0;              // GEMM K per group: in_c/groups * kh * kw
  AlignedFloats weights_;      // packed A panels per group, or depthwise weights
  AlignedFloats bias_;         // out_c floats (zeros when absent)
};

}  // namespace sde
