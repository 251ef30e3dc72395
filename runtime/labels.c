/* labels.c — hiding the values of an observed variable in loaded data, for
 * semi-supervised training and for testing a classifier: all of them
 * (--hide y), all but N per class (--keep-labels y=N), and keeping only the
 * items where a variable is given (--labelled-only). Hidden values become
 * missing through the data's mask, so the model sums them out; nothing
 * here reads a model's parameters. */
#include "vlm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The mask of the file variable v reads, allocated (all observed) if the
 * file had none. */
static float *mask_of(const VlmModel *m, VlmData *d, int v, VlmBind *b)
{
    *b = vlm_data_bind_of(m, d, v);
    VlmData *f = (VlmData *)b->data;
    if (!f->mask) {
        f->mask = vlm_xmalloc(f->n * f->d * sizeof *f->mask);
        for (size_t i = 0; i < f->n * f->d; i++)
            f->mask[i] = 1;
    }
    return f->mask;
}

void vlm_data_hide(const VlmModel *m, VlmData *d, int v, const bool *hide)
{
    VlmBind b;
    float *mask = mask_of(m, d, v, &b);
    const VlmData *f = b.data;
    for (size_t i = 0; i < d->n; i++)
        if (!hide || hide[i])
            for (long k = 0; k < m->vars[v].numel; k++)
                mask[i * f->d + b.column + (size_t)k] = 0;
}

bool vlm_data_given(const VlmModel *m, const VlmData *d, int v, size_t i)
{
    VlmBind b = vlm_data_bind_of(m, d, v);
    const VlmData *f = b.data;
    float x;
    vlm_data_rows(f, i, 1, b.column, 1, &x);
    size_t at = i * f->d + b.column;
    return !isnan(x) && (!f->mask || f->mask[at] != 0);
}

int vlm_data_keep_per_class(const VlmModel *m, VlmData *d, int v, long per_class,
                            uint64_t seed, size_t *kept, VlmErr *err)
{
    const VlmVarInfo *vi = &m->vars[v];
    if (vi->kind != VLM_VAR_OBSERVED || vi->treat != VLM_TREAT_ENUMERATE || vi->numel != 1) {
        vlm_err_set(err, "--keep-labels %s=N: `%s` is not a partly observed class "
                    "(an observed scalar Categorical or Bernoulli that another "
                    "variable reads)", vi->name, vi->name);
        return -1;
    }
    VlmBind b = vlm_data_bind_of(m, d, v);
    long K = vi->support;
    long *count = vlm_xcalloc((size_t)K, sizeof *count);
    bool *hide = vlm_xmalloc(d->n * sizeof *hide);
    size_t *order = vlm_xmalloc(d->n * sizeof *order);
    for (size_t i = 0; i < d->n; i++)
        order[i] = i;
    /* which items keep their label: a shuffle from --seed, on a stream of
     * its own (the batcher's ORDER stream would draw the same shuffle, and
     * epoch 1 would open with every labelled item in its first batches) */
    VlmRng rng;
    vlm_rng_init(&rng, seed, VLM_STREAM_LABELS);
    for (size_t i = d->n; i > 1; i--) {
        size_t j = (size_t)vlm_rng_below(&rng, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    *kept = 0;
    for (size_t k = 0; k < d->n; k++) {
        size_t i = order[k];
        float x;
        vlm_data_rows(b.data, i, 1, b.column, 1, &x);
        hide[i] = true;
        if (!vlm_data_given(m, d, v, i))
            continue;
        long g = (long)x;
        if (g >= 0 && g < K && count[g] < per_class) {
            count[g]++;
            hide[i] = false;
            (*kept)++;
        }
    }
    vlm_data_hide(m, d, v, hide);
    free(count);
    free(hide);
    free(order);
    return 0;
}

/* Move item `from` of file f to position `to` (to <= from). */
static void move_item(VlmData *f, size_t to, size_t from)
{
    if (to == from)
        return;
    size_t w = f->d;
    if (f->x)
        memmove(f->x + to * w, f->x + from * w, w * sizeof *f->x);
    if (f->x8)
        memmove(f->x8 + to * w, f->x8 + from * w, w);
    if (f->mask)
        memmove(f->mask + to * w, f->mask + from * w, w * sizeof *f->mask);
    if (f->labels)
        f->labels[to] = f->labels[from];
}

size_t vlm_data_keep_given(const VlmModel *m, VlmData *d, int v)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (!vlm_data_given(m, d, v, i))
            continue;
        if (d->n_parts)
            for (int k = 0; k < d->n_parts; k++)
                move_item(&d->parts[k], n, i);
        else
            move_item(d, n, i);
        n++;
    }
    vlm_data_limit(d, n);
    return n;
}
