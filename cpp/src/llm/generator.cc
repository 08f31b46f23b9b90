#include "llm/generator.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tensor.h"

namespace sde::llm {

using nlohmann::json;

namespace {

constexpr size_t kDefaultContext = 2048;
constexpr size_t kSplitLastRows = 64;  // a last chunk longer than this runs its final token alone

bool read_text(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

int64_t fixed_dim(const ValueInfo& vi, size_t d) {
  if (!vi.has_shape || vi.dims.size() <= d) return -1;
  return vi.dims[d].value;
}

}  // namespace

GenerationConfig GenerationConfig::from_json(const std::string& text) {
  GenerationConfig c;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(StatusCode::kInvalidModel, "malformed generation_config.json: ", e.what());
  }
  if (!j.is_object()) fail(StatusCode::kInvalidModel, "generation_config.json must hold a JSON object");
  auto bad = [](const char* field, const char* want) {
    fail(StatusCode::kInvalidModel, "generation_config.json: '", field, "' must be ", want);
  };
  auto get_int = [&](const char* field, int64_t fallback) -> int64_t {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_number_integer()) bad(field, "an integer");
    return j[field].get<int64_t>();
  };
  auto get_float = [&](const char* field, float fallback) -> float {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_number()) bad(field, "a number");
    return j[field].get<float>();
  };
  if (j.contains("stop_token_ids") && !j["stop_token_ids"].is_null()) {
    if (!j["stop_token_ids"].is_array()) bad("stop_token_ids", "a list of integers");
    for (const json& v : j["stop_token_ids"]) {
      if (!v.is_number_integer()) bad("stop_token_ids", "a list of integers");
      c.stop_ids.push_back(v.get<int32_t>());
    }
  }
  const int64_t eos = get_int("eos_token_id", -1);
  if (c.stop_ids.empty() && eos >= 0) c.stop_ids.push_back(static_cast<int32_t>(eos));
  c.bos_id = static_cast<int32_t>(get_int("bos_token_id", -1));
  if (j.contains("add_bos_token") && !j["add_bos_token"].is_null()) {
    if (!j["add_bos_token"].is_boolean()) bad("add_bos_token", "true or false");
    c.add_bos = j["add_bos_token"].get<bool>();
  }
  const int64_t ctx = get_int("context_length", 0);
  if (ctx < 0) bad("context_length", "a non-negative integer");
  c.context_length = static_cast<size_t>(ctx);
  const int64_t max_new = get_int("max_new_tokens", 256);
  if (max_new < 0) bad("max_new_tokens", "a non-negative integer");
  c.max_new_tokens = static_cast<size_t>(max_new);
  bool do_sample = false;
  if (j.contains("do_sample") && j["do_sample"].is_boolean()) do_sample = j["do_sample"].get<bool>();
  c.temperature = do_sample ? get_float("temperature", 1.0f) : 0.0f;
  c.top_p = do_sample ? get_float("top_p", 1.0f) : 1.0f;
  if (j.contains("chat_template") && j["chat_template"].is_string()) c.chat_template = j["chat_template"].get<std::string>();
  return c;
}

std::unique_ptr<Generator> Generator::from_dir(const std::string& dir, const GeneratorOptions& options) {
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  std::ifstream probe(base + "model.onnx", std::ios::binary);
  if (!probe) {
    fail(StatusCode::kFileNotFound, "'", base, "model.onnx' not found: expected a directory written by ",
         "`sparsedge models build smollm2` or `sparsedge export-llm`");
  }
  probe.close();
  SessionOptions so;
  so.threads = options.threads;
  so.isa = options.isa;
  std::unique_ptr<Session> session = Session::from_file(base + "model.onnx", so);
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_file(base + "tokenizer.json");
  GenerationConfig config;
  std::string text;
  if (read_text(base + "generation_config.json", text)) config = GenerationConfig::from_json(text);
  return std::make_unique<Generator>(std::move(session), std::move(tokenizer), std::move(config), options);
}

Generator::Generator(std::unique_ptr<Session> session, std::unique_ptr<Tokenizer> tokenizer,
                     GenerationConfig config, const GeneratorOptions& options)
    : session_(std::move(session)), tokenizer_(std::move(tokenizer)), config_(std::move(config)) {
  auto not_decoder = [](const std::string& why) {
    fail(StatusCode::kInvalidModel, "not an LLM decoder (", why,
         "); expected inputs input_ids, position_ids, past_key_<i>, past_value_<i> and outputs logits, "
         "present_key_<i>, present_value_<i>");
  };
  const std::vector<ValueInfo>& ins = session_->inputs();
  auto find_input = [&](const std::string& name) -> const ValueInfo* {
    for (const ValueInfo& vi : ins) {
      if (vi.name == name) return &vi;
    }
    return nullptr;
  };
  const ValueInfo* ids = find_input("input_ids");
  const ValueInfo* pos = find_input("position_ids");
  if (!ids || !pos) not_decoder("no input_ids/position_ids input");
  if (ids->dtype != DType::kInt64 || pos->dtype != DType::kInt64) not_decoder("input_ids/position_ids are not int64");
  while (find_input("past_key_" + std::to_string(layers_))) ++layers_;
  if (layers_ == 0) not_decoder("no past_key_0 input");
  if (ins.size() != 2 + 2 * layers_) not_decoder("unexpected inputs besides input_ids, position_ids and the KV cache");
  const ValueInfo* k0 = find_input("past_key_0");
  const int64_t kv = fixed_dim(*k0, 2), hd = fixed_dim(*k0, 3);
  if (kv <= 0 || hd <= 0 || k0->dims.size() != 4) not_decoder("past_key_0 is not [1, past, kv_heads, head_dim]");
  kv_heads_ = static_cast<size_t>(kv);
  head_dim_ = static_cast<size_t>(hd);
  for (size_t i = 0; i < layers_; ++i) {
    for (const char* kind : {"key", "value"}) {
      const std::string past = std::string("past_") + kind + "_" + std::to_string(i);
      const ValueInfo* vi = find_input(past);
      if (!vi || vi->dtype != DType::kFloat32 || fixed_dim(*vi, 2) != kv || fixed_dim(*vi, 3) != hd) {
        not_decoder("'" + past + "' missing or not float32 [1, past, " + std::to_string(kv) + ", " + std::to_string(hd) + "]");
      }
      past_names_.push_back(past);
      present_names_.push_back(std::string("present_") + kind + "_" + std::to_string(i));
    }
  }
  bool has_logits = false;
  for (const ValueInfo& vi : session_->outputs()) {
    if (vi.name == "logits") {
      has_logits = true;
      vocab_ = fixed_dim(vi, 2) > 0 ? static_cast<size_t>(fixed_dim(vi, 2)) : 0;
    }
  }
  if (!has_logits) not_decoder("no logits output");
  for (const std::string& name : present_names_) {
    bool found = false;
    for (const ValueInfo& vi : session_->outputs()) found = found || vi.name == name;
    if (!found) not_decoder("no '" + name + "' output");
  }
  if (vocab_ == 0) vocab_ = tokenizer_->vocab_size();

  if (options.prefill_chunk == 0) fail(StatusCode::kInvalidArgument, "prefill_chunk must be at least 1");
  max_context_ = options.max_context;
  if (max_context_ == 0) {
    max_context_ = config_.context_length > 0 ? std::min(config_.context_length, kDefaultContext) : kDefaultContext;
  }
  if (config_.context_length > 0 && max_context_ > config_.context_length) {
    fail(StatusCode::kInvalidArgument, "max_context ", max_context_, " exceeds the model's context length ",
         config_.context_length);
  }
  if (max_context_ > (size_t(1) << 24)) fail(StatusCode::kInvalidArgument, "max_context ", max_context_, " is too large");
  chunk_ = std::min(options.prefill_chunk, max_context_);

  const size_t per_layer = max_context_ * kv_heads_ * head_dim_ * sizeof(float);
  for (size_t i = 0; i < past_names_.size(); ++i) {
    void* p = aligned_alloc_bytes(per_layer);
    if (!p) fail(StatusCode::kOutOfMemory, "cannot allocate the KV cache (", kv_cache_bytes(), " bytes)");
    cache_.emplace_back(p, aligned_free);
  }
  logits_.assign(vocab_, 0.0f);
  ids_.reserve(chunk_);
  positions_.reserve(chunk_);

  // One plan for the largest run: a full chunk over a full cache.
  std::vector<std::pair<std::string, Shape>> shapes;
  const int64_t t = static_cast<int64_t>(chunk_), p = static_cast<int64_t>(max_context_ - chunk_);
  shapes.push_back({"input_ids", {1, t}});
  shapes.push_back({"position_ids", {1, t}});
  for (const std::string& name : past_names_) shapes.push_back({name, {1, p, kv, hd}});
  session_->reserve(shapes, present_names_);
}

size_t Generator::kv_cache_bytes() const {
  return past_names_.size() * max_context_ * kv_heads_ * head_dim_ * sizeof(float);
}

std::vector<int32_t> Generator::encode_prompt(const std::string& prompt, bool chat) const {
  std::string text = prompt;
  if (chat) {
    const std::string& tpl = config_.chat_template;
    if (tpl.empty()) fail(StatusCode::kUnsupported, "this model has no chat template (generation_config.json)");
    if (tpl.find("<|im_start|>") == std::string::npos) {
      fail(StatusCode::kUnsupported, "only ChatML chat templates (<|im_start|>role ... <|im_end|>) are supported");
    }
    // The template's default system turn, if it has one.
    std::string system;
    const std::string marker = "<|im_start|>system\n";
    const size_t at = tpl.find(marker);
    if (at != std::string::npos) {
      const size_t end = tpl.find("<|im_end|>", at);
      if (end != std::string::npos) system = tpl.substr(at, end - at) + "<|im_end|>\n";
      // The template is JSON-decoded already; a literal "\n" in it is a real newline.
    }
    text = system + "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n";
  }
  std::vector<int32_t> ids;
  if (config_.add_bos && config_.bos_id >= 0) ids.push_back(config_.bos_id);
  std::vector<int32_t> body = tokenizer_->encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

void Generator::reset() {
  position_ = 0;
  has_logits_ = false;
}

void Generator::truncate(size_t count) {
  if (count > position_) {
    fail(StatusCode::kInvalidArgument, "cannot truncate the cache to ", count, " positions: it holds ", position_);
  }
  position_ = count;
  has_logits_ = false;
}

const float* Generator::logits() const {
  if (!has_logits_) fail(StatusCode::kInvalidArgument, "no logits yet: feed at least one token first");
  return logits_.data();
}

void Generator::run_chunk(const int32_t* ids, size_t count, bool logits_wanted) {
  const int64_t t = static_cast<int64_t>(count), p = static_cast<int64_t>(position_);
  const int64_t kv = static_cast<int64_t>(kv_heads_), hd = static_cast<int64_t>(head_dim_);
  ids_.assign(ids, ids + count);
  positions_.resize(count);
  for (size_t i = 0; i < count; ++i) positions_[i] = p + static_cast<int64_t>(i);
  std::vector<std::pair<std::string, Tensor>> feeds, bound;
  feeds.push_back({"input_ids", Tensor::view(DType::kInt64, {1, t}, ids_.data())});
  feeds.push_back({"position_ids", Tensor::view(DType::kInt64, {1, t}, positions_.data())});
  for (size_t i = 0; i < past_names_.size(); ++i) {
    // past = the first P rows of the cache, present = the first P + T rows of
    // the same buffer: the attention op appends the T new rows in place.
    feeds.push_back({past_names_[i], Tensor::view(DType::kFloat32, {1, p, kv, hd}, cache_[i].get())});
    bound.push_back({present_names_[i], Tensor::view(DType::kFloat32, {1, p + t, kv, hd}, cache_[i].get())});
  }
  if (!logits_wanted) {
    session_->run(feeds, present_names_, bound);
    position_ += count;
    has_logits_ = false;
    return;
  }
  std::vector<Tensor> out = session_->run(feeds, {"logits"}, bound);
  const Tensor& logits = out[0];
  if (logits.dtype != DType::kFloat32 || logits.numel() != t * static_cast<int64_t>(vocab_)) {
    fail(StatusCode::kInvalidModel, "logits are ", shape_str(logits.shape), ", expected [1, ", t, ", ", vocab_, "]");
  }
  std::memcpy(logits_.data(), logits.as<float>() + (count - 1) * vocab_, vocab_ * sizeof(float));
  position_ += count;
  has_logits_ = true;
}

void Generator::feed(const int32_t* ids, size_t count) {
  if (count == 0) fail(StatusCode::kInvalidArgument, "nothing to feed: the token list is empty");
  if (position_ + count > max_context_) {
    fail(StatusCode::kInvalidArgument, count, " tokens do not fit the context: ", position_, " of ", max_context_,
         " positions are used (raise max_context, up to the model's context length)");
  }
  const size_t vocab = tokenizer_->vocab_size();
  for (size_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= std::max(vocab, vocab_)) {
      fail(StatusCode::kInvalidArgument, "token id ", ids[i], " at index ", i, " is outside the vocabulary (",
           std::max(vocab, vocab_), " tokens)");
    }
  }
  const size_t start = position_;
  try {
    // Only the last token's logits are kept: earlier chunks compute the KV
    // cache alone, and a long last chunk leaves its final token to a run of its
    // own (one more pass over the weights costs less than the LM head on many
    // rows: 2 x hidden x vocab multiply-adds per row).
    for (size_t done = 0; done < count;) {
      const size_t n = std::min(chunk_, count - done);
      const bool last = done + n == count;
      if (last && n > kSplitLastRows) {
        run_chunk(ids + done, n - 1, false);
        run_chunk(ids + done + n - 1, 1, true);
      } else {
        run_chunk(ids + done, n, last);
      }
      done += n;
    }
  } catch (...) {
    position_ = start;  // the rows past `start` are garbage; the cache before it is intact
    has_logits_ = false;
    throw;
  }
}

std::vector<int32_t> Generator::generate(const std::vector<int32_t>& prompt, size_t max_new_tokens, Sampler& sampler,
                                         const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) fail(StatusCode::kInvalidArgument, "the prompt is empty: give at least one token");
  if (prompt.size() > max_context_) {
    fail(StatusCode::kInvalidArgument, "the prompt has ", prompt.size(), " tokens but the context holds ",
         max_context_, " (raise max_context, up to the model's context length, or shorten the prompt)");
  }
  reset();
  feed(prompt.data(), prompt.size());
  std::vector<int32_t> out;
  while (out.size() < max_new_tokens) {
    const int32_t id = sampler.sample(logits_.data(), vocab_);
    if (is_stop_token(id, config_.stop_ids)) break;
    out.push_back(id);
    if (on_token && !on_token(id)) break;
    if (out.size() == max_new_tokens || position_ >= max_context_) break;
    feed(&id, 1);
  }
  return out;
}

}  // namespace sde::llm
