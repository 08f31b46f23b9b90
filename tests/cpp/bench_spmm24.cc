// Dense FullyConnected (f32-gemv at M = 1, f32-gemm above) against the
// f32-spmm24 kernel (2:4, packed panels) on the SmolLM2-135M linear layers.
// Not a test. Usage:
//   bench_spmm24 [--isa NAME] [--reps N] [--cold-mb MB] [--m LIST] [--wall]
// At M = 1 (decode) each timed pass walks enough copies of the layer that the
// dense copies total --cold-mb MB (default 256, far beyond the L3), so both
// stream their weights from DRAM as in a whole-model decode; --cold-mb 0 keeps
// one copy (cache-hot). M > 1 (prefill) uses one copy. Dense and 2:4 passes
// alternate; printed are medians of the per-pass times (thread CPU time unless
// --wall) and of the per-pass ratios.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "operators/aligned_buffer.h"
#include "operators/fully_connected.h"

using namespace sde;

namespace {

std::vector<float> random_vec(size_t n, unsigned seed) {
  std::vector<float> v(n);
  unsigned s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>((s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
  }
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// This thread's CPU time (not wall time): on a shared machine, time spent
// descheduled is not counted; --wall switches to the steady clock.
bool g_wall = false;
double now() {
  if (!g_wall) {
    timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Sparse24 {
  AlignedFloats w;
  std::vector<uint32_t> widx;
};

}  // namespace

int main(int argc, char** argv) {
  std::string only_isa;
  int reps = 31;
  double cold_mb = 256;
  std::vector<size_t> ms = {1, 64, 512};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--isa") only_isa = next();
    else if (a == "--reps") reps = std::max(1, std::atoi(next()));
    else if (a == "--cold-mb") cold_mb = std::atof(next());
    else if (a == "--wall") g_wall = true;
    else if (a == "--m") {
      ms.clear();
      std::string list = next();
      for (size_t p = 0; p < list.size();) {
        ms.push_back(std::strtoul(list.c_str() + p, nullptr, 10));
        p = list.find(',', p);
        if (p == std::string::npos) break;
        ++p;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--isa NAME] [--reps N] [--cold-mb MB] [--m 1,64,512] [--wall]\n", argv[0]);
      return 2;
    }
  }
  struct Shape { const char* name; size_t out, in; };
  const Shape shapes[] = {{"q/o 576x576", 576, 576}, {"k/v 192x576", 192, 576},
                          {"gate/up 1536x576", 1536, 576}, {"down 576x1536", 576, 1536}};
  const Isa all[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon, Isa::kWasmSimd};
  for (Isa isa : all) {
    if (!isa_supported(isa)) continue;
    if (!only_isa.empty() && only_isa != isa_name(isa)) continue;
    const KernelTable table = kernels_for(isa);
    const Spmm24Config& sp = table.spmm24;
    std::printf("== %s: dense %s / %s vs 2:4 %s, 1 thread, %d alternating passes, cold %.0f MB ==\n",
                isa_name(isa), table.gemv.name, table.gemm.name, sp.name, reps, cold_mb);
    std::printf("%-18s %4s %7s %11s %11s %8s\n", "layer [O x I]", "M", "copies", "dense us", "2:4 us",
                "speedup");
    for (size_t m : ms) {
      for (const Shape& s : shapes) {
        const size_t k = s.in, n = s.out;
        const std::vector<float> wd = random_vec(n * k, 1), bias = random_vec(n, 2), x = random_vec(m * k, 3);
        // 2:4 version of the same matrix: the two largest of each group of 4.
        std::vector<float> values(n * k / 2);
        std::vector<uint8_t> idx(n * k / 4);
        for (size_t o = 0; o < n; ++o) {
          for (size_t g = 0; g < k / 4; ++g) {
            const float* q = &wd[o * k + 4 * g];
            int a = 0, b = 1;
            for (int j = 0; j < 4; ++j) {
              if (std::fabs(q[j]) > std::fabs(q[a])) a = j;
            }
            b = a == 0 ? 1 : 0;
            for (int j = 0; j < 4; ++j) {
              if (j != a && std::fabs(q[j]) > std::fabs(q[b])) b = j;
            }
            const int p0 = std::min(a, b), p1 = std::max(a, b);
            values[o * k / 2 + 2 * g] = q[p0];
            values[o * k / 2 + 2 * g + 1] = q[p1];
            idx[o * k / 4 + g] = static_cast<uint8_t>(p0 | (p1 << 2));
          }
        }
        const size_t dense_bytes = n * k * 4;
        const size_t copies =
            m == 1 && cold_mb > 0 ? std::max<size_t>(1, static_cast<size_t>(cold_mb * 1e6 / dense_bytes)) : 1;
        std::vector<std::unique_ptr<FullyConnected>> dense;
        std::vector<Sparse24> sparse(copies);
        for (size_t c = 0; c < copies; ++c) {
          dense.emplace_back(new FullyConnected(k, n, wd.data(), false, bias.data(), -INFINITY, INFINITY, &table));
          sparse[c].w.resize(sde_f32_spmm24_packed_floats(sp.nr, n, k));
          sparse[c].widx.resize(sde_f32_spmm24_packed_words(sp.nr, n, k));
          sde_f32_spmm24_pack(sp.nr, n, k, values.data(), idx.data(), sparse[c].w.data(), sparse[c].widx.data());
        }
        AlignedFloats scratch((dense[0]->scratch_bytes(m, 1) + 3) / 4 + 16);
        std::vector<float> y(m * n);
        auto run_dense = [&] {
          for (size_t c = 0; c < copies; ++c) dense[c]->run(m, x.data(), y.data(), scratch.data(), nullptr);
        };
        auto run_sparse = [&] {
          for (size_t c = 0; c < copies; ++c) {
            sp.ukernel(m, n, k, x.data(), k, sparse[c].w.data(), sparse[c].widx.data(), bias.data(), y.data(), n);
          }
        };
        run_dense();
        run_sparse();
        std::vector<double> td, ts, ratio;
        for (int r = 0; r < reps; ++r) {
          double t0 = now();
          run_dense();
          double t1 = now();
          run_sparse();
          double t2 = now();
          td.push_back((t1 - t0) / copies);
          ts.push_back((t2 - t1) / copies);
          ratio.push_back((t1 - t0) / (t2 - t1));
        }
        std::printf("%-18s %4zu %7zu %11.1f %11.1f %7.2fx\n", s.name, m, copies, median(td) * 1e6,
                    median(ts) * 1e6, median(ratio));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
