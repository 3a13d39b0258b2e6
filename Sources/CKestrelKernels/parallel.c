// A persistent pool of worker threads for Kestrel's parallel loops and split matrix products.
//
// Why not OpenBLAS's own threads: its threaded driver allocates on every call and pays its
// start-up on each product, so it only helps for very large products; and why not Dispatch:
// a closure handed to another thread is allocated per call. Here a loop is a C function, a
// context pointer and a part count; the workers spin briefly between loops (a training step
// issues one every few tens of microseconds) and sleep on a condition variable when idle.
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "include/CKestrelKernels.h"

#define MAX_WORKERS 63

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_long generation;     // incremented for each loop handed to the workers
    atomic_long sleepers;       // workers waiting on `wake`
    // The current loop's generation (high 32 bits) and its next unclaimed part (low 32 bits):
    // a thread claims a part with one compare-and-swap, which fails once the loop is over,
    // so a worker that wakes late never runs a part of a loop that has finished.
    atomic_ulong next;
    atomic_long done;           // parts finished in the current loop
    atomic_flag busy;           // one caller at a time; others run their loop alone
    kestrel_task task;
    void *context;
    long parts;
    long workers;               // workers started
    long limit;                 // most threads a loop may use (caller included)
    long cap;                   // most threads the current loop may use (its scratch slots)
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .busy = ATOMIC_FLAG_INIT,
    .limit = 1,
};

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

// Set while a thread runs a part, so that a nested loop runs inline instead of waiting on
// workers that are busy with the outer one.
static _Thread_local int inside_loop;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Claims and runs parts of loop `generation` until none is left; the caller (thread 0) and
// the workers all run this. The loop's fields are read only after a successful claim, when
// the loop cannot finish before the claimed part is done.
static void run_parts(unsigned long generation, long thread) {
    inside_loop = 1;
    for (;;) {
        unsigned long current = atomic_load_explicit(&pool.next, memory_order_acquire);
        if ((current >> 32) != (generation & 0xffffffffUL)) break;
        long part = (long)(current & 0xffffffffUL);
        if (part >= pool.parts) break;
        if (!atomic_compare_exchange_weak_explicit(&pool.next, &current, current + 1, memory_order_acq_rel,
                                                   memory_order_acquire)) continue;
        pool.task(pool.context, part, thread);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
    inside_loop = 0;
}

// How long an idle worker spins before it sleeps: long enough to cover the gaps between the
// loops of one training step, short enough not to hold a core while the program does other work.
static const double spin_seconds = 2e-3;

static void *worker_main(void *argument) {
    long index = (long)argument;  // 1-based: thread 0 is the caller
    long seen = 0;
    for (;;) {
        double deadline = 0;
        long spins = 0;
        while (atomic_load_explicit(&pool.generation, memory_order_acquire) == seen) {
            cpu_relax();
            if (++spins % 1024 == 0) {
                double t = now_seconds();
                if (deadline == 0) deadline = t + spin_seconds;
                else if (t > deadline) {
                    pthread_mutex_lock(&pool.lock);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.lock);
                    deadline = 0;
                }
            }
        }
        seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (index < pool.limit && index < pool.cap) run_parts((unsigned long)seen, index);
    }
    return NULL;
}

static long available_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

long kestrel_parallel_cores(void) { return available_cores(); }

void kestrel_parallel_set_threads(long threads) {
    if (threads < 1) threads = 1;
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    pthread_mutex_lock(&start_lock);
    pool.limit = threads;
    pthread_mutex_unlock(&start_lock);
}

int kestrel_parallel_inside(void) { return inside_loop; }

long kestrel_parallel_threads(void) { return pool.limit; }

// Starts workers up to the limit; called by the thread holding `busy`, so no loop is running.
static void ensure_workers(void) {
    if (pool.workers >= pool.limit - 1) return;
    pthread_mutex_lock(&start_lock);
    while (pool.workers < pool.limit - 1) {
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_t thread;
        if (pthread_create(&thread, &attributes, worker_main,
                           (void *)(pool.workers + 1)) != 0) {
            pthread_attr_destroy(&attributes);
            break;
        }
        pthread_attr_destroy(&attributes);
        pool.workers += 1;
    }
    pthread_mutex_unlock(&start_lock);
}

void kestrel_parallel_run(kestrel_task task, void *context, long parts) {
    kestrel_parallel_run_on(task, context, parts, LONG_MAX);
}

void kestrel_parallel_run_on(kestrel_task task, void *context, long parts, long threads) {
    if (parts <= 0) return;
    if (parts == 1 || threads <= 1 || pool.limit <= 1 || inside_loop || atomic_flag_test_and_set(&pool.busy)) {
        for (long part = 0; part < parts; part++) task(context, part, 0);
        return;
    }
    ensure_workers();
    unsigned long generation = (unsigned long)atomic_load(&pool.generation) + 1;
    // Close the previous loop to late claims before its fields change.
    atomic_store(&pool.next, ((generation & 0xffffffffUL) << 32) | 0xffffffffUL);
    pool.task = task;
    pool.context = context;
    pool.parts = parts;
    pool.cap = threads;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.next, (generation & 0xffffffffUL) << 32, memory_order_release);
    atomic_store_explicit(&pool.generation, (long)generation, memory_order_seq_cst);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_parts(generation, 0);
    // Only parts that a worker claimed can still be running; one that never woke is not waited for.
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < parts) cpu_relax();
    atomic_flag_clear(&pool.busy);
}

typedef struct { kestrel_range_task body; void *context; size_t count; long parts; } range_job;

static void range_part(void *context, long part, long thread) {
    (void)thread;
    const range_job *j = context;
    const size_t begin = j->count * (size_t)part / (size_t)j->parts;
    const size_t end = j->count * (size_t)(part + 1) / (size_t)j->parts;
    if (end > begin) j->body(j->context, begin, end);
}

void kestrel_parallel_for(kestrel_range_task body, void *context, size_t count, size_t grain) {
    if (count == 0) return;
    long parts = pool.limit;
    if (grain < 1) grain = 1;
    if ((size_t)parts > count / grain) parts = (long)(count / grain);
    if (parts <= 1 || inside_loop) {
        body(context, 0, count);
        return;
    }
    range_job j = {body, context, count, parts};
    kestrel_parallel_run(range_part, &j, parts);
}
