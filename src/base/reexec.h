// This process's own image: the executable file and arguments it was started
// with, a token naming this image (it changes when the process re-executes,
// its pid does not), the build's version, and ReplaceImage(), which executes
// that file again in place of this process (`tandem agent reload`: the same
// pid, the same children, the binary now at that path).
//
// Thread safety: RememberInvocation and SetBuildVersion run once in main()
// before any thread; the getters may then be called from any thread.
// The refusal notes are under a mutex of their own.
// ReplaceImage is called by the one thread left once every other has ended.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace tandem {

// main(): remembers argv and the executable's path (/proc/self/exe now,
// before a package upgrade can rename another file onto it) and draws this
// image's token.
void RememberInvocation(int argc, char** argv);
// The executable's absolute path ("" when unknown), the arguments (argv[0]
// included), and this image's token (16 hex digits; a new one after each
// re-execution, so a caller can tell the new image from the old).
const std::string& InvokedExecutable();
const std::vector<std::string>& InvokedArguments();
const std::string& ImageToken();

// "0.4.0 (commit abc1234)": set by main() from the generated version header.
void SetBuildVersion(const std::string& version);
const std::string& BuildVersion();

// A reload this process refused (the binary at its path failed its check):
// the count of refusals so far and the last reason, for the status API
// (`tandem agent reload` reports a refusal at once instead of timing out).
// Any thread.
void NoteReloadRefused(const std::string& why);
int ReloadRefusals();
std::string LastReloadRefusal();

// Executes InvokedExecutable() with InvokedArguments() in place of this
// process, every descriptor above 2 closed on the way (close_range with
// CLOSE_RANGE_CLOEXEC). When that file cannot be executed, the running image
// (/proc/self/exe) is executed instead, so the agent comes back either way.
// Returns only when both fail (the error names the path and errno).
Error ReplaceImage();

}  // namespace tandem
