/* shard.c — which items each rank computes under MPI: contiguous slices of
 * a step's global batch, or the fixed block partition of the data's items
 * (models with local guide parameters: an item's parameters stay on the
 * rank that owns it). Pure arithmetic: no MPI calls here. */
#include "vlm.h"

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
                       size_t *min_cnt)
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
    for (int r = 0; r < size; r++) {
        size_t c = 0;
        for (size_t i = 0; i < cnt; i++)
            if (vlm_shard_owner(idx[i], n, size) == r) {
                if (r == rank)
                    out[mine++] = idx[i];
                c++;
            }
        least = c < least ? c : least;
    }
    *min_cnt = least;
    return mine;
}
