/* timeline.c — an optional record of where the pool's threads spend a
 * run: every slice of a parallel loop and every background task, with
 * the thread that ran it, its start and end, and its function. Off unless
 * VLM_TIMELINE names a file; then the first VLM_TIMELINE_MAX events are
 * kept in memory and written there at exit, one line each:
 *   thread kind start_us end_us function_offset
 * (thread 0 is the caller, 1.. the workers; kind s = a slice, t = a
 * background task, i = a loop run whole on the caller; the offset is the
 * function's address less its object's load address, which addr2line -f
 * turns into a name). bench/timeline.sh compiles a model, runs it with
 * this on, and prints the summary and one training step. */
#include "vlm.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define VLM_TIMELINE_MAX (1 << 18)   /* events kept: 8 MB */

typedef struct Event {
    double t0, t1;        /* seconds since the record started */
    const void *fn;
    int thread;
    char kind;
} Event;

static struct {
    int state;            /* -1 not looked at yet, 0 off, 1 on */
    const char *path;     /* VLM_TIMELINE, as the environment holds it */
    double start;
    Event *ev;
    atomic_ulong n;       /* events claimed, may pass the maximum */
} tl = {.state = -1};

static void write_record(void)
{
    FILE *f = fopen(tl.path, "w");
    if (!f) {
        fprintf(stderr, "vlm: VLM_TIMELINE: cannot write %s\n", tl.path);
        return;
    }
    unsigned long n = atomic_load(&tl.n), kept = n < VLM_TIMELINE_MAX ? n : VLM_TIMELINE_MAX;
    fprintf(f, "# vlm timeline: %lu events, %lu kept; thread kind start_us end_us "
            "function_offset\n", n, kept);
    for (unsigned long i = 0; i < kept; i++) {
        const Event *e = &tl.ev[i];
        Dl_info d;
        uintptr_t off = (uintptr_t)e->fn;
        if (dladdr(e->fn, &d) && d.dli_fbase)
            off -= (uintptr_t)d.dli_fbase;
        fprintf(f, "%d %c %.1f %.1f 0x%lx\n", e->thread, e->kind, e->t0 * 1e6, e->t1 * 1e6,
                (unsigned long)off);
    }
    if (fclose(f) != 0)
        fprintf(stderr, "vlm: VLM_TIMELINE: cannot write %s\n", tl.path);
}

bool vlm_timeline_on(void)
{
    if (tl.state < 0) {   /* first call: from vlm_parallel_set_threads, before any worker */
        const char *p = getenv("VLM_TIMELINE");
        tl.state = 0;
        if (p && *p) {
            tl.path = p;
            tl.ev = vlm_xmalloc(VLM_TIMELINE_MAX * sizeof *tl.ev);
            tl.start = vlm_now();
            tl.state = 1;
            atexit(write_record);
        }
    }
    return tl.state == 1;
}

void vlm_timeline_add(int thread, char kind, const void *fn, double t0, double t1)
{
    unsigned long i = atomic_fetch_add_explicit(&tl.n, 1, memory_order_relaxed);
    if (i < VLM_TIMELINE_MAX)
        tl.ev[i] = (Event){t0 - tl.start, t1 - tl.start, fn, thread, kind};
}
