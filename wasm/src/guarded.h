// Errors never cross into JS as exceptions (a JS throw through C++ frames
// would skip destructors and leave the C++ exception caught): each call of a
// wasm face class records the status code and message, returns, and the JS
// wrapper (api.js) throws. Shared by session_embind.cc and generator_embind.cc.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "core/error.h"

namespace sde_wasm {

struct LastError {
  int code = 0;
  std::string message;
};

template <typename F>
bool guarded(LastError& err, F&& f) {
  err = LastError();
  try {
    f();
    return true;
  } catch (const sde::Error& e) {
    err.code = int(e.code());
    err.message = e.what();
  } catch (const std::bad_alloc&) {
    err.code = int(sde::StatusCode::kOutOfMemory);
    err.message = "out of memory";
  } catch (const std::exception& e) {
    err.code = int(sde::StatusCode::kInternal);
    err.message = e.what();
  }
  return false;
}

}  // namespace sde_wasm
