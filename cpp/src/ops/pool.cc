// Pooling, reductions and Softmax over NCHW float tensors.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/threadpool.h"
#include "ops/op.h"

namespace sde {
namespace {

struct Window {
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
};

int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1, bool ceil_mode) {
  const int64_t span = in + p0 + p1 - ((k - 1) * d + 1);
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  // A last window that starts inside the right padding only is dropped.
  if (ceil_mode && (out - 1) * s >= in + p0) --out;
  return out;
}

// Shared geometry of Conv-like windows for pooling: explicit pads or auto_pad.
Window pool_window(const Node& n, const Shape& s, Shape& out_hw, bool ceil_mode) {
  std::vector<int64_t> k = n.get_ints("kernel_shape");
  if (k.size() != 2) fail(StatusCode::kUnsupported, n.describe(), ": only 2-D pooling is supported");
  std::vector<int64_t> st = n.get_ints("strides", {1, 1}), dil = n.get_ints("dilations", {1, 1});
  std::vector<int64_t> pads = n.get_ints("pads", {0, 0, 0, 0});
  const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
  if (st.size() != 2 || dil.size() != 2 || pads.size() != 4) fail(StatusCode::kInvalidModel, n.describe(), ": bad strides/dilations/pads");
  Window w{k[0], k[1], st[0], st[1], dil[0], dil[1], pads[0], pads[1], pads[2], pads[3]};
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (int axis = 0; axis < 2; ++axis) {
      int64_t in = s[2 + axis], stride = axis ? w.sw : w.sh, kk = axis ? w.kw : w.kh, dd = axis ? w.dw : w.dh;
      int64_t out = (in + stride - 1) / stride;
      int64_t total = std::max<int64_t>(0, (out - 1) * stride + (kk - 1) * dd + 1 - in);
      int64_t small = total / 2, big = total - small;
      bool upper = auto_pad == "SAME_UPPER";
      (axis ? w.pl : w.pt) = upper ? small : big;
      (axis ? w.pr : w.pb) = upper ? big : small;
    }
  } else if (auto_pad == "VALID") {
    w.pt = w.pl = w.pb = w.pr = 0;
  } else if (auto_pad != "NOTSET") {
    fail(StatusCode::kInvalidModel, n.describe(), ": unknown auto_pad '", auto_pad, "'");
  }
  out_hw = {pooled_size(s[2], w.kh, w.sh, w.dh, w.pt, w.pb, ceil_mode),
            pooled_size(s[3], w.kw, w.sw, w.dw, w.pl, w.pr, ceil_mode)};
  return w;
}

class PoolOp : public Op {
 public:
  PoolOp(const Node& n, const OpContext&) : Op(n) {
    global_ = n.op_type.rfind("Global", 0) == 0;
    max_ = n.op_type.find("Max") != std::string::npos;
    ceil_ = n.get_int("ceil_mode", 0) != 0;
    count_pad_ = n.get_int("count_include_pad", 0) != 0;
    if (n.outputs.size() > 1 && !n.outputs[1].empty()) error(StatusCode::kUnsupported, "the Indices output is not supported");
    if (n.get_int("storage_order", 0) != 0) error(StatusCode::kUnsupported, "storage_order=1 is not supported");
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    if (s.size() != 4) error(StatusCode::kUnsupported, "only 4-D (NCHW) inputs are supported, got " + shape_str(s));
    Shape hw;
    if (global_) {
      w_ = Window{s[2], s[3], 1, 1, 1, 1, 0, 0, 0, 0};
      hw = {1, 1};
    } else {
      w_ = pool_window(node_, s, hw, ceil_);
      if (hw[0] <= 0 || hw[1] <= 0) {
        error(StatusCode::kInvalidArgument, "input " + shape_str(s) + " with its padding is smaller than the " +
                                                std::to_string(w_.kh) + "x" + std::to_string(w_.kw) + " window");
      }
    }
    out[0].dtype = DType::kFloat32;
    out[0].shape = {s[0], s[1], hw[0], hw[1]};
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    const Shape& o = a.out[0]->shape;
    const int64_t planes = s[0] * s[1], H = s[2], W = s[3], OH = o[2], OW = o[3];
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    const Window w = w_;
    const bool is_max = max_, count_pad = count_pad_;
    parallel_for(a.pool, static_cast<size_t>(planes), 8, [&](size_t p0, size_t p1) {
      for (size_t p = p0; p < p1; ++p) {
        const float* xp = x + p * H * W;
        float* yp = y + p * OH * OW;
        if (global_) {
          double acc = 0.0;
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t i = 0; i < H * W; ++i) {
            acc += xp[i];
            m = std::max(m, xp[i]);
          }
          yp[0] = is_max ? m : static_cast<float>(acc / static_cast<double>(H * W));
          continue;
        }
        for (int64_t oy = 0; oy < OH; ++oy) {
          for (int64_t ox = 0; ox < OW; ++ox) {
            float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.f;
            int64_t count = 0;
            const int64_t y0 = oy * w.sh - w.pt, x0 = ox * w.sw - w.pl;
            for (int64_t ky = 0; ky < w.kh; ++ky) {
              const int64_t iy = y0 + ky * w.dh;
              for (int64_t kx = 0; kx < w.kw; ++kx) {
                const int64_t ix = x0 + kx * w.dw;
                const bool in_image = iy >= 0 && iy < H && ix >= 0 && ix < W;
                if (in_image) {
                  const float v = xp[iy * W + ix];
                  acc = is_max ? std::max(acc, v) : acc + v;
                  ++count;
                } else if (!is_max && count_pad && iy < H + w.pb && ix < W + w.pr) {
                  ++count;  // padding counts, positions beyond the padding (ceil mode) do not
                }
              }
            }
            yp[oy * OW + ox] = is_max ? acc : (count ? acc / static_cast<float>(count) : 0.f);
          }
        }
      }
    });
  }

 private:
  bool global_, max_, ceil_, count_pad_;
  Window w_{};
};

class ReduceOp : public Op {
 public:
  ReduceOp(const Node& n, const OpContext&) : Op(n) {
    keepdims_ = n.get_int("keepdims", 1) != 0;
    noop_empty_ = n.get_int("noop_with_empty_axes", 0) != 0;
    mean_ = n.op_type == "ReduceMean";
    max_ = n.op_type == "ReduceMax";
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    std::vector<int64_t> axes = node_.get_ints("axes");
    if (in.size() > 1 && in[1]) {
      if (!in[1]->is_constant()) error(StatusCode::kUnsupported, "axes must be a constant");
      axes = in[1]->constant.to_int64_vector();
    }
    reduce_.assign(s.size(), axes.empty() && !noop_empty_);
    for (int64_t ax : axes) reduce_[normalize_axis(node_, ax, s.size())] = true;
    Shape os;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!reduce_[i]) os.push_back(s[i]);
      else if (keepdims_) os.push_back(1);
    }
    out[0].dtype = DType::kFloat32;
    out[0].shape = os;
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    const size_t rank = s.size();
    // Output strides in the input's index space (0 on reduced axes).
    std::vector<int64_t> ost(rank, 0);
    int64_t stride = 1;
    for (size_t i = rank; i-- > 0;) {
      if (!reduce_[i]) {
        ost[i] = stride;
        stride *= s[i];
      }
    }
    const int64_t out_n = a.out[0]->numel(), in_n = a.in[0]->numel();
    float* y = a.out[0]->as<float>();
    const float* x = a.in[0]->as<float>();
    std::fill(y, y + out_n, max_ ? -std::numeric_limits<float>::infinity() : 0.f);
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < in_n; ++i) {
      int64_t o = 0;
      for (size_t d = 0; d < rank; ++d) o += idx[d] * ost[d];
      y[o] = max_ ? std::max(y[o], x[i]) : y[o] + x[i];
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < s[d]) break;
        idx[d] = 0;
      }
    }
    if (mean_ && out_n > 0) {
      const float scale = static_cast<float>(out_n) / static_cast<float>(std::max<int64_t>(in_n, 1));
      for (int64_t i = 0; i < out_n; ++i) y[i] *= scale;
    }
  }

 private:
  bool keepdims_, noop_empty_, mean_, max_;
  std::vector<bool> reduce_;
};

class SoftmaxOp : public Op {
 public:
  SoftmaxOp(const Node& n, const OpContext&) : Op(n) {
    // Before opset 13 the input is flattened to 2-D at `axis` (default 1).
    legacy_ = n.get_int("_sde_opset", 13) < 13;
    axis_ = n.get_int("axis", legacy_ ? 1 : -1);
    log_ = n.op_type == "LogSoftmax";
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    const Shape& s = in[0]->shape;
    const int64_t ax = normalize_axis(node_, axis_, std::max<size_t>(s.size(), 1));
    outer_ = 1, n_ = 1, inner_ = 1;
    for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
      if (legacy_) (i < ax ? outer_ : n_) *= s[i];
      else (i < ax ? outer_ : (i == ax ? n_ : inner_)) *= s[i];
    }
    out[0] = ValueMeta{DType::kFloat32, s, Tensor()};
  }
  void run(const RunArgs& a) override {
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t i = 0; i < inner_; ++i) {
        const float* xp = x + o * n_ * inner_ + i;
        float* yp = y + o * n_ * inner_ + i;
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < n_; ++k) m = std::max(m, xp[k * inner_]);
        double sum = 0.0;
        for (int64_t k = 0; k < n_; ++k) {
          const float e = std::exp(xp[k * inner_] - m);
          yp[k * inner_] = e;
          sum += e;
        }
        if (log_) {
          const float ls = static_cast<float>(std::log(sum));
          for (int64_t k = 0; k < n_; ++k) yp[k * inner_] = xp[k * inner_] - m - ls;
        } else {
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t k = 0; k < n_; ++k) yp[k * inner_] *= inv;
        }
      }
    }
  }

 private:
  bool legacy_, log_;
  int64_t axis_;
  int64_t outer_ = 1, n_ = 1, inner_ = 1;
};

}  // namespace

void register_pool_ops(OpRegistry& r) {
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool"}) {
    r.add("", op, make_factory<PoolOp>());
  }
  for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax"}) r.add("", op, make_factory<ReduceOp>());
  r.add("", "Softmax", make_factory<SoftmaxOp>());
  r.add("", "LogSoftmax", make_factory<SoftmaxOp>());
}

}  // namespace sde
