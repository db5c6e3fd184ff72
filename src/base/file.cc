// Local file helpers: reading, atomic writes (temporary file, fsync, rename),
// directories, ownership, removal, paths. Each error is a Result naming the
// path and errno's text; nothing throws. No state.
#include "base/file.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace tandem {
namespace fs = std::filesystem;

namespace {
Error Errno(const std::string& what, const std::string& path) {
  return Error(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  // Plain syscalls: libstdc++'s filebuf throws on read errors.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Error(ErrorCode::kNotFound, "no such file: " + path);
    return Errno("cannot read", path);
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = Errno("cannot read", path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot create", tmp);
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e = Errno("cannot write", tmp);
      ::close(fd);
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Error e = Errno("cannot fsync", tmp);
    ::close(fd);
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename onto", path);
  return Ok();
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  fs::path p(path);
  std::string cur;
  for (const auto& part : p) {
    cur = cur.empty() ? part.string() : (fs::path(cur) / part).string();
    if (cur.empty() || IsDirectory(cur)) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return Errno("cannot create directory", cur);
  }
  return Ok();
}

namespace {
Result<std::pair<uid_t, gid_t>> LookupUser(const std::string& user) {
  struct passwd pw {};
  struct passwd* res = nullptr;
  char buf[4096];
  if (getpwnam_r(user.c_str(), &pw, buf, sizeof buf, &res) != 0 || res == nullptr) {
    return Error(ErrorCode::kInvalidArgument, "no such OS user: " + user);
  }
  return std::make_pair(pw.pw_uid, pw.pw_gid);
}
}  // namespace

Status Chown(const std::string& path, const std::string& user) {
  if (user.empty()) return Ok();
  auto ids = LookupUser(user);
  if (!ids) return ids.error();
  if (::lchown(path.c_str(), ids->first, ids->second) != 0) return Errno("cannot chown", path);
  return Ok();
}

Status ChownRecursive(const std::string& path, const std::string& user) {
  if (user.empty()) return Ok();
  auto ids = LookupUser(user);
  if (!ids) return ids.error();
  if (::lchown(path.c_str(), ids->first, ids->second) != 0) return Errno("cannot chown", path);
  std::error_code ec;
  if (!IsDirectory(path)) return Ok();
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (::lchown(it->path().c_str(), ids->first, ids->second) != 0) {
      return Errno("cannot chown", it->path().string());
    }
  }
  if (ec) return Error(ErrorCode::kIo, "cannot walk " + path + ": " + ec.message());
  return Ok();
}

Status RemoveAll(const std::string& path) {
  if (path.empty() || path == "/") {
    return Error(ErrorCode::kInvalidArgument, "refusing to remove '" + path + "'");
  }
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot remove " + path + ": " + ec.message());
  return Ok();
}

Status RenamePath(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Errno("cannot rename " + from + " to", to);
  return Ok();
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto p = fs::absolute(path, ec);
  if (ec) return path;
  return p.lexically_normal().string();
}

std::string DirName(const std::string& path) {
  return fs::path(path).parent_path().string();
}

}  // namespace tandem
