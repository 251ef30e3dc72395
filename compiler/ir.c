/* ir.c — lowers a checked model to the tensor IR: the model graph (log p),
 * the guide graph (samples and log q, including automatic guides) and the
 * ancestral sampling graph, plus the parameter and variable tables.
 * It does not decide gradients (autodiff.c) or print C (emit_c.c). */
#include "vlmc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* runtime codes mirrored here (runtime/vlm.h is not included by vlmc) */
enum { FN_EXP, FN_LOG, FN_LOG1P, FN_SQRT, FN_SIGMOID, FN_SOFTPLUS, FN_TANH,
       FN_RELU, FN_ABS, FN_ELU, FN_NEG, FN_IDENTITY, FN_SQUARE };
enum { INIT_NORMAL, INIT_UNIFORM, INIT_CONST, INIT_FAN_IN, INIT_UNIFORM_LOG, INIT_UNIFORM_LOGIT };

#define AUTO_HIDDEN 256

/* ---------------------------------------------------- sym -> int maps */

typedef struct SymMap {
    const void **keys; int *vals; int cap, n;
    VlmcArena *a;
} SymMap;

static void map_init(VlmcArena *a, SymMap *m, int cap)
{
    m->cap = cap; m->n = 0; m->a = a;
    m->keys = vlmc_arena_alloc(a, sizeof *m->keys * (size_t)cap);
    m->vals = vlmc_arena_alloc(a, sizeof *m->vals * (size_t)cap);
}

static size_t ptr_hash(const void *p) { return ((uintptr_t)p >> 4) * 2654435761u; }

static int *map_slot(SymMap *m, const void *k, bool insert)
{
    size_t i = ptr_hash(k) & (size_t)(m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (size_t)(m->cap - 1);
    if (!m->keys[i]) {
        if (!insert)
            return NULL;
        m->keys[i] = k;
        m->n++;
    }
    return &m->vals[i];
}

static int map_get(SymMap *m, const void *k)
{
    int *v = map_slot(m, k, false);
    return v ? *v : -1;
}

/* At most half full, so that probing ends (a model may name more lets
 * than any initial size). */
static void map_put(SymMap *m, const void *k, int v)
{
    if (2 * (m->n + 1) > m->cap) {
        SymMap old = *m;
        map_init(old.a, m, 2 * old.cap);
        for (int i = 0; i < old.cap; i++)
            if (old.keys[i])
                *map_slot(m, old.keys[i], true) = old.vals[i];
    }
    *map_slot(m, k, true) = v;
}

/* ------------------------------------------------------------ lowering */

typedef struct Lower {
    VlmcArena *a;
    const VlmcModel *m;
    VlmcProgram *p;
    VlmcDiag *d;
    VlmcGraph *g;
    SymMap values;     /* sym -> node in the current graph */
    SymMap param_of;   /* param/net sym -> first param table index */
    SymMap var_of;     /* latent/observed sym -> var index */
    SymMap reps;       /* (node, level) -> its REPEAT node, current graph */
    bool guide;        /* lowering the guide graph */
    bool flat;         /* the sampler: every row is one draw of an item, so
                          batched values are all at one level (FULL) */
    bool ok;
    int prior_cap;     /* of p->priors */
} Lower;

static char *fmt(VlmcArena *a, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(VlmcArena *a, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = vlmc_arena_alloc(a, (size_t)n + 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static const char *dim_c(Lower *L, VlmcDim dm)
{
    size_t n = vlmc_dim_text(L->m, dm, true, NULL, 0) + 1;
    char *s = vlmc_arena_alloc(L->a, n);
    vlmc_dim_text(L->m, dm, true, s, n);
    return s;
}

/* elements of a shape from dimension `from` on, as a C expression */
static const char *numel_c(Lower *L, const VlmcShape *s, int from)
{
    if (s->rank <= from)
        return "1";
    const char *r = dim_c(L, s->dim[from]);
    for (int i = from + 1; i < s->rank; i++)
        r = fmt(L->a, "%s*%s", r, dim_c(L, s->dim[i]));
    return s->rank - from > 1 ? fmt(L->a, "(%s)", r) : r;
}

const char *vlmc_level_name(VlmcLevel l)
{
    static const char *const names[VLMC_N_LEVELS] = {"global", "item", "sample", "full"};
    return l < VLMC_N_LEVELS ? names[l] : "?";
}

static int add_node(Lower *L, VlmcOp op, VlmcLevel level, const char *n, bool scalar,
                    VlmcLoc loc)
{
    VlmcGraph *g = L->g;
    g->nodes = vlmc_arena_grow(L->a, g->nodes, g->n, &g->cap,
                               sizeof *g->nodes, 64);
    VlmcNode *x = &g->nodes[g->n];
    memset(x, 0, sizeof *x);
    x->op = op; x->level = level; x->n = n; x->scalar = scalar; x->loc = loc;
    x->param = x->bias = x->var = x->prior = -1;
    x->K = "1";
    return g->n++;
}

static VlmcNode *N(Lower *L, int i) { return &L->g->nodes[i]; }

/* The level of a leaf: in the sampler every batched leaf is FULL. */
static VlmcLevel leaf(Lower *L, VlmcLevel l)
{
    return L->flat && l != VLMC_LEVEL_GLOBAL ? VLMC_LEVEL_FULL : l;
}

/* Node x read at `level`: x itself when it is GLOBAL (views read it with a
 * row stride of 0) or already that high, else the REPEAT node that lifts
 * it there (one per value and level). */
static int lift(Lower *L, int x, VlmcLevel level)
{
    const VlmcNode *s = N(L, x);
    if (s->level == VLMC_LEVEL_GLOBAL || s->level >= level)
        return x;
    const void *key = (const void *)((((uintptr_t)x + 1) << 6) | ((uintptr_t)level << 4));
    int have = map_get(&L->reps, key);
    if (have >= 0)
        return have;
    const char *n = s->n;
    bool scalar = s->scalar;
    VlmcLoc loc = s->loc;
    int var = s->var;
    /* data have no gradient and the runtime holds them at FULL rows: read
     * at FULL, they are read there rather than copied (the runtime then
     * fills every row of the variable, see VlmVarInfo.item_rows) */
    bool data = s->op == VLMC_OP_OBS && level == VLMC_LEVEL_FULL;
    int r = add_node(L, data ? VLMC_OP_OBS : VLMC_OP_REPEAT, level, n, scalar, loc);
    if (data) {
        N(L, r)->var = var;
    } else {
        N(L, r)->in[0] = x;
        N(L, r)->n_in = 1;
    }
    map_put(&L->reps, key, r);
    return r;
}

/* The level of a node that reads ins[0..n): the highest of theirs and
 * `min`. The inputs below it (and above GLOBAL) are replaced by their
 * lifts, so every batched operand of a kernel has the node's rows. */
static VlmcLevel join(Lower *L, int *ins, int n, VlmcLevel min)
{
    VlmcLevel lv = min;
    for (int k = 0; k < n; k++)
        if (N(L, ins[k])->level > lv)
            lv = N(L, ins[k])->level;
    for (int k = 0; k < n; k++)
        ins[k] = lift(L, ins[k], lv);
    return lv;
}

static void unsupported(Lower *L, VlmcLoc loc, const char *what)
{
    vlmc_error(L->d, loc, "code generation does not support %s yet", what);
    L->ok = false;
}

static int add_param(Lower *L, const char *name, int rank, const char **dims, int init,
                     double a, double b, bool guide, bool local, int constraint)
{
    VlmcProgram *p = L->p;
    p->params = vlmc_arena_grow(L->a, p->params, p->n_params, &p->cap_params,
                                sizeof *p->params, 32);
    VlmcParam *q = &p->params[p->n_params];
    memset(q, 0, sizeof *q);
    q->name = name; q->rank = rank;
    for (int i = 0; i < rank; i++)
        q->dims[i] = dims[i];
    q->init = init; q->a = a; q->b = b; q->guide = guide; q->local = local;
    q->constraint = constraint;
    if (local)
        p->has_local = true;
    return p->n_params++;
}

/* The weight W (din, dout) and bias b (dout) of one dense layer, both
 * uniform(+-1/sqrt(din)) as PyTorch's nn.Linear. Returns W; b follows. */
static int add_layer_params(Lower *L, const char *wname, const char *bname, const char *din,
                            const char *dout, bool guide)
{
    const char *wd[2] = {din, dout};
    int w = add_param(L, wname, 2, wd, INIT_FAN_IN, 0, 0, guide, false, 0);
    int b = add_param(L, bname, 1, &wd[1], INIT_FAN_IN, 0, 0, guide, false, 0);
    L->p->params[w].fan_in = L->p->params[b].fan_in = din;
    return w;
}

static int param_node(Lower *L, int pi, VlmcLoc loc)
{
    const VlmcParam *q = &L->p->params[pi];
    const char *n = "1";
    if (q->rank) {
        n = q->dims[0];
        for (int i = 1; i < q->rank; i++)
            n = fmt(L->a, "%s*%s", n, q->dims[i]);
        if (q->rank > 1)
            n = fmt(L->a, "(%s)", n);
    }
    int x = add_node(L, q->local ? VLMC_OP_LOCAL : VLMC_OP_PARAM,
                     q->local ? leaf(L, VLMC_LEVEL_ITEM) : VLMC_LEVEL_GLOBAL, n, q->rank == 0, loc);
    N(L, x)->param = pi;
    return x;
}

static int fn_node(Lower *L, int fn, int in, VlmcLoc loc)
{
    VlmcNode *s = N(L, in);
    int x = add_node(L, VLMC_OP_FN, s->level, s->n, s->scalar, loc);
    N(L, x)->fn = fn;
    N(L, x)->in[0] = in;
    N(L, x)->n_in = 1;
    return x;
}

static int bin_node(Lower *L, VlmcOp op, int a, int b, VlmcLoc loc)
{
    const char *n = N(L, a)->scalar ? N(L, b)->n : N(L, a)->n;
    bool scalar = N(L, a)->scalar && N(L, b)->scalar;
    int ins[2] = {a, b};
    VlmcLevel lv = join(L, ins, 2, VLMC_LEVEL_GLOBAL);
    int r = add_node(L, op, lv, n, scalar, loc);
    N(L, r)->in[0] = ins[0];
    N(L, r)->in[1] = ins[1];
    N(L, r)->n_in = 2;
    return r;
}

static int linear_node(Lower *L, int x, int W, int b, const char *in, const char *out,
                       int act, VlmcLoc loc)
{
    int r = add_node(L, VLMC_OP_LINEAR, N(L, x)->level, out, false, loc);
    VlmcNode *y = N(L, r);
    y->in[0] = x; y->in[1] = W; y->n_in = 2;
    if (b >= 0)
        y->in[y->n_in++] = b;
    y->k = in; y->m = out; y->act = act;
    return r;
}

static int num_node(Lower *L, const char *cexpr, VlmcLoc loc)
{
    int x = add_node(L, VLMC_OP_NUM, VLMC_LEVEL_GLOBAL, "1", true, loc);
    N(L, x)->cexpr = cexpr;
    return x;
}

static int lower_expr(Lower *L, const VlmcExpr *e);

static int fn_code(VlmcFn f)
{
    switch (f) {
    case VLMC_FN_EXP: return FN_EXP;
    case VLMC_FN_LOG: return FN_LOG;
    case VLMC_FN_LOG1P: return FN_LOG1P;
    case VLMC_FN_SQRT: return FN_SQRT;
    case VLMC_FN_SIGMOID: return FN_SIGMOID;
    case VLMC_FN_SOFTPLUS: return FN_SOFTPLUS;
    case VLMC_FN_TANH: return FN_TANH;
    case VLMC_FN_RELU: return FN_RELU;
    case VLMC_FN_ABS: return FN_ABS;
    case VLMC_FN_ELU: return FN_ELU;
    case VLMC_FN_SQUARE: return FN_SQUARE;
    default: return -1;
    }
}

static int lower_name(Lower *L, const VlmcExpr *e)
{
    VlmcSym *s = e->sym;
    int have = map_get(&L->values, s);
    if (have >= 0)
        return have;
    int x = -1;
    switch (s->kind) {
    case VLMC_SYM_CONST:
        return num_node(L, fmt(L->a, "(float)c_%s", s->name), e->loc);
    case VLMC_SYM_PARAM: {
        int pi = map_get(&L->param_of, s);
        x = param_node(L, pi, e->loc);
        if (s->constraint == VLMC_CON_POSITIVE)
            x = fn_node(L, FN_EXP, x, e->loc);
        else if (s->constraint == VLMC_CON_UNIT)
            x = fn_node(L, FN_SIGMOID, x, e->loc);
        else if (s->constraint == VLMC_CON_SIMPLEX) {
            /* stored as logits; the value is their softmax over the last axis */
            int sm = add_node(L, VLMC_OP_SOFTMAX, N(L, x)->level, N(L, x)->n, N(L, x)->scalar, e->loc);
            N(L, sm)->in[0] = x;
            N(L, sm)->n_in = 1;
            N(L, sm)->k = s->shape.rank ? dim_c(L, s->shape.dim[s->shape.rank - 1]) : "1L";
            x = sm;
        }
        break;
    }
    case VLMC_SYM_LET:
        x = lower_expr(L, s->expr);
        break;
    case VLMC_SYM_OBSERVED:
        if (!L->guide) {
            /* the checker guarantees declaration before use */
            vlmc_error(L->d, e->loc, "internal: observed `%s` used before lowering", s->name);
            L->ok = false;
            return num_node(L, "0.0f", e->loc);
        }
        /* the guide reads a summed variable at its enumerated values: its
         * samples and log q then differ between the rows of one item */
        x = add_node(L, s->summed ? VLMC_OP_ENUM : VLMC_OP_OBS,
                     s->summed ? VLMC_LEVEL_FULL : leaf(L, VLMC_LEVEL_ITEM), numel_c(L, &s->shape, 0),
                     s->shape.rank == 0, e->loc);
        N(L, x)->var = map_get(&L->var_of, s);
        break;
    case VLMC_SYM_INPUT:
        /* a data leaf in every graph (model, guide and sampler alike) */
        x = add_node(L, VLMC_OP_OBS, leaf(L, VLMC_LEVEL_ITEM), numel_c(L, &s->shape, 0),
                     s->shape.rank == 0, e->loc);
        N(L, x)->var = map_get(&L->var_of, s);
        break;
    case VLMC_SYM_LATENT:
        vlmc_error(L->d, e->loc, "internal: latent `%s` used before its value exists", s->name);
        L->ok = false;
        return num_node(L, "0.0f", e->loc);
    case VLMC_SYM_NET:
        vlmc_error(L->d, e->loc, "internal: net `%s` used as a value", s->name);
        L->ok = false;
        return num_node(L, "0.0f", e->loc);
    }
    map_put(&L->values, s, x);
    return x;
}

/* concat(a, b, c, ...) as ((a ++ b) ++ c) ...: each step one CONCAT
 * node over the groups before the last dimension (a scalar is [1]). */
static int lower_concat(Lower *L, const VlmcExpr *e)
{
    VlmcShape pre = e->shape;   /* rank >= 1: scalars count as [1] */
    pre.rank--;
    const char *groups = numel_c(L, &pre, 0);
    const VlmcExpr *a0 = e->args[0].value;
    int acc = lower_expr(L, a0);
    const char *k = a0->shape.rank ? dim_c(L, a0->shape.dim[a0->shape.rank - 1]) : "1L";
    for (int i = 1; i < e->n_args; i++) {
        const VlmcExpr *ai = e->args[i].value;
        int b = lower_expr(L, ai);
        const char *m = ai->shape.rank ? dim_c(L, ai->shape.dim[ai->shape.rank - 1]) : "1L";
        const char *n = fmt(L->a, "(%s*(%s+%s))", groups, k, m);
        int ins[2] = {acc, b};
        VlmcLevel lv = join(L, ins, 2, VLMC_LEVEL_GLOBAL);
        int r = add_node(L, VLMC_OP_CONCAT, lv, n, false, e->loc);
        VlmcNode *y = N(L, r);
        y->in[0] = ins[0]; y->in[1] = ins[1]; y->n_in = 2;
        y->k = k; y->m = m; y->cols = groups;
        acc = r;
        k = fmt(L->a, "(%s+%s)", k, m);
    }
    return acc;
}

static int lower_call(Lower *L, const VlmcExpr *e)
{
    if (e->sym && e->sym->kind == VLMC_SYM_NET) {
        const VlmcNetSpec *net = &e->sym->net;
        int x = lower_expr(L, e->args[0].value);
        int p0 = map_get(&L->param_of, e->sym);
        int layers = net->n_sizes - 1;
        for (int l = 0; l < layers; l++) {
            int act = l + 1 < layers ? (int)net->act : (int)net->out_act;
            int W = param_node(L, p0 + 2 * l, e->loc);
            int b = param_node(L, p0 + 2 * l + 1, e->loc);
            x = linear_node(L, x, W, b, dim_c(L, net->sizes[l]), dim_c(L, net->sizes[l + 1]),
                            act, e->loc);
        }
        return x;
    }
    if (e->fn == VLMC_FN_CONCAT)
        return lower_concat(L, e);
    int x = lower_expr(L, e->args[0].value);
    const VlmcExpr *a0 = e->args[0].value;
    switch (e->fn) {
    case VLMC_FN_SOFTMAX: {
        int r = add_node(L, VLMC_OP_SOFTMAX, N(L, x)->level, N(L, x)->n, false, e->loc);
        N(L, r)->in[0] = x;
        N(L, r)->n_in = 1;
        N(L, r)->k = dim_c(L, a0->shape.dim[a0->shape.rank - 1]);
        return r;
    }
    case VLMC_FN_ONE_HOT: {
        const char *K = dim_c(L, e->shape.dim[e->shape.rank - 1]);
        int r = add_node(L, VLMC_OP_ONE_HOT, N(L, x)->level, fmt(L->a, "(%s*%s)", N(L, x)->n, K),
                         false, e->loc);
        N(L, r)->in[0] = x;
        N(L, r)->n_in = 1;
        N(L, r)->K = K;
        return r;
    }
    case VLMC_FN_POW: {
        if (e->power == 2)      /* the common case, exact and cheaper */
            return fn_node(L, FN_SQUARE, x, e->loc);
        if (e->power == 1)
            return x;
        int r = add_node(L, VLMC_OP_POW, N(L, x)->level, N(L, x)->n, N(L, x)->scalar, e->loc);
        N(L, r)->in[0] = x;
        N(L, r)->n_in = 1;
        N(L, r)->cexpr = fmt(L->a, "(float)%.17g", e->power);
        return r;
    }
    default:
        break;
    }
    if (e->fn == VLMC_FN_SUM) {
        int r = add_node(L, VLMC_OP_SUM, N(L, x)->level, "1", true, e->loc);
        N(L, r)->in[0] = x;
        N(L, r)->n_in = 1;
        return r;
    }
    int code = fn_code(e->fn);
    if (code < 0) {
        unsupported(L, e->loc, "this function");
        return x;
    }
    return fn_node(L, code, x, e->loc);
}

static int lower_matmul(Lower *L, const VlmcExpr *e)
{
    const VlmcExpr *A = e->a[0], *B = e->a[1];
    int a = lower_expr(L, A), b = lower_expr(L, B);
    if (A->shape.rank == 2 && B->shape.rank == 1 && !A->batched) {
        /* A (m,k) @ x (k) */
        int r = add_node(L, VLMC_OP_MATVEC, N(L, b)->level, dim_c(L, A->shape.dim[0]), false,
                         e->loc);
        VlmcNode *y = N(L, r);
        y->in[0] = a; y->in[1] = b; y->n_in = 2;
        y->m = dim_c(L, A->shape.dim[0]);
        y->k = dim_c(L, A->shape.dim[1]);
        return r;
    }
    if (A->shape.rank == 1 && B->shape.rank == 2 && !B->batched)  /* x (k) @ W (k,m) */
        return linear_node(L, a, b, -1, dim_c(L, B->shape.dim[0]), dim_c(L, B->shape.dim[1]),
                           0, e->loc);
    if (A->shape.rank == 2 && B->shape.rank == 2 && !A->batched && !B->batched) {
        /* A (m,k) @ B (k,cols), both global */
        const char *cols = dim_c(L, B->shape.dim[1]);
        int r = add_node(L, VLMC_OP_MATMAT, VLMC_LEVEL_GLOBAL,
                         fmt(L->a, "(%s*%s)", dim_c(L, A->shape.dim[0]), cols), false, e->loc);
        VlmcNode *y = N(L, r);
        y->in[0] = a; y->in[1] = b; y->n_in = 2;
        y->m = dim_c(L, A->shape.dim[0]);
        y->k = dim_c(L, A->shape.dim[1]);
        y->cols = cols;
        return r;
    }
    unsupported(L, e->loc, "this form of `@` (supported: global matrix @ vector, vector @ global "
                "matrix, global matrix @ global matrix)");
    return a;
}

static int lower_expr(Lower *L, const VlmcExpr *e)
{
    switch (e->kind) {
    case VLMC_E_NUM:
        return num_node(L, fmt(L->a, "(float)%.9g", e->num), e->loc);
    case VLMC_E_NAME:
        return lower_name(L, e);
    case VLMC_E_NEG:
        return fn_node(L, FN_NEG, lower_expr(L, e->a[0]), e->loc);
    case VLMC_E_BIN:
        switch (e->op) {
        case '+': return bin_node(L, VLMC_OP_ADD, lower_expr(L, e->a[0]), lower_expr(L, e->a[1]), e->loc);
        case '-': return bin_node(L, VLMC_OP_SUB, lower_expr(L, e->a[0]), lower_expr(L, e->a[1]), e->loc);
        case '*': return bin_node(L, VLMC_OP_MUL, lower_expr(L, e->a[0]), lower_expr(L, e->a[1]), e->loc);
        case '/': return bin_node(L, VLMC_OP_DIV, lower_expr(L, e->a[0]), lower_expr(L, e->a[1]), e->loc);
        case '@': return lower_matmul(L, e);
        }
        break;
    case VLMC_E_CALL:
        return lower_call(L, e);
    case VLMC_E_INDEX: {
        const VlmcExpr *t = e->a[0];
        int table = lower_expr(L, t), idx = lower_expr(L, e->a[1]);
        if (vlmc_is_batched(N(L, table)) || t->shape.rank < 1) {
            unsupported(L, e->loc, "indexing a batched value");
            return table;
        }
        /* a vector index gathers one row of the table per element */
        const char *width = numel_c(L, &t->shape, 1), *count = N(L, idx)->n;
        bool vec = !N(L, idx)->scalar;
        int r = add_node(L, VLMC_OP_GATHER, N(L, idx)->level, vec ? fmt(L->a, "(%s*%s)", count, width) : width,
                         t->shape.rank == 1 && !vec, e->loc);
        N(L, r)->in[0] = table;
        N(L, r)->in[1] = idx;
        N(L, r)->n_in = 2;
        N(L, r)->k = vec ? count : "1";
        N(L, r)->m = width;
        return r;
    }
    }
    unsupported(L, e->loc, "this expression");
    return num_node(L, "0.0f", e->loc);
}

/* Lower a conditional's arguments once; every node of that conditional
 * (its LOGP, MEAN, SAMPLE) reads the same values. */
typedef struct Args { int id[VLMC_MAX_DIST_PARAMS]; int n; } Args;

static Args lower_args(Lower *L, const VlmcDist *dist, int form, VlmcExpr **args)
{
    Args r = {.n = dist->forms[form].n_params};
    for (int i = 0; i < r.n; i++)
        r.id[i] = lower_expr(L, args[i]);
    return r;
}

/* A distribution node (LOGP/RSAMPLE/SAMPLE/MEAN) over lowered arguments;
 * value < 0 for nodes without a value operand. */
static int dist_node(Lower *L, VlmcOp op, const VlmcDist *dist, int form, VlmcExpr **args,
                     const Args *th, int value, int var, VlmcLoc loc)
{
    const VlmcVar *v = &L->p->vars[var];
    int ins[VLMC_MAX_IN], n_in = 0;
    if (value >= 0)
        ins[n_in++] = value;
    for (int i = 0; i < th->n; i++)
        ins[n_in++] = th->id[i];
    /* a draw is one per (item, sample) at least; a density or a mean is
     * one per item at least (its value is data or a latent). A `global
     * latent` is drawn at GLOBAL and its densities are GLOBAL terms: the
     * emitter repeats them over the rows like any term below FULL, and the
     * runtime's term table gives them the coefficient 1/N (counted once
     * per data set; vlm_infer_term_scale) */
    bool draw = op == VLMC_OP_RSAMPLE || op == VLMC_OP_SAMPLE;
    /* a global latent's draw and densities have the one row of GLOBAL:
     * the runtime weighs its terms 1/N per item (infer.c, term_scale) */
    VlmcLevel min = v->global ? VLMC_LEVEL_GLOBAL : leaf(L, draw ? VLMC_LEVEL_SAMPLE : VLMC_LEVEL_ITEM);
    VlmcLevel lv = join(L, ins, n_in, min);
    int r = add_node(L, op, lv, v->n, v->sym->shape.rank == 0, loc);
    VlmcNode *x = N(L, r);
    memcpy(x->in, ins, sizeof ins);
    x->n_in = n_in;
    x->var = var;
    x->dist = dist;
    x->form = form;
    if (dist->event_last_dim) {
        /* Categorical: K from the parameter's last dimension */
        const VlmcShape *ps = &args[0]->shape;
        x->K = dim_c(L, ps->dim[ps->rank - 1]);
        x->shared_row = ps->rank == 1 && v->sym->shape.rank > 0;
    } else if (dist->chain) {
        x->K = v->K;   /* the chain's states */
    }
    return r;
}

static const VlmcDist *find_dist(const char *name) { return vlmc_dist_lookup(name); }

/* Closed-form KL(q || p) for latent j when q and its prior are Normal and
 * the prior's arguments do not vary per row (no other latent or data in
 * them): a KL node in the guide graph over q's (loc, scale) and the
 * prior's, lowered there. */
static void maybe_kl(Lower *L, int j, int q_loc, int q_scale)
{
    VlmcVar *v = &L->p->vars[j];
    const VlmcSym *s = v->sym;
    if (v->global)   /* its KL would be one row too: Monte Carlo keeps it simple */
        return;
    if (strcmp(s->dist->name, "Normal") || !v->q_dist || strcmp(v->q_dist->name, "Normal"))
        return;
    for (int k = 0; k < 2; k++)
        if (s->dist_args[k]->batched)
            return;
    int p_loc = lower_expr(L, s->dist_args[0]), p_scale = lower_expr(L, s->dist_args[1]);
    int ins[4] = {q_loc, q_scale, p_loc, p_scale};
    VlmcLevel lv = join(L, ins, 4, VLMC_LEVEL_ITEM);
    int r = add_node(L, VLMC_OP_KL, lv, v->n, s->shape.rank == 0, s->loc);
    VlmcNode *x = N(L, r);
    memcpy(x->in, ins, sizeof ins);
    x->n_in = 4;
    x->var = j;
    x->dist = v->q_dist;
    v->kl = true;
}

/* An automatic guide is amortized (an MLP over the data) when the model
 * has nets and exactly one real-valued observed vector to read; otherwise
 * it has local parameters per data point. */
bool vlmc_auto_amortized(const VlmcModel *m)
{
    return m->n_nets > 0 && m->n_observed == 1 && m->observed[0]->type == VLMC_T_REAL;
}

/* q(z) for a latent without a written guide: mean-field Normal (real
 * support) or LogNormal (positive support); amortized by one MLP over the
 * single observed variable when the model has nets, per data point
 * otherwise. */
static void lower_auto_guide(Lower *L, int j, int *enc_h)
{
    VlmcVar *v = &L->p->vars[j];
    VlmcSym *s = v->sym;
    const VlmcDist *qd = NULL;
    if (s->dist->value_support == VLMC_SUP_REAL)
        qd = find_dist("Normal");
    else if (s->dist->value_support == VLMC_SUP_POSITIVE || s->dist->value_support == VLMC_SUP_NONNEG)
        qd = find_dist("LogNormal");
    if (!qd) {
        vlmc_error(L->d, s->loc, "latent `%s` has no guide and its support has no automatic "
                   "guide; write `guide { %s ~ ...; }`", s->name, s->name);
        L->ok = false;
        return;
    }
    v->q_dist = qd;
    v->has_q = true;
    const char *dims[1] = {v->n};
    int loc_n, sc_n;
    if (v->global) {
        /* q(w) = Normal(loc, exp(log_scale)): global params, one row */
        int lp = add_param(L, fmt(L->a, "auto.%s.loc", s->name), 1, dims, INIT_CONST, 0, 0, true, false, 0);
        int sp = add_param(L, fmt(L->a, "auto.%s.log_scale", s->name), 1, dims, INIT_CONST, -1, 0, true, false, 0);
        loc_n = param_node(L, lp, s->loc);
        sc_n = param_node(L, sp, s->loc);
    } else if (vlmc_auto_amortized(L->m)) {
        /* the encoder reads the first observed variable that is data in
         * every row (a summed one may be missing) */
        const VlmcSym *o = L->m->observed[0];
        for (int i = L->m->n_observed - 1; i >= 0; i--)
            if (!L->m->observed[i]->summed)
                o = L->m->observed[i];
        if (*enc_h < 0) {
            const char *din = numel_c(L, &o->shape, 0);
            const char *hd = fmt(L->a, "%dL", AUTO_HIDDEN);
            int W = add_layer_params(L, "auto.enc.W0", "auto.enc.b0", din, hd, true), b = W + 1;
            int x = add_node(L, VLMC_OP_OBS, VLMC_LEVEL_ITEM, din, o->shape.rank == 0, s->loc);
            N(L, x)->var = map_get(&L->var_of, o);
            *enc_h = linear_node(L, x, param_node(L, W, s->loc), param_node(L, b, s->loc), din,
                                 hd, 1 /* relu */, s->loc);
        }
        const char *hd = fmt(L->a, "%dL", AUTO_HIDDEN);
        const char *wd[2] = {hd, v->n};
        int lw = add_layer_params(L, fmt(L->a, "auto.%s.loc.W", s->name),
                                  fmt(L->a, "auto.%s.loc.b", s->name), hd, v->n, true), lb = lw + 1;
        int sw = add_param(L, fmt(L->a, "auto.%s.log_scale.W", s->name), 2, wd, INIT_NORMAL, 0, 1e-3, true, false, 0);
        int sb = add_param(L, fmt(L->a, "auto.%s.log_scale.b", s->name), 1, dims, INIT_CONST, -1, 0, true, false, 0);
        loc_n = linear_node(L, *enc_h, param_node(L, lw, s->loc), param_node(L, lb, s->loc), hd,
                            v->n, 0, s->loc);
        sc_n = linear_node(L, *enc_h, param_node(L, sw, s->loc), param_node(L, sb, s->loc), hd,
                           v->n, 0, s->loc);
    } else {
        int lp = add_param(L, fmt(L->a, "auto.%s.loc", s->name), 1, dims, INIT_CONST, 0, 0, true, true, 0);
        int sp = add_param(L, fmt(L->a, "auto.%s.log_scale", s->name), 1, dims, INIT_CONST, -1, 0, true, true, 0);
        loc_n = param_node(L, lp, s->loc);
        sc_n = param_node(L, sp, s->loc);
    }
    Args th = {.id = {loc_n, fn_node(L, FN_EXP, sc_n, s->loc)}, .n = 2};
    int r = dist_node(L, VLMC_OP_RSAMPLE, qd, 0, NULL, &th, -1, j, s->loc);
    v->level = N(L, r)->level;
    int lq = dist_node(L, VLMC_OP_LOGP, qd, 0, NULL, &th, r, j, s->loc);
    N(L, lq)->is_q = true;
    maybe_kl(L, j, th.id[0], th.id[1]);
}

static void build_tables(Lower *L)
{
    const VlmcModel *m = L->m;
    VlmcProgram *p = L->p;
    for (int i = 0; i < m->n_params; i++) {
        VlmcSym *s = m->params[i];
        const char *dims[VLMC_MAX_RANK];
        for (int k = 0; k < s->shape.rank; k++)
            dims[k] = dim_c(L, s->shape.dim[k]);
        int init = INIT_NORMAL;
        double a = 0, b = 0.01;
        double ia = s->init_a;
        /* initializers describe the constrained value: store its preimage */
        if (s->init == VLMC_INIT_CONST) {
            init = INIT_CONST;
            a = ia;
            if (s->constraint == VLMC_CON_POSITIVE)
                a = ia > 0 ? log(ia) : -30;
            else if (s->constraint == VLMC_CON_UNIT)
                a = ia > 0 && ia < 1 ? log(ia / (1 - ia)) : 0;
        } else if (s->init == VLMC_INIT_NORMAL) {
            a = s->init_a; b = s->init_b;
        } else if (s->init == VLMC_INIT_UNIFORM) {
            /* the constrained value is uniform: the runtime stores its
             * log (positive) or logit (unit) element by element */
            init = s->constraint == VLMC_CON_POSITIVE ? INIT_UNIFORM_LOG
                 : s->constraint == VLMC_CON_UNIT ? INIT_UNIFORM_LOGIT : INIT_UNIFORM;
            a = s->init_a; b = s->init_b;
        }
        map_put(&L->param_of, s,
                add_param(L, s->name, s->shape.rank, dims, init, a, b, s->in_guide, s->local,
                          (int)s->constraint));
    }
    for (int i = 0; i < m->n_nets; i++) {
        VlmcSym *s = m->nets[i];
        int first = -1;
        for (int l = 0; l + 1 < s->net.n_sizes; l++) {
            int w = add_layer_params(L, fmt(L->a, "%s.W%d", s->name, l),
                                     fmt(L->a, "%s.b%d", s->name, l), dim_c(L, s->net.sizes[l]),
                                     dim_c(L, s->net.sizes[l + 1]), s->in_guide);
            if (first < 0)
                first = w;
        }
        map_put(&L->param_of, s, first);
    }
    p->n_vars = m->n_latents + m->n_observed;
    p->n_latent = m->n_latents;
    p->n_inputs = m->n_inputs;
    p->vars = vlmc_arena_alloc(L->a, sizeof *p->vars * (size_t)(p->n_vars + p->n_inputs + 1));
    const char *E = "1L", *chain_T = NULL;
    const VlmcSym *chain = NULL;
    for (int i = 0; i < p->n_vars; i++) {
        bool lat = i < m->n_latents;
        VlmcSym *s = lat ? m->latents[i] : m->observed[i - m->n_latents];
        VlmcVar *v = &p->vars[i];
        v->sym = s;
        v->n = numel_c(L, &s->shape, 0);
        v->treat = lat ? (int)m->treat[i] : -1;
        v->K = "0L";
        if (s->dist->event_last_dim) {
            const VlmcShape *ps = &s->dist_args[0]->shape;
            v->K = dim_c(L, ps->dim[ps->rank - 1]);
        } else if (s->dist->chain) {
            v->K = dim_c(L, s->support_dim);
        } else if (s->dist->discrete && s->support > 0) {
            v->K = fmt(L->a, "%ldL", s->support);
        }
        v->has_q = s->q_dist != NULL;   /* latents; summed observed (M2) */
        v->q_dist = s->q_dist;
        v->summed = !lat && s->summed;
        v->global = lat && s->global;
        v->level = !lat ? (v->summed ? VLMC_LEVEL_FULL : VLMC_LEVEL_ITEM)
                   : v->global ? VLMC_LEVEL_GLOBAL
                   : v->treat == VLMC_TREAT_ENUMERATE || v->treat == VLMC_TREAT_MARKOV ? VLMC_LEVEL_FULL
                   : VLMC_LEVEL_SAMPLE;
        if (lat && v->treat == VLMC_TREAT_MARKOV) {
            /* a chain's rows: its K states (every step in the same state);
             * its emissions keep per-step terms that the runtime combines */
            E = fmt(L->a, "%s*%s", E, v->K);
            chain_T = v->n;
            chain = s;
        } else if ((lat && v->treat == VLMC_TREAT_ENUMERATE) || v->summed) {
            /* support^numel for each enumerated latent */
            if (s->shape.rank == 0)
                E = fmt(L->a, "%s*%s", E, v->K);
            else
                E = fmt(L->a, "%s*gen_ipow(%s, %s)", E, v->K, v->n);
        }
        map_put(&L->var_of, s, i);
    }
    /* the chain's emissions: observed variables that read it (the checker
     * allows nothing else to) keep their log density per step */
    for (int i = m->n_latents; i < p->n_vars && chain; i++)
        for (int k = 0; k < p->vars[i].sym->n_deps; k++)
            if (p->vars[i].sym->deps[k] == chain)
                p->vars[i].steps = chain_T;
    /* inputs after the random variables: no density, only data rows */
    for (int i = 0; i < m->n_inputs; i++) {
        VlmcSym *s = m->inputs[i];
        VlmcVar *v = &p->vars[p->n_vars + i];
        v->sym = s;
        v->n = numel_c(L, &s->shape, 0);
        v->treat = -1;
        v->K = s->support ? dim_c(L, s->support_dim) : "0L";
        v->level = VLMC_LEVEL_ITEM;
        map_put(&L->var_of, s, p->n_vars + i);
    }
    p->E = E;
}

/* A used `let` of the block being lowered, at its declaration, so that a
 * later use finds it lowered: a chain of lets each reading the one before
 * is lowered one link at a time, not by a recursion through the chain
 * (which a long chain would overflow the stack with). */
static void lower_let_decl(Lower *L, const VlmcStmt *st)
{
    VlmcSym *s = st->sym;
    if (st->kind != VLMC_S_LET || !s || !s->used || map_get(&L->values, s) >= 0)
        return;
    map_put(&L->values, s, lower_expr(L, s->expr));
}

static void begin_graph(Lower *L, VlmcGraph *g, bool guide)
{
    L->g = g;
    L->guide = guide;
    L->flat = false;
    map_init(L->a, &L->values, 1 << 12);
    map_init(L->a, &L->reps, 1 << 8);
}

/* The model's conditionals in source order: for log p (latents and data
 * are inputs of the graph, each conditional a LOGP term) or, sampling, for
 * ancestral sampling (each variable drawn from its conditional). Observed
 * variables also get their mean E[x | parents]. */
static void lower_priors(Lower *L);

static void lower_conditionals(Lower *L, VlmcGraph *g, bool sampling)
{
    begin_graph(L, g, false);
    L->flat = sampling;
    const VlmcModel *m = L->m;
    for (int i = 0; i < m->n_stmts && L->ok; i++) {
        const VlmcStmt *st = &m->stmts[i];
        lower_let_decl(L, st);
        if (st->kind != VLMC_S_LATENT && st->kind != VLMC_S_OBSERVED)
            continue;
        VlmcSym *s = st->sym;
        int var = map_get(&L->var_of, s);
        VlmcVar *v = &L->p->vars[var];
        int x = -1;
        if (!sampling) {
            VlmcOp op = st->kind == VLMC_S_OBSERVED ? (v->summed ? VLMC_OP_ENUM : VLMC_OP_OBS)
                        : v->treat == VLMC_TREAT_ENUMERATE || v->treat == VLMC_TREAT_MARKOV ? VLMC_OP_ENUM
                        : VLMC_OP_LATENT;
            x = add_node(L, op, v->level, v->n, s->shape.rank == 0, s->loc);
            N(L, x)->var = var;
        }
        Args th = lower_args(L, s->dist, s->param_form, s->dist_args);
        if (sampling) {
            x = dist_node(L, VLMC_OP_SAMPLE, s->dist, s->param_form, s->dist_args, &th, -1, var, s->dist_loc);
        } else if (v->treat == VLMC_TREAT_MARKOV) {
            /* no log-density node: init and trans go to the forward algorithm */
            int r = add_node(L, VLMC_OP_MARKOV, VLMC_LEVEL_GLOBAL, fmt(L->a, "(%s*(1+%s))", v->K, v->K), false, s->dist_loc);
            VlmcNode *y = N(L, r);
            y->in[0] = th.id[0]; y->in[1] = th.id[1]; y->n_in = 2;
            y->var = var; y->dist = s->dist; y->form = s->param_form; y->K = v->K;
        } else {
            int lp = dist_node(L, VLMC_OP_LOGP, s->dist, s->param_form, s->dist_args, &th, x, var, s->dist_loc);
            N(L, lp)->steps = v->steps;
        }
        if (st->kind == VLMC_S_OBSERVED)
            dist_node(L, VLMC_OP_MEAN, s->dist, s->param_form, s->dist_args, &th, -1, var, s->dist_loc);
        map_put(&L->values, s, x);
    }
    if (!sampling)
        lower_priors(L);
}

/* The priors of params (`param w ~ Normal(0, 1)`): one GLOBAL LOGP term
 * each over the param's (constrained) value, in the model graph. */
static void lower_priors(Lower *L)
{
    const VlmcModel *m = L->m;
    for (int i = 0; i < m->n_params && L->ok; i++) {
        VlmcSym *s = m->params[i];
        if (!s->dist)
            continue;
        VlmcExpr name = {.kind = VLMC_E_NAME, .loc = s->loc, .name = s->name, .sym = s, .shape = s->shape};
        int x = lower_name(L, &name);
        Args th = lower_args(L, s->dist, s->param_form, s->dist_args);
        int ins[VLMC_MAX_IN], n_in = 0;
        ins[n_in++] = x;
        for (int k = 0; k < th.n; k++)
            ins[n_in++] = th.id[k];
        int r = add_node(L, VLMC_OP_LOGP, VLMC_LEVEL_GLOBAL, N(L, x)->n, s->shape.rank == 0, s->dist_loc);
        VlmcNode *y = N(L, r);
        memcpy(y->in, ins, sizeof ins);
        y->n_in = n_in;
        y->dist = s->dist;
        y->form = s->param_form;
        y->prior = L->p->n_priors;
        L->p->priors = vlmc_arena_grow(L->a, L->p->priors, L->p->n_priors, &L->prior_cap, sizeof *L->p->priors, 8);
        L->p->priors[L->p->n_priors++] = map_get(&L->param_of, s);
    }
}

/* Whether node x reads the enumerated value of a variable (the rows of
 * one item then differ in x). */
static bool reads_enum(Lower *L, int x)
{
    bool *seen = vlmc_arena_alloc(L->a, (size_t)L->g->n + 1);
    int *stack = vlmc_arena_alloc(L->a, ((size_t)L->g->n + 1) * sizeof *stack);
    int top = 0;
    stack[top++] = x;
    while (top > 0) {
        int i = stack[--top];
        if (seen[i]) continue;
        seen[i] = true;
        const VlmcNode *n = N(L, i);
        if (n->op == VLMC_OP_ENUM) return true;
        for (int k = 0; k < n->n_in; k++) stack[top++] = n->in[k];
    }
    return false;
}

static void lower_guide(Lower *L)
{
    begin_graph(L, &L->p->guide_g, true);
    const VlmcModel *m = L->m;
    for (int i = 0; i < m->n_gstmts && L->ok; i++) {
        const VlmcStmt *st = &m->gstmts[i];
        lower_let_decl(L, st);
        if (st->kind != VLMC_S_SAMPLE)
            continue;
        VlmcSym *s = st->sym;
        int var = map_get(&L->var_of, s);
        if (s->kind == VLMC_SYM_OBSERVED) {
            /* q(y | x) of a variable summed out where missing: no draw;
             * its log q at each enumerated value weighs the rows (M2) */
            int x = map_get(&L->values, s);
            if (x < 0) {
                x = add_node(L, VLMC_OP_ENUM, VLMC_LEVEL_FULL, L->p->vars[var].n, s->shape.rank == 0,
                             st->loc);
                N(L, x)->var = var;
                map_put(&L->values, s, x);
            }
            Args th = lower_args(L, s->q_dist, s->q_param_form, s->q_args);
            int lq = dist_node(L, VLMC_OP_LOGP, s->q_dist, s->q_param_form, s->q_args, &th, x, var, s->q_loc);
            N(L, lq)->is_q = true;
            continue;
        }
        VlmcOp op = s->q_dist->reparam && !s->q_dist->discrete ? VLMC_OP_RSAMPLE : VLMC_OP_SAMPLE;
        Args th = lower_args(L, s->q_dist, s->q_param_form, s->q_args);
        for (int k = 0; k < th.n && op == VLMC_OP_SAMPLE; k++)
            if (reads_enum(L, th.id[k])) {
                /* one draw serves every enumerated row of an item */
                vlmc_error(L->d, st->loc, "the guide's distribution of `%s` reads a variable that is summed "
                           "out where missing; only a reparameterized (continuous) guide may depend on it",
                           s->name);
                L->ok = false;
                return;
            }
        int x = dist_node(L, op, s->q_dist, s->q_param_form, s->q_args, &th, -1, var, s->q_loc);
        L->p->vars[var].level = N(L, x)->level;   /* the model graph reads it there */
        int lq = dist_node(L, VLMC_OP_LOGP, s->q_dist, s->q_param_form, s->q_args, &th, x, var, s->q_loc);
        N(L, lq)->is_q = true;
        if (op == VLMC_OP_RSAMPLE && th.n == 2)
            maybe_kl(L, var, th.id[0], th.id[1]);
        map_put(&L->values, s, x);
    }
    int enc_h = -1;
    for (int j = 0; j < L->p->n_latent && L->ok; j++)
        if (L->p->vars[j].treat == VLMC_TREAT_AUTO_GUIDE)
            lower_auto_guide(L, j, &enc_h);
}

bool vlmc_lower(VlmcArena *a, const VlmcModel *m, VlmcProgram *p, VlmcDiag *d)
{
    memset(p, 0, sizeof *p);
    p->model = m;
    p->auto_hidden = AUTO_HIDDEN;
    Lower L = {.a = a, .m = m, .p = p, .d = d, .ok = true};
    int cap = 64;
    while (cap < 4 * (m->n_params + m->n_nets + m->n_latents + m->n_observed + m->n_inputs + 8))
        cap *= 2;
    map_init(a, &L.param_of, cap);
    map_init(a, &L.var_of, cap);
    if (m->n_latents + m->n_observed + m->n_inputs > 32) {
        vlmc_error(d, m->n_stmts ? m->stmts[0].loc : (VlmcLoc){1, 1, 1, 2},
                   "code generation supports at most 32 variables (latent, observed and input)");
        return false;
    }
    build_tables(&L);
    /* the guide first: the model graph reads each guided latent at the
     * level of its draw */
    lower_guide(&L);
    if (L.ok)
        lower_conditionals(&L, &p->model_g, false);
    if (L.ok)
        lower_conditionals(&L, &p->sample_g, true);
    if (L.ok)
        p->mixture = vlmc_recognise_mixture(a, p);
    return L.ok;
}
