// Text generation over a decoder directory (model.onnx + tokenizer.json +
// generation_config.json, as `sparsedge models build smollm2` and
// `sparsedge export-llm` write it): a KV cache preallocated once for the
// whole context, chunked prefill, one decode step per token, sampling and
// stop tokens. Every face (Python, C, WebAssembly) wraps this class.
//
// Memory: the cache is 2 x layers x max_context x kv_heads x head_dim floats,
// allocated in the constructor; the session plans once for the largest chunk
// over a full cache (Session::reserve) with the cache bound as the present_*
// outputs, so neither prefill nor decode allocates or re-plans per token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/session.h"
#include "llm/sampling.h"
#include "llm/tokenizer.h"

namespace sde::llm {

// generation_config.json (all fields optional).
struct GenerationConfig {
  std::vector<int32_t> stop_ids;  // stop_token_ids, else eos_token_id
  int32_t bos_id = -1;
  bool add_bos = false;
  size_t context_length = 0;  // the model's trained context (0 = unknown)
  size_t max_new_tokens = 256;
  float temperature = 0.0f;  // the model's suggestion when do_sample; 0 = greedy
  float top_p = 1.0f;
  std::string chat_template;

  // Throws Error(kInvalidModel) for malformed JSON or wrongly typed fields.
  static GenerationConfig from_json(const std::string& text);
};

struct GeneratorOptions {
  size_t threads = 1;
  std::string isa;           // "" = best available
  size_t max_context = 0;    // KV cache positions; 0 = min(context_length, 2048)
  size_t prefill_chunk = 256;  // prompt tokens per model run (larger chunks: faster GEMMs, bigger logits buffer)
};

class Generator {
 public:
  // Loads DIR/model.onnx, DIR/tokenizer.json and DIR/generation_config.json
  // (optional). Missing files -> kFileNotFound; a model that is not a
  // decoder with input_ids/position_ids/past_*/present_* -> kInvalidModel.
  static std::unique_ptr<Generator> from_dir(const std::string& dir, const GeneratorOptions& options);
  Generator(std::unique_ptr<Session> session, std::unique_ptr<Tokenizer> tokenizer, GenerationConfig config,
            const GeneratorOptions& options);

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const GenerationConfig& config() const { return config_; }
  Session& session() { return *session_; }
  size_t max_context() const { return max_context_; }
  size_t position() const { return position_; }  // tokens in the KV cache
  size_t vocab_size() const { return vocab_; }
  size_t layers() const { return layers_; }
  size_t kv_cache_bytes() const;

  // The prompt's ids: the chat template applied when `chat` (ChatML templates
  // such as SmolLM2's: the template's default system message, then the user
  // turn and the assistant header), BOS prepended when the config asks.
  std::vector<int32_t> encode_prompt(const std::string& prompt, bool chat) const;

  // Empties the KV cache.
  void reset();
  // Keeps the first `count` positions of the cache (count <= position()) and
  // drops the rest, e.g. to decode again from the same prompt. The logits are
  // gone until the next feed.
  void truncate(size_t count);
  // Runs `ids` through the model after the tokens already in the cache
  // (chunks of prefill_chunk), keeping the logits of the last one. Empty ids
  // or more tokens than the cache has room for -> kInvalidArgument, and the
  // cache is left as it was.
  void feed(const int32_t* ids, size_t count);
  // Logits after the last fed token (vocab_size() floats); error before any feed.
  const float* logits() const;

  // Feeds the prompt (after reset()), then samples up to max_new_tokens
  // tokens, feeding each back, until a stop token (not emitted) or
  // `on_token` returns false. Returns the generated ids. The prompt plus the
  // new tokens must fit max_context(): a prompt that does not fit is an
  // error; generation stops early when the cache is full.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, size_t max_new_tokens, Sampler& sampler,
                                const std::function<bool(int32_t)>& on_token = nullptr);

 private:
  // One graph run over `count` new tokens; with `logits` false only the KV
  // cache is computed (the LM head is skipped: Session runs what is asked).
  void run_chunk(const int32_t* ids, size_t count, bool logits);

  std::unique_ptr<Session> session_;
  std::unique_ptr<Tokenizer> tokenizer_;
  GenerationConfig config_;
  size_t max_context_ = 0, chunk_ = 0, layers_ = 0, kv_heads_ = 0, head_dim_ = 0, vocab_ = 0;
  size_t position_ = 0;
  bool has_logits_ = false;
  std::vector<std::string> past_names_, present_names_;  // key_0, value_0, key_1, ...
  std::vector<std::shared_ptr<void>> cache_;            // one [max_context, kv_heads, head_dim] per name
  std::vector<float> logits_;
  std::vector<int64_t> ids_, positions_;  // per-chunk input scratch
};

}  // namespace sde::llm
