#include "llm/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <queue>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "llm/unicode.h"

namespace sde::llm {

namespace {

using nlohmann::json;

[[noreturn]] void malformed(const std::string& what) {
  fail(StatusCode::kInvalidModel, "malformed tokenizer.json: ", what);
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
// the other 68 bytes map to U+0100 onwards in byte order.
std::vector<uint32_t> byte_to_codepoint() {
  std::vector<uint32_t> map(256);
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? b : next++;
  }
  return map;
}

// The bytes a vocabulary entry decodes to: each character mapped back through
// bytes_to_unicode; a token holding any other character (a special token such
// as "<|im_start|>" is all printable ASCII, but others may not be) decodes to
// its own UTF-8, as tokenizers' ByteLevel decoder does.
std::string token_to_bytes(const std::string& token, const std::unordered_map<uint32_t, uint8_t>& cp_to_byte) {
  std::string out;
  for (size_t pos = 0; pos < token.size();) {
    const DecodedChar d = decode_utf8(token.data(), token.size(), pos);
    auto it = cp_to_byte.find(d.codepoint);
    if (it == cp_to_byte.end()) return token;
    out += static_cast<char>(it->second);
    pos += d.length;
  }
  return out;
}

const json& member(const json& object, const char* key, const char* where) {
  auto it = object.find(key);
  if (it == object.end()) malformed(std::string(where) + " has no '" + key + "'");
  return *it;
}

bool is_null_or_false(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() || (it->is_boolean() && !it->get<bool>());
}

void check_byte_level(const json& pre) {
  if (!is_null_or_false(pre, "add_prefix_space")) {
    fail(StatusCode::kUnsupported, "tokenizer.json: ByteLevel pre-tokenizer with add_prefix_space is not supported");
  }
  auto regex = pre.find("use_regex");
  if (regex != pre.end() && !(regex->is_boolean() && regex->get<bool>())) {
    fail(StatusCode::kUnsupported, "tokenizer.json: ByteLevel pre-tokenizer without its regex is not supported");
  }
}

// Supported: ByteLevel, or Sequence[Digits(individual_digits=true), ByteLevel].
PreTokenizerOptions read_pre_tokenizer(const json& pre) {
  PreTokenizerOptions options;
  if (!pre.is_object()) malformed("'pre_tokenizer' must be an object");
  const std::string type = member(pre, "type", "pre_tokenizer").get<std::string>();
  if (type == "ByteLevel") {
    check_byte_level(pre);
    return options;
  }
  if (type == "Sequence") {
    const json& list = member(pre, "pretokenizers", "Sequence pre_tokenizer");
    if (list.is_array() && list.size() == 2 && list[0].is_object() && list[1].is_object() &&
        list[0].value("type", "") == "Digits" && list[0].value("individual_digits", false) &&
        list[1].value("type", "") == "ByteLevel") {
      check_byte_level(list[1]);
      options.split_digits = true;
      return options;
    }
  }
  fail(StatusCode::kUnsupported, "tokenizer.json: unsupported pre_tokenizer ", pre.dump(),
       " (supported: ByteLevel, optionally after Digits(individual_digits=true))");
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(StatusCode::kFileNotFound, "tokenizer file not found: ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str());
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(const std::string& json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    malformed(std::string("not valid JSON (") + e.what() + ")");
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  try {
    if (!doc.is_object()) malformed("the top level must be an object");
    const json& model = member(doc, "model", "tokenizer.json");
    if (!model.is_object() || model.value("type", "") != "BPE") {
      fail(StatusCode::kUnsupported, "tokenizer.json: only BPE models are supported");
    }
    for (const char* key : {"dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"}) {
      if (!is_null_or_false(model, key)) fail(StatusCode::kUnsupported, "tokenizer.json: BPE option '", key, "' is not supported");
    }
    for (const char* key : {"byte_fallback", "ignore_merges"}) {
      if (!is_null_or_false(model, key)) fail(StatusCode::kUnsupported, "tokenizer.json: BPE option '", key, "' is not supported");
    }
    if (!is_null_or_false(doc, "normalizer")) fail(StatusCode::kUnsupported, "tokenizer.json: normalizers are not supported");
    tok->pre_options_ = read_pre_tokenizer(member(doc, "pre_tokenizer", "tokenizer.json"));

    const json& vocab = member(model, "vocab", "model");
    if (!vocab.is_object() || vocab.empty()) malformed("model.vocab must be a non-empty object");
    const json* added = nullptr;
    if (auto it = doc.find("added_tokens"); it != doc.end() && !it->is_null()) {
      if (!it->is_array()) malformed("'added_tokens' must be an array");
      added = &*it;
    }
    int64_t max_id = -1;
    auto check_id = [&](const json& id, const std::string& token) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 31) - 1) {
        malformed("token '" + token + "' has an invalid id " + id.dump());
      }
      max_id = std::max(max_id, id.get<int64_t>());
      return static_cast<int32_t>(id.get<int64_t>());
    };
    for (auto it = vocab.begin(); it != vocab.end(); ++it) tok->vocab_[it.key()] = check_id(it.value(), it.key());
    if (added) {
      for (const json& a : *added) {
        if (!a.is_object()) malformed("an added token must be an object");
        check_id(member(a, "id", "added token"), a.value("content", ""));
      }
    }
    const size_t n = static_cast<size_t>(max_id + 1);
    tok->token_bytes_.assign(n, std::string());
    tok->special_.assign(n, false);
    tok->known_.assign(n, false);

    const std::vector<uint32_t> byte_cp = byte_to_codepoint();
    std::unordered_map<uint32_t, uint8_t> cp_to_byte;
    for (uint32_t b = 0; b < 256; ++b) cp_to_byte[byte_cp[b]] = static_cast<uint8_t>(b);
    for (const auto& [token, id] : tok->vocab_) {
      tok->token_bytes_[id] = token_to_bytes(token, cp_to_byte);
      tok->known_[id] = true;
    }
    for (uint32_t b = 0; b < 256; ++b) {
      std::string ch;
      append_utf8(ch, byte_cp[b]);
      auto it = tok->vocab_.find(ch);
      tok->byte_token_[b] = it == tok->vocab_.end() ? -1 : it->second;
    }

    tok->specials_by_first_byte_.assign(256, {});
    if (added) {
      for (const json& a : *added) {
        const json& content = member(a, "content", "added token");
        if (!content.is_string() || content.get<std::string>().empty()) malformed("an added token has no content");
        for (const char* key : {"single_word", "lstrip", "rstrip"}) {
          if (!is_null_or_false(a, key)) fail(StatusCode::kUnsupported, "tokenizer.json: added token option '", key, "' is not supported");
        }
        const std::string text = content.get<std::string>();
        const auto id = static_cast<int32_t>(a["id"].get<int64_t>());
        tok->token_bytes_[id] = text;  // added tokens decode to their content
        tok->known_[id] = true;
        tok->special_[id] = a.value("special", false);
        tok->vocab_[text] = id;
        tok->specials_by_first_byte_[static_cast<uint8_t>(text[0])].push_back({text, id});
      }
      for (auto& list : tok->specials_by_first_byte_) {
        std::stable_sort(list.begin(), list.end(),
                         [](const SpecialToken& a, const SpecialToken& b) { return a.text.size() > b.text.size(); });
      }
    }

    const json& merges = member(model, "merges", "model");
    if (!merges.is_array()) malformed("model.merges must be an array");
    tok->merges_.reserve(merges.size() * 2);
    int32_t rank = 0;
    for (const json& m : merges) {
      std::string left, right;
      if (m.is_string()) {  // older files: "left right"
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          malformed("merge '" + s + "' is not 'left right'");
        }
        left = s.substr(0, space), right = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        left = m[0].get<std::string>(), right = m[1].get<std::string>();
      } else {
        malformed("merge " + m.dump() + " is neither 'left right' nor [left, right]");
      }
      auto l = vocab.find(left), r = vocab.find(right), merged = vocab.find(left + right);
      if (l == vocab.end() || r == vocab.end() || merged == vocab.end()) {
        malformed("merge '" + left + " " + right + "' uses a token missing from the vocabulary");
      }
      const uint64_t key = (static_cast<uint64_t>(l->get<int64_t>()) << 32) | static_cast<uint64_t>(r->get<int64_t>());
      tok->merges_.emplace(key, Merge{rank++, static_cast<int32_t>(merged->get<int64_t>())});
    }
  } catch (const json::exception& e) {
    malformed(e.what());
  }
  return tok;
}

const Tokenizer::Merge* Tokenizer::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
  return it == merges_.end() ? nullptr : &it->second;
}

// tokenizers' Word::merge_all: repeatedly apply the lowest-ranked merge,
// leftmost first, over a linked list of symbols with a lazily pruned heap.
void Tokenizer::bpe(const char* piece, size_t size, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(size);
  for (size_t i = 0; i < size; ++i) {
    const int32_t id = byte_token_[static_cast<uint8_t>(piece[i])];
    if (id < 0) continue;  // a byte with no token is dropped, as tokenizers does without unk
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  if (symbols.size() == 1) {
    out.push_back(symbols[0].id);
    return;
  }
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->merged_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->merged_id != top.merged_id) continue;  // stale: a neighbour merged first
    left.id = top.merged_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find_merge(symbols[left.prev].id, left.id)) queue.push({pm->rank, left.prev, pm->merged_id});
    }
    if (left.next >= 0) {
      if (const Merge* nm = find_merge(left.id, symbols[left.next].id)) queue.push({nm->rank, top.pos, nm->merged_id});
    }
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  std::vector<std::pair<size_t, size_t>> pieces;
  auto encode_plain = [&](size_t begin, size_t end) {
    if (begin == end) return;
    pieces.clear();
    pretokenize(text.data() + begin, end - begin, pre_options_, pieces);
    for (const auto& [first, last] : pieces) bpe(text.data() + begin + first, last - first, ids);
  };
  size_t plain_start = 0;
  for (size_t i = 0; i < text.size();) {
    const SpecialToken* found = nullptr;
    for (const SpecialToken& s : specials_by_first_byte_[static_cast<uint8_t>(text[i])]) {
      if (text.compare(i, s.text.size(), s.text) == 0) {
        found = &s;  // the list is longest first
        break;
      }
    }
    if (!found) {
      ++i;
      continue;
    }
    encode_plain(plain_start, i);
    ids.push_back(found->id);
    i += found->text.size();
    plain_start = i;
  }
  encode_plain(plain_start, text.size());
  return ids;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id];
}

int32_t Tokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::string Tokenizer::decode_bytes(const int32_t* ids, size_t count, bool skip_special_tokens) const {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || static_cast<size_t>(id) >= token_bytes_.size() || !known_[id]) {
      fail(StatusCode::kInvalidArgument, "token id ", id, " is not in the vocabulary (size ", token_bytes_.size(), ")");
    }
    if (skip_special_tokens && special_[id]) continue;
    out += token_bytes_[id];
  }
  return out;
}

std::string Tokenizer::decode(const int32_t* ids, size_t count, bool skip_special_tokens) const {
  return utf8_lossy(decode_bytes(ids, count, skip_special_tokens));
}

}  // namespace sde::llm
