// Data-movement and shape ops. They are dtype-generic (they move bytes) and
// mostly run ahead of time: torch.onnx.export's Shape/Gather/Concat/Reshape
// chains are folded at load or at planning, so they cost nothing per run.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/op.h"

namespace sde {
namespace {

std::vector<int64_t> const_ints(const Op& op, const ValueMeta* m, const char* what) {
  if (m == nullptr) return {};
  if (!m->is_constant()) {
    fail(StatusCode::kUnsupported, op.node().describe(), ": ", what,
         " must be known before running (a constant or computed from shapes)");
  }
  return m->constant.to_int64_vector();
}

void copy_bytes(const RunArgs& a) {
  if (a.out[0]->data != a.in[0]->data) std::memcpy(a.out[0]->data, a.in[0]->data, a.in[0]->bytes());
}

class ShapeOp : public Op {
 public:
  ShapeOp(const Node& n, const OpContext&) : Op(n) {}
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const int64_t rank = static_cast<int64_t>(in[0]->shape.size());
    int64_t start = node_.get_int("start", 0), end = node_.get_int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    out[0].dtype = DType::kInt64;
    out[0].shape = {end - start};
    out[0].constant = Tensor::allocate(DType::kInt64, out[0].shape);
    for (int64_t i = start; i < end; ++i) out[0].constant.as<int64_t>()[i - start] = in[0]->shape[i];
  }
  void run(const RunArgs&) override {}
};

class ConstantOp : public Op {
 public:
  ConstantOp(const Node& n, const OpContext&) : Op(n) {
    if (const Attribute* a = n.find("value")) {
      value_ = a->t;
    } else if (const Attribute* a = n.find("value_float")) {
      value_ = Tensor::allocate(DType::kFloat32, {});
      value_.as<float>()[0] = a->f;
    } else if (const Attribute* a = n.find("value_floats")) {
      value_ = Tensor::allocate(DType::kFloat32, {static_cast<int64_t>(a->floats.size())});
      std::copy(a->floats.begin(), a->floats.end(), value_.as<float>());
    } else if (const Attribute* a = n.find("value_int")) {
      value_ = Tensor::allocate(DType::kInt64, {});
      value_.as<int64_t>()[0] = a->i;
    } else if (const Attribute* a = n.find("value_ints")) {
      value_ = Tensor::allocate(DType::kInt64, {static_cast<int64_t>(a->ints.size())});
      std::copy(a->ints.begin(), a->ints.end(), value_.as<int64_t>());
    } else {
      error(StatusCode::kUnsupported, "only value, value_float(s) and value_int(s) are supported");
    }
    if (!value_.defined()) error(StatusCode::kInvalidModel, "has no value");
  }
  void infer(const std::vector<const ValueMeta*>&, std::vector<ValueMeta>& out) override {
    out[0] = ValueMeta{value_.dtype, value_.shape, value_};
  }
  void run(const RunArgs&) override {}

 private:
  Tensor value_;
};

class ConstantOfShapeOp : public Op {
 public:
  ConstantOfShapeOp(const Node& n, const OpContext&) : Op(n) {
    if (const Attribute* a = n.find("value")) value_ = a->t;
    if (!value_.defined()) {
      value_ = Tensor::allocate(DType::kFloat32, {1});
    }
    if (value_.numel() != 1) error(StatusCode::kInvalidModel, "value must hold one element");
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    Shape s = const_ints(*this, in[0], "the shape input");
    for (int64_t d : s) {
      if (d < 0) error(StatusCode::kInvalidArgument, "negative dimension in shape");
    }
    out[0].dtype = value_.dtype;
    out[0].shape = s;
  }
  void run(const RunArgs& a) override {
    const size_t es = dtype_size(value_.dtype);
    char* y = static_cast<char*>(a.out[0]->data);
    for (int64_t i = 0; i < a.out[0]->numel(); ++i) std::memcpy(y + i * es, value_.data, es);
  }

 private:
  Tensor value_;
};

// Ops whose output is the input's bytes under a new shape.
class ReshapeLike : public Op {
 public:
  ReshapeLike(const Node& n, const OpContext&) : Op(n) {
    if (n.op_type == "Dropout") {
      if (n.has_input(2)) error(StatusCode::kUnsupported, "training_mode input is not supported (inference only)");
    }
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    out[0].dtype = in[0]->dtype;
    out[0].shape = new_shape(in);
    if (shape_numel(out[0].shape) != shape_numel(in[0]->shape)) {
      error(StatusCode::kInvalidArgument, "cannot reshape " + shape_str(in[0]->shape) + " to " + shape_str(out[0].shape));
    }
    if (in[0]->is_constant()) {
      out[0].constant = Tensor::view(in[0]->dtype, out[0].shape, in[0]->constant.data, in[0]->constant.storage);
    }
    for (size_t j = 1; j < out.size(); ++j) {  // Dropout mask
      out[j].dtype = DType::kBool;
      out[j].shape = in[0]->shape;
      out[j].constant = Tensor::allocate(DType::kBool, in[0]->shape);
      std::memset(out[j].constant.data, 1, out[j].constant.bytes());
    }
  }
  void run(const RunArgs& a) override { copy_bytes(a); }

 private:
  Shape new_shape(const std::vector<const ValueMeta*>& in) const {
    const Shape& s = in[0]->shape;
    const std::string& op = node_.op_type;
    if (op == "Identity" || op == "Dropout") return s;
    if (op == "Flatten") {
      int64_t axis = node_.get_int("axis", 1);
      if (axis < 0) axis += static_cast<int64_t>(s.size());
      if (axis < 0 || axis > static_cast<int64_t>(s.size())) error(StatusCode::kInvalidModel, "axis out of range");
      int64_t a = 1, b = 1;
      for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) (i < axis ? a : b) *= s[i];
      return {a, b};
    }
    if (op == "Reshape") {
      std::vector<int64_t> target = node_.has_input(1) ? const_ints(*this, in[1], "the shape input")
                                                      : node_.get_ints("shape");
      const bool allowzero = node_.get_int("allowzero", 0) != 0;
      Shape r(target.size());
      int64_t known = 1, infer_at = -1;
      for (size_t i = 0; i < target.size(); ++i) {
        if (target[i] == -1) {
          if (infer_at >= 0) error(StatusCode::kInvalidModel, "more than one -1 in the target shape");
          infer_at = static_cast<int64_t>(i);
          continue;
        }
        if (target[i] == 0 && !allowzero) {
          if (i >= s.size()) error(StatusCode::kInvalidModel, "a 0 in the target shape has no input dimension to copy");
          r[i] = s[i];
        } else if (target[i] < 0) {
          error(StatusCode::kInvalidModel, "invalid target dimension " + std::to_string(target[i]));
        } else {
          r[i] = target[i];
        }
        known *= r[i];
      }
      if (infer_at >= 0) {
        int64_t total = shape_numel(s);
        if (known == 0 || total % known != 0) {
          error(StatusCode::kInvalidArgument, "cannot reshape " + shape_str(s) + " to " + shape_str(target));
        }
        r[infer_at] = total / known;
      }
      return r;
    }
    // Squeeze / Unsqueeze
    std::vector<int64_t> axes = node_.has_input(1) ? const_ints(*this, in[1], "axes") : node_.get_ints("axes");
    if (op == "Unsqueeze") {
      const size_t rank = s.size() + axes.size();
      std::vector<bool> is_new(rank, false);
      for (int64_t ax : axes) {
        int64_t a = normalize_axis(node_, ax, rank);
        if (is_new[a]) error(StatusCode::kInvalidModel, "repeated axis");
        is_new[a] = true;
      }
      Shape r;
      size_t k = 0;
      for (size_t i = 0; i < rank; ++i) r.push_back(is_new[i] ? 1 : s[k++]);
      return r;
    }
    std::vector<bool> drop(s.size(), false);
    if (axes.empty()) {
      for (size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
    } else {
      for (int64_t ax : axes) {
        int64_t a = normalize_axis(node_, ax, s.size());
        if (s[a] != 1) error(StatusCode::kInvalidArgument, "cannot squeeze axis " + std::to_string(ax) + " of " + shape_str(s));
        drop[a] = true;
      }
    }
    Shape r;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!drop[i]) r.push_back(s[i]);
    }
    return r;
  }
};

class CastOp : public Op {
 public:
  CastOp(const Node& n, const OpContext&) : Op(n) {
    to_ = static_cast<DType>(n.get_int("to", 0));
    if (!supported(to_)) error(StatusCode::kUnsupported, std::string("cast to ") + dtype_name(to_) + " is not supported");
  }
  static bool supported(DType t) {
    return t == DType::kFloat32 || t == DType::kInt64 || t == DType::kInt32 || t == DType::kBool ||
           t == DType::kFloat64 || t == DType::kUInt8 || t == DType::kInt8;
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (!supported(in[0]->dtype)) error(StatusCode::kUnsupported, std::string("cast from ") + dtype_name(in[0]->dtype) + " is not supported");
    out[0].dtype = to_;
    out[0].shape = in[0]->shape;
  }
  template <typename T>
  static double load(const void* p, int64_t i) { return static_cast<double>(static_cast<const T*>(p)[i]); }
  static double get(DType t, const void* p, int64_t i) {
    switch (t) {
      case DType::kFloat32: return load<float>(p, i);
      case DType::kInt64: return load<int64_t>(p, i);
      case DType::kInt32: return load<int32_t>(p, i);
      case DType::kFloat64: return load<double>(p, i);
      case DType::kUInt8: case DType::kBool: return load<uint8_t>(p, i);
      default: return load<int8_t>(p, i);
    }
  }
  void run(const RunArgs& a) override {
    const Tensor& x = *a.in[0];
    Tensor& y = *a.out[0];
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = get(x.dtype, x.data, i);
      switch (to_) {
        case DType::kFloat32: y.as<float>()[i] = static_cast<float>(v); break;
        case DType::kInt64: y.as<int64_t>()[i] = static_cast<int64_t>(v); break;
        case DType::kInt32: y.as<int32_t>()[i] = static_cast<int32_t>(v); break;
        case DType::kFloat64: y.as<double>()[i] = v; break;
        case DType::kBool: y.as<uint8_t>()[i] = v != 0.0; break;
        case DType::kUInt8: y.as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
        default: y.as<int8_t>()[i] = static_cast<int8_t>(v); break;
      }
    }
  }

 private:
  DType to_;
};

class GatherOp : public Op {
 public:
  GatherOp(const Node& n, const OpContext&) : Op(n) {}
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& d = in[0]->shape;
    if (d.empty()) error(StatusCode::kInvalidModel, "cannot gather from a scalar");
    axis_ = normalize_axis(node_, node_.get_int("axis", 0), d.size());
    if (in[1]->dtype != DType::kInt64 && in[1]->dtype != DType::kInt32) error(StatusCode::kInvalidModel, "indices must be int64 or int32");
    if (in[1]->is_constant()) {
      for (int64_t j : in[1]->constant.to_int64_vector()) check_index(j, d[axis_]);
    }
    Shape s(d.begin(), d.begin() + axis_);
    s.insert(s.end(), in[1]->shape.begin(), in[1]->shape.end());
    s.insert(s.end(), d.begin() + axis_ + 1, d.end());
    out[0].dtype = in[0]->dtype;
    out[0].shape = s;
  }
  void run(const RunArgs& a) override {
    const Tensor& x = *a.in[0];
    std::vector<int64_t> idx = a.in[1]->to_int64_vector();
    const Shape& d = x.shape;
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis_; ++i) outer *= d[i];
    for (size_t i = axis_ + 1; i < d.size(); ++i) inner *= d[i];
    const int64_t n = d[axis_];
    const size_t es = dtype_size(x.dtype), row = inner * es;
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(a.out[0]->data);
    for (int64_t o = 0; o < outer; ++o) {
      for (size_t k = 0; k < idx.size(); ++k) {
        const int64_t j = check_index(idx[k], n);
        std::memcpy(dst + (o * idx.size() + k) * row, src + (o * n + j) * row, row);
      }
    }
  }

 private:
  // The index in [0, n), or an error naming it (ONNX allows [-n, n)).
  int64_t check_index(int64_t j, int64_t n) const {
    if (j < -n || j >= n) {
      error(StatusCode::kInvalidArgument, "index " + std::to_string(j) + " is out of range for an axis of size " +
                                              std::to_string(n));
    }
    return j < 0 ? j + n : j;
  }

  int64_t axis_ = 0;
};

class ConcatOp : public Op {
 public:
  ConcatOp(const Node& n, const OpContext&) : Op(n) {}
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s0 = in[0]->shape;
    axis_ = normalize_axis(node_, node_.get_int("axis", 0), s0.size());
    Shape s = s0;
    s[axis_] = 0;
    for (const ValueMeta* m : in) {
      if (!m) continue;
      if (m->dtype != in[0]->dtype || m->shape.size() != s0.size()) error(StatusCode::kInvalidArgument, "inputs differ in type or rank");
      for (size_t i = 0; i < s0.size(); ++i) {
        if (static_cast<int64_t>(i) != axis_ && m->shape[i] != s0[i]) {
          error(StatusCode::kInvalidArgument, "input shapes " + shape_str(s0) + " and " + shape_str(m->shape) + " differ off the concat axis");
        }
      }
      s[axis_] += m->shape[axis_];
    }
    out[0].dtype = in[0]->dtype;
    out[0].shape = s;
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.out[0]->shape;
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis_; ++i) outer *= s[i];
    for (size_t i = axis_ + 1; i < s.size(); ++i) inner *= s[i];
    const size_t es = dtype_size(a.out[0]->dtype);
    char* dst = static_cast<char*>(a.out[0]->data);
    const size_t out_row = s[axis_] * inner * es;
    size_t offset = 0;
    for (const Tensor* t : a.in) {
      if (!t) continue;
      const size_t row = t->shape[axis_] * inner * es;
      for (int64_t o = 0; o < outer; ++o) {
        std::memcpy(dst + o * out_row + offset, static_cast<const char*>(t->data) + o * row, row);
      }
      offset += row;
    }
  }

 private:
  int64_t axis_ = 0;
};

// Strided copy used by Slice and Transpose: out[i] = in[base + sum(idx_d * stride_d)].
void strided_copy(const char* src, char* dst, const Shape& out_shape, const std::vector<int64_t>& in_strides,
                  int64_t base, size_t es) {
  const int64_t total = shape_numel(out_shape);
  const size_t rank = out_shape.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t off = base;
    for (size_t d = 0; d < rank; ++d) off += idx[d] * in_strides[d];
    std::memcpy(dst + i * es, src + off * es, es);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

class SliceOp : public Op {
 public:
  SliceOp(const Node& n, const OpContext&) : Op(n) {}
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    std::vector<int64_t> starts, ends, axes, steps;
    if (node_.has("starts")) {  // opset < 10
      starts = node_.get_ints("starts");
      ends = node_.get_ints("ends");
      axes = node_.get_ints("axes");
    } else {
      starts = const_ints(*this, in[1], "starts");
      ends = const_ints(*this, in[2], "ends");
      if (in.size() > 3) axes = const_ints(*this, in[3], "axes");
      if (in.size() > 4) steps = const_ints(*this, in[4], "steps");
    }
    if (axes.empty()) {
      axes.resize(starts.size());
      std::iota(axes.begin(), axes.end(), 0);
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      error(StatusCode::kInvalidModel, "starts, ends, axes and steps differ in length");
    }
    begin_.assign(s.size(), 0);
    step_.assign(s.size(), 1);
    Shape os = s;
    for (size_t k = 0; k < starts.size(); ++k) {
      const int64_t ax = normalize_axis(node_, axes[k], s.size());
      const int64_t dim = s[ax], step = steps[k];
      if (step == 0) error(StatusCode::kInvalidModel, "step 0");
      int64_t b = starts[k] < 0 ? starts[k] + dim : starts[k];
      int64_t e = ends[k] < 0 ? ends[k] + dim : ends[k];
      if (step > 0) {
        b = std::clamp<int64_t>(b, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        os[ax] = e > b ? (e - b + step - 1) / step : 0;
      } else {
        b = std::clamp<int64_t>(b, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        os[ax] = b > e ? (b - e + (-step) - 1) / (-step) : 0;
      }
      begin_[ax] = b;
      step_[ax] = step;
    }
    out[0].dtype = in[0]->dtype;
    out[0].shape = os;
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    std::vector<int64_t> st = contiguous_strides(s), in_strides(s.size());
    int64_t base = 0;
    for (size_t d = 0; d < s.size(); ++d) {
      base += begin_[d] * st[d];
      in_strides[d] = step_[d] * st[d];
    }
    strided_copy(static_cast<const char*>(a.in[0]->data), static_cast<char*>(a.out[0]->data), a.out[0]->shape,
                 in_strides, base, dtype_size(a.in[0]->dtype));
  }

 private:
  std::vector<int64_t> begin_, step_;
};

class TransposeOp : public Op {
 public:
  TransposeOp(const Node& n, const OpContext&) : Op(n) {}
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    perm_ = node_.get_ints("perm");
    if (perm_.empty()) {
      for (size_t i = s.size(); i-- > 0;) perm_.push_back(static_cast<int64_t>(i));
    }
    if (perm_.size() != s.size()) error(StatusCode::kInvalidArgument, "perm does not match the input rank");
    std::vector<bool> seen(s.size(), false);
    Shape os;
    for (int64_t p : perm_) {
      if (p < 0 || p >= static_cast<int64_t>(s.size()) || seen[p]) error(StatusCode::kInvalidModel, "perm is not a permutation");
      seen[p] = true;
      os.push_back(s[p]);
    }
    out[0].dtype = in[0]->dtype;
    out[0].shape = os;
  }
  void run(const RunArgs& a) override {
    std::vector<int64_t> st = contiguous_strides(a.in[0]->shape), in_strides;
    for (int64_t p : perm_) in_strides.push_back(st[p]);
    strided_copy(static_cast<const char*>(a.in[0]->data), static_cast<char*>(a.out[0]->data), a.out[0]->shape,
                 in_strides, 0, dtype_size(a.in[0]->dtype));
  }

 private:
  std::vector<int64_t> perm_;
};

class ExpandOp : public Op {
 public:
  ExpandOp(const Node& n, const OpContext&) : Op(n) {}
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    Shape target = const_ints(*this, in[1], "the shape input");
    out[0].dtype = in[0]->dtype;
    out[0].shape = broadcast_shapes(node_, in[0]->shape, target);
  }
  void run(const RunArgs& a) override {
    const Shape& os = a.out[0]->shape;
    const Shape& is = a.in[0]->shape;
    std::vector<int64_t> st(os.size(), 0);
    std::vector<int64_t> cs = contiguous_strides(is);
    for (size_t i = 0; i < is.size(); ++i) {
      size_t o = i + os.size() - is.size();
      st[o] = is[i] == 1 ? 0 : cs[i];
    }
    strided_copy(static_cast<const char*>(a.in[0]->data), static_cast<char*>(a.out[0]->data), os, st, 0,
                 dtype_size(a.in[0]->dtype));
  }
};

class PadOp : public Op {
 public:
  PadOp(const Node& n, const OpContext&) : Op(n) {
    mode_ = n.get_string("mode", "constant");
    if (mode_ != "constant" && mode_ != "reflect" && mode_ != "edge") {
      error(StatusCode::kUnsupported, "pad mode '" + mode_ + "' is not supported");
    }
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    const size_t rank = s.size();
    std::vector<int64_t> pads = node_.has("pads") ? node_.get_ints("pads") : const_ints(*this, in[1], "pads");
    value_ = node_.get_float("value", 0.f);
    if (in.size() > 2 && in[2]) {
      if (!in[2]->is_constant()) error(StatusCode::kUnsupported, "constant_value must be a constant");
      value_ = in[2]->constant.dtype == DType::kFloat32 ? in[2]->constant.as<float>()[0]
                                                        : static_cast<float>(in[2]->constant.to_int64_vector()[0]);
    }
    std::vector<int64_t> axes;
    if (in.size() > 3 && in[3]) axes = const_ints(*this, in[3], "axes");
    if (axes.empty()) {
      for (size_t i = 0; i < rank; ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (pads.size() != 2 * axes.size()) error(StatusCode::kInvalidModel, "pads has the wrong length");
    before_.assign(rank, 0);
    after_.assign(rank, 0);
    for (size_t k = 0; k < axes.size(); ++k) {
      int64_t ax = normalize_axis(node_, axes[k], rank);
      before_[ax] = pads[k];
      after_[ax] = pads[k + axes.size()];
    }
    Shape os = s;
    for (size_t d = 0; d < rank; ++d) {
      os[d] = s[d] + before_[d] + after_[d];
      if (os[d] < 0) error(StatusCode::kInvalidArgument, "padding makes a dimension negative");
      if (mode_ == "reflect" && (before_[d] >= s[d] || after_[d] >= s[d]) && (before_[d] || after_[d])) {
        error(StatusCode::kInvalidArgument, "reflect padding needs pads smaller than the dimension");
      }
    }
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "Pad supports float32 only");
    out[0].dtype = in[0]->dtype;
    out[0].shape = os;
  }
  void run(const RunArgs& a) override {
    const Shape& is = a.in[0]->shape;
    const Shape& os = a.out[0]->shape;
    const size_t rank = os.size();
    std::vector<int64_t> st = contiguous_strides(is), idx(rank, 0);
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    const int64_t total = shape_numel(os);
    for (int64_t i = 0; i < total; ++i) {
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < rank; ++d) {
        int64_t j = idx[d] - before_[d];
        if (j < 0 || j >= is[d]) {
          if (mode_ == "constant") {
            inside = false;
            break;
          }
          if (mode_ == "edge") j = std::clamp<int64_t>(j, 0, is[d] - 1);
          else j = j < 0 ? -j : 2 * (is[d] - 1) - j;
        }
        off += j * st[d];
      }
      y[i] = inside ? x[off] : value_;
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
  }

 private:
  std::string mode_;
  std::vector<int64_t> before_, after_;
  float value_ = 0.f;
};

}  // namespace

void register_shape_ops(OpRegistry& r) {
  r.add("", "Shape", make_factory<ShapeOp>());
  r.add("", "Constant", make_factory<ConstantOp>());
  r.add("", "ConstantOfShape", make_factory<ConstantOfShapeOp>());
  for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}) {
    r.add("", op, make_factory<ReshapeLike>());
  }
  r.add("", "Cast", make_factory<CastOp>());
  r.add("", "Gather", make_factory<GatherOp>());
  r.add("", "Concat", make_factory<ConcatOp>());
  r.add("", "Slice", make_factory<SliceOp>());
  r.add("", "Transpose", make_factory<TransposeOp>());
  r.add("", "Expand", make_factory<ExpandOp>());
  r.add("", "Pad", make_factory<PadOp>());
}

}  // namespace sde
