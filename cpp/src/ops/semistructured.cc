// The ai.sparsedge 2:4 op (docs/FORMAT.md, "SemiStructuredMatMul"):
// Y[..., O] = X[..., I] @ W_2:4^T + bias. Loading checks the stored
// values/indices and repacks them once into the f32-spmm24 panels of the
// table's kernel (NR output rows interleaved per group of 4 inputs); a run is
// one kernel call per thread chunk: whole panels for decode (one row of X),
// row tiles of X otherwise (the kernel reuses each decoded group over them).
#include <algorithm>
#include <string>

#include "core/threadpool.h"
#include "format/sparsedge_format.h"
#include "operators/aligned_buffer.h"
#include "ops/op.h"

namespace sde {
namespace {

enum SemiStructuredInput : int { kX = 0, kValues = 1, kIndices = 2, kBias = 3 };

class SemiStructuredMatMulOp : public Op {
 public:
  SemiStructuredMatMulOp(const Node& n, const OpContext& ctx) : Op(n) {
    if (ctx.kernels != nullptr) cfg_ = ctx.kernels->spmm24;
    if (cfg_.ukernel == nullptr) error(StatusCode::kUnsupported, "no f32-spmm24 kernel in the kernel table");
    const int64_t group = format::kSemiStructuredM, kept = format::kSemiStructuredN;
    out_ = n.get_int(format::kAttrOutChannels, 0);
    in_ = n.get_int(format::kAttrInChannels, 0);
    auto bad = [&](const std::string& msg) { error(StatusCode::kInvalidModel, msg); };
    if (out_ <= 0) bad("out_channels must be positive, got " + std::to_string(out_));
    if (in_ <= 0 || in_ % group != 0) bad("in_channels must be a positive multiple of 4, got " + std::to_string(in_));
    const Tensor values_ = require_constant(n, ctx, kValues, "values");
    const Tensor indices_ = require_constant(n, ctx, kIndices, "indices");
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
    const size_t nr = cfg_.nr, o = static_cast<size_t>(out_), k = static_cast<size_t>(in_);
    w_.resize(sde_f32_spmm24_packed_floats(nr, o, k));
    widx_.resize(sde_f32_spmm24_packed_words(nr, o, k));  // 32-bit words in float storage
    sde_f32_spmm24_pack(nr, o, k, values_.as<float>(), idx, w_.data(), reinterpret_cast<uint32_t*>(widx_.data()));
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
    const size_t k = static_cast<size_t>(in_), nr = cfg_.nr, groups = k / 4;
    const size_t panels = (nc + nr - 1) / nr;
    const float* x = a.in[0]->as<float>();
    float* y = a.out[0]->as<float>();
    const float* w = w_.data();
    const uint32_t* widx = reinterpret_cast<const uint32_t*>(widx_.data());
    const float* bias = bias_.defined() ? bias_.as<float>() : nullptr;
    if (rows == 0) return;
    const size_t threads = a.pool != nullptr ? a.pool->threads() : 1;
    if (rows < 8 * threads) {
      // Decode (and short inputs): split whole panels, 64 outputs or more each.
      const size_t grain = std::max<size_t>(1, 64 / nr);
      parallel_for(a.pool, panels, grain, [&](size_t b, size_t e) {
        const size_t o0 = b * nr, cols = std::min(nc, e * nr) - o0;
        cfg_.ukernel(rows, cols, k, x, k, w + b * groups * 2 * nr, widx + b * groups, bias ? bias + o0 : nullptr,
                     y + o0, nc);
      });
      return;
    }
    // Prefill: tiles of 8 rows of X, each against every panel; the last
    // chunk takes the remainder too, so no call sees m = 1 (the kernels'
    // decode path sums in another order) and results do not depend on threads.
    const size_t tiles = rows / 8;
    parallel_for(a.pool, tiles, 1, [&](size_t b, size_t e) {
      const size_t r0 = b * 8, r1 = e == tiles ? rows : e * 8;
      cfg_.ukernel(r1 - r0, nc, k, x + r0 * k, k, w, widx, bias, y + r0 * nc, nc);
    });
  }

  std::string kernel_name() const override { return cfg_.name; }

 private:
  Spmm24Config cfg_;
  int64_t out_ = 0, in_ = 0;
  AlignedFloats w_, widx_;  // packed panels (sde_f32_spmm24_pack)
  Tensor bias_;
};

}  // namespace

void register_semistructured_ops(OpRegistry& r) {
  r.add(format::kDomain, format::kSemiStructuredMatMul, make_factory<SemiStructuredMatMulOp>());
}

}  // namespace sde
