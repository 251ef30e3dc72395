/* arena.c — the compiler's bump allocator: one arena per compilation, freed
 * once. Blocks are chained; big requests get a block of their own. It does
 * not free individual objects. */
#include "vlmc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct Block {
    struct Block *next;
    size_t size, used;
    size_t map_size;      /* bytes mapped for this block (for munmap) */
    _Alignas(16) unsigned char data[];
} Block;

struct VlmcArena {
    Block *head;
    size_t next_size;     /* blocks grow geometrically up to BLOCK_MAX */
};

#define BLOCK_MIN ((size_t)1 << 20)
#define BLOCK_MAX ((size_t)64 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

/* Fresh zeroed memory straight from mmap; big blocks ask for transparent
 * huge pages, which cuts page faults on 10 MB inputs (~500 MB of AST). */
static Block *map_block(size_t payload, const char *file, int line)
{
    size_t want = sizeof(Block) + payload;
    size_t size = (want + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", file, line, size);
        exit(1);
    }
#ifdef MADV_HUGEPAGE
    if (size >= 2 * HUGE_PAGE) madvise(p, size, MADV_HUGEPAGE);
#endif
    Block *b = p;
    b->map_size = size;
    b->size = size - sizeof(Block);
    return b;
}

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
        if (a->next_size < BLOCK_MIN) a->next_size = BLOCK_MIN;
        bool big = n > a->next_size / 4;
        b = map_block(big ? n : a->next_size, __FILE__, __LINE__);
        if (big && a->head) {   /* big object: keep filling the current block */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
            if (a->next_size < BLOCK_MAX) a->next_size *= 2;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;   /* fresh mmap'd memory, never reused: already zero */
}

char *vlmc_arena_strndup(VlmcArena *a, const char *s, size_t n)
{
    char *p = vlmc_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* The old array is left to the arena: growth by doubling wastes at most
 * as much as the final array holds. */
void *vlmc_arena_grow(VlmcArena *a, void *arr, int n, int *cap, size_t size,
                      int first)
{
    if (n < *cap)
        return arr;
    int ncap = *cap ? 2 * *cap : first;
    void *na = vlmc_arena_alloc(a, (size_t)ncap * size);
    if (n)
        memcpy(na, arr, (size_t)n * size);
    *cap = ncap;
    return na;
}

void vlmc_arena_free(VlmcArena *a)
{
    if (!a) return;
    for (Block *b = a->head, *next; b; b = next) {
        next = b->next;
        munmap(b, b->map_size);
    }
    free(a);
}
