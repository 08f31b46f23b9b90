// Kernel families and the dispatch table.
//
// Every kernel family has one `.inc` list (e.g. f32-gemm/f32-gemm.inc) that
// names each variant with its tile and ISA. The list feeds the declarations
// below, the start-up dispatch (dispatch.cc), the kernel tests and the kernel
// benchmarks, so no kernel exists that is not tested and timed.
//
// Layout convention: activations are NCHW (CHW per image). A 1x1 convolution
// is Y[Cout, HW] = W[Cout, Cin] * X[Cin, HW]: the weight matrix is the packed
// left operand "A", the activations are the row-major right operand "B" and
// SIMD runs along HW (the "N" dimension).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sde {

enum class Isa : int { kScalar = 0, kSse2, kAvx2, kAvx512f, kNeon, kWasmSimd };
const char* isa_name(Isa isa);

// ---------------------------------------------------------------------------
// f32-gemm: C[mr x nc] (op)= clamp(bias + A_packed[mr x kc] * B[kc x nc])
//
// a_packed: one panel of MR rows packed k-major: a_packed[k * MR + r] holds
//           A[r, k]; rows r >= mr are zero (the panel is always MR wide).
// b:        row-major, row k starts at b + k * ldb (floats); nc columns used.
// c:        row-major, row r starts at c + r * ldc; only mr rows x nc columns
//           are written, never beyond.
// bias:     mr floats, or nullptr for zero. Added only when `accumulate` is 0.
// accumulate: 0 = C is overwritten; 1 = C holds a partial sum that is added to
//           (K blocking).
// min/max:  clamp applied to the result (pass -inf/+inf for none).
// nc may be any value >= 1; the kernel loops over its NR-wide column tiles and
// handles the remainder itself (masked or scalar).
typedef void (*f32_gemm_ukernel_fn)(size_t mr, size_t nc, size_t kc,
                                    const float* a_packed, const float* b, size_t ldb,
                                    float* c, size_t ldc, const float* bias,
                                    int accumulate, float min, float max);

// ---------------------------------------------------------------------------
// f32-dwconv2d-chw: one channel of a depthwise convolution, CHW layout.
//
// in:   the zero-padded input plane; row y starts at in + y * in_stride.
//       It has (out_h - 1) * S + K rows and every row has at least
//       (out_w - 1) * S + K valid columns, plus 32 readable floats of slack
//       after them (the caller allocates the slack; its values are unspecified).
// w:    K*K weights, row-major.  bias: scalar.
// out:  row y starts at out + y * out_stride; exactly out_w columns written.
typedef void (*f32_dwconv2d_chw_fn)(size_t out_h, size_t out_w, const float* in,
                                    size_t in_stride, const float* w, float bias,
                                    float* out, size_t out_stride, float min,
                                    float max);

// ---------------------------------------------------------------------------
// f32-gspmm: group-sparse (block-sparse rows) times dense, CHW layout.
//   Y[c, p] = clamp(bias[c] + sum_j W[c, j] * X[idx_j, p])
// for `block_rows` rows of B consecutive output channels (B is in the kernel's
// name: sde_f32_gspmm_ukernel_<pixels>x<B>__<isa>), each kept block being B
// weights applied to one input row. SIMD runs along the pixels p.
//
// pixels:   number of pixels (columns), any value >= 1; the kernel walks its
//           natural tile and handles the remainder itself (narrower tiles).
// input:    input row r, pixel p is at (char*)input + r * input_stride + 4 * p.
// weights:  packed stream, per block row: B bias floats, then for each of its
//           nonzeros the B weights (channel-minor). Read straight through.
// row_index: per nonzero, the input row r it multiplies (>= 0), in stream order.
// nnz:      per block row, its number of nonzeros (0 allowed: output = bias).
// output:   channel c (0 <= c < block_rows * B), pixel p is at
//           (char*)output + c * output_stride + 4 * p; exactly those are written.
// min/max:  clamp of the result (pass -inf/+inf for none).
// Per output element the sum runs bias first, then nonzeros in stream order,
// whatever the tile, so results do not depend on how pixels are split.
typedef void (*f32_gspmm_ukernel_fn)(size_t pixels, size_t block_rows, const float* input,
                                     size_t input_stride, const float* weights,
                                     const int32_t* row_index, const uint32_t* nnz,
                                     float* output, size_t output_stride, float min,
                                     float max);

// ---------------------------------------------------------------------------
// f32-gemv: y[nc] = clamp(bias + x[k] * W[k x nc]), the M = 1 case of a fully
// connected layer (LLM decode), over the weights as f32-gemm packs them.
//
// w:     NR-wide strips (NR is in the kernel's name and must equal the paired
//        GEMM's nr): strip s holds columns [s*NR, s*NR + NR) as w[s*k*NR +
//        kk*NR + j]; columns beyond nc are zero.
// bias:  nc floats, or nullptr for zero.  y: exactly nc floats written.
// Per output the sum runs over k in order (a kernel may keep several partial
// sums), independent of how callers split nc into strips.
typedef void (*f32_gemv_ukernel_fn)(size_t nc, size_t k, const float* x, const float* w,
                                    const float* bias, float* y, float min, float max);

// ---------------------------------------------------------------------------
// f32-spmm24: Y[m, nc] = bias + X[m, k] * W_2:4^T, a 2:4 semi-structured
// linear layer (docs/FORMAT.md, "SemiStructuredMatMul"; k a multiple of 4)
// over weights repacked once by sde_f32_spmm24_pack into panels of NR output
// rows (NR is in the kernel's name, <= 8):
// w:     panel p (rows [p*NR, p*NR + NR)) at w + p * (k/4) * 2 * NR; within
//        it, group g (inputs 4g..4g+3) holds NR first kept values (row-minor)
//        then NR second kept values. Rows beyond nc are zero.
// widx:  panel p at widx + p * (k/4); word g holds row r's stored group byte
//        p0 | (p1 << 2) in bits [4r, 4r + 4) (zero for rows beyond nc); the
//        op has checked every byte (p0 < p1 <= 3).
// x:     row i at x + i * x_stride, k floats.  y: row i at y + i * y_stride;
//        exactly nc floats per row written.  bias: nc floats or nullptr.
// m and nc may be any value >= 1: the kernel walks its row tiles (m = 1 is
// the decode GEMV) and panels and handles remainders itself. Each output is
// one call's sum over all of k in a kernel-fixed order that may differ
// between m = 1 and m > 1 calls (the GEMV keeps several partial sums), but
// not with the tile a row lands in or how whole panels are split.
typedef void (*f32_spmm24_ukernel_fn)(size_t m, size_t nc, size_t k, const float* x, size_t x_stride,
                                      const float* w, const uint32_t* widx, const float* bias, float* y,
                                      size_t y_stride);
// Repacks the stored layout (values [nc, k/2], indices [nc, k/4]) into the
// panels above: w gets sde_f32_spmm24_packed_floats(nr, nc, k) floats, widx
// sde_f32_spmm24_packed_words(nr, nc, k) words.
size_t sde_f32_spmm24_packed_floats(size_t nr, size_t nc, size_t k);
size_t sde_f32_spmm24_packed_words(size_t nr, size_t nc, size_t k);
void sde_f32_spmm24_pack(size_t nr, size_t nc, size_t k, const float* values, const uint8_t* indices,
                         float* w, uint32_t* widx);

// ---------------------------------------------------------------------------
// f32-gspmv: group-sparse matrix times one vector, the M = 1 case of a
// GroupSparseMatMul (LLM decode):
//   y[c] = clamp(bias[c] + sum_j W[c, j] * x[col_j])
// for `block_rows` rows of B consecutive output channels (B is in the kernel's
// name: sde_f32_gspmv_ukernel_<B>__<isa>), each kept block being B weights
// applied to one input x[col].
// weights:   packed stream, per block row: B bias floats, then for each of its
//            nonzeros the B weights (channel-minor), as f32-gspmm reads it.
// col_index: per nonzero, the input index col (16 bits: inputs < 65536), in
//            stream order.
// nnz:       per block row, its number of nonzeros (0 allowed: output = bias).
// y:         exactly block_rows * B floats written, channel c at y[c].
// min/max:   clamp of the result (pass -inf/+inf for none).
// Per output the sum starts at the bias and adds the nonzeros in stream order,
// possibly as several interleaved partial sums (a kernel-fixed pattern), so a
// row's result never depends on how callers split the block rows.
typedef void (*f32_gspmv_ukernel_fn)(size_t block_rows, const float* x, const float* weights,
                                     const uint16_t* col_index, const uint32_t* nnz, float* y,
                                     float min, float max);

struct GemmConfig {
  f32_gemm_ukernel_fn ukernel = nullptr;
  size_t mr = 0;  // rows per packed panel
  size_t nr = 0;  // natural column tile (for blocking/threading decisions)
  const char* name = "";
  Isa isa = Isa::kScalar;  // ISA of the chosen kernel (a table may reuse a lower ISA's)
};

// The GEMV whose strip width matches the table's GEMM (nullptr if none).
struct GemvConfig {
  f32_gemv_ukernel_fn ukernel = nullptr;
  size_t nr = 0;
  const char* name = "";
  Isa isa = Isa::kScalar;
};

struct DwConvConfig {
  f32_dwconv2d_chw_fn k3s1 = nullptr, k3s2 = nullptr, k5s1 = nullptr, k5s2 = nullptr;
  const char* name = "";
  Isa isa = Isa::kScalar;  // ISA of the chosen kernels
};

// One f32-gspmm kernel per block size B = 1, 2, 4, 8 (index log2(B)).
struct GspmmConfig {
  f32_gspmm_ukernel_fn ukernel[4] = {nullptr, nullptr, nullptr, nullptr};
  size_t mr[4] = {0, 0, 0, 0};  // natural pixel tile of each kernel
  const char* name[4] = {"", "", "", ""};
  Isa isa[4] = {Isa::kScalar, Isa::kScalar, Isa::kScalar, Isa::kScalar};
};

struct Spmm24Config {
  f32_spmm24_ukernel_fn ukernel = nullptr;
  size_t nr = 0;  // output rows per packed panel (sde_f32_spmm24_pack's nr)
  const char* name = "";
  Isa isa = Isa::kScalar;
};

// One f32-gspmv kernel per block size B = 1, 2, 4, 8 (index log2(B)).
struct GspmvConfig {
  f32_gspmv_ukernel_fn ukernel[4] = {nullptr, nullptr, nullptr, nullptr};
  const char* name[4] = {"", "", "", ""};
  Isa isa[4] = {Isa::kScalar, Isa::kScalar, Isa::kScalar, Isa::kScalar};
};

// ---------------------------------------------------------------------------
// f32-delta-attn: the row primitives of CausalAttention, dense and
// temporal-delta (docs/DELTA_ATTENTION.md). One set of five functions per ISA:
// dots:          s[j] = scale * dot(q[0:d], k + j*k_stride), j < n; returns max s (-inf if n = 0).
// sparse_update: s[j] += sum_i dq[i] * kt[idx[i]*kt_stride + j], j < n (keys
//                transposed: one row of n floats per head-dim element); returns max s.
// exp_sum:       s[j] = exp(s[j] - m) in place; returns the sum.
// exp_select:    e = exp(s[j] - m); where |e - ehat[j]| > thr: appends (j, e - ehat[j])
//                to sel_idx/sel_c, sets ehat[j] = e; *count = appended; returns their sum.
// gather_axpy:   u[0:d] += sum_j c[j] * v[r_j*v_stride : +d], r_j = idx[j] (or j if idx is null).
typedef float (*f32_attn_dots_fn)(size_t n, size_t d, const float* q, const float* k, size_t k_stride,
                                  float scale, float* s);
typedef float (*f32_attn_sparse_update_fn)(size_t n, size_t nnz, const uint32_t* idx, const float* dq,
                                           const float* kt, size_t kt_stride, float* s);
typedef float (*f32_attn_exp_sum_fn)(size_t n, float* s, float m);
typedef float (*f32_attn_exp_select_fn)(size_t n, const float* s, float m, float* ehat, float thr,
                                        uint32_t* sel_idx, float* sel_c, size_t* count);
typedef void (*f32_attn_gather_axpy_fn)(size_t n, size_t d, const uint32_t* idx, const float* c,
                                        const float* v, size_t v_stride, float* u);

struct DeltaAttnConfig {
  f32_attn_dots_fn dots = nullptr;
  f32_attn_sparse_update_fn sparse_update = nullptr;
  f32_attn_exp_sum_fn exp_sum = nullptr;
  f32_attn_exp_select_fn exp_select = nullptr;
  f32_attn_gather_axpy_fn gather_axpy = nullptr;
  const char* name = "";
  Isa isa = Isa::kScalar;
};

// The table chosen once at start-up (CPUID, SPARSEDGE_ISA=scalar|sse2|avx2|...).
struct KernelTable {
  Isa isa = Isa::kScalar;
  GemmConfig gemm;
  GemvConfig gemv;
  DwConvConfig dwconv;
  GspmmConfig gspmm;
  GspmvConfig gspmv;
  Spmm24Config spmm24;
  DeltaAttnConfig delta_attn;
};

// Thread-safe, initialised on first use. SPARSEDGE_ISA may only lower the ISA;
// asking for one the CPU lacks is ignored with the detected one kept.
const KernelTable& kernels();
// For tests and benchmarks: the table for a given ISA (nullptr fields where
// the ISA is not compiled in or not supported by this CPU).
KernelTable kernels_for(Isa isa);
bool isa_supported(Isa isa);

}  // namespace sde
