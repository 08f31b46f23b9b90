/*
 * classify: runs an image classifier through the sparsedge C API and prints
 * the top-5 classes.
 *
 *   classify MODEL.onnx IMAGE [--threads N] [--isa NAME]
 *
 * IMAGE is the preprocessed input tensor (float32, the model's input shape,
 * e.g. [1, 3, 224, 224]): either raw little-endian float32 values or a .npy
 * file. Exits nonzero with the library's last error message on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsedge.h"

#define TOP_K 5
#define MAX_RANK 8

static int report(const char* what, sde_status status) {
  fprintf(stderr, "classify: %s failed: %s: %s\n", what, sde_status_string(status), sde_last_error_message());
  return 1;
}

#define CHECK(call)                                   \
  do {                                                \
    sde_status status_ = (call);                      \
    if (status_ != SDE_OK) {                          \
      exit_code = report(#call, status_);             \
      goto done;                                      \
    }                                                 \
  } while (0)

static void* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  void* data = NULL;
  long n;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    data = malloc(n > 0 ? (size_t)n : 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    }
    *size = (size_t)n;
  }
  fclose(f);
  return data;
}

/* A minimal .npy reader: version 1-3, little-endian float32, C order. Sets
 * *values to the array data inside `file` and *count to its element count.
 * Returns NULL on success, else what is wrong. */
static const char* parse_npy(const unsigned char* file, size_t size, const float** values, size_t* count) {
  size_t header_len, offset, n = 1;
  const char *header, *shape;
  char* end;
  if (size < 10 || memcmp(file, "\x93NUMPY", 6) != 0) return "not a .npy file";
  if (file[6] == 1) {
    header_len = (size_t)file[8] | ((size_t)file[9] << 8);
    offset = 10;
  } else {
    if (size < 12) return "truncated .npy header";
    header_len = (size_t)file[8] | ((size_t)file[9] << 8) | ((size_t)file[10] << 16) | ((size_t)file[11] << 24);
    offset = 12;
  }
  if (header_len > size - offset) return "truncated .npy header";
  header = (const char*)file + offset;
  /* The header is a Python dict literal; look for the three keys. */
  if (!strstr(header, "'descr': '<f4'")) return ".npy data is not little-endian float32 ('<f4')";
  if (!strstr(header, "'fortran_order': False")) return ".npy data is in Fortran order";
  shape = strstr(header, "'shape': (");
  if (!shape || shape > header + header_len) return ".npy header has no shape";
  shape += strlen("'shape': (");
  while (*shape != ')') {
    unsigned long d = strtoul(shape, &end, 10);
    if (end == shape) return ".npy shape is malformed";
    n *= d;
    shape = end;
    while (*shape == ',' || *shape == ' ') ++shape;
  }
  offset += header_len;
  if (size - offset != n * sizeof(float)) return ".npy data size does not match its shape";
  *values = (const float*)(file + offset);
  *count = n;
  return NULL;
}

int main(int argc, char** argv) {
  int exit_code = 0, i, k;
  sde_model* model = NULL;
  sde_session* session = NULL;
  sde_session_options options;
  void* file = NULL;
  size_t file_size = 0, count = 0, n_classes, result_rank, out_count;
  const float* pixels = NULL;
  float* scores = NULL;
  const char *input_name, *output_name;
  sde_dtype input_dtype, output_dtype;
  int64_t rank, dims[MAX_RANK], result_dims[MAX_RANK];
  size_t expected = 1;
  sde_tensor input;
  int top[TOP_K];

  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.onnx IMAGE(.npy|raw float32) [--threads N] [--isa NAME]\n", argv[0]);
    return 2;
  }
  CHECK(sde_session_options_init(&options));
  for (i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--threads") == 0) options.threads = (size_t)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--isa") == 0) options.isa = argv[i + 1];
    else {
      fprintf(stderr, "classify: unknown option %s\n", argv[i]);
      return 2;
    }
  }

  CHECK(sde_model_load_file(argv[1], &model));
  CHECK(sde_session_create(model, &options, &session));
  sde_model_destroy(model); /* the session keeps what it needs */
  model = NULL;

  /* The input: its declared shape, symbolic dimensions (batch) taken as 1. */
  CHECK(sde_session_get_input_name(session, 0, &input_name));
  CHECK(sde_session_get_input_dtype(session, 0, &input_dtype));
  CHECK(sde_session_get_input_rank(session, 0, &rank));
  if (input_dtype != SDE_DTYPE_FLOAT32) {
    fprintf(stderr, "classify: input '%s' is not float32\n", input_name);
    exit_code = 1;
    goto done;
  }
  if (rank < 0) { /* no declared shape: assume an ImageNet NCHW input */
    rank = 4;
    dims[0] = 1, dims[1] = 3, dims[2] = 224, dims[3] = 224;
  } else if (rank > MAX_RANK) {
    fprintf(stderr, "classify: input rank %ld is too large\n", (long)rank);
    exit_code = 1;
    goto done;
  } else {
    CHECK(sde_session_get_input_dims(session, 0, dims, MAX_RANK));
  }
  for (i = 0; i < rank; ++i) {
    if (dims[i] < 0) dims[i] = 1;
    expected *= (size_t)dims[i];
  }

  file = read_file(argv[2], &file_size);
  if (!file) {
    fprintf(stderr, "classify: cannot read %s\n", argv[2]);
    exit_code = 1;
    goto done;
  }
  if (file_size >= 6 && memcmp(file, "\x93NUMPY", 6) == 0) {
    const char* problem = parse_npy((const unsigned char*)file, file_size, &pixels, &count);
    if (problem) {
      fprintf(stderr, "classify: %s: %s\n", argv[2], problem);
      exit_code = 1;
      goto done;
    }
  } else {
    pixels = (const float*)file;
    count = file_size / sizeof(float);
  }
  if (count != expected) {
    fprintf(stderr, "classify: %s holds %lu values; input '%s' needs %lu\n", argv[2], (unsigned long)count,
            input_name, (unsigned long)expected);
    exit_code = 1;
    goto done;
  }

  input.name = input_name;
  input.dtype = SDE_DTYPE_FLOAT32;
  input.dims = dims;
  input.rank = (size_t)rank;
  input.data = (void*)pixels; /* read, never written */
  input.size_bytes = count * sizeof(float);

  /* The output's shape may depend on the input's, so run first and then
   * copy the result out (sde_session_run can also write straight into
   * buffers when the sizes are known beforehand). */
  CHECK(sde_session_get_output_count(session, &out_count));
  CHECK(sde_session_get_output_name(session, 0, &output_name));
  CHECK(sde_session_get_output_dtype(session, 0, &output_dtype));
  if (output_dtype != SDE_DTYPE_FLOAT32) {
    fprintf(stderr, "classify: output '%s' is not float32\n", output_name);
    exit_code = 1;
    goto done;
  }
  CHECK(sde_session_run(session, &input, 1, NULL, 0));
  CHECK(sde_session_get_result_shape(session, 0, result_dims, MAX_RANK, &result_rank));
  n_classes = 1;
  for (i = 0; i < (int)result_rank; ++i) n_classes *= (size_t)result_dims[i];
  if (n_classes == 0) {
    fprintf(stderr, "classify: output '%s' is empty\n", output_name);
    exit_code = 1;
    goto done;
  }
  scores = (float*)malloc(n_classes * sizeof(float));
  if (!scores) {
    fprintf(stderr, "classify: out of memory\n");
    exit_code = 1;
    goto done;
  }
  CHECK(sde_session_copy_result(session, 0, scores, n_classes * sizeof(float)));

  /* Top-k by repeated selection (k is small). */
  for (k = 0; k < TOP_K && (size_t)k < n_classes; ++k) {
    size_t c, best = (size_t)-1;
    for (c = 0; c < n_classes; ++c) {
      int taken = 0, j;
      for (j = 0; j < k; ++j) taken |= (size_t)top[j] == c;
      if (!taken && (best == (size_t)-1 || scores[c] > scores[best])) best = c;
    }
    top[k] = (int)best;
  }
  printf("model %s: input '%s', output '%s' (%lu classes, %lu outputs)\n", argv[1], input_name, output_name,
         (unsigned long)n_classes, (unsigned long)out_count);
  for (i = 0; i < k; ++i) printf("top-%d class %d score %.9g\n", i + 1, top[i], scores[top[i]]);

done:
  free(scores);
  free(file);
  sde_session_destroy(session);
  sde_model_destroy(model);
  return exit_code;
}
