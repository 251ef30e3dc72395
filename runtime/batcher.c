/* batcher.c — minibatch order. The cursor (pos, epoch, perm, rng) is the
 * whole state: a copy of it, saved and restored, continues identically.
 * Each epoch's order is drawn from the VLM_STREAM_ORDER stream. */
#include "vlm.h"

#include <stdlib.h>
#include <string.h>

static void new_order(VlmBatcher *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->perm[i] = (uint32_t)i;
    if (b->shuffle)
        vlm_rng_shuffle(&b->rng, b->perm, b->n);
}

void vlm_batcher_init(VlmBatcher *b, size_t n, size_t batch, uint64_t seed,
                      bool shuffle)
{
    memset(b, 0, sizeof *b);
    if (n > UINT32_MAX) {
        fprintf(stderr, "error: %zu items is more than the batcher can index\n", n);
        exit(1);
    }
    b->n = n;
    b->batch = batch ? batch : 1;
    b->perm = vlm_xmalloc((n ? n : 1) * sizeof *b->perm);
    b->shuffle = shuffle;
    vlm_rng_init(&b->rng, seed, VLM_STREAM_ORDER);
    new_order(b);
}

/* The epoch ends with a 0-count call, which also draws the next order:
 * a cursor saved at an epoch boundary is then (epoch+1, pos 0). */
size_t vlm_batcher_next(VlmBatcher *b, const uint32_t **idx)
{
    if (b->pos >= b->n) {
        b->pos = 0;
        b->epoch++;
        new_order(b);
        *idx = b->perm;
        return 0;
    }
    size_t k = b->n - b->pos < b->batch ? b->n - b->pos : b->batch;
    *idx = b->perm + b->pos;
    b->pos += k;
    return k;
}

void vlm_batcher_free(VlmBatcher *b)
{
    free(b->perm);
    b->perm = NULL;
}
