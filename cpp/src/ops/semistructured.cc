// The ai.sparsedge 2:4 op (docs/FORMAT.md, "SemiStructuredMatMul"):
// Y[..., O] = X[..., I] @ W_2:4^T + bias. The stored values/indices are the
// kernel's layout already (f32-spmv24 decodes the group bytes in registers),
// so loading only checks them; every row of X is one GEMV.
#include <algorithm>
#include <string>

#include "core/threadpool.h"
#include "format/sparsedge_format.h"
#include "ops/op.h"

namespace sde {
namespace {

enum SemiStructuredInput : int { kX = 0, kValues = 1, kIndices = 2, kBias = 3 };

class SemiStructuredMatMulOp : public Op {
 public:
  SemiStructuredMatMulOp(const Node& n, const OpContext& ctx) : Op(n) {
    ukernel_ = ctx.kernels != nullptr ? ctx.kernels->spmv24.ukernel : nullptr;
    name_ = ctx.kernels != nullptr ? ctx.kernels->spmv24.name : "";
    if (ukernel_ == nullptr) error(StatusCode::kUnsupported, "no f32-spmv24 kernel in the kernel table");
    const int64_t group = format::kSemiStructuredM, kept = format::kSemiStructuredN;
    out_ = n.get_int(format::kAttrOutChannels, 0);
    in_ = n.get_int(format::kAttrInChannels, 0);
    auto bad = [&](const std::string& msg) { error(StatusCode::kInvalidModel, msg); };
    if (out_ <= 0) bad("out_channels must be positive, got " + std::to_string(out_));
    if (in_ <= 0 || in_ % group != 0) bad("in_channels must be a positive multiple of 4, got " + std::to_string(in_));
    values_ = require_constant(n, ctx, kValues, "values");
    indices_ = require_constant(n, ctx, kIndices, "indices");
    const Shape vshape{out_, in_ / group * kept}, ishape{out_, in_ / group};
    if (values_.dtype != DType::kFloat32 || values_.shape != vshape) {
      bad("values must be float32 " + shape_str(vshape) + ", got " + shape_str(values_.shape));
    }
    if (indices_.dtype != DType::kUInt8 || indices_.shape != ishape) {
      bad("indices must be uint8 " + shape_str(ishape) + ", got " + shape_str(indices_.shape));
    }
    if (n.has_input(kBias)) {
      bias_ = require_constant(n, ctx, kBias, "bias");
      if (bias_.dtype != DType::kFloat32 || bias_.numel() != out_) bad("bias must be float32 [out_channels]");
    }
    // The kernels index the activations with these bytes unchecked.
    const uint8_t* idx = indices_.as<uint8_t>();
    for (int64_t i = 0; i < indices_.numel(); ++i) {
      const int p0 = idx[i] & 3, p1 = idx[i] >> 2;
      if (p1 > 3 || p0 >= p1) {
        bad("indices byte " + std::to_string(int(idx[i])) + " at [" + std::to_string(i / ishape[1]) + ", " +
            std::to_string(i % ishape[1]) + "] is not p0 | (p1 << 2) with p0 < p1 <= 3");
      }
    }
  }

  void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) override {
    const Shape& s = in[0]->shape;
    if (in[0]->dtype != DType::kFloat32) error(StatusCode::kUnsupported, "only float32 inputs are supported");
    if (s.empty() || s.back() != in_) {
      error(StatusCode::kInvalidArgument, "input " + shape_str(s) + " must end in in_channels = " + std::to_string(in_));
    }
    Shape o = s;
    o.back() = out_;
    out[0] = ValueMeta{DType::kFloat32, o, Tensor()};
  }

  void run(const RunArgs& a) override {
    const size_t rows = static_cast<size_t>(a.in[0]->numel() / in_), nc = static_cast<size_t>(out_);
    const size_t k = static_cast<size_t>(in_);
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    const float* v = values_.as<float>();
    const uint8_t* idx = indices_.as<uint8_t>();
    const float* bias = bias_.defined() ? bias_.as<float>() : nullptr;
    if (rows == 1) {
      // Decode: split the output rows (64 per chunk keeps the 4-row tiles whole).
      parallel_for(a.pool, nc, 64, [&](size_t b, size_t e) {
        ukernel_(e - b, k, x, v + b * (k / 2), idx + b * (k / 4), bias ? bias + b : nullptr, y + b);
      });
      return;
    }
    parallel_for(a.pool, rows, 1, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) ukernel_(nc, k, x + r * k, v, idx, bias, y + r * nc);
    });
  }

  std::string kernel_name() const override { return name_; }

 private:
  f32_spmv24_ukernel_fn ukernel_ = nullptr;
  std::string name_;
  int64_t out_ = 0, in_ = 0;
  Tensor values_, indices_, bias_;
};

}  // namespace

void register_semistructured_ops(OpRegistry& r) {
  r.add(format::kDomain, format::kSemiStructuredMatMul, make_factory<SemiStructuredMatMulOp>());
}

}  // namespace sde
