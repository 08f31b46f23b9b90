// The f32-delta-attn family (attention row primitives, dense and
// temporal-delta; docs/DELTA_ATTENTION.md) against naive double-precision
// references: every set of f32-delta-attn.inc this CPU supports and the one
// each ISA's dispatch table picks, over head dims 1..80 (SmolLM2: 64), key
// counts below, at and off the SIMD tiles, strided key/value rows, sparse
// updates with 0..D nonzeros, and exp-select thresholds that keep none, some
// and all keys (the selected indices must be exactly the reference's).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

// Like near_all, with the tolerance relative to `mag` (the sum of |terms|): a
// sum that cancels to nearly zero is still only as exact as its terms allow.
void near_mag(const float* got, const double* ref, const double* mag, size_t n, const std::string& what) {
  for (size_t i = 0; i < n; ++i) {
    if (!(std::fabs(double(got[i]) - ref[i]) <= 1e-5 * std::fmax(mag[i], 1e-6))) {
      std::fprintf(stderr, "%s: mismatch at %zu: got %.9g want %.9g\n", what.c_str(), i, double(got[i]), ref[i]);
      ++failures();
      return;
    }
  }
}

struct Case {
  DeltaAttnConfig k;
  std::string name;
  Isa isa;
};

std::vector<Case> case_list() {
  std::vector<Case> v;
#define SDE_DELTA_ATTN_UKERNEL(sfx, isa_)                                                                  \
  {                                                                                                        \
    DeltaAttnConfig c;                                                                                     \
    c.dots = sde_f32_attn_dots__##sfx;                                                                     \
    c.sparse_update = sde_f32_attn_sparse_update__##sfx;                                                   \
    c.exp_sum = sde_f32_attn_exp_sum__##sfx;                                                               \
    c.exp_select = sde_f32_attn_exp_select__##sfx;                                                         \
    c.gather_axpy = sde_f32_attn_gather_axpy__##sfx;                                                       \
    v.push_back({c, "f32-delta-attn__" #sfx, isa_});                                                       \
  }
#include "kernels/f32-delta-attn/f32-delta-attn.inc"
#undef SDE_DELTA_ATTN_UKERNEL
  for (Isa isa : supported_isas()) {
    const KernelTable t = kernels_for(isa);
    CHECK(t.delta_attn.dots != nullptr);
    if (t.delta_attn.dots) v.push_back({t.delta_attn, std::string("dispatch[") + isa_name(isa) + "] " + t.delta_attn.name, isa});
  }
  return v;
}

void test_dots(const Case& c, size_t n, size_t d, Rng& rng) {
  const size_t stride = d + (n % 3);
  std::vector<float> q = rng.vec(d), k = rng.vec(n * stride + 1), s(n + 1, 7.f);
  std::vector<double> ref(n), mag(n);
  double mx = -INFINITY;
  for (size_t j = 0; j < n; ++j) {
    double a = 0, b = 0;
    for (size_t i = 0; i < d; ++i) a += double(q[i]) * k[j * stride + i], b += std::fabs(double(q[i]) * k[j * stride + i]);
    ref[j] = a * 0.125;
    mag[j] = b * 0.125;
    mx = std::fmax(mx, ref[j]);
  }
  const float got_max = c.k.dots(n, d, q.data(), k.data(), stride, 0.125f, s.data());
  near_mag(s.data(), ref.data(), mag.data(), n, c.name + " dots n=" + std::to_string(n) + " d=" + std::to_string(d));
  CHECK(s[n] == 7.f);
  if (n > 0) CHECK(std::fabs(got_max - mx) <= 1e-5 * std::fmax(1.0, std::fabs(mx)));
  else CHECK(std::isinf(got_max) && got_max < 0);
}

void test_sparse_update(const Case& c, size_t n, size_t d, size_t nnz, Rng& rng) {
  const size_t stride = n + 5;
  std::vector<float> kt = rng.vec(d * stride), s = rng.vec(n + 1), dq = rng.vec(nnz);
  std::vector<uint32_t> idx(nnz);
  for (size_t i = 0; i < nnz; ++i) idx[i] = static_cast<uint32_t>((i * 7 + 3) % d);
  std::vector<double> ref(n), mag(n);
  double mx = -INFINITY;
  for (size_t j = 0; j < n; ++j) {
    double a = s[j], b = std::fabs(double(s[j]));
    for (size_t i = 0; i < nnz; ++i) a += double(dq[i]) * kt[idx[i] * stride + j], b += std::fabs(double(dq[i]) * kt[idx[i] * stride + j]);
    ref[j] = a;
    mag[j] = b;
    mx = std::fmax(mx, a);
  }
  const float tail = s[n];
  const float got_max = c.k.sparse_update(n, nnz, idx.data(), dq.data(), kt.data(), stride, s.data());
  near_mag(s.data(), ref.data(), mag.data(), n, c.name + " sparse_update n=" + std::to_string(n) + " nnz=" + std::to_string(nnz));
  CHECK(s[n] == tail);
  if (n > 0) CHECK(std::fabs(got_max - mx) <= 1e-5 * std::fmax(1.0, std::fabs(mx)));
}

void test_exp(const Case& c, size_t n, Rng& rng) {
  std::vector<float> s = rng.vec(n + 1, -20.f, 3.f);
  const float m = 3.f;
  std::vector<double> ref(n);
  double sum = 0;
  for (size_t j = 0; j < n; ++j) sum += ref[j] = std::exp(double(s[j]) - m);
  const float tail = s[n];
  const float got = c.k.exp_sum(n, s.data(), m);
  const std::string what = c.name + " exp_sum n=" + std::to_string(n);
  near_all(s.data(), ref.data(), n, what.c_str(), 2e-6);
  CHECK(s[n] == tail);
  CHECK(std::fabs(got - sum) <= 1e-5 * std::fmax(sum, 1e-30));
}

void test_exp_select(const Case& c, size_t n, float thr, Rng& rng) {
  std::vector<float> s = rng.vec(n, -8.f, 0.f), ehat(n);
  for (size_t j = 0; j < n; ++j) ehat[j] = (j % 3 == 0) ? std::exp(s[j]) : rng.uniform(0.f, 1.f);  // some unchanged
  std::vector<float> e0 = ehat;
  std::vector<uint32_t> idx(n + 1);
  std::vector<float> ch(n + 1);
  size_t count = 12345;
  const float sum = c.k.exp_select(n, s.data(), 0.f, ehat.data(), thr, idx.data(), ch.data(), &count);
  // Reference decisions, away from the threshold (a 1e-6 band is ambiguous between exp implementations).
  size_t r = 0;
  double rsum = 0;
  for (size_t j = 0; j < n; ++j) {
    const double e = std::exp(double(s[j]));
    const double d = e - e0[j];
    if (std::fabs(std::fabs(d) - thr) < 1e-5) {  // ambiguous: skip whichever way it went
      if (r < count && idx[r] == j) rsum += ch[r], ++r;
      continue;
    }
    if (std::fabs(d) > thr) {
      CHECK(r < count && idx[r] == j);
      if (r < count && idx[r] == j) {
        CHECK(std::fabs(ch[r] - d) <= 2e-6);
        CHECK(std::fabs(ehat[j] - e) <= 2e-6 * e + 1e-30);
        rsum += ch[r];
        ++r;
      }
    } else {
      CHECK(ehat[j] == e0[j]);
    }
  }
  CHECK(r == count);
  CHECK(std::fabs(sum - rsum) <= 1e-5 * std::fmax(1.0, std::fabs(rsum)));
}

void test_gather_axpy(const Case& c, size_t n, size_t d, bool indexed, Rng& rng) {
  const size_t rows = n * 2 + 1, stride = d + 3;
  std::vector<float> v = rng.vec(rows * stride), cf = rng.vec(n), u = rng.vec(d + 1);
  std::vector<uint32_t> idx(n);
  for (size_t j = 0; j < n; ++j) idx[j] = static_cast<uint32_t>((j * 5 + 1) % rows);
  std::vector<double> ref(d), mag(d);
  for (size_t i = 0; i < d; ++i) {
    double a = u[i], b = std::fabs(double(u[i]));
    for (size_t j = 0; j < n; ++j) {
      const double t = double(cf[j]) * v[(indexed ? idx[j] : j) * stride + i];
      a += t;
      b += std::fabs(t);
    }
    ref[i] = a;
    mag[i] = b;
  }
  const float tail = u[d];
  c.k.gather_axpy(n, d, indexed ? idx.data() : nullptr, cf.data(), v.data(), stride, u.data());
  near_mag(u.data(), ref.data(), mag.data(), d, c.name + " gather_axpy n=" + std::to_string(n) + " d=" + std::to_string(d));
  CHECK(u[d] == tail);
}

}  // namespace

int main() {
  Rng rng(6);
  size_t tested = 0;
  for (const Case& c : case_list()) {
    if (!isa_supported(c.isa)) continue;
    for (size_t d : {1, 3, 8, 16, 17, 64, 80}) {
      for (size_t n : {0, 1, 3, 4, 5, 8, 31, 32, 33, 100}) {
        test_dots(c, n, d, rng);
        for (size_t nnz : {size_t(0), size_t(1), d / 2, d}) test_sparse_update(c, n, d, nnz, rng);
        test_gather_axpy(c, n, d, false, rng);
        test_gather_axpy(c, n, d, true, rng);
      }
    }
    for (size_t n : {0, 1, 7, 8, 9, 64, 333}) {
      test_exp(c, n, rng);
      for (float thr : {0.f, 0.05f, 0.3f, 2.f}) test_exp_select(c, n, thr, rng);
    }
    std::printf("%s: ok\n", c.name.c_str());
    ++tested;
  }
  if (failures() != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures());
    return 1;
  }
  std::printf("test_delta_attn: %zu kernel sets tested, all passed\n", tested);
  return 0;
}
