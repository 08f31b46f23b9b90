// Times Conv2dNchw on the real layer shapes of MobileNet-v1 1.0/224 (stem,
// 13 depthwise + pointwise pairs) or EfficientNet-Lite0, and the classifier,
// per ISA.
// Not a test. Usage:
//   bench_kernels [--model mobilenet-v1|efficientnet-lite0] [--isa NAME] [--gemm NAME] [--threads N] [--kc N] [--nc N] [--pack-b-min-ldb N] [--min-time SEC]
// --gemm picks a GEMM microkernel from f32-gemm.inc by (part of) its name.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "operators/conv2d_nchw.h"
#include "operators/fully_connected.h"
#include "operators/gemm.h"

using namespace sde;

namespace {

struct Layer {
  const char* kind;  // "stem", "dw", "pw", "fc"
  size_t cin, cout, groups, k, stride, in_hw;
};

std::vector<Layer> mobilenet_v1() {
  std::vector<Layer> v;
  v.push_back({"stem", 3, 32, 1, 3, 2, 224});
  struct Pair { size_t c_in, c_out, stride, hw; };
  const Pair pairs[] = {{32, 64, 1, 112},   {64, 128, 2, 112},  {128, 128, 1, 56},
                        {128, 256, 2, 56},  {256, 256, 1, 28},  {256, 512, 2, 28},
                        {512, 512, 1, 14},  {512, 512, 1, 14},  {512, 512, 1, 14},
                        {512, 512, 1, 14},  {512, 512, 1, 14},  {512, 1024, 2, 14},
                        {1024, 1024, 1, 7}};
  for (const Pair& p : pairs) {
    v.push_back({"dw", p.c_in, p.c_in, p.c_in, 3, p.stride, p.hw});
    v.push_back({"pw", p.c_in, p.c_out, 1, 1, 1, p.hw / p.stride});
  }
  return v;
}

struct AlignedBytes {
  void* p = nullptr;
  explicit AlignedBytes(size_t n) {
    const size_t bytes = std::max<size_t>(64, (n + 63) / 64 * 64);
    p = std::aligned_alloc(64, bytes);
    std::memset(p, 0, bytes);
  }
  ~AlignedBytes() { std::free(p); }
};

std::vector<float> random_vec(size_t n, unsigned seed) {
  std::vector<float> v(n);
  unsigned s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>((s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
  }
  return v;
}

template <typename F>
double time_best(F f, double min_time) {  // seconds per call (best of repeats)
  f();
  double best = 1e30, total = 0;
  int reps = 0;
  while (total < min_time || reps < 3) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
    total += dt;
    ++reps;
  }
  return best;
}

// EfficientNet-Lite0 at 224: stem, 16 MBConv blocks (expand 1x1, depthwise
// 3x3/5x5, project 1x1), head 1x1.
std::vector<Layer> efficientnet_lite0() {
  std::vector<Layer> v;
  v.push_back({"stem", 3, 32, 1, 3, 2, 224});
  struct Block { size_t c_in, c_out, expand, k, stride, hw; };
  const Block blocks[] = {
      {32, 16, 1, 3, 1, 112},  {16, 24, 6, 3, 2, 112}, {24, 24, 6, 3, 1, 56},
      {24, 40, 6, 5, 2, 56},   {40, 40, 6, 5, 1, 28},  {40, 80, 6, 3, 2, 28},
      {80, 80, 6, 3, 1, 14},   {80, 80, 6, 3, 1, 14},  {80, 112, 6, 5, 1, 14},
      {112, 112, 6, 5, 1, 14}, {112, 112, 6, 5, 1, 14}, {112, 192, 6, 5, 2, 14},
      {192, 192, 6, 5, 1, 7},  {192, 192, 6, 5, 1, 7},  {192, 192, 6, 5, 1, 7},
      {192, 320, 6, 3, 1, 7}};
  for (const Block& b : blocks) {
    const size_t mid = b.c_in * b.expand;
    if (b.expand != 1) v.push_back({"pw", b.c_in, mid, 1, 1, 1, b.hw});
    v.push_back({"dw", mid, mid, mid, b.k, b.stride, b.hw});
    v.push_back({"pw", mid, b.c_out, 1, 1, 1, b.hw / b.stride});
  }
  v.push_back({"pw", 320, 1280, 1, 1, 1, 7});
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only_isa, gemm_name, model = "mobilenet-v1";
  size_t threads = 1;
  double min_time = 0.05;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--isa") only_isa = next();
    else if (a == "--model") model = next();
    else if (a == "--gemm") gemm_name = next();
    else if (a == "--threads") threads = std::max(1, std::atoi(next()));
    else if (a == "--kc") gemm_tuning().kc = std::strtoul(next(), nullptr, 10);
    else if (a == "--nc") gemm_tuning().nc = std::strtoul(next(), nullptr, 10);
    else if (a == "--pack-b-min-ldb") gemm_tuning().pack_b_min_ldb = std::strtoul(next(), nullptr, 10);
    else if (a == "--min-time") min_time = std::atof(next());
    else {
      std::fprintf(stderr, "usage: %s [--model mobilenet-v1|efficientnet-lite0] [--isa NAME] [--gemm NAME] [--threads N] [--kc N] [--nc N] [--pack-b-min-ldb N] [--min-time S]\n", argv[0]);
      return 2;
    }
  }
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool.reset(new ThreadPool(threads));
  const Isa all[] = {Isa::kScalar, Isa::kSse2, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon, Isa::kWasmSimd};
  std::vector<Layer> layers;
  size_t fc_k = 1024;
  if (model == "mobilenet-v1") {
    layers = mobilenet_v1();
  } else if (model == "efficientnet-lite0") {
    layers = efficientnet_lite0();
    fc_k = 1280;
  } else {
    std::fprintf(stderr, "unknown model %s\n", model.c_str());
    return 2;
  }
  std::printf("%s conv stack at 224, batch 1, %zu thread(s), kc=%zu nc=%zu\n", model.c_str(),
              threads, gemm_tuning().kc, gemm_tuning().nc);
  for (Isa isa : all) {
    if (!isa_supported(isa)) continue;
    if (!only_isa.empty() && only_isa != isa_name(isa)) continue;
    if (only_isa.empty() && isa == Isa::kSse2) continue;  // same kernels as scalar today
    KernelTable table = kernels_for(isa);
    if (!gemm_name.empty()) {
      bool found = false;
#define SDE_GEMM_UKERNEL(fn, mr_, nr_, isa_)                                    \
  if (!found && isa_ == isa && std::strstr(#fn, gemm_name.c_str()) != nullptr) { \
    table.gemm.ukernel = fn;                                                     \
    table.gemm.mr = mr_;                                                         \
    table.gemm.nr = nr_;                                                         \
    table.gemm.name = #fn;                                                       \
    found = true;                                                                \
  }
#include "kernels/f32-gemm/f32-gemm.inc"
#undef SDE_GEMM_UKERNEL
      if (!found) continue;
    }
    std::printf("\n== %s (gemm %s) ==\n", isa_name(isa), table.gemm.name);
    std::printf("%-4s %-5s %5s %5s %4s %6s %22s %9s %8s\n", "#", "kind", "cin", "cout", "hw",
                "MMAC", "path", "ms", "GFLOP/s");
    double t_total = 0, t_pw = 0, t_dw = 0, f_total = 0, f_pw = 0, f_dw = 0;
    int idx = 0;
    for (const Layer& L : layers) {
      Conv2dParams p;
      p.in_channels = L.cin;
      p.out_channels = L.cout;
      p.groups = L.groups;
      p.kernel_h = p.kernel_w = L.k;
      p.stride_h = p.stride_w = L.stride;
      p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = L.k / 2;
      p.out_min = 0.0f;
      p.out_max = 6.0f;
      const std::vector<float> w = random_vec(L.cout * (L.cin / L.groups) * L.k * L.k, idx + 1);
      const std::vector<float> b = random_vec(L.cout, idx + 100);
      Conv2dNchw conv(p, w.data(), b.data(), &table);
      const size_t oh = conv.out_h(L.in_hw), ow = conv.out_w(L.in_hw);
      const std::vector<float> x = random_vec(L.cin * L.in_hw * L.in_hw, idx + 200);
      std::vector<float> y(L.cout * oh * ow);
      AlignedBytes scratch(conv.scratch_bytes(L.in_hw, L.in_hw, threads));
      const double t = time_best(
          [&] { conv.run(1, L.in_hw, L.in_hw, x.data(), y.data(), scratch.p, pool.get()); },
          min_time);
      const double macs = double(L.cout) * (L.cin / L.groups) * L.k * L.k * oh * ow;
      std::printf("%-4d %-5s %5zu %5zu %4zu %6.1f %22s %9.3f %8.1f\n", idx, L.kind, L.cin, L.cout,
                  L.in_hw, macs / 1e6, conv.path_name(), t * 1e3, 2 * macs / t / 1e9);
      t_total += t;
      f_total += 2 * macs;
      if (std::strcmp(L.kind, "pw") == 0) { t_pw += t; f_pw += 2 * macs; }
      if (std::strcmp(L.kind, "dw") == 0) { t_dw += t; f_dw += 2 * macs; }
      ++idx;
    }
    {  // classifier
      const size_t k = fc_k, n = 1000;
      const std::vector<float> w = random_vec(k * n, 7), b = random_vec(n, 8), x = random_vec(k, 9);
      std::vector<float> y(n);
      FullyConnected fc(k, n, w.data(), false, b.data(), -INFINITY, INFINITY, &table);
      AlignedBytes scratch(fc.scratch_bytes(1, threads));
      const double t = time_best([&] { fc.run(1, x.data(), y.data(), scratch.p, pool.get()); }, min_time);
      std::printf("%-4d %-5s %5zu %5zu %4d %6.1f %22s %9.3f %8.1f\n", idx, "fc", k, n, 1,
                  k * n / 1e6, "fully-connected", t * 1e3, 2.0 * k * n / t / 1e9);
      t_total += t;
      f_total += 2.0 * k * n;
    }
    std::printf("pointwise: %8.3f ms %7.1f GFLOP/s\n", t_pw * 1e3, f_pw / t_pw / 1e9);
    std::printf("depthwise: %8.3f ms %7.1f GFLOP/s\n", t_dw * 1e3, f_dw / t_dw / 1e9);
    std::printf("total:     %8.3f ms %7.1f GFLOP/s (%.0f MFLOP)\n", t_total * 1e3,
                f_total / t_total / 1e9, f_total / 1e6);
  }
  return 0;
}
