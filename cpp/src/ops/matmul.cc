// Gemm and MatMul. With constant weights both become the packed
// FullyConnected operator (bias and clamp fused); otherwise a reference
// batched matmul with NumPy broadcasting runs.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

#include "core/threadpool.h"
#include "ops/op.h"
#include "operators/fully_connected.h"

namespace sde {
namespace {

float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

// y[m, n] = sum_k a[m, k] * b[k, n] with arbitrary element strides.
void naive_matmul(const float* a, int64_t sam, int64_t sak, const float* b, int64_t sbk, int64_t sbn, float* y,
                  int64_t m, int64_t k, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    float* yr = y + i * n;
    std::fill(yr, yr + n, 0.f);
    for (int64_t p = 0; p < k; ++p) {
      const float av = a[i * sam + p * sak];
      const float* br = b + p * sbk;
      if (sbn == 1) {
        for (int64_t j = 0; j < n; ++j) yr[j] += av * br[j];
      } else {
        for (int64_t j = 0; j < n; ++j) yr[j] += av * br[j * sbn];
      }
    }
  }
}

class GemmOp : public Op {
 public:
  GemmOp(const Node& n, const OpContext& consts) : Op(n) {
    trans_a_ = n.get_int("transA", 0) != 0;
    trans_b_ = n.get_int("transB", 0) != 0;
    alpha_ = n.get_float("alpha", 1.f);
    beta_ = n.get_float("beta", 1.f);
    const float inf = std::numeric_limits<float>::infinity();
    lo_ = n.get_float(kFusedMinAttr, -inf);
    hi_ = n.get_float(kFusedMaxAttr, inf);
    const Tensor* b = n.has_input(1) ? consts(n.inputs[1]) : nullptr;
    const Tensor* c = n.has_input(2) ? consts(n.inputs[2]) : nullptr;
    if (b && b->dtype == DType::kFloat32 && b->shape.size() == 2) {
      const int64_t k = trans_b_ ? b->shape[1] : b->shape[0], nn = trans_b_ ? b->shape[0] : b->shape[1];
      std::vector<float> w(b->as<float>(), b->as<float>() + b->numel());
      for (float& v : w) v *= alpha_;
      std::vector<float> bias;
      bool bias_fused = !n.has_input(2);
      if (c && c->dtype == DType::kFloat32 && (c->numel() == nn || c->numel() == 1) &&
          (c->shape.size() <= 1 || (c->shape.size() == 2 && c->shape[0] == 1))) {
        bias.resize(nn);
        for (int64_t j = 0; j < nn; ++j) bias[j] = beta_ * c->as<float>()[c->numel() == 1 ? 0 : j];
        bias_fused = true;
      }
      post_add_ = !bias_fused;
      fc_ = std::make_unique<FullyConnected>(k, nn, w.data(), !trans_b_, bias.empty() ? nullptr : bias.data(),
                                             post_add_ ? -inf : lo_, post_add_ ? inf : hi_, consts.kernels);
    }
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    for (const ValueMeta* m : in) {
      if (m && m->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    }
    const Shape& a = in[0]->shape;
    const Shape& b = in[1]->shape;
    if (a.size() != 2 || b.size() != 2) error(StatusCode::kInvalidArgument, "A and B must be 2-D, got " + shape_str(a) + " and " + shape_str(b));
    m_ = trans_a_ ? a[1] : a[0];
    k_ = trans_a_ ? a[0] : a[1];
    const int64_t kb = trans_b_ ? b[1] : b[0];
    n_ = trans_b_ ? b[0] : b[1];
    if (k_ != kb) error(StatusCode::kInvalidArgument, "inner dimensions differ: A " + shape_str(a) + ", B " + shape_str(b));
    if (in.size() > 2 && in[2]) broadcast_shapes(node_, in[2]->shape, {m_, n_});
    out[0] = ValueMeta{DType::kFloat32, {m_, n_}, Tensor()};
  }
  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t threads) const override {
    size_t s = trans_a_ ? static_cast<size_t>(m_ * k_) * sizeof(float) + 64 : 0;
    if (fc_) s += fc_->scratch_bytes(static_cast<size_t>(m_), threads);
    return s;
  }
  void run(const RunArgs& r) override {
    const float* a = r.in[0]->as<float>();
    float* y = r.out[0]->as<float>();
    char* scratch = static_cast<char*>(r.scratch);
    if (fc_) {
      if (trans_a_) {
        float* at = reinterpret_cast<float*>(scratch);
        for (int64_t i = 0; i < m_; ++i)
          for (int64_t p = 0; p < k_; ++p) at[i * k_ + p] = a[p * m_ + i];
        a = at;
        scratch += (static_cast<size_t>(m_ * k_) * sizeof(float) + 63) / 64 * 64;
      }
      fc_->run(static_cast<size_t>(m_), a, y, scratch, r.pool);
    } else {
      const float* b = r.in[1]->as<float>();
      naive_matmul(a, trans_a_ ? 1 : k_, trans_a_ ? m_ : 1, b, trans_b_ ? 1 : n_, trans_b_ ? k_ : 1, y, m_, k_, n_);
      for (int64_t i = 0; i < m_ * n_; ++i) y[i] *= alpha_;
    }
    if (!fc_ || post_add_) {
      const Tensor* c = r.in.size() > 2 ? r.in[2] : nullptr;
      if (c) {
        // C broadcasts to [M, N]: strides 0 where its dimension is 1.
        const Shape& cs = c->shape;
        const int64_t cm = cs.size() == 2 ? cs[0] : 1, cn = cs.empty() ? 1 : cs.back();
        for (int64_t i = 0; i < m_; ++i)
          for (int64_t j = 0; j < n_; ++j) y[i * n_ + j] += beta_ * c->as<float>()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
      }
      for (int64_t i = 0; i < m_ * n_; ++i) y[i] = clampf(y[i], lo_, hi_);
    }
  }
  std::string kernel_name() const override { return fc_ ? "fully-connected" : "reference-matmul"; }

 private:
  bool trans_a_, trans_b_, post_add_ = false;
  float alpha_, beta_, lo_, hi_;
  int64_t m_ = 0, k_ = 0, n_ = 0;
  std::unique_ptr<FullyConnected> fc_;
};

class MatMulOp : public Op {
 public:
  MatMulOp(const Node& n, const OpContext& consts) : Op(n) {
    const float inf = std::numeric_limits<float>::infinity();
    lo_ = n.get_float(kFusedMinAttr, -inf);
    hi_ = n.get_float(kFusedMaxAttr, inf);
    const Tensor* b = n.has_input(1) ? consts(n.inputs[1]) : nullptr;
    if (b && b->dtype == DType::kFloat32 && b->shape.size() == 2) {
      fc_ = std::make_unique<FullyConnected>(b->shape[0], b->shape[1], b->as<float>(), true, nullptr, lo_, hi_, consts.kernels);
    }
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in[0]->dtype != DType::kFloat32 || in[1]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    Shape a = in[0]->shape, b = in[1]->shape;
    if (a.empty() || b.empty()) error(StatusCode::kInvalidArgument, "inputs must not be scalars");
    const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
    if (a_vec) a.insert(a.begin(), 1);
    if (b_vec) b.push_back(1);
    if (a.back() != b[b.size() - 2]) {
      error(StatusCode::kInvalidArgument, "inner dimensions differ: " + shape_str(in[0]->shape) + " x " + shape_str(in[1]->shape));
    }
    m_ = a[a.size() - 2];
    k_ = a.back();
    n_ = b.back();
    Shape batch_a(a.begin(), a.end() - 2), batch_b(b.begin(), b.end() - 2);
    batch_ = broadcast_shapes(node_, batch_a, batch_b);
    a_batch_shape_ = batch_a;
    b_batch_shape_ = batch_b;
    Shape o = batch_;
    if (!a_vec) o.push_back(m_);
    if (!b_vec) o.push_back(n_);
    out[0] = ValueMeta{DType::kFloat32, o, Tensor()};
  }
  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t threads) const override {
    return fc_ ? fc_->scratch_bytes(static_cast<size_t>(shape_numel(batch_) * m_), threads) : 0;
  }
  void run(const RunArgs& r) override {
    const float* a = r.in[0]->as<float>();
    float* y = r.out[0]->as<float>();
    if (fc_) {
      fc_->run(static_cast<size_t>(shape_numel(batch_) * m_), a, y, r.scratch, r.pool);
      return;
    }
    const float* b = r.in[1]->as<float>();
    const int64_t batches = shape_numel(batch_);
    const size_t rank = batch_.size();
    std::vector<int64_t> idx(rank, 0);
    for (int64_t t = 0; t < batches; ++t) {
      // Offsets of this batch in A and B, broadcasting size-1 batch dims.
      int64_t oa = 0, ob = 0, sa = 1, sb = 1;
      for (size_t d = rank; d-- > 0;) {
        const size_t da = d + a_batch_shape_.size() - rank, db = d + b_batch_shape_.size() - rank;
        if (d >= rank - a_batch_shape_.size()) {
          if (a_batch_shape_[da] != 1) oa += idx[d] * sa;
          sa *= a_batch_shape_[da];
        }
        if (d >= rank - b_batch_shape_.size()) {
          if (b_batch_shape_[db] != 1) ob += idx[d] * sb;
          sb *= b_batch_shape_[db];
        }
      }
      float* yt = y + t * m_ * n_;
      naive_matmul(a + oa * m_ * k_, k_, 1, b + ob * k_ * n_, n_, 1, yt, m_, k_, n_);
      if (lo_ > -std::numeric_limits<float>::infinity() || hi_ < std::numeric_limits<float>::infinity()) {
        for (int64_t i = 0; i < m_ * n_; ++i) yt[i] = clampf(yt[i], lo_, hi_);
      }
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < batch_[d]) break;
        idx[d] = 0;
      }
    }
  }
  std::string kernel_name() const override { return fc_ ? "fully-connected" : "reference-matmul"; }

 private:
  float lo_, hi_;
  int64_t m_ = 0, k_ = 0, n_ = 0;
  Shape batch_, a_batch_shape_, b_batch_shape_;
  std::unique_ptr<FullyConnected> fc_;
};

}  // namespace

void register_matmul_ops(OpRegistry& r) {
  r.add("", "Gemm", make_factory<GemmOp>());
  r.add("", "MatMul", make_factory<MatMulOp>());
}

}  // namespace sde
