/* cli_common.c — what several commands of the generated trainer share:
 * reading and masking data, sizing rows, loading a trained model (with
 * --init-from and refinement of local guides), writing rows of values.
 * No option parsing (cli.c) and no command (cmd_*.c). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ helpers */

bool vlm_cli_ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* Read a data file, keep its first --limit items, --binarize it. */
int vlm_cli_read_data(const VlmModel *m, const Opts *o, const char *path,
                     VlmData *d)
{
    VlmErr err;
    if (vlm_data_read(path, o->format, 0, d, &err) != 0)
        return vlm_cli_fail("%s", err.msg);
    if (d->n == 0) {
        vlm_data_free(d);
        return vlm_cli_fail("%s: no items", path);
    }
    if (o->limit > 0 && (size_t)o->limit < d->n)
        d->n = (size_t)o->limit;   /* the arrays keep their size */
    if (o->binarize && d->x8)   /* stays compact: 0 or 255 = 1.0f */
        for (size_t i = 0; i < d->n * d->d; i++)
            d->x8[i] = d->x8[i] / 255.0f > 0.5f ? 255 : 0;
    else if (o->binarize)
        for (size_t i = 0; i < d->n * d->d; i++)
            if (!isnan(d->x[i]))
                d->x[i] = d->x[i] > 0.5f ? 1.0f : 0.0f;
    if (vlm_model_check_data(m, d, path, &err) != 0) {
        vlm_data_free(d);
        return vlm_cli_fail("%s", err.msg);
    }
    return 0;
}

/* --mask top-half for train, eval, posterior and gradvar (impute builds
 * its own mask): the first half of each item's values
 * (the top rows of a row-major image) become missing, like NaN entries,
 * in a fraction frac of the items: item i when floor((i+1) frac) >
 * floor(i frac) (every item at 1, every other one at 0.5). A model never
 * shown a top half cannot learn it, so imputation needs frac < 1. */
void vlm_cli_mask_top_half(VlmData *d, double frac)
{
    if (!d->mask) {
        d->mask = vlm_xmalloc(d->n * d->d * sizeof *d->mask);
        for (size_t i = 0; i < d->n * d->d; i++)
            d->mask[i] = 1;
    }
    for (size_t i = 0; i < d->n; i++)
        for (size_t k = 0; k < d->d / 2 && (frac >= 1 || floor((i + 1) * frac)
                                            > floor(i * frac)); k++) {
            d->mask[i * d->d + k] = 0;
            if (d->x8)
                d->x8[i * d->d + k] = 0;
            else
                d->x[i * d->d + k] = 0;
        }
}

bool vlm_cli_want_mask(const Opts *o)
{
    return o->mask && !strcmp(o->mask, "top-half");
}

long vlm_cli_total_numel(const VlmModel *m)
{
    long n = 0;
    for (int j = 0; j < m->n_observed; j++)
        n += m->vars[m->n_latent + j].numel;
    return n;
}

/* Rows for evaluation: room for `items` items of K samples, capped by an
 * activation budget of 1 GiB. */
int vlm_cli_eval_rows(const VlmModel *m, int items, int K)
{
    size_t per = m->bytes_per_row ? m->bytes_per_row : 256;
    size_t cap = ((size_t)1 << 30) / per;
    size_t want = (size_t)items * (size_t)K * (size_t)m->E;
    if (want > cap)
        want = cap;
    if (want < (size_t)m->E)
        want = (size_t)m->E;
    if (want > (size_t)1 << 24)
        want = (size_t)1 << 24;
    return (int)want;
}

/* --init-from: copy the global parameters of another model's checkpoint
 * whose name and shape match (e.g. vae.vlm's decoder into vae_local.vlm).
 * The checkpoint's model hash is read from its header (bytes 12..19,
 * docs/io.md) so that the loader's integrity checks still run. */
static int init_from(VlmModel *m, const char *path)
{
    VlmErr err;
    unsigned char h[20];
    FILE *f = fopen(path, "rb");
    if (!f)
        return vlm_cli_fail("%s: cannot open checkpoint: %s", path, strerror(errno));
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got != sizeof h)
        return vlm_cli_fail("%s: not a vlm checkpoint (too short)", path);
    uint64_t hash = 0;
    for (int i = 0; i < 8; i++)
        hash |= (uint64_t)h[12 + i] << (8 * i);
    VlmCkpt c;
    if (vlm_ckpt_load(path, hash, &c, &err) != 0)
        return vlm_cli_fail("%s", err.msg);
    int copied = 0;
    size_t floats = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (p->local)
            continue;
        for (int k = 0; k < c.n_tensors; k++) {
            const VlmCkptTensor *t = &c.t[k];
            bool same = !strcmp(t->name, p->name) && t->rank == p->rank &&
                        t->count == p->count;
            for (int r = 0; same && r < p->rank; r++)
                same = t->dims[r] == p->dims[r];
            if (same) {
                memcpy(m->w + p->offset, t->data, p->count * sizeof(float));
                copied++;
                floats += p->count;
                break;
            }
        }
    }
    vlm_ckpt_free(&c);
    if (copied == 0)
        return vlm_cli_fail("%s: no parameter of this model matches the checkpoint's "
                    "by name and shape", path);
    fprintf(stderr, "%s: initialised %d parameter tensors (%zu values) from "
            "%s\n", vlm_cli_prog, copied, floats, path);
    return 0;
}

/* Load a trained model for eval/posterior/impute/sample; for data-bound
 * commands size the local table to the data and refine it. */
int vlm_cli_load_trained(VlmModel *m, const Opts *o, const VlmData *d,
                        int rows)
{
    VlmErr err;
    /* sample without --load draws from the parameters as initialised
     * from --seed: a model with known parameters, for synthetic data. */
    if (!o->load && !o->init_from && strcmp(o->cmd, "sample") &&
        strcmp(o->cmd, "gradvar"))
        return vlm_cli_fail("%s needs --load CKPT (a trained checkpoint)", o->cmd);
    if (o->load && o->init_from)
        return vlm_cli_fail("give --load or --init-from, not both");
    vlm_model_alloc_local(m, d && m->local_width ? d->n : 0);
    vlm_model_init_params(m, o->seed);
    bool loc_loaded = false;
    if (o->load && vlm_model_load(m, o->load, &loc_loaded, &err) != 0)
        return vlm_cli_fail("%s", err.msg);
    if (o->init_from && init_from(m, o->init_from) != 0)
        return 1;
    vlm_model_alloc_rows(m, rows);
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_SAMPLE);
    if (d && m->local_width && o->refine > 0) {
        int b = o->batch > 0 ? o->batch : 64;
        if (vlm_train_refine(m, d, (int)o->refine, b, o->refine_lr, &err))
            return vlm_cli_fail("%s", err.msg);
    }
    return 0;
}


/* ------------------------------------------------------------ outputs */

static char **col_names(const VlmModel *m, long D)
{
    char **names = vlm_xmalloc((size_t)D * sizeof *names);
    long c = 0;
    for (int j = 0; j < m->n_observed; j++) {
        const VlmVarInfo *v = &m->vars[m->n_latent + j];
        for (long i = 0; i < v->numel; i++) {
            char buf[96];
            if (v->numel == 1)
                snprintf(buf, sizeof buf, "%s", v->name);
            else
                snprintf(buf, sizeof buf, "%s[%ld]", v->name, i);
            names[c++] = strdup(buf);
        }
    }
    return names;
}

void vlm_cli_free_names(char **names, long n)
{
    for (long i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

bool vlm_cli_image_shape(long D, int h, int w, int *H, int *W)
{
    if (h > 0) {
        if ((long)h * w != D)
            return false;
        *H = h;
        *W = w;
        return true;
    }
    long s = (long)floor(sqrt((double)D) + 0.5);
    if (s * s != D)
        return false;
    *H = *W = (int)s;
    return true;
}

/* Write n rows of D values to .csv, .npy or .png (atomic writers). */
int vlm_cli_write_rows(const VlmModel *m, const char *path, size_t n, long D,
                      const float *x, int h, int w, VlmErr *err)
{
    if (vlm_cli_ends_with(path, ".png")) {
        int H, W;
        if (!vlm_cli_image_shape(D, h, w, &H, &W)) {
            vlm_err_set(err, "%s: %ld values per item are not an image; give "
                        "--shape HxW", path, D);
            return -1;
        }
        int cols = (int)ceil(sqrt((double)n));
        return vlm_png_grid(path, x, (int)n, H, W, cols, err);
    }
    if (vlm_cli_ends_with(path, ".npy"))
        return vlm_data_write_npy(path, n, (size_t)D, x, err);
    char **names = col_names(m, D);
    int rc = vlm_data_write_csv(path, (const char *const *)names, n,
                                (size_t)D, x, err);
    vlm_cli_free_names(names, D);
    return rc;
}


/* Rows for the commands that weigh draws per item (posterior, impute): S
 * draws per item (1 when every latent is summed out), SE = S x E rows per
 * item, and at least one item's SE rows. */
int vlm_cli_draw_rows(const VlmModel *m, const Opts *o, int *S, int *SE)
{
    *S = vlm_model_exact(m) ? 1 : o->samples;
    *SE = *S * (int)m->E;
    int rows = vlm_cli_eval_rows(m, o->batch > 0 ? o->batch : 64, *S);
    return rows < *SE ? *SE : rows;
}
