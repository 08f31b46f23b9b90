/* generate: streams a continuation of a prompt with an LLM decoder directory,
 * using only the C API (cpp/include/sparsedge.h).
 *
 *   generate DIR PROMPT [--chat] [--max-new-tokens N] [--temperature T]
 *            [--top-k K] [--top-p P] [--seed S] [--threads N]
 *
 * Exit status 0 on success; 2 with the library's message on stderr otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparsedge.h"

static int fail(const char* what, sde_status status) {
  fprintf(stderr, "generate: %s failed: %s: %s\n", what, sde_status_string(status), sde_last_error_message());
  return 2;
}

static int on_token(void* user_data, int32_t token_id, const char* bytes, size_t size) {
  (void)user_data;
  (void)token_id;
  fwrite(bytes, 1, size, stdout);
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR PROMPT [--chat] [--max-new-tokens N] [--temperature T] [--top-k K] "
                    "[--top-p P] [--seed S] [--threads N]\n", argv[0]);
    return 2;
  }
  sde_generator_options options;
  sde_sampling_options sampling;
  sde_generator_options_init(&options);
  sde_sampling_options_init(&sampling);
  int chat = 0;
  size_t max_new = 64;
  for (int i = 3; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--chat") == 0) { chat = 1; continue; }
    if (v == NULL) { fprintf(stderr, "generate: %s needs a value\n", a); return 2; }
    if (strcmp(a, "--max-new-tokens") == 0) max_new = (size_t)strtoull(v, NULL, 10);
    else if (strcmp(a, "--temperature") == 0) sampling.temperature = strtof(v, NULL);
    else if (strcmp(a, "--top-k") == 0) sampling.top_k = (int32_t)strtol(v, NULL, 10);
    else if (strcmp(a, "--top-p") == 0) sampling.top_p = strtof(v, NULL);
    else if (strcmp(a, "--seed") == 0) sampling.seed = strtoull(v, NULL, 10);
    else if (strcmp(a, "--threads") == 0) options.threads = (size_t)strtoull(v, NULL, 10);
    else { fprintf(stderr, "generate: unknown option %s\n", a); return 2; }
    ++i;
  }
  sde_generator* gen = NULL;
  sde_status st = sde_generator_create(argv[1], &options, &gen);
  if (st != SDE_OK) return fail("sde_generator_create", st);
  size_t count = 0;
  st = sde_generator_generate(gen, argv[2], chat, max_new, &sampling, on_token, NULL, &count);
  printf("\n");
  sde_generator_destroy(gen);
  if (st != SDE_OK) return fail("sde_generator_generate", st);
  fprintf(stderr, "[%zu tokens]\n", count);
  return 0;
}
