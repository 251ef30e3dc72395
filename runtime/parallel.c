/* parallel.c — a small fork-join pool for the runtime's own loops (the
 * elementwise work between GEMMs: log-densities, optimizer steps, fused
 * bias/activation passes). OpenBLAS threads its GEMMs itself; this pool
 * threads the rest (and splits GEMMs, see vlm_sgemm) with --threads. Work is split statically by
 * index ranges, so a run is reproducible for a given thread count. */
#include "vlm.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MAX_THREADS 64
#define SPIN 200              /* yielding polls before a worker sleeps */

static struct Pool {
    int threads;              /* including the caller */
    pthread_t tid[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint gen;          /* bumped once per job */
    atomic_int pending;       /* workers still running the job */
    VlmTaskFn *fn;
    void *ctx;
    size_t n, chunk;
    int started;
} pool = {.threads = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void run_slice(int t)
{
    size_t lo = (size_t)t * pool.chunk;
    if (lo >= pool.n)
        return;
    size_t hi = lo + pool.chunk < pool.n ? lo + pool.chunk : pool.n;
    pool.fn(pool.ctx, lo, hi);
}

/* the job generation at each worker's creation: a worker only runs jobs
 * published after it exists (set_threads and parallel_for are called from
 * one thread, so no job is in flight while a worker is created) */
static unsigned start_gen[MAX_THREADS];

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    unsigned seen = start_gen[t];
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen && spins < SPIN) {
            spins++;
            sched_yield();
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.wake, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        run_slice(t);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

void vlm_parallel_set_threads(int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    /* workers are created once, on demand; fewer can be used later */
    pthread_mutex_lock(&pool.mu);
    while (pool.started < threads - 1) {
        int t = pool.started + 1;
        start_gen[t] = atomic_load_explicit(&pool.gen, memory_order_acquire);
        if (pthread_create(&pool.tid[t], NULL, worker, (void *)(intptr_t)t) != 0)
            break;
        pthread_detach(pool.tid[t]);
        pool.started++;
    }
    pool.threads = pool.started + 1 < threads ? pool.started + 1 : threads;
    pthread_mutex_unlock(&pool.mu);
}

int vlm_parallel_threads(void) { return pool.threads; }

void vlm_parallel_for(size_t n, size_t min_chunk, VlmTaskFn *fn, void *ctx)
{
    int T = pool.threads;
    if (min_chunk < 1)
        min_chunk = 1;
    if (T > 1 && n / (size_t)T < min_chunk)
        T = (int)(n / min_chunk) > 1 ? (int)(n / min_chunk) : 1;
    if (T <= 1) {
        fn(ctx, 0, n);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunk = (n + (size_t)T - 1) / (size_t)T;
    /* workers beyond T find an empty slice */
    atomic_store_explicit(&pool.pending, pool.started, memory_order_release);
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_slice(0);
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0)
        sched_yield();
}
