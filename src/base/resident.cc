// KeepResidentSetSmall (resident.h).
#include "base/resident.h"

#include <malloc.h>

namespace tandem {

void KeepResidentSetSmall() {
  (void)mallopt(M_ARENA_MAX, 2);
}

}  // namespace tandem
