// sparsedge._core: converts between NumPy arrays and core tensors and maps
// core status codes to the Python exception classes in sparsedge/errors.py.
// No model logic lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <exception>

#include "core/session.h"
#include "kernels/kernels.h"
#include "llm/generator.h"
#include "llm/sampling.h"
#include "llm/tokenizer.h"
#include "ops/op.h"

namespace py = pybind11;
using namespace sde;

namespace {

[[noreturn]] void raise_error(const Error& e) {
  const char* cls = "SparsedgeError";
  switch (e.code()) {
    case StatusCode::kInvalidArgument: cls = "InvalidArgumentError"; break;
    case StatusCode::kInvalidModel: cls = "InvalidModelError"; break;
    case StatusCode::kUnsupported: cls = "UnsupportedError"; break;
    case StatusCode::kFileNotFound: cls = "ModelFileNotFoundError"; break;
    case StatusCode::kOutOfMemory: cls = "OutOfMemoryError"; break;
    default: break;
  }
  py::object errors = py::module_::import("sparsedge.errors");
  PyErr_SetString(errors.attr(cls).ptr(), e.what());
  throw py::error_already_set();
}

template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    raise_error(e);
  } catch (const std::bad_alloc&) {
    raise_error(Error(StatusCode::kOutOfMemory, "out of memory"));
  }
}

// Runs f with the GIL released. Errors are caught there and raised as Python
// exceptions only once the GIL is held again: raising needs the interpreter.
template <typename F>
auto without_gil(F&& f) -> decltype(f()) {
  std::exception_ptr failure;
  decltype(f()) result{};
  {
    py::gil_scoped_release release;
    try {
      result = f();
    } catch (...) {
      failure = std::current_exception();
    }
  }
  if (failure) {
    return guarded([&]() -> decltype(f()) { std::rethrow_exception(failure); });
  }
  return result;
}

DType dtype_of(const py::dtype& dt) {
  switch (dt.kind()) {
    case 'f':
      if (dt.itemsize() == 4) return DType::kFloat32;
      if (dt.itemsize() == 8) return DType::kFloat64;
      if (dt.itemsize() == 2) return DType::kFloat16;
      break;
    case 'i':
      if (dt.itemsize() == 8) return DType::kInt64;
      if (dt.itemsize() == 4) return DType::kInt32;
      if (dt.itemsize() == 2) return DType::kInt16;
      if (dt.itemsize() == 1) return DType::kInt8;
      break;
    case 'u':
      if (dt.itemsize() == 1) return DType::kUInt8;
      if (dt.itemsize() == 2) return DType::kUInt16;
      if (dt.itemsize() == 4) return DType::kUInt32;
      if (dt.itemsize() == 8) return DType::kUInt64;
      break;
    case 'b': return DType::kBool;
  }
  return DType::kUndefined;
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::kFloat32: return py::dtype("float32");
    case DType::kFloat64: return py::dtype("float64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kInt64: return py::dtype("int64");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt8: return py::dtype("int8");
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kUInt16: return py::dtype("uint16");
    case DType::kUInt32: return py::dtype("uint32");
    case DType::kUInt64: return py::dtype("uint64");
    case DType::kBool: return py::dtype("bool");
    default: throw Error(StatusCode::kInternal, "no NumPy dtype for this tensor");
  }
}

py::list value_infos(const std::vector<ValueInfo>& infos) {
  py::list out;
  for (const ValueInfo& vi : infos) {
    py::list dims;
    for (const Dim& d : vi.dims) {
      if (d.value >= 0) dims.append(d.value);
      else if (!d.param.empty()) dims.append(d.param);
      else dims.append(py::none());
    }
    out.append(py::make_tuple(vi.name, dtype_name(vi.dtype), vi.has_shape ? py::object(dims) : py::object(py::none())));
  }
  return out;
}

class PySession {
 public:
  PySession(py::object model, size_t threads, bool optimize, std::string isa) {
    SessionOptions opts;
    opts.isa = isa;
    opts.threads = threads;
    opts.optimize = optimize;
    if (py::isinstance<py::bytes>(model) || py::isinstance<py::bytearray>(model) ||
        py::isinstance<py::memoryview>(model)) {
      py::buffer_info info = py::buffer(model).request();
      const auto* data = static_cast<const uint8_t*>(info.ptr);
      const size_t size = static_cast<size_t>(info.size * info.itemsize);
      session_ = guarded([&] { return Session::from_bytes(data, size, opts); });
    } else {
      std::string path = py::str(model);
      session_ = without_gil([&] { return Session::from_file(path, opts); });
    }
  }

  py::list inputs() const { return value_infos(session_->inputs()); }
  py::list outputs() const { return value_infos(session_->outputs()); }
  py::dict metadata() const {
    py::dict d;
    for (const auto& kv : session_->metadata()) d[py::str(kv.first)] = kv.second;
    return d;
  }
  py::list nodes() const {
    py::list out;
    for (const NodeSummary& s : session_->nodes()) {
      py::dict d;
      d["name"] = s.name;
      d["op_type"] = s.op_type;
      d["domain"] = s.domain;
      d["kernel"] = s.kernel;
      d["inputs"] = s.inputs;
      d["outputs"] = s.outputs;
      out.append(d);
    }
    return out;
  }

  py::list run(const std::vector<std::string>& output_names, const py::dict& feeds) {
    // Keep the arrays alive (and contiguous) for the duration of the run.
    std::vector<py::array> keep;
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (auto item : feeds) {
      std::string name = py::str(item.first);
      py::array arr = py::array::ensure(item.second, py::array::c_style);
      if (!arr) {
        raise_error(Error(StatusCode::kInvalidArgument, "input '" + name + "' is not an array-like of numbers"));
      }
      DType dt = dtype_of(arr.dtype());
      if (dt == DType::kUndefined) {
        raise_error(Error(StatusCode::kInvalidArgument, "input '" + name + "' has an unsupported dtype " +
                                                             std::string(py::str(arr.dtype()))));
      }
      Shape shape(arr.shape(), arr.shape() + arr.ndim());
      tensors.emplace_back(name, Tensor::view(dt, shape, const_cast<void*>(arr.data())));
      keep.push_back(arr);
    }
    std::vector<Tensor> results = without_gil([&] { return session_->run(tensors, output_names); });
    py::list out;
    for (const Tensor& t : results) {
      py::array arr(numpy_dtype(t.dtype), std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
      if (t.bytes()) std::memcpy(arr.mutable_data(), t.data, t.bytes());
      out.append(arr);
    }
    return out;
  }

  size_t threads() const { return session_->threads(); }
  std::map<std::string, double> stats() const { return session_->stats(); }
  void reset_stats() { session_->reset_stats(); }

 private:
  std::unique_ptr<Session> session_;
};

class PyTokenizer {
 public:
  explicit PyTokenizer(const std::string& path)
      : tok_(without_gil([&] { return llm::Tokenizer::from_file(path); })) {}

  std::vector<int32_t> encode(const std::string& text) const {
    return without_gil([&] { return tok_->encode(text); });
  }
  py::str decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
    std::string bytes = guarded([&] { return tok_->decode_bytes(ids.data(), ids.size(), skip_special_tokens); });
    PyObject* text = PyUnicode_DecodeUTF8(bytes.data(), static_cast<py::ssize_t>(bytes.size()), "replace");
    if (!text) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(text);
  }
  py::bytes decode_bytes(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
    return py::bytes(guarded([&] { return tok_->decode_bytes(ids.data(), ids.size(), skip_special_tokens); }));
  }
  size_t vocab_size() const { return tok_->vocab_size(); }
  int32_t token_to_id(const std::string& token) const { return tok_->token_to_id(token); }
  bool is_special(int32_t id) const { return tok_->is_special(id); }

 private:
  std::unique_ptr<llm::Tokenizer> tok_;
};

class PySampler {
 public:
  PySampler(float temperature, int32_t top_k, float top_p, uint64_t seed)
      : sampler_(guarded([&] { return llm::Sampler(llm::SamplingOptions{temperature, top_k, top_p, seed}); })) {}

  int32_t sample(const py::array_t<float, py::array::c_style | py::array::forcecast>& logits) {
    if (logits.ndim() != 1) {
      raise_error(Error(StatusCode::kInvalidArgument, "logits must be one-dimensional, got " +
                                                          std::to_string(logits.ndim()) + " dimensions"));
    }
    return guarded([&] { return sampler_.sample(logits.data(), static_cast<size_t>(logits.shape(0))); });
  }
  int32_t sample_raw(const float* logits, size_t count) { return sampler_.sample(logits, count); }

 private:
  llm::Sampler sampler_;
};

class PyGenerator {
 public:
  PyGenerator(const std::string& dir, size_t threads, const std::string& isa, size_t max_context,
              size_t prefill_chunk) {
    llm::GeneratorOptions o;
    o.threads = threads;
    o.isa = isa;
    o.max_context = max_context;
    o.prefill_chunk = prefill_chunk;
    gen_ = without_gil([&] { return llm::Generator::from_dir(dir, o); });
  }

  std::vector<int32_t> encode_prompt(const std::string& prompt, bool chat) const {
    return guarded([&] { return gen_->encode_prompt(prompt, chat); });
  }
  void feed(const std::vector<int32_t>& ids) {
    without_gil([&] {
      gen_->feed(ids.data(), ids.size());
      return 0;
    });
  }
  void reset() { gen_->reset(); }
  void truncate(size_t count) {
    guarded([&] {
      gen_->truncate(count);
      return 0;
    });
  }
  py::array_t<float> logits() const {
    const float* l = guarded([&] { return gen_->logits(); });
    py::array_t<float> out(static_cast<py::ssize_t>(gen_->vocab_size()));
    std::memcpy(out.mutable_data(), l, gen_->vocab_size() * sizeof(float));
    return out;
  }
  // Samples from the last logits without copying them out.
  int32_t sample(PySampler& sampler) {
    return guarded([&] { return sampler.sample_raw(gen_->logits(), gen_->vocab_size()); });
  }
  py::dict info() const {
    py::dict d;
    const llm::GenerationConfig& c = gen_->config();
    d["max_context"] = gen_->max_context();
    d["position"] = gen_->position();
    d["vocab_size"] = gen_->vocab_size();
    d["layers"] = gen_->layers();
    d["kv_cache_bytes"] = gen_->kv_cache_bytes();
    d["arena_bytes"] = gen_->session().reserved_bytes();
    d["stop_ids"] = c.stop_ids;
    d["context_length"] = c.context_length;
    d["max_new_tokens"] = c.max_new_tokens;
    d["temperature"] = c.temperature;
    d["top_p"] = c.top_p;
    d["has_chat_template"] = !c.chat_template.empty();
    return d;
  }
  size_t position() const { return gen_->position(); }
  std::map<std::string, double> stats() const { return gen_->session().stats(); }
  py::bytes token_bytes(int32_t id) const {
    return py::bytes(guarded([&] { return gen_->tokenizer().decode_bytes(&id, 1, true); }));
  }

 private:
  std::unique_ptr<llm::Generator> gen_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "sparsedge native core (private; use the sparsedge package)";
  py::module_::import("sparsedge.errors");  // fail early if the package is broken
  m.attr("__version__") = SPARSEDGE_VERSION;
  m.def("isa", [] { return std::string(isa_name(kernels().isa)); },
        "The instruction set the kernels were dispatched to at start-up.");
  m.def("supported_isas", [] {
    std::vector<std::string> out;
    for (Isa isa : {Isa::kScalar, Isa::kSse2, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon, Isa::kWasmSimd}) {
      if (isa_supported(isa)) out.push_back(isa_name(isa));
    }
    return out;
  }, "Instruction sets this build can dispatch to on this CPU.");
  m.def("operators", [] { return OpRegistry::instance().op_names(); }, "Supported operators.");
  py::class_<PySession>(m, "Session")
      .def(py::init<py::object, size_t, bool, std::string>(), py::arg("model"), py::arg("threads") = 1,
           py::arg("optimize") = true, py::arg("isa") = "")
      .def("inputs", &PySession::inputs)
      .def("outputs", &PySession::outputs)
      .def("metadata", &PySession::metadata)
      .def("nodes", &PySession::nodes)
      .def("threads", &PySession::threads)
      .def("stats", &PySession::stats)
      .def("reset_stats", &PySession::reset_stats)
      .def("run", &PySession::run, py::arg("output_names"), py::arg("feeds"));
  py::class_<PyTokenizer>(m, "Tokenizer")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def("encode", &PyTokenizer::encode, py::arg("text"))
      .def("decode", &PyTokenizer::decode, py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def("decode_bytes", &PyTokenizer::decode_bytes, py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def("vocab_size", &PyTokenizer::vocab_size)
      .def("token_to_id", &PyTokenizer::token_to_id, py::arg("token"))
      .def("is_special", &PyTokenizer::is_special, py::arg("id"));
  py::class_<PySampler>(m, "Sampler")
      .def(py::init<float, int32_t, float, uint64_t>(), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"),
           py::arg("seed"))
      .def("sample", &PySampler::sample, py::arg("logits"));
  py::class_<PyGenerator>(m, "Generator")
      .def(py::init<const std::string&, size_t, const std::string&, size_t, size_t>(), py::arg("model_dir"),
           py::arg("threads") = 1, py::arg("isa") = "", py::arg("max_context") = 0, py::arg("prefill_chunk") = 256)
      .def("encode_prompt", &PyGenerator::encode_prompt, py::arg("prompt"), py::arg("chat") = false)
      .def("feed", &PyGenerator::feed, py::arg("ids"))
      .def("reset", &PyGenerator::reset)
      .def("truncate", &PyGenerator::truncate, py::arg("count"))
      .def("logits", &PyGenerator::logits)
      .def("sample", &PyGenerator::sample, py::arg("sampler"))
      .def("position", &PyGenerator::position)
      .def("token_bytes", &PyGenerator::token_bytes, py::arg("id"))
      .def("stats", &PyGenerator::stats)
      .def("info", &PyGenerator::info);
}
