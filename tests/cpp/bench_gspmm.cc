// Times GroupSparseConv against the dense Conv2dNchw 1x1 on the 13 pointwise
// layers of MobileNet-v1 1.0/224 at random block sparsity, alternating the two
// and taking medians; prints per-layer and total speedups, and a whole-network
// estimate with the stem and depthwise layers dense (timed here too) and the
// 1024->1000 classifier at the same sparsity. Not a test. Usage:
//   bench_gspmm [--isa NAME] [--threads N] [--rounds N] [--layers] [--wall]
//   bench_gspmm --decode [--isa NAME] [--rounds N] [--cold-mb MB] [--block B] [--wall]
// --decode: LLM decode GEMVs (M = 1) on the SmolLM2-135M layer shapes, dense
// FullyConnected (f32-gemv) against GroupSparseFullyConnected (f32-gspmv) and
// against the same op without gspmv (f32-gspmm, one-pixel tile) at 30/50/70%
// of Bx1 blocks pruned, for every ISA this CPU runs (or --isa). Each timed
// pass walks enough copies of the layer that the dense copies total --cold-mb
// MB (default 128, beyond the L3), so weights stream from DRAM as in a
// whole-model decode; --cold-mb 0 times one cache-resident copy. Variants
// alternate within a round; printed are medians over rounds (thread CPU time,
// or with --wall the 25th percentile of single calls per pass).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <ctime>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "operators/conv2d_nchw.h"
#include "operators/fully_connected.h"
#include "operators/group_sparse_conv.h"

using namespace sde;

namespace {

struct Pointwise { size_t cin, cout, hw; };

const Pointwise kPointwise[] = {{32, 64, 112},  {64, 128, 56},  {128, 128, 56}, {128, 256, 28},
                                {256, 256, 28}, {256, 512, 14}, {512, 512, 14}, {512, 512, 14},
                                {512, 512, 14}, {512, 512, 14}, {512, 512, 14}, {512, 1024, 7},
                                {1024, 1024, 7}};

struct Buffer {
  float* p = nullptr;
  explicit Buffer(size_t bytes) {
    bytes = std::max<size_t>(64, (bytes + 63) / 64 * 64);
    p = static_cast<float*>(::aligned_alloc(64, bytes));  // C11 (emscripten has no std::)
    std::memset(p, 0, bytes);
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// With one thread the clock is the thread's CPU time: the machine is shared,
// and wall time would count the other engineers' builds. With a pool it is
// wall time (the workers' CPU time is not ours to read).
bool g_cpu_clock = true;
double now_ms() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Random BSR with exactly round((1 - sparsity) * blocks) kept blocks.
struct Bsr {
  std::vector<float> values, bias, dense;
  std::vector<int32_t> cols, row_ptr;
  GroupSparseWeights w;
};

std::unique_ptr<Bsr> make_bsr(size_t O, size_t I, size_t B, double sparsity, std::mt19937& rng) {
  auto s = std::make_unique<Bsr>();
  const size_t rows = (O + B - 1) / B, blocks = rows * I;
  const size_t keep = size_t(std::llround((1.0 - sparsity) * double(blocks)));
  std::vector<uint8_t> kept(blocks, 0);
  std::fill(kept.begin(), kept.begin() + keep, 1);
  std::shuffle(kept.begin(), kept.end(), rng);
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  s->dense.assign(O * I, 0.0f);
  s->bias.resize(O);
  for (auto& b : s->bias) b = u(rng);
  s->row_ptr.push_back(0);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < I; ++i) {
      if (!kept[r * I + i]) continue;
      s->cols.push_back(int32_t(i));
      for (size_t b = 0; b < B; ++b) {
        const size_t o = r * B + b;
        const float v = o < O ? u(rng) : 0.0f;
        s->values.push_back(v);
        if (o < O) s->dense[o * I + i] = v;
      }
    }
    s->row_ptr.push_back(int32_t(s->cols.size()));
  }
  s->w.out_channels = O;
  s->w.in_channels = I;
  s->w.block_size = B;
  s->w.nnz_blocks = s->cols.size();
  s->w.values = s->values.data();
  s->w.col_indices = s->cols.data();
  s->w.row_ptr = s->row_ptr.data();
  s->w.bias = s->bias.data();
  return s;
}

// Alternates a() and b() `rounds` times (after one warm-up each); medians in ms.
template <typename A, typename B>
std::pair<double, double> time_pair(int rounds, const A& a, const B& b) {
  a();
  b();
  std::vector<double> ta, tb;
  for (int i = 0; i < rounds; ++i) {
    double t0 = now_ms();
    a();
    double t1 = now_ms();
    b();
    double t2 = now_ms();
    ta.push_back(t1 - t0);
    tb.push_back(t2 - t1);
  }
  return {median(ta), median(tb)};
}

// --decode: see the header.
int decode_bench(int argc, char** argv) {
  std::string only_isa;
  int rounds = 15;
  double cold_mb = 128;
  size_t block = 4;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--decode") continue;
    if (a == "--isa") only_isa = next();
    else if (a == "--rounds") rounds = std::max(1, std::atoi(next()));
    else if (a == "--cold-mb") cold_mb = std::atof(next());
    else if (a == "--block") block = size_t(std::atoi(next()));
    else if (a == "--wall") g_cpu_clock = false;
    else {
      std::fprintf(stderr, "usage: %s --decode [--isa NAME] [--rounds N] [--cold-mb MB] [--block B] [--wall]\n", argv[0]);
      return 2;
    }
  }
  struct Shape { const char* name; size_t out, in; };
  const Shape shapes[] = {{"q/o 576x576", 576, 576}, {"k/v 192x576", 192, 576},
                          {"gate/up 1536x576", 1536, 576}, {"down 576x1536", 576, 1536}};
  const double sparsities[] = {0.3, 0.5, 0.7};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (Isa isa : {Isa::kScalar, Isa::kSse2, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon, Isa::kWasmSimd}) {
    if (!isa_supported(isa)) continue;
    if (!only_isa.empty() && only_isa != isa_name(isa)) continue;
    const KernelTable kt = kernels_for(isa);
    if (kt.gspmv.ukernel[0] == nullptr) continue;
    KernelTable no_gspmv = kt;
    no_gspmv.gspmv = GspmvConfig{};
    // The dense GEMV this ISA had before its own f32-gemv: the scalar kernel
    // over the same strip width (printed as "scalar-strip us").
    KernelTable fallback = kt;
#define SDE_GEMV_UKERNEL(fn, nr_, isa_)                          \
    if (isa_ == Isa::kScalar && nr_ == kt.gemm.nr) {             \
      fallback.gemv.ukernel = fn;                                \
      fallback.gemv.name = #fn;                                  \
    }
#include "kernels/f32-gemv/f32-gemv.inc"
#undef SDE_GEMV_UKERNEL
    std::printf("== %s: dense %s vs B=%zu gspmv vs gspmm (1-pixel tile); 1 thread, %d rounds, cold %.0f MB, %s clock ==\n",
                isa_name(isa), kt.gemv.name, block, rounds, cold_mb, g_cpu_clock ? "thread-cpu" : "wall");
    std::printf("%-18s %5s %6s %10s %10s %10s %9s %9s %8s %15s\n", "layer [O x I]", "pruned", "copies",
                "dense us", "gspmv us", "gspmm us", "gspmv/dn", "gspmm/dn", "bytes/dn", "scalar-strip us");
    for (const Shape& s : shapes) {
      for (double sp : sparsities) {
        const size_t dense_bytes = s.out * s.in * 4;
        const size_t copies =
            cold_mb > 0 ? std::max<size_t>(1, size_t(cold_mb * 1e6 / double(dense_bytes))) : 1;
        std::vector<std::unique_ptr<FullyConnected>> dense, dense_fb;
        std::vector<std::unique_ptr<GroupSparseFullyConnected>> sparse, old;
        size_t stream_bytes = 0;
        for (size_t c = 0; c < copies; ++c) {
          auto bsr = make_bsr(s.out, s.in, block, sp, rng);
          dense.emplace_back(new FullyConnected(s.in, s.out, bsr->dense.data(), false, bsr->bias.data(),
                                                -INFINITY, INFINITY, &kt));
          if (sp == sparsities[0] && kt.gemv.isa != Isa::kScalar) {
            dense_fb.emplace_back(new FullyConnected(s.in, s.out, bsr->dense.data(), false,
                                                     bsr->bias.data(), -INFINITY, INFINITY, &fallback));
          }
          sparse.emplace_back(new GroupSparseFullyConnected(bsr->w, -INFINITY, INFINITY, &kt));
          old.emplace_back(new GroupSparseFullyConnected(bsr->w, -INFINITY, INFINITY, &no_gspmv));
          // Streamed by gspmv: B weights + a 2-byte index per block, B bias floats per block row.
          stream_bytes = bsr->cols.size() * (4 * block + 2) + s.out * 4;
        }
        std::vector<float> x(s.in), y(s.out);
        for (auto& v : x) v = u(rng);
        std::vector<double> td, tv, tm, rv, rm, tf;
        // us per layer call. Wall clock (--wall, e.g. under node, where the
        // thread CPU clock is not available): each call is timed alone and the
        // pass reports the 25th percentile, so calls preempted by other jobs
        // (the upper tail) do not count.
        std::vector<double> calls(copies);
        auto pass = [&](auto& ops) {
          if (g_cpu_clock) {
            const double t0 = now_ms();
            for (auto& op : ops) op->run(1, x.data(), y.data(), nullptr, nullptr);
            return (now_ms() - t0) * 1e3 / double(copies);
          }
          for (size_t c = 0; c < copies; ++c) {
            const double t0 = now_ms();
            ops[c]->run(1, x.data(), y.data(), nullptr, nullptr);
            calls[c] = (now_ms() - t0) * 1e3;
          }
          std::sort(calls.begin(), calls.end());
          return calls[copies / 4];
        };
        for (int r = -1; r < rounds; ++r) {  // round -1: warm-up
          const double a = pass(dense), b = pass(sparse), c = pass(old);
          const double f = dense_fb.empty() ? 0.0 : pass(dense_fb);
          if (r < 0) continue;
          tf.push_back(f);
          td.push_back(a);
          tv.push_back(b);
          tm.push_back(c);
          rv.push_back(b / a);
          rm.push_back(c / a);
        }
        char fb[32] = "";
        if (!dense_fb.empty()) std::snprintf(fb, sizeof fb, "%.1f", median(tf));
        std::printf("%-18s %4.0f%% %6zu %10.1f %10.1f %10.1f %8.2fx %8.2fx %7.0f%% %15s   %s\n", s.name,
                    sp * 100, copies, median(td), median(tv), median(tm), median(rv), median(rm),
                    100.0 * double(stream_bytes) / double(dense_bytes), fb, sparse[0]->path_name());
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--decode") return decode_bench(argc, argv);
  Isa isa = kernels().isa;
  size_t threads = 1;
  int rounds = 15;
  bool per_layer = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--isa" && i + 1 < argc) {
      const std::string v = argv[++i];
      for (Isa cand : {Isa::kScalar, Isa::kSse2, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon, Isa::kWasmSimd})
        if (v == isa_name(cand)) isa = cand;
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--wall") {
      g_cpu_clock = false;
    } else if (a == "--layers") {
      per_layer = true;
    } else {
      std::fprintf(stderr, "usage: %s [--isa NAME] [--threads N] [--rounds N] [--layers] [--wall]\n", argv[0]);
      return 2;
    }
  }
  if (threads > 1) g_cpu_clock = false;
  const KernelTable kt = kernels_for(isa);
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
  std::printf("bench_gspmm: isa=%s threads=%zu rounds=%d clock=%s (medians, dense = Conv2dNchw %s)\n",
              isa_name(isa), threads, rounds, g_cpu_clock ? "thread-cpu" : "wall", kt.gemm.name);

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);

  // Dense parts of the network: stem + 13 depthwise 3x3 (unchanged by pruning).
  double dense_rest_ms = 0.0;
  {
    struct Dw { size_t c, stride, hw; };
    const Dw dws[] = {{32, 1, 112}, {64, 2, 112}, {128, 1, 56}, {128, 2, 56}, {256, 1, 28},
                      {256, 2, 28}, {512, 1, 14},  {512, 1, 14}, {512, 1, 14}, {512, 1, 14},
                      {512, 1, 14}, {512, 2, 14},  {1024, 1, 7}};
    std::vector<Conv2dParams> ps;
    Conv2dParams stem;
    stem.in_channels = 3; stem.out_channels = 32; stem.kernel_h = stem.kernel_w = 3;
    stem.stride_h = stem.stride_w = 2; stem.pad_top = stem.pad_left = 0;
    stem.pad_bottom = stem.pad_right = 1;
    ps.push_back(stem);
    std::vector<size_t> hws = {224};
    for (const Dw& d : dws) {
      Conv2dParams p;
      p.in_channels = p.out_channels = p.groups = d.c;
      p.kernel_h = p.kernel_w = 3;
      p.stride_h = p.stride_w = d.stride;
      p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
      ps.push_back(p);
      hws.push_back(d.hw);
    }
    for (size_t i = 0; i < ps.size(); ++i) {
      const Conv2dParams& p = ps[i];
      std::vector<float> w(p.out_channels * p.in_channels / p.groups * 9);
      for (auto& v : w) v = u(rng) * 0.1f;
      Conv2dNchw conv(p, w.data(), nullptr, &kt);
      const size_t hw = hws[i];
      Buffer x(p.in_channels * hw * hw * 4), y(p.out_channels * conv.out_h(hw) * conv.out_w(hw) * 4);
      Buffer scratch(conv.scratch_bytes(hw, hw, threads));
      auto run = [&] { conv.run(1, hw, hw, x.p, y.p, scratch.p, pool.get()); };
      dense_rest_ms += time_pair(rounds, run, run).first;
    }
  }

  struct Config { size_t b; double sparsity; };
  const Config configs[] = {{4, 0.0}, {4, 0.3}, {4, 0.5}, {4, 0.7}, {4, 0.8},
                            {4, 0.9}, {1, 0.8}, {2, 0.8}, {8, 0.8}};
  std::printf("stem + depthwise (dense): %.3f ms\n\n", dense_rest_ms);
  std::printf("%-5s %-9s %10s %10s %8s %8s %9s %10s %10s %8s\n", "B", "sparsity", "pw dense",
              "pw sparse", "speedup", "ideal", "eff", "fc dense", "fc sparse", "network");
  for (const Config& cfg : configs) {
    double total_dense = 0.0, total_sparse = 0.0;
    std::string path;
    for (const Pointwise& L : kPointwise) {
      auto bsr = make_bsr(L.cout, L.cin, cfg.b, cfg.sparsity, rng);
      GroupSparseConv sparse(bsr->w, GroupSparseConvParams{}, &kt);
      Conv2dParams dp;
      dp.in_channels = L.cin;
      dp.out_channels = L.cout;
      Conv2dNchw dense(dp, bsr->dense.data(), bsr->bias.data(), &kt);
      Buffer x(L.cin * L.hw * L.hw * 4), y1(L.cout * L.hw * L.hw * 4), y2(L.cout * L.hw * L.hw * 4);
      for (size_t i = 0; i < L.cin * L.hw * L.hw; ++i) x.p[i] = u(rng);
      Buffer s1(dense.scratch_bytes(L.hw, L.hw, threads));
      Buffer s2(sparse.scratch_bytes(L.hw, L.hw, threads));
      const auto t = time_pair(
          rounds, [&] { dense.run(1, L.hw, L.hw, x.p, y1.p, s1.p, pool.get()); },
          [&] { sparse.run(1, L.hw, L.hw, x.p, y2.p, s2.p, pool.get()); });
      total_dense += t.first;
      total_sparse += t.second;
      path = sparse.path_name();
      if (per_layer) {
        std::printf("  B=%zu s=%.0f%% %4zu->%-4zu @%3zux%-3zu dense %7.3f ms  sparse %7.3f ms  x%.2f\n",
                    cfg.b, cfg.sparsity * 100, L.cin, L.cout, L.hw, L.hw, t.first, t.second,
                    t.first / t.second);
      }
    }
    // Classifier 1024 -> 1000, m = 1.
    auto fc_bsr = make_bsr(1000, 1024, cfg.b, cfg.sparsity, rng);
    GroupSparseFullyConnected fc_sparse(fc_bsr->w, -INFINITY, INFINITY, &kt);
    FullyConnected fc_dense(1024, 1000, fc_bsr->dense.data(), false, fc_bsr->bias.data(),
                            -INFINITY, INFINITY, &kt);
    Buffer fx(1024 * 4), fy1(1000 * 4), fy2(1000 * 4);
    for (size_t i = 0; i < 1024; ++i) fx.p[i] = u(rng);
    Buffer fs1(fc_dense.scratch_bytes(1, threads)), fs2(fc_sparse.scratch_bytes(1, threads));
    const auto tf = time_pair(
        rounds, [&] { fc_dense.run(1, fx.p, fy1.p, fs1.p, pool.get()); },
        [&] { fc_sparse.run(1, fx.p, fy2.p, fs2.p, pool.get()); });
    const double ideal = cfg.sparsity < 1.0 ? 1.0 / (1.0 - cfg.sparsity) : 0.0;
    const double speedup = total_dense / total_sparse;
    const double net = (dense_rest_ms + total_dense + tf.first) /
                       (dense_rest_ms + total_sparse + tf.second);
    std::printf("%-5zu %-9.0f %10.3f %10.3f %7.2fx %7.2fx %8.0f%% %10.3f %10.3f %7.2fx   %s\n",
                cfg.b, cfg.sparsity * 100, total_dense, total_sparse, speedup, ideal,
                100.0 * speedup / ideal, tf.first, tf.second, net, path.c_str());
    if (per_layer) std::printf("\n");
  }
  return 0;
}
