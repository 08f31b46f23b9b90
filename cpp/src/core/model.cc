#include "core/model.h"

namespace sde {

const Attribute* Node::find(const std::string& attr) const {
  for (const Attribute& a : attributes) {
    if (a.name == attr) return &a;
  }
  return nullptr;
}

std::string Node::describe() const {
  std::string d = domain.empty() ? op_type : domain + "." + op_type;
  return d + " node '" + (name.empty() ? (outputs.empty() ? std::string("?") : outputs[0]) : name) + "'";
}

size_t Node::num_inputs() const {
  size_t n = inputs.size();
  while (n > 0 && inputs[n - 1].empty()) --n;
  return n;
}

namespace {
const Attribute* typed(const Node& n, const std::string& attr, Attribute::Type want, const char* what) {
  const Attribute* a = n.find(attr);
  if (a == nullptr) return nullptr;
  // Some writers leave `type` unset; accept them when the payload fits.
  if (a->type != want && a->type != Attribute::kUndefined) {
    fail(StatusCode::kInvalidModel, n.describe(), ": attribute '", attr, "' should be ", what);
  }
  return a;
}
}  // namespace

int64_t Node::get_int(const std::string& attr, int64_t fallback) const {
  const Attribute* a = typed(*this, attr, Attribute::kInt, "an int");
  return a ? a->i : fallback;
}

float Node::get_float(const std::string& attr, float fallback) const {
  const Attribute* a = typed(*this, attr, Attribute::kFloat, "a float");
  return a ? a->f : fallback;
}

std::string Node::get_string(const std::string& attr, const std::string& fallback) const {
  const Attribute* a = typed(*this, attr, Attribute::kString, "a string");
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::get_ints(const std::string& attr, std::vector<int64_t> fallback) const {
  const Attribute* a = typed(*this, attr, Attribute::kInts, "a list of ints");
  return a ? a->ints : fallback;
}

std::vector<float> Node::get_floats(const std::string& attr, std::vector<float> fallback) const {
  const Attribute* a = typed(*this, attr, Attribute::kFloats, "a list of floats");
  return a ? a->floats : fallback;
}

void Node::set_float(const std::string& attr, float value) {
  for (Attribute& a : attributes) {
    if (a.name == attr) {
      a.type = Attribute::kFloat;
      a.f = value;
      return;
    }
  }
  Attribute a;
  a.name = attr;
  a.type = Attribute::kFloat;
  a.f = value;
  attributes.push_back(a);
}

}  // namespace sde
