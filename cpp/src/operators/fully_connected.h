// Fully connected layer: y[m, n] = clamp(x[m, k] * W + bias), row-major.
// The weights are the GEMM's right operand, packed once into NR-wide strips;
// x is packed into MR-row panels per call (scratch). run() allocates nothing.
// One row (m = 1, LLM decode) takes the f32-gemv path over the same strips:
// no packing of x, and the weights stream through once.
#pragma once

#include <cstddef>

#include "kernels/kernels.h"
#include "operators/aligned_buffer.h"

namespace sde {

class ThreadPool;

class FullyConnected {
 public:
  // weights: [k, n] row-major when weights_are_k_by_n (ONNX MatMul), else
  // [n, k] row-major (ONNX Gemm with transB=1). bias: n floats or nullptr.
  // table: kernels to use (nullptr = kernels()). Throws std::invalid_argument.
  FullyConnected(size_t k, size_t n, const float* weights, bool weights_are_k_by_n,
                 const float* bias, float out_min, float out_max,
                 const KernelTable* table = nullptr);

  size_t k() const { return k_; }
  size_t n() const { return n_; }
  // Bytes of scratch run() needs for m rows with up to `threads` threads.
  size_t scratch_bytes(size_t m, size_t threads) const;
  // x: [m, k], y: [m, n] row-major (must not overlap). scratch: scratch_bytes()
  // bytes, 64-byte aligned.
  void run(size_t m, const float* x, float* y, void* scratch, ThreadPool* pool) const;

 private:
  size_t k_, n_;
  float out_min_, out_max_;
  bool has_bias_;
  GemmConfig gemm_;
  GemvConfig gemv_;  // m = 1 path over the same packed strips (ukernel nullptr if none)
  AlignedFloats b_packed_;  // weights as [k, n], NR-wide strips
  AlignedFloats bias_;
};

}  // namespace sde
