// The ai.sparsedge LLM decoder ops (docs/FORMAT.md, "LLM decoder ops"):
// RMSNorm, RotaryEmbedding and CausalAttention. The function bodies in
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

// Dot product with eight partial sums, so the compiler vectorises it without
// reassociation flags (head_dim is 64 in SmolLM2).
inline float dot(const float* a, const float* b, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

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

// Grouped-query causal attention over a KV cache.
//
// KV cache aliasing contract: present_k/present_v are written as the past
// rows followed by the new rows. When B = 1 and an output's data pointer
// equals its past input's data pointer, the caller keeps its cache in one
// buffer with room for S rows and already holds the past rows in place: the
// op then only appends the T new rows (no copy of P rows per token). Partial
// overlap is not allowed. Scores and the softmax never read `present`, so
// the order of the writes does not matter.
class CausalAttentionOp : public Op {
 public:
  CausalAttentionOp(const Node& n, const OpContext&) : Op(n) {
    num_heads_ = n.get_int(format::kAttrNumHeads, 0);
    kv_heads_ = n.get_int(format::kAttrKvHeads, 0);
    scale_ = n.get_float(format::kAttrScale, 0.f);
    if (num_heads_ <= 0 || kv_heads_ <= 0 || num_heads_ % kv_heads_ != 0) {
      error(StatusCode::kInvalidModel, "num_heads and kv_heads must be positive and kv_heads must divide num_heads");
    }
    if (!std::isfinite(scale_)) error(StatusCode::kInvalidModel, "scale must be finite");
  }
  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    if (in.size() < 5) error(StatusCode::kInvalidModel, "needs inputs q, k, v, past_k, past_v");
    for (const ValueMeta* m : in) {
      if (!m) error(StatusCode::kInvalidModel, "no input is optional");
      if (m->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 is supported");
      if (m->shape.size() != 4) error(StatusCode::kInvalidArgument, "inputs must be 4-D [B, T|P, H, D]");
    }
    const Shape &q = in[0]->shape, &k = in[1]->shape, &v = in[2]->shape, &pk = in[3]->shape, &pv = in[4]->shape;
    if (q[2] != num_heads_) error(StatusCode::kInvalidArgument, "q " + shape_str(q) + " does not have num_heads = " + std::to_string(num_heads_) + " heads");
    const Shape kv_new{q[0], q[1], kv_heads_, q[3]};
    if (k != kv_new || v != kv_new) error(StatusCode::kInvalidArgument, "k and v must be " + shape_str(kv_new) + ", got " + shape_str(k) + " and " + shape_str(v));
    const Shape past{q[0], pk[1], kv_heads_, q[3]};
    if (pk != past || pv != past) error(StatusCode::kInvalidArgument, "past_k and past_v must be " + shape_str(past) + ", got " + shape_str(pk) + " and " + shape_str(pv));
    out[0] = ValueMeta{DType::kFloat32, {q[0], q[1], q[2] * q[3]}, Tensor()};
    const Shape present{q[0], pk[1] + q[1], kv_heads_, q[3]};
    for (size_t i = 1; i < out.size() && i < 3; ++i) out[i] = ValueMeta{DType::kFloat32, present, Tensor()};
  }
  size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t) const override {
    const Shape& q = in[0]->shape;
    const size_t s = static_cast<size_t>(in[3]->shape[1] + q[1]);
    return align64(static_cast<size_t>(q[0] * q[2]) * s * sizeof(float));  // one score row per (b, head)
  }
  bool foldable() const override { return false; }
  void run(const RunArgs& a) override {
    const Shape& qs = a.in[0]->shape;
    const size_t B = static_cast<size_t>(qs[0]), T = static_cast<size_t>(qs[1]), Hq = static_cast<size_t>(qs[2]);
    const size_t D = static_cast<size_t>(qs[3]), Hkv = static_cast<size_t>(kv_heads_), G = Hq / Hkv;
    const size_t P = static_cast<size_t>(a.in[3]->shape[1]), S = P + T;
    const float* q = a.in[0]->as<float>();
    const float* knew = a.in[1]->as<float>();
    const float* vnew = a.in[2]->as<float>();
    const float* kpast = a.in[3]->as<float>();
    const float* vpast = a.in[4]->as<float>();
    const size_t row = Hkv * D;  // floats per sequence position of k/v

    for (size_t i = 1; i < 3 && i < a.out.size(); ++i) {
      if (a.out[i] == nullptr) continue;
      const float* past = i == 1 ? kpast : vpast;
      const float* fresh = i == 1 ? knew : vnew;
      float* present = a.out[i]->as<float>();
      const bool aliased = present == past;
      if (aliased && B != 1) error(StatusCode::kInvalidArgument, "present may alias past only for batch 1");
      for (size_t b = 0; b < B; ++b) {
        float* dst = present + b * S * row;
        if (!aliased && P > 0) std::memmove(dst, past + b * P * row, P * row * sizeof(float));
        std::memcpy(dst + P * row, fresh + b * T * row, T * row * sizeof(float));
      }
    }

    float* out = a.out[0]->as<float>();
    float* scores_all = static_cast<float*>(a.scratch);
    const float scale = scale_;
    // One task per (batch, query head): each output row is computed by one
    // task in a fixed order, so results do not depend on the thread count.
    parallel_for(a.pool, B * Hq, 1, [&](size_t begin, size_t end) {
      for (size_t task = begin; task < end; ++task) {
        const size_t b = task / Hq, h = task % Hq, g = h / G;
        float* scores = scores_all + task * S;
        auto key = [&](size_t s) { return s < P ? kpast + (b * P + s) * row + g * D : knew + (b * T + s - P) * row + g * D; };
        auto value = [&](size_t s) { return s < P ? vpast + (b * P + s) * row + g * D : vnew + (b * T + s - P) * row + g * D; };
        for (size_t t = 0; t < T; ++t) {
          const float* qr = q + ((b * T + t) * Hq + h) * D;
          const size_t visible = P + t + 1;
          float mx = -INFINITY;
          for (size_t s = 0; s < visible; ++s) {
            scores[s] = dot(qr, key(s), D) * scale;
            mx = std::max(mx, scores[s]);
          }
          float sum = 0.f;
          for (size_t s = 0; s < visible; ++s) {
            scores[s] = std::exp(scores[s] - mx);
            sum += scores[s];
          }
          float* o = out + ((b * T + t) * Hq + h) * D;
          std::fill(o, o + D, 0.f);
          for (size_t s = 0; s < visible; ++s) {
            const float p = scores[s];
            const float* vr = value(s);
            for (size_t d = 0; d < D; ++d) o[d] += p * vr[d];
          }
          const float inv = 1.f / sum;
          for (size_t d = 0; d < D; ++d) o[d] *= inv;
        }
      }
    });
  }

 private:
  int64_t num_heads_, kv_heads_;
  float scale_;
};

}  // namespace

void register_llm_ops(OpRegistry& r) {
  r.add(format::kDomain, format::kRmsNorm, make_factory<RmsNormOp>());
  r.add(format::kDomain, format::kRotaryEmbedding, make_factory<RotaryEmbeddingOp>());
  r.add(format::kDomain, format::kCausalAttention, make_factory<CausalAttentionOp>());
}

}  // namespace sde
