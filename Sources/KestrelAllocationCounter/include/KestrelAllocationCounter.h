#ifndef KESTREL_ALLOCATION_COUNTER_H
#define KESTREL_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Number of malloc/calloc/realloc/aligned allocations made by this process since it started,
/// counted by interposing the allocator (only in executables that link this target).
uint64_t kestrel_allocation_count(void);

/// Whether the interposer is active (the executable's allocator calls reach it).
int kestrel_allocation_counter_active(void);
#endif
