// Whole-model check: runs models through sde::Session and compares with
// outputs that onnxruntime produced on x86 (tools/make_model_checks.py).
// Under qemu this is the end-to-end test of the NEON kernels on real
// networks (MobileNet-v1 dense and group-sparse, EfficientNet-Lite0).
//
// Data: $SPARSEDGE_MODEL_CHECK_DIR/checks.txt, one check per line:
//   <name> <model.onnx> <input name> <input.f32t> <expected.f32t>
// paths relative to that directory. A .f32t file is: 8 bytes "SDEF32T1",
// int64 rank, rank int64 dims, then the float32 values (all little-endian).
// Without the data the program prints "skipped: <reason>" and exits with 77
// (ctest SKIP_RETURN_CODE).
//
// Options: --only NAME (one check), --runs N (N inferences each; the
// instruction count of one inference is the difference of two such runs),
// --isa ISA (force a kernel ISA, e.g. scalar, to bisect a mismatch).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/session.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace {

constexpr int kSkip = 77;
constexpr double kRelTol = 1e-4;  // max|diff| / max|ref|

struct F32Tensor {
  sde::Shape shape;
  std::vector<float> values;
};

bool read_f32t(const std::string& path, F32Tensor* out, std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *error = "cannot open " + path;
    return false;
  }
  char magic[8];
  int64_t rank = 0;
  if (!f.read(magic, 8) || std::memcmp(magic, "SDEF32T1", 8) != 0 ||
      !f.read(reinterpret_cast<char*>(&rank), 8) || rank < 0 || rank > 8) {
    *error = path + ": not an SDEF32T1 file";
    return false;
  }
  out->shape.assign(size_t(rank), 0);
  int64_t numel = 1;
  for (auto& d : out->shape) {
    if (!f.read(reinterpret_cast<char*>(&d), 8) || d < 0) {
      *error = path + ": bad shape";
      return false;
    }
    numel *= d;
  }
  out->values.resize(size_t(numel));
  if (!f.read(reinterpret_cast<char*>(out->values.data()), std::streamsize(numel * 4))) {
    *error = path + ": truncated data";
    return false;
  }
  return true;
}

struct Check {
  std::string name, model, input_name, input, expected;
};

// Returns 0 (pass), 1 (fail).
int run_check(const Check& c, const std::string& dir, int runs, const std::string& isa) {
  F32Tensor input, expected;
  std::string error;
  if (!read_f32t(dir + "/" + c.input, &input, &error) ||
      !read_f32t(dir + "/" + c.expected, &expected, &error)) {
    std::printf("FAIL %s: %s\n", c.name.c_str(), error.c_str());
    return 1;
  }
  sde::SessionOptions options;
  options.isa = isa;
  auto session = sde::Session::from_file(dir + "/" + c.model, options);
  const sde::Tensor feed =
      sde::Tensor::view(sde::DType::kFloat32, input.shape, input.values.data());
  std::vector<sde::Tensor> outputs;
  for (int i = 0; i < runs; ++i) outputs = session->run({{c.input_name, feed}}, {});
  const sde::Tensor& got = outputs.at(0);
  if (got.dtype != sde::DType::kFloat32 || got.shape != expected.shape) {
    std::printf("FAIL %s: output %s %s, expected float32 %s\n", c.name.c_str(),
                sde::dtype_name(got.dtype), sde::shape_str(got.shape).c_str(),
                sde::shape_str(expected.shape).c_str());
    return 1;
  }
  double max_diff = 0.0, max_ref = 0.0;
  const float* g = got.as<float>();
  for (size_t i = 0; i < expected.values.size(); ++i) {
    const double d = std::fabs(double(g[i]) - double(expected.values[i]));
    max_diff = std::isnan(d) ? INFINITY : std::fmax(max_diff, d);
    max_ref = std::fmax(max_ref, std::fabs(double(expected.values[i])));
  }
  const double rel = max_diff / std::fmax(max_ref, 1e-30);
  // The kernels a model used, so a log shows which ISA was exercised.
  std::string kernels;
  for (const auto& n : session->nodes()) {
    if (!n.kernel.empty() && kernels.find(n.kernel) == std::string::npos) {
      kernels += (kernels.empty() ? "" : ",") + n.kernel;
    }
  }
  const bool ok = rel <= kRelTol;
  std::printf("%s %s: isa=%s max|diff|/max|ref|=%.3g (tol %.0e) runs=%d kernels=[%s]\n",
              ok ? "ok" : "FAIL", c.name.c_str(),
              isa.empty() ? sde::isa_name(sde::kernels().isa) : isa.c_str(), rel, kRelTol, runs,
              kernels.c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only, isa;
  int runs = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--isa" && i + 1 < argc) {
      isa = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--only NAME] [--runs N] [--isa ISA]\n", argv[0]);
      return 2;
    }
  }
  const char* env = std::getenv("SPARSEDGE_MODEL_CHECK_DIR");
  if (env == nullptr || env[0] == '\0') {
    std::printf("skipped: SPARSEDGE_MODEL_CHECK_DIR is not set "
                "(write the data with tools/make_model_checks.py DIR)\n");
    return kSkip;
  }
  const std::string dir = env;
  std::ifstream manifest(dir + "/checks.txt");
  if (!manifest) {
    std::printf("skipped: no %s/checks.txt (write it with tools/make_model_checks.py)\n",
                dir.c_str());
    return kSkip;
  }
  std::vector<Check> checks;
  std::string line;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Check c;
    if (!(fields >> c.name >> c.model >> c.input_name >> c.input >> c.expected)) {
      std::printf("FAIL: bad line in checks.txt: %s\n", line.c_str());
      return 1;
    }
    if (only.empty() || only == c.name) checks.push_back(c);
  }
  if (checks.empty()) {
    std::printf("FAIL: no checks%s%s in %s/checks.txt\n", only.empty() ? "" : " named ",
                only.c_str(), dir.c_str());
    return 1;
  }
  int failed = 0;
  for (const Check& c : checks) {
    try {
      failed += run_check(c, dir, runs, isa);
    } catch (const std::exception& e) {
      std::printf("FAIL %s: %s\n", c.name.c_str(), e.what());
      ++failed;
    }
  }
  std::printf("test_models: %zu passed, %d failed\n", checks.size() - size_t(failed), failed);
  return failed == 0 ? 0 : 1;
}
