// Element-wise ops: binary arithmetic with NumPy broadcasting, and unary
// activations. Memory-bound, so plain loops the compiler vectorises; the
// innermost dimension is specialised for the contiguous and broadcast cases.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/op.h"

namespace sde {
namespace {

enum class BinaryKind { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin };

// Strides (in elements) of `shape` viewed as broadcast to `out` (0 where broadcast).
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    size_t o = i + (out.size() - shape.size());
    strides[o] = shape[i] == 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

template <typename T, BinaryKind K>
inline T apply(T a, T b) {
  switch (K) {
    case BinaryKind::kAdd: return a + b;
    case BinaryKind::kSub: return a - b;
    case BinaryKind::kMul: return a * b;
    case BinaryKind::kDiv: return b == T(0) && std::is_integral<T>::value ? T(0) : a / b;
    case BinaryKind::kPow: return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    case BinaryKind::kMax: return std::max(a, b);
    case BinaryKind::kMin: return std::min(a, b);
  }
  return a;
}

template <typename T, BinaryKind K>
void binary_loop(const T* a, const T* b, T* y, const Shape& out, const std::vector<int64_t>& sa,
                 const std::vector<int64_t>& sb) {
  const size_t rank = out.size();
  if (rank == 0) {
    y[0] = apply<T, K>(a[0], b[0]);
    return;
  }
  const int64_t inner = out[rank - 1];
  const int64_t ia = sa[rank - 1], ib = sb[rank - 1];
  const int64_t outer = shape_numel(out) / std::max<int64_t>(inner, 1);
  std::vector<int64_t> idx(rank, 0);
  for (int64_t o = 0; o < outer; ++o) {
    int64_t off_a = 0, off_b = 0;
    for (size_t d = 0; d + 1 < rank; ++d) off_a += idx[d] * sa[d], off_b += idx[d] * sb[d];
    const T* pa = a + off_a;
    const T* pb = b + off_b;
    T* py = y + o * inner;
    if (ia == 1 && ib == 1) {
      for (int64_t i = 0; i < inner; ++i) py[i] = apply<T, K>(pa[i], pb[i]);
    } else if (ia == 1 && ib == 0) {
      const T vb = pb[0];
      for (int64_t i = 0; i < inner; ++i) py[i] = apply<T, K>(pa[i], vb);
    } else if (ia == 0 && ib == 1) {
      const T va = pa[0];
      for (int64_t i = 0; i < inner; ++i) py[i] = apply<T, K>(va, pb[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i) py[i] = apply<T, K>(pa[i * ia], pb[i * ib]);
    }
    for (size_t d = rank - 1; d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
}

template <BinaryKind K>
class BinaryOp : public Op {
 public:
  BinaryOp(const Node& n, const OpContext&) : Op(n) {
    if (n.num_inputs() != 2) error(StatusCode::kInvalidModel, "expects 2 inputs");
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in[0]->dtype != in[1]->dtype) {
      error(StatusCode::kInvalidModel, std::string("input types differ (") + dtype_name(in[0]->dtype) +
                                           " and " + dtype_name(in[1]->dtype) + ")");
    }
    DType t = in[0]->dtype;
    if (t != DType::kFloat32 && t != DType::kInt64 && t != DType::kInt32) {
      error(StatusCode::kUnsupported, std::string("element type ") + dtype_name(t) + " is not supported");
    }
    out[0].dtype = t;
    out[0].shape = broadcast_shapes(node_, in[0]->shape, in[1]->shape);
  }
  void run(const RunArgs& a) override {
    const Tensor& x = *a.in[0];
    const Tensor& z = *a.in[1];
    Tensor& y = *a.out[0];
    auto sa = broadcast_strides(x.shape, y.shape), sb = broadcast_strides(z.shape, y.shape);
    switch (y.dtype) {
      case DType::kFloat32: binary_loop<float, K>(x.as<float>(), z.as<float>(), y.as<float>(), y.shape, sa, sb); break;
      case DType::kInt64: binary_loop<int64_t, K>(x.as<int64_t>(), z.as<int64_t>(), y.as<int64_t>(), y.shape, sa, sb); break;
      default: binary_loop<int32_t, K>(x.as<int32_t>(), z.as<int32_t>(), y.as<int32_t>(), y.shape, sa, sb); break;
    }
  }
};

// Unary float ops. `params` holds alpha/beta/min/max as the op defines them.
enum class UnaryKind { kRelu, kClip, kSigmoid, kHardSigmoid, kHardSwish, kNeg, kSqrt, kExp, kTanh, kErf, kLeakyRelu, kAbs, kReciprocal, kSilu };

template <UnaryKind K>
class UnaryOp : public Op {
 public:
  UnaryOp(const Node& n, const OpContext& consts) : Op(n) {
    if (n.num_inputs() < 1) error(StatusCode::kInvalidModel, "expects an input");
    if (K == UnaryKind::kHardSigmoid) {
      alpha_ = n.get_float("alpha", 0.2f);
      beta_ = n.get_float("beta", 0.5f);
    } else if (K == UnaryKind::kLeakyRelu) {
      alpha_ = n.get_float("alpha", 0.01f);
    } else if (K == UnaryKind::kClip) {
      lo_ = -std::numeric_limits<float>::infinity();
      hi_ = std::numeric_limits<float>::infinity();
      if (n.has("min") || n.has("max")) {
        lo_ = n.get_float("min", lo_);
        hi_ = n.get_float("max", hi_);
      }
      dynamic_bounds_ = n.has_input(1) || n.has_input(2);
    }
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in[0]->dtype != DType::kFloat32) {
      error(StatusCode::kUnsupported, std::string("element type ") + dtype_name(in[0]->dtype) + " is not supported");
    }
    for (size_t i = 1; i < in.size(); ++i) {
      if (in[i] && (in[i]->dtype != DType::kFloat32 || shape_numel(in[i]->shape) != 1)) {
        error(StatusCode::kInvalidModel, "min/max must be float scalars");
      }
    }
    out[0].dtype = DType::kFloat32;
    out[0].shape = in[0]->shape;
  }
  void run(const RunArgs& a) override {
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    const int64_t n = a.in[0]->numel();
    float lo = lo_, hi = hi_;
    if (dynamic_bounds_) {
      if (a.in.size() > 1 && a.in[1]) lo = a.in[1]->as<float>()[0];
      if (a.in.size() > 2 && a.in[2]) hi = a.in[2]->as<float>()[0];
    }
    const float alpha = alpha_, beta = beta_;
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      float r;
      switch (K) {
        case UnaryKind::kRelu: r = v > 0.f ? v : 0.f; break;
        case UnaryKind::kClip: r = std::min(std::max(v, lo), hi); break;
        case UnaryKind::kSigmoid: r = 1.f / (1.f + std::exp(-v)); break;
        case UnaryKind::kHardSigmoid: r = std::max(0.f, std::min(1.f, alpha * v + beta)); break;
        case UnaryKind::kHardSwish: r = v * std::max(0.f, std::min(1.f, v * (1.f / 6.f) + 0.5f)); break;
        case UnaryKind::kNeg: r = -v; break;
        case UnaryKind::kSqrt: r = std::sqrt(v); break;
        case UnaryKind::kExp: r = std::exp(v); break;
        case UnaryKind::kTanh: r = std::tanh(v); break;
        case UnaryKind::kErf: r = std::erf(v); break;
        case UnaryKind::kLeakyRelu: r = v >= 0.f ? v : alpha * v; break;
        case UnaryKind::kAbs: r = std::fabs(v); break;
        case UnaryKind::kReciprocal: r = 1.f / v; break;
        case UnaryKind::kSilu: r = v / (1.f + std::exp(-v)); break;
      }
      y[i] = r;
    }
  }

 private:
  float alpha_ = 0.f, beta_ = 0.f, lo_ = 0.f, hi_ = 0.f;
  bool dynamic_bounds_ = false;
};

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  r.add("", "Add", make_factory<BinaryOp<BinaryKind::kAdd>>());
  r.add("", "Sub", make_factory<BinaryOp<BinaryKind::kSub>>());
  r.add("", "Mul", make_factory<BinaryOp<BinaryKind::kMul>>());
  r.add("", "Div", make_factory<BinaryOp<BinaryKind::kDiv>>());
  r.add("", "Pow", make_factory<BinaryOp<BinaryKind::kPow>>());
  r.add("", "Max", make_factory<BinaryOp<BinaryKind::kMax>>());
  r.add("", "Min", make_factory<BinaryOp<BinaryKind::kMin>>());
  r.add("", "Relu", make_factory<UnaryOp<UnaryKind::kRelu>>());
  r.add("", "Clip", make_factory<UnaryOp<UnaryKind::kClip>>());
  r.add("", "Sigmoid", make_factory<UnaryOp<UnaryKind::kSigmoid>>());
  r.add("", "HardSigmoid", make_factory<UnaryOp<UnaryKind::kHardSigmoid>>());
  r.add("", "HardSwish", make_factory<UnaryOp<UnaryKind::kHardSwish>>());
  r.add("", "Neg", make_factory<UnaryOp<UnaryKind::kNeg>>());
  r.add("", "Sqrt", make_factory<UnaryOp<UnaryKind::kSqrt>>());
  r.add("", "Exp", make_factory<UnaryOp<UnaryKind::kExp>>());
  r.add("", "Tanh", make_factory<UnaryOp<UnaryKind::kTanh>>());
  r.add("", "Erf", make_factory<UnaryOp<UnaryKind::kErf>>());
  r.add("", "LeakyRelu", make_factory<UnaryOp<UnaryKind::kLeakyRelu>>());
  r.add("", "Abs", make_factory<UnaryOp<UnaryKind::kAbs>>());
  r.add("", "Reciprocal", make_factory<UnaryOp<UnaryKind::kReciprocal>>());
}

}  // namespace sde
