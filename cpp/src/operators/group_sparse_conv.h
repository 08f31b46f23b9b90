// Group-sparse (BSR) convolution and fully connected layer on NCHW tensors,
// built from the f32-gspmm microkernels (kernels/kernels.h), and the M = 1
// (decode) path of the fully connected form on the f32-gspmv kernels.
//
// Weights come as stored in the model (docs/FORMAT.md): blocks of B
// consecutive output channels x one input channel (x K = kh*kw taps),
// values [nnz, B, K], col_indices [nnz], row_ptr [ceil(O/B)+1], bias [O].
// They are validated and packed once at construction into the kernel's
// stream; run() allocates nothing and never throws.
//
// Packing: every kept block becomes K one-tap nonzeros on the rows of the
// (im2col) input, row = in_channel * K + tap, so one kernel serves 1x1 and
// kxk convolutions. Full block rows use the B-wide kernel; the rows of a
// partial last block row (O % B) are packed again as B = 1 rows and use the
// B = 1 kernel, so the padded rows are neither computed nor written.
//
// Panels: with scratch, run() copies each pixel tile of the used input rows
// into a contiguous panel (rows one tile wide, 64-byte aligned) and runs the
// kernel on it. The kernel re-reads the tile once per nonzero; straight from X
// a 16-pixel tile of a 14x14 map straddles two cache lines per row (64 KB of
// lines for 512 rows, twice L1) and a 56x56 map touches one page per row
// (TLB misses). The kernels and their per-element order are the same, so
// results do not depend on it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "operators/aligned_buffer.h"

namespace sde {

class ThreadPool;

struct GroupSparseWeights {  // borrowed pointers, as stored in the model
  size_t out_channels = 0, in_channels = 0, block_size = 1, kernel_h = 1, kernel_w = 1;
  size_t nnz_blocks = 0;
  const float* values = nullptr;        // [nnz_blocks, block_size, kernel_h * kernel_w]
  const int32_t* col_indices = nullptr;  // [nnz_blocks]
  const int32_t* row_ptr = nullptr;      // [ceil(out_channels / block_size) + 1]
  const float* bias = nullptr;           // [out_channels]; nullptr = zero
};

struct GroupSparseConvParams {
  size_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  float out_min = -INFINITY, out_max = INFINITY;  // fused clamp
};

// The packed weights of one layer and the threaded driver over the kernels.
// Shared by GroupSparseConv and GroupSparseFullyConnected.
class GspmmPlan {
 public:
  // Validates `w` (throws std::invalid_argument naming `op`) and packs it.
  // with_gspmv: also prepare the one-pixel path run_gspmv() (1x1 weights,
  // fewer than 65536 inputs, gspmv kernels in the table; else has_gspmv() is
  // false). It reads the same packed weights, plus 16-bit copies of the indices.
  GspmmPlan(const char* op, const GroupSparseWeights& w, const KernelTable* table,
            bool with_gspmv = false);

  // Y[c, p] = clamp(bias[c] + sum W[c, r] X[r, p]) for all out_channels c and
  // `pixels` pixels; rows of X are (in_channel * K + tap), byte strides given.
  // panels: panel_bytes(pixels, threads) bytes, 64-byte aligned, or null (the
  // kernel then reads X in place).
  void run(size_t pixels, const float* x, size_t x_stride, float* y, size_t y_stride,
           float min, float max, ThreadPool* pool, void* panels = nullptr) const;
  // Scratch run() can use for panels (0 when `pixels` is at most one tile).
  size_t panel_bytes(size_t pixels, size_t threads) const;

  // y[c] = clamp(bias[c] + sum W[c, i] x[i]) for one pixel (x and y
  // contiguous) with the f32-gspmv kernels; block rows split across threads,
  // each row computed by one call, so results do not depend on the threads.
  bool has_gspmv() const { return has_gspmv_; }
  void run_gspmv(const float* x, float* y, float min, float max, ThreadPool* pool) const;
  // e.g. "gspmv-4/avx2" (empty without the gspmv path).
  const std::string& gspmv_name() const { return gspmv_name_; }

  size_t out_channels() const { return out_channels_; }
  size_t in_channels() const { return in_channels_; }
  size_t taps() const { return taps_; }
  double density() const { return density_; }
  // Input channels that at least one kept block reads (others need no im2col).
  const std::vector<uint8_t>& used_inputs() const { return used_inputs_; }
  // e.g. "gspmm-24x4/avx2".
  const std::string& name() const { return name_; }

 private:
  // One kernel's packed stream over `rows` block rows of `b` channels.
  struct Stream {
    f32_gspmm_ukernel_fn ukernel = nullptr;
    size_t b = 1, mr = 1, rows = 0, first_channel = 0;
    AlignedFloats weights;
    std::vector<int32_t> row_index;
    std::vector<uint32_t> nnz;
    std::vector<size_t> weight_offset, index_offset;  // per block row, rows + 1 entries
    f32_gspmv_ukernel_fn vkernel = nullptr;           // one-pixel path (with_gspmv)
    std::vector<uint16_t> col16;                      // row_index as 16 bits, for vkernel
    void call(size_t row0, size_t row1, size_t pixels, const float* x, size_t x_stride,
              float* y, size_t y_stride, float min, float max) const;
    void call_gspmv(size_t row0, size_t row1, const float* x, float* y, float min,
                    float max) const;
  };

  // Packs pixels [p0, p0 + n) of the used rows into `panel` (rows panel_width_ wide).
  void pack_panel(const float* x, size_t x_stride, size_t p0, size_t n, float* panel) const;
  // Runs both streams over pixels [p0, p1) tile by tile through `panel`.
  void run_panels(size_t p0, size_t p1, const float* x, size_t x_stride, float* y,
                  size_t y_stride, float min, float max, float* panel) const;

  size_t out_channels_ = 0, in_channels_ = 0, taps_ = 1;
  double density_ = 0.0;
  std::vector<uint8_t> used_inputs_;
  std::vector<int32_t> used_rows_;  // input rows any nonzero reads, increasing
  size_t panel_width_ = 1;          // pixels per panel: the main kernel's tile
  std::string name_, gspmv_name_;
  bool has_gspmv_ = false;
  Stream main_;  // full block rows, B-wide kernel
  Stream tail_;  // rows of a partial last block row, B = 1 kernel
};

class GroupSparseConv {
 public:
  // Validates the BSR structure and the params; throws std::invalid_argument
  // with a precise message. table: kernels to use (nullptr = kernels()).
  //  - 1x1, stride 1, no padding: the kernel runs straight on X (pixels = HW);
  //  - otherwise: im2col of the used input channels into scratch, then the kernel.
  GroupSparseConv(const GroupSparseWeights& w, const GroupSparseConvParams& p,
                  const KernelTable* table = nullptr);

  size_t out_h(size_t in_h) const;
  size_t out_w(size_t in_w) const;
  // Bytes of scratch run() needs for this input size with up to `threads` threads.
  size_t scratch_bytes(size_t in_h, size_t in_w, size_t threads) const;
  // x: [batch, in_c, in_h, in_w], y: [batch, out_c, out_h, out_w] (must not
  // overlap x). scratch: scratch_bytes() bytes, 64-byte aligned (may be null if 0).
  // Results are bitwise identical for any thread count.
  void run(size_t batch, size_t in_h, size_t in_w, const float* x, float* y, void* scratch,
           ThreadPool* pool) const;
  // e.g. "gspmm-24x4/avx2" or "im2col+gspmm-16x4/avx2".
  const char* path_name() const { return path_name_.c_str(); }
  double density() const { return plan_.density(); }  // kept weights / dense weights

 private:
  GroupSparseConvParams p_;
  size_t kernel_h_, kernel_w_;
  bool direct_;
  std::string path_name_;
  GspmmPlan plan_;
};

// Y[m, o] = clamp(X[m, i] * W^T + bias): the MatMul/Gemm form (m = rows of X).
// Weights must have kernel_h = kernel_w = 1.
class GroupSparseFullyConnected {
 public:
  GroupSparseFullyConnected(const GroupSparseWeights& w, float out_min = -INFINITY,
                            float out_max = INFINITY, const KernelTable* table = nullptr);

  size_t in_features() const { return plan_.in_channels(); }
  size_t out_features() const { return plan_.out_channels(); }
  // Bytes of scratch run() needs for m rows (0 for m = 1).
  size_t scratch_bytes(size_t m, size_t threads) const;
  // x: [m, in_features], y: [m, out_features] row-major (must not overlap).
  // m = 1 runs directly on x and y, with the f32-gspmv kernels when the table
  // has them (the decode GEMV), as do m = 2, 3 (one pass per row); larger m
  // (or no gspmv) transposes through scratch for f32-gspmm.
  void run(size_t m, const float* x, float* y, void* scratch, ThreadPool* pool) const;
  // e.g. "gspmv-4/avx2+gspmm-24x4/avx2" (m = 1 path first when there is one).
  const char* path_name() const { return path_name_.c_str(); }
  double density() const { return plan_.density(); }

 private:
  float out_min_, out_max_;
  GspmmPlan plan_;
  std::string path_name_;
};

}  // namespace sde
