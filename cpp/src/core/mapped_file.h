// Read-only file mappings. Large weights are mapped rather than copied; on
// targets without mmap (WebAssembly) the file is read into memory instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace sde {

struct MappedFile {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<void> keep_alive;  // unmaps / frees when the last user goes
};

// Throws Error(kFileNotFound) when the file is missing, kInvalidModel when it
// cannot be read.
MappedFile map_file(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace sde
