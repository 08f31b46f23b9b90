// ai.sparsedge CausalAttention (docs/FORMAT.md, "CausalAttention"), dense and
// temporal-delta (DeltaLLM-style, docs/DELTA_ATTENTION.md). The function body
// in exporters/sparsedge_export/llm/functions.py is the numerical reference of
// the dense path; exporters/sparsedge_export/llm/delta.py holds the numpy
// reference of the delta path (same order of operations as below).
//
// KV cache aliasing contract: present_k/present_v are written as the past
// rows followed by the new rows. When B = 1 and an output's data pointer
// equals its past input's data pointer, the caller keeps its cache in one
// buffer with room for S rows and already holds the past rows in place: the
// op then only appends the T new rows (no copy of P rows per token). Partial
// overlap is not allowed. Scores and the softmax never read `present`, so
// the order of the writes does not matter.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "format/sparsedge_format.h"
#include "ops/op.h"

namespace sde {
namespace {

// Rebase the running softmax offset downwards when the row maximum falls this
// far below it (keeps the far-key exponentials away from underflow).
constexpr float kRebaseGap = 30.f;

class CausalAttentionOp : public Op {
 public:
  CausalAttentionOp(const Node& n, const OpContext& ctx) : Op(n) {
    num_heads_ = n.get_int(format::kAttrNumHeads, 0);
    kv_heads_ = n.get_int(format::kAttrKvHeads, 0);
    scale_ = n.get_float(format::kAttrScale, 0.f);
    if (num_heads_ <= 0 || kv_heads_ <= 0 || num_heads_ % kv_heads_ != 0) {
      error(StatusCode::kInvalidModel, "num_heads and kv_heads must be positive and kv_heads must divide num_heads");
    }
    if (!std::isfinite(scale_)) error(StatusCode::kInvalidModel, "scale must be finite");
    const int64_t window = n.get_int(format::kAttrDeltaWindow, 0);
    if (window < 0) error(StatusCode::kInvalidModel, "delta_window must not be negative, got " + std::to_string(window));
    window_ = static_cast<size_t>(window);
    qthr_ = n.get_floats(format::kAttrDeltaQThresholds, {});
    pthr_ = n.get_float(format::kAttrDeltaPThreshold, 0.f);
    if (window_ > 0) {
      if (qthr_.size() == 1) qthr_.assign(static_cast<size_t>(num_heads_), qthr_[0]);
      if (qthr_.size() != static_cast<size_t>(num_heads_)) {
        error(StatusCode::kInvalidModel, "delta_q_thresholds must have num_heads = " + std::to_string(num_heads_) +
                                             " values, got " + std::to_string(qthr_.size()));
      }
    }
    for (float t : qthr_) {
      if (!std::isfinite(t) || t < 0.f) {
        error(StatusCode::kInvalidModel, "delta_q_thresholds must be finite and >= 0, got " + std::to_string(t));
      }
    }
    if (!std::isfinite(pthr_) || pthr_ < 0.f) {
      error(StatusCode::kInvalidModel, "delta_p_threshold must be finite and >= 0, got " + std::to_string(pthr_));
    }
    const KernelTable& kt = ctx.kernels ? *ctx.kernels : kernels();
    k_ = kt.delta_attn;
    if (!k_.dots) k_ = kernels_for(Isa::kScalar).delta_attn;
  }

  std::string kernel_name() const override {
    return std::string(k_.name) + (window_ > 0 ? " delta(window " + std::to_string(window_) + ")" : " dense");
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
  bool foldable() const override { return false; }

  void add_stats(std::map<std::string, double>& out) const override {
    out["attention.macs_dense"] += macs_dense_;
    out["attention.macs_done"] += macs_done_;
    out["attention.state_bytes"] += static_cast<double>(state_bytes());
    out["attention.delta_reseeds"] += reseeds_;
  }
  void reset_stats() override { macs_dense_ = macs_done_ = reseeds_ = 0; }

  void run(const RunArgs& a) override {
    const Shape& qs = a.in[0]->shape;
    const size_t B = static_cast<size_t>(qs[0]), T = static_cast<size_t>(qs[1]), Hq = static_cast<size_t>(qs[2]);
    const size_t D = static_cast<size_t>(qs[3]), Hkv = static_cast<size_t>(kv_heads_);
    const size_t P = static_cast<size_t>(a.in[3]->shape[1]), S = P + T;
    const size_t row = Hkv * D;
    const float* kpast = a.in[3]->as<float>();
    const float* knew = a.in[1]->as<float>();
    const float* vnew = a.in[2]->as<float>();
    const float* vpast = a.in[4]->as<float>();
    // Checked before the cache is written: with aliasing, row P-1 of past is the previous call's last row.
    const bool delta = window_ > 0 && B == 1;
    if (delta) sync_state(kpast, P, D, Hq, Hkv);

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
    macs_dense_ += double(B) * double(Hq) * 2.0 * double(D) * (double(T) * double(P) + double(T) * double(T + 1) / 2.0);
    if (delta) {
      run_delta(a, T, P, Hq, Hkv, D);
    } else {
      run_dense(a, B, T, P, Hq, Hkv, D);
    }
  }

 private:
  // Per query head: the delta-coded query, the far keys' scores and the
  // exponentials last folded into `u` (unnormalised output) and `z`.
  struct Head {
    std::vector<float> qhat, u, sfar, ehat;
    float z = 0.f, mref = -INFINITY;
    std::vector<uint32_t> qidx, sel_idx;
    std::vector<float> dq, sel_c, sw;
    double macs = 0;
  };

  size_t state_bytes() const {
    size_t bytes = kt_.size() * sizeof(float) + last_k_.size() * sizeof(float);
    for (const Head& h : heads_) bytes += (h.qhat.size() + h.u.size() + h.sfar.size() + h.ehat.size()) * sizeof(float);
    return bytes;
  }

  void reset(size_t D, size_t Hq, size_t Hkv) {
    heads_.assign(Hq, Head());
    for (Head& h : heads_) {
      h.qhat.assign(D, 0.f);
      h.u.assign(D, 0.f);
      h.qidx.resize(D);
      h.dq.resize(D);
    }
    kt_.clear();
    kt_cap_ = 0;
    nf_ = 0;
    len_ = 0;
    d_ = D;
    hkv_ = Hkv;
    last_k_.clear();
  }

  // State reset rule: P = 0 starts a new sequence. Otherwise the state must
  // describe exactly the P cached rows: same length and the same last key
  // row. If not (the caller rewound, truncated or swapped its cache), the
  // state is rebuilt from the cache on this call ("re-seed"): every far key
  // is then scored exactly once with the current query, as dense attention
  // would, and delta coding resumes from there. Counted in attention.delta_reseeds.
  void sync_state(const float* kpast, size_t P, size_t D, size_t Hq, size_t Hkv) {
    bool ok = P == 0 ? false : (len_ == P && d_ == D && heads_.size() == Hq && hkv_ == Hkv &&
                                last_k_.size() == Hkv * D &&
                                std::memcmp(last_k_.data(), kpast + (P - 1) * Hkv * D, Hkv * D * sizeof(float)) == 0);
    if (!ok) {
      if (P > 0) reseeds_ += 1;
      reset(D, Hq, Hkv);
    }
  }

  // Far keys after this call: positions [0, nf_end) (all but the last `window_`).
  void grow_transposed_keys(const float* kpast, const float* knew, size_t P, size_t nf_end) {
    const size_t D = d_, row = hkv_ * D;
    if (nf_end > kt_cap_) {
      size_t cap = std::max<size_t>(64, kt_cap_);
      while (cap < nf_end) cap *= 2;
      std::vector<float> grown(hkv_ * D * cap, 0.f);
      for (size_t g = 0; g < hkv_; ++g)
        for (size_t i = 0; i < D; ++i)
          std::memcpy(&grown[(g * D + i) * cap], &kt_[(g * D + i) * kt_cap_], nf_ * sizeof(float));
      kt_.swap(grown);
      kt_cap_ = cap;
    }
    for (size_t j = nf_; j < nf_end; ++j) {
      const float* kr = j < P ? kpast + j * row : knew + (j - P) * row;
      for (size_t g = 0; g < hkv_; ++g)
        for (size_t i = 0; i < D; ++i) kt_[(g * D + i) * kt_cap_ + j] = kr[g * D + i];
    }
  }

  // Scores of keys [lo, hi) into s (split between the past and new buffers).
  float dots_range(const float* q, size_t lo, size_t hi, size_t P, const float* kpast, const float* knew,
                   size_t g, float* s) const {
    const size_t D = d_, row = hkv_ * D;
    float m = -INFINITY;
    if (lo < std::min(hi, P)) m = k_.dots(std::min(hi, P) - lo, D, q, kpast + lo * row + g * D, row, scale_, s);
    const size_t lo2 = std::max(lo, P);
    if (lo2 < hi) m = std::max(m, k_.dots(hi - lo2, D, q, knew + (lo2 - P) * row + g * D, row, scale_, s + (lo2 - lo)));
    return m;
  }
  void axpy_range(const float* c, size_t lo, size_t hi, size_t P, const float* vpast, const float* vnew, size_t g,
                  float* u) const {
    const size_t D = d_, row = hkv_ * D;
    if (lo < std::min(hi, P)) k_.gather_axpy(std::min(hi, P) - lo, D, nullptr, c, vpast + lo * row + g * D, row, u);
    const size_t lo2 = std::max(lo, P);
    if (lo2 < hi) k_.gather_axpy(hi - lo2, D, nullptr, c + (lo2 - lo), vnew + (lo2 - P) * row + g * D, row, u);
  }

  void run_delta(const RunArgs& a, size_t T, size_t P, size_t Hq, size_t Hkv, size_t D) {
    const size_t S = P + T, G = Hq / Hkv, row = Hkv * D, W = window_;
    const float* q = a.in[0]->as<float>();
    const float* knew = a.in[1]->as<float>();
    const float* vnew = a.in[2]->as<float>();
    const float* kpast = a.in[3]->as<float>();
    const float* vpast = a.in[4]->as<float>();
    float* out = a.out[0]->as<float>();
    const size_t nf_start = nf_;
    const size_t nf_end = S > W ? S - W : 0;
    grow_transposed_keys(kpast, knew, P, nf_end);
    for (Head& h : heads_) {
      if (h.sfar.size() < nf_end) {
        h.sfar.resize(std::max(nf_end, h.sfar.size() * 2));
        h.ehat.resize(h.sfar.size(), 0.f);
      }
      const size_t need = std::max(S, size_t(1));
      if (h.sw.size() < need) {
        h.sw.resize(need);
        h.sel_idx.resize(need);
        h.sel_c.resize(need);
      }
    }
    parallel_for(a.pool, Hq, 1, [&](size_t begin, size_t end) {
      for (size_t hh = begin; hh < end; ++hh) {
        Head& st = heads_[hh];
        const size_t g = hh / G;
        const float thq = qthr_[hh];
        const float* kt = kt_.data() + g * D * kt_cap_;
        size_t nf_old = nf_start;
        double macs = 0;
        for (size_t t = 0; t < T; ++t) {
          const size_t p = P + t;
          const size_t nf = p + 1 > W ? p + 1 - W : 0;
          const float* qr = q + (t * Hq + hh) * D;
          float* o = out + (t * Hq + hh) * D;
          // 1. Delta-code the query against the last transmitted one.
          size_t nnz = 0;
          for (size_t i = 0; i < D; ++i) {
            const float d = qr[i] - st.qhat[i];
            if (std::fabs(d) > thq) {
              st.qidx[nnz] = static_cast<uint32_t>(i);
              st.dq[nnz] = d * scale_;
              st.qhat[i] = qr[i];
              ++nnz;
            }
          }
          float m = -INFINITY;
          // 2. Far keys already scored: add the delta's contribution.
          if (nf_old > 0) {
            m = k_.sparse_update(nf_old, nnz, st.qidx.data(), st.dq.data(), kt, kt_cap_, st.sfar.data());
            macs += double(nnz) * double(nf_old);
          }
          // 3. Keys leaving the window: scored once with the transmitted query.
          if (nf > nf_old) {
            m = std::max(m, dots_range(st.qhat.data(), nf_old, nf, P, kpast, knew, g, st.sfar.data() + nf_old));
            macs += double(nf - nf_old) * double(D);
          }
          // 4. The window: exact scores.
          const size_t nw = p + 1 - nf;
          m = std::max(m, dots_range(qr, nf, p + 1, P, kpast, knew, g, st.sw.data()));
          macs += double(nw) * double(D);
          // 5. Keep the softmax offset near the row maximum.
          if (nf == 0) {
            st.mref = m;
          } else if (m > st.mref || m < st.mref - kRebaseGap) {
            const float f = std::isfinite(st.mref) ? std::exp(st.mref - m) : 0.f;
            for (size_t j = 0; j < nf_old; ++j) st.ehat[j] *= f;
            for (size_t i = 0; i < D; ++i) st.u[i] *= f;
            st.z *= f;
            st.mref = m;
            macs += double(nf_old + D);
          }
          const float zw = k_.exp_sum(nw, st.sw.data(), st.mref);
          // 6. Far keys whose exponential moved by more than the threshold.
          size_t cnt = 0;
          if (nf_old > 0) {
            st.z += k_.exp_select(nf_old, st.sfar.data(), st.mref, st.ehat.data(), pthr_ * (st.z + zw),
                                  st.sel_idx.data(), st.sel_c.data(), &cnt);
          }
          for (size_t j = nf_old; j < nf; ++j) {
            const float e = std::exp(st.sfar[j] - st.mref);
            st.ehat[j] = e;
            st.z += e;
            st.sel_idx[cnt] = static_cast<uint32_t>(j);
            st.sel_c[cnt] = e;
            ++cnt;
          }
          // 7. Fold the changes into u (indices ascending: past rows, then new rows).
          if (cnt > 0) {
            const size_t split = static_cast<size_t>(
                std::lower_bound(st.sel_idx.data(), st.sel_idx.data() + cnt, static_cast<uint32_t>(P)) - st.sel_idx.data());
            if (split > 0) k_.gather_axpy(split, D, st.sel_idx.data(), st.sel_c.data(), vpast + g * D, row, st.u.data());
            if (split < cnt) {
              for (size_t c = split; c < cnt; ++c) st.sel_idx[c] -= static_cast<uint32_t>(P);
              k_.gather_axpy(cnt - split, D, st.sel_idx.data() + split, st.sel_c.data() + split, vnew + g * D, row,
                             st.u.data());
            }
            macs += double(cnt) * double(D);
          }
          // 8. Output: far part from u, window exactly.
          std::memcpy(o, st.u.data(), D * sizeof(float));
          axpy_range(st.sw.data(), nf, p + 1, P, vpast, vnew, g, o);
          macs += double(nw) * double(D);
          const float inv = 1.f / (st.z + zw);
          for (size_t i = 0; i < D; ++i) o[i] *= inv;
          nf_old = nf;
        }
        st.macs = macs;
      }
    });
    for (Head& h : heads_) macs_done_ += h.macs;
    nf_ = nf_end;
    len_ = S;
    const float* last = T > 0 ? knew + (T - 1) * row : kpast + (P - 1) * row;
    if (S > 0) last_k_.assign(last, last + row);
  }

  void run_dense(const RunArgs& a, size_t B, size_t T, size_t P, size_t Hq, size_t Hkv, size_t D) {
    const size_t S = P + T, G = Hq / Hkv, row = Hkv * D;
    const float* q = a.in[0]->as<float>();
    const float* knew = a.in[1]->as<float>();
    const float* vnew = a.in[2]->as<float>();
    const float* kpast = a.in[3]->as<float>();
    const float* vpast = a.in[4]->as<float>();
    float* out = a.out[0]->as<float>();
    if (scores_.size() < B * Hq * S) scores_.resize(B * Hq * S);
    d_ = D;
    hkv_ = Hkv;
    // One task per (batch, query head): each output row is computed by one
    // task in a fixed order, so results do not depend on the thread count.
    parallel_for(a.pool, B * Hq, 1, [&](size_t begin, size_t end) {
      for (size_t task = begin; task < end; ++task) {
        const size_t b = task / Hq, h = task % Hq, g = h / G;
        float* s = scores_.data() + task * S;
        const float* kp = kpast + b * P * row;
        const float* kn = knew + b * T * row;
        const float* vp = vpast + b * P * row;
        const float* vn = vnew + b * T * row;
        for (size_t t = 0; t < T; ++t) {
          const float* qr = q + ((b * T + t) * Hq + h) * D;
          float* o = out + ((b * T + t) * Hq + h) * D;
          const size_t visible = P + t + 1;
          const float m = dots_range(qr, 0, visible, P, kp, kn, g, s);
          const float sum = k_.exp_sum(visible, s, m);
          std::fill(o, o + D, 0.f);
          axpy_range(s, 0, visible, P, vp, vn, g, o);
          const float inv = 1.f / sum;
          for (size_t i = 0; i < D; ++i) o[i] *= inv;
        }
      }
    });
    macs_done_ += double(B) * double(Hq) * 2.0 * double(D) * (double(T) * double(P) + double(T) * double(T + 1) / 2.0);
  }

  int64_t num_heads_, kv_heads_;
  float scale_;
  size_t window_ = 0;
  std::vector<float> qthr_;
  float pthr_ = 0.f;
  DeltaAttnConfig k_;
  // Delta state (batch 1): transposed far keys per KV head [Hkv][D][kt_cap_].
  std::vector<Head> heads_;
  std::vector<float> kt_, last_k_, scores_;
  size_t kt_cap_ = 0, nf_ = 0, len_ = 0, d_ = 0, hkv_ = 0;
  double macs_dense_ = 0, macs_done_ = 0, reseeds_ = 0;
};

}  // namespace

void register_attention_ops(OpRegistry& r) {
  r.add(format::kDomain, format::kCausalAttention, make_factory<CausalAttentionOp>());
}

}  // namespace sde
