/* parallel.c — a small pool for the runtime's own loops (the elementwise
 * work between GEMMs: log-densities, optimizer steps, fused bias and
 * activation passes, and the GEMMs' own slices, see gemm.c), sized by
 * --threads, and background tasks.
 *
 * vlm_parallel_for cuts [0, n) into fixed slices (their bounds depend
 * only on n, min_chunk and the thread count, so a run is reproducible for
 * a given thread count) that the caller and the workers claim one at a
 * time: a worker busy with a background task leaves its slices to the
 * others. vlm_parallel_async hands a task to the workers, in the
 * background of the caller's own work; vlm_parallel_wait returns when
 * every posted task is done. The training loop steps the optimizer that
 * way (memory-bound, no faster on two threads than on one) while the
 * backward passes go on with the next layers. */
#include "vlm.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MAX_THREADS 64
#define MAX_TASKS 1024        /* background tasks between two waits */
/* An idle worker polls (yielding the core) for this long before it
 * sleeps on the condition variable. Waking a sleeping worker took 30-80
 * us on a 2-core VM, against 2-5 us for a polling one, and a training
 * step's serial stretches (the 20-wide layers, the densities) run 0.1-1
 * ms between two split products: with 200 polls (about 150 us) the
 * worker slept through them and every large product after one started
 * late; measured on the VAE at 2 threads, epochs 2.2-2.5% faster with
 * 2 ms (VaDE 3.8%), steps alternating between the two in one process. */
#define SPIN_S 2e-3

static bool timeline;             /* VLM_TIMELINE: slices and tasks recorded */
static _Thread_local int self;    /* 0: the caller; 1..: the workers */

/* fn(ctx, lo, hi), recorded in the timeline when it is on */
static void run_fn(char kind, VlmTaskFn *fn, void *ctx, size_t lo, size_t hi)
{
    if (!timeline) {
        fn(ctx, lo, hi);
        return;
    }
    double t0 = vlm_now();
    fn(ctx, lo, hi);
    vlm_timeline_add(self, kind, (const void *)fn, t0, vlm_now());
}

typedef struct Task {
    VlmTaskFn *fn;
    void *ctx;
    size_t lo, hi;
} Task;

static struct Pool {
    int threads;              /* including the caller */
    int started;              /* workers created */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint signal;       /* bumped at each job and task posted */
    /* the current job: claim = job id << 16 | slices << 8 | next slice
     * (slices <= MAX_THREADS < 256): a claim names its job and its count
     * in one word, so a stale look at another job's fields can never
     * claim; the fields are written before the claim word names the job */
    _Atomic uint64_t claim;
    _Atomic(VlmTaskFn *) fn;
    _Atomic(void *) ctx;
    atomic_size_t n, chunk;
    atomic_uint left;         /* slices not yet finished */
    /* background tasks: posted by the caller, taken by anyone */
    Task task[MAX_TASKS];
    atomic_uint posted, taken, done;
} pool = {.threads = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Claims and runs slices of the current job until none is left; the
 * fields are read only after a successful claim, and a job's fields are
 * not rewritten before all its slices are finished. */
static void run_slices(void)
{
    uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        unsigned k = (unsigned)(c & 0xffu);
        if (k >= (unsigned)((c >> 8) & 0xffu))
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;   /* c reloaded: another claim, or the next job */
        size_t chunk = atomic_load_explicit(&pool.chunk, memory_order_relaxed);
        size_t n = atomic_load_explicit(&pool.n, memory_order_relaxed);
        size_t lo = (size_t)k * chunk, hi = lo + chunk < n ? lo + chunk : n;
        VlmTaskFn *fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
        if (lo < hi)
            run_fn('s', fn, atomic_load_explicit(&pool.ctx, memory_order_relaxed), lo, hi);
        atomic_fetch_sub_explicit(&pool.left, 1, memory_order_acq_rel);
        c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    }
}

/* Takes and runs one background task; false when none is waiting. */
static bool run_task(void)
{
    unsigned t = atomic_load_explicit(&pool.taken, memory_order_acquire);
    while (t < atomic_load_explicit(&pool.posted, memory_order_acquire)) {
        if (atomic_compare_exchange_weak_explicit(&pool.taken, &t, t + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            Task *k = &pool.task[t];
            run_fn('t', k->fn, k->ctx, k->lo, k->hi);
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_acq_rel);
            return true;
        }
    }
    return false;
}

static bool work_waiting(void)
{
    uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
    return (c & 0xffu) < ((c >> 8) & 0xffu) ||
           atomic_load_explicit(&pool.taken, memory_order_acquire) <
               atomic_load_explicit(&pool.posted, memory_order_acquire);
}

static void *worker(void *arg)
{
    self = (int)(intptr_t)arg;
    for (;;) {
        /* slices first: the caller waits for them */
        run_slices();
        if (run_task())
            continue;
        unsigned s = atomic_load_explicit(&pool.signal, memory_order_acquire);
        double t0 = vlm_now();
        for (int spins = 1; !work_waiting(); spins++) {
            sched_yield();
            if (spins % 16 == 0 && vlm_now() - t0 > SPIN_S)   /* the clock every 16 polls */
                break;
        }
        if (work_waiting())
            continue;
        pthread_mutex_lock(&pool.mu);
        while (atomic_load_explicit(&pool.signal, memory_order_acquire) == s)
            pthread_cond_wait(&pool.wake, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
    return NULL;
}

static void wake_workers(void)
{
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add_explicit(&pool.signal, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
}

void vlm_parallel_set_threads(int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    vlm_parallel_wait();
    timeline = vlm_timeline_on();   /* before any worker reads it */
    /* workers are created once, on demand; fewer can be used later (a
     * worker beyond the count only ever finds slices it may take) */
    pthread_mutex_lock(&pool.mu);
    while (pool.started < threads - 1) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, worker, (void *)(intptr_t)(pool.started + 1)) != 0)
            break;
        pthread_detach(tid);
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
        run_fn('i', fn, ctx, 0, n);
        return;
    }
    size_t chunk = (n + (size_t)T - 1) / (size_t)T;
    unsigned slices = (unsigned)((n + chunk - 1) / chunk);
    /* the previous job is finished: nobody reads these until the claim
     * word below names the new job */
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool.n, n, memory_order_relaxed);
    atomic_store_explicit(&pool.chunk, chunk, memory_order_relaxed);
    atomic_store_explicit(&pool.left, slices, memory_order_relaxed);
    uint64_t id = (atomic_load_explicit(&pool.claim, memory_order_relaxed) >> 16) + 1;
    atomic_store_explicit(&pool.claim, id << 16 | (uint64_t)slices << 8, memory_order_release);
    wake_workers();
    run_slices();
    while (atomic_load_explicit(&pool.left, memory_order_acquire) > 0)
        sched_yield();
    /* no slice left to claim: a worker that still tries sees k >= slices */
}

void vlm_parallel_async(VlmTaskFn *fn, void *ctx, size_t lo, size_t hi)
{
    unsigned p = atomic_load_explicit(&pool.posted, memory_order_relaxed);
    if (pool.threads <= 1 || p >= MAX_TASKS) {
        run_fn('i', fn, ctx, lo, hi);
        return;
    }
    pool.task[p] = (Task){fn, ctx, lo, hi};
    atomic_store_explicit(&pool.posted, p + 1, memory_order_release);
    wake_workers();
}

void vlm_parallel_wait(void)
{
    unsigned p = atomic_load_explicit(&pool.posted, memory_order_acquire);
    if (p == 0)
        return;
    while (run_task())   /* the caller takes what no worker has yet */
        ;
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < p)
        sched_yield();
    /* posted first: a worker that still looks sees nothing to take */
    atomic_store_explicit(&pool.posted, 0, memory_order_release);
    atomic_store_explicit(&pool.taken, 0, memory_order_release);
    atomic_store_explicit(&pool.done, 0, memory_order_release);
}
