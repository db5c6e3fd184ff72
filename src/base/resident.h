// Keeping a long-running process's resident set to what it uses: glibc gives
// every thread that allocates its own malloc arena (up to 8 per core), each
// keeping freed memory around. The agent's threads allocate little; two
// arenas are plenty (measured: about 0.5 MiB less RSS on an idle agent,
// docs/benchmarks.md "Idle cost"). Call once, early, from the main thread.
#pragma once

namespace tandem {

// At most two malloc arenas for the whole process.
void KeepResidentSetSmall();

}  // namespace tandem
