// Blocked, threaded GEMM driver over one f32-gemm microkernel:
//   C[m x n] (op)= clamp(bias[m] + A[m x k] * B[k x n])
// A is packed once into MR-row panels (k-major); B is either a raw row-major
// matrix (packed per K x NC block into scratch, NR-wide strips) or packed in
// advance into NR-wide strips. Results do not depend on the thread count:
// every element sees the same sequence of K blocks.
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/kernels.h"

namespace sde {

class ThreadPool;

// Cache-blocking parameters (floats). Mutable for benchmarks only; do not
// change while any operator runs or between scratch_bytes() and run().
struct GemmTuning {
  size_t kc = 256;  // K block: one B strip (kc x NR) stays in L1 across panels
  size_t nc = 256;  // N block: the packed kc x nc B block stays in L2
  // Raw B is packed when its rows are at least this many floats apart
  // (short rows are read in place: packing would cost more than it saves).
  size_t pack_b_min_ldb = 0;
};
GemmTuning& gemm_tuning();

// Number of floats of an A packed into MR-row panels.
size_t packed_a_floats(size_t m, size_t k, size_t mr);
// A[i][j] = a[i * row_stride + j * col_stride]; rows beyond m are zero.
void pack_a_panels(const float* a, size_t m, size_t k, size_t row_stride, size_t col_stride,
                   size_t mr, float* out);

// Number of floats of a B packed into NR-wide strips (each strip k x NR).
size_t packed_b_floats(size_t k, size_t n, size_t nr);
// B[i][j] = b[i * row_stride + j * col_stride]; columns beyond n are zero.
void pack_b_strips(const float* b, size_t k, size_t n, size_t row_stride, size_t col_stride,
                   size_t nr, float* out);

struct GemmArgs {
  size_t m = 0, n = 0, k = 0;
  const float* a_packed = nullptr;  // pack_a_panels layout
  const float* b = nullptr;         // raw row-major B with leading dimension ldb ...
  size_t ldb = 0;
  const float* b_packed = nullptr;  // ... or pack_b_strips layout (then b is unused)
  float* c = nullptr;
  size_t ldc = 0;
  const float* bias = nullptr;      // m floats or nullptr
  bool accumulate_into_c = false;   // C holds initial values (bias is then ignored)
  float min = -INFINITY, max = INFINITY;
};

// Scratch for gemm_run with a raw B and up to `threads` threads (0 if B is prepacked).
size_t gemm_scratch_bytes(const GemmConfig& cfg, size_t n, size_t k, size_t threads,
                          bool b_prepacked);
// scratch: gemm_scratch_bytes() bytes, 64-byte aligned; threads of `pool`
// must not exceed the `threads` given to gemm_scratch_bytes.
void gemm_run(const GemmConfig& cfg, const GemmArgs& args, void* scratch, ThreadPool* pool);

// Runs fn(task, slot) for every task in [0, n) on the pool's threads; `slot`
// (< number of pool threads) identifies a per-worker scratch area.
template <typename Fn>
void for_each_task(ThreadPool* pool, size_t n, const Fn& fn);

}  // namespace sde

#include "operators/gemm-inl.h"
