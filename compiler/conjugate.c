/* conjugate.c — recognises models whose maximum-likelihood fit has a
 * closed-form M-step, so the runtime can train them by exact EM instead
 * of gradients. Today: the mixture of diagonal Gaussians. It reads the
 * checked AST and the lowered tables; it changes neither. */
#include "vlmc.h"

#include <string.h>

/* Follow `let` names to the expression they stand for. */
static const VlmcExpr *unlet(const VlmcExpr *e)
{
    while (e && e->kind == VLMC_E_NAME && e->sym && e->sym->kind == VLMC_SYM_LET)
        e = e->sym->expr;
    return e;
}

static bool same_dim(VlmcDim a, VlmcDim b)
{
    if (a.cst != -1 || b.cst != -1)   /* consts and (interned) sums */
        return a.cst == b.cst;
    return a.value == b.value;
}

/* A model (theta) param that is global: not a guide's, not per item. */
static VlmcSym *model_param(const VlmcExpr *e)
{
    e = unlet(e);
    if (!e || e->kind != VLMC_E_NAME || !e->sym || e->sym->kind != VLMC_SYM_PARAM)
        return NULL;
    VlmcSym *s = e->sym;
    return s->in_guide || s->local ? NULL : s;
}

/* `t[z]`: a model param indexed by the latent z; the param, else NULL. */
static VlmcSym *indexed_by(const VlmcExpr *e, const VlmcSym *z)
{
    e = unlet(e);
    if (!e || e->kind != VLMC_E_INDEX)
        return NULL;
    const VlmcExpr *i = unlet(e->a[1]);
    if (!i || i->kind != VLMC_E_NAME || i->sym != z)
        return NULL;
    return model_param(e->a[0]);
}

static bool is_call(const VlmcExpr *e, VlmcFn fn)
{
    return e && e->kind == VLMC_E_CALL && e->fn == fn && !(e->sym && e->sym->kind == VLMC_SYM_NET) &&
           e->n_args == 1 && !e->args[0].key;
}

static bool is_half(const VlmcExpr *e)
{
    e = unlet(e);
    return e && e->kind == VLMC_E_NUM && e->num == 0.5;
}

/* The scale argument of x's Normal: which param holds the component
 * scales and how (see VlmcMixScale). Recognised forms, for a param t:
 *   exp(t[z])          t real        raw t = log sd
 *   t[z]               t positive    raw t = log sd  (positive is stored as log)
 *   sqrt(t[z])         t positive    raw t = log var
 *   exp(0.5 * t[z])    t real        raw t = log var  (or t[z] * 0.5)
 *   sqrt(exp(t[z]))    t real        raw t = log var */
static VlmcSym *scale_param(const VlmcExpr *e, const VlmcSym *z, VlmcMixScale *kind)
{
    e = unlet(e);
    VlmcSym *t;
    if ((t = indexed_by(e, z)) && t->constraint == VLMC_CON_POSITIVE) {
        *kind = VLMC_MIX_LOG_SD;
        return t;
    }
    if (is_call(e, VLMC_FN_EXP)) {
        const VlmcExpr *a = unlet(e->args[0].value);
        if ((t = indexed_by(a, z)) && t->constraint == VLMC_CON_NONE) {
            *kind = VLMC_MIX_LOG_SD;
            return t;
        }
        if (a && a->kind == VLMC_E_BIN && a->op == '*') {
            const VlmcExpr *u = is_half(a->a[0]) ? a->a[1] : is_half(a->a[1]) ? a->a[0] : NULL;
            if (u && (t = indexed_by(u, z)) && t->constraint == VLMC_CON_NONE) {
                *kind = VLMC_MIX_LOG_VAR;
                return t;
            }
        }
        return NULL;
    }
    if (is_call(e, VLMC_FN_SQRT)) {
        const VlmcExpr *a = unlet(e->args[0].value);
        if ((t = indexed_by(a, z)) && t->constraint == VLMC_CON_POSITIVE) {
            *kind = VLMC_MIX_LOG_VAR;
            return t;
        }
        if (is_call(a, VLMC_FN_EXP) && (t = indexed_by(a->args[0].value, z)) &&
            t->constraint == VLMC_CON_NONE) {
            *kind = VLMC_MIX_LOG_VAR;
            return t;
        }
    }
    return NULL;
}

/* t has shape [K, <shape of x>]. */
static bool table_shape(const VlmcSym *t, VlmcDim K, const VlmcShape *x)
{
    if (t->shape.rank != x->rank + 1 || !same_dim(t->shape.dim[0], K))
        return false;
    for (int i = 0; i < x->rank; i++)
        if (!same_dim(t->shape.dim[i + 1], x->dim[i]))
            return false;
    return true;
}

/* Index of a model param in the program's parameter table (user params
 * come first, in the checker's order). */
static int param_index(const VlmcProgram *p, const VlmcSym *s)
{
    const VlmcModel *m = p->model;
    for (int i = 0; i < m->n_params && i < p->n_params; i++)
        if (m->params[i] == s && !strcmp(p->params[i].name, s->name))
            return i;
    return -1;
}

/* The conjugate diagonal-Gaussian mixture:
 *   param L[K] (real) or param L[K] : simplex;  param mu[K, ...] (real);
 *   param t[K, ...] (one of the scale forms above);
 *   latent z ~ Categorical(logits = L)  or  Categorical(probs = L);
 *   observed x[...] ~ Normal(mu[z], <scale of t[z]>);
 * with z scalar, summed out (ENUMERATE), no guide block, no nets, and
 * nothing else random. Returns NULL for every other model. */
const VlmcMixture *vlmc_recognise_mixture(VlmcArena *a, const VlmcProgram *p)
{
    const VlmcModel *m = p->model;
    if (m->n_latents != 1 || m->n_observed != 1 || m->n_inputs != 0 || m->guide != VLMC_GUIDE_NONE || m->n_nets != 0 ||
        p->n_vars != 2 || p->n_latent != 1)
        return NULL;
    const VlmcSym *z = m->latents[0], *x = m->observed[0];
    if (m->treat[0] != VLMC_TREAT_ENUMERATE || z->shape.rank != 0 || !z->dist ||
        strcmp(z->dist->name, "Categorical") || !x->dist || strcmp(x->dist->name, "Normal") ||
        x->type != VLMC_T_REAL)
        return NULL;
    VlmcSym *L = model_param(z->dist_args[0]);
    if (!L || L->shape.rank != 1)
        return NULL;
    bool logits_form = z->param_form == 1;
    if (logits_form ? L->constraint != VLMC_CON_NONE : L->constraint != VLMC_CON_SIMPLEX)
        return NULL;
    VlmcDim K = L->shape.dim[0];
    VlmcSym *mu = indexed_by(x->dist_args[0], z);
    if (!mu || mu->constraint != VLMC_CON_NONE || !table_shape(mu, K, &x->shape))
        return NULL;
    VlmcMixScale kind;
    VlmcSym *t = scale_param(x->dist_args[1], z, &kind);
    if (!t || t == mu || t == L || !table_shape(t, K, &x->shape))
        return NULL;
    VlmcMixture *r = vlmc_arena_alloc(a, sizeof *r);
    r->latent = 0;
    r->observed = 1;
    r->weights = param_index(p, L);
    r->mu = param_index(p, mu);
    r->scale = param_index(p, t);
    r->scale_kind = kind;
    if (r->weights < 0 || r->mu < 0 || r->scale < 0)
        return NULL;
    return r;
}
