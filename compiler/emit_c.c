/* emit_c.c — writes the C translation unit of a lowered, differentiated
 * program: size tables, the parameter/variable tables, buffers, and
 * straight-line forward/backward functions of runtime kernel calls, plus
 * the VlmModelDesc and main(). It makes no inference decisions. */
#include "vlmc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { FN_EXP, FN_LOG, FN_LOG1P, FN_SQRT, FN_SIGMOID, FN_SOFTPLUS, FN_TANH,
       FN_RELU, FN_ABS, FN_ELU, FN_NEG, FN_IDENTITY, FN_SQUARE };

static const char *const fn_enum[] = {
    "VLM_FN_EXP", "VLM_FN_LOG", "VLM_FN_LOG1P", "VLM_FN_SQRT", "VLM_FN_SIGMOID",
    "VLM_FN_SOFTPLUS", "VLM_FN_TANH", "VLM_FN_RELU", "VLM_FN_ABS", "VLM_FN_ELU",
    "VLM_FN_NEG", "VLM_FN_IDENTITY", "VLM_FN_SQUARE"};
static const char *const act_enum[] = {"VLM_ACT_IDENTITY", "VLM_ACT_RELU", "VLM_ACT_TANH",
                                       "VLM_ACT_SIGMOID", "VLM_ACT_SOFTPLUS", "VLM_ACT_ELU"};
static const char *const init_enum[] = {"VLM_INIT_NORMAL", "VLM_INIT_UNIFORM", "VLM_INIT_CONST",
                                        "VLM_INIT_FAN_IN", "VLM_INIT_UNIFORM_LOG",
                                        "VLM_INIT_UNIFORM_LOGIT"};
static const char *const treat_enum[] = {"VLM_TREAT_ENUMERATE", "VLM_TREAT_REPARAM",
                                         "VLM_TREAT_SCORE", "VLM_TREAT_AUTO_GUIDE",
                                         "VLM_TREAT_MARKOV"};

typedef struct Emit {
    FILE *o;
    const VlmcProgram *p;
    const VlmcGraph *g;
    char pfx;            /* 'm' model, 'g' guide, 's' sampler */
    bool lines;
    const char *path;
    int last_line;       /* source line of the last comment written */
} Emit;

static void out(Emit *E, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *E, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vfprintf(E->o, f, ap);
    va_end(ap);
}

static const VlmcNode *node(Emit *E, int i) { return &E->g->nodes[i]; }
/* Every per-variable array of VlmModel (obs, obs_mask, obs_mean, lat,
 * logp_term, ...) is indexed by variable index: latents, then observed. */

/* ------------------------------------------------ values and gradients */

/* value pointer of node i as a C expression */
static void V(Emit *E, int i, char *buf, size_t n)
{
    const VlmcNode *x = node(E, i);
    switch (x->op) {
    case VLMC_OP_PARAM:
        snprintf(buf, n, "(M->w + po[%d])", x->param);
        return;
    case VLMC_OP_ENUM:
        snprintf(buf, n, "M->lat[%d]", x->var);
        return;
    case VLMC_OP_LATENT: case VLMC_OP_RSAMPLE: case VLMC_OP_SAMPLE:
        /* below FULL the value has a buffer of its own rows (buffers.c) */
        if (x->level < VLMC_LEVEL_FULL)
            snprintf(buf, n, "%c_slot[%d]", E->pfx, x->vslot);
        else if (x->op == VLMC_OP_SAMPLE && E->pfx == 's' && x->var >= E->p->n_latent)
            snprintf(buf, n, "obs_sample[%d]", x->var);
        else
            snprintf(buf, n, "M->lat[%d]", x->var);
        return;
    case VLMC_OP_OBS:
        if (x->level < VLMC_LEVEL_FULL)   /* a view of the data's rows */
            snprintf(buf, n, "%c_val[%d]", E->pfx, i);
        else
            snprintf(buf, n, "M->obs[%d]", x->var);
        return;
    case VLMC_OP_REPEAT:   /* a view of its input's rows */
        snprintf(buf, n, "%c_val[%d]", E->pfx, i);
        return;
    default:
        snprintf(buf, n, "%c_slot[%d]", E->pfx, x->vslot);
    }
}

static void D(Emit *E, int i, char *buf, size_t n)
{
    const VlmcNode *x = node(E, i);
    if (!x->dep) {
        snprintf(buf, n, "NULL");
        return;
    }
    switch (x->op) {
    case VLMC_OP_PARAM:
        snprintf(buf, n, "(M->dw + po[%d])", x->param);
        return;
    case VLMC_OP_LATENT:
        snprintf(buf, n, "M->dlat[%d]", x->var);
        return;
    default:
        snprintf(buf, n, "%c_slot[%d]", E->pfx, x->gslot);
    }
}

/* Rows of a level in the generated functions, which define
 * R = B*S*E (FULL), RS = B*S and RI = B. */
static const char *level_rows(VlmcLevel l)
{
    static const char *const r[VLMC_N_LEVELS] = {"1", "RI", "RS", "R"};
    return r[l];
}

static const char *rows(const VlmcNode *x) { return level_rows(x->level); }

/* How many rows of the runtime's FULL arrays (VlmModel.lat, logp_term,
 * obs_mean, ...) repeat each row of x: R / rows(x), as C. */
static const char *full_factor(const VlmcNode *x)
{
    static const char *const f[VLMC_N_LEVELS] = {"R", "(R / RI)", "(R / RS)", "1"};
    return f[x->level];
}

/* After a node of a level below FULL wrote its rows to the front of a
 * runtime array of FULL rows: repeat each over its FULL rows. */
static void emit_expand(Emit *E, const VlmcNode *x, const char *n, const char *arr, bool f64)
{
    if (x->level == VLMC_LEVEL_FULL)
        return;
    out(E, "    vlm_rows_repeat%s(%s, %s, (size_t)%s, %s);\n", f64 ? "_f64" : "", rows(x), full_factor(x), n, arr);
}

/* The coefficient array of a term of x's level: the runtime's FULL array
 * itself, or its segmented sums in coef_buf. Returns the C expression. */
static const char *emit_coef(Emit *E, const VlmcNode *x, const char *arr)
{
    if (x->level == VLMC_LEVEL_FULL)
        return arr;
    out(E, "    memset(coef_buf, 0, sizeof(float) * (size_t)%s);\n", rows(x));
    out(E, "    vlm_rows_sum(%s, %s, 1, %s, coef_buf);\n", rows(x), full_factor(x), arr);
    return "coef_buf";
}

/* VlmIn view: element i of row r at p[r*rs + i*es]; es is 0 for a
 * scalar, or when `shared` (one parameter row for every element) */
static void in_view_es(Emit *E, int i, const char *rs_scale, bool shared, char *buf, size_t n)
{
    const VlmcNode *x = node(E, i);
    char v[64];
    V(E, i, v, sizeof v);
    int es = x->scalar || shared ? 0 : 1;
    if (vlmc_is_batched(x))
        snprintf(buf, n, "(VlmIn){%s, (ptrdiff_t)(%s)%s, %d}", v, x->n, rs_scale, es);
    else
        snprintf(buf, n, "(VlmIn){%s, 0, %d}", v, es);
}

static void in_view(Emit *E, int i, const char *rs_scale, char *buf, size_t n)
{
    in_view_es(E, i, rs_scale, false, buf, n);
}

static void out_view_es(Emit *E, int i, bool shared, char *buf, size_t n)
{
    const VlmcNode *x = node(E, i);
    if (!x->dep) {
        snprintf(buf, n, "(VlmOut){NULL, 0, 0}");
        return;
    }
    char d[64];
    D(E, i, d, sizeof d);
    int es = x->scalar || shared ? 0 : 1;
    if (vlmc_is_batched(x))
        snprintf(buf, n, "(VlmOut){%s, (ptrdiff_t)(%s), %d}", d, x->n, es);
    else
        snprintf(buf, n, "(VlmOut){%s, 0, %d}", d, es);
}

static void out_view(Emit *E, int i, char *buf, size_t n)
{
    out_view_es(E, i, false, buf, n);
}

static const char *stem(const VlmcNode *x) { return x->dist->forms[x->form].runtime; }

/* the distribution-parameter operands of a dist node: inputs from `first` */
static void th_views(Emit *E, const VlmcNode *x, int first)
{
    out(E, "(VlmIn[]){");
    for (int k = first; k < x->n_in; k++) {
        char b[256];
        in_view_es(E, x->in[k], "", x->shared_row, b, sizeof b);
        out(E, "%s%s", k > first ? ", " : "", b);
    }
    out(E, "}");
}

static void th_grads(Emit *E, const VlmcNode *x, int first)
{
    out(E, "(VlmOut[]){");
    for (int k = first; k < x->n_in; k++) {
        char b[256];
        out_view_es(E, x->in[k], x->shared_row, b, sizeof b);
        out(E, "%s%s", k > first ? ", " : "", b);
    }
    out(E, "}");
}

/* The observed entries of a variable's log-density: a summed variable's
 * density is taken at its enumerated value everywhere (then clamped). The
 * mask has FULL rows: x's rows read every (R / rows)-th. */
static void mask_view(Emit *E, const VlmcNode *x)
{
    if (x->var >= E->p->n_latent && !x->is_q && !E->p->vars[x->var].summed)
        out(E, "obs_mask_view(M, %d, %s, %s)", x->var, x->n, full_factor(x));
    else
        out(E, "(VlmIn){NULL, 0, 0}");
}

/* Before the statements of a new source line: that line as a comment
 * (so the C reads alongside the model) and a #line pointing back to it. */
static void line(Emit *E, const VlmcNode *x)
{
    if (x->loc.line <= 0)
        return;
    if (x->loc.line != E->last_line) {
        E->last_line = x->loc.line;
        const char *t = E->p->model->src->text;
        for (int l = 1; l < x->loc.line && *t; t++)
            if (*t == '\n')
                l++;
        while (*t == ' ' || *t == '\t')
            t++;
        out(E, "    /* ");
        for (int k = 0; *t && *t != '\n' && k < 100; t++, k++)
            if (!(t[0] == '*' && t[1] == '/') && !(t[0] == '/' && t[1] == '*') &&
                !(t[0] == '?' && t[1] == '?') && (unsigned char)*t >= 32)   /* no trigraphs */
                fputc(*t, E->o);
        out(E, " */\n");
    }
    if (E->lines)
        out(E, "#line %d \"%s\"\n", x->loc.line, E->path);
}

/* ------------------------------------------------------------ forward */

static void emit_fwd(Emit *E, int i)
{
    const VlmcNode *x = node(E, i);
    if (!x->live)
        return;
    char a[256], b[256], v[64], va[64], vb[64];
    V(E, i, v, sizeof v);
    switch (x->op) {
    case VLMC_OP_PARAM:
        return;
    case VLMC_OP_LATENT: case VLMC_OP_OBS:
        if (x->level == VLMC_LEVEL_FULL)
            return;
        break;
    default:
        break;
    }
    line(E, x);
    switch (x->op) {
    case VLMC_OP_LATENT: case VLMC_OP_OBS:
        /* the runtime's FULL rows of the guide's draw or of the data: one
         * per (item, sample) or per item */
        if (x->op == VLMC_OP_OBS)   /* the data's own rows when one per row */
            out(E, "    %s = vlm_rows_pick_view(%s, %s, (size_t)%s, M->obs[%d], %c_slot[%d]);\n", v, rows(x),
                full_factor(x), x->n, x->var, E->pfx, x->vslot);
        else
            out(E, "    vlm_rows_pick(%s, %s, (size_t)%s, M->lat[%d], %s);\n", rows(x), full_factor(x), x->n,
                x->var, v);
        break;
    case VLMC_OP_REPEAT: {   /* its input's rows when one copy each */
        const VlmcNode *s = node(E, x->in[0]);
        V(E, x->in[0], va, sizeof va);
        out(E, "    %s = vlm_rows_repeat_view(%s, %s / %s, (size_t)%s, %s, %c_slot[%d]);\n", v, rows(s), rows(x),
            rows(s), x->n, va, E->pfx, x->vslot);
        break;
    }
    case VLMC_OP_NUM:
        out(E, "    %s[0] = %s;\n", v, x->cexpr);
        break;
    case VLMC_OP_LOCAL:
        out(E, "    for (int r = 0; r < %s; r++)\n"
               "        memcpy(%s + (size_t)r * %s, M->loc + (size_t)M->row_item[(size_t)r * %s] * M->local_width + po[%d], sizeof(float) * (size_t)%s);\n",
            rows(x), v, x->n, full_factor(x), x->param, x->n);
        break;
    case VLMC_OP_ENUM: {
        const VlmcVar *var = &E->p->vars[x->var];
        if (var->treat == VLMC_TREAT_MARKOV) {   /* row e: every step in state e */
            out(E, "    for (int r = 0; r < R; r++)\n"
                   "        for (long i = 0; i < %s; i++) M->lat[%d][(size_t)r * %s + i] = "
                   "(float)(((r %% M->E) / enum_stride[%d]) %% %s);\n",
                x->n, x->var, x->n, x->var, var->K);
            break;
        }
        if (var->summed)   /* given in every item of the batch: the data's value */
            out(E, "    if (M->summed_given)\n"
                   "        memcpy(M->lat[%d], M->obs[%d], sizeof(float) * (size_t)R * %s);\n    else\n",
                x->var, x->var, x->n);
        out(E, "    for (int r = 0; r < R; r++) {\n"
               "        long e = (r %% M->E) / (M->summed_given ? enum_stride_given : enum_stride)[%d];\n"
               "        for (long i = 0; i < %s; i++) { M->lat[%d][(size_t)r * %s + i] = (float)(e %% %s); e /= %s; }\n"
               "    }\n",
            x->var, x->n, x->var, x->n, var->K, var->K);
        break;
    }
    case VLMC_OP_FN:
        V(E, x->in[0], va, sizeof va);
        out(E, "    vlm_ew_fn_fwd(%s, (size_t)%s * %s, %s, %s);\n", fn_enum[x->fn], rows(x), x->n, va, v);
        break;
    case VLMC_OP_ADD: case VLMC_OP_SUB: case VLMC_OP_MUL: case VLMC_OP_DIV: {
        static const char *nm[] = {"add", "sub", "mul", "div"};
        in_view(E, x->in[0], "", a, sizeof a);
        in_view(E, x->in[1], "", b, sizeof b);
        out(E, "    vlm_ew_%s_fwd(%s, (int)%s, %s, %s, %s);\n", nm[x->op - VLMC_OP_ADD], rows(x), x->n, a, b, v);
        break;
    }
    case VLMC_OP_MATVEC:
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        out(E, "    vlm_nn_matvec_fwd(%s, (int)%s, (int)%s, %s, %s, %s);\n", rows(x), x->m, x->k, va, vb, v);
        break;
    case VLMC_OP_MATMAT:
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        out(E, "    vlm_gemm(false, false, (int)%s, (int)%s, (int)%s, 1.0f, %s, %s, 0.0f, %s);\n", x->m, x->cols,
            x->k, va, vb, v);
        break;
    case VLMC_OP_SOFTMAX:
        V(E, x->in[0], va, sizeof va);
        out(E, "    vlm_softmax_fwd((int)((size_t)%s * %s / %s), (int)%s, %s, %s);\n", rows(x), x->n, x->k, x->k, va,
            v);
        break;
    case VLMC_OP_POW:
        V(E, x->in[0], va, sizeof va);
        out(E, "    vlm_ew_pow_fwd((size_t)%s * %s, %s, %s, %s);\n", rows(x), x->n, x->cexpr, va, v);
        break;
    case VLMC_OP_ONE_HOT:
        V(E, x->in[0], va, sizeof va);
        out(E, "    vlm_one_hot_fwd((size_t)%s * %s, (int)%s, %s, %s);\n", rows(x), node(E, x->in[0])->n, x->K, va,
            v);
        break;
    case VLMC_OP_CONCAT:
        in_view(E, x->in[0], "", a, sizeof a);
        in_view(E, x->in[1], "", b, sizeof b);
        out(E, "    vlm_concat_fwd(%s, (int)%s, (int)%s, %s, (int)%s, %s, %s);\n", rows(x), x->cols, x->k, a, x->m,
            b, v);
        break;
    case VLMC_OP_LINEAR: {
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        char vc[64] = "NULL";
        if (x->n_in > 2)
            V(E, x->in[2], vc, sizeof vc);
        out(E, "    vlm_nn_linear_fwd(%s, (int)%s, (int)%s, %s, %s, %s, %s, %s);\n", rows(x), x->k, x->m, va,
            vb, vc, act_enum[x->act], v);
        break;
    }
    case VLMC_OP_GATHER:
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        out(E, "    vlm_gather_fwd(%s * (int)%s, (int)%s, %s, %s, %s);\n", rows(x), x->k, x->m, va, vb, v);
        break;
    case VLMC_OP_SUM:
        V(E, x->in[0], va, sizeof va);
        out(E, "    vlm_sum_rows_fwd(%s, (int)%s, %s, %s);\n", rows(x), node(E, x->in[0])->n, va, v);
        break;
    case VLMC_OP_LOGP:
        in_view(E, x->in[0], "", a, sizeof a);
        if (x->prior >= 0) {
            /* a param's prior: one GLOBAL term, repeated over the rows
             * (the runtime weighs it 1/N per item) */
            char term[64];
            snprintf(term, sizeof term, "M->prior_term[%d]", x->prior);
            out(E, "    vlm_dist_%s_logp(1, (int)%s, 1, %s, ", stem(x), x->n, a);
            th_views(E, x, 1);
            out(E, ", (VlmIn){NULL, 0, 0}, %s);\n", term);
            emit_expand(E, x, "1", term, true);
            break;
        }
        if (x->steps) {   /* a chain's emission (FULL rows): one term per step, (T, R) */
            out(E, "    vlm_logp_steps(vlm_dist_%s_logp, R, (int)%s, (int)(%s / %s), (int)%s, %s, ", stem(x),
                x->steps, x->n, x->steps, x->K, a);
            th_views(E, x, 1);
            out(E, ", %d, ", x->n_in - 1);
            mask_view(E, x);
            out(E, ", M->logp_step[%d]);\n", x->var);
            break;
        }
        /* with the closed-form KL the latent's log p and log q terms are
         * not read (nor their gradients taken): skip them */
        if (x->var < E->p->n_latent && E->p->vars[x->var].kl)
            out(E, "    if (!M->use_kl) {\n");
        out(E, "    vlm_dist_%s_logp(%s, (int)%s, (int)%s, %s, ", stem(x), rows(x), x->n, x->K, a);
        th_views(E, x, 1);
        out(E, ", ");
        mask_view(E, x);
        char term[64];
        snprintf(term, sizeof term, "M->%s[%d]", x->is_q ? "logq_term" : "logp_term", x->var);
        out(E, ", %s);\n", term);
        if (!x->is_q && E->p->vars[x->var].summed)   /* rows that contradict the data: -inf */
            out(E, "    vlm_rows_clamp_given(R, (int)%s, M->lat[%d], M->obs[%d], M->obs_mask[%d], M->logp_term[%d]);\n",
                x->n, x->var, x->var, x->var, x->var);
        /* a term that does not vary with the enumerated (or sampled)
         * values is computed once and repeated over their rows: the
         * runtime's log-sum-exp over e then adds it exactly once */
        emit_expand(E, x, "1", term, true);
        if (x->var < E->p->n_latent && E->p->vars[x->var].kl)
            out(E, "    }\n");
        break;
    case VLMC_OP_MARKOV:   /* the chain's init and trans, for the forward algorithm */
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        out(E, "    memcpy(M->markov_init, %s, sizeof(float) * (size_t)%s);\n", va, x->K);
        out(E, "    memcpy(M->markov_trans, %s, sizeof(float) * (size_t)%s * %s);\n", vb, x->K, x->K);
        break;
    case VLMC_OP_RSAMPLE:
        /* one noise draw per (item, sample); at FULL (the guide reads an
         * enumerated value) the same noise serves each of its rows */
        out(E, "    vlm_dist_%s_noise(&M->rng, (size_t)%s * %s, %c_slot[%d]);\n", stem(x),
            x->level == VLMC_LEVEL_FULL ? "RS" : rows(x), x->n, E->pfx, x->eslot);
        if (x->level == VLMC_LEVEL_FULL)
            out(E, "    vlm_rows_repeat(RS, R / RS, (size_t)%s, %c_slot[%d]);\n", x->n, E->pfx, x->eslot);
        out(E, "    vlm_dist_%s_rsample(%s, (int)%s, ", stem(x), rows(x), x->n);
        th_views(E, x, 0);
        out(E, ", %c_slot[%d], %s);\n", E->pfx, x->eslot, v);
        if (x->level < VLMC_LEVEL_FULL)
            out(E, "    vlm_rows_repeat_copy(%s, %s, (size_t)%s, %s, M->lat[%d]);\n", rows(x), full_factor(x), x->n, v,
                x->var);
        break;
    case VLMC_OP_SAMPLE:
        if (E->pfx == 's') {
            /* a global latent: one draw for every row */
            out(E, "    vlm_dist_%s_sample(&M->rng, %s, (int)%s, (int)%s, ", stem(x), rows(x), x->n, x->K);
            th_views(E, x, 0);
            out(E, ", %s);\n", v);
            if (x->level < VLMC_LEVEL_FULL && x->var < E->p->n_latent)
                out(E, "    vlm_rows_repeat_copy(%s, %s, (size_t)%s, %s, M->lat[%d]);\n", rows(x), full_factor(x), x->n,
                    v, x->var);
        } else {
            /* one draw per (item, sample), shared by its enumeration rows;
             * under replay the draws in M->lat are kept */
            out(E, "    if (!M->replay) {\n");
            out(E, "        vlm_dist_%s_sample(&M->rng, %s, (int)%s, (int)%s, ", stem(x), rows(x), x->n, x->K);
            th_views(E, x, 0);
            out(E, ", %s);\n", v);
            if (x->level < VLMC_LEVEL_FULL)
                out(E, "        vlm_rows_repeat_copy(%s, %s, (size_t)%s, %s, M->lat[%d]);\n    } else {\n"
                       "        vlm_rows_pick(%s, %s, (size_t)%s, M->lat[%d], %s);\n",
                    rows(x), full_factor(x), x->n, v, x->var, rows(x), full_factor(x), x->n, x->var, v);
            out(E, "    }\n");
        }
        break;
    case VLMC_OP_KL: {
        char c[256], dd[256];
        in_view(E, x->in[0], "", a, sizeof a);
        in_view(E, x->in[1], "", b, sizeof b);
        in_view(E, x->in[2], "", c, sizeof c);
        in_view(E, x->in[3], "", dd, sizeof dd);
        out(E, "    if (M->use_kl) {\n    vlm_dist_normal_kl(%s, (int)%s, %s, %s, %s, %s, M->kl_term[%d]);\n", rows(x),
            x->n, a, b, c, dd, x->var);
        char term[64];
        snprintf(term, sizeof term, "M->kl_term[%d]", x->var);
        emit_expand(E, x, "1", term, true);
        out(E, "    }\n");
        break;
    }
    case VLMC_OP_MEAN: {
        char mean[64];
        snprintf(mean, sizeof mean, "M->obs_mean[%d]", x->var);
        out(E, "    %s{\n    vlm_dist_%s_mean(%s, (int)%s, (int)%s, ", E->pfx == 'm' ? "if (M->want_mean) " : "",
            stem(x), rows(x), x->n, x->K);
        th_views(E, x, 0);
        out(E, ", %s);\n", mean);
        emit_expand(E, x, x->n, mean, false);
        out(E, "    }\n");
        break;
    }
    default:
        break;
    }
    /* the guide's location and scale, for `posterior` */
    if (E->pfx == 'g' && (x->op == VLMC_OP_RSAMPLE || x->op == VLMC_OP_SAMPLE) && x->n_in >= 2 &&
        (!strcmp(x->dist->name, "Normal") || !strcmp(x->dist->name, "LogNormal"))) {
        char ql[64], qs[64];
        in_view(E, x->in[0], "", a, sizeof a);
        in_view(E, x->in[1], "", b, sizeof b);
        snprintf(ql, sizeof ql, "M->q_loc[%d]", x->var);
        snprintf(qs, sizeof qs, "M->q_scale[%d]", x->var);
        out(E, "    vlm_ew_copy_fwd(%s, (int)%s, %s, %s);\n", rows(x), x->n, a, ql);
        emit_expand(E, x, x->n, ql, false);
        out(E, "    vlm_ew_copy_fwd(%s, (int)%s, %s, %s);\n", rows(x), x->n, b, qs);
        emit_expand(E, x, x->n, qs, false);
    }
}

/* ----------------------------------------------------------- backward */

static void emit_bwd(Emit *E, int i)
{
    const VlmcNode *x = node(E, i);
    if (!x->live || !x->dep)
        return;
    char a[256], b[256], v[64], va[64], vb[64], d[64], da[64], db[64];
    V(E, i, v, sizeof v);
    D(E, i, d, sizeof d);
    switch (x->op) {
    case VLMC_OP_PARAM: case VLMC_OP_LATENT: case VLMC_OP_NUM: case VLMC_OP_OBS:
    case VLMC_OP_ENUM: case VLMC_OP_SAMPLE: case VLMC_OP_MEAN:
        return;
    default:
        break;
    }
    line(E, x);
    switch (x->op) {
    case VLMC_OP_LOCAL:
        out(E, "    for (int r = 0; r < %s; r++) {\n"
               "        float *dl = M->dloc + (size_t)M->row_item[(size_t)r * %s] * M->local_width + po[%d];\n"
               "        for (long i = 0; i < %s; i++) dl[i] += %s[(size_t)r * %s + i];\n"
               "    }\n",
            rows(x), full_factor(x), x->param, x->n, d, x->n);
        break;
    case VLMC_OP_REPEAT: {   /* the segmented sum over each row's copies */
        const VlmcNode *s = node(E, x->in[0]);
        if (!s->dep)
            break;
        D(E, x->in[0], da, sizeof da);
        out(E, "    vlm_rows_sum(%s, %s / %s, (size_t)%s, %s, %s);\n", rows(s), rows(x), rows(s), x->n, d, da);
        break;
    }
    case VLMC_OP_FN:
        if (!node(E, x->in[0])->dep)
            break;
        V(E, x->in[0], va, sizeof va);
        D(E, x->in[0], da, sizeof da);
        out(E, "    vlm_ew_fn_bwd(%s, (size_t)%s * %s, %s, %s, %s, %s);\n", fn_enum[x->fn], rows(x), x->n, va, v,
            d, da);
        break;
    case VLMC_OP_ADD: case VLMC_OP_SUB:
        out_view(E, x->in[0], a, sizeof a);
        out_view(E, x->in[1], b, sizeof b);
        out(E, "    vlm_ew_%s_bwd(%s, (int)%s, %s, %s, %s);\n", x->op == VLMC_OP_ADD ? "add" : "sub", rows(x),
            x->n, d, a, b);
        break;
    case VLMC_OP_MUL: case VLMC_OP_DIV: {
        char ia[256], ib[256];
        in_view(E, x->in[0], "", ia, sizeof ia);
        in_view(E, x->in[1], "", ib, sizeof ib);
        out_view(E, x->in[0], a, sizeof a);
        out_view(E, x->in[1], b, sizeof b);
        out(E, "    vlm_ew_%s_bwd(%s, (int)%s, %s, %s, %s, %s, %s);\n", x->op == VLMC_OP_MUL ? "mul" : "div",
            rows(x), x->n, ia, ib, d, a, b);
        break;
    }
    case VLMC_OP_MATVEC:
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        D(E, x->in[0], da, sizeof da);
        D(E, x->in[1], db, sizeof db);
        out(E, "    vlm_nn_matvec_bwd(%s, (int)%s, (int)%s, %s, %s, %s, %s, %s);\n", rows(x), x->m, x->k, va, vb,
            d, da, db);
        break;
    case VLMC_OP_MATMAT:
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        D(E, x->in[0], da, sizeof da);
        D(E, x->in[1], db, sizeof db);
        /* dA += dC @ B^T ; dB += A^T @ dC */
        if (node(E, x->in[0])->dep)
            out(E, "    vlm_gemm(false, true, (int)%s, (int)%s, (int)%s, 1.0f, %s, %s, 1.0f, %s);\n", x->m, x->k,
                x->cols, d, vb, da);
        if (node(E, x->in[1])->dep)
            out(E, "    vlm_gemm(true, false, (int)%s, (int)%s, (int)%s, 1.0f, %s, %s, 1.0f, %s);\n", x->k, x->cols,
                x->m, va, d, db);
        break;
    case VLMC_OP_SOFTMAX:
        if (!node(E, x->in[0])->dep)
            break;
        D(E, x->in[0], da, sizeof da);
        out(E, "    vlm_softmax_bwd((int)((size_t)%s * %s / %s), (int)%s, %s, %s, %s);\n", rows(x), x->n, x->k, x->k, v,
            d, da);
        break;
    case VLMC_OP_POW:
        if (!node(E, x->in[0])->dep)
            break;
        V(E, x->in[0], va, sizeof va);
        D(E, x->in[0], da, sizeof da);
        out(E, "    vlm_ew_pow_bwd((size_t)%s * %s, %s, %s, %s, %s);\n", rows(x), x->n, x->cexpr, va, d, da);
        break;
    case VLMC_OP_CONCAT:
        out_view(E, x->in[0], a, sizeof a);
        out_view(E, x->in[1], b, sizeof b);
        out(E, "    vlm_concat_bwd(%s, (int)%s, (int)%s, (int)%s, %s, %s, %s);\n", rows(x), x->cols, x->k, x->m, d, a,
            b);
        break;
    case VLMC_OP_LINEAR: {
        V(E, x->in[0], va, sizeof va);
        V(E, x->in[1], vb, sizeof vb);
        D(E, x->in[0], da, sizeof da);
        D(E, x->in[1], db, sizeof db);
        char dc[64] = "NULL";
        if (x->n_in > 2)
            D(E, x->in[2], dc, sizeof dc);
        out(E, "    vlm_nn_linear_bwd(%s, (int)%s, (int)%s, %s, %s, %s, %s, %s, %s, %s, %s, %s);\n", rows(x), x->k,
            x->m, va, vb, v, d, act_enum[x->act], d, da, db, dc);
        break;
    }
    case VLMC_OP_GATHER:
        if (!node(E, x->in[0])->dep)
            break;
        V(E, x->in[1], vb, sizeof vb);
        D(E, x->in[0], da, sizeof da);
        out(E, "    vlm_gather_bwd(%s * (int)%s, (int)%s, %s, %s, %s);\n", rows(x), x->k, x->m, vb, d, da);
        break;
    case VLMC_OP_SUM:
        if (!node(E, x->in[0])->dep)
            break;
        D(E, x->in[0], da, sizeof da);
        out(E, "    vlm_sum_rows_bwd(%s, (int)%s, %s, %s);\n", rows(x), node(E, x->in[0])->n, d, da);
        break;
    case VLMC_OP_KL: {
        char c[256], dd[256], o0[256], o1[256], o2[256], o3[256];
        in_view(E, x->in[0], "", a, sizeof a);
        in_view(E, x->in[1], "", b, sizeof b);
        in_view(E, x->in[2], "", c, sizeof c);
        in_view(E, x->in[3], "", dd, sizeof dd);
        out_view(E, x->in[0], o0, sizeof o0);
        out_view(E, x->in[1], o1, sizeof o1);
        out_view(E, x->in[2], o2, sizeof o2);
        out_view(E, x->in[3], o3, sizeof o3);
        char arr[64];
        snprintf(arr, sizeof arr, "M->dkl[%d]", x->var);
        out(E, "    if (M->use_kl) {\n");
        const char *coef = emit_coef(E, x, arr);
        out(E, "    vlm_dist_normal_kl_bwd(%s, (int)%s, %s, %s, %s, %s, %s, %s, %s, %s, %s);\n    }\n", rows(x),
            x->n, a, b, c, dd, coef, o0, o1, o2, o3);
        break;
    }
    case VLMC_OP_MARKOV:   /* the driver's d/d init and d/d trans */
        out_view(E, x->in[0], a, sizeof a);
        out_view(E, x->in[1], b, sizeof b);
        if (node(E, x->in[0])->dep)
            out(E, "    vlm_ew_copy_bwd(1, (int)%s, M->dmarkov_init, %s);\n", x->K, a);
        if (node(E, x->in[1])->dep)
            out(E, "    vlm_ew_copy_bwd(1, (int)(%s * %s), M->dmarkov_trans, %s);\n", x->K, x->K, b);
        break;
    case VLMC_OP_LOGP:
        in_view(E, x->in[0], "", a, sizeof a);
        out_view(E, x->in[0], b, sizeof b);
        if (x->steps) {   /* a chain's emission: per-step coefficients (T, R) */
            out(E, "    vlm_logp_steps_bwd(vlm_dist_%s_logp_bwd, R, (int)%s, (int)(%s / %s), (int)%s, %s, ", stem(x),
                x->steps, x->n, x->steps, x->K, a);
            th_views(E, x, 1);
            out(E, ", %d, ", x->n_in - 1);
            mask_view(E, x);
            out(E, ", M->dlogp_step[%d], %s, ", x->var, b);
            th_grads(E, x, 1);
            out(E, ");\n");
            break;
        }
        /* with the closed-form KL, the latent's log p and log q terms (and
         * their gradients) are replaced */
    if (x->prior >= 0) {
        const char *coef = emit_coef(E, x, "M->dprior");
        out(E, "    vlm_dist_%s_logp_bwd(1, (int)%s, 1, %s, ", stem(x), x->n, a);
        th_views(E, x, 1);
        out(E, ", (VlmIn){NULL, 0, 0}, %s, %s, ", coef, b);
        th_grads(E, x, 1);
        out(E, ");\n");
        break;
    }
    {
        bool kl = x->var < E->p->n_latent && E->p->vars[x->var].kl;
        if (kl)
            out(E, "    if (!M->use_kl) {\n");
        char arr[64];
        if (x->is_q)
            snprintf(arr, sizeof arr, "M->dlogq[%d]", x->var);
        else if (x->var < E->p->n_latent && E->p->vars[x->var].treat != VLMC_TREAT_ENUMERATE)
            snprintf(arr, sizeof arr, "M->dlogp_lat[%d]", x->var);   /* a guided latent's log p(z) */
        else
            snprintf(arr, sizeof arr, "M->dlogp");
        const char *coef = emit_coef(E, x, arr);
        out(E, "    vlm_dist_%s_logp_bwd(%s, (int)%s, (int)%s, %s, ", stem(x), rows(x), x->n, x->K, a);
        th_views(E, x, 1);
        out(E, ", ");
        mask_view(E, x);
        out(E, ", %s, %s, ", coef, b);
        th_grads(E, x, 1);
        out(E, ");\n");
        if (kl)
            out(E, "    }\n");
        break;
    }
    case VLMC_OP_RSAMPLE:
        out(E, "    vlm_dist_%s_rsample_bwd(%s, (int)%s, ", stem(x), rows(x), x->n);
        th_views(E, x, 0);
        out(E, ", %c_slot[%d], %s, %s, ", E->pfx, x->eslot, v, d);
        th_grads(E, x, 0);
        out(E, ");\n");
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ buffers */

static void declare_buffers(Emit *E)
{
    out(E, "static float *%c_slot[%d];\n", E->pfx, E->g->n_slots ? E->g->n_slots : 1);
    /* views (V): picked data rows and repeats, by node */
    out(E, "static float *%c_val[%d] __attribute__((unused));\n", E->pfx, E->g->n ? E->g->n : 1);
}

/* What slot_size measures: the floats of a slot for Rmax FULL rows (a
 * level below FULL has at most Rmax / E rows, rounded up), or per FULL
 * row (batched members) or fixed (GLOBAL members), for the budget. */
typedef enum { SIZE_ALLOC, SIZE_PER_ROW, SIZE_FIXED } SizeKind;

/* C expression of the largest member of slot k into `sz`, in floats */
static void slot_size(Emit *E, int k, SizeKind kind)
{
    static const char *const alloc_rows[VLMC_N_LEVELS] = {"1", "Rpart", "Rpart", "(size_t)Rmax"};
    for (int i = 0; i < E->g->n; i++) {
        const VlmcNode *x = node(E, i);
        if (!vlmc_node_in_slot(x, k) || (kind == SIZE_PER_ROW && !vlmc_is_batched(x)) ||
            (kind == SIZE_FIXED && vlmc_is_batched(x)))
            continue;
        char want[256];
        if (kind == SIZE_ALLOC)
            snprintf(want, sizeof want, "%s * (size_t)%s", alloc_rows[x->level], x->n);
        else if (x->level == VLMC_LEVEL_FULL || kind == SIZE_FIXED)
            snprintf(want, sizeof want, "(size_t)%s", x->n);
        else
            snprintf(want, sizeof want, "((size_t)%s + (size_t)M->E - 1) / (size_t)M->E", x->n);
        out(E, "    if (sz < %s) sz = %s;\n", want, want);
    }
}

static void alloc_buffers(Emit *E)
{
    for (int k = 0; k < E->g->n_slots; k++) {
        out(E, "    sz = 1;\n");
        slot_size(E, k, SIZE_ALLOC);
        out(E, "    %c_slot[%d] = vlm_xcalloc(sz, sizeof(float));\n", E->pfx, k);
    }
}

static void free_buffers(Emit *E)
{
    out(E, "    for (int k = 0; k < %d; k++) { free(%c_slot[k]); %c_slot[k] = NULL; }\n", E->g->n_slots, E->pfx,
        E->pfx);
}

/* bytes per row (batched members) and fixed (global ones) of the slots */
static void count_bytes(Emit *E)
{
    for (int k = 0; k < E->g->n_slots; k++) {
        out(E, "    sz = 0;\n");
        slot_size(E, k, SIZE_PER_ROW);
        out(E, "    M->bytes_per_row += sizeof(float) * sz;\n    sz = 0;\n");
        slot_size(E, k, SIZE_FIXED);
        out(E, "    M->bytes_fixed += sizeof(float) * sz;\n");
    }
}

static void use_graph(Emit *E, const VlmcGraph *g, char pfx)
{
    E->g = g;
    E->pfx = pfx;
    E->last_line = 0;
}

/* ------------------------------------------------------------- tables */

static void c_string(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs("\\n\"\n    \"", o);
        else if (c == '"' || c == '\\' || c == '?')   /* '?': no trigraphs */
            fprintf(o, "\\%c", c);
        else if (c < 32 || c >= 127)
            fprintf(o, "\\%03o", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* a size as the C expression of generated code */
static void out_dim(Emit *E, VlmcDim d)
{
    const VlmcModel *m = E->p->model;
    size_t n = vlmc_dim_text(m, d, true, NULL, 0) + 1;
    char *s = malloc(n);
    if (!s) {
        fprintf(stderr, "vlmc: out of memory\n");
        exit(1);
    }
    vlmc_dim_text(m, d, true, s, n);
    out(E, "%s", s);
    free(s);
}

/* Whether a live OBS node of the model or guide graph reads variable j's
 * data at the FULL level (every row of the runtime's obs). */
static bool reads_data_at_full(const VlmcProgram *p, int j)
{
    const VlmcGraph *gs[2] = {&p->model_g, &p->guide_g};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < gs[k]->n; i++) {
            const VlmcNode *x = &gs[k]->nodes[i];
            if (x->live && x->op == VLMC_OP_OBS && x->var == j && x->level == VLMC_LEVEL_FULL)
                return true;
        }
    return false;
}

static void emit_configure(Emit *E)
{
    const VlmcProgram *p = E->p;
    const VlmcModel *m = p->model;
    out(E, "static int configure(VlmModel *M, VlmErr *err)\n{\n");
    for (int i = 0; i < m->n_consts; i++)
        out(E, "    if (c_%s < 1 || c_%s > 100000000L) {\n"
               "        vlm_err_set(err, \"const %s = %%ld: sizes must be between 1 and 100000000\", c_%s);\n"
               "        return -1;\n    }\n",
            m->consts[i]->name, m->consts[i]->name, m->consts[i]->name, m->consts[i]->name);
    out(E, "    size_t off = 0, loff = 0;\n    M->n_params = %d;\n", p->n_params);
    for (int i = 0; i < p->n_params; i++) {
        const VlmcParam *q = &p->params[i];
        out(E, "    if (add_param(M, %d, \"%s\", %d, (long[]){", i, q->name, q->rank);
        for (int k = 0; k < q->rank; k++)
            out(E, "%s%s", k ? ", " : "", q->dims[k]);
        if (!q->rank)
            out(E, "1");
        out(E, "}, %s, ", init_enum[q->init]);
        if (q->fan_in)
            out(E, "(float)(%s)", q->fan_in);
        else
            out(E, "(float)%.9g", q->a);
        out(E, ", (float)%.9g, %s, %s, &off, &loff, err)) return -1;\n", q->b,
            q->guide ? "true" : "false", q->local ? "true" : "false");
    }
    out(E, "    M->n_w = off;\n    M->local_width = loff;\n");
    out(E, "    M->n_vars = %d; M->n_latent = %d; M->n_observed = %d; M->n_inputs = %d;\n", p->n_vars,
        p->n_latent, p->n_vars - p->n_latent, p->n_inputs);
    /* the radix of the enumeration: every enumerated variable, or (a batch
     * whose summed observed variables are all given) the latents alone */
    out(E, "    long stride = 1, stride_given = 1;\n    (void)stride; (void)stride_given;\n");
    for (int j = 0; j < p->n_vars; j++) {
        const VlmcVar *v = &p->vars[j];
        const VlmcSym *s = v->sym;
        out(E, "    M->vars[%d] = (VlmVarInfo){\"%s\", %s, %s, \"%s\", %s, %s, %s, %d, {", j, s->name,
            j < p->n_latent ? "VLM_VAR_LATENT" : "VLM_VAR_OBSERVED",
            j < p->n_latent ? treat_enum[v->treat] : v->summed ? "VLM_TREAT_ENUMERATE" : "VLM_TREAT_NONE",
            s->dist->name,
            s->dist->discrete ? "true" : "false", v->n, v->K, s->shape.rank);
        for (int k = 0; k < s->shape.rank; k++) {
            out(E, "%s", k ? ", " : "");
            out_dim(E, s->shape.dim[k]);
        }
        if (!s->shape.rank)
            out(E, "1");
        out(E, "}, false, %s};\n", v->global ? "true" : "false");
        if (j < p->n_latent && v->treat == VLMC_TREAT_MARKOV) {
            /* its rows: the K states, one per enumeration value */
            out(E, "    enum_stride[%d] = stride;\n    enum_stride_given[%d] = stride_given;\n", j, j);
            out(E, "    stride *= %s;\n    stride_given *= %s;\n", v->K, v->K);
            out(E, "    M->markov_var = %d; M->markov_T = %s; M->markov_K = %s; M->markov_logits = %s;\n", j, v->n,
                v->K, s->param_form == 1 ? "true" : "false");
        }
        if ((j < p->n_latent && v->treat == VLMC_TREAT_ENUMERATE) || v->summed) {
            out(E, "    enum_stride[%d] = stride;\n    enum_stride_given[%d] = stride_given;\n", j, j);
            char f[160];
            if (s->shape.rank)
                snprintf(f, sizeof f, "gen_ipow(%s, %s)", v->K, v->n);
            else
                snprintf(f, sizeof f, "%s", v->K);
            out(E, "    stride *= %s;\n", f);
            if (!v->summed)
                out(E, "    stride_given *= %s;\n", f);
        }
    }
    /* a chain's emissions: per-step log densities (logp_step) */
    out(E, "    M->n_markov_emit = 0;\n");
    for (int j = p->n_latent; j < p->n_vars; j++)
        if (p->vars[j].steps)
            out(E, "    M->markov_emit[M->n_markov_emit++] = %d;\n", j);
    out(E, "    M->E_given = stride_given;\n");
    /* params with a prior: their log p terms, in the order of prior_term */
    out(E, "    M->n_priors = %d;\n", p->n_priors);
    for (int k = 0; k < p->n_priors; k++)
        out(E, "    M->prior_param[%d] = %d;\n", k, p->priors[k]);
    /* inputs: data rows without a density (vars after the random ones) */
    for (int i = 0; i < p->n_inputs; i++) {
        const VlmcVar *v = &p->vars[p->n_vars + i];
        const VlmcSym *s = v->sym;
        out(E, "    M->vars[%d] = (VlmVarInfo){\"%s\", VLM_VAR_INPUT, VLM_TREAT_NONE, NULL, %s, %s, %s, %d, {",
            p->n_vars + i, s->name, s->support ? "true" : "false", v->n, v->K, s->shape.rank);
        for (int k = 0; k < s->shape.rank; k++) {
            const VlmcDim dm = s->shape.dim[k];
            if (dm.cst >= 0)
                out(E, "%sc_%s", k ? ", " : "", m->consts[dm.cst]->name);
            else
                out(E, "%s%ldL", k ? ", " : "", dm.value);
        }
        if (!s->shape.rank)
            out(E, "1");
        out(E, "}, false, false};\n");
    }
    /* data read only at their items' first rows (no OBS node at FULL) */
    for (int j = p->n_latent; j < p->n_vars + p->n_inputs; j++)
        if (!p->vars[j].summed && !reads_data_at_full(p, j))
            out(E, "    M->vars[%d].item_rows = true;\n", j);
    /* the data's column blocks: observed and inputs in declaration order */
    out(E, "    M->n_data = %d;\n", m->n_data);
    for (int k = 0; k < m->n_data; k++) {
        const VlmcSym *s = m->data[k];
        out(E, "    M->data_var[%d] = %d;\n", k,
            s->kind == VLMC_SYM_INPUT ? p->n_vars + s->index : p->n_latent + s->index);
    }
    out(E, "    M->E = %s;\n", p->E);
    out(E, "    if (M->E < 1 || M->E > %d) {\n"
           "        vlm_err_set(err, \"%%ld joint values of the enumerated latents: at most %d can be summed out\", M->E);\n"
           "        return -1;\n    }\n",
        VLMC_MAX_ENUM, VLMC_MAX_ENUM);
    out(E, "    uint64_t h = 0x%016llxull;\n", (unsigned long long)fnv1a(m->src->text, m->src->len));
    out(E, "    for (int i = 0; i < N_CONSTS; i++) h = (h ^ (uint64_t)const_values[i]) * 1099511628211ull;\n");
    /* (void): a model may have no intermediate buffers at all (its
     * densities read parameters and data directly) */
    out(E, "    M->hash = h;\n    M->bytes_per_row = 0; M->bytes_fixed = 0;\n    size_t sz = 0;\n    (void)sz;\n");
    use_graph(E, &p->model_g, 'm');
    count_bytes(E);
    use_graph(E, &p->guide_g, 'g');
    count_bytes(E);
    out(E, "    return 0;\n}\n\n");
}

static void emit_alloc(Emit *E)
{
    const VlmcProgram *p = E->p;
    out(E, "static void alloc_buffers(VlmModel *M, int Rmax)\n{\n");
    out(E, "    M->Rmax = Rmax;\n    size_t sz = 0;\n    (void)sz;\n");
    /* B*S*E <= Rmax: a level below FULL has at most Rmax / E rows */
    out(E, "    const size_t Rpart = ((size_t)Rmax + (size_t)M->E_max - 1) / (size_t)M->E_max;\n    (void)Rpart;\n");
    out(E, "    coef_buf = vlm_xcalloc((size_t)Rmax, sizeof(float));\n");
    for (int j = 0; j < p->n_vars; j++) {
        const VlmcVar *v = &p->vars[j];
        out(E, "    M->logp_term[%d] = vlm_xcalloc((size_t)Rmax, sizeof(double));\n", j);
        if (j < p->n_latent) {
            out(E, "    M->lat[%d] = vlm_xcalloc((size_t)Rmax * %s, sizeof(float));\n", j, v->n);
            out(E, "    M->dlat[%d] = vlm_xcalloc((size_t)Rmax * %s, sizeof(float));\n", j, v->n);
            if (v->kl) {
                out(E, "    M->kl_term[%d] = vlm_xcalloc((size_t)Rmax, sizeof(double));\n", j);
                out(E, "    M->dkl[%d] = vlm_xcalloc((size_t)Rmax, sizeof(float));\n", j);
            }
            if (v->has_q || v->treat == VLMC_TREAT_AUTO_GUIDE) {
                out(E, "    M->logq_term[%d] = vlm_xcalloc((size_t)Rmax, sizeof(double));\n", j);
                out(E, "    M->q_loc[%d] = vlm_xcalloc((size_t)Rmax * %s, sizeof(float));\n", j, v->n);
                out(E, "    M->q_scale[%d] = vlm_xcalloc((size_t)Rmax * %s, sizeof(float));\n", j, v->n);
            }
        } else {
            out(E, "    M->obs_mean[%d] = vlm_xcalloc((size_t)Rmax * %s, sizeof(float));\n", j, v->n);
            if (v->summed)   /* its enumerated values, where the data lack it */
                out(E, "    M->lat[%d] = vlm_xcalloc((size_t)Rmax * %s, sizeof(float));\n", j, v->n);
            if (v->summed && v->has_q)   /* the guide's q(y | x) at those values */
                out(E, "    M->logq_term[%d] = vlm_xcalloc((size_t)Rmax, sizeof(double));\n", j);
        }
    }
    for (int k = 0; k < p->n_priors; k++)
        out(E, "    M->prior_term[%d] = vlm_xcalloc((size_t)Rmax, sizeof(double));\n", k);
    use_graph(E, &p->model_g, 'm');
    alloc_buffers(E);
    use_graph(E, &p->guide_g, 'g');
    alloc_buffers(E);
    use_graph(E, &p->sample_g, 's');
    alloc_buffers(E);
    out(E, "}\n\nstatic void release_buffers(VlmModel *M)\n{\n");
    out(E, "    free(coef_buf);\n    coef_buf = NULL;\n");
    for (int j = 0; j < p->n_vars; j++) {
        out(E, "    free(M->logp_term[%d]); M->logp_term[%d] = NULL;\n", j, j);
        if (j < p->n_latent && p->vars[j].kl)
            out(E, "    free(M->kl_term[%d]); free(M->dkl[%d]); M->kl_term[%d] = NULL; M->dkl[%d] = NULL;\n", j, j, j,
                j);
        if (j < p->n_latent)
            out(E, "    free(M->lat[%d]); free(M->dlat[%d]); free(M->logq_term[%d]); free(M->q_loc[%d]); "
                   "free(M->q_scale[%d]);\n    M->lat[%d] = M->dlat[%d] = M->q_loc[%d] = M->q_scale[%d] = NULL; "
                   "M->logq_term[%d] = NULL;\n",
                j, j, j, j, j, j, j, j, j, j);
        else
            out(E, "    free(M->obs_mean[%d]); M->obs_mean[%d] = NULL;\n", j, j);
        if (p->vars[j].summed)
            out(E, "    free(M->lat[%d]); free(M->logq_term[%d]); M->lat[%d] = NULL; M->logq_term[%d] = NULL;\n",
                j, j, j, j);
    }
    for (int k = 0; k < p->n_priors; k++)
        out(E, "    free(M->prior_term[%d]); M->prior_term[%d] = NULL;\n", k, k);
    use_graph(E, &p->model_g, 'm');
    free_buffers(E);
    use_graph(E, &p->guide_g, 'g');
    free_buffers(E);
    use_graph(E, &p->sample_g, 's');
    free_buffers(E);
    out(E, "}\n\n");
}

/* A gradient buffer starts its life just before the backward step of its
 * first writer: zeroed there, or (a reparameterized sample) seeded with the
 * model's d log p / dz. */
static void emit_grad_starts(Emit *E, int j)
{
    for (int i = 0; i < E->g->n; i++) {
        const VlmcNode *x = node(E, i);
        if (!vlmc_node_owns_grad(x) || x->gfirst != j)
            continue;
        if (x->op == VLMC_OP_RSAMPLE)   /* M->dlat has the rows of the model's LATENT: x's */
            out(E, "    memcpy(%c_slot[%d], M->dlat[%d], sizeof(float) * (size_t)%s * %s);\n", E->pfx, x->gslot,
                x->var, rows(x), x->n);
        else
            out(E, "    memset(%c_slot[%d], 0, sizeof(float) * (size_t)%s * %s);\n", E->pfx, x->gslot, rows(x),
                x->n);
    }
}

/* Whether x is a live PARAM node of `param` that takes a gradient. */
static bool param_grad_node(const VlmcNode *x, int param)
{
    return x->op == VLMC_OP_PARAM && x->param == param && x->live && x->dep;
}

/* Whether node i is the first such node of its parameter in graph g: in
 * the backward order it is reached after every statement that writes (or
 * reads) that parameter in g. */
static bool first_param_node(const VlmcGraph *g, int i)
{
    const VlmcNode *x = &g->nodes[i];
    if (!param_grad_node(x, x->param))
        return false;
    for (int k = 0; k < i; k++)
        if (param_grad_node(&g->nodes[k], x->param))
            return false;
    return true;
}

static bool graph_grads_param(const VlmcGraph *g, int param)
{
    for (int i = 0; i < g->n; i++)
        if (param_grad_node(&g->nodes[i], param))
            return true;
    return false;
}

/* The backward pass, in reverse node order. A parameter is reported
 * ready (M->param_ready) where its gradient is complete: at its first
 * PARAM node in the guide graph (guide_bwd runs last) if the guide uses
 * it, else in the model graph; parameters no backward pass reaches are
 * reported at the end of guide_bwd. */
static void emit_backward(Emit *E, bool guide)
{
    const VlmcProgram *p = E->p;
    for (int j = E->g->n - 1; j >= 0; j--) {
        emit_grad_starts(E, j);
        emit_bwd(E, j);
        if (first_param_node(E->g, j) &&
            (guide || !graph_grads_param(&p->guide_g, node(E, j)->param)))
            out(E, "    if (M->param_ready) M->param_ready(M, %d);\n", node(E, j)->param);
    }
    if (!guide)
        return;
    for (int q = 0; q < p->n_params; q++)
        if (!p->params[q].local && !graph_grads_param(&p->guide_g, q) && !graph_grads_param(&p->model_g, q))
            out(E, "    if (M->param_ready) M->param_ready(M, %d);\n", q);
}

static void emit_functions(Emit *E)
{
    const VlmcProgram *p = E->p;
    /* guide forward */
    use_graph(E, &p->guide_g, 'g');
    out(E, "static void guide_fwd(VlmModel *M)\n{\n    const int R = M->R, RS = M->B * M->S, RI = M->B;\n    (void)R; (void)RS; (void)RI;\n");
    for (int i = 0; i < E->g->n; i++)
        emit_fwd(E, i);
    out(E, "}\n\nstatic void guide_bwd(VlmModel *M)\n{\n    const int R = M->R, RS = M->B * M->S, RI = M->B;\n    (void)R; (void)RS; (void)RI;\n");
    emit_backward(E, true);
    out(E, "}\n\n");
    /* model */
    use_graph(E, &p->model_g, 'm');
    out(E, "static void model_fwd(VlmModel *M)\n{\n    const int R = M->R, RS = M->B * M->S, RI = M->B;\n    (void)R; (void)RS; (void)RI;\n");
    for (int i = 0; i < E->g->n; i++)
        emit_fwd(E, i);
    out(E, "}\n\nstatic void model_bwd(VlmModel *M)\n{\n    const int R = M->R, RS = M->B * M->S, RI = M->B;\n    (void)R; (void)RS; (void)RI;\n");
    for (int j = 0; j < p->n_latent; j++)
        out(E, "    memset(M->dlat[%d], 0, sizeof(float) * (size_t)R * %s);\n", j, p->vars[j].n);
    emit_backward(E, false);
    out(E, "}\n\n");
    /* ancestral sampler */
    use_graph(E, &p->sample_g, 's');
    out(E, "static void sample_fwd(VlmModel *M, float **obs_sample)\n{\n"
           "    const int R = M->R, RS = M->B * M->S, RI = M->B;\n"
           "    (void)R; (void)RS; (void)RI; (void)obs_sample;\n");
    for (int i = 0; i < E->g->n; i++)
        emit_fwd(E, i);
    out(E, "}\n\n");
}

bool vlmc_emit_c(const VlmcProgram *p, const char *model_name, FILE *o, bool line_directives)
{
    const VlmcModel *m = p->model;
    Emit E = {.o = o, .p = p, .lines = line_directives, .path = m->src->path};
    out(&E, "/* Generated by vlmc from %s — do not edit; edit the model and recompile.\n"
            " * Straight-line forward and backward passes over whole minibatches;\n"
            " * the inference algorithms live in the runtime (vlm_main). */\n",
        m->src->path);
    out(&E, "#include \"vlm.h\"\n\n#include <math.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    /* sizes */
    out(&E, "#define N_CONSTS %d\n", m->n_consts);
    out(&E, "static const char *const const_names[] = {");
    for (int i = 0; i < m->n_consts; i++)
        out(&E, "%s\"%s\"", i ? ", " : "", m->consts[i]->name);
    out(&E, "%s};\nstatic long const_values[] = {", m->n_consts ? "" : "NULL");
    for (int i = 0; i < m->n_consts; i++)
        out(&E, "%s%ldL", i ? ", " : "", m->consts[i]->value);
    out(&E, "%s};\n", m->n_consts ? "" : "0");
    for (int i = 0; i < m->n_consts; i++)
        out(&E, "#define c_%s (const_values[%d])\n", m->consts[i]->name, i);
    out(&E, "\nstatic size_t po[%d] __attribute__((unused));  /* parameter offsets (floats) */\n",
        p->n_params ? p->n_params : 1);
    out(&E, "static long enum_stride[%d] __attribute__((unused));  /* enumeration radix */\n", p->n_vars ? p->n_vars : 1);
    out(&E, "static long enum_stride_given[%d] __attribute__((unused));  /* ... summed variables given */\n\n",
        p->n_vars ? p->n_vars : 1);
    out(&E, "static inline long gen_ipow(long b, long e)\n{\n    long r = 1;\n    while (e-- > 0) r *= b;\n    return r;\n}\n\n");
    out(&E,
        "/* the mask of observed variable o (FULL rows) read every f-th row */\n"
        "static inline VlmIn obs_mask_view(const VlmModel *M, int o, long n, int f)\n{\n"
        "    return (VlmIn){M->obs_mask[o], M->obs_mask[o] ? (ptrdiff_t)n * f : 0, M->obs_mask[o] ? 1 : 0};\n}\n\n");
    out(&E, "static float *coef_buf;  /* segmented sums of a term's coefficients */\n\n");
    /* a model without params (`observed x ~ Normal(0, 1);`) has no caller */
    if (p->n_params)
        out(&E,
        "static int add_param(VlmModel *M, int i, const char *name, int rank, const long *dims, VlmInit init,\n"
        "                     float a, float b, bool guide, bool local, size_t *off, size_t *loff, VlmErr *err)\n"
        "{\n"
        "    VlmParamInfo *q = &M->params[i];\n"
        "    double count = 1;\n"
        "    q->name = name; q->rank = rank; q->init = init; q->a = a; q->b = b;\n"
        "    q->guide = guide; q->local = local;\n"
        "    for (int k = 0; k < rank; k++) { q->dims[k] = dims[k]; count *= (double)dims[k]; }\n"
        "    if (count > 4e9) {\n"
        "        vlm_err_set(err, \"parameter %%s would have %%.0f elements: too large\", name, count);\n"
        "        return -1;\n    }\n"
        "    q->count = (size_t)count;\n"
        "    size_t *o = local ? loff : off;\n"
        "    q->offset = *o;\n"
        "    po[i] = *o;\n"
        "    *o += (q->count + 15) & ~(size_t)15;  /* 64-byte aligned tensors */\n"
        "    return 0;\n}\n\n");
    /* buffers */
    use_graph(&E, &p->model_g, 'm');
    declare_buffers(&E);
    use_graph(&E, &p->guide_g, 'g');
    declare_buffers(&E);
    use_graph(&E, &p->sample_g, 's');
    declare_buffers(&E);
    out(&E, "\n");
    emit_configure(&E);
    emit_alloc(&E);
    emit_functions(&E);
    /* descriptor */
    out(&E, "static const char model_source[] =\n    ");
    c_string(o, m->src->text);
    out(&E, ";\n\nstatic const char model_plan[] =\n    ");
    char *plan = NULL;
    size_t plan_len = 0;
    FILE *pf = open_memstream(&plan, &plan_len);
    if (pf) {
        vlmc_print_plan(p, pf);
        fclose(pf);
    }
    c_string(o, plan ? plan : "");
    free(plan);
    out(&E, ";\n\n");
    if (p->mixture) {
        /* conjugate Gaussian mixture: train fits it by EM (infer_em.c) */
        const VlmcMixture *x = p->mixture;
        out(&E, "static const VlmMixtureInfo model_mixture = {\n"
                "    .latent = %d, .observed = %d, .weights = %d, .mu = %d, .scale = %d,\n"
                "    .scale_kind = %s,\n};\n\n",
            x->latent, x->observed, x->weights, x->mu, x->scale,
            x->scale_kind == VLMC_MIX_LOG_VAR ? "VLM_MIX_LOG_VAR" : "VLM_MIX_LOG_SD");
    }
    out(&E,
        "static const VlmModelDesc model_desc = {\n"
        "    .name = \"%s\",\n    .source = model_source,\n    .plan = model_plan,\n"
        "    .n_consts = N_CONSTS,\n    .const_names = const_names,\n    .const_values = const_values,\n"
        "    .has_guide_local = %s,\n"
        "    .configure = configure,\n    .alloc = alloc_buffers,\n    .release = release_buffers,\n"
        "    .guide_fwd = guide_fwd,\n    .model_fwd = model_fwd,\n    .model_bwd = model_bwd,\n"
        "    .guide_bwd = guide_bwd,\n    .sample = sample_fwd,\n    .mixture = %s,\n};\n\n"
        "int main(int argc, char **argv)\n{\n    return vlm_main(&model_desc, argc, argv);\n}\n",
        model_name, p->has_local ? "true" : "false", p->mixture ? "&model_mixture" : "NULL");
    return !ferror(o);
}
