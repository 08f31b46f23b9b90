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

// Drops the resident pages of [data, data + bytes) when that range lies in a
// live read-only file mapping made by map_file (whole pages inside the range
// only); a no-op for any other memory. The bytes stay readable: a later
// access reads them back from the page cache. Sessions call this for weights
// they have packed into their own layout, so a model's resident size is the
// packed copy, not the packed copy plus the mapped original.
void release_mapped_pages(const void* data, size_t bytes);

}  // namespace sde
