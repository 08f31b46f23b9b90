#include "core/mapped_file.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#if !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#define SDE_HAVE_MMAP 1
#endif

namespace sde {

namespace {

// Live mappings: start address -> size.
std::mutex& mappings_mutex() {
  static std::mutex m;
  return m;
}
std::map<uintptr_t, size_t>& mappings() {
  static std::map<uintptr_t, size_t> m;
  return m;
}

}  // namespace

void release_mapped_pages(const void* data, size_t bytes) {
#ifdef SDE_HAVE_MMAP
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data), end = begin + bytes;
  std::lock_guard<std::mutex> lock(mappings_mutex());
  auto it = mappings().upper_bound(begin);
  if (it == mappings().begin()) return;
  --it;
  if (end > it->first + it->second) return;  // not inside one mapping
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
#else
  (void)data;
  (void)bytes;
#endif
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

MappedFile map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) fail(StatusCode::kFileNotFound, "file not found: '", path, "'");
    fail(StatusCode::kFileNotFound, "cannot open '", path, "': ", std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(StatusCode::kFileNotFound, "'", path, "' is not a regular file");
  }
  MappedFile out;
  out.size = static_cast<size_t>(st.st_size);
  if (out.size == 0) {
    ::close(fd);
    out.data = reinterpret_cast<const uint8_t*>("");
    return out;
  }
#ifdef SDE_HAVE_MMAP
  void* p = ::mmap(nullptr, out.size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail(StatusCode::kInvalidModel, "cannot map '", path, "': ", std::strerror(errno));
  size_t size = out.size;
  {
    std::lock_guard<std::mutex> lock(mappings_mutex());
    mappings()[reinterpret_cast<uintptr_t>(p)] = size;
  }
  out.keep_alive = std::shared_ptr<void>(p, [size](void* q) {
    {
      std::lock_guard<std::mutex> lock(mappings_mutex());
      mappings().erase(reinterpret_cast<uintptr_t>(q));
    }
    ::munmap(q, size);
  });
  out.data = static_cast<const uint8_t*>(p);
#else
  uint8_t* buf = static_cast<uint8_t*>(std::malloc(out.size));
  if (!buf) {
    ::close(fd);
    fail(StatusCode::kOutOfMemory, "cannot allocate ", out.size, " bytes for '", path, "'");
  }
  size_t done = 0;
  while (done < out.size) {
    ssize_t r = ::read(fd, buf + done, out.size - done);
    if (r <= 0) {
      ::close(fd);
      std::free(buf);
      fail(StatusCode::kInvalidModel, "cannot read '", path, "'");
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  out.keep_alive = std::shared_ptr<void>(buf, std::free);
  out.data = buf;
#endif
  return out;
}

}  // namespace sde
