// Errors inside the core are exceptions carrying a status code; every face
// (Python, C API, WebAssembly) catches them at its boundary and turns the code
// into its own form. Nothing throws across the C API.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sde {

// Mirrored by sde_status in cpp/include/sparsedge.h and by the exception
// classes in runtime/sparsedge/errors.py; keep the three in step.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // wrong input name, shape, dtype, option value
  kInvalidModel = 2,     // malformed, truncated or inconsistent model file
  kUnsupported = 3,      // valid model using an op/dtype/attribute we lack
  kFileNotFound = 4,     // model or external-data file missing
  kOutOfMemory = 5,
  kInternal = 6,
};

const char* status_code_name(StatusCode code);

class Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  StatusCode code() const { return code_; }

 private:
  StatusCode code_;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// fail(code, "node '", name, "': ...") builds the message from its parts.
template <typename... Parts>
[[noreturn]] void fail(StatusCode code, const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(code, os.str());
}

}  // namespace sde
