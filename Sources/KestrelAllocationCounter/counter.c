// Counts heap allocations by defining the allocator entry points in the executable, which
// the dynamic linker then prefers for every library, and forwarding to glibc's own
// implementations (__libc_*). Linked only into the tests and the benchmark.
#define _GNU_SOURCE
#include "KestrelAllocationCounter.h"
#include <stddef.h>
#include <stdlib.h>
#include <malloc.h>
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t allocations;

uint64_t kestrel_allocation_count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }

static inline void count(void) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); }

int kestrel_allocation_counter_active(void) {
    uint64_t before = kestrel_allocation_count();
    void *volatile p = malloc(24);
    free(p);
    return kestrel_allocation_count() != before;
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(); return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
