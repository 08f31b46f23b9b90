#include "operators/group_sparse_conv.h"
#include "operators/im2col.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/threadpool.h"

namespace sde {
namespace {

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

int block_slot(size_t b) { return b == 1 ? 0 : b == 2 ? 1 : b == 4 ? 2 : 3; }

size_t out_size(size_t in, size_t pad_a, size_t pad_b, size_t k, size_t stride, size_t dil) {
  const size_t eff_k = dil * (k - 1) + 1;
  const size_t padded = in + pad_a + pad_b;
  if (padded < eff_k) return 0;
  return (padded - eff_k) / stride + 1;
}

void validate(const char* op, const GroupSparseWeights& w) {
  const size_t b = w.block_size;
  if (b != 1 && b != 2 && b != 4 && b != 8) {
    fail(op, "block_size must be 1, 2, 4 or 8, got " + std::to_string(b));
  }
  if (w.out_channels == 0 || w.in_channels == 0) {
    fail(op, "out_channels and in_channels must be positive");
  }
  if (w.kernel_h == 0 || w.kernel_w == 0) fail(op, "kernel size must be positive");
  const size_t taps = w.kernel_h * w.kernel_w;
  if (w.in_channels * taps > size_t(std::numeric_limits<int32_t>::max())) {
    fail(op, "in_channels * kernel_h * kernel_w exceeds int32");
  }
  const size_t block_rows = (w.out_channels + b - 1) / b;
  if (w.nnz_blocks > block_rows * w.in_channels) {
    fail(op, "nnz_blocks (" + std::to_string(w.nnz_blocks) + ") exceeds the " +
                 std::to_string(block_rows * w.in_channels) + " possible blocks");
  }
  if (w.row_ptr == nullptr) fail(op, "row_ptr is null");
  if (w.nnz_blocks > 0 && (w.values == nullptr || w.col_indices == nullptr)) {
    fail(op, "values or col_indices is null while nnz_blocks > 0");
  }
  if (w.row_ptr[0] != 0) fail(op, "row_ptr[0] must be 0, got " + std::to_string(w.row_ptr[0]));
  if (w.row_ptr[block_rows] < 0 || size_t(w.row_ptr[block_rows]) != w.nnz_blocks) {
    fail(op, "row_ptr[" + std::to_string(block_rows) + "] must equal nnz_blocks (" +
                 std::to_string(w.nnz_blocks) + "), got " +
                 std::to_string(w.row_ptr[block_rows]));
  }
  for (size_t r = 0; r < block_rows; ++r) {
    const int32_t lo = w.row_ptr[r], hi = w.row_ptr[r + 1];
    if (hi < lo) {
      fail(op, "row_ptr must be non-decreasing: row_ptr[" + std::to_string(r + 1) + "] = " +
                   std::to_string(hi) + " < row_ptr[" + std::to_string(r) + "] = " +
                   std::to_string(lo));
    }
    if (size_t(hi) > w.nnz_blocks) {
      fail(op, "row_ptr[" + std::to_string(r + 1) + "] = " + std::to_string(hi) +
                   " exceeds nnz_blocks (" + std::to_string(w.nnz_blocks) + ")");
    }
    for (int32_t j = lo; j < hi; ++j) {
      const int32_t c = w.col_indices[j];
      if (c < 0 || size_t(c) >= w.in_channels) {
        fail(op, "col_indices[" + std::to_string(j) + "] = " + std::to_string(c) +
                     " out of range [0, " + std::to_string(w.in_channels) + ")");
      }
      if (j > lo && c <= w.col_indices[j - 1]) {
        fail(op, "col_indices must be strictly increasing within block row " +
                     std::to_string(r) + ": col_indices[" + std::to_string(j) + "] = " +
                     std::to_string(c) + " after " + std::to_string(w.col_indices[j - 1]));
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// GspmmPlan

GspmmPlan::GspmmPlan(const char* op, const GroupSparseWeights& w, const KernelTable* table,
                     bool with_gspmv) {
  validate(op, w);
  const KernelTable& kt = table ? *table : kernels();
  const size_t B = w.block_size, K = w.kernel_h * w.kernel_w, O = w.out_channels;
  out_channels_ = O;
  in_channels_ = w.in_channels;
  taps_ = K;
  const size_t full_rows = O / B, tail_rows = O % B, block_rows = (O + B - 1) / B;

  main_.ukernel = kt.gspmm.ukernel[block_slot(B)];
  tail_.ukernel = kt.gspmm.ukernel[0];
  if (main_.ukernel == nullptr || tail_.ukernel == nullptr) {
    fail(op, "no f32-gspmm kernel for block size " + std::to_string(B) + " in the kernel table");
  }
  main_.b = B;
  main_.mr = kt.gspmm.mr[block_slot(B)];
  main_.rows = full_rows;
  tail_.b = 1;
  tail_.mr = kt.gspmm.mr[0];
  tail_.rows = tail_rows;
  tail_.first_channel = full_rows * B;
  name_ = "gspmm-" + std::to_string(main_.mr) + "x" + std::to_string(B) + "/" +
          isa_name(kt.gspmm.isa[block_slot(B)]);

  used_inputs_.assign(w.in_channels, 0);
  size_t kept = 0;
  for (size_t r = 0; r < block_rows; ++r) {
    const size_t rows_in_block = std::min(B, O - r * B);
    kept += size_t(w.row_ptr[r + 1] - w.row_ptr[r]) * rows_in_block * K;
    for (int32_t j = w.row_ptr[r]; j < w.row_ptr[r + 1]; ++j) used_inputs_[w.col_indices[j]] = 1;
  }
  density_ = double(kept) / (double(O) * double(w.in_channels) * double(K));

  // Full block rows: stored block row r, all B lanes.
  {
    Stream& s = main_;
    size_t total_nnz = 0;
    for (size_t r = 0; r < full_rows; ++r) total_nnz += size_t(w.row_ptr[r + 1] - w.row_ptr[r]) * K;
    s.weights.resize(full_rows * B + total_nnz * B);
    s.row_index.resize(total_nnz);
    s.nnz.resize(full_rows);
    s.weight_offset.resize(full_rows + 1);
    s.index_offset.resize(full_rows + 1);
    float* wp = s.weights.data();
    size_t wo = 0, io = 0;
    for (size_t r = 0; r < full_rows; ++r) {
      s.weight_offset[r] = wo;
      s.index_offset[r] = io;
      for (size_t b = 0; b < B; ++b) wp[wo + b] = w.bias ? w.bias[r * B + b] : 0.0f;
      wo += B;
      for (int32_t j = w.row_ptr[r]; j < w.row_ptr[r + 1]; ++j) {
        for (size_t t = 0; t < K; ++t) {
          for (size_t b = 0; b < B; ++b) wp[wo + b] = w.values[(size_t(j) * B + b) * K + t];
          wo += B;
          s.row_index[io++] = int32_t(size_t(w.col_indices[j]) * K + t);
        }
      }
      s.nnz[r] = uint32_t((w.row_ptr[r + 1] - w.row_ptr[r]) * K);
    }
    s.weight_offset[full_rows] = wo;
    s.index_offset[full_rows] = io;
  }
  // Rows of the partial last block row: lane b of stored block row full_rows.
  {
    Stream& s = tail_;
    const size_t r = full_rows;
    const size_t row_nnz = tail_rows ? size_t(w.row_ptr[r + 1] - w.row_ptr[r]) * K : 0;
    s.weights.resize(tail_rows * (1 + row_nnz));
    s.row_index.resize(tail_rows * row_nnz);
    s.nnz.assign(tail_rows, uint32_t(row_nnz));
    s.weight_offset.resize(tail_rows + 1);
    s.index_offset.resize(tail_rows + 1);
    float* wp = s.weights.data();
    size_t wo = 0, io = 0;
    for (size_t b = 0; b < tail_rows; ++b) {
      s.weight_offset[b] = wo;
      s.index_offset[b] = io;
      wp[wo++] = w.bias ? w.bias[r * B + b] : 0.0f;
      for (int32_t j = w.row_ptr[r]; j < w.row_ptr[r + 1]; ++j) {  // tail_rows > 0 here
        for (size_t t = 0; t < K; ++t) {
          wp[wo++] = w.values[(size_t(j) * B + b) * K + t];
          s.row_index[io++] = int32_t(size_t(w.col_indices[j]) * K + t);
        }
      }
    }
    s.weight_offset[tail_rows] = wo;
    s.index_offset[tail_rows] = io;
  }

  std::vector<uint8_t> row_used(w.in_channels * K, 0);
  for (int32_t i : main_.row_index) row_used[size_t(i)] = 1;
  for (int32_t i : tail_.row_index) row_used[size_t(i)] = 1;
  for (size_t i = 0; i < row_used.size(); ++i)
    if (row_used[i]) used_rows_.push_back(int32_t(i));
  // The kernel's own tile: narrower panels (8 or 16 pixels, so 512 rows fit
  // L1 with room for the weights) measured slower, as every tile re-streams
  // all the weights.
  panel_width_ = main_.rows ? main_.mr : tail_.mr;

  // One-pixel path: the same streams, indices as 16 bits.
  if (with_gspmv && K == 1 && w.in_channels <= 65536 && kt.gspmv.ukernel[block_slot(B)] &&
      kt.gspmv.ukernel[0]) {
    main_.vkernel = kt.gspmv.ukernel[block_slot(B)];
    tail_.vkernel = kt.gspmv.ukernel[0];
    for (Stream* s : {&main_, &tail_}) {
      s->col16.resize(s->row_index.size());
      for (size_t i = 0; i < s->row_index.size(); ++i) s->col16[i] = uint16_t(s->row_index[i]);
    }
    has_gspmv_ = true;
    gspmv_name_ = "gspmv-" + std::to_string(B) + "/" + isa_name(kt.gspmv.isa[block_slot(B)]);
  }
}

void GspmmPlan::Stream::call_gspmv(size_t row0, size_t row1, const float* x, float* y, float min,
                                   float max) const {
  if (row1 <= row0) return;
  vkernel(row1 - row0, x, weights.data() + weight_offset[row0], col16.data() + index_offset[row0],
          nnz.data() + row0, y + first_channel + row0 * b, min, max);
}

void GspmmPlan::run_gspmv(const float* x, float* y, float min, float max,
                          ThreadPool* pool) const {
  const size_t threads = pool ? pool->threads() : 1;
  if (threads <= 1) {
    main_.call_gspmv(0, main_.rows, x, y, min, max);
    tail_.call_gspmv(0, tail_.rows, x, y, min, max);
    return;
  }
  // Chunks of whole block rows, about 4 per thread (rows are similar in work).
  const size_t rows = main_.rows + tail_.rows;
  const size_t grain = std::max<size_t>(8, (rows + 4 * threads - 1) / (4 * threads));
  parallel_for(pool, rows, grain, [&](size_t r0, size_t r1) {
    main_.call_gspmv(r0, std::min(r1, main_.rows), x, y, min, max);
    const size_t t0 = std::max(r0, main_.rows) - main_.rows;
    const size_t t1 = std::max(r1, main_.rows) - main_.rows;
    tail_.call_gspmv(t0, t1, x, y, min, max);
  });
}

namespace {
constexpr size_t kMaxPanels = 64;  // one bit each in run()'s slot mask

template <size_t W>
void copy_rows(const int32_t* rows, size_t count, const char* x, size_t x_stride, float* panel) {
  for (size_t i = 0; i < count; ++i) {
    const size_t r = size_t(rows[i]);
    std::memcpy(panel + r * W, x + r * x_stride, W * sizeof(float));
  }
}
}  // namespace

size_t GspmmPlan::panel_bytes(size_t pixels, size_t threads) const {
  if (pixels <= panel_width_ || used_rows_.empty() || threads > kMaxPanels) return 0;
  const size_t one = round_up(in_channels_ * taps_ * panel_width_ * sizeof(float), kScratchAlignment);
  return std::max<size_t>(threads, 1) * one;
}

void GspmmPlan::pack_panel(const float* x, size_t x_stride, size_t p0, size_t n,
                           float* panel) const {
  const char* src = reinterpret_cast<const char*>(x + p0);
  const int32_t* rows = used_rows_.data();
  const size_t count = used_rows_.size();
  if (n == panel_width_) {  // constant-size copies: plain vector moves, no memcpy call
    switch (panel_width_) {
      case 8: return copy_rows<8>(rows, count, src, x_stride, panel);
      case 16: return copy_rows<16>(rows, count, src, x_stride, panel);
      case 32: return copy_rows<32>(rows, count, src, x_stride, panel);
      default: break;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    const size_t r = size_t(rows[i]);
    std::memcpy(panel + r * panel_width_, src + r * x_stride, n * sizeof(float));
  }
}

void GspmmPlan::run_panels(size_t p0, size_t p1, const float* x, size_t x_stride, float* y,
                           size_t y_stride, float min, float max, float* panel) const {
  const size_t w = panel_width_;
  for (size_t p = p0; p < p1; p += w) {
    const size_t n = std::min(w, p1 - p);
    pack_panel(x, x_stride, p, n, panel);
    // Fetch the next tile's X while this one computes: on 56x56 and 112x112
    // maps the rows are a page or more apart, one stream each, more than the
    // hardware prefetcher follows (10-15% there; writes prefetched the same
    // way gained nothing).
    if (p + w < p1) {
      const char* next = reinterpret_cast<const char*>(x + p + w);
      const size_t last = (std::min(w, p1 - p - w) - 1) * sizeof(float);
      for (int32_t r : used_rows_) {
        __builtin_prefetch(next + size_t(r) * x_stride);
        __builtin_prefetch(next + size_t(r) * x_stride + last);
      }
    }
    main_.call(0, main_.rows, n, panel, w * sizeof(float), y + p, y_stride, min, max);
    tail_.call(0, tail_.rows, n, panel, w * sizeof(float), y + p, y_stride, min, max);
  }
}

void GspmmPlan::Stream::call(size_t row0, size_t row1, size_t pixels, const float* x,
                             size_t x_stride, float* y, size_t y_stride, float min,
                             float max) const {
  if (row1 <= row0 || pixels == 0) return;
  ukernel(pixels, row1 - row0, x, x_stride, weights.data() + weight_offset[row0],
          row_index.data() + index_offset[row0], nnz.data() + row0,
          reinterpret_cast<float*>(reinterpret_cast<char*>(y) +
                                   (first_channel + row0 * b) * y_stride),
          y_stride, min, max);
}

void GspmmPlan::run(size_t pixels, const float* x, size_t x_stride, float* y, size_t y_stride,
                    float min, float max, ThreadPool* pool, void* panels) const {
  if (pixels == 0) return;
  const size_t threads = pool ? pool->threads() : 1;
  if (panel_bytes(pixels, threads) == 0) panels = nullptr;
  const size_t panel_floats =
      round_up(in_channels_ * taps_ * panel_width_ * sizeof(float), kScratchAlignment) /
      sizeof(float);
  if (threads <= 1 && panels) {
    run_panels(0, pixels, x, x_stride, y, y_stride, min, max, static_cast<float*>(panels));
    return;
  }
  if (threads <= 1) {
    main_.call(0, main_.rows, pixels, x, x_stride, y, y_stride, min, max);
    tail_.call(0, tail_.rows, pixels, x, x_stride, y, y_stride, min, max);
    return;
  }
  // Many pixel tiles: split pixels (each thread streams all weights, its X
  // tile stays in L1). Few tiles (7x7, matmul with small m): split rows.
  const size_t mr = main_.mr;
  const size_t tiles = (pixels + mr - 1) / mr;
  if (tiles >= 4 * threads) {
    const size_t grain = std::max<size_t>(1, tiles / (4 * threads));
    // A chunk takes a free panel (at most `threads` chunks run at once).
    std::atomic<uint64_t> busy{0};
    parallel_for(pool, tiles, grain, [&](size_t t0, size_t t1) {
      const size_t p0 = t0 * mr, p1 = std::min(pixels, t1 * mr);
      if (panels) {
        uint64_t mask = busy.load(std::memory_order_relaxed);
        size_t slot;
        do {
          slot = 0;
          while (mask & (uint64_t(1) << slot)) ++slot;
        } while (!busy.compare_exchange_weak(mask, mask | (uint64_t(1) << slot),
                                             std::memory_order_acquire));
        run_panels(p0, p1, x, x_stride, y, y_stride, min, max,
                   static_cast<float*>(panels) + slot * panel_floats);
        busy.fetch_and(~(uint64_t(1) << slot), std::memory_order_release);
        return;
      }
      const float* xs = x + p0;
      float* ys = y + p0;
      main_.call(0, main_.rows, p1 - p0, xs, x_stride, ys, y_stride, min, max);
      tail_.call(0, tail_.rows, p1 - p0, xs, x_stride, ys, y_stride, min, max);
    });
    return;
  }
  const size_t rows = main_.rows + tail_.rows;
  const size_t grain = std::max<size_t>(1, (rows + 4 * threads - 1) / (4 * threads));
  parallel_for(pool, rows, grain, [&](size_t r0, size_t r1) {
    main_.call(r0, std::min(r1, main_.rows), pixels, x, x_stride, y, y_stride, min, max);
    const size_t t0 = std::max(r0, main_.rows) - main_.rows;
    const size_t t1 = std::max(r1, main_.rows) - main_.rows;
    tail_.call(t0, t1, pixels, x, x_stride, y, y_stride, min, max);
  });
}

// ---------------------------------------------------------------------------
// GroupSparseConv

namespace {
const GroupSparseWeights& check_conv(const GroupSparseWeights& w, const GroupSparseConvParams& p) {
  const char* op = "GroupSparseConv";
  if (p.stride_h == 0 || p.stride_w == 0) fail(op, "strides must be positive");
  if (p.dilation_h == 0 || p.dilation_w == 0) fail(op, "dilations must be positive");
  if (std::isnan(p.out_min) || std::isnan(p.out_max) || p.out_min > p.out_max) {
    fail(op, "invalid clamp range");
  }
  return w;
}
}  // namespace

GroupSparseConv::GroupSparseConv(const GroupSparseWeights& w, const GroupSparseConvParams& p,
                                 const KernelTable* table)
    : p_(p),
      kernel_h_(w.kernel_h),
      kernel_w_(w.kernel_w),
      plan_("GroupSparseConv", check_conv(w, p), table) {
  direct_ = kernel_h_ == 1 && kernel_w_ == 1 && p.stride_h == 1 && p.stride_w == 1 &&
            p.pad_top == 0 && p.pad_left == 0 && p.pad_bottom == 0 && p.pad_right == 0;
  path_name_ = (direct_ ? "" : "im2col+") + plan_.name();
}

size_t GroupSparseConv::out_h(size_t in_h) const {
  return out_size(in_h, p_.pad_top, p_.pad_bottom, kernel_h_, p_.stride_h, p_.dilation_h);
}
size_t GroupSparseConv::out_w(size_t in_w) const {
  return out_size(in_w, p_.pad_left, p_.pad_right, kernel_w_, p_.stride_w, p_.dilation_w);
}

size_t GroupSparseConv::scratch_bytes(size_t in_h, size_t in_w, size_t threads) const {
  const size_t n = out_h(in_h) * out_w(in_w);
  const size_t panels = plan_.panel_bytes(n, threads);
  if (direct_) return panels;
  return round_up(plan_.in_channels() * plan_.taps() * n * sizeof(float), kScratchAlignment) +
         panels;
}

void GroupSparseConv::run(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                          void* scratch, ThreadPool* pool) const {
  const size_t oh = out_h(in_h), ow = out_w(in_w), n = oh * ow;
  if (batch == 0 || n == 0) return;
  const size_t cin = plan_.in_channels(), cout = plan_.out_channels();
  for (size_t img = 0; img < batch; ++img) {
    const float* xi = x + img * cin * in_h * in_w;
    float* yi = y + img * cout * n;
    if (direct_) {
      plan_.run(n, xi, n * sizeof(float), yi, n * sizeof(float), p_.out_min, p_.out_max, pool,
                scratch);
      continue;
    }
    // col[(c * kh + ky) * kw + kx][oy * ow + ox] =
    //   x[c][oy*sh + ky*dh - pt][ox*sw + kx*dw - pl] (zero outside), used channels only.
    float* col = static_cast<float*>(scratch);
    const size_t kh = kernel_h_, kw = kernel_w_, taps = kh * kw;
    const std::vector<uint8_t>& used = plan_.used_inputs();
    parallel_for(pool, cin * taps, 8, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const size_t c = r / taps, ky = (r / kw) % kh, kx = r % kw;
        if (!used[c]) continue;
        im2col_row(p_, xi + c * in_h * in_w, in_h, in_w, oh, ow, ky, kx, col + r * n);
      }
    });
    void* panels = reinterpret_cast<char*>(scratch) +
                   round_up(plan_.in_channels() * taps * n * sizeof(float), kScratchAlignment);
    plan_.run(n, col, n * sizeof(float), yi, n * sizeof(float), p_.out_min, p_.out_max, pool,
              panels);
  }
}

// ---------------------------------------------------------------------------
// GroupSparseFullyConnected

namespace {
const GroupSparseWeights& check_fc(const GroupSparseWeights& w, float lo, float hi) {
  const char* op = "GroupSparseFullyConnected";
  if (w.kernel_h != 1 || w.kernel_w != 1) fail(op, "kernel_h and kernel_w must be 1");
  if (std::isnan(lo) || std::isnan(hi) || lo > hi) fail(op, "invalid clamp range");
  return w;
}
}  // namespace

GroupSparseFullyConnected::GroupSparseFullyConnected(const GroupSparseWeights& w,
                                                     float out_min, float out_max,
                                                     const KernelTable* table)
    : out_min_(out_min),
      out_max_(out_max),
      plan_("GroupSparseFullyConnected", check_fc(w, out_min, out_max), table, true) {
  path_name_ = plan_.has_gspmv() ? plan_.gspmv_name() + "+" + plan_.name() : plan_.name();
}

size_t GroupSparseFullyConnected::scratch_bytes(size_t m, size_t threads) const {
  if (m <= 1) return 0;
  return round_up(plan_.in_channels() * m * sizeof(float), kScratchAlignment) +
         round_up(plan_.out_channels() * m * sizeof(float), kScratchAlignment);
}

void GroupSparseFullyConnected::run(size_t m, const float* x, float* y, void* scratch,
                                    ThreadPool* pool) const {
  if (m == 0) return;
  const size_t in = plan_.in_channels(), out = plan_.out_channels();
  // Up to 3 rows: one gspmv pass per row beats gspmm's narrow 2/1-pixel tiles
  // plus transposes (AVX2, 576x576 at 50% of 4x1: m = 2 80 vs 99 us from
  // DRAM, m = 3 101 vs 149 us); from 4 rows gspmm's 4-pixel tile streams the
  // weights once and wins (112 vs 132 us).
  if (m <= 3 && plan_.has_gspmv()) {
    for (size_t i = 0; i < m; ++i) plan_.run_gspmv(x + i * in, y + i * out, out_min_, out_max_, pool);
    return;
  }
  if (m == 1) {  // x is already [in, 1] and y [out, 1]: no transposes
    plan_.run(1, x, sizeof(float), y, sizeof(float), out_min_, out_max_, pool);
    return;
  }
  float* xt = static_cast<float*>(scratch);
  float* yt = xt + round_up(in * m * sizeof(float), kScratchAlignment) / sizeof(float);
  constexpr size_t kTile = 16;  // cache-friendly blocked transposes
  for (size_t i0 = 0; i0 < m; i0 += kTile)
    for (size_t k0 = 0; k0 < in; k0 += kTile)
      for (size_t i = i0; i < std::min(m, i0 + kTile); ++i)
        for (size_t k = k0; k < std::min(in, k0 + kTile); ++k) xt[k * m + i] = x[i * in + k];
  plan_.run(m, xt, m * sizeof(float), yt, m * sizeof(float), out_min_, out_max_, pool);
  for (size_t o0 = 0; o0 < out; o0 += kTile)
    for (size_t i0 = 0; i0 < m; i0 += kTile)
      for (size_t o = o0; o < std::min(out, o0 + kTile); ++o)
        for (size_t i = i0; i < std::min(m, i0 + kTile); ++i) y[i * out + o] = yt[o * m + i];
}

}  // namespace sde
