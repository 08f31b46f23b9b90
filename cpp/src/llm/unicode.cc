#include "llm/unicode.h"

#include <algorithm>
#include <iterator>

#include "llm/unicode_tables.h"

namespace sde::llm {

namespace {

template <size_t N>
bool in_ranges(const unicode::CodepointRange (&table)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                             [](uint32_t v, const unicode::CodepointRange& r) { return v < r.first; });
  return it != std::begin(table) && cp <= std::prev(it)->last;
}

}  // namespace

DecodedChar decode_utf8(const char* text, size_t size, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text);
  const unsigned char c = s[pos];
  if (c < 0x80) return {c, 1};
  uint32_t need;
  uint32_t cp;
  uint32_t min;
  if ((c & 0xE0) == 0xC0) {
    need = 1, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    need = 2, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    need = 3, cp = c & 0x07, min = 0x10000;
  } else {
    return {kInvalidCodepoint, 1};
  }
  if (pos + need >= size) return {kInvalidCodepoint, 1};  // truncated sequence
  for (uint32_t i = 1; i <= need; ++i) {
    const unsigned char cc = s[pos + i];
    if ((cc & 0xC0) != 0x80) return {kInvalidCodepoint, 1};
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kInvalidCodepoint, 1};
  return {cp, need + 1};
}

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (cp == kInvalidCodepoint) return CharClass::kOther;
  if (in_ranges(unicode::kLetterRanges, cp)) return CharClass::kLetter;
  if (in_ranges(unicode::kNumberRanges, cp)) return CharClass::kNumber;
  if (in_ranges(unicode::kSpaceRanges, cp)) return CharClass::kSpace;
  return CharClass::kOther;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(const std::string& bytes) {
  // Maximal-subpart replacement (Unicode 3.9, table 3-7): a lead byte followed
  // by some but not all valid continuation bytes is replaced once as a unit.
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    size_t j = i + 1;
    size_t got = 0;
    while (got < need && j < n) {
      const unsigned char cc = s[j];
      const unsigned char l = got == 0 ? lo : 0x80;
      const unsigned char h = got == 0 ? hi : 0xBF;
      if (cc < l || cc > h) break;
      ++j, ++got;
    }
    if (need > 0 && got == need) {
      out.append(bytes, i, j - i);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i = j;
  }
  return out;
}

}  // namespace sde::llm
