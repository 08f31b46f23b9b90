// Start-up dispatch: detect the CPU once, build the KernelTable from the
// family `.inc` lists. SPARSEDGE_ISA=scalar|sse2|avx2|avx512f|neon|wasmsimd
// may force a lower (supported) ISA, so a wrong result can be bisected.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "kernels/f32-gspmm/f32-gspmm.h"

namespace sde {
namespace {

#if SDE_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
// OS support for saving the YMM (and ZMM) state: XCR0 via xgetbv.
unsigned long long read_xcr0() {
  unsigned int eax, ebx, ecx, edx;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  if ((ecx & (1u << 27)) == 0) return 0;  // no OSXSAVE
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

bool detect(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
#if SDE_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
    case Isa::kSse2:
      return __builtin_cpu_supports("sse2");
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             (read_xcr0() & 0x6) == 0x6;
    case Isa::kAvx512f:
      return __builtin_cpu_supports("avx512f") && (read_xcr0() & 0xE6) == 0xE6;
#endif
#if SDE_ARCH_ARM64
    case Isa::kNeon:
      return true;
#endif
#if SDE_ARCH_WASM
    // The wasmsimd kernels are compiled with -msimd128 into the same module,
    // so an engine without SIMD128 rejects the whole module at load: if this
    // code runs at all, SIMD128 is there.
    case Isa::kWasmSimd:
      return true;
#endif
    default:
      return false;
  }
}

// Position of an ISA within its architecture's ladder; a kernel of ISA `k`
// may serve a table of ISA `t` if both are on the ladder and rank(k) <= rank(t).
int rank(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return 0;
    case Isa::kSse2: return 1;
    case Isa::kAvx2: return 2;
    case Isa::kAvx512f: return 3;
    case Isa::kNeon: return 1;
    case Isa::kWasmSimd: return 1;
  }
  return 0;
}

bool usable_for(Isa kernel, Isa table) {
  if (kernel == Isa::kScalar) return true;
  const bool x86_k = kernel == Isa::kSse2 || kernel == Isa::kAvx2 || kernel == Isa::kAvx512f;
  const bool x86_t = table == Isa::kSse2 || table == Isa::kAvx2 || table == Isa::kAvx512f;
  if (x86_k && x86_t) return rank(kernel) <= rank(table);
  return kernel == table;
}

KernelTable build_table(Isa isa) {
  KernelTable t;
  t.isa = isa;
  if (!isa_supported(isa)) return t;
  // Within the lists, entries are in ascending ISA order; the last usable wins.
#define SDE_GEMM_UKERNEL(fn, mr_, nr_, isa_)      \
  if (usable_for(isa_, isa)) {                     \
    t.gemm.ukernel = fn;                           \
    t.gemm.mr = mr_;                               \
    t.gemm.nr = nr_;                               \
    t.gemm.name = #fn;                             \
    t.gemm.isa = isa_;                             \
  }
#include "kernels/f32-gemm/f32-gemm.inc"
#undef SDE_GEMM_UKERNEL
#define SDE_GEMV_UKERNEL(fn, nr_, isa_)                   \
  if (usable_for(isa_, isa) && nr_ == t.gemm.nr) {         \
    t.gemv.ukernel = fn;                                   \
    t.gemv.nr = nr_;                                       \
    t.gemv.name = #fn;                                     \
    t.gemv.isa = isa_;                                     \
  }
#include "kernels/f32-gemv/f32-gemv.inc"
#undef SDE_GEMV_UKERNEL
#define SDE_DWCONV_UKERNEL(fn, k_, s_, isa_)                \
  if (usable_for(isa_, isa)) {                               \
    if (k_ == 3 && s_ == 1) t.dwconv.k3s1 = fn;              \
    if (k_ == 3 && s_ == 2) t.dwconv.k3s2 = fn;              \
    if (k_ == 5 && s_ == 1) t.dwconv.k5s1 = fn;              \
    if (k_ == 5 && s_ == 2) t.dwconv.k5s2 = fn;              \
    t.dwconv.name = isa_name(isa_);                          \
    t.dwconv.isa = isa_;                                     \
  }
#include "kernels/f32-dwconv2d-chw/f32-dwconv2d-chw.inc"
#undef SDE_DWCONV_UKERNEL
#define SDE_GSPMM_UKERNEL(fn, mr_, b_, isa_)                          \
  if (usable_for(isa_, isa)) {                                         \
    const int slot = b_ == 1 ? 0 : b_ == 2 ? 1 : b_ == 4 ? 2 : 3;      \
    t.gspmm.ukernel[slot] = fn;                                        \
    t.gspmm.mr[slot] = mr_;                                            \
    t.gspmm.name[slot] = #fn;                                          \
    t.gspmm.isa[slot] = isa_;                                          \
  }
#include "kernels/f32-gspmm/f32-gspmm.inc"
#undef SDE_GSPMM_UKERNEL
#define SDE_GSPMV_UKERNEL(fn, b_, isa_)                                \
  if (usable_for(isa_, isa)) {                                         \
    const int slot = b_ == 1 ? 0 : b_ == 2 ? 1 : b_ == 4 ? 2 : 3;      \
    t.gspmv.ukernel[slot] = fn;                                        \
    t.gspmv.name[slot] = #fn;                                          \
    t.gspmv.isa[slot] = isa_;                                          \
  }
#include "kernels/f32-gspmv/f32-gspmv.inc"
#undef SDE_GSPMV_UKERNEL
#define SDE_SPMM24_UKERNEL(fn, nr_, isa_) \
  if (usable_for(isa_, isa)) {             \
    t.spmm24.ukernel = fn;                 \
    t.spmm24.nr = nr_;                     \
    t.spmm24.name = #fn;                   \
    t.spmm24.isa = isa_;                   \
  }
#include "kernels/f32-spmm24/f32-spmm24.inc"
#undef SDE_SPMM24_UKERNEL
#define SDE_DELTA_ATTN_UKERNEL(sfx, isa_)                            \
  if (usable_for(isa_, isa)) {                                        \
    t.delta_attn.dots = sde_f32_attn_dots__##sfx;                     \
    t.delta_attn.sparse_update = sde_f32_attn_sparse_update__##sfx;   \
    t.delta_attn.exp_sum = sde_f32_attn_exp_sum__##sfx;               \
    t.delta_attn.exp_select = sde_f32_attn_exp_select__##sfx;         \
    t.delta_attn.gather_axpy = sde_f32_attn_gather_axpy__##sfx;       \
    t.delta_attn.name = "f32-delta-attn__" #sfx;                      \
    t.delta_attn.isa = isa_;                                          \
  }
#include "kernels/f32-delta-attn/f32-delta-attn.inc"
#undef SDE_DELTA_ATTN_UKERNEL
  return t;
}

Isa best_isa() {
  const Isa ladder[] = {Isa::kAvx512f, Isa::kAvx2, Isa::kSse2, Isa::kNeon, Isa::kWasmSimd};
  for (Isa isa : ladder) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::kScalar;
}

Isa chosen_isa() {
  Isa isa = best_isa();
  const char* env = std::getenv("SPARSEDGE_ISA");
  if (env != nullptr && env[0] != '\0') {
    const Isa all[] = {Isa::kScalar, Isa::kSse2, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon,
                       Isa::kWasmSimd};
    bool found = false;
    for (Isa cand : all) {
      if (std::strcmp(env, isa_name(cand)) == 0) {
        found = true;
        if (isa_supported(cand)) {
          isa = cand;  // supported implies not above the detected best
        } else {
          std::fprintf(stderr, "sparsedge: SPARSEDGE_ISA=%s not supported here, using %s\n",
                       env, isa_name(isa));
        }
      }
    }
    if (!found) {
      std::fprintf(stderr, "sparsedge: unknown SPARSEDGE_ISA=%s, using %s\n", env,
                   isa_name(isa));
    }
  }
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kSse2: return "sse2";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512f: return "avx512f";
    case Isa::kNeon: return "neon";
    case Isa::kWasmSimd: return "wasmsimd";
  }
  return "unknown";
}

bool isa_supported(Isa isa) {
  static const bool supported[6] = {detect(Isa::kScalar),  detect(Isa::kSse2),
                                    detect(Isa::kAvx2),    detect(Isa::kAvx512f),
                                    detect(Isa::kNeon),    detect(Isa::kWasmSimd)};
  const int i = static_cast<int>(isa);
  return i >= 0 && i < 6 && supported[i];
}

KernelTable kernels_for(Isa isa) { return build_table(isa); }

const KernelTable& kernels() {
  static const KernelTable table = build_table(chosen_isa());
  return table;
}

}  // namespace sde
