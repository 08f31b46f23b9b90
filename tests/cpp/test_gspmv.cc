// The f32-gspmv family (group-sparse GEMV, LLM decode) against a direct
// double-precision reference: every kernel of f32-gspmv.inc for every ISA
// this CPU supports, on streams built here from the contract in kernels.h
// (empty block rows, nonzero counts around every unroll, inputs 1..20 and
// 576/1536, clamps, guards after y). Then GroupSparseFullyConnected with one
// row per ISA, which takes the gspmv path, against the densified matmul on
// SmolLM2 decode shapes, with 1 and 2 threads giving identical bits.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "operators/group_sparse_conv.h"
#include "reference.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

const float kSentinel = 12345.0f;

struct KernelCase {
  f32_gspmv_ukernel_fn fn;
  const char* name;
  size_t b;
  Isa isa;
};

std::vector<KernelCase> kernel_list() {
  std::vector<KernelCase> v;
#define SDE_GSPMV_UKERNEL(fn_, b_, isa_) v.push_back({fn_, #fn_, b_, isa_});
#include "kernels/f32-gspmv/f32-gspmv.inc"
#undef SDE_GSPMV_UKERNEL
  return v;
}

// nnz_mode 0: random counts 0..in_rows (row 1 empty), 1: all empty, 2: dense
// rows (all inputs in order), 3: row r has r % 19 nonzeros (every remainder).
void test_kernel_case(const KernelCase& k, size_t block_rows, size_t inputs, int nnz_mode,
                      float lo, float hi, Rng& rng) {
  const size_t B = k.b;
  std::vector<float> x = rng.vec(inputs);
  x.resize(inputs + 8, NAN);  // reading past the inputs shows up as NaN
  std::vector<uint32_t> nnz(block_rows);
  std::vector<uint16_t> col;
  std::vector<float> w;
  for (size_t r = 0; r < block_rows; ++r) {
    uint32_t n = 0;
    switch (nnz_mode) {
      case 0: n = r == 1 ? 0 : uint32_t(rng.next() % (inputs + 1)); break;
      case 1: n = 0; break;
      case 2: n = uint32_t(inputs); break;
      default: n = uint32_t(std::min<size_t>(r % 19, inputs)); break;
    }
    nnz[r] = n;
    for (size_t b = 0; b < B; ++b) w.push_back(rng.uniform());  // bias
    // Increasing distinct inputs, as a BSR row stores them.
    std::vector<uint16_t> cols;
    for (size_t i = 0; i < inputs && cols.size() < n; ++i) {
      const size_t left = inputs - i, need = n - cols.size();
      if (rng.next() % left < need) cols.push_back(uint16_t(i));
    }
    for (uint16_t c : cols) {
      col.push_back(c);
      for (size_t b = 0; b < B; ++b) w.push_back(rng.uniform());
    }
  }
  const size_t out = block_rows * B;
  std::vector<double> ref(out), raw(out);
  double scale = 0.0;
  {
    size_t wi = 0, ci = 0;
    for (size_t r = 0; r < block_rows; ++r) {
      for (size_t b = 0; b < B; ++b) raw[r * B + b] = w[wi + b];
      wi += B;
      for (uint32_t j = 0; j < nnz[r]; ++j, ++ci, wi += B)
        for (size_t b = 0; b < B; ++b) raw[r * B + b] += double(w[wi + b]) * double(x[col[ci]]);
    }
    for (size_t i = 0; i < out; ++i) {
      scale = std::fmax(scale, std::fabs(raw[i]));
      ref[i] = clampd(raw[i], lo, hi);
    }
  }
  std::vector<float> y(out + 9, kSentinel);
  k.fn(block_rows, x.data(), w.data(), col.data(), nnz.data(), y.data(), lo, hi);
  char what[256];
  std::snprintf(what, sizeof what, "%s rows=%zu inputs=%zu mode=%d clamp=[%g,%g]", k.name,
                block_rows, inputs, nnz_mode, lo, hi);
  bool guards_ok = true;
  for (size_t i = out; i < y.size(); ++i) guards_ok = guards_ok && y[i] == kSentinel;
  if (!guards_ok) std::fprintf(stderr, "%s: wrote outside y\n", what);
  CHECK(guards_ok);
  std::vector<double> scaled(ref);
  // Tolerance relative to the largest unclamped magnitude.
  const double tol = 2e-5 * std::fmax(scale, 1e-3);
  for (size_t i = 0; i < out; ++i) {
    if (!(std::fabs(double(y[i]) - ref[i]) <= tol * std::sqrt(double(inputs) / 16.0 + 1.0))) {
      std::fprintf(stderr, "%s: mismatch at %zu: got %.9g want %.9g\n", what, i, double(y[i]), ref[i]);
      CHECK(false);
      break;
    }
  }
  // Splitting the block rows anywhere gives bitwise the same result.
  if (block_rows > 1) {
    const size_t split = 1 + rng.next() % (block_rows - 1);
    size_t wo = 0, co = 0;
    for (size_t r = 0; r < split; ++r) {
      wo += B * (1 + nnz[r]);
      co += nnz[r];
    }
    std::vector<float> y2(out + 9, kSentinel);
    k.fn(split, x.data(), w.data(), col.data(), nnz.data(), y2.data(), lo, hi);
    k.fn(block_rows - split, x.data(), w.data() + wo, col.data() + co, nnz.data() + split,
         y2.data() + split * B, lo, hi);
    const bool same = std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0;
    if (!same) std::fprintf(stderr, "%s: split at %zu changes the result\n", what, split);
    CHECK(same);
  }
}

void test_kernels() {
  const float inf = INFINITY;
  size_t tested = 0;
  for (const KernelCase& k : kernel_list()) {
    if (!isa_supported(k.isa)) continue;
    Rng rng(11 + k.b);
    for (size_t inputs = 1; inputs <= 20; ++inputs)
      for (size_t rows : {1, 2, 3, 5})
        for (int mode = 0; mode < 4; ++mode) test_kernel_case(k, rows, inputs, mode, -inf, inf, rng);
    for (size_t inputs : {576, 1536})
      for (int mode = 0; mode < 4; ++mode) test_kernel_case(k, 7, inputs, mode, -inf, inf, rng);
    test_kernel_case(k, 40, 19, 3, -inf, inf, rng);  // every nonzero count 0..18
    test_kernel_case(k, 6, 576, 0, -0.25f, 0.5f, rng);
    test_kernel_case(k, 5, 20, 2, 0.0f, 6.0f, rng);
    test_kernel_case(k, 3, 65536, 0, -inf, inf, rng);  // largest 16-bit index
    ++tested;
  }
  std::printf("f32-gspmv kernels: %zu tested\n", tested);
}

// ---------------------------------------------------------------------------
// GroupSparseFullyConnected, one row: the gspmv path.

struct Bsr {
  size_t O, I, B;
  std::vector<float> values, bias, dense;  // dense: [O, I]
  std::vector<int32_t> cols, row_ptr;
  GroupSparseWeights view(bool with_bias) const {
    GroupSparseWeights w;
    w.out_channels = O;
    w.in_channels = I;
    w.block_size = B;
    w.nnz_blocks = cols.size();
    w.values = values.data();
    w.col_indices = cols.data();
    w.row_ptr = row_ptr.data();
    w.bias = with_bias ? bias.data() : nullptr;
    return w;
  }
};

// About `density` of the blocks kept; every third block row empty when sparse.
Bsr make_bsr(size_t O, size_t I, size_t B, double density, Rng& rng) {
  Bsr s{O, I, B, {}, {}, {}, {}, {}};
  const size_t rows = (O + B - 1) / B;
  s.bias = rng.vec(O);
  s.dense.assign(O * I, 0.0f);
  s.row_ptr.push_back(0);
  for (size_t r = 0; r < rows; ++r) {
    const bool empty_row = density < 1.0 && r % 3 == 1;
    for (size_t i = 0; i < I; ++i) {
      const bool keep = density >= 1.0 ||
                        (!empty_row && density > 0.0 && (rng.next() % 1000) < density * 1000);
      if (!keep) continue;
      s.cols.push_back(int32_t(i));
      for (size_t b = 0; b < B; ++b) {
        const size_t o = r * B + b;
        const float v = o < O ? rng.uniform() : 1e30f;  // padded rows must be ignored
        s.values.push_back(v);
        if (o < O) s.dense[o * I + i] = v;
      }
    }
    s.row_ptr.push_back(int32_t(s.cols.size()));
  }
  return s;
}

int fc_cases = 0;

void test_fc(const KernelTable& kt, size_t O, size_t I, size_t B, double density, bool with_bias,
             float lo, float hi, Rng& rng, ThreadPool* pool2) {
  const Bsr w = make_bsr(O, I, B, density, rng);
  GroupSparseFullyConnected op(w.view(with_bias), lo, hi, &kt);
  char what[256];
  std::snprintf(what, sizeof what, "fc %s O=%zu I=%zu B=%zu density=%g bias=%d clamp=[%g,%g]",
                op.path_name(), O, I, B, density, int(with_bias), lo, hi);
  const bool gspmv = std::strncmp(op.path_name(), "gspmv-", 6) == 0;
  if (!gspmv) std::fprintf(stderr, "%s: no gspmv path\n", what);
  CHECK(gspmv);
  CHECK(op.scratch_bytes(1, 2) == 0);
  const std::vector<float> x = rng.vec(I);
  const float* bias = with_bias ? w.bias.data() : nullptr;
  const std::vector<double> ref = matmul_reference(1, I, O, x.data(), w.dense.data(), 1, I, bias, lo, hi);
  const std::vector<double> raw =
      matmul_reference(1, I, O, x.data(), w.dense.data(), 1, I, bias, -INFINITY, INFINITY);
  double scale = 0.0;
  for (double v : raw) scale = std::fmax(scale, std::fabs(v));
  std::vector<float> y1(O + 1, kSentinel), y2(y1.size(), kSentinel);
  op.run(1, x.data(), y1.data(), nullptr, nullptr);
  op.run(1, x.data(), y2.data(), nullptr, pool2);
  CHECK(y1[O] == kSentinel);
  const double tol = 5e-5 * std::fmax(scale, 1e-3);
  for (size_t i = 0; i < O; ++i) {
    if (!(std::fabs(double(y1[i]) - ref[i]) <= tol)) {
      std::fprintf(stderr, "%s: mismatch at %zu: got %.9g want %.9g\n", what, i, double(y1[i]), ref[i]);
      CHECK(false);
      break;
    }
  }
  const bool same = std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0;
  if (!same) std::fprintf(stderr, "%s: 1 and 2 threads differ\n", what);
  CHECK(same);
  ++fc_cases;
}

void test_operators() {
  ThreadPool pool2(2);
  const float inf = INFINITY;
  for (Isa isa : supported_isas()) {
    const KernelTable kt = kernels_for(isa);
    if (kt.gspmv.ukernel[0] == nullptr) continue;
    Rng rng(200 + int(isa));
    for (size_t B : {1, 2, 4, 8}) {
      CHECK(kt.gspmv.ukernel[B == 1 ? 0 : B == 2 ? 1 : B == 4 ? 2 : 3] != nullptr);
      // O % B != 0 (the tail rows take the B = 1 kernel), O < B, tiny inputs.
      for (size_t O : {B, 3 * B + (B > 1 ? 1 : 0), B + B / 2, size_t(1)})
        for (size_t I : {1, 2, 7, 20})
          for (double d : {0.0, 0.5, 1.0}) test_fc(kt, O, I, B, d, (O + I) % 2 == 0, -inf, inf, rng, &pool2);
      // SmolLM2-135M decode shapes [O x I] at 30% / 50% / 70% sparsity.
      test_fc(kt, 576, 576, B, 0.7, true, -inf, inf, rng, &pool2);
      test_fc(kt, 192, 576, B, 0.5, false, -inf, inf, rng, &pool2);
      test_fc(kt, 1536, 576, B, 0.3, false, -inf, inf, rng, &pool2);
      test_fc(kt, 576, 1536, B, 0.5, true, -inf, inf, rng, &pool2);
      test_fc(kt, 577, 1536, B, 0.5, true, 0.0f, 6.0f, rng, &pool2);
      test_fc(kt, 99, 300, B, 0.4, true, -0.2f, 0.3f, rng, &pool2);
    }
  }
  std::printf("group-sparse fc (m = 1, gspmv): %d cases over all ISAs\n", fc_cases);
}

}  // namespace

int main() {
  test_kernels();
  test_operators();
  if (failures() != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures());
    return 1;
  }
  std::printf("test_gspmv: all passed\n");
  return 0;
}
