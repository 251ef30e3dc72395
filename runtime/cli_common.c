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

/* Every output path a command was given, checked before any long work
 * (reading data, training, sampling): a run must not be thrown away at
 * its end because its result cannot be written. --log is appended to. */
int vlm_cli_check_outputs(const Opts *o)
{
    const char *paths[] = {o->save, o->log, o->out, o->png, o->probs, o->latents};
    const char *names[] = {"--save", "--log", "--out", "--png", "--probs", "--latents"};
    VlmErr err;
    for (int i = 0; i < 6; i++) {
        if (!paths[i])
            continue;
        for (int j = 0; j < i; j++)
            if (paths[j] && !strcmp(paths[i], paths[j]))
                return vlm_cli_fail("%s and %s name the same file %s",
                                    names[j], names[i], paths[i]);
        if (vlm_io_check_writable(paths[i], i == 1, &err) != 0)
            return vlm_cli_fail("%s %s", names[i], err.msg);
    }
    return 0;
}

/* `NAME=FILE` names the variable the file holds when NAME is an
 * identifier; anything else is a path (write ./a=b.csv for such a file). */
static const char *split_binding(const char *arg, char *name, size_t n)
{
    const char *eq = strchr(arg, '=');
    name[0] = 0;
    if (!eq || eq == arg || (size_t)(eq - arg) >= n)
        return arg;
    for (const char *p = arg; p < eq; p++)
        if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (p > arg && *p >= '0' && *p <= '9')))
            return arg;
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = 0;
    return eq + 1;
}

const char *vlm_cli_data_name(const Opts *o, bool test, char *buf, size_t n)
{
    const char *const *args = test ? o->test_args : o->data_args;
    int k = test ? o->n_test_args : o->n_data_args;
    buf[0] = 0;
    for (int i = 0; i < k; i++) {
        size_t u = strlen(buf);
        snprintf(buf + u, n - u, "%s%s", i ? ", " : "", args[i]);
    }
    return buf;
}

/* --binarize: the observed values thresholded at 0.5 (bytes stay compact:
 * 0 or 255 = 1.0f); inputs and integer variables are left alone. */
static void binarize(const VlmModel *m, VlmData *d)
{
    for (int k = 0; k < m->n_data; k++) {
        int v = m->data_var[k];
        VlmBind b = vlm_data_bind_of(m, d, v);
        if (m->vars[v].kind != VLM_VAR_OBSERVED || b.raw)
            continue;
        VlmData *f = (VlmData *)b.data;
        size_t nu = (size_t)m->vars[v].numel;
        for (size_t i = 0; i < f->n; i++)
            for (size_t e = b.column; e < b.column + nu; e++) {
                size_t at = i * f->d + e;
                if (f->x8)
                    f->x8[at] = f->x8[at] / 255.0f > 0.5f ? 255 : 0;
                else if (!isnan(f->x[at]))
                    f->x[at] = f->x[at] > 0.5f ? 1.0f : 0.0f;
            }
    }
}

/* Read the files, bind them, keep the first --limit items, --binarize. */
int vlm_cli_read_data(const VlmModel *m, const Opts *o, bool test,
                      VlmData *d)
{
    return vlm_cli_read_data_counted(m, o, test, d, NULL);
}

/* The observed variable called `name`, or -1 with an error naming the
 * option. */
static int observed_named(const VlmModel *m, const char *opt, const char *name)
{
    for (int v = m->n_latent; v < m->n_vars; v++)
        if (m->vars[v].kind == VLM_VAR_OBSERVED && !strcmp(m->vars[v].name, name))
            return v;
    vlm_cli_fail("%s %s: the model has no observed variable `%s`", opt, name, name);
    return -1;
}

/* --hide NAME (every item), and for training data --keep-labels NAME=N and
 * --labelled-only: values made missing through the data's mask. */
static int hide_values(const VlmModel *m, const Opts *o, bool test, VlmData *d)
{
    if (o->hide) {
        int v = observed_named(m, "--hide", o->hide);
        if (v < 0)
            return 1;
        vlm_data_hide(m, d, v, NULL);
    }
    if (test || !o->keep_labels)
        return 0;
    char name[64];
    const char *eq = strchr(o->keep_labels, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - o->keep_labels), o->keep_labels);
    int v = observed_named(m, "--keep-labels", name);
    if (v < 0)
        return 1;
    size_t kept, n = d->n;
    VlmErr err;
    if (vlm_data_keep_per_class(m, d, v, o->keep_per_class, o->seed, &kept, &err) != 0)
        return vlm_cli_fail("%s", err.msg);
    fprintf(stderr, "--keep-labels: `%s` kept in %zu of %zu items (at most %ld per "
            "class, chosen from --seed), hidden in the others\n", name, kept, n,
            o->keep_per_class);
    if (o->labelled_only) {
        vlm_data_keep_given(m, d, v);
        fprintf(stderr, "--labelled-only: training on the %zu items where `%s` is given\n",
                d->n, name);
    }
    return 0;
}

int vlm_cli_read_data_counted(const VlmModel *m, const Opts *o, bool test,
                              VlmData *d, size_t *in_file)
{
    VlmErr err;
    const char *const *args = test ? o->test_args : o->data_args;
    int n = test ? o->n_test_args : o->n_data_args;
    VlmData files[VLM_MAX_VARS];
    const char *names[VLM_MAX_VARS], *paths[VLM_MAX_VARS];
    char namebuf[VLM_MAX_VARS][64];
    for (int k = 0; k < n; k++) {
        paths[k] = split_binding(args[k], namebuf[k], sizeof namebuf[k]);
        names[k] = namebuf[k][0] ? namebuf[k] : NULL;
        int rc = vlm_data_read(paths[k], o->format, 0, &files[k], &err);
        if (rc == 0 && files[k].n == 0) {
            vlm_data_free(&files[k]);
            vlm_err_set(&err, "%s: no items", paths[k]);
            rc = -1;
        }
        if (rc != 0) {
            for (int j = 0; j < k; j++)
                vlm_data_free(&files[j]);
            return vlm_cli_fail("%s", err.msg);
        }
    }
    if (vlm_data_bind(m, files, names, paths, n, !strcmp(o->cmd, "sample"), d,
                      &err) != 0)
        return vlm_cli_fail("%s", err.msg);
    if (in_file)
        *in_file = d->n;
    if (o->limit > 0)
        vlm_data_limit(d, (size_t)o->limit);
    if (o->binarize)
        binarize(m, d);
    if (hide_values(m, o, test, d) != 0) {
        vlm_data_free(d);
        return 1;
    }
    /* MPI: every rank must read the same items (its shard of them) */
    if (vlm_mpi_check_same((uint64_t)d->n * 1000003u + d->d,
                           "data (the files differ in items or columns)", &err) != 0) {
        vlm_data_free(d);
        return vlm_cli_fail("%s", err.msg);
    }
    return 0;
}

/* --mask top-half for train, eval, posterior and gradvar (impute builds
 * its own mask): the first half of each item's
 * observed values (the top rows of a row-major image; inputs are never
 * hidden) become missing, like NaN entries, in a fraction frac of the
 * items: item i when floor((i+1) frac) > floor(i frac) (every item at 1,
 * every other one at 0.5). A model never shown a top half cannot learn it,
 * so imputation needs frac < 1. */
void vlm_cli_mask_top_half(const VlmModel *m, VlmData *d, double frac)
{
    long half = vlm_cli_total_numel(m) / 2, seen = 0;
    for (int k = 0; k < m->n_data && seen < half; k++) {
        int v = m->data_var[k];
        if (m->vars[v].kind != VLM_VAR_OBSERVED)
            continue;
        VlmBind b = vlm_data_bind_of(m, d, v);
        VlmData *f = (VlmData *)b.data;
        long nu = m->vars[v].numel, hide = half - seen < nu ? half - seen : nu;
        seen += hide;
        if (!f->mask) {
            f->mask = vlm_xmalloc(f->n * f->d * sizeof *f->mask);
            for (size_t i = 0; i < f->n * f->d; i++)
                f->mask[i] = 1;
        }
        for (size_t i = 0; i < f->n; i++)
            for (long e = 0; e < hide && (frac >= 1 || floor((i + 1) * frac)
                                          > floor(i * frac)); e++) {
                size_t at = i * f->d + b.column + (size_t)e;
                f->mask[at] = 0;
                if (f->x8)
                    f->x8[at] = 0;
                else
                    f->x[at] = 0;
            }
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

long vlm_cli_data_numel(const VlmModel *m)
{
    long n = 0;
    for (int k = 0; k < m->n_data; k++)
        n += m->vars[m->data_var[k]].numel;
    return n;
}

/* Rows for evaluation: room for `items` items of K samples, capped by an
 * activation budget of 1 GiB. */
int vlm_cli_eval_rows(const VlmModel *m, int items, int K)
{
    size_t per = m->bytes_per_row ? m->bytes_per_row : 256;
    size_t cap = ((size_t)1 << 30) / per;
    size_t want = (size_t)items * (size_t)K * (size_t)m->E_max;
    if (want > cap)
        want = cap;
    if (want < (size_t)m->E_max)
        want = (size_t)m->E_max;
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

/* A checkpoint that failed to load. A checkpoint records its consts and
 * a command without --set adopts them (cli.c): when the checkpoint's
 * consts differ from the model's ("it was saved with K=3 (here 4)",
 * train.c), --set made them differ. */
int vlm_cli_fail_load(const Opts *o, const char *msg)
{
    if (o->set_given && strstr(msg, "is for a different model") &&
        strstr(msg, "it was saved with"))
        return vlm_cli_fail("%s (--set was given: without it, the consts "
                            "the checkpoint was saved with are used)", msg);
    return vlm_cli_fail("%s", msg);
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
        return vlm_cli_fail_load(o, err.msg);
    if (o->init_from && init_from(m, o->init_from) != 0)
        return 1;
    vlm_model_alloc_rows(m, rows);
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_SAMPLE);
    /* under MPI rank 0 draws as one process would, the others their own */
    m->rng.stream += (uint64_t)vlm_comm_world()->rank << 32;
    if (d && m->local_width && o->refine > 0) {
        VlmRefineOpts r;
        vlm_refine_defaults(&r);
        r.max_steps = (int)o->refine;
        r.tol = o->refine_tol;
        r.batch = o->batch > 0 ? o->batch : 64;
        r.lr = o->refine_lr;
        if (vlm_train_refine(m, d, &r, NULL, &err))
            return vlm_cli_fail("%s", err.msg);
    }
    return 0;
}


/* ------------------------------------------------------------ outputs */

/* Names of D columns: every data variable's in declaration order when D
 * counts them all (rows with inputs), else the observed ones'. */
static char **col_names(const VlmModel *m, long D)
{
    char **names = vlm_xmalloc((size_t)D * sizeof *names);
    long c = 0;
    bool all = D == vlm_cli_data_numel(m);
    for (int j = 0; j < m->n_data && c < D; j++) {
        const VlmVarInfo *v = &m->vars[m->data_var[j]];
        if (!all && v->kind != VLM_VAR_OBSERVED)
            continue;
        for (long i = 0; i < v->numel && c < D; i++) {
            char buf[96];
            if (v->numel == 1)
                snprintf(buf, sizeof buf, "%s", v->name);
            else
                snprintf(buf, sizeof buf, "%s[%ld]", v->name, i);
            names[c++] = strdup(buf);
        }
    }
    for (; c < D; c++) {   /* not expected: unnamed columns */
        char buf[32];
        snprintf(buf, sizeof buf, "c%ld", c + 1);
        names[c] = strdup(buf);
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
    *SE = *S * (int)m->E_max;
    int rows = vlm_cli_eval_rows(m, o->batch > 0 ? o->batch : 64, *S);
    return rows < *SE ? *SE : rows;
}
