/* model.c — the VlmModel lifecycle seen from the driver: configure through
 * the descriptor, the parameter block and the local table, initialisation,
 * and filling a minibatch's observed rows. No inference happens here. */
#include "vlm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vlm_model_init(VlmModel *m, const VlmModelDesc *desc, VlmErr *err)
{
    memset(m, 0, sizeof *m);
    m->desc = desc;
    m->E = 1;
    m->markov_var = -1;
    if (desc->configure(m, err) != 0)
        return -1;
    if (m->E < 1)
        m->E = 1;
    m->E_max = m->E;
    if (m->E_given < 1 || m->E_given > m->E)
        m->E_given = m->E;
    if (m->n_data == 0) {   /* a descriptor without a data table: the
                               observed variables, then the inputs */
        for (int j = 0; j < m->n_observed; j++)
            m->data_var[m->n_data++] = m->n_latent + j;
        for (int j = 0; j < m->n_inputs; j++)
            m->data_var[m->n_data++] = m->n_vars + j;
    }
    /* One allocation: w | dw | w_m | w_v (the optimizer loop and the
     * checkpoint see contiguous blocks). */
    size_t n = m->n_w ? m->n_w : 1;
    m->w = vlm_xcalloc(4 * n, sizeof(float));
    m->dw = m->w + n;
    m->w_m = m->w + 2 * n;
    m->w_v = m->w + 3 * n;
    vlm_rng_init(&m->rng, 0, VLM_STREAM_NOISE);
    return 0;
}

static void free_rows(VlmModel *m)
{
    if (m->Rmax == 0)
        return;
    if (m->desc->release)
        m->desc->release(m);
    for (int j = 0; j < VLM_MAX_VARS; j++) {
        free((void *)m->obs[j]);
        free((void *)m->obs_mask[j]);
        free(m->dlogq[j]);
        free(m->dlogp_lat[j]);
        m->obs[j] = m->obs_mask[j] = NULL;
        m->dlogq[j] = NULL;
        m->dlogp_lat[j] = NULL;
    }
    for (int k = 0; k < m->n_markov_emit; k++) {
        int v = m->markov_emit[k];
        free(m->logp_step[v]);
        free(m->dlogp_step[v]);
        m->logp_step[v] = NULL;
        m->dlogp_step[v] = NULL;
    }
    free(m->markov_init);
    free(m->markov_work);
    m->markov_init = m->markov_trans = m->dmarkov_init = m->dmarkov_trans = NULL;
    m->markov_work = NULL;
    free(m->row_item);
    free(m->dlogp);
    free(m->dprior);
    m->dprior = NULL;
    free(m->scratch);
    m->scratch = NULL;
    m->row_item = NULL;
    m->dlogp = NULL;
    m->Rmax = 0;
}

void vlm_model_alloc_rows(VlmModel *m, int Rmax)
{
    free_rows(m);
    if (Rmax < 1)
        Rmax = 1;
    m->Rmax = Rmax;
    m->desc->alloc(m, Rmax);
    for (int k = 0; k < m->n_data; k++) {   /* observed and inputs */
        int j = m->data_var[k];
        m->obs[j] = vlm_xcalloc((size_t)Rmax * (size_t)m->vars[j].numel,
                                sizeof(float));
    }
    for (int j = 0; j < m->n_vars; j++)   /* latents and guided observed */
        m->dlogq[j] = vlm_xcalloc((size_t)Rmax, sizeof(float));
    for (int j = 0; j < m->n_latent; j++)
        m->dlogp_lat[j] = vlm_xcalloc((size_t)Rmax, sizeof(float));
    m->row_item = vlm_xcalloc((size_t)Rmax, sizeof *m->row_item);
    m->dlogp = vlm_xcalloc((size_t)Rmax, sizeof(float));
    m->dprior = vlm_xcalloc((size_t)Rmax, sizeof(float));
    m->scratch = vlm_xcalloc(8 * (size_t)Rmax, sizeof(double));
    if (m->markov_var >= 0) {
        size_t T = (size_t)m->markov_T, K = (size_t)m->markov_K;
        for (int k = 0; k < m->n_markov_emit; k++) {
            int v = m->markov_emit[k];
            m->logp_step[v] = vlm_xcalloc((size_t)Rmax * T, sizeof(double));
            m->dlogp_step[v] = vlm_xcalloc((size_t)Rmax * T, sizeof(float));
        }
        /* init | trans | dinit | dtrans in one block */
        m->markov_init = vlm_xcalloc(2 * (K + K * K), sizeof(float));
        m->markov_trans = m->markov_init + K;
        m->dmarkov_init = m->markov_trans + K * K;
        m->dmarkov_trans = m->dmarkov_init + K;
        m->markov_work = vlm_xcalloc(vlm_markov_work_size(m), sizeof(double));
    }
}

void vlm_model_alloc_local(VlmModel *m, size_t rows)
{
    free(m->loc);
    m->loc = m->dloc = m->loc_m = m->loc_v = NULL;
    m->local_rows = 0;
    if (m->local_width == 0)
        return;
    size_t n = rows * m->local_width;
    if (n == 0)
        n = 1;
    m->loc = vlm_xcalloc(4 * n, sizeof(float));
    m->dloc = m->loc + n;
    m->loc_m = m->loc + 2 * n;
    m->loc_v = m->loc + 3 * n;
    m->local_rows = rows;
}

/* Raw bounds that keep a constrained value representable in float32:
 * exp(-87.3) is above FLT_MIN; sigmoid(16.6) rounds below 1 (by 2^-24). */
#define RAW_LOG_MIN -87.3
#define RAW_LOGIT_MAX 16.6

/* Draw count values of p from its initialiser:
 * NORMAL(a=mean, b=sd), UNIFORM(a=low, b=high), CONST(a),
 * FAN_IN(a = fan_in): uniform(+-1/sqrt(fan_in)), PyTorch's nn.Linear
 * default for both the weights and the bias of a layer;
 * UNIFORM_LOG / UNIFORM_LOGIT: u ~ uniform(a, b) is the constrained value
 * (exp(raw) of a `positive`, sigmoid(raw) of a `unit` param), so raw is
 * log(u) or logit(u) = log(u) - log1p(-u), clamped to stay inside. */
static void init_one(const VlmParamInfo *p, float *dst, VlmRng *rng)
{
    switch (p->init) {
    case VLM_INIT_NORMAL:
        for (size_t i = 0; i < p->count; i++)
            dst[i] = (float)(p->a + p->b * vlm_rng_normal(rng));
        break;
    case VLM_INIT_UNIFORM:
        for (size_t i = 0; i < p->count; i++)
            dst[i] = (float)(p->a + (p->b - p->a) * vlm_rng_uniform(rng));
        break;
    case VLM_INIT_CONST:
        for (size_t i = 0; i < p->count; i++)
            dst[i] = p->a;
        break;
    case VLM_INIT_UNIFORM_LOG:
        for (size_t i = 0; i < p->count; i++) {
            double u = p->a + ((double)p->b - p->a) * vlm_rng_uniform(rng);
            double r = u > 0 ? log(u) : RAW_LOG_MIN;
            dst[i] = (float)(r > RAW_LOG_MIN ? r : RAW_LOG_MIN);
        }
        break;
    case VLM_INIT_UNIFORM_LOGIT:
        for (size_t i = 0; i < p->count; i++) {
            double u = p->a + ((double)p->b - p->a) * vlm_rng_uniform(rng);
            double r = u <= 0 ? RAW_LOG_MIN : u >= 1 ? RAW_LOGIT_MAX : log(u) - log1p(-u);
            dst[i] = (float)(r < RAW_LOG_MIN ? RAW_LOG_MIN : r > RAW_LOGIT_MAX ? RAW_LOGIT_MAX : r);
        }
        break;
    case VLM_INIT_FAN_IN: {
        double lim = 1.0 / sqrt(p->a > 1 ? (double)p->a : 1.0);
        for (size_t i = 0; i < p->count; i++)
            dst[i] = (float)(lim * (2.0 * vlm_rng_uniform(rng) - 1.0));
        break;
    }
    }
}

void vlm_model_init_local(VlmModel *m, uint64_t seed)
{
    if (!m->loc)
        return;
    /* A stream of its own (seed + 1 of INIT) so re-initialising the
     * locals for eval does not depend on how many globals there are. */
    VlmRng rng;
    vlm_rng_init(&rng, seed + 0x9e3779b97f4a7c15ull, VLM_STREAM_INIT);
    size_t n = m->local_rows * m->local_width;
    memset(m->loc, 0, 4 * (n ? n : 1) * sizeof(float));
    for (size_t r = 0; r < m->local_rows; r++)
        for (int i = 0; i < m->n_params; i++) {
            const VlmParamInfo *p = &m->params[i];
            if (p->local)
                init_one(p, m->loc + r * m->local_width + p->offset, &rng);
        }
}

void vlm_model_init_params(VlmModel *m, uint64_t seed)
{
    VlmRng rng;
    vlm_rng_init(&rng, seed, VLM_STREAM_INIT);
    size_t n = m->n_w ? m->n_w : 1;
    memset(m->w, 0, 4 * n * sizeof(float));
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (!p->local)
            init_one(p, m->w + p->offset, &rng);
    }
    vlm_model_init_local(m, seed);
}

void vlm_model_free(VlmModel *m)
{
    free_rows(m);
    free(m->w);
    free(m->loc);
    m->w = m->loc = NULL;
}

bool vlm_model_exact(const VlmModel *m)
{
    for (int j = 0; j < m->n_latent; j++)
        if (m->vars[j].treat != VLM_TREAT_ENUMERATE && m->vars[j].treat != VLM_TREAT_MARKOV)
            return false;
    return true;
}

/* The one const whose value is v (the size behind a vector's length),
 * or -1 when none or several are. */
static int const_equal(const VlmModelDesc *d, long v)
{
    int found = -1;
    for (int i = 0; i < d->n_consts; i++)
        if (d->const_values[i] == v) {
            if (found >= 0)
                return -1;
            found = i;
        }
    return found;
}

/* The consts a model can change with --set, "K=3 D=784". */
static void const_list(const VlmModelDesc *d, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; i < d->n_consts; i++) {
        size_t u = strlen(buf);
        snprintf(buf + u, len - u, "%s%s=%ld", i ? " " : "",
                 d->const_names[i], d->const_values[i]);
    }
}

/* Items must have exactly the values of the observed variables. The
 * message gives each variable's width and what to change: the data (an
 * extra label or index column is not a pixel: never only advise --set
 * D=785 for a 785-column file) or the model's sizes with --set. */
int vlm_model_check_data(const VlmModel *m, const VlmData *d,
                         const char *path, VlmErr *err)
{
    long want = 0;
    char vars[256] = "";
    const char *sizer = NULL;     /* the const sizing a lone vector */
    const char *kinds = m->n_inputs ? "observed and input" : "observed";
    for (int j = 0; j < m->n_data; j++) {   /* observed and inputs */
        const VlmVarInfo *v = &m->vars[m->data_var[j]];
        want += v->numel;
        int c = v->rank == 1 ? const_equal(m->desc, v->dims[0]) : -1;
        size_t u = strlen(vars);
        snprintf(vars + u, sizeof vars - u, "%s`%s`: %ld%s%s",
                 j ? "; " : "", v->name, v->numel, c >= 0 ? ", sized by " : "",
                 c >= 0 ? m->desc->const_names[c] : "");
        if (m->n_data == 1 && c >= 0)
            sizer = m->desc->const_names[c];
    }
    if ((long)d->d == want)   /* inputs given, summed variables in range */
        return vlm_data_check_values(m, d, (const char *const[]){path}, err);
    char setting[192], cols[160] = "";
    if (sizer)
        snprintf(setting, sizeof setting, "--set %s=%ld", sizer,
                 (long)d->d - want + m->vars[m->data_var[0]].numel);
    else if (m->desc->n_consts > 0) {
        char list[160];
        const_list(m->desc, list, sizeof list);
        snprintf(setting, sizeof setting, "--set (consts: %s)", list);
    } else
        snprintf(setting, sizeof setting, "the model's declarations");
    if (d->colnames && d->d > 0)
        snprintf(cols, sizeof cols, " (its columns: %s%s%s%s%s%s)",
                 d->colnames[0], d->d > 1 ? ", " : "",
                 d->d > 1 ? d->colnames[1] : "", d->d > 2 ? ", " : "",
                 d->d > 2 ? d->colnames[2] : "", d->d > 3 ? ", ..." : "");
    size_t n = strlen(path);
    bool csv = (n >= 4 && !strcmp(path + n - 4, ".csv")) ||
               (n >= 7 && !strcmp(path + n - 7, ".csv.gz"));
    if ((long)d->d > want) {
        long extra = (long)d->d - want;
        vlm_err_set(err, "%s: items have %zu value%s%s, but the model's "
                    "%s variable%s take%s %ld (%s). If the %ld extra "
                    "column%s %s not part of the model's data (a label or "
                    "an index), remove %s from the file%s or bind the "
                    "variables to files of their own (--data NAME=FILE); if "
                    "%s %s, change the size with %s",
                    path, d->d, d->d == 1 ? "" : "s", cols, kinds,
                    m->n_data == 1 ? "" : "s",
                    m->n_data == 1 ? "s" : "", want, vars, extra,
                    extra == 1 ? "" : "s", extra == 1 ? "is" : "are",
                    extra == 1 ? "it" : "them",
                    csv ? " (`cut -d, -f2-` drops a first column)" : "",
                    extra == 1 ? "it" : "they", extra == 1 ? "is" : "are",
                    setting);
    } else {
        vlm_err_set(err, "%s: items have %zu value%s%s, but the model's "
                    "%s variable%s take%s %ld (%s): give data with %ld "
                    "values per item, or change the size with %s",
                    path, d->d, d->d == 1 ? "" : "s", cols, kinds,
                    m->n_data == 1 ? "" : "s",
                    m->n_data == 1 ? "s" : "", want, vars, want, setting);
    }
    return -1;
}

/* Items b0..b1 of one data variable (columns col..col+n of its file) into
 * their rows: the item's values into its first row (bytes convert here,
 * per batch: raw or / 255), copied to its other SE - 1 rows unless the
 * model reads the first only (item_rows); the mask to all SE rows. */
typedef struct FillJob {
    const VlmData *d;
    const uint32_t *idx;
    int SE;
    size_t col, n;
    float *o, *mk;
    bool raw;
    bool item_rows;   /* values in the first row of each item only */
} FillJob;

static void fill_items(void *ctx, size_t b0, size_t b1)
{
    const FillJob *j = ctx;
    size_t n = j->n;
    for (size_t b = b0; b < b1; b++) {
        float *first = j->o + b * j->SE * n;
        if (j->raw)
            vlm_data_rows_raw(j->d, j->idx[b], 1, j->col, n, first);
        else
            vlm_data_rows(j->d, j->idx[b], 1, j->col, n, first);
        const float *msrc = j->mk ? j->d->mask + (size_t)j->idx[b] * j->d->d + j->col : NULL;
        for (int k = 0; k < j->SE; k++) {
            size_t r = b * j->SE + k;
            if (k > 0 && !j->item_rows)
                memcpy(j->o + r * n, first, n * sizeof *j->o);
            if (j->mk)
                memcpy(j->mk + r * n, msrc, n * sizeof *j->mk);
        }
    }
}

/* The data variables' rows for items idx[0..B), SE rows per item. Each
 * variable reads where the data bind it (vlm_data_bind_of: in the plain
 * case consecutive column ranges in declaration order); every row of item
 * b holds the item's values. Inputs have no mask: a missing input was an
 * error when the data were bound. */
static void fill_vars(VlmModel *m, const VlmData *d, const uint32_t *idx,
                      int B, int SE, bool inputs_only)
{
    for (int k = 0; k < m->n_data; k++) {
        int vi = m->data_var[k];
        bool input = m->vars[vi].kind == VLM_VAR_INPUT;
        if (inputs_only && !input)
            continue;
        size_t n = (size_t)m->vars[vi].numel;
        VlmBind bd = vlm_data_bind_of(m, d, vi);
        float *mk = NULL;
        if (bd.data->mask && !input) {
            if (!m->obs_mask[vi])
                m->obs_mask[vi] =
                    vlm_xcalloc((size_t)m->Rmax * n, sizeof(float));
            mk = (float *)m->obs_mask[vi];
        } else {
            free((void *)m->obs_mask[vi]);
            m->obs_mask[vi] = NULL;
        }
        FillJob job = {bd.data, idx, SE, bd.column, n, (float *)m->obs[vi], mk,
                       bd.raw, m->vars[vi].item_rows};
        /* items in parallel once a slice holds some 16 KB of values */
        vlm_parallel_for((size_t)B, 1 + 4096 / (n * (size_t)SE), fill_items, &job);
    }
}

static void set_rows(VlmModel *m, int B, int S, int SE)
{
    m->B = B;
    m->S = S;
    m->R = B * SE;
    if (m->R > m->Rmax) {
        fprintf(stderr, "internal error: batch of %d rows exceeds %d\n",
                m->R, m->Rmax);
        abort();
    }
}

/* Whether every summed observed variable is given in every item of idx. */
static bool summed_all_given(const VlmModel *m, const VlmData *d,
                             const uint32_t *idx, int B)
{
    for (int j = m->n_latent; j < m->n_vars; j++)
        if (m->vars[j].treat == VLM_TREAT_ENUMERATE)
            for (int b = 0; b < B; b++)
                if (!vlm_data_given(m, d, j, idx[b]))
                    return false;
    return true;
}

static void fill_batch(VlmModel *m, const VlmData *d, const uint32_t *idx,
                       int B, int S, bool training)
{
    m->summed_given = training && m->E_given < m->E_max &&
                      summed_all_given(m, d, idx, B);
    m->E = m->summed_given ? m->E_given : m->E_max;
    m->n_given_batches += m->summed_given;
    int SE = S * (int)m->E;
    set_rows(m, B, S, SE);
    fill_vars(m, d, idx, B, SE, false);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < SE; k++)
            m->row_item[(size_t)b * SE + k] = idx[b];
}

/* Both set n_items: the terms counted once per data set weigh 1/N of the
 * data set the batch is drawn from. */
void vlm_model_fill_batch(VlmModel *m, const VlmData *d, const uint32_t *idx,
                          int B, int S)
{
    m->n_items = d->n;
    fill_batch(m, d, idx, B, S, false);
}

void vlm_model_fill_training_batch(VlmModel *m, const VlmData *d,
                                   const uint32_t *idx, int B, int S)
{
    m->n_items = d->n;
    fill_batch(m, d, idx, B, S, true);
}

bool vlm_model_has_global(const VlmModel *m)
{
    for (int j = 0; j < m->n_latent; j++)
        if (m->vars[j].global)
            return true;
    return false;
}

void vlm_model_fill_inputs(VlmModel *m, const VlmData *d, const uint32_t *idx,
                           int B)
{
    set_rows(m, B, 1, 1);
    fill_vars(m, d, idx, B, 1, true);
    for (int b = 0; b < B; b++)
        m->row_item[b] = idx[b];
}
