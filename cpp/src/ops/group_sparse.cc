// The ai.sparsedge group-sparse ops (docs/FORMAT.md): GroupSparseConv and
// GroupSparseMatMul. The node's BSR tensors are checked here against the
// format; packing and the kernels live in operators/group_sparse_conv.
#include <cmath>
#include <map>
#include <memory>

#include "format/sparsedge_format.h"
#include "operators/group_sparse_conv.h"
#include "ops/op.h"

namespace sde {
namespace {

float clamp_bound(float v) {
  if (v >= format::kNoClamp) return INFINITY;
  if (v <= -format::kNoClamp) return -INFINITY;
  return v;
}

// The BSR weights of a node, checked for shapes and types; the structure
// (row_ptr monotone, column indices in range) is checked by the operator.
struct BsrInputs {
  int64_t block_size = 0, out_channels = 0, taps = 1, nnz = 0;
  Tensor values, col_indices, row_ptr, bias;

  BsrInputs(const Op& op, const Node& n, const OpContext& ctx, int64_t expected_taps) {
    block_size = n.get_int(format::kAttrBlockSize, 0);
    out_channels = n.get_int(format::kAttrOutChannels, 0);
    auto bad = [&](const std::string& msg) { fail(StatusCode::kInvalidModel, n.describe(), ": ", msg); };
    if (!format::valid_block_size(block_size)) bad("block_size must be 1, 2, 4 or 8, got " + std::to_string(block_size));
    if (out_channels <= 0) bad("out_channels must be positive");
    values = require_constant(n, ctx, format::kInputValues, "values");
    col_indices = require_constant(n, ctx, format::kInputColIndices, "col_indices");
    row_ptr = require_constant(n, ctx, format::kInputRowPtr, "row_ptr");
    if (values.dtype != DType::kFloat32 || values.shape.size() != 3) bad("values must be float32 [nnz, B, K], got " + shape_str(values.shape));
    nnz = values.shape[0];
    taps = values.shape[2];
    if (values.shape[1] != block_size) bad("values " + shape_str(values.shape) + " does not match block_size " + std::to_string(block_size));
    if (expected_taps > 0 && taps != expected_taps) bad("values has " + std::to_string(taps) + " taps per block but kernel_shape has " + std::to_string(expected_taps));
    if (col_indices.dtype != DType::kInt32 || col_indices.shape != Shape{nnz}) bad("col_indices must be int32 [nnz] with nnz = " + std::to_string(nnz));
    const int64_t rows = (out_channels + block_size - 1) / block_size;
    if (row_ptr.dtype != DType::kInt32 || row_ptr.shape != Shape{rows + 1}) bad("row_ptr must be int32 [" + std::to_string(rows + 1) + "]");
    if (n.has_input(format::kInputBias)) {
      bias = require_constant(n, ctx, format::kInputBias, "bias");
      if (bias.dtype != DType::kFloat32 || bias.numel() != out_channels) bad("bias must be float32 [out_channels]");
    }
  }

  GroupSparseWeights weights(int64_t in_channels, int64_t kh, int64_t kw) const {
    GroupSparseWeights w;
    w.out_channels = static_cast<size_t>(out_channels);
    w.in_channels = static_cast<size_t>(in_channels);
    w.block_size = static_cast<size_t>(block_size);
    w.kernel_h = static_cast<size_t>(kh);
    w.kernel_w = static_cast<size_t>(kw);
    w.nnz_blocks = static_cast<size_t>(nnz);
    w.values = values.as<float>();
    w.col_indices = col_indices.as<int32_t>();
    w.row_ptr = row_ptr.as<int32_t>();
    w.bias = bias.defined() ? bias.as<float>() : nullptr;
    return w;
  }
};

class GroupSparseConvOp : public Op {
 public:
  GroupSparseConvOp(const Node& n, const OpContext& ctx) : Op(n), kernels_(ctx.kernels) {
    std::vector<int64_t> ks = n.get_ints(format::kAttrKernelShape, {1, 1});
    if (ks.size() != 2 || ks[0] < 1 || ks[1] < 1) error(StatusCode::kInvalidModel, "kernel_shape must be two positive ints");
    kh_ = ks[0];
    kw_ = ks[1];
    bsr_ = std::make_unique<BsrInputs>(*this, n, ctx, kh_ * kw_);
    std::vector<int64_t> st = n.get_ints(format::kAttrStrides, {1, 1}), dil = n.get_ints(format::kAttrDilations, {1, 1});
    std::vector<int64_t> pads = n.get_ints(format::kAttrPads, {0, 0, 0, 0});
    if (st.size() != 2 || dil.size() != 2 || pads.size() != 4) error(StatusCode::kInvalidModel, "strides, dilations and pads must have 2, 2 and 4 values");
    for (int64_t v : st) if (v < 1) error(StatusCode::kInvalidModel, "strides must be positive");
    for (int64_t v : dil) if (v < 1) error(StatusCode::kInvalidModel, "dilations must be positive");
    for (int64_t v : pads) if (v < 0) error(StatusCode::kInvalidModel, "pads must not be negative");
    params_.stride_h = st[0];
    params_.stride_w = st[1];
    params_.dilation_h = dil[0];
    params_.dilation_w = dil[1];
    params_.pad_top = pads[0];
    params_.pad_left = pads[1];
    params_.pad_bottom = pads[2];
    params_.pad_right = pads[3];
    params_.out_min = clamp_bound(n.get_float(format::kAttrActivationMin, -format::kNoClamp));
    params_.out_max = clamp_bound(n.get_float(format::kAttrActivationMax, format::kNoClamp));
  }

  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 inputs are supported");
    if (s.size() != 4) error(StatusCode::kInvalidArgument, "input must be NCHW, got " + shape_str(s));
    const GroupSparseConv& conv = instance(s[1]);
    const size_t oh = conv.out_h(static_cast<size_t>(s[2])), ow = conv.out_w(static_cast<size_t>(s[3]));
    if (oh == 0 || ow == 0) error(StatusCode::kInvalidArgument, "input " + shape_str(s) + " is smaller than the kernel");
    out[0] = ValueMeta{DType::kFloat32, {s[0], bsr_->out_channels, static_cast<int64_t>(oh), static_cast<int64_t>(ow)}, Tensor()};
  }
  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t threads) const override {
    const Shape& s = in[0]->shape;
    return instances_.at(s[1])->scratch_bytes(static_cast<size_t>(s[2]), static_cast<size_t>(s[3]), threads);
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    instances_.at(s[1])->run(static_cast<size_t>(s[0]), static_cast<size_t>(s[2]), static_cast<size_t>(s[3]),
                             a.in[0]->as<float>(), a.out[0]->as<float>(), a.scratch, a.pool);
  }
  std::string kernel_name() const override {
    return instances_.empty() ? "group-sparse-conv" : instances_.begin()->second->path_name();
  }

 private:
  const GroupSparseConv& instance(int64_t in_channels) {
    auto it = instances_.find(in_channels);
    if (it != instances_.end()) return *it->second;
    try {
      auto conv = std::make_unique<GroupSparseConv>(bsr_->weights(in_channels, kh_, kw_), params_, kernels_);
      return *instances_.emplace(in_channels, std::move(conv)).first->second;
    } catch (const std::invalid_argument& e) {
      error(StatusCode::kInvalidModel, e.what());
    }
  }

  const KernelTable* kernels_;
  int64_t kh_ = 1, kw_ = 1;
  std::unique_ptr<BsrInputs> bsr_;
  GroupSparseConvParams params_;
  std::map<int64_t, std::unique_ptr<GroupSparseConv>> instances_;
};

class GroupSparseMatMulOp : public Op {
 public:
  GroupSparseMatMulOp(const Node& n, const OpContext& ctx) : Op(n), kernels_(ctx.kernels) {
    bsr_ = std::make_unique<BsrInputs>(*this, n, ctx, 1);
    out_min_ = clamp_bound(n.get_float(format::kAttrActivationMin, -format::kNoClamp));
    out_max_ = clamp_bound(n.get_float(format::kAttrActivationMax, format::kNoClamp));
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 inputs are supported");
    if (s.empty()) error(StatusCode::kInvalidArgument, "input must have at least one dimension");
    const int64_t in_features = s.back();
    if (!fc_) {
      try {
        fc_ = std::make_unique<GroupSparseFullyConnected>(bsr_->weights(in_features, 1, 1), out_min_, out_max_, kernels_);
      } catch (const std::invalid_argument& e) {
        error(StatusCode::kInvalidModel, e.what());
      }
      in_features_ = in_features;
    } else if (in_features != in_features_) {
      error(StatusCode::kInvalidArgument, "input has " + std::to_string(in_features) + " features, the weights expect " + std::to_string(in_features_));
    }
    Shape o = s;
    o.back() = bsr_->out_channels;
    out[0] = ValueMeta{DType::kFloat32, o, Tensor()};
  }
  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t threads) const override {
    return fc_->scratch_bytes(static_cast<size_t>(shape_numel(in[0]->shape) / in_features_), threads);
  }
  void run(const RunArgs& a) override {
    const size_t rows = static_cast<size_t>(a.in[0]->numel() / in_features_);
    fc_->run(rows, a.in[0]->as<float>(), a.out[0]->as<float>(), a.scratch, a.pool);
  }
  std::string kernel_name() const override { return fc_ ? fc_->path_name() : "group-sparse-matmul"; }

 private:
  const KernelTable* kernels_;
  std::unique_ptr<BsrInputs> bsr_;
  float out_min_, out_max_;
  int64_t in_features_ = 0;
  std::unique_ptr<GroupSparseFullyConnected> fc_;
};

}  // namespace

void register_group_sparse_ops(OpRegistry& r) {
  r.add(format::kDomain, format::kGroupSparseConv, make_factory<GroupSparseConvOp>());
  r.add(format::kDomain, format::kGroupSparseMatMul, make_factory<GroupSparseMatMulOp>());
}

}  // namespace sde
