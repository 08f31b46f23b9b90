// The C API (cpp/include/sparsedge.h) over sde::Session: converts C structs to
// core tensors and core exceptions to statuses. No model logic lives here.
#include "sparsedge.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/model.h"
#include "core/session.h"
#include "llm/generator.h"
#include "core/tensor.h"

using sde::DType;
using sde::StatusCode;

// The C enums mirror the core's; a renumbering on either side fails here.
#define SDE_SAME(c, cpp) static_assert(static_cast<int>(c) == static_cast<int>(cpp), #c " != " #cpp)
SDE_SAME(SDE_OK, StatusCode::kOk);
SDE_SAME(SDE_INVALID_ARGUMENT, StatusCode::kInvalidArgument);
SDE_SAME(SDE_INVALID_MODEL, StatusCode::kInvalidModel);
SDE_SAME(SDE_UNSUPPORTED, StatusCode::kUnsupported);
SDE_SAME(SDE_FILE_NOT_FOUND, StatusCode::kFileNotFound);
SDE_SAME(SDE_OUT_OF_MEMORY, StatusCode::kOutOfMemory);
SDE_SAME(SDE_INTERNAL, StatusCode::kInternal);
SDE_SAME(SDE_DTYPE_UNDEFINED, DType::kUndefined);
SDE_SAME(SDE_DTYPE_FLOAT32, DType::kFloat32);
SDE_SAME(SDE_DTYPE_UINT8, DType::kUInt8);
SDE_SAME(SDE_DTYPE_INT8, DType::kInt8);
SDE_SAME(SDE_DTYPE_UINT16, DType::kUInt16);
SDE_SAME(SDE_DTYPE_INT16, DType::kInt16);
SDE_SAME(SDE_DTYPE_INT32, DType::kInt32);
SDE_SAME(SDE_DTYPE_INT64, DType::kInt64);
SDE_SAME(SDE_DTYPE_BOOL, DType::kBool);
SDE_SAME(SDE_DTYPE_FLOAT16, DType::kFloat16);
SDE_SAME(SDE_DTYPE_FLOAT64, DType::kFloat64);
SDE_SAME(SDE_DTYPE_UINT32, DType::kUInt32);
SDE_SAME(SDE_DTYPE_UINT64, DType::kUInt64);
#undef SDE_SAME

// The header's version must be the project's (CMake passes it in).
#if defined(SDE_PROJECT_VERSION_MAJOR)
static_assert(SDE_VERSION_MAJOR == SDE_PROJECT_VERSION_MAJOR &&
                  SDE_VERSION_MINOR == SDE_PROJECT_VERSION_MINOR &&
                  SDE_VERSION_PATCH == SDE_PROJECT_VERSION_PATCH,
              "SDE_VERSION_* in sparsedge.h differs from project(VERSION) in CMakeLists.txt");
#endif

struct sde_model {
  sde::Model model;  // parsed; compiled per session (Session takes a Model by value)
};

struct sde_generator {
  std::unique_ptr<sde::llm::Generator> generator;
  std::mutex mutex;
};

struct sde_session {
  std::unique_ptr<sde::Session> session;
  // Serialises run and result access: `results` are views into the session's
  // arena, valid until its next run.
  std::mutex mutex;
  std::vector<sde::Tensor> results;  // every model output of the last successful run
  bool has_results = false;
};

namespace {

#define SDE_STR2(x) #x
#define SDE_STR(x) SDE_STR2(x)
constexpr const char* kVersionString =
    SDE_STR(SDE_VERSION_MAJOR) "." SDE_STR(SDE_VERSION_MINOR) "." SDE_STR(SDE_VERSION_PATCH);

// ---- Last error (thread-local) ----

thread_local std::string t_message;
thread_local const char* t_message_ptr = "";

void clear_error() {
  t_message.clear();
  t_message_ptr = "";
}

sde_status record_error(sde_status status, const char* function, const char* what) {
  try {
    t_message = std::string(function) + ": " + what;
    t_message_ptr = t_message.c_str();
  } catch (...) {
    t_message_ptr = "out of memory (the error message could not be stored)";
  }
  return status;
}

// Runs `body` (returning void), turning every exception into a status.
template <typename F>
sde_status guarded(const char* function, F&& body) {
  clear_error();
  try {
    body();
    return SDE_OK;
  } catch (const sde::Error& e) {
    return record_error(static_cast<sde_status>(e.code()), function, e.what());
  } catch (const std::bad_alloc&) {
    return record_error(SDE_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::exception& e) {
    return record_error(SDE_INTERNAL, function, e.what());
  } catch (...) {
    return record_error(SDE_INTERNAL, function, "unknown exception");
  }
}

// ---- Live handles (best-effort detection of destroyed handles) ----

// Membership is tested without dereferencing the handle, so a destroyed
// handle is recognised without reading freed memory. Leaked on purpose: a
// handle destroyed from a static destructor must still find it.
class Registry {
 public:
  void add(const void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.insert(p);
  }
  bool remove(const void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.erase(p) > 0;
  }
  bool contains(const void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.count(p) > 0;
  }

 private:
  std::mutex mutex_;
  std::unordered_set<const void*> live_;
};

Registry& live_models() {
  static Registry* r = new Registry;
  return *r;
}
Registry& live_sessions() {
  static Registry* r = new Registry;
  return *r;
}
Registry& live_generators() {
  static Registry* r = new Registry;
  return *r;
}

sde_generator& live(sde_generator* g) {
  if (g == nullptr) sde::fail(StatusCode::kInvalidArgument, "generator is NULL");
  if (!live_generators().contains(g)) {
    sde::fail(StatusCode::kInvalidArgument, "generator is not a live sde_generator (destroyed, or never created)");
  }
  return *g;
}

void require(const void* p, const char* what) {
  if (p == nullptr) sde::fail(StatusCode::kInvalidArgument, what, " is NULL");
}

const sde_model& live(const sde_model* m) {
  require(m, "model");
  if (!live_models().contains(m)) {
    sde::fail(StatusCode::kInvalidArgument, "model is not a live sde_model (destroyed, or never created)");
  }
  return *m;
}

sde_session& live(const sde_session* s) {
  require(s, "session");
  if (!live_sessions().contains(s)) {
    sde::fail(StatusCode::kInvalidArgument,
              "session is not a live sde_session (destroyed, or never created)");
  }
  return *const_cast<sde_session*>(s);
}

// ---- Conversions ----

DType to_dtype(sde_dtype t, const char* what) {
  const int v = static_cast<int>(t);
  if (v == 0 || !sde::dtype_known(v) || sde::dtype_size(static_cast<DType>(v)) == 0) {
    sde::fail(StatusCode::kInvalidArgument, what, " has an unknown dtype (", v, ")");
  }
  return static_cast<DType>(v);
}

std::string describe(const sde::Tensor& t) {
  return std::string(sde::dtype_name(t.dtype)) + " " + sde::shape_str(t.shape);
}

const sde::ValueInfo& value_info(const std::vector<sde::ValueInfo>& infos, size_t index,
                                 const char* kind) {
  if (index >= infos.size()) {
    sde::fail(StatusCode::kInvalidArgument, kind, " index ", index, " is out of range (the model has ",
              infos.size(), " ", kind, "s)");
  }
  return infos[index];
}

int64_t declared_rank(const sde::ValueInfo& vi) {
  return vi.has_shape ? static_cast<int64_t>(vi.dims.size()) : -1;
}

void declared_dims(const sde::ValueInfo& vi, int64_t* dims, size_t capacity) {
  if (!vi.has_shape) sde::fail(StatusCode::kInvalidArgument, "'", vi.name, "' has no declared shape (rank -1)");
  if (capacity < vi.dims.size()) {
    sde::fail(StatusCode::kInvalidArgument, "dims has room for ", capacity, " values but '", vi.name,
              "' has rank ", vi.dims.size());
  }
  if (!vi.dims.empty()) require(dims, "dims");
  for (size_t d = 0; d < vi.dims.size(); ++d) dims[d] = vi.dims[d].value >= 0 ? vi.dims[d].value : -1;
}

// An input as a core view of the caller's memory (read, never written).
sde::Tensor input_view(const sde_tensor& in, size_t i) {
  const std::string label = "inputs[" + std::to_string(i) + "]";
  require(in.name, (label + ".name").c_str());
  const std::string what = "input '" + std::string(in.name) + "'";
  DType dtype = to_dtype(in.dtype, what.c_str());
  if (in.rank > 0) require(in.dims, (what + " dims").c_str());
  sde::Shape shape(in.dims, in.dims + in.rank);
  size_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) sde::fail(StatusCode::kInvalidArgument, what, " has a negative dimension ", sde::shape_str(shape));
    const size_t ud = static_cast<size_t>(d);
    if (ud != 0 && numel > SIZE_MAX / ud) sde::fail(StatusCode::kInvalidArgument, what, " is too large ", sde::shape_str(shape));
    numel *= ud;
  }
  const size_t elem = sde::dtype_size(dtype);
  if (numel > SIZE_MAX / elem) sde::fail(StatusCode::kInvalidArgument, what, " is too large ", sde::shape_str(shape));
  if (in.size_bytes != numel * elem) {
    sde::fail(StatusCode::kInvalidArgument, what, " (", sde::dtype_name(dtype), " ", sde::shape_str(shape),
              ") needs size_bytes = ", numel * elem, " but has ", in.size_bytes);
  }
  if (numel > 0) require(in.data, (what + " data").c_str());
  return sde::Tensor::view(dtype, shape, in.data);
}

size_t output_index(const sde::Session& session, const char* name) {
  const auto& outs = session.outputs();
  for (size_t j = 0; j < outs.size(); ++j) {
    if (outs[j].name == name) return j;
  }
  std::string known;
  for (const auto& vi : outs) known += (known.empty() ? "'" : ", '") + vi.name + "'";
  sde::fail(StatusCode::kInvalidArgument, "unknown output '", name, "'; the model's outputs are: ", known);
}

const sde::Tensor& last_result(const sde_session& s, size_t index) {
  if (!s.has_results) {
    sde::fail(StatusCode::kInvalidArgument, "the session has no results (no successful sde_session_run yet)");
  }
  value_info(s.session->outputs(), index, "output");
  return s.results[index];
}

void check_result_buffer(const sde::Tensor& r, const std::string& what, const void* data, size_t size_bytes) {
  const size_t needed = r.bytes();
  if (size_bytes != needed) {
    sde::fail(StatusCode::kInvalidArgument, what, " (", describe(r), ") needs a buffer of ", needed,
              " bytes but size_bytes is ", size_bytes);
  }
  if (needed > 0) require(data, (what + " data").c_str());
}

template <typename Count>
sde_status get_count(const char* fn, const sde_session* session, size_t* out, Count count) {
  return guarded(fn, [&] {
    sde_session& s = live(session);
    require(out, "out_count");
    *out = count(*s.session).size();
  });
}

}  // namespace

extern "C" {

const char* sde_status_string(sde_status status) {
  switch (status) {
    case SDE_OK: return "SDE_OK";
    case SDE_INVALID_ARGUMENT: return "SDE_INVALID_ARGUMENT";
    case SDE_INVALID_MODEL: return "SDE_INVALID_MODEL";
    case SDE_UNSUPPORTED: return "SDE_UNSUPPORTED";
    case SDE_FILE_NOT_FOUND: return "SDE_FILE_NOT_FOUND";
    case SDE_OUT_OF_MEMORY: return "SDE_OUT_OF_MEMORY";
    case SDE_INTERNAL: return "SDE_INTERNAL";
  }
  return "SDE_UNKNOWN_STATUS";
}

const char* sde_last_error_message(void) { return t_message_ptr; }

sde_status sde_get_version(int* major, int* minor, int* patch) {
  clear_error();
  if (major) *major = SDE_VERSION_MAJOR;
  if (minor) *minor = SDE_VERSION_MINOR;
  if (patch) *patch = SDE_VERSION_PATCH;
  return SDE_OK;
}

const char* sde_version_string(void) { return kVersionString; }

size_t sde_dtype_size(sde_dtype dtype) {
  const int v = static_cast<int>(dtype);
  return sde::dtype_known(v) ? sde::dtype_size(static_cast<DType>(v)) : 0;
}

// ---- Models ----

sde_status sde_model_load_file(const char* path, sde_model** out_model) {
  return guarded("sde_model_load_file", [&] {
    require(out_model, "out_model");
    require(path, "path");
    auto m = std::make_unique<sde_model>();
    m->model = sde::load_model_file(path);
    live_models().add(m.get());
    *out_model = m.release();
  });
}

sde_status sde_model_load_memory(const void* data, size_t size, sde_model** out_model) {
  return guarded("sde_model_load_memory", [&] {
    require(out_model, "out_model");
    require(data, "data");
    if (size == 0) sde::fail(StatusCode::kInvalidModel, "the model is empty (size 0)");
    auto m = std::make_unique<sde_model>();
    m->model = sde::load_model_bytes(static_cast<const uint8_t*>(data), size);
    live_models().add(m.get());
    *out_model = m.release();
  });
}

void sde_model_destroy(sde_model* model) {
  if (model == nullptr || !live_models().remove(model)) return;
  delete model;
}

// ---- Sessions ----

sde_status sde_session_options_init(sde_session_options* options) {
  return guarded("sde_session_options_init", [&] {
    require(options, "options");
    std::memset(options, 0, sizeof(*options));
    options->struct_size = sizeof(*options);
    options->threads = 1;
    options->isa = nullptr;
    options->optimize = 1;
  });
}

sde_status sde_session_create(const sde_model* model, const sde_session_options* options,
                              sde_session** out_session) {
  return guarded("sde_session_create", [&] {
    require(out_session, "out_session");
    const sde_model& m = live(model);
    sde::SessionOptions opts;
    if (options != nullptr) {
      // Read only the fields the caller's struct has (it may come from an
      // older header); fields added later go at the end.
#define SDE_HAS(field) (options->struct_size >= offsetof(sde_session_options, field) + sizeof(options->field))
      if (!SDE_HAS(threads)) {
        sde::fail(StatusCode::kInvalidArgument, "options->struct_size is ", options->struct_size,
                  "; initialise options with sde_session_options_init");
      }
      opts.threads = options->threads;
      if (SDE_HAS(isa) && options->isa != nullptr) opts.isa = options->isa;
      if (SDE_HAS(optimize)) opts.optimize = options->optimize != 0;
#undef SDE_HAS
    }
    auto s = std::make_unique<sde_session>();
    s->session = std::make_unique<sde::Session>(sde::Model(m.model), opts);
    live_sessions().add(s.get());
    *out_session = s.release();
  });
}

void sde_session_destroy(sde_session* session) {
  if (session == nullptr || !live_sessions().remove(session)) return;
  delete session;
}

// ---- Introspection ----

sde_status sde_session_get_input_count(const sde_session* session, size_t* out_count) {
  return get_count("sde_session_get_input_count", session, out_count,
                   [](const sde::Session& s) -> const std::vector<sde::ValueInfo>& { return s.inputs(); });
}

sde_status sde_session_get_output_count(const sde_session* session, size_t* out_count) {
  return get_count("sde_session_get_output_count", session, out_count,
                   [](const sde::Session& s) -> const std::vector<sde::ValueInfo>& { return s.outputs(); });
}

#define SDE_VALUE_GETTERS(kind, list)                                                                 \
  sde_status sde_session_get_##kind##_name(const sde_session* session, size_t index,                  \
                                           const char** out_name) {                                   \
    return guarded("sde_session_get_" #kind "_name", [&] {                                            \
      sde_session& s = live(session);                                                                 \
      require(out_name, "out_name");                                                                  \
      *out_name = value_info(s.session->list(), index, #kind).name.c_str();                           \
    });                                                                                               \
  }                                                                                                   \
  sde_status sde_session_get_##kind##_dtype(const sde_session* session, size_t index,                 \
                                            sde_dtype* out_dtype) {                                   \
    return guarded("sde_session_get_" #kind "_dtype", [&] {                                           \
      sde_session& s = live(session);                                                                 \
      require(out_dtype, "out_dtype");                                                                \
      *out_dtype = static_cast<sde_dtype>(value_info(s.session->list(), index, #kind).dtype);         \
    });                                                                                               \
  }                                                                                                   \
  sde_status sde_session_get_##kind##_rank(const sde_session* session, size_t index,                  \
                                           int64_t* out_rank) {                                       \
    return guarded("sde_session_get_" #kind "_rank", [&] {                                            \
      sde_session& s = live(session);                                                                 \
      require(out_rank, "out_rank");                                                                  \
      *out_rank = declared_rank(value_info(s.session->list(), index, #kind));                         \
    });                                                                                               \
  }                                                                                                   \
  sde_status sde_session_get_##kind##_dims(const sde_session* session, size_t index, int64_t* dims,   \
                                           size_t capacity) {                                         \
    return guarded("sde_session_get_" #kind "_dims", [&] {                                            \
      sde_session& s = live(session);                                                                 \
      declared_dims(value_info(s.session->list(), index, #kind), dims, capacity);                     \
    });                                                                                               \
  }

SDE_VALUE_GETTERS(input, inputs)
SDE_VALUE_GETTERS(output, outputs)
#undef SDE_VALUE_GETTERS

// ---- Running ----

sde_status sde_session_run(sde_session* session, const sde_tensor* inputs, size_t n_inputs,
                           sde_tensor* outputs, size_t n_outputs) {
  return guarded("sde_session_run", [&] {
    sde_session& s = live(session);
    if (n_inputs > 0) require(inputs, "inputs");
    if (n_outputs > 0) require(outputs, "outputs");
    std::lock_guard<std::mutex> lock(s.mutex);
    s.results.clear();  // views into the arena that this run may reallocate
    s.has_results = false;

    std::vector<std::pair<std::string, sde::Tensor>> feeds;
    feeds.reserve(n_inputs);
    for (size_t i = 0; i < n_inputs; ++i) {
      sde::Tensor t = input_view(inputs[i], i);
      feeds.emplace_back(inputs[i].name, std::move(t));
    }
    // Cheap checks on the requested outputs before the work.
    std::vector<size_t> wanted(n_outputs);
    for (size_t k = 0; k < n_outputs; ++k) {
      require(outputs[k].name, ("outputs[" + std::to_string(k) + "].name").c_str());
      wanted[k] = output_index(*s.session, outputs[k].name);
      const std::string what = "output '" + std::string(outputs[k].name) + "'";
      DType dtype = to_dtype(outputs[k].dtype, what.c_str());
      DType declared = s.session->outputs()[wanted[k]].dtype;
      if (declared != DType::kUndefined && dtype != declared) {
        sde::fail(StatusCode::kInvalidArgument, what, " has element type ", sde::dtype_name(declared),
                  " but the buffer is declared ", sde::dtype_name(dtype));
      }
    }

    std::vector<sde::Tensor> results = s.session->run(feeds, {});
    s.results = std::move(results);
    s.has_results = true;

    // Check every buffer before writing any, so a failure leaves them all untouched.
    for (size_t k = 0; k < n_outputs; ++k) {
      const sde::Tensor& r = s.results[wanted[k]];
      const std::string what = "output '" + std::string(outputs[k].name) + "'";
      if (static_cast<int>(r.dtype) != static_cast<int>(outputs[k].dtype)) {
        sde::fail(StatusCode::kInvalidArgument, what, " has element type ", sde::dtype_name(r.dtype),
                  " but the buffer is declared ", sde::dtype_name(static_cast<DType>(outputs[k].dtype)));
      }
      check_result_buffer(r, what, outputs[k].data, outputs[k].size_bytes);
    }
    for (size_t k = 0; k < n_outputs; ++k) {
      const sde::Tensor& r = s.results[wanted[k]];
      if (r.bytes() > 0) std::memcpy(outputs[k].data, r.data, r.bytes());
    }
  });
}

sde_status sde_session_get_result_shape(sde_session* session, size_t index, int64_t* dims,
                                        size_t capacity, size_t* out_rank) {
  return guarded("sde_session_get_result_shape", [&] {
    sde_session& s = live(session);
    require(out_rank, "out_rank");
    std::lock_guard<std::mutex> lock(s.mutex);
    const sde::Tensor& r = last_result(s, index);
    if (dims != nullptr) {
      if (capacity < r.shape.size()) {
        sde::fail(StatusCode::kInvalidArgument, "dims has room for ", capacity, " values but output ", index,
                  " has rank ", r.shape.size());
      }
      for (size_t d = 0; d < r.shape.size(); ++d) dims[d] = r.shape[d];
    }
    *out_rank = r.shape.size();
  });
}

sde_status sde_session_copy_result(sde_session* session, size_t index, void* data, size_t size_bytes) {
  return guarded("sde_session_copy_result", [&] {
    sde_session& s = live(session);
    std::lock_guard<std::mutex> lock(s.mutex);
    const sde::Tensor& r = last_result(s, index);
    check_result_buffer(r, "output " + std::to_string(index) + " '" + s.session->outputs()[index].name + "'",
                        data, size_bytes);
    if (r.bytes() > 0) std::memcpy(data, r.data, r.bytes());
  });
}

}  // extern "C"

// ---- Text generation ----

sde_status sde_generator_options_init(sde_generator_options* options) {
  return guarded("sde_generator_options_init", [&] {
    require(options, "options");
    std::memset(options, 0, sizeof(*options));
    options->struct_size = sizeof(*options);
    options->threads = 1;
    options->prefill_chunk = 256;
  });
}

sde_status sde_generator_create(const char* model_dir, const sde_generator_options* options,
                                sde_generator** out_generator) {
  return guarded("sde_generator_create", [&] {
    require(model_dir, "model_dir");
    require(out_generator, "out_generator");
    sde::llm::GeneratorOptions opts;
    if (options != nullptr) {
#define SDE_HAS(field) (options->struct_size >= offsetof(sde_generator_options, field) + sizeof(options->field))
      if (!SDE_HAS(threads)) {
        sde::fail(StatusCode::kInvalidArgument, "options->struct_size is ", options->struct_size,
                  "; initialise options with sde_generator_options_init");
      }
      opts.threads = options->threads;
      if (SDE_HAS(isa) && options->isa != nullptr) opts.isa = options->isa;
      if (SDE_HAS(max_context)) opts.max_context = options->max_context;
      if (SDE_HAS(prefill_chunk)) opts.prefill_chunk = options->prefill_chunk;
#undef SDE_HAS
    }
    auto g = std::make_unique<sde_generator>();
    g->generator = sde::llm::Generator::from_dir(model_dir, opts);
    live_generators().add(g.get());
    *out_generator = g.release();
  });
}

void sde_generator_destroy(sde_generator* generator) {
  if (generator == nullptr || !live_generators().remove(generator)) return;
  delete generator;
}

sde_status sde_sampling_options_init(sde_sampling_options* options) {
  return guarded("sde_sampling_options_init", [&] {
    require(options, "options");
    std::memset(options, 0, sizeof(*options));
    options->struct_size = sizeof(*options);
    options->temperature = 0.0f;
    options->top_k = 0;
    options->top_p = 1.0f;
    options->seed = 0;
  });
}

sde_status sde_generator_generate(sde_generator* generator, const char* prompt, int chat,
                                  size_t max_new_tokens, const sde_sampling_options* sampling,
                                  sde_token_callback callback, void* user_data, size_t* out_count) {
  return guarded("sde_generator_generate", [&] {
    sde_generator& g = live(generator);
    require(prompt, "prompt");
    sde::llm::SamplingOptions so;
    so.temperature = 0.0f;
    if (sampling != nullptr) {
#define SDE_HAS(field) (sampling->struct_size >= offsetof(sde_sampling_options, field) + sizeof(sampling->field))
      if (!SDE_HAS(temperature)) {
        sde::fail(StatusCode::kInvalidArgument, "sampling->struct_size is ", sampling->struct_size,
                  "; initialise it with sde_sampling_options_init");
      }
      so.temperature = sampling->temperature;
      if (SDE_HAS(top_k)) so.top_k = sampling->top_k;
      if (SDE_HAS(top_p)) so.top_p = sampling->top_p;
      if (SDE_HAS(seed)) so.seed = sampling->seed;
#undef SDE_HAS
    }
    std::lock_guard<std::mutex> lock(g.mutex);
    sde::llm::Sampler sampler(so);  // validates
    sde::llm::Generator& gen = *g.generator;
    const std::vector<int32_t> ids = gen.encode_prompt(prompt, chat != 0);
    std::string bytes;
    std::vector<int32_t> out = gen.generate(ids, max_new_tokens, sampler, [&](int32_t id) {
      if (callback == nullptr) return true;
      bytes = gen.tokenizer().decode_bytes(&id, 1, true);
      return callback(user_data, id, bytes.data(), bytes.size()) == 0;
    });
    if (out_count != nullptr) *out_count = out.size();
  });
}

sde_status sde_generator_tokenize(sde_generator* generator, const char* text, int32_t* ids, size_t capacity,
                                  size_t* out_count) {
  return guarded("sde_generator_tokenize", [&] {
    sde_generator& g = live(generator);
    require(text, "text");
    require(out_count, "out_count");
    std::lock_guard<std::mutex> lock(g.mutex);
    const std::vector<int32_t> tokens = g.generator->tokenizer().encode(text);
    if (ids != nullptr) {
      if (capacity < tokens.size()) {
        sde::fail(StatusCode::kInvalidArgument, "ids has room for ", capacity, " tokens; ", tokens.size(), " needed");
      }
      std::copy(tokens.begin(), tokens.end(), ids);
    }
    *out_count = tokens.size();
  });
}
