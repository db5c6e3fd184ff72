// Local file helpers. All return Result; none throw.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"

namespace tandem {

Result<std::string> ReadFile(const std::string& path);
// Writes path.tmp, fsyncs it, renames it over path: readers see the old or the new file, never
// half.
Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode = 0644);
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// mkdir -p with the given mode for directories it creates.
Status MakeDirs(const std::string& path, mode_t mode = 0755);
// chown -R to the named OS user (and its primary group). No-op for an empty user.
Status ChownRecursive(const std::string& path, const std::string& user);
Status Chown(const std::string& path, const std::string& user);
// rm -rf (refuses "/" and empty paths).
Status RemoveAll(const std::string& path);
Status RenamePath(const std::string& from, const std::string& to);
// Absolute, normalised form of a path (the file need not exist).
std::string AbsolutePath(const std::string& path);
std::string DirName(const std::string& path);

}  // namespace tandem
