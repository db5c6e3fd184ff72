// Names the calling thread (as `top -H`, `ps -L` and /proc/<pid>/task/*/comm
// show it). A thread otherwise inherits its creator's name, so the agent's
// threads started from an API worker would all read "api-worker".
#pragma once

#include <pthread.h>

#include <string>

namespace tandem {

// At most 15 characters are kept (the kernel's limit).
inline void NameThisThread(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace tandem
