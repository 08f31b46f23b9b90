#include "llm/pretokenize.h"

#include <cstdint>

#include "llm/unicode.h"

namespace sde::llm {

namespace {

struct Char {
  size_t offset;  // byte offset in the text
  uint32_t codepoint;
  CharClass cls;
};

bool is_contraction_tail(uint32_t c) { return c == 's' || c == 't' || c == 'm' || c == 'd'; }

// End (char index) of the regex match that starts at chars[i], within [i, end).
// The alternatives are tried in the regex's order; the first that matches wins.
size_t match_end(const std::vector<Char>& chars, size_t i, size_t end) {
  const Char& c = chars[i];
  if (c.codepoint == '\'' && i + 1 < end) {
    const uint32_t n1 = chars[i + 1].codepoint;
    if (is_contraction_tail(n1)) return i + 2;
    if (i + 2 < end) {
      const uint32_t n2 = chars[i + 2].codepoint;
      if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) return i + 3;
    }
  }
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": only U+0020 can be the prefix.
  size_t run_start = i;
  if (c.codepoint == ' ' && i + 1 < end && chars[i + 1].cls != CharClass::kSpace) run_start = i + 1;
  const CharClass run_class = chars[run_start].cls;
  if (run_class != CharClass::kSpace) {
    size_t j = run_start + 1;
    while (j < end && chars[j].cls == run_class) ++j;
    return j;
  }
  // "\s+(?!\S)" backs off one character when the run is followed by a
  // non-space, leaving that space to prefix the next word; else "\s+".
  size_t j = i + 1;
  while (j < end && chars[j].cls == CharClass::kSpace) ++j;
  if (j < end && j - i >= 2) return j - 1;
  return j;
}

}  // namespace

void pretokenize(const char* text, size_t size, const PreTokenizerOptions& options,
                 std::vector<std::pair<size_t, size_t>>& pieces) {
  std::vector<Char> chars;
  chars.reserve(size);
  for (size_t pos = 0; pos < size;) {
    const DecodedChar d = decode_utf8(text, size, pos);
    chars.push_back({pos, d.codepoint, char_class(d.codepoint)});
    pos += d.length;
  }
  auto offset = [&](size_t index) { return index < chars.size() ? chars[index].offset : size; };
  auto split_regex = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end;) {
      const size_t j = match_end(chars, i, end);
      pieces.emplace_back(offset(i), offset(j));
      i = j;
    }
  };
  if (!options.split_digits) {
    split_regex(0, chars.size());
    return;
  }
  size_t begin = 0;
  for (size_t i = 0; i < chars.size(); ++i) {
    if (chars[i].cls == CharClass::kNumber) {
      split_regex(begin, i);
      pieces.emplace_back(offset(i), offset(i + 1));
      begin = i + 1;
    }
  }
  split_regex(begin, chars.size());
}

}  // namespace sde::llm
