/* Aligned allocation with a bounded cache of large blocks.
 *
 * A forward pass frees and reallocates the same activation and workspace sizes layer after layer.
 * glibc serves such sizes with fresh mmaps (or trims them off the heap), so every call pays a
 * page fault per 4 KiB it writes: 3,350 faults (14 MB) per ResNet-18 batch-8 forward, about 18%
 * of its time on the 2-core VMs. Blocks of at least FC_CACHE_MIN_BYTES are therefore kept when
 * freed, up to a byte limit, and handed out again best-fit; their pages stay mapped and warm.
 * Blocks of 4 MiB and more are 2 MiB aligned and advised as transparent huge pages, as NumPy
 * does for its own large arrays. Every block carries a 64-byte header (its capacity), so
 * fc_aligned_free needs no lookup. Under AddressSanitizer the cached blocks and the slack past a
 * request are poisoned, so a kernel that reads past its buffer is still caught. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "fastconv.h"
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HEADER 64
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)
#define SLOTS 64

typedef struct { size_t cap; } header;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *slot[SLOTS];            /* cached blocks (data pointers), oldest first */
static int nslots;
static size_t cached_bytes, limit_bytes = (size_t)FC_CACHE_DEFAULT_MB << 20;
static uint64_t hits, misses;

/* fork() while another thread holds the lock would leave the child's copy locked forever: take
 * it around the fork, so that both sides start with it free. */
static void lock_before_fork(void) { pthread_mutex_lock(&lock); }
static void unlock_after_fork(void) { pthread_mutex_unlock(&lock); }
__attribute__((constructor)) static void register_fork_handlers(void)
{
    pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);
}

static header *head(void *p) { return (header *)((char *)p - HEADER); }

static void release(void *p)
{
    UNPOISON(head(p), HEADER + head(p)->cap);
    free(head(p));
}

static void *fresh(size_t cap)
{
    void *base = NULL;
    size_t align = cap >= HUGE_MIN ? HUGE_ALIGN : 64;
    if (posix_memalign(&base, align, HEADER + cap) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (cap >= HUGE_MIN) madvise(base, (HEADER + cap) & ~(HUGE_ALIGN - 1), MADV_HUGEPAGE);
#endif
    ((header *)base)->cap = cap;
    return (char *)base + HEADER;
}

/* Best fit among the cached blocks no more than twice the request; -1 if none. */
static int best_slot(size_t bytes)
{
    int best = -1;
    for (int i = 0; i < nslots; i++) {
        size_t cap = head(slot[i])->cap;
        if (cap >= bytes && cap / 2 <= bytes && (best < 0 || cap < head(slot[best])->cap)) best = i;
    }
    return best;
}

static void take_slot(int i)
{
    cached_bytes -= head(slot[i])->cap;
    memmove(slot + i, slot + i + 1, sizeof(void *) * (size_t)(nslots - i - 1));
    nslots--;
}

void *fc_aligned_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 64;
    if (bytes > ((size_t)1 << 48)) return NULL;
    size_t cap = (bytes + 63) & ~(size_t)63;
    if (cap < FC_CACHE_MIN_BYTES) return fresh(cap);
    cap = (cap + 4095) & ~(size_t)4095;
    void *p = NULL;
    pthread_mutex_lock(&lock);
    int i = best_slot(bytes);
    if (i >= 0) {
        p = slot[i];
        take_slot(i);
        hits++;
    } else {
        misses++;
    }
    pthread_mutex_unlock(&lock);
    if (!p) return fresh(cap);
    UNPOISON(p, bytes);
    return p;
}

void fc_aligned_free(void *p)
{
    if (!p) return;
    size_t cap = head(p)->cap;
    if (cap < FC_CACHE_MIN_BYTES) {
        release(p);
        return;
    }
    void *evicted[SLOTS + 1];
    int nev = 0;
    pthread_mutex_lock(&lock);
    if (cap > limit_bytes) {
        evicted[nev++] = p;
    } else {
        /* Oldest blocks go first until the new one fits under the limit and in the table. */
        while (nslots > 0 && (cached_bytes + cap > limit_bytes || nslots == SLOTS)) {
            evicted[nev++] = slot[0];
            take_slot(0);
        }
        POISON(p, cap);
        slot[nslots++] = p;
        cached_bytes += cap;
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < nev; i++) release(evicted[i]);
}

void fc_cache_set_limit(size_t bytes)
{
    void *evicted[SLOTS];
    int nev = 0;
    pthread_mutex_lock(&lock);
    limit_bytes = bytes;
    while (nslots > 0 && cached_bytes > limit_bytes) {
        evicted[nev++] = slot[0];
        take_slot(0);
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < nev; i++) release(evicted[i]);
}

void fc_cache_stats(size_t *limit, size_t *cached, int *blocks, uint64_t *nhits, uint64_t *nmisses)
{
    pthread_mutex_lock(&lock);
    *limit = limit_bytes;
    *cached = cached_bytes;
    *blocks = nslots;
    *nhits = hits;
    *nmisses = misses;
    pthread_mutex_unlock(&lock);
}
