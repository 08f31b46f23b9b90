// The ai.sparsedge LLM decoder ops (docs/FORMAT.md, "LLM decoder ops"):
// RMSNorm and RotaryEmbedding (CausalAttention is in ops/attention.cc). The function bodies in
// exporters/sparsedge_export/llm/functions.py are the numerical reference;
// these follow their order of operations where it matters (angles in float32,
// the score scale applied after the dot product).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/threadpool.h"
#include "format/sparsedge_format.h"
#include "ops/op.h"

namespace sde {
namespace {

size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

class RmsNormOp : public Op {
 public:
  RmsNormOp(const Node& n, const OpContext&) : Op(n) {
    epsilon_ = n.get_float(format::kAttrEpsilon, 1e-5f);
    if (!(epsilon_ >= 0.f)) error(StatusCode::kInvalidModel, "epsilon must not be negative");
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in.size() < 2 || !in[0] || !in[1]) error(StatusCode::kInvalidModel, "needs inputs x and weight");
    if (in[0]->dtype != DType::kFloat32 || in[1]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
    const Shape& s = in[0]->shape;
    if (s.empty() || in[1]->shape != Shape{s.back()}) {
      error(StatusCode::kInvalidArgument, "weight " + shape_str(in[1]->shape) + " must be [C] for x " + shape_str(s));
    }
    out[0] = ValueMeta{DType::kFloat32, s, Tensor()};
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    const size_t c = static_cast<size_t>(s.back()), rows = c == 0 ? 0 : static_cast<size_t>(a.in[0]->numel()) / c;
    const float* x = a.in[0]->as<float>();
    const float* w = a.in[1]->as<float>();
    float* y = a.out[0]->as<float>();
    for (size_t r = 0; r < rows; ++r, x += c, y += c) {
      double sum = 0.0;
      for (size_t i = 0; i < c; ++i) sum += double(x[i]) * double(x[i]);
      const float rms = std::sqrt(static_cast<float>(sum / double(c)) + epsilon_);
      for (size_t i = 0; i < c; ++i) y[i] = x[i] / rms * w[i];
    }
  }

 private:
  float epsilon_;
};

class RotaryEmbeddingOp : public Op {
 public:
  RotaryEmbeddingOp(const Node& n, const OpContext&) : Op(n) {
    base_ = n.get_float(format::kAttrBase, 10000.f);
    interleaved_ = n.get_int(format::kAttrInterleaved, 0) != 0;
    if (!(base_ > 0.f)) error(StatusCode::kInvalidModel, "base must be positive");
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in.size() < 2 || !in[0] || !in[1]) error(StatusCode::kInvalidModel, "needs inputs x and position_ids");
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 x is supported");
    if (in[1]->dtype != DType::kInt64) error(StatusCode::kInvalidArgument, "position_ids must be int64");
    if (s.size() != 4 || s[3] % 2 != 0) error(StatusCode::kInvalidArgument, "x must be [B, T, H, D] with D even, got " + shape_str(s));
    if (in[1]->shape != Shape{s[0], s[1]}) {
      error(StatusCode::kInvalidArgument, "position_ids " + shape_str(in[1]->shape) + " must be [B, T] for x " + shape_str(s));
    }
    out[0] = ValueMeta{DType::kFloat32, s, Tensor()};
  }
  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t) const override {
    return align64(static_cast<size_t>(in[0]->shape[3]) * sizeof(float));  // cos | sin per position
  }
  void run(const RunArgs& a) override {
    const Shape& s = a.in[0]->shape;
    const size_t bt = static_cast<size_t>(s[0] * s[1]), heads = static_cast<size_t>(s[2]);
    const size_t d = static_cast<size_t>(s[3]), half = d / 2;
    const float* x = a.in[0]->as<float>();
    const int64_t* pos = a.in[1]->as<int64_t>();
    float* y = a.out[0]->as<float>();
    float* cosv = static_cast<float*>(a.scratch);
    float* sinv = cosv + half;
    for (size_t r = 0; r < bt; ++r) {
      // As the body: inv_freq and the angle in float32; cos/sin of that angle in double.
      const float p = static_cast<float>(pos[r]);
      for (size_t i = 0; i < half; ++i) {
        const float exponent = (-2.0f * static_cast<float>(i)) / static_cast<float>(d);
        const float inv_freq = static_cast<float>(std::pow(double(base_), double(exponent)));
        const double angle = static_cast<double>(p * inv_freq);
        cosv[i] = static_cast<float>(std::cos(angle));
        sinv[i] = static_cast<float>(std::sin(angle));
      }
      for (size_t h = 0; h < heads; ++h) {
        const float* xh = x + (r * heads + h) * d;
        float* yh = y + (r * heads + h) * d;
        if (interleaved_) {
          for (size_t i = 0; i < half; ++i) {
            const float xa = xh[2 * i], xb = xh[2 * i + 1];
            yh[2 * i] = xa * cosv[i] - xb * sinv[i];
            yh[2 * i + 1] = xa * sinv[i] + xb * cosv[i];
          }
        } else {
          for (size_t i = 0; i < half; ++i) {
            const float xa = xh[i], xb = xh[i + half];
            yh[i] = xa * cosv[i] - xb * sinv[i];
            yh[i + half] = xa * sinv[i] + xb * cosv[i];
          }
        }
      }
    }
  }

 private:
  float base_;
  bool interleaved_;
};

}  // namespace

void register_attention_ops(OpRegistry& r);

void register_llm_ops(OpRegistry& r) {
  r.add(format::kDomain, format::kRmsNorm, make_factory<RmsNormOp>());
  r.add(format::kDomain, format::kRotaryEmbedding, make_factory<RotaryEmbeddingOp>());
  register_attention_ops(r);  // ops/attention.cc
}

}  // namespace sde
