/* warn.c — warnings over a checked model, in source order: unused names,
 * latents no observed variable depends on, unconstrained params where a
 * distribution needs constrained values. It reports no errors and changes
 * nothing; the checker's guide-shadowing warning stays in check.c. */
#include "vlmc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Warning {
    VlmcLoc loc;
    char *msg;
    const VlmcSym *note_sym;   /* a note at its declaration, or NULL */
    const char *note;
    int seq;                   /* emission order among equal locations */
} Warning;

typedef struct Wn {
    VlmcArena *a;
    const VlmcModel *m;
    Warning *w; int n, cap;
} Wn;

static void add(Wn *W, VlmcLoc loc, const VlmcSym *note_sym, const char *note, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add(Wn *W, VlmcLoc loc, const VlmcSym *note_sym, const char *note, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    W->w = vlmc_arena_grow(W->a, W->w, W->n, &W->cap, sizeof *W->w, 16);
    W->w[W->n] = (Warning){loc, vlmc_arena_strndup(W->a, buf, strlen(buf)), note_sym, note, W->n};
    W->n++;
}

static int by_loc(const void *pa, const void *pb)
{
    const Warning *a = pa, *b = pb;
    if (a->loc.line != b->loc.line) return a->loc.line < b->loc.line ? -1 : 1;
    if (a->loc.col != b->loc.col) return a->loc.col < b->loc.col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ------------------------------------------------- latents nobody reads */

/* Mark every latent a model expression names (lets included: a let that is
 * itself unused has its own warning). */
static void mark_read(const VlmcExpr *e, bool *read)
{
    if (!e) return;
    if (e->kind == VLMC_E_NAME && e->sym && e->sym->kind == VLMC_SYM_LATENT && !e->sym->in_guide)
        read[e->sym->index] = true;
    for (int i = 0; i < 2; i++) mark_read(e->a[i], read);
    for (int i = 0; i < e->n_args; i++) mark_read(e->args[i].value, read);
}

static void warn_latents(Wn *W)
{
    const VlmcModel *m = W->m;
    if (!m->n_latents) return;
    bool *read = vlmc_arena_alloc(W->a, (size_t)m->n_latents * sizeof *read);
    bool *reaches = vlmc_arena_alloc(W->a, (size_t)m->n_latents * sizeof *reaches);
    for (int i = 0; i < m->n_stmts; i++) {
        const VlmcSym *s = m->stmts[i].sym;
        if (!s) continue;
        if (s->kind == VLMC_SYM_LET) mark_read(s->expr, read);
        if ((s->kind == VLMC_SYM_LATENT || s->kind == VLMC_SYM_OBSERVED) && s->dist_call)
            mark_read(s->dist_call, read);
    }
    /* which latents an observed variable depends on, through any chain of
     * latents: deps point to earlier declarations, so one backward sweep */
    for (int i = 0; i < m->n_observed; i++)
        for (int k = 0; k < m->observed[i]->n_deps; k++) {
            const VlmcSym *d = m->observed[i]->deps[k];
            if (d->kind == VLMC_SYM_LATENT) reaches[d->index] = true;
        }
    for (int i = m->n_latents - 1; i >= 0; i--) {
        if (!reaches[i]) continue;
        const VlmcSym *z = m->latents[i];
        for (int k = 0; k < z->n_deps; k++)
            if (z->deps[k]->kind == VLMC_SYM_LATENT) reaches[z->deps[k]->index] = true;
    }
    for (int i = 0; i < m->n_latents; i++) {
        const VlmcSym *z = m->latents[i];
        if (!read[i])
            add(W, z->loc, NULL, NULL, "latent `%s` is never used", z->name);
        else if (!reaches[i])
            add(W, z->loc, NULL, NULL, "no observed variable depends on latent `%s`: "
                "the data say nothing about it", z->name);
    }
}

/* ------------------------------------ unconstrained params as scales */

/* The param an argument passes as it is (`s`, `s[z]`, or a let that is
 * one of those), or NULL. */
static const VlmcSym *passed_param(const VlmcExpr *e, int budget)
{
    if (!e || budget <= 0) return NULL;
    if (e->kind == VLMC_E_INDEX) e = e->a[0];
    if (e->kind != VLMC_E_NAME || !e->sym) return NULL;
    if (e->sym->kind == VLMC_SYM_PARAM) return e->sym;
    if (e->sym->kind == VLMC_SYM_LET) return passed_param(e->sym->expr, budget - 1);
    return NULL;
}

/* `name[K, 3]` as declared, for a suggested declaration */
static const char *decl_text(Wn *W, const VlmcSym *s)
{
    char buf[300];
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s", s->name);
    for (int i = 0; i < s->shape.rank && len < sizeof buf; i++) {
        VlmcDim d = s->shape.dim[i];
        if (d.cst >= 0 && d.cst < W->m->n_consts)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? ", " : "[",
                                    W->m->consts[d.cst]->name);
        else
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%ld", i ? ", " : "[", d.value);
    }
    if (s->shape.rank && len < sizeof buf) snprintf(buf + len, sizeof buf - len, "]");
    return vlmc_arena_strndup(W->a, buf, strlen(buf));
}

static void warn_args(Wn *W, const VlmcDist *dist, int form, VlmcExpr *const *args)
{
    if (!dist || !args) return;
    const VlmcDistForm *F = &dist->forms[form];
    for (int p = 0; p < F->n_params; p++) {
        const VlmcSym *s = passed_param(args[p], 100);
        if (!s || s->constraint != VLMC_CON_NONE) continue;
        const char *need, *con;
        switch (F->supports[p]) {
        case VLMC_SUP_POSITIVE: need = "positive"; con = "positive"; break;
        case VLMC_SUP_UNIT: need = "in (0, 1)"; con = "unit"; break;
        case VLMC_SUP_UNIT_CLOSED: need = "in [0, 1]"; con = "unit"; break;
        case VLMC_SUP_SIMPLEX: need = "a simplex"; con = "simplex"; break;
        default: continue;
        }
        add(W, args[p]->loc, s, "declared here",
            "`%s` is an unconstrained param, but %s's %s must be %s: declare `param %s : %s`",
            s->name, dist->name, F->names[p], need, decl_text(W, s), con);
    }
}

static void warn_constraints(Wn *W)
{
    const VlmcModel *m = W->m;
    for (int i = 0; i < m->n_latents; i++) {
        const VlmcSym *z = m->latents[i];
        warn_args(W, z->dist, z->param_form, z->dist_args);
        warn_args(W, z->q_dist, z->q_param_form, z->q_args);
    }
    for (int i = 0; i < m->n_observed; i++) {
        const VlmcSym *x = m->observed[i];
        warn_args(W, x->dist, x->param_form, x->dist_args);
    }
}

/* ---------------------------------------------------- unused names */

static void warn_unused(Wn *W, VlmcSym *const *syms, int n)
{
    for (int i = 0; i < n; i++)
        if (!syms[i]->used)
            add(W, syms[i]->loc, NULL, NULL, "%s `%s` is never used",
                vlmc_sym_kind_name(syms[i]->kind), syms[i]->name);
}

void vlmc_warn_model(VlmcArena *a, const VlmcModel *m, VlmcDiag *d)
{
    Wn W = {.a = a, .m = m};
    warn_unused(&W, m->consts, m->n_consts);
    warn_unused(&W, m->params, m->n_params);
    warn_unused(&W, m->nets, m->n_nets);
    warn_unused(&W, m->lets, m->n_lets);
    warn_latents(&W);
    warn_constraints(&W);
    if (W.n) qsort(W.w, (size_t)W.n, sizeof *W.w, by_loc);   /* W.w is NULL when empty */
    for (int i = 0; i < W.n; i++) {
        vlmc_warning(d, W.w[i].loc, "%s", W.w[i].msg);
        if (W.w[i].note_sym)
            vlmc_note(d, W.w[i].note_sym->loc, "`%s` is %s", W.w[i].note_sym->name, W.w[i].note);
    }
}
