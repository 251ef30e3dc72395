/* shard.c — which items each rank computes under MPI: contiguous slices of
 * a step's global batch, or the fixed block partition of the data's items
 * (models with local guide parameters: an item's parameters stay on the
 * rank that owns it). Pure arithmetic: no MPI calls here. */
#include "vlm.h"

#include <string.h>

void vlm_shard_range(size_t n, int rank, int size, size_t *lo, size_t *hi)
{
    *lo = n * (size_t)rank / (size_t)size;
    *hi = n * (size_t)(rank + 1) / (size_t)size;
}

int vlm_shard_owner(size_t i, size_t n, int size)
{
    /* the r with lo(r) <= i < hi(r): floor((i + 1) size - 1) / n) */
    int r = (int)(((i + 1) * (size_t)size - 1) / n);
    size_t lo, hi;
    while (vlm_shard_range(n, r, size, &lo, &hi), i < lo)
        r--;
    while (vlm_shard_range(n, r, size, &lo, &hi), i >= hi)
        r++;
    return r;
}

size_t vlm_shard_batch(VlmShardKind k, const uint32_t *idx, size_t cnt,
                       size_t n, int rank, int size, uint32_t *out,
                       size_t *counts, size_t *min_cnt)
{
    if (k == VLM_SHARD_SLICE) {
        size_t lo, hi;
        vlm_shard_range(cnt, rank, size, &lo, &hi);
        for (size_t i = lo; i < hi; i++)
            out[i - lo] = idx[i];
        *min_cnt = cnt / (size_t)size;   /* the smallest slice */
        return hi - lo;
    }
    size_t mine = 0, least = cnt;
    memset(counts, 0, (size_t)size * sizeof *counts);
    for (size_t i = 0; i < cnt; i++) {   /* each item's owner, once */
        int r = vlm_shard_owner(idx[i], n, size);
        counts[r]++;
        if (r == rank)
            out[mine++] = idx[i];
    }
    for (int r = 0; r < size; r++)
        least = counts[r] < least ? counts[r] : least;
    *min_cnt = least;
    return mine;
}
