/*
 * sparsedge.h: the embedded C API of sparsedge (C99, callable from C++).
 *
 * A thin face over the C++ core (sde::Session in cpp/src/core/session.h); it
 * converts and never re-implements model logic. docs/C_API.md has a usage
 * example.
 *
 * Conventions (STYLE.md, convention 7):
 *  - Every call that can fail returns an sde_status; results come back through
 *    out parameters, which are written only when the call returns SDE_OK.
 *  - Handles (sde_model, sde_session, sde_generator) are opaque; each create has a destroy.
 *    Destroying NULL is a no-op.
 *  - Nothing aborts or throws across this API: every C++ exception, including
 *    std::bad_alloc, becomes a status. A NULL handle or a NULL required pointer
 *    is SDE_INVALID_ARGUMENT.
 *  - The message of the most recent failure is retrievable as text with
 *    sde_last_error_message().
 *  - Lifetimes of borrowed pointers are stated at each function.
 *
 * Use of a destroyed handle is detected on a best-effort basis: the library
 * keeps a registry of live handles and a call with a handle that is not in it
 * returns SDE_INVALID_ARGUMENT without touching the handle's memory. This is
 * not a guarantee: if the address has since been reused by a new handle of the
 * same kind, the call goes to that new handle. Never destroy a handle while
 * another thread is using it.
 *
 * Threads: every function may be called from any thread. A model is
 * immutable once loaded and may be shared by threads creating sessions. Calls
 * on one session are serialised (concurrent runs wait for each other); use one
 * session per thread for parallel inference.
 */
#ifndef SPARSEDGE_H_
#define SPARSEDGE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ----------------------------------------------------------- */

/* The version of this header; sde_get_version() gives the library's. */
#define SDE_VERSION_MAJOR 0
#define SDE_VERSION_MINOR 1
#define SDE_VERSION_PATCH 0

/* ---- Status codes ------------------------------------------------------ */

/* Same numbers as sde::StatusCode (cpp/src/core/error.h) and the exception
 * classes of runtime/sparsedge/errors.py; the three are kept in step. */
typedef enum sde_status {
  SDE_OK = 0,
  SDE_INVALID_ARGUMENT = 1, /* NULL pointer, wrong input name/shape/dtype,
                               wrong buffer size, unknown option value,
                               destroyed handle */
  SDE_INVALID_MODEL = 2,    /* malformed, truncated or inconsistent model */
  SDE_UNSUPPORTED = 3,      /* valid model using an op/dtype/attribute that
                               sparsedge lacks */
  SDE_FILE_NOT_FOUND = 4,   /* model or external-data file missing */
  SDE_OUT_OF_MEMORY = 5,
  SDE_INTERNAL = 6
} sde_status;

/* "SDE_OK", "SDE_INVALID_ARGUMENT", ...; "SDE_UNKNOWN_STATUS" for other
 * values. The string is static. */
const char* sde_status_string(sde_status status);

/* The message of the most recent failed call on the calling thread, or "" if
 * the most recent call succeeded. Thread-local. The pointer stays valid until
 * the next sparsedge call on this thread (other than sde_last_error_message,
 * sde_status_string, sde_dtype_size and sde_version_string); copy it to keep
 * it. Never NULL. */
const char* sde_last_error_message(void);

/* The library's version; any of the pointers may be NULL. */
sde_status sde_get_version(int* major, int* minor, int* patch);
/* "0.1.0": a static string. */
const char* sde_version_string(void);

/* ---- Element types ----------------------------------------------------- */

/* ONNX TensorProto.DataType numbers. */
typedef enum sde_dtype {
  SDE_DTYPE_UNDEFINED = 0,
  SDE_DTYPE_FLOAT32 = 1,
  SDE_DTYPE_UINT8 = 2,
  SDE_DTYPE_INT8 = 3,
  SDE_DTYPE_UINT16 = 4,
  SDE_DTYPE_INT16 = 5,
  SDE_DTYPE_INT32 = 6,
  SDE_DTYPE_INT64 = 7,
  SDE_DTYPE_BOOL = 9, /* one byte per element, 0 or 1 */
  SDE_DTYPE_FLOAT16 = 10,
  SDE_DTYPE_FLOAT64 = 11,
  SDE_DTYPE_UINT32 = 12,
  SDE_DTYPE_UINT64 = 13
} sde_dtype;

/* Bytes per element; 0 for SDE_DTYPE_UNDEFINED and values not listed above. */
size_t sde_dtype_size(sde_dtype dtype);

/* ---- Models ------------------------------------------------------------ */

/* A loaded model: the ONNX file has been read and its wire format, tensors
 * and external data checked (SDE_INVALID_MODEL, SDE_FILE_NOT_FOUND,
 * SDE_UNSUPPORTED for unknown tensor types). Whether every operator is
 * supported and the graph is consistent is checked when a session is created
 * from it, because the core compiles a model (operator lookup, constant
 * folding, fusions) only as part of building a session. A model is immutable
 * and may create any number of sessions; it may be destroyed while they are
 * alive (each session holds its own compiled copy). */
typedef struct sde_model sde_model;

/* Loads a model from a file. `path` is borrowed for the call only. The file
 * may be memory-mapped and is then kept mapped until the model and every
 * session created from it are destroyed; do not modify the file meanwhile.
 * External-data files are resolved relative to the model's folder. */
sde_status sde_model_load_file(const char* path, sde_model** out_model);

/* Loads a model from memory. The bytes are copied: `data` is borrowed for the
 * call only and may be freed as soon as this returns. Models with external
 * data cannot be loaded from memory (SDE_INVALID_ARGUMENT). */
sde_status sde_model_load_memory(const void* data, size_t size, sde_model** out_model);

/* Destroys a model; NULL is a no-op. Sessions created from it stay valid. */
void sde_model_destroy(sde_model* model);

/* ---- Sessions ---------------------------------------------------------- */

/* Options for sde_session_create. Always initialise with
 * sde_session_options_init(), then set fields: `struct_size` lets later
 * versions of the library add fields at the end while still accepting
 * structs compiled against this header. */
typedef struct sde_session_options {
  size_t struct_size; /* set by sde_session_options_init */
  size_t threads;     /* worker threads, 1 to 256; default 1 */
  const char* isa;    /* NULL or "" = best for this CPU (default); else one of
                         "scalar", "sse2", "avx2", "avx512f", "neon",
                         "wasmsimd" (tests, bisecting). Borrowed for the
                         sde_session_create call only. */
  int optimize;       /* nonzero (default): constant folding and fusions;
                         0 only for debugging */
} sde_session_options;

/* Sets `struct_size` and the defaults. */
sde_status sde_session_options_init(sde_session_options* options);

/* A compiled model ready to run, with its own memory and thread pool. */
typedef struct sde_session sde_session;

/* Compiles `model` into a new session. `options` may be NULL (defaults) and
 * is borrowed for the call only. `model` is borrowed for the call only: the
 * session keeps what it needs. */
sde_status sde_session_create(const sde_model* model, const sde_session_options* options,
                              sde_session** out_session);

/* Destroys a session; NULL is a no-op. Pointers obtained from the session
 * (names) become invalid. */
void sde_session_destroy(sde_session* session);

/* ---- Introspection ----------------------------------------------------- */

/* The graph inputs that must be fed (initializers excluded) and the outputs,
 * in model order. Names are borrowed: valid until the session is destroyed.
 * Ranks are -1 when the model declares no shape; dims are -1 for symbolic or
 * unknown dimensions. `dims` must have room for `capacity` >= rank values
 * (otherwise SDE_INVALID_ARGUMENT). An index out of range is
 * SDE_INVALID_ARGUMENT. */
sde_status sde_session_get_input_count(const sde_session* session, size_t* out_count);
sde_status sde_session_get_input_name(const sde_session* session, size_t index, const char** out_name);
sde_status sde_session_get_input_dtype(const sde_session* session, size_t index, sde_dtype* out_dtype);
sde_status sde_session_get_input_rank(const sde_session* session, size_t index, int64_t* out_rank);
sde_status sde_session_get_input_dims(const sde_session* session, size_t index, int64_t* dims,
                                      size_t capacity);

sde_status sde_session_get_output_count(const sde_session* session, size_t* out_count);
sde_status sde_session_get_output_name(const sde_session* session, size_t index, const char** out_name);
sde_status sde_session_get_output_dtype(const sde_session* session, size_t index, sde_dtype* out_dtype);
sde_status sde_session_get_output_rank(const sde_session* session, size_t index, int64_t* out_rank);
sde_status sde_session_get_output_dims(const sde_session* session, size_t index, int64_t* dims,
                                       size_t capacity);

/* ---- Running ----------------------------------------------------------- */

/* A tensor in caller-owned memory, dense and row-major (C order).
 * As an input: every field is read; `dims` (may be NULL when rank is 0) and
 *   `data` (may be NULL when the tensor has no elements) are borrowed for the
 *   sde_session_run call only and never written. `size_bytes` must equal
 *   product(dims) * sde_dtype_size(dtype).
 * As an output: `name` selects the model output, `dtype` must equal its
 *   element type, `data` receives the values and `size_bytes` must equal the
 *   size of the result, else SDE_INVALID_ARGUMENT with the needed size in the
 *   message. `dims` and `rank` are ignored; the result's shape is available
 *   from sde_session_get_result_shape after the run. `data` is borrowed for
 *   the call only. */
typedef struct sde_tensor {
  const char* name;
  sde_dtype dtype;
  const int64_t* dims;
  size_t rank;
  void* data;
  size_t size_bytes;
} sde_tensor;

/* Runs the model on `inputs` (every model input exactly once, by name) and
 * writes the requested outputs (any subset of the model's outputs, by name)
 * into the caller's buffers. `n_outputs` may be 0 (then `outputs` may be
 * NULL): the results are only kept in the session, for
 * sde_session_get_result_shape / sde_session_copy_result, which is how to
 * handle outputs whose shape depends on the input shapes.
 *
 * Names, dtypes and input shapes are checked before any work is done. Output
 * buffer sizes are checked after the model has run (the result shapes are
 * known only then); if any is wrong, no output buffer is written and the
 * results can still be read with the two functions below. On any failure the
 * output buffers are left untouched. */
sde_status sde_session_run(sde_session* session, const sde_tensor* inputs, size_t n_inputs,
                           sde_tensor* outputs, size_t n_outputs);

/* The shape of output `index` (model order) produced by the most recent
 * successful sde_session_run on this session. Writes the rank to *out_rank
 * and, if `dims` is non-NULL, the dims (needs `capacity` >= rank; to size the
 * array, call first with dims = NULL). SDE_INVALID_ARGUMENT if the session has
 * not run successfully since it was created or since a failed run. */
sde_status sde_session_get_result_shape(sde_session* session, size_t index, int64_t* dims,
                                        size_t capacity, size_t* out_rank);

/* Copies output `index` of the most recent successful run into `data`;
 * `size_bytes` must equal the result's size (SDE_INVALID_ARGUMENT giving the
 * needed size otherwise). `data` is borrowed for the call only. */
sde_status sde_session_copy_result(sde_session* session, size_t index, void* data, size_t size_bytes);

/* ---- Text generation --------------------------------------------------- */

/* An LLM decoder directory loaded for generation: DIR/model.onnx (+ its
 * external data), DIR/tokenizer.json and, optionally,
 * DIR/generation_config.json (stop tokens, chat template, context length), as
 * `sparsedge models build smollm2` and `sparsedge export-llm` write them. The
 * tokenizer, the KV cache (allocated once, max_context positions), chunked
 * prefill, sampling and stop tokens all run inside the library. Calls on one
 * generator are serialised. */
typedef struct sde_generator sde_generator;

/* Options for sde_generator_create; initialise with
 * sde_generator_options_init() (see sde_session_options for struct_size). */
typedef struct sde_generator_options {
  size_t struct_size;   /* set by sde_generator_options_init */
  size_t threads;       /* 1 to 256; default 1 */
  const char* isa;      /* as sde_session_options.isa; borrowed for the call */
  size_t max_context;   /* KV cache positions; 0 (default) = min(the model's
                           context length, 2048) */
  size_t prefill_chunk; /* prompt tokens per model run; default 256 */
} sde_generator_options;

sde_status sde_generator_options_init(sde_generator_options* options);

/* Loads a decoder directory. `model_dir` and `options` (may be NULL) are
 * borrowed for the call only. SDE_FILE_NOT_FOUND for a missing directory or
 * file, SDE_INVALID_MODEL for a model that is not a decoder with input_ids,
 * position_ids, past_key_<i>/past_value_<i> inputs and logits,
 * present_key_<i>/present_value_<i> outputs, or a malformed
 * generation_config.json. */
sde_status sde_generator_create(const char* model_dir, const sde_generator_options* options,
                                sde_generator** out_generator);

/* Destroys a generator; NULL is a no-op. */
void sde_generator_destroy(sde_generator* generator);

/* Sampling: temperature 0 is greedy (default); top_k 0 and top_p 1 disable
 * those filters. Out-of-range values (temperature < 0 or not finite, top_k <
 * 0, top_p outside (0, 1]) are SDE_INVALID_ARGUMENT. The seed makes draws
 * reproducible on every platform. */
typedef struct sde_sampling_options {
  size_t struct_size; /* set by sde_sampling_options_init */
  float temperature;
  int32_t top_k;
  float top_p;
  uint64_t seed;
} sde_sampling_options;

sde_status sde_sampling_options_init(sde_sampling_options* options);

/* Called once per generated token, in order, with the token's bytes (special
 * tokens give none; a multi-byte UTF-8 character may be split across calls).
 * `bytes` is valid during the call only. Return 0 to go on, nonzero to stop. */
typedef int (*sde_token_callback)(void* user_data, int32_t token_id, const char* bytes, size_t size);

/* Generates a continuation of `prompt` (UTF-8; with `chat` nonzero, the
 * model's ChatML chat template is applied for one user turn). Stops at a stop
 * token from generation_config.json (not reported), after `max_new_tokens`,
 * when the callback returns nonzero, or when the KV cache is full. `sampling`
 * may be NULL (greedy); `callback` may be NULL; `out_count` (may be NULL)
 * receives the number of tokens generated. An empty prompt, or one longer
 * than max_context, is SDE_INVALID_ARGUMENT. If the callback has already been
 * called when an error occurs, the tokens it saw stand. */
sde_status sde_generator_generate(sde_generator* generator, const char* prompt, int chat,
                                  size_t max_new_tokens, const sde_sampling_options* sampling,
                                  sde_token_callback callback, void* user_data, size_t* out_count);

/* The token ids of `text` (no chat template, no BOS). Writes the count to
 * *out_count and, if `ids` is non-NULL, the ids (needs `capacity` >= count,
 * else SDE_INVALID_ARGUMENT; call with ids = NULL to size the array). */
sde_status sde_generator_tokenize(sde_generator* generator, const char* text, int32_t* ids,
                                  size_t capacity, size_t* out_count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SPARSEDGE_H_ */
