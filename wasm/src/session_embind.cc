// The WebAssembly face: embind over sde::Session. It only converts types and
// errors; memory for model bytes and feeds is owned by the JS wrapper
// (wasm/src/api.js), which copies into the heap and frees after each call.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/session.h"
#include "guarded.h"
#include "kernels/kernels.h"

namespace {

using emscripten::val;

using sde_wasm::guarded;
using sde_wasm::LastError;

val value_infos(const std::vector<sde::ValueInfo>& infos) {
  val out = val::array();
  for (const sde::ValueInfo& vi : infos) {
    val entry = val::object();
    entry.set("name", vi.name);
    entry.set("type", std::string(sde::dtype_name(vi.dtype)));
    if (vi.has_shape) {
      val dims = val::array();
      for (const sde::Dim& d : vi.dims) {
        if (d.value >= 0) dims.call<void>("push", double(d.value));
        else if (!d.param.empty()) dims.call<void>("push", d.param);
        else dims.call<void>("push", val::null());
      }
      entry.set("dims", dims);
    } else {
      entry.set("dims", val::null());
    }
    out.call<void>("push", entry);
  }
  return out;
}

// The JS typed-array constructor holding a dtype, or undefined.
val typed_array_class(sde::DType t) {
  switch (t) {
    case sde::DType::kFloat32: return val::global("Float32Array");
    case sde::DType::kFloat64: return val::global("Float64Array");
    case sde::DType::kInt8: return val::global("Int8Array");
    case sde::DType::kUInt8: return val::global("Uint8Array");
    case sde::DType::kBool: return val::global("Uint8Array");
    case sde::DType::kInt16: return val::global("Int16Array");
    case sde::DType::kUInt16: return val::global("Uint16Array");
    case sde::DType::kFloat16: return val::global("Uint16Array");
    case sde::DType::kInt32: return val::global("Int32Array");
    case sde::DType::kUInt32: return val::global("Uint32Array");
    case sde::DType::kInt64: return val::global("BigInt64Array");
    case sde::DType::kUInt64: return val::global("BigUint64Array");
    default: return val::undefined();
  }
}

class WasmSession {
 public:
  // `data` is a heap address holding `size` model bytes; the core copies what
  // it keeps, so the caller frees them as soon as this returns.
  WasmSession(uintptr_t data, size_t size, size_t threads, std::string isa) {
    sde::SessionOptions options;
    options.threads = threads;
    options.isa = std::move(isa);
    guarded(error_, [&] {
      session_ = sde::Session::from_bytes(reinterpret_cast<const uint8_t*>(data), size, options);
    });
  }

  // 0 (and "") after a successful call, else the sde::StatusCode and message.
  int error_code() const { return error_.code; }
  std::string error_message() const { return error_.message; }

  // Only called by the wrapper once construction succeeded.
  val inputs() const { return value_infos(session_->inputs()); }
  val outputs() const { return value_infos(session_->outputs()); }

  // feeds: array of {name, dtype (ONNX number), dims (array), ptr (heap address)}.
  // Returns null on error (see error_code), else an array of {name, type, dims, data} with `data` a fresh typed
  // array (a copy: the session's outputs are only valid until the next run).
  val run(val feeds, val output_names) {
    std::vector<std::pair<std::string, sde::Tensor>> tensors;
    const unsigned n = feeds["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) {
      val f = feeds[i];
      sde::Shape shape;
      val dims = f["dims"];
      const unsigned rank = dims["length"].as<unsigned>();
      for (unsigned d = 0; d < rank; ++d) shape.push_back(int64_t(dims[d].as<double>()));
      tensors.emplace_back(f["name"].as<std::string>(),
                           sde::Tensor::view(sde::DType(f["dtype"].as<int>()), shape,
                                             reinterpret_cast<void*>(f["ptr"].as<uintptr_t>())));
    }
    std::vector<std::string> names;
    const unsigned m = output_names["length"].as<unsigned>();
    for (unsigned i = 0; i < m; ++i) names.push_back(output_names[i].as<std::string>());

    std::vector<sde::Tensor> results;
    if (!guarded(error_, [&] { results = session_->run(tensors, names); })) return val::null();
    if (names.empty())
      for (const sde::ValueInfo& vi : session_->outputs()) names.push_back(vi.name);

    val out = val::array();
    for (size_t i = 0; i < results.size(); ++i) {
      const sde::Tensor& t = results[i];
      val cls = typed_array_class(t.dtype);
      if (cls.isUndefined()) {
        error_.code = int(sde::StatusCode::kUnsupported);
        error_.message = "output '" + names[i] + "' has dtype " + sde::dtype_name(t.dtype) +
                         ", which has no JS typed array";
        return val::null();
      }
      const size_t elems = size_t(t.numel());
      // A view of the heap, copied by the typed-array constructor.
      val view = val(emscripten::typed_memory_view(t.bytes(), static_cast<const uint8_t*>(t.data)));
      val copy = cls.new_(val::global("Uint8Array").new_(view)["buffer"], 0, double(elems));
      val dims = val::array();
      for (int64_t d : t.shape) dims.call<void>("push", double(d));
      val entry = val::object();
      entry.set("name", names[i]);
      entry.set("type", std::string(sde::dtype_name(t.dtype)));
      entry.set("dims", dims);
      entry.set("data", copy);
      out.call<void>("push", entry);
    }
    return out;
  }

 private:
  std::unique_ptr<sde::Session> session_;
  LastError error_;
};

std::string isa() { return sde::isa_name(sde::kernels().isa); }

}  // namespace

EMSCRIPTEN_BINDINGS(sparsedge) {
  emscripten::class_<WasmSession>("WasmSession")
      .constructor<uintptr_t, size_t, size_t, std::string>()
      .function("inputs", &WasmSession::inputs)
      .function("outputs", &WasmSession::outputs)
      .function("run", &WasmSession::run)
      .function("errorCode", &WasmSession::error_code)
      .function("errorMessage", &WasmSession::error_message);
  emscripten::function("isa", &isa);
}
