/*
 * Tests of the C API (cpp/include/sparsedge.h), written in C99 against the
 * header alone: every misuse gets its own check (and must return a status
 * with a message, never crash), plus runs of a tiny embedded model
 * (capi_test_model.h, from make_capi_test_model.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_model.h"
#include "sparsedge.h"

static int g_failures = 0;
static const char* g_test = "";

#define EXPECT(cond)                                                                  \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "FAIL %s (%s:%d): %s\n", g_test, __FILE__, __LINE__, #cond);    \
      ++g_failures;                                                                   \
    }                                                                                 \
  } while (0)

/* A call must return `expected`; failures must leave a message. */
#define EXPECT_STATUS(call, expected)                                                                      \
  do {                                                                                                     \
    sde_status got_ = (call);                                                                              \
    if (got_ != (expected)) {                                                                              \
      fprintf(stderr, "FAIL %s (%s:%d): %s returned %s, expected %s; message: %s\n", g_test, __FILE__,    \
              __LINE__, #call, sde_status_string(got_), sde_status_string(expected),                       \
              sde_last_error_message());                                                                   \
      ++g_failures;                                                                                        \
    } else if ((expected) != SDE_OK && sde_last_error_message()[0] == '\0') {                              \
      fprintf(stderr, "FAIL %s (%s:%d): %s failed without a message\n", g_test, __FILE__, __LINE__, #call); \
      ++g_failures;                                                                                        \
    }                                                                                                      \
  } while (0)

/* The last error message must mention `text`. */
#define EXPECT_MESSAGE_HAS(text)                                                                             \
  do {                                                                                                       \
    if (!strstr(sde_last_error_message(), (text))) {                                                         \
      fprintf(stderr, "FAIL %s (%s:%d): message \"%s\" lacks \"%s\"\n", g_test, __FILE__, __LINE__,         \
              sde_last_error_message(), (text));                                                             \
      ++g_failures;                                                                                          \
    }                                                                                                        \
  } while (0)

/* ---- Fixtures ---- */

enum { N = 3, C = 4 };
static const int64_t kDims[2] = {N, C};
static const float kBias[C] = {1.f, -2.f, 3.f, -4.f};

typedef struct {
  float x[N * C], w[N * C];
  sde_tensor in[2];
} Inputs;

static sde_tensor tensor(const char* name, sde_dtype dtype, const int64_t* dims, size_t rank, void* data,
                         size_t size_bytes) {
  sde_tensor t;
  t.name = name;
  t.dtype = dtype;
  t.dims = dims;
  t.rank = rank;
  t.data = data;
  t.size_bytes = size_bytes;
  return t;
}

static void make_inputs(Inputs* in) {
  int i;
  for (i = 0; i < N * C; ++i) {
    in->x[i] = (float)i * 0.5f - 2.f;
    in->w[i] = (float)(i % 5) - 1.f;
  }
  in->in[0] = tensor("x", SDE_DTYPE_FLOAT32, kDims, 2, in->x, sizeof(in->x));
  in->in[1] = tensor("w", SDE_DTYPE_FLOAT32, kDims, 2, in->w, sizeof(in->w));
}

static sde_model* load_model(void) {
  sde_model* model = NULL;
  EXPECT_STATUS(sde_model_load_memory(kCapiTestModel, sizeof(kCapiTestModel), &model), SDE_OK);
  return model;
}

static sde_session* make_session(void) {
  sde_model* model = load_model();
  sde_session* session = NULL;
  if (!model) return NULL;
  EXPECT_STATUS(sde_session_create(model, NULL, &session), SDE_OK);
  sde_model_destroy(model); /* sessions outlive their model */
  return session;
}

/* ---- Library-level calls ---- */

static void test_version(void) {
  int major = -1, minor = -1, patch = -1;
  char expected[32];
  g_test = "version";
  EXPECT_STATUS(sde_get_version(&major, &minor, &patch), SDE_OK);
  EXPECT(major == SDE_VERSION_MAJOR && minor == SDE_VERSION_MINOR && patch == SDE_VERSION_PATCH);
  EXPECT_STATUS(sde_get_version(NULL, NULL, NULL), SDE_OK);
  snprintf(expected, sizeof(expected), "%d.%d.%d", major, minor, patch);
  EXPECT(strcmp(sde_version_string(), expected) == 0);
}

static void test_status_strings(void) {
  g_test = "status_strings";
  EXPECT(strcmp(sde_status_string(SDE_OK), "SDE_OK") == 0);
  EXPECT(strcmp(sde_status_string(SDE_INVALID_ARGUMENT), "SDE_INVALID_ARGUMENT") == 0);
  EXPECT(strcmp(sde_status_string(SDE_INVALID_MODEL), "SDE_INVALID_MODEL") == 0);
  EXPECT(strcmp(sde_status_string(SDE_UNSUPPORTED), "SDE_UNSUPPORTED") == 0);
  EXPECT(strcmp(sde_status_string(SDE_FILE_NOT_FOUND), "SDE_FILE_NOT_FOUND") == 0);
  EXPECT(strcmp(sde_status_string(SDE_OUT_OF_MEMORY), "SDE_OUT_OF_MEMORY") == 0);
  EXPECT(strcmp(sde_status_string(SDE_INTERNAL), "SDE_INTERNAL") == 0);
  EXPECT(strcmp(sde_status_string((sde_status)42), "SDE_UNKNOWN_STATUS") == 0);
  EXPECT(SDE_OK == 0 && SDE_INVALID_ARGUMENT == 1 && SDE_INVALID_MODEL == 2 && SDE_UNSUPPORTED == 3 &&
         SDE_FILE_NOT_FOUND == 4 && SDE_OUT_OF_MEMORY == 5 && SDE_INTERNAL == 6);
}

static void test_dtype_sizes(void) {
  g_test = "dtype_sizes";
  EXPECT(sde_dtype_size(SDE_DTYPE_FLOAT32) == 4);
  EXPECT(sde_dtype_size(SDE_DTYPE_INT64) == 8);
  EXPECT(sde_dtype_size(SDE_DTYPE_BOOL) == 1);
  EXPECT(sde_dtype_size(SDE_DTYPE_FLOAT16) == 2);
  EXPECT(sde_dtype_size(SDE_DTYPE_UNDEFINED) == 0);
  EXPECT(sde_dtype_size((sde_dtype)8) == 0); /* ONNX string: not a tensor type here */
  EXPECT(sde_dtype_size((sde_dtype)-3) == 0);
  EXPECT(sde_dtype_size((sde_dtype)1000) == 0);
}

static void test_error_message_is_per_call(void) {
  sde_model* model = NULL;
  g_test = "error_message_is_per_call";
  EXPECT_STATUS(sde_model_load_file(NULL, &model), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("sde_model_load_file");
  EXPECT_MESSAGE_HAS("path is NULL");
  model = load_model();
  EXPECT(sde_last_error_message()[0] == '\0'); /* a success clears it */
  sde_model_destroy(model);
}

/* ---- Models ---- */

static void test_load_null_arguments(void) {
  sde_model* model = NULL;
  g_test = "load_null_arguments";
  EXPECT_STATUS(sde_model_load_file(NULL, &model), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_model_load_file("model.onnx", NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_model_load_memory(NULL, sizeof(kCapiTestModel), &model), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_model_load_memory(kCapiTestModel, sizeof(kCapiTestModel), NULL), SDE_INVALID_ARGUMENT);
  EXPECT(model == NULL);
  sde_model_destroy(NULL); /* no-op */
  sde_session_destroy(NULL);
}

static void test_missing_file(void) {
  sde_model* model = NULL;
  g_test = "missing_file";
  EXPECT_STATUS(sde_model_load_file("/nonexistent/sparsedge/model.onnx", &model), SDE_FILE_NOT_FOUND);
  EXPECT_MESSAGE_HAS("/nonexistent/sparsedge/model.onnx");
  EXPECT(model == NULL);
}

static void test_empty_and_garbage_bytes(void) {
  sde_model* model = NULL;
  static const unsigned char garbage[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0x0a, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
  g_test = "empty_and_garbage_bytes";
  EXPECT_STATUS(sde_model_load_memory(kCapiTestModel, 0, &model), SDE_INVALID_MODEL);
  EXPECT_STATUS(sde_model_load_memory(garbage, sizeof(garbage), &model), SDE_INVALID_MODEL);
  EXPECT(model == NULL);
}

/* Every truncation of the model is rejected, at load or (when the cut falls
 * on a field boundary and leaves well-formed protobuf) at session creation. */
static void test_truncated_model(void) {
  size_t len;
  int rejected_at_load = 0;
  g_test = "truncated_model";
  for (len = 1; len < sizeof(kCapiTestModel); ++len) {
    sde_model* model = NULL;
    sde_session* session = NULL;
    /* A heap copy of exactly `len` bytes, so reading past it would be caught by sanitizers. */
    unsigned char* prefix = (unsigned char*)malloc(len);
    sde_status st;
    memcpy(prefix, kCapiTestModel, len);
    st = sde_model_load_memory(prefix, len, &model);
    free(prefix);
    if (st != SDE_OK) {
      EXPECT(st == SDE_INVALID_MODEL);
      EXPECT(sde_last_error_message()[0] != '\0');
      EXPECT(model == NULL);
      ++rejected_at_load;
      continue;
    }
    st = sde_session_create(model, NULL, &session);
    if (st == SDE_OK) {
      fprintf(stderr, "FAIL %s: a %lu-byte prefix of the model loaded and compiled\n", g_test, (unsigned long)len);
      ++g_failures;
    }
    EXPECT(st == SDE_INVALID_MODEL || st == SDE_UNSUPPORTED || st == SDE_OK);
    sde_session_destroy(session);
    sde_model_destroy(model);
  }
  EXPECT(rejected_at_load > 0);
  {
    sde_model* model = NULL;
    EXPECT_STATUS(sde_model_load_memory(kCapiTestModel, sizeof(kCapiTestModel) / 2, &model), SDE_INVALID_MODEL);
  }
}

/* The bytes are copied: the caller's buffer may be overwritten after loading. */
static void test_load_memory_copies(void) {
  unsigned char* bytes = (unsigned char*)malloc(sizeof(kCapiTestModel));
  sde_model* model = NULL;
  sde_session* session = NULL;
  size_t count = 0;
  g_test = "load_memory_copies";
  memcpy(bytes, kCapiTestModel, sizeof(kCapiTestModel));
  EXPECT_STATUS(sde_model_load_memory(bytes, sizeof(kCapiTestModel), &model), SDE_OK);
  memset(bytes, 0xAB, sizeof(kCapiTestModel));
  free(bytes);
  EXPECT_STATUS(sde_session_create(model, NULL, &session), SDE_OK);
  EXPECT_STATUS(sde_session_get_output_count(session, &count), SDE_OK);
  EXPECT(count == 3);
  sde_session_destroy(session);
  sde_model_destroy(model);
}

/* ---- Sessions ---- */

static void test_session_create_misuse(void) {
  sde_model* model = load_model();
  sde_session* session = NULL;
  sde_session_options options;
  g_test = "session_create_misuse";
  EXPECT_STATUS(sde_session_create(NULL, NULL, &session), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_create(model, NULL, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_options_init(NULL), SDE_INVALID_ARGUMENT);

  memset(&options, 0, sizeof(options)); /* not initialised: struct_size 0 */
  EXPECT_STATUS(sde_session_create(model, &options, &session), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("sde_session_options_init");

  EXPECT_STATUS(sde_session_options_init(&options), SDE_OK);
  EXPECT(options.struct_size == sizeof(options) && options.threads == 1 && options.isa == NULL && options.optimize);
  options.threads = 0;
  EXPECT_STATUS(sde_session_create(model, &options, &session), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("threads");

  EXPECT_STATUS(sde_session_options_init(&options), SDE_OK);
  options.isa = "not-an-isa";
  EXPECT_STATUS(sde_session_create(model, &options, &session), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("not-an-isa");
  EXPECT(session == NULL);

  EXPECT_STATUS(sde_session_options_init(&options), SDE_OK);
  options.threads = 2;
  options.isa = "scalar";
  EXPECT_STATUS(sde_session_create(model, &options, &session), SDE_OK);
  sde_session_destroy(session);
  sde_model_destroy(model);
}

static void test_introspection(void) {
  sde_session* session = make_session();
  size_t count = 0;
  const char* name = NULL;
  sde_dtype dtype = SDE_DTYPE_UNDEFINED;
  int64_t rank = 0, dims[4] = {0, 0, 0, 0};
  g_test = "introspection";
  if (!session) return;

  EXPECT_STATUS(sde_session_get_input_count(session, &count), SDE_OK);
  EXPECT(count == 2); /* the initializer b is not an input */
  EXPECT_STATUS(sde_session_get_input_name(session, 0, &name), SDE_OK);
  EXPECT(name && strcmp(name, "x") == 0);
  EXPECT_STATUS(sde_session_get_input_name(session, 1, &name), SDE_OK);
  EXPECT(name && strcmp(name, "w") == 0);
  EXPECT_STATUS(sde_session_get_input_dtype(session, 0, &dtype), SDE_OK);
  EXPECT(dtype == SDE_DTYPE_FLOAT32);
  EXPECT_STATUS(sde_session_get_input_rank(session, 0, &rank), SDE_OK);
  EXPECT(rank == 2);
  EXPECT_STATUS(sde_session_get_input_dims(session, 0, dims, 4), SDE_OK);
  EXPECT(dims[0] == -1 && dims[1] == 4); /* symbolic N is -1 */

  EXPECT_STATUS(sde_session_get_output_count(session, &count), SDE_OK);
  EXPECT(count == 3);
  EXPECT_STATUS(sde_session_get_output_name(session, 2, &name), SDE_OK);
  EXPECT(name && strcmp(name, "shape") == 0);
  EXPECT_STATUS(sde_session_get_output_dtype(session, 2, &dtype), SDE_OK);
  EXPECT(dtype == SDE_DTYPE_INT64);
  EXPECT_STATUS(sde_session_get_output_rank(session, 2, &rank), SDE_OK);
  EXPECT(rank == 1);
  EXPECT_STATUS(sde_session_get_output_dims(session, 2, dims, 1), SDE_OK);
  EXPECT(dims[0] == 2);

  /* Misuse. */
  EXPECT_STATUS(sde_session_get_input_count(NULL, &count), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_count(session, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_output_count(NULL, &count), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_output_count(session, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_name(NULL, 0, &name), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_name(session, 0, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_name(session, 2, &name), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("out of range");
  EXPECT_STATUS(sde_session_get_output_name(session, 3, &name), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_output_name(session, (size_t)-1, &name), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_dtype(session, 0, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_output_dtype(NULL, 0, &dtype), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_rank(session, 0, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_output_rank(session, 9, &rank), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_dims(session, 0, NULL, 4), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_input_dims(session, 0, dims, 1), SDE_INVALID_ARGUMENT); /* rank 2 */
  EXPECT_MESSAGE_HAS("rank 2");
  EXPECT_STATUS(sde_session_get_output_dims(NULL, 0, dims, 4), SDE_INVALID_ARGUMENT);
  sde_session_destroy(session);
}

/* ---- Runs ---- */

static void test_run(void) {
  sde_session* session = make_session();
  Inputs in;
  float x_before[N * C], w_before[N * C];
  float sum[N * C], relu[N * C], copied[N * C];
  int64_t shape[2] = {0, 0}, result_dims[4];
  size_t result_rank = 0;
  sde_tensor out[3];
  int i, exact = 1;
  g_test = "run";
  if (!session) return;
  make_inputs(&in);
  memcpy(x_before, in.x, sizeof(in.x));
  memcpy(w_before, in.w, sizeof(in.w));
  out[0] = tensor("relu", SDE_DTYPE_FLOAT32, NULL, 0, relu, sizeof(relu)); /* any order, any subset */
  out[1] = tensor("sum", SDE_DTYPE_FLOAT32, NULL, 0, sum, sizeof(sum));
  out[2] = tensor("shape", SDE_DTYPE_INT64, NULL, 0, shape, sizeof(shape));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, out, 3), SDE_OK);
  for (i = 0; i < N * C; ++i) {
    const float s = in.x[i] + in.w[i], b = s + kBias[i % C];
    exact &= sum[i] == s && relu[i] == (b > 0.f ? b : 0.f);
  }
  EXPECT(exact);
  EXPECT(shape[0] == N && shape[1] == C);
  EXPECT(memcmp(x_before, in.x, sizeof(in.x)) == 0 && memcmp(w_before, in.w, sizeof(in.w)) == 0);

  /* The results of the last run, in model order. */
  EXPECT_STATUS(sde_session_get_result_shape(session, 0, NULL, 0, &result_rank), SDE_OK);
  EXPECT(result_rank == 2);
  EXPECT_STATUS(sde_session_get_result_shape(session, 1, result_dims, 4, &result_rank), SDE_OK);
  EXPECT(result_rank == 2 && result_dims[0] == N && result_dims[1] == C);
  EXPECT_STATUS(sde_session_copy_result(session, 1, copied, sizeof(copied)), SDE_OK);
  EXPECT(memcmp(copied, relu, sizeof(relu)) == 0);
  EXPECT_STATUS(sde_session_get_result_shape(session, 1, result_dims, 1, &result_rank), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_result_shape(session, 1, result_dims, 4, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_get_result_shape(session, 3, result_dims, 4, &result_rank), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_copy_result(session, 1, copied, sizeof(copied) - 4), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("48");
  EXPECT_STATUS(sde_session_copy_result(session, 1, NULL, sizeof(copied)), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_copy_result(NULL, 1, copied, sizeof(copied)), SDE_INVALID_ARGUMENT);

  /* Another batch size: the shapes follow; no outputs requested. */
  {
    const int64_t one[2] = {1, C};
    sde_tensor in1[2];
    in1[0] = tensor("w", SDE_DTYPE_FLOAT32, one, 2, in.w, C * sizeof(float));
    in1[1] = tensor("x", SDE_DTYPE_FLOAT32, one, 2, in.x, C * sizeof(float));
    EXPECT_STATUS(sde_session_run(session, in1, 2, NULL, 0), SDE_OK);
    EXPECT_STATUS(sde_session_get_result_shape(session, 0, result_dims, 4, &result_rank), SDE_OK);
    EXPECT(result_rank == 2 && result_dims[0] == 1 && result_dims[1] == C);
    EXPECT_STATUS(sde_session_copy_result(session, 2, shape, sizeof(shape)), SDE_OK);
    EXPECT(shape[0] == 1 && shape[1] == C);
  }
  sde_session_destroy(session);
}

/* Two sessions from one model (destroyed in between) agree. */
static void test_sessions_share_a_model(void) {
  sde_model* model = load_model();
  sde_session *a = NULL, *b = NULL;
  Inputs in;
  float ra[N * C], rb[N * C];
  sde_tensor out;
  sde_session_options options;
  g_test = "sessions_share_a_model";
  if (!model) return;
  EXPECT_STATUS(sde_session_create(model, NULL, &a), SDE_OK);
  EXPECT_STATUS(sde_session_options_init(&options), SDE_OK);
  options.optimize = 0;
  EXPECT_STATUS(sde_session_create(model, &options, &b), SDE_OK);
  sde_model_destroy(model);
  make_inputs(&in);
  out = tensor("relu", SDE_DTYPE_FLOAT32, NULL, 0, ra, sizeof(ra));
  EXPECT_STATUS(sde_session_run(a, in.in, 2, &out, 1), SDE_OK);
  out.data = rb;
  EXPECT_STATUS(sde_session_run(b, in.in, 2, &out, 1), SDE_OK);
  EXPECT(memcmp(ra, rb, sizeof(ra)) == 0);
  sde_session_destroy(a);
  sde_session_destroy(b);
}

static void test_wrong_output_size(void) {
  sde_session* session = make_session();
  Inputs in;
  float small[N * C - 1], big[N * C + 1], sum[N * C];
  sde_tensor out[2];
  int i, untouched = 1;
  g_test = "wrong_output_size";
  if (!session) return;
  make_inputs(&in);
  for (i = 0; i < N * C; ++i) sum[i] = -99.f;
  out[0] = tensor("sum", SDE_DTYPE_FLOAT32, NULL, 0, sum, sizeof(sum));
  out[1] = tensor("relu", SDE_DTYPE_FLOAT32, NULL, 0, small, sizeof(small));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, out, 2), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("relu");
  EXPECT_MESSAGE_HAS("48 bytes"); /* the needed size */
  for (i = 0; i < N * C; ++i) untouched &= sum[i] == -99.f; /* no buffer written */
  EXPECT(untouched);
  out[1] = tensor("relu", SDE_DTYPE_FLOAT32, NULL, 0, big, sizeof(big));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, out, 2), SDE_INVALID_ARGUMENT);
  out[1] = tensor("relu", SDE_DTYPE_FLOAT32, NULL, 0, NULL, 48);
  EXPECT_STATUS(sde_session_run(session, in.in, 2, out, 2), SDE_INVALID_ARGUMENT);
  sde_session_destroy(session);
}

static void test_wrong_input_name(void) {
  sde_session* session = make_session();
  Inputs in;
  g_test = "wrong_input_name";
  if (!session) return;
  make_inputs(&in);
  in.in[1].name = "W";
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("unknown input 'W'");
  in.in[1].name = "x"; /* given twice */
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("twice");
  sde_session_destroy(session);
}

static void test_wrong_output_name_or_dtype(void) {
  sde_session* session = make_session();
  Inputs in;
  float buf[N * C];
  sde_tensor out;
  g_test = "wrong_output_name_or_dtype";
  if (!session) return;
  make_inputs(&in);
  out = tensor("nope", SDE_DTYPE_FLOAT32, NULL, 0, buf, sizeof(buf));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, &out, 1), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("unknown output 'nope'");
  out = tensor("sum", SDE_DTYPE_INT32, NULL, 0, buf, sizeof(buf));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, &out, 1), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("float32");
  out = tensor("sum", (sde_dtype)77, NULL, 0, buf, sizeof(buf));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, &out, 1), SDE_INVALID_ARGUMENT);
  sde_session_destroy(session);
}

static void test_wrong_input_dtype(void) {
  sde_session* session = make_session();
  Inputs in;
  g_test = "wrong_input_dtype";
  if (!session) return;
  make_inputs(&in);
  in.in[0].dtype = SDE_DTYPE_INT32; /* same byte size, wrong type */
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("int32");
  in.in[0].dtype = (sde_dtype)8; /* ONNX string */
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  in.in[0].dtype = SDE_DTYPE_UNDEFINED;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  sde_session_destroy(session);
}

static void test_wrong_input_shape(void) {
  sde_session* session = make_session();
  Inputs in;
  const int64_t wide[2] = {2, 6}, flat[1] = {N * C}, negative[2] = {-3, -4}, huge[2] = {INT64_MAX, 4};
  g_test = "wrong_input_shape";
  if (!session) return;
  make_inputs(&in);
  in.in[0].dims = wide; /* same element count, wrong shape */
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("shape");
  in.in[0].dims = flat;
  in.in[0].rank = 1;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  in.in[0].dims = negative;
  in.in[0].rank = 2;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  in.in[0].dims = huge;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  make_inputs(&in);
  in.in[0].size_bytes -= 4; /* size_bytes disagrees with the dims */
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("48");
  make_inputs(&in);
  in.in[1].dims = flat; /* the two inputs disagree on N: caught by the core's shape inference */
  in.in[1].rank = 1;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  sde_session_destroy(session);
}

static void test_missing_inputs(void) {
  sde_session* session = make_session();
  Inputs in;
  g_test = "missing_inputs";
  if (!session) return;
  make_inputs(&in);
  EXPECT_STATUS(sde_session_run(session, in.in, 1, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("missing input 'w'");
  EXPECT_STATUS(sde_session_run(session, NULL, 0, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("missing input");
  sde_session_destroy(session);
}

static void test_run_null_pointers(void) {
  sde_session* session = make_session();
  Inputs in;
  float buf[N * C];
  sde_tensor out;
  g_test = "run_null_pointers";
  if (!session) return;
  make_inputs(&in);
  EXPECT_STATUS(sde_session_run(NULL, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_run(session, NULL, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 1), SDE_INVALID_ARGUMENT);
  in.in[0].name = NULL;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("inputs[0].name is NULL");
  make_inputs(&in);
  in.in[1].data = NULL;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  make_inputs(&in);
  in.in[1].dims = NULL;
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  make_inputs(&in);
  out = tensor(NULL, SDE_DTYPE_FLOAT32, NULL, 0, buf, sizeof(buf));
  EXPECT_STATUS(sde_session_run(session, in.in, 2, &out, 1), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("outputs[0].name is NULL");
  sde_session_destroy(session);
}

static void test_results_need_a_successful_run(void) {
  sde_session* session = make_session();
  Inputs in;
  size_t rank = 0;
  float buf[N * C];
  g_test = "results_need_a_successful_run";
  if (!session) return;
  EXPECT_STATUS(sde_session_get_result_shape(session, 0, NULL, 0, &rank), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("no results");
  make_inputs(&in);
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_OK);
  EXPECT_STATUS(sde_session_get_result_shape(session, 0, NULL, 0, &rank), SDE_OK);
  EXPECT_STATUS(sde_session_run(session, in.in, 1, NULL, 0), SDE_INVALID_ARGUMENT); /* a failed run... */
  EXPECT_STATUS(sde_session_copy_result(session, 0, buf, sizeof(buf)), SDE_INVALID_ARGUMENT); /* ...drops them */
  sde_session_destroy(session);
}

/* Best-effort: the library recognises handles it has destroyed (see the header). */
static void test_destroyed_handles(void) {
  sde_model* model = load_model();
  sde_session* session = NULL;
  size_t count = 0;
  Inputs in;
  g_test = "destroyed_handles";
  if (!model) return;
  EXPECT_STATUS(sde_session_create(model, NULL, &session), SDE_OK);
  sde_session_destroy(session);
  EXPECT_STATUS(sde_session_get_input_count(session, &count), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("not a live sde_session");
  make_inputs(&in);
  EXPECT_STATUS(sde_session_run(session, in.in, 2, NULL, 0), SDE_INVALID_ARGUMENT);
  sde_session_destroy(session); /* a second destroy is recognised and ignored */

  /* A handle of the wrong kind is not a session either. */
  EXPECT_STATUS(sde_session_get_input_count((const sde_session*)(const void*)model, &count), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_session_create((const sde_model*)(const void*)&count, NULL, &session), SDE_INVALID_ARGUMENT);

  sde_model_destroy(model);
  EXPECT_STATUS(sde_session_create(model, NULL, &session), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("not a live sde_model");
  sde_model_destroy(model);
}

/* Generator misuse needs no model: NULL pointers, a missing directory, bad
 * options, destroyed handles. (Generation itself is tested from Python on
 * the real SmolLM2 decoder: tests/python/test_capi.py.) */
static void test_generator_misuse(void) {
  sde_generator* gen = NULL;
  sde_generator_options options;
  sde_sampling_options sampling;
  size_t count = 0;
  EXPECT_STATUS(sde_generator_options_init(NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_generator_options_init(&options), SDE_OK);
  EXPECT(options.threads == 1 && options.prefill_chunk == 256 && options.max_context == 0);
  EXPECT_STATUS(sde_sampling_options_init(&sampling), SDE_OK);
  EXPECT(sampling.temperature == 0.0f && sampling.top_k == 0 && sampling.top_p == 1.0f);
  EXPECT_STATUS(sde_generator_create(NULL, NULL, &gen), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("model_dir is NULL");
  EXPECT_STATUS(sde_generator_create("/nonexistent/sparsedge-dir", NULL, NULL), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_generator_create("/nonexistent/sparsedge-dir", NULL, &gen), SDE_FILE_NOT_FOUND);
  EXPECT_MESSAGE_HAS("model.onnx");
  EXPECT(gen == NULL);
  options.struct_size = 1;
  EXPECT_STATUS(sde_generator_create("/nonexistent", &options, &gen), SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("sde_generator_options_init");
  EXPECT_STATUS(sde_generator_generate(NULL, "hi", 0, 4, NULL, NULL, NULL, &count), SDE_INVALID_ARGUMENT);
  EXPECT_STATUS(sde_generator_tokenize(NULL, "hi", NULL, 0, &count), SDE_INVALID_ARGUMENT);
  /* A pointer that was never a generator is refused without being read. */
  EXPECT_STATUS(sde_generator_generate((sde_generator*)&count, "hi", 0, 4, NULL, NULL, NULL, &count),
                SDE_INVALID_ARGUMENT);
  EXPECT_MESSAGE_HAS("not a live sde_generator");
  sde_generator_destroy(NULL);
  sde_generator_destroy((sde_generator*)&count); /* not live: ignored */
}

int main(void) {
  test_version();
  test_status_strings();
  test_dtype_sizes();
  test_error_message_is_per_call();
  test_load_null_arguments();
  test_missing_file();
  test_empty_and_garbage_bytes();
  test_truncated_model();
  test_load_memory_copies();
  test_session_create_misuse();
  test_introspection();
  test_run();
  test_sessions_share_a_model();
  test_wrong_output_size();
  test_wrong_input_name();
  test_wrong_output_name_or_dtype();
  test_wrong_input_dtype();
  test_wrong_input_shape();
  test_missing_inputs();
  test_run_null_pointers();
  test_results_need_a_successful_run();
  test_destroyed_handles();
  test_generator_misuse();
  if (g_failures) {
    fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  printf("test_capi: all checks passed\n");
  return 0;
}
