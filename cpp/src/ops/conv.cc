// Conv (1-D and 2-D, groups incl. depthwise, pads/auto_pad, strides,
// dilations, fused clamp) on the Conv2dNchw operator, and stand-alone
// BatchNormalization (the ones not folded into a Conv at load).
#include <array>
#include <cmath>
#include <limits>
#include <map>

#include "core/threadpool.h"
#include "ops/op.h"
#include "operators/conv2d_nchw.h"

namespace sde {
namespace {

class ConvOp : public Op {
 public:
  ConvOp(const Node& n, const OpContext& consts) : Op(n) {
    const Tensor& w = require_constant(n, consts, 1, "the weight input W");
    if (w.dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 weights are supported");
    if (w.shape.size() != 4 && w.shape.size() != 3) {
      error(StatusCode::kUnsupported, "only 1-D and 2-D convolutions are supported (W has shape " + shape_str(w.shape) + ")");
    }
    spatial_ = w.shape.size() - 2;
    weights_ = w;
    kernels_ = consts.kernels;
    if (n.has_input(2)) {
      bias_ = require_constant(n, consts, 2, "the bias input B");
      if (bias_.dtype != DType::kFloat32 || bias_.numel() != w.shape[0]) {
        error(StatusCode::kInvalidModel, "bias has shape " + shape_str(bias_.shape) + " but W has " +
                                             std::to_string(w.shape[0]) + " output channels");
      }
    }
    group_ = n.get_int("group", 1);
    if (group_ < 1 || w.shape[0] % group_ != 0) error(StatusCode::kInvalidModel, "group does not divide the output channels");
    auto pick = [&](const char* name, int64_t fallback) {
      std::vector<int64_t> v = n.get_ints(name, std::vector<int64_t>(spatial_, fallback));
      if (v.size() != spatial_) error(StatusCode::kInvalidModel, std::string(name) + " has the wrong length");
      for (int64_t x : v) {
        if (x < 1) error(StatusCode::kInvalidModel, std::string(name) + " must be positive");
      }
      if (spatial_ == 1) v.insert(v.begin(), 1);
      return v;
    };
    strides_ = pick("strides", 1);
    dilations_ = pick("dilations", 1);
    std::vector<int64_t> ks = n.get_ints("kernel_shape");
    if (!ks.empty()) {
      for (size_t i = 0; i < ks.size() && i < spatial_; ++i) {
        if (ks[i] != w.shape[2 + i]) error(StatusCode::kInvalidModel, "kernel_shape does not match W");
      }
    }
    pads_ = n.get_ints("pads", std::vector<int64_t>(2 * spatial_, 0));
    if (pads_.size() != 2 * spatial_) error(StatusCode::kInvalidModel, "pads has the wrong length");
    for (int64_t p : pads_) {
      if (p < 0) error(StatusCode::kUnsupported, "negative pads are not supported");
    }
    auto_pad_ = n.get_string("auto_pad", "NOTSET");
    if (auto_pad_ != "NOTSET" && auto_pad_ != "VALID" && auto_pad_ != "SAME_UPPER" && auto_pad_ != "SAME_LOWER") {
      error(StatusCode::kInvalidModel, "unknown auto_pad '" + auto_pad_ + "'");
    }
    const float inf = std::numeric_limits<float>::infinity();
    out_min_ = n.get_float(kFusedMinAttr, -inf);
    out_max_ = n.get_float(kFusedMaxAttr, inf);
  }

  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, std::string("input type ") + dtype_name(in[0]->dtype) + " is not supported");
    if (s.size() != spatial_ + 2) {
      error(StatusCode::kInvalidArgument, "input has shape " + shape_str(s) + " but W " + shape_str(weights_.shape) +
                                              " needs a rank-" + std::to_string(spatial_ + 2) + " input");
    }
    if (s[1] != weights_.shape[1] * group_) {
      error(StatusCode::kInvalidArgument, "input has " + std::to_string(s[1]) + " channels but W " +
                                              shape_str(weights_.shape) + " with group " + std::to_string(group_) +
                                              " needs " + std::to_string(weights_.shape[1] * group_));
    }
    const Conv2dNchw& conv = instance(hw(s));
    const auto in_hw = hw(s);
    const int64_t oh = static_cast<int64_t>(conv.out_h(in_hw[0])), ow = static_cast<int64_t>(conv.out_w(in_hw[1]));
    if (oh <= 0 || ow <= 0) error(StatusCode::kInvalidArgument, "input " + shape_str(s) + " is smaller than the kernel");
    out[0].dtype = DType::kFloat32;
    out[0].shape = spatial_ == 2 ? Shape{s[0], weights_.shape[0], oh, ow} : Shape{s[0], weights_.shape[0], ow};
  }

  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t threads) const override {
    auto in_hw = hw(in[0]->shape);
    auto it = instances_.find(in_hw);
    return it == instances_.end() ? 0 : it->second->scratch_bytes(in_hw[0], in_hw[1], threads);
  }

  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    auto in_hw = hw(s);
    const Conv2dNchw& conv = *instances_.at(in_hw);
    conv.run(static_cast<size_t>(s[0]), in_hw[0], in_hw[1], a.in[0]->as<float>(), a.out[0]->as<float>(), a.scratch, a.pool);
  }

  std::string kernel_name() const override {
    return instances_.empty() ? "conv2d-nchw" : instances_.begin()->second->path_name();
  }

 private:
  std::array<size_t, 2> hw(const Shape& s) const {
    return spatial_ == 2 ? std::array<size_t, 2>{size_t(s[2]), size_t(s[3])} : std::array<size_t, 2>{1, size_t(s[2])};
  }

  // One packed operator per input size: with auto_pad SAME the pads depend on it.
  const Conv2dNchw& instance(std::array<size_t, 2> in_hw) {
    auto it = instances_.find(in_hw);
    if (it != instances_.end()) return *it->second;
    Conv2dParams p;
    p.in_channels = static_cast<size_t>(weights_.shape[1] * group_);
    p.out_channels = static_cast<size_t>(weights_.shape[0]);
    p.groups = static_cast<size_t>(group_);
    p.kernel_h = spatial_ == 2 ? static_cast<size_t>(weights_.shape[2]) : 1;
    p.kernel_w = static_cast<size_t>(weights_.shape[spatial_ == 2 ? 3 : 2]);
    p.stride_h = strides_[0];
    p.stride_w = strides_[1];
    p.dilation_h = dilations_[0];
    p.dilation_w = dilations_[1];
    std::array<int64_t, 4> pad{0, 0, 0, 0};  // top, left, bottom, right
    if (spatial_ == 2) pad = {pads_[0], pads_[1], pads_[2], pads_[3]};
    else pad = {0, pads_[0], 0, pads_[1]};
    if (auto_pad_ == "VALID") {
      pad = {0, 0, 0, 0};
    } else if (auto_pad_ != "NOTSET") {
      const size_t k[2] = {p.kernel_h, p.kernel_w}, st[2] = {p.stride_h, p.stride_w}, d[2] = {p.dilation_h, p.dilation_w};
      for (int axis = 0; axis < 2; ++axis) {
        const int64_t in = static_cast<int64_t>(in_hw[axis]);
        const int64_t o = (in + static_cast<int64_t>(st[axis]) - 1) / static_cast<int64_t>(st[axis]);
        const int64_t total = std::max<int64_t>(0, (o - 1) * st[axis] + (k[axis] - 1) * d[axis] + 1 - in);
        const int64_t small = total / 2, big = total - small;
        const bool upper = auto_pad_ == "SAME_UPPER";
        pad[axis] = upper ? small : big;
        pad[axis + 2] = upper ? big : small;
      }
    }
    p.pad_top = pad[0];
    p.pad_left = pad[1];
    p.pad_bottom = pad[2];
    p.pad_right = pad[3];
    p.out_min = out_min_;
    p.out_max = out_max_;
    try {
      auto conv = std::make_unique<Conv2dNchw>(p, weights_.as<float>(), bias_.defined() ? bias_.as<float>() : nullptr, kernels_);
      return *instances_.emplace(in_hw, std::move(conv)).first->second;
    } catch (const std::invalid_argument& e) {
      error(StatusCode::kInvalidModel, e.what());
    }
  }

  const KernelTable* kernels_ = nullptr;
  size_t spatial_ = 2;
  Tensor weights_, bias_;
  int64_t group_ = 1;
  std::vector<int64_t> strides_, dilations_, pads_;
  std::string auto_pad_;
  float out_min_, out_max_;
  std::map<std::array<size_t, 2>, std::unique_ptr<Conv2dNchw>> instances_;
};

class BatchNormOp : public Op {
 public:
  BatchNormOp(const Node& n, const OpContext& consts) : Op(n) {
    if (n.get_int("training_mode", 0) != 0) error(StatusCode::kUnsupported, "training_mode=1 is not supported (inference only)");
    const Tensor& scale = require_constant(n, consts, 1, "scale");
    const Tensor& beta = require_constant(n, consts, 2, "B");
    const Tensor& mean = require_constant(n, consts, 3, "mean");
    const Tensor& var = require_constant(n, consts, 4, "var");
    const float eps = n.get_float("epsilon", 1e-5f);
    const int64_t c = scale.numel();
    for (const Tensor* t : {&scale, &beta, &mean, &var}) {
      if (t->dtype != DType::kFloat32 || t->numel() != c) error(StatusCode::kInvalidModel, "parameters must be float32 vectors of one length");
    }
    mul_.resize(c);
    add_.resize(c);
    for (int64_t i = 0; i < c; ++i) {
      const double s = scale.as<float>()[i] / std::sqrt(static_cast<double>(var.as<float>()[i]) + eps);
      mul_[i] = static_cast<float>(s);
      add_[i] = static_cast<float>(beta.as<float>()[i] - mean.as<float>()[i] * s);
    }
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    if (s.size() < 2 || s[1] != static_cast<int64_t>(mul_.size())) {
      error(StatusCode::kInvalidArgument, "input " + shape_str(s) + " does not have " + std::to_string(mul_.size()) + " channels");
    }
    out[0] = ValueMeta{DType::kFloat32, s, Tensor()};
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    if (shape_numel(s) == 0) return;  // empty batch or spatial size; also avoids 0/0 below
    const int64_t c = s[1], inner = shape_numel(s) / (s[0] * c);
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    for (int64_t b = 0; b < s[0]; ++b) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const float m = mul_[ch], ad = add_[ch];
        const int64_t off = (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; ++i) y[off + i] = x[off + i] * m + ad;
      }
    }
  }

 private:
  std::vector<float> mul_, add_;
};

}  // namespace

void register_conv_ops(OpRegistry& r) {
  r.add("", "Conv", make_factory<ConvOp>());
  r.add("", "BatchNormalization", make_factory<BatchNormOp>());
}

}  // namespace sde
