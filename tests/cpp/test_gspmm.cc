// The f32-gspmm family and the group-sparse operators against obviously
// correct references: every kernel of f32-gspmm.inc for every ISA this CPU
// supports (packed stream built here straight from the contract in
// kernels.h), then GroupSparseConv / GroupSparseFullyConnected per ISA
// against a densified BSR run through the naive convolution / matmul.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "kernels/f32-gspmm/f32-gspmm.h"
#include "kernels/kernels.h"
#include "operators/group_sparse_conv.h"
#include "reference.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

const float kNaN = NAN;
const float kSentinel = 12345.0f;

// |got - ref| <= rel * scale for all elements, with scale the largest
// magnitude of the unclamped result (clamping does not shrink rounding error).
bool close_all(const float* got, const std::vector<double>& ref, double scale, const char* what,
               double rel = 2e-5) {
  const double tol = rel * std::fmax(scale, 1e-3);
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!(std::fabs(double(got[i]) - ref[i]) <= tol)) {
      std::fprintf(stderr, "%s: mismatch at %zu: got %.9g want %.9g (tol %.3g)\n", what, i,
                   double(got[i]), ref[i], tol);
      CHECK(false);
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Kernels

struct KernelCase {
  f32_gspmm_ukernel_fn fn;
  const char* name;
  size_t mr, b;
  Isa isa;
};

std::vector<KernelCase> kernel_list() {
  std::vector<KernelCase> v;
#define SDE_GSPMM_UKERNEL(fn_, mr_, b_, isa_) v.push_back({fn_, #fn_, mr_, b_, isa_});
#include "kernels/f32-gspmm/f32-gspmm.inc"
#undef SDE_GSPMM_UKERNEL
  return v;
}

void test_kernel_case(const KernelCase& k, size_t pixels, size_t block_rows, size_t in_rows,
                      int nnz_mode, float lo, float hi, Rng& rng) {
  const size_t B = k.b;
  const size_t in_ld = pixels + 3, out_ld = pixels + 5;  // floats; padding is poisoned
  std::vector<float> x(in_rows * in_ld, kNaN);
  for (size_t r = 0; r < in_rows; ++r)
    for (size_t p = 0; p < pixels; ++p) x[r * in_ld + p] = rng.uniform();
  std::vector<uint32_t> nnz(block_rows);
  std::vector<int32_t> idx;
  std::vector<float> w;
  for (size_t r = 0; r < block_rows; ++r) {
    // nnz_mode 0: random (with empty rows), 1: all empty, 2: dense rows.
    nnz[r] = nnz_mode == 1 ? 0 : nnz_mode == 2 ? uint32_t(in_rows) : rng.next() % 7;
    if (nnz_mode == 0 && r == 1) nnz[r] = 0;
    for (size_t b = 0; b < B; ++b) w.push_back(rng.uniform());  // bias
    for (uint32_t j = 0; j < nnz[r]; ++j) {
      // Any row, repeats allowed: the contract does not need sorted rows.
      idx.push_back(int32_t(nnz_mode == 2 ? j : rng.next() % in_rows));
      for (size_t b = 0; b < B; ++b) w.push_back(rng.uniform());
    }
  }
  const size_t out_rows = block_rows * B;
  std::vector<float> y((out_rows + 1) * out_ld, kSentinel);
  std::vector<double> ref(out_rows * pixels);
  double scale = 0.0;
  {
    size_t wi = 0, ii = 0;
    for (size_t r = 0; r < block_rows; ++r) {
      std::vector<double> acc(B * pixels);
      for (size_t b = 0; b < B; ++b)
        for (size_t p = 0; p < pixels; ++p) acc[b * pixels + p] = w[wi + b];
      wi += B;
      for (uint32_t j = 0; j < nnz[r]; ++j, ++ii, wi += B)
        for (size_t b = 0; b < B; ++b)
          for (size_t p = 0; p < pixels; ++p)
            acc[b * pixels + p] += double(w[wi + b]) * x[size_t(idx[ii]) * in_ld + p];
      for (size_t i = 0; i < B * pixels; ++i) {
        scale = std::fmax(scale, std::fabs(acc[i]));
        ref[r * B * pixels + i] = clampd(acc[i], lo, hi);
      }
    }
  }
  k.fn(pixels, block_rows, x.data(), in_ld * sizeof(float), w.data(), idx.data(), nnz.data(),
       y.data(), out_ld * sizeof(float), lo, hi);
  std::vector<float> got(out_rows * pixels);
  bool guards_ok = true;
  for (size_t r = 0; r <= out_rows; ++r)
    for (size_t p = 0; p < out_ld; ++p) {
      const float v = y[r * out_ld + p];
      if (r < out_rows && p < pixels) {
        got[r * pixels + p] = v;
      } else if (v != kSentinel) {
        guards_ok = false;
      }
    }
  char what[256];
  std::snprintf(what, sizeof what, "%s pixels=%zu rows=%zu in_rows=%zu mode=%d clamp=[%g,%g]",
                k.name, pixels, block_rows, in_rows, nnz_mode, lo, hi);
  if (!guards_ok) std::fprintf(stderr, "%s: wrote outside Y\n", what);
  CHECK(guards_ok);
  close_all(got.data(), ref, scale, what);

  // Splitting the pixels anywhere gives bitwise the same result.
  if (pixels > 1) {
    const size_t split = 1 + rng.next() % (pixels - 1);
    std::vector<float> y2((out_rows + 1) * out_ld, kSentinel);
    k.fn(split, block_rows, x.data(), in_ld * sizeof(float), w.data(), idx.data(), nnz.data(),
         y2.data(), out_ld * sizeof(float), lo, hi);
    k.fn(pixels - split, block_rows, x.data() + split, in_ld * sizeof(float), w.data(),
         idx.data(), nnz.data(), y2.data() + split, out_ld * sizeof(float), lo, hi);
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
    Rng rng(7 + k.mr * 10 + k.b);
    std::vector<size_t> pixel_counts;
    for (size_t p = 1; p <= k.mr + 1; ++p) pixel_counts.push_back(p);
    for (size_t p : {2 * k.mr - 1, 2 * k.mr, 3 * k.mr + 5, size_t(49), size_t(63), size_t(196)})
      pixel_counts.push_back(p);
    for (size_t pixels : pixel_counts)
      for (size_t rows : {1, 2, 3, 5})  // avx2 narrow tiles run 2 or 4 rows jointly
        for (int mode = 0; mode < 3; ++mode) test_kernel_case(k, pixels, rows, 9, mode, -inf, inf, rng);
    test_kernel_case(k, 2 * k.mr + 3, 4, 20, 0, -0.25f, 0.5f, rng);
    test_kernel_case(k, 7, 2, 20, 2, 0.0f, 6.0f, rng);
    ++tested;
  }
  std::printf("f32-gspmm kernels: %zu tested\n", tested);
}

// ---------------------------------------------------------------------------
// Operators

// A random BSR weight with about `density` of the blocks kept (0 = none,
// 1 = all), some empty block rows when sparse, and a dense copy.
struct Bsr {
  size_t O, I, B, kh, kw;
  std::vector<float> values, bias, dense;  // dense: [O, I, kh, kw]
  std::vector<int32_t> cols, row_ptr;
  GroupSparseWeights view(bool with_bias) const {
    GroupSparseWeights w;
    w.out_channels = O;
    w.in_channels = I;
    w.block_size = B;
    w.kernel_h = kh;
    w.kernel_w = kw;
    w.nnz_blocks = cols.size();
    w.values = values.data();
    w.col_indices = cols.data();
    w.row_ptr = row_ptr.data();
    w.bias = with_bias ? bias.data() : nullptr;
    return w;
  }
};

Bsr make_bsr(size_t O, size_t I, size_t B, size_t kh, size_t kw, double density, Rng& rng) {
  Bsr s{O, I, B, kh, kw, {}, {}, {}, {}, {}};
  const size_t K = kh * kw, rows = (O + B - 1) / B;
  s.bias = rng.vec(O);
  s.dense.assign(O * I * K, 0.0f);
  s.row_ptr.push_back(0);
  for (size_t r = 0; r < rows; ++r) {
    const bool empty_row = density < 1.0 && r % 3 == 1;
    for (size_t i = 0; i < I; ++i) {
      const bool keep = density >= 1.0 ||
                        (!empty_row && density > 0.0 && (rng.next() % 1000) < density * 1000);
      if (!keep) continue;
      s.cols.push_back(int32_t(i));
      for (size_t b = 0; b < B; ++b)
        for (size_t t = 0; t < K; ++t) {
          const size_t o = r * B + b;
          // Padded rows of a partial block row hold garbage that must be ignored.
          const float v = o < O ? rng.uniform() : 1e30f;
          s.values.push_back(v);
          if (o < O) s.dense[(o * I + i) * K + t] = v;
        }
    }
    s.row_ptr.push_back(int32_t(s.cols.size()));
  }
  return s;
}

double unclamped_scale(const ConvShape& cs, const float* x, const Bsr& w, bool with_bias) {
  const std::vector<double> r =
      conv2d_reference(cs, x, w.dense.data(), with_bias ? w.bias.data() : nullptr, -INFINITY, INFINITY);
  double m = 0.0;
  for (double v : r) m = std::fmax(m, std::fabs(v));
  return m;
}

int conv_cases = 0;

void test_conv(const KernelTable& kt, size_t O, size_t I, size_t B, size_t in_h, size_t in_w,
               size_t k, size_t stride, size_t dil, size_t pad_a, size_t pad_b, double density,
               float lo, float hi, size_t batch, Rng& rng, ThreadPool* pool2) {
  const Bsr w = make_bsr(O, I, B, k, k, density, rng);
  const bool with_bias = rng.next() % 4 != 0;
  GroupSparseConvParams p;
  p.stride_h = p.stride_w = stride;
  p.dilation_h = p.dilation_w = dil;
  p.pad_top = p.pad_left = pad_a;
  p.pad_bottom = p.pad_right = pad_b;
  p.out_min = lo;
  p.out_max = hi;
  GroupSparseConv op(w.view(with_bias), p, &kt);
  ConvShape cs{batch, I, O, 1, in_h, in_w, k, k, stride, stride, dil, dil, pad_a, pad_a, pad_b, pad_b};
  const size_t oh = cs.out_h(), ow = cs.out_w();
  CHECK(op.out_h(in_h) == oh && op.out_w(in_w) == ow);
  const std::vector<float> x = rng.vec(batch * I * in_h * in_w);
  const std::vector<double> ref =
      conv2d_reference(cs, x.data(), w.dense.data(), with_bias ? w.bias.data() : nullptr, lo, hi);
  const size_t scratch_floats = op.scratch_bytes(in_h, in_w, 2) / sizeof(float) + 16;
  AlignedFloats scratch(scratch_floats);
  // One extra output row beyond the tensor catches stray writes.
  std::vector<float> y1(batch * O * oh * ow + ow + 1, kSentinel), y2(y1.size(), kSentinel);
  op.run(batch, in_h, in_w, x.data(), y1.data(), scratch.data(), nullptr);
  op.run(batch, in_h, in_w, x.data(), y2.data(), scratch.data(), pool2);
  char what[320];
  std::snprintf(what, sizeof what,
                "%s O=%zu I=%zu B=%zu %zux%zu k=%zu s=%zu d=%zu pad=%zu,%zu density=%g "
                "clamp=[%g,%g] batch=%zu",
                op.path_name(), O, I, B, in_h, in_w, k, stride, dil, pad_a, pad_b, density, lo,
                hi, batch);
  bool guards_ok = true;
  for (size_t i = batch * O * oh * ow; i < y1.size(); ++i) guards_ok &= y1[i] == kSentinel;
  if (!guards_ok) std::fprintf(stderr, "%s: wrote past Y\n", what);
  CHECK(guards_ok);
  close_all(y1.data(), ref, unclamped_scale(cs, x.data(), w, with_bias), what);
  const bool same = std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0;
  if (!same) std::fprintf(stderr, "%s: 1 and 2 threads differ\n", what);
  CHECK(same);
  ++conv_cases;
}

void test_fc(const KernelTable& kt, size_t m, size_t O, size_t I, size_t B, double density,
             float lo, float hi, Rng& rng, ThreadPool* pool2) {
  const Bsr w = make_bsr(O, I, B, 1, 1, density, rng);
  const bool with_bias = rng.next() % 4 != 0;
  GroupSparseFullyConnected op(w.view(with_bias), lo, hi, &kt);
  CHECK(op.in_features() == I && op.out_features() == O);
  const std::vector<float> x = rng.vec(m * I);
  // B[kk][j] = W_dense[j, kk]: row stride 1, column stride I.
  const float* bias = with_bias ? w.bias.data() : nullptr;
  const std::vector<double> ref = matmul_reference(m, I, O, x.data(), w.dense.data(), 1, I, bias, lo, hi);
  const std::vector<double> raw =
      matmul_reference(m, I, O, x.data(), w.dense.data(), 1, I, bias, -INFINITY, INFINITY);
  double scale = 0.0;
  for (double v : raw) scale = std::fmax(scale, std::fabs(v));
  AlignedFloats scratch(op.scratch_bytes(m, 2) / sizeof(float) + 16);
  std::vector<float> y1(m * O + 1, kSentinel), y2(y1.size(), kSentinel);
  op.run(m, x.data(), y1.data(), scratch.data(), nullptr);
  op.run(m, x.data(), y2.data(), scratch.data(), pool2);
  char what[256];
  std::snprintf(what, sizeof what, "fc %s m=%zu O=%zu I=%zu B=%zu density=%g clamp=[%g,%g]",
                op.path_name(), m, O, I, B, density, lo, hi);
  CHECK(y1[m * O] == kSentinel);
  close_all(y1.data(), ref, scale, what);
  const bool same = std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) == 0;
  if (!same) std::fprintf(stderr, "%s: 1 and 2 threads differ\n", what);
  CHECK(same);
}

void test_operators() {
  ThreadPool pool2(2);
  const float inf = INFINITY;
  for (Isa isa : supported_isas()) {
    const KernelTable kt = kernels_for(isa);
    if (kt.gspmm.ukernel[0] == nullptr) continue;
    Rng rng(100 + int(isa));
    for (size_t B : {1, 2, 4, 8}) {
      // O = B*k + 0 .. B-1 (partial last block row), and O < B.
      std::vector<size_t> outs = {B, 3 * B};
      for (size_t rem = 1; rem < B; ++rem) outs.push_back(2 * B + rem);
      if (B > 1) outs.push_back(B - 1);
      // 1x1 direct: pixels below / at / above the tile, 1, 7x7, 14x14.
      for (size_t O : outs)
        for (double d : {0.0, 0.4, 1.0}) test_conv(kt, O, 6, B, 4, 5, 1, 1, 1, 0, 0, d, -inf, inf, 1, rng, &pool2);
      for (size_t hw : {1, 3, 4, 7, 14})
        test_conv(kt, 2 * B + 1, 13, B, hw, hw, 1, 1, 1, 0, 0, 0.5, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 4 * B, 9, B, 1, 33, 1, 1, 1, 0, 0, 0.5, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 4 * B + 3, 16, B, 16, 16, 1, 1, 1, 0, 0, 0.3, -inf, inf, 2, rng, &pool2);
      test_conv(kt, 16 * B, 24, B, 14, 14, 1, 1, 1, 0, 0, 0.2, -inf, inf, 1, rng, &pool2);
      // Panels: many tiles (both threads pack), a partial last tile, unused input rows.
      test_conv(kt, 4 * B + 3, 40, B, 23, 23, 1, 1, 1, 0, 0, 0.15, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 2 * B + 1, 6, B, 17, 19, 3, 1, 1, 1, 1, 0.2, -inf, inf, 1, rng, &pool2);
      // Clamps (Relu6, narrow).
      test_conv(kt, 3 * B + 1, 10, B, 7, 7, 1, 1, 1, 0, 0, 0.6, 0.0f, 6.0f, 1, rng, &pool2);
      test_conv(kt, 2 * B, 10, B, 5, 6, 1, 1, 1, 0, 0, 0.6, -0.25f, 0.25f, 1, rng, &pool2);
      // kxk, strides, pads (symmetric and not), dilation; 1x1 strided / padded.
      test_conv(kt, 2 * B + 1, 5, B, 7, 7, 3, 1, 1, 1, 1, 0.5, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 2 * B, 6, B, 9, 8, 3, 2, 1, 1, 0, 0.5, 0.0f, inf, 2, rng, &pool2);
      test_conv(kt, B + 1, 4, B, 10, 10, 3, 1, 2, 2, 1, 0.7, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 3 * B, 3, B, 11, 9, 5, 2, 1, 2, 2, 1.0, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 2 * B + 1, 4, B, 6, 6, 3, 1, 1, 1, 1, 0.0, -1.0f, 1.0f, 1, rng, &pool2);
      test_conv(kt, 2 * B, 7, B, 9, 9, 1, 2, 1, 0, 0, 0.5, -inf, inf, 1, rng, &pool2);
      test_conv(kt, B, 3, B, 4, 4, 1, 1, 1, 1, 2, 0.8, -inf, inf, 1, rng, &pool2);
      test_conv(kt, 2 * B + 1, 12, B, 20, 20, 3, 1, 1, 1, 1, 0.3, -inf, inf, 1, rng, &pool2);
      // Fully connected: m = 1 (classifier), small, above a tile.
      for (size_t m : {1, 2, 5, 17, 40})
        for (double d : {0.0, 0.5, 1.0}) test_fc(kt, m, 3 * B + (B > 1 ? 1 : 0), 19, B, d, -inf, inf, rng, &pool2);
      test_fc(kt, 1, 64 * B + 1, 100, B, 0.3, 0.0f, 6.0f, rng, &pool2);
      test_fc(kt, 3, 5 * B, 33, B, 0.5, -0.2f, 0.2f, rng, &pool2);
    }
  }
  std::printf("group-sparse operators: %d conv cases per all ISAs\n", conv_cases);
}

// ---------------------------------------------------------------------------
// Invalid BSR structures throw std::invalid_argument with a message.

template <typename Fn>
void expect_invalid(const char* what, Fn&& make) {
  try {
    make();
    std::fprintf(stderr, "expected std::invalid_argument: %s\n", what);
    CHECK(false);
  } catch (const std::invalid_argument& e) {
    CHECK(std::strlen(e.what()) > 0);
  }
}

void test_invalid() {
  Rng rng(5);
  const Bsr good = make_bsr(8, 6, 4, 1, 1, 0.5, rng);  // 2 block rows
  GroupSparseConvParams p;
  { GroupSparseConv ok(good.view(true), p); CHECK(ok.density() > 0.0 && ok.density() < 1.0); }
  auto conv_with = [&](auto mutate) {
    Bsr b = good;
    GroupSparseWeights w = b.view(true);
    mutate(b, w);
    GroupSparseConv op(w, p);
  };
  expect_invalid("block size 3", [&] { conv_with([](Bsr&, GroupSparseWeights& w) { w.block_size = 3; }); });
  expect_invalid("block size 0", [&] { conv_with([](Bsr&, GroupSparseWeights& w) { w.block_size = 0; }); });
  expect_invalid("out_channels 0", [&] { conv_with([](Bsr&, GroupSparseWeights& w) { w.out_channels = 0; }); });
  expect_invalid("row_ptr[0] != 0", [&] {
    conv_with([](Bsr& b, GroupSparseWeights& w) { b.row_ptr[0] = 1; w.row_ptr = b.row_ptr.data(); });
  });
  expect_invalid("row_ptr end != nnz", [&] {
    conv_with([](Bsr&, GroupSparseWeights& w) { w.nnz_blocks -= 1; });
  });
  expect_invalid("row_ptr decreasing", [&] {
    conv_with([](Bsr& b, GroupSparseWeights& w) {
      b.row_ptr = {0, 3, 1};
      b.cols = {0, 1, 2};
      w.row_ptr = b.row_ptr.data();
      w.col_indices = b.cols.data();
      w.nnz_blocks = 1;
    });
  });
  expect_invalid("col out of range", [&] {
    conv_with([](Bsr& b, GroupSparseWeights& w) { b.cols.back() = 6; w.col_indices = b.cols.data(); });
  });
  expect_invalid("negative col", [&] {
    conv_with([](Bsr& b, GroupSparseWeights& w) { b.cols[0] = -1; w.col_indices = b.cols.data(); });
  });
  expect_invalid("cols not increasing", [&] {
    conv_with([](Bsr& b, GroupSparseWeights& w) {
      b.row_ptr = {0, 2, 2};
      b.cols = {3, 3};
      b.values.assign(2 * 4, 1.0f);
      w.row_ptr = b.row_ptr.data();
      w.col_indices = b.cols.data();
      w.values = b.values.data();
      w.nnz_blocks = 2;
    });
  });
  expect_invalid("null values", [&] { conv_with([](Bsr&, GroupSparseWeights& w) { w.values = nullptr; }); });
  expect_invalid("zero stride", [&] {
    GroupSparseConvParams q;
    q.stride_h = 0;
    GroupSparseConv op(good.view(true), q);
  });
  expect_invalid("fc with 3x3 kernel", [&] {
    const Bsr k3 = make_bsr(4, 3, 2, 3, 3, 0.5, rng);
    GroupSparseFullyConnected op(k3.view(false));
  });
  // nnz = 0 is valid.
  const Bsr empty = make_bsr(5, 4, 2, 1, 1, 0.0, rng);
  GroupSparseConv op(empty.view(true), p);
  CHECK(op.density() == 0.0);
  std::printf("invalid BSR inputs: ok\n");
}

}  // namespace

int main() {
  test_kernels();
  test_operators();
  test_invalid();
  if (failures() != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures());
    return 1;
  }
  std::printf("test_gspmm: all passed\n");
  return 0;
}
