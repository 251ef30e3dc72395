/* memory.c — checked allocation, bump arenas and error messages.
 * Nothing here frees implicitly: arenas are reset or freed by their owner. */
#include "vlm.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n, const char *file, int line)
{
    fprintf(stderr, "%s:%d: error: out of memory (%zu bytes)\n", file, line, n);
    exit(1);
}

void *vlm_xmalloc_(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n, file, line);
    return p;
}

void *vlm_xcalloc_(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size, file, line);
    return p;
}

void *vlm_xrealloc_(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n, file, line);
    return q;
}

void vlm_arena_init(VlmArena *a, size_t size)
{
    a->size = size;
    a->used = 0;
    a->base = NULL;
    if (size) {
        a->base = aligned_alloc(64, (size + 63) & ~(size_t)63);
        if (!a->base)
            out_of_memory(size, __FILE__, __LINE__);
        memset(a->base, 0, size);
    }
}

void *vlm_arena_alloc(VlmArena *a, size_t n)
{
    size_t start = (a->used + 63) & ~(size_t)63;
    if (start > a->size || n > a->size - start) {
        fprintf(stderr, "error: arena exhausted (%zu of %zu bytes used, %zu more asked)\n",
                a->used, a->size, n);
        exit(1);
    }
    a->used = start + n;
    return a->base + start;
}

void vlm_arena_reset(VlmArena *a) { a->used = 0; }

void vlm_arena_free(VlmArena *a)
{
    free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}

void vlm_err_set(VlmErr *e, const char *fmt, ...)
{
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}
