// Conv2dNchw and FullyConnected, for every supported ISA's kernel table,
// against direct references; 1 and 2 threads must agree bit for bit.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "operators/conv2d_nchw.h"
#include "operators/fully_connected.h"
#include "reference.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

struct Scratch {
  void* p = nullptr;
  explicit Scratch(size_t bytes) {
    p = ::aligned_alloc(64, (bytes + 64) / 64 * 64);
    std::memset(p, 0xFF, (bytes + 64) / 64 * 64);  // NaN garbage: scratch is never assumed zero
  }
  ~Scratch() { std::free(p); }
};

struct ConvCase {
  ConvShape s;
  float lo, hi;
  bool bias;
  const char* expect_path;  // prefix of path_name(), or nullptr
};

void run_conv_case(const ConvCase& cc, const KernelTable& table, ThreadPool& pool2, Rng& rng) {
  const ConvShape& s = cc.s;
  Conv2dParams p;
  p.in_channels = s.cin;
  p.out_channels = s.cout;
  p.groups = s.groups;
  p.kernel_h = s.kh;
  p.kernel_w = s.kw;
  p.stride_h = s.sh;
  p.stride_w = s.sw;
  p.dilation_h = s.dh;
  p.dilation_w = s.dw;
  p.pad_top = s.pt;
  p.pad_left = s.pl;
  p.pad_bottom = s.pb;
  p.pad_right = s.pr;
  p.out_min = cc.lo;
  p.out_max = cc.hi;
  std::vector<float> x = rng.vec(s.batch * s.cin * s.in_h * s.in_w);
  std::vector<float> w = rng.vec(s.cout * (s.cin / s.groups) * s.kh * s.kw);
  std::vector<float> bias = rng.vec(s.cout);
  Conv2dNchw conv(p, w.data(), cc.bias ? bias.data() : nullptr, &table);
  char what[512];
  std::snprintf(what, sizeof what,
                "conv[%s] %s n=%zu cin=%zu cout=%zu g=%zu in=%zux%zu k=%zux%zu s=%zux%zu "
                "d=%zux%zu pad=%zu,%zu,%zu,%zu clamp=[%g,%g] bias=%d",
                isa_name(table.isa), conv.path_name(), s.batch, s.cin, s.cout, s.groups, s.in_h,
                s.in_w, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, s.pb, s.pr, cc.lo, cc.hi,
                int(cc.bias));
  if (cc.expect_path && std::strncmp(conv.path_name(), cc.expect_path, std::strlen(cc.expect_path)) != 0) {
    std::fprintf(stderr, "%s: expected path %s\n", what, cc.expect_path);
    CHECK(false);
  }
  CHECK(conv.out_h(s.in_h) == s.out_h());
  CHECK(conv.out_w(s.in_w) == s.out_w());
  const size_t out_n = s.batch * s.cout * s.out_h() * s.out_w();
  std::vector<double> ref =
      conv2d_reference(s, x.data(), w.data(), cc.bias ? bias.data() : nullptr, cc.lo, cc.hi);
  std::vector<float> y1(out_n + 1, 777.0f), y2(out_n + 1, 777.0f);
  {
    Scratch scratch(conv.scratch_bytes(s.in_h, s.in_w, 1));
    conv.run(s.batch, s.in_h, s.in_w, x.data(), y1.data(), scratch.p, nullptr);
  }
  {
    Scratch scratch(conv.scratch_bytes(s.in_h, s.in_w, pool2.threads()));
    conv.run(s.batch, s.in_h, s.in_w, x.data(), y2.data(), scratch.p, &pool2);
  }
  CHECK(y1[out_n] == 777.0f && y2[out_n] == 777.0f);
  near_all(y1.data(), ref.data(), out_n, what);
  if (std::memcmp(y1.data(), y2.data(), out_n * sizeof(float)) != 0) {
    std::fprintf(stderr, "%s: 1 and 2 threads differ\n", what);
    CHECK(false);
  }
}

ConvShape shape(size_t batch, size_t cin, size_t cout, size_t groups, size_t h, size_t w,
                size_t k, size_t stride, size_t pad, size_t dil = 1) {
  return ConvShape{batch, cin, cout, groups, h, w, k, k, stride, stride, dil, dil,
                   pad, pad, pad, pad};
}

std::vector<ConvCase> conv_cases() {
  const float inf = INFINITY;
  std::vector<ConvCase> v;
  // Pointwise: below/at/above tiles, K blocking (cin > 256), N blocking (hw > 256), 1x1 spatial.
  for (size_t cin : {1, 3, 16, 300, 600})
    for (size_t cout : {1, 5, 6, 7, 13, 64})
      for (size_t hw : {1, 7, 17})
        v.push_back({shape(1, cin, cout, 1, hw, hw, 1, 1, 0), -inf, inf, true,
                     cin == 1 && cout == 1 ? "dwconv-direct" : "gemm1x1/"});
  v.push_back({shape(2, 32, 24, 1, 20, 23, 1, 1, 0), 0.0f, 6.0f, true, "gemm1x1/"});
  v.push_back({shape(1, 24, 40, 1, 1, 513, 1, 1, 0), -inf, inf, false, "gemm1x1/"});
  // Depthwise fast paths: odd/even sizes, symmetric and asymmetric pads.
  for (size_t k : {3, 5})
    for (size_t s : {1, 2})
      for (size_t hw : {1, 2, 5, 8, 9, 16, 17, 30}) {
        ConvShape sh = shape(1, 4, 4, 4, hw, hw + 1, k, s, k / 2);
        v.push_back({sh, -inf, inf, true, "dwconv"});
        sh.pt = 0;
        sh.pl = k / 2;
        sh.pb = k / 2 + (s - 1);
        sh.pr = 0;
        v.push_back({sh, 0.0f, 6.0f, hw % 2 == 0, "dwconv"});
      }
  v.push_back({shape(2, 8, 8, 8, 14, 14, 3, 2, 0), -0.5f, 0.5f, true, "dwconv3x3s2"});
  // Depthwise, generic direct path: dilation, non-square kernel, mixed strides, k=7.
  v.push_back({shape(1, 3, 3, 3, 11, 9, 3, 1, 2, 2), -inf, inf, true, "dwconv-direct"});
  {
    ConvShape sh = shape(1, 5, 5, 5, 10, 13, 3, 1, 1);
    sh.kw = 5;
    sh.sw = 2;
    sh.pr = 2;
    v.push_back({sh, -inf, inf, true, "dwconv-direct"});
  }
  v.push_back({shape(1, 2, 2, 2, 12, 12, 7, 2, 3), 0.0f, inf, true, "dwconv-direct"});
  // General im2col path: stems, stride 2 with odd/even sizes, groups, dilation,
  // 1x1 with stride or padding, asymmetric pads, kernel larger than the input.
  v.push_back({shape(1, 3, 32, 1, 33, 33, 3, 2, 1), 0.0f, 6.0f, true, "im2col+gemm/"});
  v.push_back({shape(2, 3, 16, 1, 20, 21, 3, 2, 1), -inf, inf, true, "im2col+gemm/"});
  v.push_back({shape(1, 4, 6, 2, 9, 10, 3, 1, 1), -inf, inf, true, "im2col+gemm/"});
  v.push_back({shape(1, 8, 8, 4, 9, 9, 3, 2, 0), -inf, inf, false, "im2col+gemm/"});
  v.push_back({shape(1, 4, 8, 4, 9, 9, 3, 1, 1), -inf, inf, true, "im2col+gemm/"});  // multiplier 2
  v.push_back({shape(1, 5, 7, 1, 12, 11, 3, 1, 2, 2), -inf, inf, true, "im2col+gemm/"});
  v.push_back({shape(1, 6, 10, 1, 9, 8, 1, 2, 0), -inf, inf, true, "im2col+gemm/"});
  v.push_back({shape(1, 6, 10, 1, 5, 5, 1, 1, 1), -inf, inf, true, "im2col+gemm/"});
  v.push_back({shape(1, 3, 4, 1, 2, 3, 5, 1, 2), -inf, inf, true, "im2col+gemm/"});
  {
    ConvShape sh = shape(1, 7, 9, 1, 13, 10, 3, 2, 0);
    sh.kw = 2;
    sh.pt = 2;
    sh.pl = 0;
    sh.pb = 0;
    sh.pr = 1;
    sh.sw = 3;
    v.push_back({sh, -1.0f, 1.0f, true, "im2col+gemm/"});
  }
  v.push_back({shape(1, 300, 20, 1, 6, 6, 3, 1, 1), -inf, inf, true, "im2col+gemm/"});
  return v;
}

void test_conv(const KernelTable& table, ThreadPool& pool2) {
  Rng rng(3);
  for (const ConvCase& cc : conv_cases()) run_conv_case(cc, table, pool2, rng);
}

void test_fully_connected(const KernelTable& table, ThreadPool& pool2) {
  Rng rng(4);
  const float inf = INFINITY;
  for (size_t m : {1, 2, 7})
    for (size_t k : {1, 5, 300})
      for (size_t n : {1, 17, 40, 2100})  // 2100: the m = 1 GEMV splits across threads
        for (int mode = 0; mode < 4; ++mode) {
          const bool k_by_n = mode & 1, with_bias = mode & 2;
          const float lo = mode == 3 ? 0.0f : -inf, hi = mode == 3 ? 1.0f : inf;
          std::vector<float> x = rng.vec(m * k), w = rng.vec(k * n), bias = rng.vec(n);
          FullyConnected fc(k, n, w.data(), k_by_n, with_bias ? bias.data() : nullptr, lo, hi,
                            &table);
          std::vector<double> ref =
              matmul_reference(m, k, n, x.data(), w.data(), k_by_n ? n : 1, k_by_n ? 1 : k,
                               with_bias ? bias.data() : nullptr, lo, hi);
          std::vector<float> y1(m * n), y2(m * n);
          {
            Scratch s(fc.scratch_bytes(m, 1));
            fc.run(m, x.data(), y1.data(), s.p, nullptr);
          }
          {
            Scratch s(fc.scratch_bytes(m, pool2.threads()));
            fc.run(m, x.data(), y2.data(), s.p, &pool2);
          }
          char what[256];
          std::snprintf(what, sizeof what, "fc[%s] m=%zu k=%zu n=%zu k_by_n=%d bias=%d",
                        isa_name(table.isa), m, k, n, int(k_by_n), int(with_bias));
          near_all(y1.data(), ref.data(), m * n, what);
          if (y1 != y2) {
            std::fprintf(stderr, "%s: 1 and 2 threads differ\n", what);
            CHECK(false);
          }
        }
}

template <typename F>
bool throws_invalid(F f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

void test_invalid_params() {
  const std::vector<float> w(64, 0.5f);
  Conv2dParams p;
  p.in_channels = 4;
  p.out_channels = 6;
  p.groups = 3;  // does not divide in_channels
  p.kernel_h = p.kernel_w = 1;
  CHECK(throws_invalid([&] { Conv2dNchw c(p, w.data(), nullptr); }));
  p.groups = 1;
  p.stride_h = 0;
  CHECK(throws_invalid([&] { Conv2dNchw c(p, w.data(), nullptr); }));
  p.stride_h = 1;
  p.out_min = 1.0f;
  p.out_max = 0.0f;
  CHECK(throws_invalid([&] { Conv2dNchw c(p, w.data(), nullptr); }));
  p.out_min = -INFINITY;
  p.out_max = INFINITY;
  CHECK(throws_invalid([&] { Conv2dNchw c(p, nullptr, nullptr); }));
  CHECK(!throws_invalid([&] { Conv2dNchw c(p, w.data(), nullptr); }));
  CHECK(throws_invalid([&] { FullyConnected f(0, 3, w.data(), true, nullptr, -INFINITY, INFINITY); }));
}

}  // namespace

int main() {
  ThreadPool pool2(2);
  for (Isa isa : supported_isas()) {
    const KernelTable table = kernels_for(isa);
    test_conv(table, pool2);
    test_fully_connected(table, pool2);
    std::printf("test_operators: %s done (gemm %s)\n", isa_name(isa), table.gemm.name);
  }
  test_invalid_params();
  std::printf("test_operators: %d failures\n", failures());
  return failures() == 0 ? 0 : 1;
}
