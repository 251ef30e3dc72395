/* plan.c — the inference plan of a lowered program in words (vlmc --plan):
 * which estimator each latent gets, the parameters, and the activation
 * memory of a training batch. Sizes are evaluated at the consts' defaults. */
#include "vlmc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value of a size expression as the lowering writes it (compiler/ir.c,
 * vlmc_dim_text):
 *   sum     := product ('+' product)*
 *   product := factor ('*' factor)*
 *   factor  := NUMBER['L'] | 'c_'NAME | '(' sum ')'
 *            | 'gen_ipow(' sum ',' sum ')'
 * (a sum: a size such as [Z + K]; gen_ipow: an enumerated vector latent's
 * support^numel). */
static double size_sum(const VlmcModel *m, const char **s);

static void skip_blanks(const char **s)
{
    while (**s == ' ')
        (*s)++;
}

static double size_factor(const VlmcModel *m, const char **s)
{
    skip_blanks(s);
    const char *p = *s;
    if (*p == '(') {
        *s = p + 1;
        double r = size_sum(m, s);
        skip_blanks(s);
        if (**s != ')')
            return NAN;
        (*s)++;
        return r;
    }
    if (!strncmp(p, "gen_ipow(", 9)) {
        *s = p + 9;
        double b = size_sum(m, s), r = 1;
        skip_blanks(s);
        if (**s != ',')
            return NAN;
        (*s)++;
        double e = size_sum(m, s);
        skip_blanks(s);
        if (**s != ')')
            return NAN;
        (*s)++;
        for (double k = 0; k < e; k++)
            r *= b;
        return r;
    }
    if (p[0] == 'c' && p[1] == '_') {
        const char *b = p + 2, *e = b;
        while (*e && *e != '*' && *e != '+' && *e != ')' && *e != ',' && *e != ' ')
            e++;
        *s = e;
        for (int i = 0; i < m->n_consts; i++)
            if (strlen(m->consts[i]->name) == (size_t)(e - b) &&
                !strncmp(m->consts[i]->name, b, (size_t)(e - b)))
                return (double)m->consts[i]->value;
        return NAN;
    }
    char *e;
    double v = strtod(p, &e);
    if (e == p)              /* not a size expression */
        return NAN;
    *s = e + (*e == 'L');
    return v;
}

static double size_product(const VlmcModel *m, const char **s)
{
    double r = size_factor(m, s);
    skip_blanks(s);
    while (**s == '*') {
        (*s)++;
        r *= size_factor(m, s);
        skip_blanks(s);
    }
    return r;
}

static double size_sum(const VlmcModel *m, const char **s)
{
    double r = size_product(m, s);
    skip_blanks(s);
    while (**s == '+') {
        (*s)++;
        r += size_product(m, s);
        skip_blanks(s);
    }
    return r;
}

/* NaN when s is not such an expression in full (the plan then says nan
 * rather than a wrong number) */
static double eval_size(const VlmcModel *m, const char *s)
{
    double r = size_sum(m, &s);
    skip_blanks(&s);
    return *s ? NAN : r;
}

/* Rows of each level for a batch of b items, one sample, e enumerated
 * values. */
static void level_rows(double b, double e, double rows[VLMC_N_LEVELS])
{
    rows[VLMC_LEVEL_GLOBAL] = 1;
    rows[VLMC_LEVEL_ITEM] = rows[VLMC_LEVEL_SAMPLE] = b;
    rows[VLMC_LEVEL_FULL] = b * e;
}

/* bytes of a graph's slots at those rows: each slot is as large as its
 * largest member (see buffers.c) */
static double graph_bytes(const VlmcProgram *p, const VlmcGraph *g, const double rows[VLMC_N_LEVELS])
{
    double total = 0;
    for (int k = 0; k < g->n_slots; k++) {
        double mx = 0;
        for (int i = 0; i < g->n; i++) {
            const VlmcNode *x = &g->nodes[i];
            if (vlmc_node_in_slot(x, k)) {
                double b = 4.0 * eval_size(p->model, x->n) * rows[x->level];
                if (b > mx)
                    mx = b;
            }
        }
        total += mx;
    }
    return total;
}

static const char *estimator(const VlmcProgram *p, const VlmcVar *v)
{
    (void)p;
    switch (v->treat) {
    case VLMC_TREAT_ENUMERATE:
        return "summed out exactly: every value enumerated, combined by log-sum-exp (EM's fixed point)";
    case VLMC_TREAT_REPARAM:
        return "pathwise (reparameterized) gradient through the guide's sample";
    case VLMC_TREAT_SCORE:
        return "score-function gradient, moving-average baseline (leave-one-out with --samples > 1)";
    case VLMC_TREAT_AUTO_GUIDE:
        return "pathwise gradient through an automatic mean-field guide";
    case VLMC_TREAT_MARKOV:
        return "summed out exactly by the forward algorithm, O(T K^2) per item (its emissions'\n"
               "      per-step log densities at each state); gradients from forward-backward marginals";
    }
    return "?";
}

/* What `train` does by default (runtime/train.c decides the same way). */
static const char *training(const VlmcProgram *p)
{
    if (p->mixture) {
        static const char *const forms[] = {"log sd", "log variance"};
        static char buf[256];
        const VlmcMixture *x = p->mixture;
        snprintf(buf, sizeof buf,
                 "EM with closed-form M-step (conjugate Gaussian mixture: weights `%s`, means `%s`, "
                 "scales `%s` stored as %s); --optimizer adam|sgd for gradient training",
                 p->params[x->weights].name, p->params[x->mu].name, p->params[x->scale].name,
                 forms[x->scale_kind]);
        return buf;
    }
    for (int j = p->n_latent; j < p->n_vars; j++)
        if (p->vars[j].summed && p->vars[j].has_q)
            return "stochastic gradient (Adam) on the semi-supervised bound (M2: the ELBO where the "
                   "class is given, q-weighted over its values where it is missing)";
    for (int j = 0; j < p->n_latent; j++)
        if (p->vars[j].treat != VLMC_TREAT_ENUMERATE && p->vars[j].treat != VLMC_TREAT_MARKOV)
            return "stochastic gradient (Adam) on the ELBO";
    return "gradient (Adam) on the exact marginal";
}

/* The name of the variable of a density, draw or KL node. */
static const char *var_name(const VlmcProgram *p, const VlmcNode *x)
{
    if (x->prior >= 0)
        return p->params[p->priors[x->prior]].name;
    return x->var >= 0 ? p->vars[x->var].sym->name : "?";
}

/* One line per node that does a row's work (net layers and matrix
 * products, densities, draws, KL terms) and per REPEAT, with its level
 * and rows: where enumeration or sampling multiplies work. */
static void print_graph_levels(const VlmcProgram *p, const VlmcGraph *g, const char *what,
                               const double rows[VLMC_N_LEVELS], FILE *o)
{
    fprintf(o, "    %s:\n", what);
    for (int i = 0; i < g->n; i++) {
        const VlmcNode *x = &g->nodes[i];
        if (!x->live)
            continue;
        char buf[160];
        switch (x->op) {
        case VLMC_OP_LINEAR: {
            const VlmcNode *w = &g->nodes[x->in[1]];
            snprintf(buf, sizeof buf, "%s %s (%.0f -> %.0f)", x->n_in > 2 ? "layer" : "x @",
                     w->param >= 0 ? p->params[w->param].name : "?", eval_size(p->model, x->k),
                     eval_size(p->model, x->m));
            break;
        }
        case VLMC_OP_MATVEC: {
            const VlmcNode *a = &g->nodes[x->in[0]];
            snprintf(buf, sizeof buf, "%s @ (%.0f -> %.0f)", a->param >= 0 ? p->params[a->param].name : "matrix",
                     eval_size(p->model, x->k), eval_size(p->model, x->m));
            break;
        }
        case VLMC_OP_LOGP:
            snprintf(buf, sizeof buf, "log %c(%s)", x->is_q ? 'q' : 'p', var_name(p, x));
            break;
        case VLMC_OP_KL:
            snprintf(buf, sizeof buf, "KL(q || p) of %s", var_name(p, x));
            break;
        case VLMC_OP_RSAMPLE: case VLMC_OP_SAMPLE:
            snprintf(buf, sizeof buf, "draw of %s", var_name(p, x));
            break;
        case VLMC_OP_REPEAT:
            snprintf(buf, sizeof buf, "repeat %s -> %s (%.0f values a row)",
                     vlmc_level_name(g->nodes[x->in[0]].level), vlmc_level_name(x->level),
                     eval_size(p->model, x->n));
            break;
        default:
            continue;
        }
        fprintf(o, "      %-44s %-6s %6.0f rows\n", buf, vlmc_level_name(x->level), rows[x->level]);
    }
}

static void print_levels(const VlmcProgram *p, const double rows[VLMC_N_LEVELS], FILE *o)
{
    fprintf(o, "  row levels (batch 128, 1 sample): global 1, item %.0f, sample %.0f, full %.0f rows\n",
            rows[VLMC_LEVEL_ITEM], rows[VLMC_LEVEL_SAMPLE], rows[VLMC_LEVEL_FULL]);
    if (p->guide_g.n)
        print_graph_levels(p, &p->guide_g, "guide", rows, o);
    print_graph_levels(p, &p->model_g, "model", rows, o);
}

void vlmc_print_plan(const VlmcProgram *p, FILE *o)
{
    const VlmcModel *m = p->model;
    fprintf(o, "inference plan for %s\n", m->src->path);
    if (m->n_consts) {
        fprintf(o, "  sizes:");
        for (int i = 0; i < m->n_consts; i++)
            fprintf(o, " %s=%ld", m->consts[i]->name, m->consts[i]->value);
        fprintf(o, "  (change with --set NAME=VALUE)\n");
    }
    for (int j = 0; j < p->n_vars; j++) {
        const VlmcVar *v = &p->vars[j];
        const VlmcSym *s = v->sym;
        fprintf(o, "  %s %s: %s (%.0f value%s per %s)\n", j < p->n_latent ? "latent  " : "observed",
                s->name, s->dist->name, eval_size(m, v->n), eval_size(m, v->n) == 1 ? "" : "s",
                v->global ? "data set: global" : "item");
        if (v->global) {
            fprintf(o, "      guide: %s%s, global (one q(%s) for the data set)\n",
                    v->treat == VLMC_TREAT_AUTO_GUIDE ? "automatic " : "", v->q_dist ? v->q_dist->name : "Normal",
                    s->name);
            fprintf(o, "      gradient: %s\n", estimator(p, v));
            fprintf(o, "      log p(%s) - log q(%s): Monte Carlo, counted once per data set (1/N per item)\n",
                    s->name, s->name);
            continue;
        }
        if (j >= p->n_latent && v->summed) {
            fprintf(o, "      a parent of other variables: where given, its value (the other enumerated rows\n"
                       "      are clamped out); where missing (NaN), summed out exactly like an enumerated\n"
                       "      latent; a batch mixes both kinds of row\n");
            if (v->has_q)
                fprintf(o, "      guide: %s q(%s | ...), in training only: where %s is missing it weighs the\n"
                           "      values (M2's bound); where given, --aux-weight x log q(%s | ...) is added;\n"
                           "      eval sums %s exactly\n", v->q_dist->name, s->name, s->name, s->name, s->name);
            continue;
        }
        if (j >= p->n_latent && v->steps) {
            fprintf(o, "      emission of the Markov chain: log-density per step at each state, combined by\n"
                       "      the forward algorithm; missing entries (NaN or --mask) are marginalized\n");
            continue;
        }
        if (j >= p->n_latent) {
            fprintf(o, "      log-density summed over observed entries; missing entries (NaN or --mask) are "
                       "marginalized\n");
            continue;
        }
        if (v->treat == VLMC_TREAT_ENUMERATE || v->treat == VLMC_TREAT_MARKOV) {
            fprintf(o, "      %s\n", estimator(p, v));
            continue;
        }
        const char *q = v->q_dist ? v->q_dist->name : "Normal";
        if (v->treat == VLMC_TREAT_AUTO_GUIDE)
            fprintf(o, "      guide: automatic %s, %s\n", q,
                    vlmc_auto_amortized(m) ? "amortized (MLP over the observed data, 256 hidden units)"
                              : "per data point (local loc and log-scale)");
        else
            fprintf(o, "      guide: %s (%s)\n", q, m->guide == VLMC_GUIDE_LOCAL ? "per data point" : "amortized");
        fprintf(o, "      gradient: %s\n", estimator(p, v));
        if (v->kl)
            fprintf(o, "      KL(q || p) term: closed form (Normal/Normal) in ELBO training; Monte Carlo in eval "
                       "and IWAE\n");
        else
            fprintf(o, "      KL(q || p) term: Monte Carlo, log p(z) - log q(z) at the sample\n");
    }
    for (int i = 0; i < p->n_inputs; i++) {
        const VlmcVar *v = &p->vars[p->n_vars + i];
        fprintf(o, "  input    %s: %.0f value%s per item%s\n", v->sym->name, eval_size(m, v->n),
                eval_size(m, v->n) == 1 ? "" : "s",
                v->sym->support ? ", integers (category)" : "");
        fprintf(o, "      data the model conditions on: no density; read from the data like an observed "
                   "variable\n");
    }
    for (int k = 0; k < p->n_priors; k++) {
        /* the model's params come first in the param table, in order */
        const VlmcSym *s = m->params[p->priors[k]];
        fprintf(o, "  param    %s: prior %s, MAP: log p(%s) counted once per data set (1/N per item)\n",
                s->name, s->dist->name, s->name);
    }
    bool chain = false;
    for (int j = 0; j < p->n_latent; j++)
        chain |= p->vars[j].treat == VLMC_TREAT_MARKOV;
    if (chain)   /* the only enumerated variable beside a chain (the checker's rule) */
        fprintf(o, "  enumeration: %.0f rows per item, the chain's states (not its paths)\n", eval_size(m, p->E));
    else if (p->E && strcmp(p->E, "1L"))
        fprintf(o, "  enumeration: %.0f joint values per item (rows per item)\n", eval_size(m, p->E));
    fprintf(o, "  training: %s\n", training(p));
    double theta = 0, phi = 0, local = 0;
    for (int i = 0; i < p->n_params; i++) {
        const VlmcParam *q = &p->params[i];
        double c = 1;
        for (int k = 0; k < q->rank; k++)
            c *= eval_size(m, q->dims[k]);
        if (q->local)
            local += c;
        else if (q->guide)
            phi += c;
        else
            theta += c;
    }
    fprintf(o, "  parameters: %.0f model (theta), %.0f guide (phi)", theta, phi);
    if (local > 0)
        fprintf(o, ", %.0f per data point", local);
    fprintf(o, "\n");
    double E = p->E && strcmp(p->E, "1L") ? eval_size(m, p->E) : 1;
    double lrows[VLMC_N_LEVELS];
    level_rows(128, E, lrows);
    print_levels(p, lrows, o);
    double rows = lrows[VLMC_LEVEL_FULL];
    double act = graph_bytes(p, &p->model_g, lrows) + graph_bytes(p, &p->guide_g, lrows);
    double batch = act + 4 * 4 * (theta + phi);
    int slots = p->model_g.n_slots + p->guide_g.n_slots, bufs = 0;
    for (int g = 0; g < 2; g++) {
        const VlmcGraph *gr = g ? &p->guide_g : &p->model_g;
        for (int i = 0; i < gr->n; i++)
            bufs += vlmc_node_owns_value(&gr->nodes[i]) + vlmc_node_owns_grad(&gr->nodes[i]) +
                    (gr->nodes[i].live && gr->nodes[i].op == VLMC_OP_RSAMPLE);
    }
    fprintf(o, "  buffers: %d intermediates share %d planned buffers\n", bufs, slots);
    fprintf(o, "  memory: batch 128 (%.0f rows): %.2f MiB of activations, %.2f MiB with parameters, gradients "
               "and Adam moments\n",
            rows, act / (1024 * 1024), batch / (1024 * 1024));
}
