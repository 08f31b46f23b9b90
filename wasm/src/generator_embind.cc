// The WebAssembly face of sde::llm::Generator: a decoder directory (written
// by the JS wrapper into the module's in-memory file system) -> tokenizer,
// preallocated KV cache, chunked prefill, seeded sampling and stop tokens,
// all in the core. It only converts types and errors (guarded.h).
//
// Generation is driven one token at a time (start(), then next() per token)
// so that the JS wrapper can hand each piece to the page and yield to the
// event loop in between; the steps are those of Generator::generate (and of
// the Python face): sample from the last logits, stop on a stop token (not
// emitted), feed the emitted token back unless the cache is full.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "guarded.h"
#include "llm/generator.h"
#include "llm/sampling.h"

namespace {

using emscripten::val;
using sde_wasm::guarded;
using sde_wasm::LastError;

// What next() returns besides a token id.
constexpr int kStopToken = -1;
constexpr int kContextFull = -2;
constexpr int kFailed = -3;  // see errorCode()/errorMessage()

std::vector<int32_t> int_list(const val& v) {
  std::vector<int32_t> out;
  const unsigned n = v["length"].as<unsigned>();
  out.reserve(n);
  for (unsigned i = 0; i < n; ++i) out.push_back(v[i].as<int32_t>());
  return out;
}

val int32_array(const std::vector<int32_t>& ids) {
  return val::global("Int32Array").new_(emscripten::typed_memory_view(ids.size(), ids.data()));
}

class WasmGenerator {
 public:
  WasmGenerator(std::string dir, size_t threads, std::string isa, size_t max_context, size_t prefill_chunk) {
    sde::llm::GeneratorOptions options;
    options.threads = threads;
    options.isa = std::move(isa);
    options.max_context = max_context;
    options.prefill_chunk = prefill_chunk;
    guarded(error_, [&] { gen_ = sde::llm::Generator::from_dir(dir, options); });
  }

  // 0 (and "") after a successful call, else the sde::StatusCode and message.
  int error_code() const { return error_.code; }
  std::string error_message() const { return error_.message; }

  val info() const {
    const sde::llm::GenerationConfig& c = gen_->config();
    val d = val::object();
    d.set("maxContext", double(gen_->max_context()));
    d.set("vocabSize", double(gen_->vocab_size()));
    d.set("layers", double(gen_->layers()));
    d.set("kvCacheBytes", double(gen_->kv_cache_bytes()));
    d.set("arenaBytes", double(gen_->session().reserved_bytes()));
    d.set("stopIds", int32_array(c.stop_ids));
    d.set("contextLength", double(c.context_length));
    d.set("maxNewTokens", double(c.max_new_tokens));
    d.set("temperature", c.temperature);
    d.set("topP", c.top_p);
    d.set("hasChatTemplate", !c.chat_template.empty());
    return d;
  }

  size_t position() const { return gen_->position(); }

  // Int32Array of the prompt's ids, or null on error.
  val encode(std::string prompt, bool chat) {
    std::vector<int32_t> ids;
    if (!guarded(error_, [&] { ids = gen_->encode_prompt(prompt, chat); })) return val::null();
    return int32_array(ids);
  }

  // The bytes a token decodes to (special tokens: none), a fresh Uint8Array; null on error.
  val token_bytes(int32_t id) {
    std::string bytes;
    if (!guarded(error_, [&] { bytes = gen_->tokenizer().decode_bytes(&id, 1, true); })) return val::null();
    return val::global("Uint8Array").new_(emscripten::typed_memory_view(
        bytes.size(), reinterpret_cast<const uint8_t*>(bytes.data())));
  }

  // Text of `ids` (invalid UTF-8 -> U+FFFD), or null on error.
  val decode(val ids, bool skip_special_tokens) {
    std::vector<int32_t> list = int_list(ids);
    std::string text;
    if (!guarded(error_, [&] { text = gen_->tokenizer().decode(list.data(), list.size(), skip_special_tokens); })) {
      return val::null();
    }
    return val(text);
  }

  // Empties the cache, feeds the prompt and sets up the sampler; stop_ids
  // null = the model's (generation_config.json). False on error.
  bool start(val prompt, float temperature, int32_t top_k, float top_p, uint32_t seed_lo, uint32_t seed_hi,
             val stop_ids) {
    std::vector<int32_t> ids = int_list(prompt);
    return guarded(error_, [&] {
      sampler_.reset();
      pending_ = -1;
      sde::llm::SamplingOptions so;
      so.temperature = temperature;
      so.top_k = top_k;
      so.top_p = top_p;
      so.seed = (uint64_t(seed_hi) << 32) | seed_lo;
      auto sampler = std::make_unique<sde::llm::Sampler>(so);  // validates
      if (ids.empty()) sde::fail(sde::StatusCode::kInvalidArgument, "the prompt is empty: give at least one token");
      if (ids.size() > gen_->max_context()) {
        sde::fail(sde::StatusCode::kInvalidArgument, "the prompt has ", ids.size(), " tokens but the context holds ",
                  gen_->max_context(), " (pass a larger maxContext, up to the model's context length, or shorten it)");
      }
      stop_ids_ = stop_ids.isNull() || stop_ids.isUndefined() ? gen_->config().stop_ids : int_list(stop_ids);
      gen_->reset();
      gen_->feed(ids.data(), ids.size());
      sampler_ = std::move(sampler);
    });
  }

  // The next token id (feeding the previous one first), kStopToken,
  // kContextFull or kFailed.
  int next() {
    int result = kFailed;
    guarded(error_, [&] {
      if (!sampler_) sde::fail(sde::StatusCode::kInvalidArgument, "next() before start()");
      if (pending_ >= 0) {
        if (gen_->position() >= gen_->max_context()) {
          result = kContextFull;
          return;
        }
        const int32_t id = pending_;
        pending_ = -1;
        gen_->feed(&id, 1);
      }
      const int32_t id = sampler_->sample(gen_->logits(), gen_->vocab_size());
      if (sde::llm::is_stop_token(id, stop_ids_)) {
        result = kStopToken;
        return;
      }
      pending_ = id;
      result = id;
    });
    if (error_.code != 0) sampler_.reset();
    return result;
  }

  void reset() {
    gen_->reset();
    sampler_.reset();
    pending_ = -1;
  }

 private:
  std::unique_ptr<sde::llm::Generator> gen_;
  std::unique_ptr<sde::llm::Sampler> sampler_;
  std::vector<int32_t> stop_ids_;
  int32_t pending_ = -1;  // emitted, not yet fed
  LastError error_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(sparsedge_generator) {
  emscripten::class_<WasmGenerator>("WasmGenerator")
      .constructor<std::string, size_t, std::string, size_t, size_t>()
      .function("info", &WasmGenerator::info)
      .function("position", &WasmGenerator::position)
      .function("encode", &WasmGenerator::encode)
      .function("tokenBytes", &WasmGenerator::token_bytes)
      .function("decode", &WasmGenerator::decode)
      .function("start", &WasmGenerator::start)
      .function("next", &WasmGenerator::next)
      .function("reset", &WasmGenerator::reset)
      .function("errorCode", &WasmGenerator::error_code)
      .function("errorMessage", &WasmGenerator::error_message);
}
