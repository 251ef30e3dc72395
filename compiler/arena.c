/* arena.c — the compiler's bump allocator: one arena per compilation, freed
 * once. Blocks are chained; big requests get a block of their own. It does
 * not free individual objects. */
#include "vlmc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Block {
    struct Block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} Block;

struct VlmcArena {
    Block *head;
};

#define BLOCK_SIZE ((size_t)1 << 20)

static void *xcalloc(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", file, line, n * size);
        exit(1);
    }
    return p;
}
#define XCALLOC(n, s) xcalloc((n), (s), __FILE__, __LINE__)

VlmcArena *vlmc_arena_new(void)
{
    return XCALLOC(1, sizeof(VlmcArena));
}

void *vlmc_arena_alloc(VlmcArena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    Block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > BLOCK_SIZE / 4 ? n : BLOCK_SIZE;
        b = XCALLOC(1, sizeof(Block) + size);
        b->size = size;
        if (size == n && a->head) {   /* big object: keep the current block */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;   /* calloc'd memory, never reused: already zero */
}

char *vlmc_arena_strndup(VlmcArena *a, const char *s, size_t n)
{
    char *p = vlmc_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void vlmc_arena_free(VlmcArena *a)
{
    if (!a) return;
    for (Block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}
