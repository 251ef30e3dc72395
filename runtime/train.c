/* train.c — the training loop for every model: minibatches, the
 * optimizer (one step over the global block, lazy row steps for local
 * parameters), progress and metrics, and checkpoints that resume exactly.
 * Also the local-parameter refinement used by eval/posterior/impute.
 * Estimators live in infer.c; this file only drives them. */
#include "vlm.h"

#include <float.h>

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------- checkpoint meta
 * The meta block: "VLMTRN01", then little-endian fields in a fixed order
 * (see put_state). Everything a resumed run needs to continue bit-exactly:
 * epoch, step, the optimizer, both RNG streams, the batcher's cursor and
 * order, the score-function baseline and the objective. */
#define META_MAGIC "VLMTRN01"

typedef struct Buf {
    uint8_t *p;
    size_t len, cap, at;
    bool bad;
} Buf;

static void put(Buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = vlm_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void put_u64(Buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 8);
}
static void put_f64(Buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}
static uint64_t get_u64(Buf *b)
{
    if (b->at + 8 > b->len) {
        b->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b->p[b->at + i] << (8 * i);
    b->at += 8;
    return v;
}
static double get_f64(Buf *b)
{
    uint64_t u = get_u64(b);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static void put_rng(Buf *b, const VlmRng *r)
{
    put_u64(b, r->seed);
    put_u64(b, r->stream);
    put_u64(b, r->counter);
    for (int i = 0; i < 4; i++)
        put_u64(b, r->buf[i]);
    put_u64(b, r->pos);
}
static void get_rng(Buf *b, VlmRng *r)
{
    r->seed = get_u64(b);
    r->stream = get_u64(b);
    r->counter = get_u64(b);
    for (int i = 0; i < 4; i++)
        r->buf[i] = (uint32_t)get_u64(b);
    r->pos = (uint32_t)get_u64(b);
}

typedef struct TrainState {
    long epoch, step;
    VlmOptim opt;
    VlmBatcher bt;
    VlmInfer inf;
    int samples;
} TrainState;

static void put_state(Buf *b, const VlmModel *m, const TrainState *s)
{
    put(b, META_MAGIC, 8);
    put_u64(b, (uint64_t)s->epoch);
    put_u64(b, (uint64_t)s->step);
    const VlmOptim *o = &s->opt;
    put_u64(b, (uint64_t)o->kind);
    put_f64(b, o->lr);
    put_f64(b, o->beta1);
    put_f64(b, o->beta2);
    put_f64(b, o->eps);
    put_f64(b, o->weight_decay);
    put_f64(b, o->momentum);
    put_f64(b, o->clip_norm);
    put_u64(b, (uint64_t)o->sched);
    put_u64(b, (uint64_t)o->total_steps);
    put_u64(b, (uint64_t)o->step_every);
    put_f64(b, o->step_gamma);
    put_u64(b, (uint64_t)o->t);
    put_rng(b, &m->rng);
    put_u64(b, s->bt.n);
    put_u64(b, s->bt.batch);
    put_u64(b, s->bt.pos);
    put_u64(b, (uint64_t)s->bt.epoch);
    put_u64(b, s->bt.shuffle);
    put_rng(b, &s->bt.rng);
    for (size_t i = 0; i < s->bt.n; i++)
        put_u64(b, s->bt.perm[i]);
    put_u64(b, (uint64_t)s->inf.objective);
    put_f64(b, s->inf.baseline);
    put_u64(b, s->inf.baseline_set);
    put_f64(b, s->inf.decay);
    put_u64(b, (uint64_t)s->samples);
}

/* Restores into s (batcher: perm reallocated to the saved n). */
static int get_state(Buf *b, VlmModel *m, TrainState *s, const char *path,
                     VlmErr *err)
{
    if (b->len < 8 || memcmp(b->p, META_MAGIC, 8)) {
        vlm_err_set(err, "%s: checkpoint has no training state", path);
        return -1;
    }
    b->at = 8;
    s->epoch = (long)get_u64(b);
    s->step = (long)get_u64(b);
    VlmOptim *o = &s->opt;
    o->kind = (VlmOptKind)get_u64(b);
    o->lr = (float)get_f64(b);
    o->beta1 = (float)get_f64(b);
    o->beta2 = (float)get_f64(b);
    o->eps = (float)get_f64(b);
    o->weight_decay = (float)get_f64(b);
    o->momentum = (float)get_f64(b);
    o->clip_norm = (float)get_f64(b);
    o->sched = (VlmSched)get_u64(b);
    o->total_steps = (long)get_u64(b);
    o->step_every = (long)get_u64(b);
    o->step_gamma = (float)get_f64(b);
    o->t = (long)get_u64(b);
    get_rng(b, &m->rng);
    size_t n = get_u64(b);
    if (b->bad || n > (b->len - b->at) / 8) {
        vlm_err_set(err, "%s: training state is truncated", path);
        return -1;
    }
    vlm_batcher_free(&s->bt);
    s->bt.n = n;
    s->bt.batch = get_u64(b);
    s->bt.pos = get_u64(b);
    s->bt.epoch = (long)get_u64(b);
    s->bt.shuffle = get_u64(b) != 0;
    get_rng(b, &s->bt.rng);
    s->bt.perm = vlm_xmalloc((n ? n : 1) * sizeof *s->bt.perm);
    for (size_t i = 0; i < n; i++)
        s->bt.perm[i] = (uint32_t)get_u64(b);
    s->inf.objective = (VlmObjective)get_u64(b);
    s->inf.baseline = get_f64(b);
    s->inf.baseline_set = get_u64(b) != 0;
    s->inf.decay = get_f64(b);
    s->samples = (int)get_u64(b);
    if (b->bad || b->at != b->len) {
        vlm_err_set(err, "%s: training state is malformed", path);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------- checkpoints */

static void add_tensor(VlmCkpt *c, const char *name, int rank,
                       const long *dims, float *data, size_t count)
{
    VlmCkptTensor *t = &c->t[c->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = rank;
    for (int i = 0; i < rank && i < 4; i++)
        t->dims[i] = dims[i];
    t->data = data;
    t->count = count;
}

/* Every global parameter by name and shape, the optimizer moments, the
 * local table and its moments; meta = the training state. */
static int save_ckpt(const char *path, VlmModel *m, const TrainState *s,
                     VlmErr *err)
{
    VlmCkpt *c = vlm_xcalloc(1, sizeof *c);
    c->model_hash = m->hash;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (!p->local)
            add_tensor(c, p->name, p->rank, p->dims, m->w + p->offset,
                       p->count);
    }
    /* the consts the model was configured with (--set), each as two
     * floats hi, lo < 65536 (exact), so later commands can restore them */
    int nc = m->desc->n_consts;
    float *cv = vlm_xcalloc(2 * (size_t)(nc ? nc : 1), sizeof *cv);
    for (int i = 0; i < nc; i++) {
        long v = m->desc->const_values[i];
        cv[2 * i] = (float)(v / 65536);
        cv[2 * i + 1] = (float)(v % 65536);
    }
    if (nc) {
        long n2 = 2L * nc;
        add_tensor(c, "consts", 1, &n2, cv, (size_t)n2);
    }
    long nw = (long)m->n_w;
    add_tensor(c, "optim.m", 1, &nw, m->w_m, m->n_w);
    add_tensor(c, "optim.v", 1, &nw, m->w_v, m->n_w);
    if (m->loc) {
        long d[2] = {(long)m->local_rows, (long)m->local_width};
        size_t n = m->local_rows * m->local_width;
        add_tensor(c, "local", 2, d, m->loc, n);
        add_tensor(c, "local.m", 2, d, m->loc_m, n);
        add_tensor(c, "local.v", 2, d, m->loc_v, n);
    }
    Buf b = {0};
    put_state(&b, m, s);
    c->meta = b.p;
    c->meta_len = b.len;
    int rc = vlm_ckpt_save(path, c, err);
    free(b.p);
    free(cv);
    free(c);
    return rc;
}

/* Under MPI: each rank's local rows (its items, VLM_SHARD_OWNER) are
 * gathered into rank 0's table, rank 0 alone writes (atomically, as
 * save_ckpt always does), and every rank learns whether it could. */
static int save_ckpt_all(const char *path, VlmModel *m, const TrainState *s,
                         VlmErr *err)
{
    const VlmComm *cw = vlm_comm_world();
    if (cw->size < 2)
        return save_ckpt(path, m, s, err);
    if (m->loc) {
        size_t row = m->local_width * sizeof *m->loc;
        vlm_mpi_gather_items(m->loc, row, m->local_rows);
        vlm_mpi_gather_items(m->loc_m, row, m->local_rows);
        vlm_mpi_gather_items(m->loc_v, row, m->local_rows);
    }
    int rc = cw->rank == 0 ? save_ckpt(path, m, s, err) : 0;
    vlm_mpi_bcast(&rc, sizeof rc, 0);
    if (rc != 0 && cw->rank != 0)
        vlm_err_set(err, "rank 0 could not write %s", path);
    return rc;
}

static const VlmCkptTensor *find_tensor(const VlmCkpt *c, const char *name)
{
    for (int i = 0; i < c->n_tensors; i++)
        if (!strcmp(c->t[i].name, name))
            return &c->t[i];
    return NULL;
}

static int take(const VlmCkpt *c, const char *path, const char *name,
                float *dst, size_t count, VlmErr *err)
{
    const VlmCkptTensor *t = find_tensor(c, name);
    if (!t) {
        vlm_err_set(err, "%s: checkpoint has no tensor `%s`", path, name);
        return -1;
    }
    if (t->count != count) {
        vlm_err_set(err, "%s: tensor `%s` has %zu values, the model needs %zu",
                    path, name, t->count, count);
        return -1;
    }
    memcpy(dst, t->data, count * sizeof *dst);
    return 0;
}

/* Appends to buf (size n) as snprintf would, never past the end. */
static void addf(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void addf(char *buf, size_t n, const char *fmt, ...)
{
    size_t u = strlen(buf);
    if (u + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + u, n - u, fmt, ap);
    va_end(ap);
}

static void shape_str(char *b, size_t n, int rank, const int64_t *dims)
{
    b[0] = 0;
    if (rank == 0)
        snprintf(b, n, "a scalar");
    for (int k = 0; k < rank; k++)
        addf(b, n, "%s%lld", k ? "x" : "", (long long)dims[k]);
}

static bool is_state_tensor(const char *name)
{
    return !strcmp(name, "consts") || !strncmp(name, "optim.", 6) ||
           !strcmp(name, "local") || !strncmp(name, "local.", 6);
}

/* What makes checkpoint c another model's: consts it was saved with that
 * differ from this model's, parameters of another shape, parameters
 * missing from it, and parameters it has that this model does not. */
static void describe_mismatch(const VlmModel *m, const VlmCkpt *c,
                              const char *path, VlmErr *err)
{
    char msg[1024] = "", list[512];
    const VlmModelDesc *d = m->desc;
    const VlmCkptTensor *ct = find_tensor(c, "consts");
    if (ct && d->n_consts > 0 && ct->count == 2 * (size_t)d->n_consts) {
        list[0] = 0;
        for (int k = 0; k < d->n_consts; k++) {
            long v = (long)ct->data[2 * k] * 65536 + (long)ct->data[2 * k + 1];
            if (v != d->const_values[k])
                addf(list, sizeof list, "%s%s=%ld (here %ld)",
                     list[0] ? ", " : "", d->const_names[k], v,
                     d->const_values[k]);
        }
        if (list[0])
            addf(msg, sizeof msg, "; it was saved with %s", list);
    }
    int shown = 0, more = 0;
    list[0] = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        const VlmCkptTensor *t = p->local ? NULL : find_tensor(c, p->name);
        if (!t)
            continue;
        bool same = t->rank == p->rank;
        for (int r = 0; same && r < p->rank; r++)
            same = t->dims[r] == p->dims[r];
        if (same)
            continue;
        if (shown++ >= 4) {
            more++;
            continue;
        }
        char a[64], b[64];
        int64_t pd[4] = {0};
        for (int r = 0; r < p->rank && r < 4; r++)
            pd[r] = p->dims[r];
        shape_str(a, sizeof a, t->rank, t->dims);
        shape_str(b, sizeof b, p->rank, pd);
        addf(list, sizeof list, "%s`%s` is %s in it, %s here",
             list[0] ? ", " : "", p->name, a, b);
    }
    if (list[0])
        addf(msg, sizeof msg, "; %s%s", list, more ? ", and more" : "");
    shown = more = 0;
    list[0] = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (p->local || find_tensor(c, p->name))
            continue;
        if (shown++ < 6)
            addf(list, sizeof list, "%s`%s`", list[0] ? ", " : "", p->name);
        else
            more++;
    }
    if (list[0])
        addf(msg, sizeof msg, "; this model's %s %s missing from it", list,
             shown > 1 ? "are" : "is");
    if (more)
        addf(msg, sizeof msg, " (and %d more)", more);
    shown = more = 0;
    list[0] = 0;
    for (int k = 0; k < c->n_tensors; k++) {
        const char *name = c->t[k].name;
        bool ours = false;
        for (int i = 0; i < m->n_params && !ours; i++)
            ours = !m->params[i].local && !strcmp(m->params[i].name, name);
        if (ours || is_state_tensor(name))
            continue;
        if (shown++ < 6)
            addf(list, sizeof list, "%s`%s`", list[0] ? ", " : "", name);
        else
            more++;
    }
    if (list[0])
        addf(msg, sizeof msg, "; it has %s%s, which this model does not",
             list, more ? " and more" : "");
    if (!msg[0])
        addf(msg, sizeof msg, "; every parameter matches by name and shape, "
             "but the model itself differs (saved by another version of "
             "the model file: hash %016llx, this model %016llx)",
             (unsigned long long)c->model_hash, (unsigned long long)m->hash);
    vlm_err_set(err, "%s: checkpoint is for a different model:%s", path,
                msg + 1);
}

/* Loads parameters (and locals when rows == m->local_rows and
 * with_local) and, when s is given, moments and training state. */
static int load_ckpt(const char *path, VlmModel *m, TrainState *s,
                     bool *loc_loaded, VlmErr *err)
{
    VlmCkpt *c = vlm_xcalloc(1, sizeof *c);
    int rc = -1;
    if (vlm_ckpt_load(path, 0, c, err) != 0) {   /* any model: to compare */
        free(c);
        return -1;
    }
    if (c->model_hash != m->hash) {
        describe_mismatch(m, c, path, err);
        goto done;
    }
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (!p->local &&
            take(c, path, p->name, m->w + p->offset, p->count, err) != 0)
            goto done;
    }
    if (loc_loaded)
        *loc_loaded = false;
    const VlmCkptTensor *loc = find_tensor(c, "local");
    if (m->loc && loc && loc->count == m->local_rows * m->local_width) {
        size_t n = loc->count;
        if (take(c, path, "local", m->loc, n, err) != 0)
            goto done;
        if (s && (take(c, path, "local.m", m->loc_m, n, err) != 0 ||
                  take(c, path, "local.v", m->loc_v, n, err) != 0))
            goto done;
        if (loc_loaded)
            *loc_loaded = true;
    } else if (s && m->loc) {
        vlm_err_set(err, "%s: the checkpoint's local parameters are for %lld "
                    "items, the data has %zu", path,
                    loc ? (long long)loc->dims[0] : 0LL, m->local_rows);
        goto done;
    }
    if (s) {
        if (take(c, path, "optim.m", m->w_m, m->n_w, err) != 0 ||
            take(c, path, "optim.v", m->w_v, m->n_w, err) != 0)
            goto done;
        Buf b = {.p = c->meta, .len = c->meta_len};
        if (get_state(&b, m, s, path, err) != 0)
            goto done;
    }
    rc = 0;
done:
    vlm_ckpt_free(c);
    free(c);
    return rc;
}

/* --load for training: parameters, moments and training state, from a
 * checkpoint whose batcher was made for data of this many items. */
static int resume_ckpt(const char *path, VlmModel *m, TrainState *s,
                       const VlmData *data, VlmErr *err)
{
    if (load_ckpt(path, m, s, NULL, err) != 0)
        return -1;
    if (s->bt.n != data->n) {
        vlm_err_set(err, "%s was trained on %zu items; --data has %zu", path,
                    s->bt.n, data->n);
        return -1;
    }
    return 0;
}

/* After training stopped on a numerical failure: what --save holds now,
 * appended to err. Only a checkpoint that exists is said to be kept. */
static void note_checkpoint(VlmErr *err, const char *save, long saved_epoch,
                            const char *unit)
{
    if (!save)
        return;
    struct stat st;
    if (saved_epoch > 0)
        addf(err->msg, sizeof err->msg, " (the checkpoint saved after %s "
             "%ld, %s, is kept)", unit, saved_epoch, save);
    else if (stat(save, &st) == 0)
        addf(err->msg, sizeof err->msg, " (%s is kept as it was before "
             "this run)", save);
    else
        addf(err->msg, sizeof err->msg, " (nothing was saved: %s does not "
             "exist)", save);
}

/* --log: one row per epoch (EM: per iteration) in these columns. */
static int open_log(VlmMetrics *met, const char *path, VlmErr *err)
{
    static const char *const cols[] = {"epoch", "step", "train_objective",
                                       "test_elbo", "seconds", "lr"};
    return vlm_metrics_open(met, path, cols, 6, err);
}

int vlm_model_load(VlmModel *m, const char *path, bool *loc_loaded,
                   VlmErr *err)
{
    return load_ckpt(path, m, NULL, loc_loaded, err);
}

/* ---------------------------------------------------------- one step */

/* A branch-free scan (it vectorizes); the search runs only on a hit. */
static int any_nonfinite(const float *g, size_t n)
{
    /* the largest exponent field is all ones iff some element is Inf or
     * NaN; an integer max reduction vectorizes */
    const uint32_t *u = (const uint32_t *)(const void *)g;
    uint32_t mx = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t e = u[k] & 0x7f800000u;
        mx = e > mx ? e : mx;
    }
    return mx == 0x7f800000u;
}

static int check_grad(const VlmModel *m, VlmErr *err)
{
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (p->local)
            continue;
        const float *g = m->dw + p->offset;
        if (!any_nonfinite(g, p->count))
            continue;
        for (size_t k = 0; k < p->count; k++)
            if (!isfinite(g[k])) {
                vlm_err_set(err, "the gradient of parameter `%s` is %s "
                            "(element %zu)", p->name,
                            isnan(g[k]) ? "NaN" : "Inf", k);
                return -1;
            }
    }
    return 0;
}

/* Stepping each global tensor where the backward passes report its
 * gradient complete (VlmModel.param_ready; nothing later in the passes
 * reads its value or its gradient): the fused check, update and zeroing
 * of vlm_optim_consume_span on that tensor. Adam and SGD update every
 * element on its own, so this trains bit for bit as one pass after the
 * backward (VLM_STEP_AFTER_BACKWARD=1 forces that, for the tests). */
typedef struct TensorSteps {
    const VlmOptim *opt;
    VlmModel *m;
    bool *stepped;          /* n_params */
    atomic_bool bad;        /* a non-finite gradient was left unstepped */
} TensorSteps;

/* Elements lo..hi of the weights, on a pool thread (vlm_parallel_async) */
static void step_span(void *ctx, size_t lo, size_t hi)
{
    TensorSteps *t = ctx;
    VlmModel *m = t->m;
    if (vlm_optim_consume_span(t->opt, m->w + lo, m->dw + lo, m->w_m + lo, m->w_v + lo, hi - lo) != 0)
        atomic_store(&t->bad, true);
}

/* A tensor of some size steps in the background, in two halves: the
 * step is memory-bound (no faster on two threads than on one once its
 * data are in cache), so a free worker takes it while the backward passes
 * go on with the next layers, whose small products leave it idle
 * otherwise; what is left when they end, both threads share. Measured on
 * the VAE (2 threads, 5 interleaved rounds): 1.03 s per epoch against
 * 1.15 s stepping each tensor on the pool where it is reported. */
static void step_tensor(VlmModel *m, int i)
{
    TensorSteps *t = m->ready_ctx;
    const VlmParamInfo *q = &m->params[i];
    if (q->local || t->stepped[i])
        return;
    t->stepped[i] = true;
    size_t o = q->offset;
    if (q->count >= 8192) {
        size_t h = o + (q->count / 2 + 15) / 16 * 16;
        vlm_parallel_async(step_span, t, o, h);
        vlm_parallel_async(step_span, t, h, o + q->count);
        return;
    }
    if (vlm_optim_update_consume(t->opt, m->w + o, m->dw + o, m->w_m + o, m->w_v + o, q->count) != 0)
        atomic_store(&t->bad, true);
}

/* Data parallel (MPI): each rank's gradient is the mean over its share
 * of the global batch; scaled by share / B and summed over the ranks it
 * is the global batch's mean. Each tensor's sum starts (MPI_Iallreduce)
 * where the backward passes report it complete, so communication
 * overlaps the rest of the backward; the optimizer steps after all have
 * arrived. Before the first one of a step the ranks agree that every
 * forward pass succeeded (a rank that failed never reaches the backward
 * and would start no sums), and they average the score-function
 * baseline. Every rank runs the same straight-line backward, so the
 * reports, and the sums, come in the same order on every rank. */
typedef struct DpSteps {
    bool *started;          /* n_params */
    float scale;            /* this rank's share / global batch */
    bool agreed, any_bad;
    VlmInfer *inf;
    size_t mine;            /* items of this rank in the step */
    double comm_s;          /* seconds waiting for sums (this run) */
} DpSteps;

static void dp_agree(DpSteps *dp, int bad)
{
    double v[3] = {bad ? 1 : 0, 0, 0};
    if (dp->inf->baseline_set && dp->mine) {
        v[1] = dp->inf->baseline * (double)dp->mine;
        v[2] = (double)dp->mine;
    }
    vlm_mpi_sum_d(v, 3);
    dp->agreed = true;
    dp->any_bad = v[0] > 0;
    if (v[2] > 0) {
        dp->inf->baseline = v[1] / v[2];
        dp->inf->baseline_set = true;
    }
}

static void dp_start(VlmModel *m, DpSteps *dp, int i)
{
    const VlmParamInfo *q = &m->params[i];
    if (q->local || dp->started[i])
        return;
    dp->started[i] = true;
    float *g = m->dw + q->offset, sc = dp->scale;
    for (size_t k = 0; k < q->count; k++)
        g[k] *= sc;
    vlm_mpi_isum_f(g, q->count);
}

static void dp_ready(VlmModel *m, int i)
{
    DpSteps *dp = m->ready_ctx;
    if (!dp->agreed)
        dp_agree(dp, 0);
    if (!dp->any_bad)
        dp_start(m, dp, i);
}

/* After this rank's forward and backward (or none, with no items): the
 * global gradient in every rank's dw; nonzero when any rank failed. */
static int dp_finish(VlmModel *m, DpSteps *dp, int bad, bool overlap,
                     size_t cnt, VlmErr *err)
{
    if (!dp->agreed)
        dp_agree(dp, bad);
    if (dp->any_bad) {
        dp->comm_s += vlm_mpi_wait_all();
        if (!bad)
            vlm_err_set(err, "another rank stopped (its message names the "
                        "cause)");
        return 1;
    }
    if (overlap) {
        for (int i = 0; i < m->n_params; i++)   /* any not reported */
            dp_start(m, dp, i);
        dp->comm_s += vlm_mpi_wait_all();
    } else {
        float sc = (float)((double)dp->mine / (double)cnt);
        for (size_t k = 0; k < m->n_w; k++)
            m->dw[k] *= sc;
        double t0 = vlm_now();
        vlm_mpi_sum_f(m->dw, m->n_w);
        dp->comm_s += vlm_now() - t0;
    }
    m->dw_zero = false;
    return 0;
}

/* The local rows of the batch: gather dloc rows into a compact (B, width)
 * block (times scale: 1, or under MPI this rank's share of the global
 * batch) and take a lazy step on those rows only. */
static void step_local(VlmModel *m, const VlmOptim *opt, const uint32_t *idx,
                       int B, float *g, float scale)
{
    size_t w = m->local_width;
    for (int b = 0; b < B; b++)
        memcpy(g + (size_t)b * w, m->dloc + (size_t)idx[b] * w,
               w * sizeof *g);
    if (scale != 1)
        for (size_t k = 0; k < (size_t)B * w; k++)
            g[k] *= scale;
    vlm_optim_update_rows(opt, m->loc, g, m->loc_m, m->loc_v, w, idx,
                          (size_t)B);
}

/* Mean per-item ELBO of d with S samples per item, in batches of whole
 * items, on the noise stream `stream` of seed; the caller's stream is
 * restored (evaluating does not move the training RNG). */
static int mean_elbo(VlmModel *m, const VlmData *d, int S, uint64_t seed,
                     int stream, double *out, VlmErr *err)
{
    VlmRng keep = m->rng;
    vlm_rng_init(&m->rng, seed, stream);
    int E = (int)m->E_max;
    if (S * E > m->Rmax)
        S = m->Rmax / E > 0 ? m->Rmax / E : 1;
    int B = m->Rmax / (S * E);
    if (B < 1)
        B = 1;
    uint32_t *idx = vlm_xmalloc((size_t)B * sizeof *idx);
    double sum = 0;
    int rc = 0;
    for (size_t i0 = 0; i0 < d->n && rc == 0; i0 += (size_t)B) {
        int nb = d->n - i0 < (size_t)B ? (int)(d->n - i0) : B;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        vlm_model_fill_batch(m, d, idx, nb, S);
        double s;
        rc = vlm_infer_forward(m, NULL, &s, VLM_OBJ_ELBO, err);
        sum += s;
    }
    free(idx);
    m->rng = keep;
    *out = sum / (double)d->n;
    return rc;
}

/* The test figure after an epoch: S = 1 on its own noise stream. */
static int test_objective(VlmModel *m, const VlmData *d, uint64_t seed,
                          double *out, VlmErr *err)
{
    return mean_elbo(m, d, 1, seed, VLM_STREAM_SAMPLE, out, err);
}

/* A collapsed component (vlm_em_collapsed) stops EM: its likelihood is
 * unbounded, so every number after it would be meaningless. */
static int em_check_collapse(const VlmEm *em, const char *when, VlmErr *err)
{
    int k, d;
    if (!vlm_em_collapsed(em, &k, &d))
        return 0;
    double v = em->var[(size_t)k * em->D + d];
    double mu = em->mu[(size_t)k * em->D + d];
    char fix[160];
    if (em->reg_covar > 0) {
        double want = 1e-3;
        while (want < 1e-6 * mu * mu)
            want *= 10;
        snprintf(fix, sizeof fix, "--reg-covar %g is too small for data of "
                 "this scale: use a larger --reg-covar, e.g. %g",
                 em->reg_covar, want);
    } else
        snprintf(fix, sizeof fix, "--reg-covar 0 puts no floor under the "
                 "variances: use --reg-covar R > 0 (the default is 1e-3)");
    vlm_err_set(err, "EM: component %d collapsed %s: its variance in "
                "dimension %d is %.3g around %.6g (it holds %.0f item%s), "
                "where the likelihood grows without bound; %s", k, when, d,
                v, mu, em->Nk[k], em->Nk[k] < 1.5 ? "" : "s", fix);
    return -1;
}

/* EM for a conjugate Gaussian mixture (infer_em.c): each iteration is one
 * E-step over the whole data (its mean log p(x) is the train figure, for
 * the parameters entering the iteration), then the closed-form M-step;
 * stop after `epochs` iterations or when the figure changes by less than
 * tol. A fresh run starts from k-means; --load continues from the
 * checkpoint's parameters. Checkpoints have the gradient trainer's format
 * (epoch = iterations; the optimizer state is unused). */
/* The file holding the mixture's observed variable: the data itself, or
 * its part when the variable was bound by name (--data x=FILE; a mixture
 * has no other data variable, so it reads the whole file). */
static const VlmData *em_file(const VlmModel *m, const VlmData *d)
{
    return d && d->bind ? d->bind[m->desc->mixture->observed].data : d;
}

static int train_em(VlmModel *m, const VlmData *data, const VlmData *test,
                    const VlmTrainOpts *o, VlmErr *err)
{
    data = em_file(m, data);
    test = em_file(m, test);
    TrainState s;
    memset(&s, 0, sizeof s);
    s.samples = 1;
    vlm_optim_defaults(&s.opt, VLM_OPT_ADAM, o->lr);
    vlm_batcher_init(&s.bt, data->n, (size_t)(o->batch > 0 ? o->batch : 64),
                     o->seed, true);
    vlm_infer_init(&s.inf, VLM_OBJ_ELBO);
    vlm_model_alloc_local(m, 0);
    vlm_model_init_params(m, o->seed);
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_NOISE);
    long max_iter = o->has_epochs ? o->epochs : 100;
    VlmEm em = {0};
    VlmMetrics met = {0};
    bool have_met = false;
    double t0 = vlm_now();
    if (o->load) {
        if (resume_ckpt(o->load, m, &s, data, err) != 0)
            goto fail;
    }
    if (o->log && vlm_comm_world()->rank == 0) {   /* before the k-means start: a log that cannot be
                       appended to (other columns) fails at once */
        if (open_log(&met, o->log, err) != 0)
            goto fail;
        have_met = true;
    }
    if (vlm_em_init(&em, m, o->reg_covar, err) != 0)
        goto fail;
    if (!o->load) {
        int it = vlm_em_init_kmeans(&em, data, o->seed, o->kmeans_iters);
        if (em_check_collapse(&em, "in the k-means initialisation", err)) {
            note_checkpoint(err, o->save, 0, "iteration");
            goto fail;
        }
        vlm_em_to_params(&em, m);
        fprintf(stderr, "em: k-means++ and %d Lloyd iterations for %d "
                "components (%.2f s)\n", it, em.K, vlm_now() - t0);
    }
    if (s.epoch >= max_iter && o->load)
        printf("%s: already trained for %ld iterations (--epochs %ld): "
               "nothing to do\n", o->load, s.epoch, max_iter);
    else if (s.epoch >= max_iter)
        printf("--epochs %ld: no EM iterations, the k-means start is kept\n", max_iter);
    double prev = -INFINITY;
    bool converged = false;
    long saved_epoch = 0;
    while (s.epoch < max_iter && !converged) {
        double ll = vlm_em_estep(&em, data, true);
        if (!isfinite(ll)) {
            vlm_err_set(err, "EM: the log-likelihood is %s at iteration %ld",
                        isnan(ll) ? "NaN" : "infinite", s.epoch + 1);
            note_checkpoint(err, o->save, saved_epoch, "iteration");
            goto fail;
        }
        vlm_em_mstep(&em);
        char when[48];
        snprintf(when, sizeof when, "at iteration %ld", s.epoch + 1);
        if (em_check_collapse(&em, when, err)) {
            note_checkpoint(err, o->save, saved_epoch, "iteration");
            goto fail;
        }
        vlm_em_to_params(&em, m);
        s.epoch++;
        s.step++;
        converged = fabs(ll - prev) < o->tol;
        prev = ll;
        double test_ll = test ? vlm_em_estep(&em, test, false) : NAN;
        char summary[128] = "";
        if (test)
            snprintf(summary, sizeof summary, "  test log p(x) %.6g", test_ll);
        printf("epoch %ld  train log p(x) %.6g%s\n", s.epoch, ll, summary);
        fflush(stdout);
        if (have_met) {
            double row[6] = {(double)s.epoch, (double)s.step, ll, test_ll,
                             vlm_now() - t0, 0};
            vlm_metrics_row(&met, row);
        }
        if (o->save && o->every > 0 && s.epoch % o->every == 0 &&
            s.epoch < max_iter && !converged) {
            if (save_ckpt_all(o->save, m, &s, err) != 0)
                goto fail;
            saved_epoch = s.epoch;
        }
    }
    fprintf(stderr, "em: %s after %ld iterations (%.2f s)\n",
            converged ? "converged" : "stopped (--epochs)", s.epoch,
            vlm_now() - t0);
    if (o->save && save_ckpt_all(o->save, m, &s, err) != 0)
        goto fail;
    if (have_met)
        vlm_metrics_close(&met);
    vlm_em_free(&em);
    vlm_batcher_free(&s.bt);
    return 0;
fail:
    if (have_met)
        vlm_metrics_close(&met);
    vlm_em_free(&em);
    vlm_batcher_free(&s.bt);
    return -1;
}

/* Semi-supervised M2: alpha of eq. 9 per labelled item, 0.1 N / N_l by
 * default (Kingma et al. 2014 use alpha = 0.1 N on the mean over the
 * labelled items); said once, with the counts. */
static int set_aux_weight(const VlmModel *m, const VlmData *d,
                          const VlmTrainOpts *o, VlmInfer *inf, VlmErr *err)
{
    int y = vlm_infer_guided_summed(m);
    if (y < 0)
        return 0;
    size_t given = 0;
    VlmBind b = vlm_data_bind_of(m, d, y);   /* its file and column */
    const VlmData *f = b.data;
    for (size_t i = 0; i < d->n; i++) {
        size_t at = i * f->d + b.column;
        float x = f->x8 ? f->x8[at] : f->x[at];   /* NaN: missing */
        given += !isnan(x) && (!f->mask || f->mask[at] != 0);
    }
    inf->aux_weight = o->has_aux_weight ? o->aux_weight
                      : given ? 0.1 * (double)d->n / (double)given : 0;
    if (inf->aux_weight < 0 || !isfinite(inf->aux_weight)) {
        vlm_err_set(err, "--aux-weight must be a finite number >= 0");
        return -1;
    }
    fprintf(stderr, "semi-supervised: `%s` is given in %zu of %zu items; where it "
            "is missing the guide's q(%s | ...) weighs its values (M2's bound), "
            "where given %.4g x log q(%s | ...) is added (--aux-weight%s)\n",
            m->vars[y].name, given, d->n, m->vars[y].name, inf->aux_weight,
            m->vars[y].name, o->has_aux_weight ? "" : "; default 0.1 N / N_labelled");
    return 0;
}

int vlm_train(VlmModel *m, const VlmData *data, const VlmData *test,
              const VlmTrainOpts *o, VlmErr *err)
{
    if (m->desc->mixture && !o->has_optimizer && !m->local_width)
        return train_em(m, data, test, o, err);
    TrainState s;
    memset(&s, 0, sizeof s);
    int batch = o->batch > 0 ? o->batch : 64;
    if ((size_t)batch > data->n)
        batch = (int)data->n;
    s.samples = o->samples > 0 ? o->samples : 1;
    vlm_optim_defaults(&s.opt, o->optimizer, o->lr);
    s.opt.clip_norm = o->clip;
    s.opt.sched = o->sched;
    vlm_batcher_init(&s.bt, data->n, (size_t)batch, o->seed, true);
    vlm_infer_init(&s.inf, o->objective);
    vlm_model_alloc_local(m, m->local_width ? data->n : 0);
    vlm_model_init_params(m, o->seed);
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_NOISE);

    if (o->load) {
        if (resume_ckpt(o->load, m, &s, data, err) != 0)
            goto fail;
        /* Explicit options override the checkpoint's. */
        if (o->has_lr) s.opt.lr = o->lr;
        if (o->has_clip) s.opt.clip_norm = o->clip;
        if (o->has_sched) s.opt.sched = o->sched;
        if (o->has_optimizer && o->optimizer != s.opt.kind) {
            vlm_err_set(err, "%s was trained with another --optimizer",
                        o->load);
            goto fail;
        }
        if (o->has_batch) s.bt.batch = (size_t)batch;
        if (o->has_samples) s.samples = o->samples;
        if (o->has_objective) s.inf.objective = o->objective;
        batch = (int)s.bt.batch;
    }
    long per_epoch = ((long)data->n + batch - 1) / batch;
    if (s.opt.sched == VLM_SCHED_COSINE)
        s.opt.total_steps = per_epoch * o->epochs;
    if (s.opt.sched == VLM_SCHED_STEP && s.opt.step_every == 0)
        s.opt.step_every = per_epoch * (o->epochs > 3 ? o->epochs / 3 : 1);

    int S = s.samples;
    vlm_model_alloc_rows(m, batch * S * (int)m->E_max);
    if (set_aux_weight(m, data, o, &s.inf, err) != 0)
        goto fail;
    float *gloc = m->local_width
        ? vlm_xmalloc((size_t)batch * m->local_width * sizeof(float)) : NULL;
    TensorSteps steps = {&s.opt, m, vlm_xcalloc((size_t)m->n_params + 1, sizeof(bool)), false};
    bool step_after = getenv("VLM_STEP_AFTER_BACKWARD") != NULL;
    /* MPI: this rank's items of each step (shard.c); local guide
     * parameters stay with the rank owning their item */
    const VlmComm *cw = vlm_comm_world();
    bool par = cw->size > 1;
    VlmShardKind shard = m->local_width ? VLM_SHARD_OWNER : VLM_SHARD_SLICE;
    uint32_t *mine = vlm_xmalloc((size_t)batch * sizeof *mine);
    size_t *rank_counts = vlm_xmalloc((size_t)cw->size * sizeof *rank_counts);
    DpSteps dp = {vlm_xcalloc((size_t)m->n_params + 1, sizeof(bool)), 1,
                  false, false, &s.inf, 0, 0};
    long dp_steps = 0;
    /* Noise under MPI: where every draw of a step is a bulk draw per item
     * (reparameterized and enumerated latents; no score-function or
     * global latent) and each rank's items are a contiguous slice of the
     * batch, each rank draws its slice of one process's noise
     * (VlmRngShard): the run is then one process's up to the order of
     * float sums, and resumes at any number of ranks. Otherwise each rank
     * draws its own noise, keyed by (rank, step). */
    bool keyed = par && shard == VLM_SHARD_SLICE;
    for (int j = 0; j < m->n_latent; j++)
        if (m->vars[j].treat == VLM_TREAT_SCORE || m->vars[j].global)
            keyed = false;
    VlmRngShard rs = {0};

    VlmMetrics met = {0};
    bool have_met = false;
    if (o->log && cw->rank == 0) {
        if (open_log(&met, o->log, err) != 0)
            goto fail_free;
        have_met = true;
    }
    if (s.epoch >= o->epochs && o->load)
        printf("%s: already trained for %ld epochs (--epochs %ld): nothing "
               "to do\n", o->load, s.epoch, o->epochs);
    else if (s.epoch >= o->epochs)
        printf("--epochs %ld: no training, the initial parameters are kept\n", o->epochs);
    bool test_local_note = false;
    long saved_epoch = 0;   /* the last epoch saved by this run */
    const char *objname = s.inf.objective == VLM_OBJ_IWAE ? "iwae" : "elbo";
    if (vlm_model_exact(m) && vlm_infer_guided_summed(m) < 0)
        objname = "log p(x)";
    double kl_weight = o->has_kl_weight ? o->kl_weight : 1;
    bool weighted = kl_weight != 1 || o->kl_warmup > 0;
    if (weighted) {
        if (vlm_model_exact(m)) {
            vlm_err_set(err, "--kl-weight and --kl-warmup weigh the terms of latents "
                        "with a guide; this model has none");
            goto fail_free;
        }
        objname = "KL-weighted objective (not a bound)";
        fprintf(stderr, "KL weight %g%s: the training objective weighs log p(z) - "
                "log q(z) of the guided latents and is not a bound on log p(x); "
                "eval and the test figures are the unweighted bound\n",
                kl_weight, o->kl_warmup > 0 ? ", ramped from 0 over the first --kl-warmup epochs" : "");
    }
    double t0 = vlm_now();
    while (s.epoch < o->epochs) {
        char label[64];
        snprintf(label, sizeof label, "epoch %ld/%ld", s.epoch + 1, o->epochs);
        VlmProgress pg;
        vlm_progress_start(&pg, stderr, label, (long)data->n);
        double sum = 0;
        size_t seen = 0, seen_mine = 0;
        const uint32_t *idx;
        size_t cnt;
        while ((cnt = vlm_batcher_next(&s.bt, &idx)) > 0) {
            double obj = 0;
            const uint32_t *use = idx;
            size_t nmine = cnt, least = cnt;
            if (par) {
                nmine = vlm_shard_batch(shard, idx, cnt, data->n, cw->rank,
                                        cw->size, mine, rank_counts, &least);
                use = mine;
                if (keyed) {
                    size_t hi;
                    vlm_shard_range(cnt, cw->rank, cw->size, &rs.lo, &hi);
                    rs.b = nmine;
                    rs.B = cnt;
                    m->rng.shard = &rs;
                } else {
                    /* each rank its own noise, keyed by (rank, step): the
                     * same at any resume, whatever each rank drew before */
                    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_NOISE + ((uint64_t)cw->rank << 32));
                    m->rng.counter = (uint64_t)s.step << 24;
                }
                dp.agreed = dp.any_bad = false;
                dp.mine = nmine;
                dp.scale = (float)((double)nmine / (double)cnt);
                memset(dp.started, 0, (size_t)m->n_params * sizeof *dp.started);
            }
            /* overlapped sums need every rank in the backward passes */
            bool overlap = par && least > 0 && !step_after;
            /* without clipping, each tensor is stepped (checked, updated,
             * its gradient zeroed) as soon as the backward passes have
             * it; with clipping the norm needs the whole gradient first */
            bool per_tensor = s.opt.clip_norm <= 0 && !step_after && !par;
            if (nmine > 0)
                vlm_model_fill_training_batch(m, data, use, (int)nmine, S);
            if (overlap) {
                m->param_ready = dp_ready;
                m->ready_ctx = &dp;
            }
            if (per_tensor) {
                vlm_optim_begin_step(&s.opt);
                memset(steps.stepped, 0, (size_t)m->n_params * sizeof *steps.stepped);
                atomic_store(&steps.bad, false);
                m->param_ready = step_tensor;
                m->ready_ctx = &steps;
            }
            /* KL warm-up by position in training (epoch, items seen):
             * a resumed run continues the ramp where it stopped */
            double ramp = o->kl_warmup > 0
                ? fmin(1.0, ((double)s.epoch + (double)seen / (double)data->n) / o->kl_warmup) : 1.0;
            s.inf.kl_weight = kl_weight * ramp;
            int bad = 0;
            if (nmine > 0)
                bad = vlm_infer_grad(m, &s.inf, &obj, err) != 0;
            vlm_parallel_wait();   /* the tensors stepped in the background */
            if (nmine == 0 && !m->dw_zero)   /* no items here: a zero share */
                memset(m->dw, 0, (m->n_w ? m->n_w : 1) * sizeof *m->dw);
            m->param_ready = NULL;
            m->ready_ctx = NULL;
            if (par) {
                m->rng.shard = NULL;
                bad = dp_finish(m, &dp, bad, overlap, cnt, err);
                dp_steps++;
                if (keyed && least == 0)   /* a rank without items drew nothing */
                    vlm_rng_seek(&m->rng, vlm_mpi_max_u64(vlm_rng_tell(&m->rng)));
                if (keyed && rs.missed) {
                    keyed = false;
                    fprintf(stderr, "mpi: note: this model draws noise the ranks cannot "
                            "split as one process does; from step %ld each rank draws "
                            "its own\n", s.step + 2);
                }
            }
            if (!bad && per_tensor) {
                m->ready_ctx = &steps;
                for (int i = 0; i < m->n_params; i++)   /* any not reported */
                    step_tensor(m, i);
                vlm_parallel_wait();
                m->ready_ctx = NULL;
                if (atomic_load(&steps.bad)) {
                    if (check_grad(m, err) == 0)   /* names the parameter */
                        vlm_err_set(err, "a gradient is Inf or NaN");
                    bad = 1;
                } else
                    m->dw_zero = true;
            } else if (!bad && s.opt.clip_norm > 0) {
                bad = check_grad(m, err) != 0;
                if (!bad)
                    vlm_optim_clip(m->dw, m->n_w, s.opt.clip_norm);
            }
            if (!bad && !per_tensor) {
                vlm_optim_begin_step(&s.opt);
                if (s.opt.clip_norm > 0)
                    vlm_optim_update(&s.opt, m->w, m->dw, m->w_m, m->w_v, m->n_w);
                else if (vlm_optim_update_consume(&s.opt, m->w, m->dw, m->w_m, m->w_v, m->n_w) != 0) {
                    if (check_grad(m, err) == 0)   /* names the parameter */
                        vlm_err_set(err, "a gradient is Inf or NaN");
                    bad = 1;
                } else
                    m->dw_zero = true;
            }
            if (bad) {
                fprintf(stderr, "\n");
                addf(err->msg, sizeof err->msg, "; training stopped at epoch "
                     "%ld, step %ld", s.epoch + 1, s.step + 1);
                note_checkpoint(err, o->save, saved_epoch, "epoch");
                goto fail_met;
            }
            if (m->local_width && nmine > 0)
                step_local(m, &s.opt, use, (int)nmine, gloc, dp.scale);
            s.step++;
            sum += obj;
            seen += cnt;
            seen_mine += nmine;
            vlm_progress_update(&pg, (long)seen, sum / (double)(seen_mine ? seen_mine : 1));
        }
        s.epoch++;
        vlm_mpi_sum_d(&sum, 1);   /* MPI: every rank's items */
        double train_obj = sum / (double)(seen ? seen : 1);
        /* the bar showed rank 0's items under MPI; its last line, all */
        pg.running = train_obj;
        double test_obj = NAN;
        char summary[128] = "";
        if (test) {
            if (m->local_width) {
                if (!test_local_note)
                    fprintf(stderr, "note: --test is not evaluated for a "
                            "model with local guide parameters (use eval "
                            "--refine)\n");
                test_local_note = true;
            } else {
                if (test_objective(m, test, o->seed, &test_obj, err) != 0)
                    goto fail_met;
                snprintf(summary, sizeof summary, "test %s %.6g",
                         vlm_model_exact(m) ? "log p(x)" : "elbo", test_obj);
            }
        }
        vlm_progress_finish(&pg, summary[0] ? summary : NULL);
        printf("epoch %ld  train %s %.6g%s%s\n", s.epoch, objname, train_obj,
               summary[0] ? "  " : "", summary);
        fflush(stdout);
        if (have_met) {
            double row[6] = {(double)s.epoch, (double)s.step, train_obj,
                             test_obj, vlm_now() - t0,
                             vlm_optim_lr(&s.opt, s.opt.t)};
            vlm_metrics_row(&met, row);
        }
        if (o->save && o->every > 0 && s.epoch % o->every == 0 &&
            s.epoch < o->epochs) {
            if (save_ckpt_all(o->save, m, &s, err) != 0)
                goto fail_met;
            saved_epoch = s.epoch;
        }
    }
    if (o->save && save_ckpt_all(o->save, m, &s, err) != 0)
        goto fail_met;
    if (par && dp_steps > 0)
        fprintf(stderr, "mpi: %d ranks, %ld steps, %.3f ms per step waiting "
                "for the gradient sums (rank 0)\n", cw->size, dp_steps,
                1e3 * dp.comm_s / (double)dp_steps);
    if (m->n_given_batches > 0)
        printf("%ld batches had every summed variable given: computed on %ld rows per "
               "(item, sample) instead of %ld\n", m->n_given_batches, m->E_given, m->E_max);
    if (have_met)
        vlm_metrics_close(&met);
    free(gloc);
    free(steps.stepped);
    free(mine);
    free(rank_counts);
    free(dp.started);
    vlm_batcher_free(&s.bt);
    return 0;
fail_met:
    if (have_met)
        vlm_metrics_close(&met);
fail_free:
    free(gloc);
    free(steps.stepped);
    free(mine);
    free(rank_counts);
    free(dp.started);
fail:
    vlm_batcher_free(&s.bt);
    return -1;
}

/* ---------------------------------------------------------- refinement */

void vlm_refine_defaults(VlmRefineOpts *o)
{
    memset(o, 0, sizeof *o);
    o->max_steps = 5000;
    o->tol = 1e-4;
    o->window = 25;
    o->batch = 64;
    o->lr = 5e-2f;
    o->check_samples = 4;
    o->lr_levels = 3;
    o->progress = stderr;
}

/* Mean per-item ELBO of d, S samples per item, with the noise stream reset
 * to the same state on every call (common random numbers): a
 * deterministic function of the local parameters, so two calls differ by
 * what the steps between them changed, not by Monte Carlo noise. */
static int refine_check(VlmModel *m, const VlmData *d, int S, double *out,
                        VlmErr *err)
{
    return mean_elbo(m, d, S, m->rng.seed, VLM_STREAM_REFINE, out, err);
}

/* Local parameters fitted with theta frozen: Adam on the ELBO (S = 1, the
 * closed-form KL where the model has it), one step for every item per
 * iteration (the data in chunks of o->batch items, one bias-correction
 * count for all). Every o->window steps the mean ELBO over the items is
 * measured with fixed noise (refine_check). When it rose by less than
 * o->tol * |ELBO| over the window it has stopped improving at this
 * learning rate (with fixed noise a smaller rise, or a fall, is the
 * optimizer's own jitter around the optimum): the rate drops to a quarter,
 * and at the o->lr_levels-th such plateau refinement stops; or after
 * o->max_steps steps. The first rate covers long distances (Adam moves a
 * parameter by about the rate per step), the finer ones take out the
 * jitter, which importance sampling feels more than the ELBO. The global
 * parameters are not touched (dw is computed and dropped). */
int vlm_train_refine(VlmModel *m, const VlmData *d, const VlmRefineOpts *o,
                     VlmRefineResult *res, VlmErr *err)
{
    VlmRefineResult r = {0};
    if (res)
        *res = r;
    if (!m->loc || o->max_steps <= 0 || d->n == 0)
        return 0;
    int batch = o->batch < 1 ? 1 : o->batch;
    if (batch * (int)m->E_max > m->Rmax)
        batch = m->Rmax / (int)m->E_max;
    int window = o->window > 0 ? o->window : 25;
    size_t wl = m->local_width;
    uint32_t *idx = vlm_xmalloc((size_t)batch * sizeof *idx);
    float *g = vlm_xmalloc((size_t)batch * wl * sizeof *g);
    memset(m->loc_m, 0, d->n * wl * sizeof(float));
    memset(m->loc_v, 0, d->n * wl * sizeof(float));
    VlmInfer inf;
    vlm_infer_init(&inf, VLM_OBJ_ELBO);
    VlmOptim opt;
    vlm_optim_defaults(&opt, VLM_OPT_ADAM, o->lr);
    int S = o->check_samples > 0 ? o->check_samples : 1;
    int level = 0, levels = o->lr_levels > 0 ? o->lr_levels : 1;
    double prev, cur = 0;
    int rc = refine_check(m, d, S, &prev, err);
    r.elbo_start = prev;
    /* the bar runs to the cap; refinement usually stops well before */
    char label[64];
    snprintf(label, sizeof label, "refine (at most %d steps)", o->max_steps);
    VlmProgress pg;
    vlm_progress_start(&pg, o->progress, label,
                       (long)o->max_steps * (long)d->n);
    while (rc == 0 && r.steps < o->max_steps) {
        int until = r.steps + window < o->max_steps ? r.steps + window
                                                    : o->max_steps;
        double obj_sum = 0;
        for (; r.steps < until && rc == 0; r.steps++) {
            vlm_optim_begin_step(&opt);
            obj_sum = 0;
            for (size_t i0 = 0; i0 < d->n && rc == 0; i0 += (size_t)batch) {
                int nb = d->n - i0 < (size_t)batch ? (int)(d->n - i0) : batch;
                for (int b = 0; b < nb; b++)
                    idx[b] = (uint32_t)(i0 + b);
                vlm_model_fill_batch(m, d, idx, nb, 1);
                double obj;
                rc = vlm_infer_grad(m, &inf, &obj, err);
                if (rc == 0)
                    step_local(m, &opt, idx, nb, g, 1);
                obj_sum += obj;
            }
            vlm_progress_update(&pg, (long)(r.steps + 1) * (long)d->n,
                                obj_sum / (double)d->n);
        }
        if (rc == 0)
            rc = refine_check(m, d, S, &cur, err);
        if (rc != 0)
            break;
        bool flat = cur - prev < o->tol * fabs(cur);
        prev = cur;
        if (flat && ++level >= levels) {
            r.converged = true;
            break;
        }
        if (flat)               /* the next, finer level */
            opt.lr /= 4;
    }
    r.elbo_end = prev;
    if (o->progress) {
        if (pg.tty)
            fprintf(o->progress, "\r\033[K");
        if (rc == 0)
            fprintf(o->progress, "refine: %d steps, ELBO %.6g -> %.6g (%s)\n",
                    r.steps, r.elbo_start, r.elbo_end, r.converged
                    ? "stopped improving" : "reached --refine, the cap");
        fflush(o->progress);
    }
    free(idx);
    free(g);
    if (res)
        *res = r;
    return rc;
}
