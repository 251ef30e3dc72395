/* plan.c — the inference plan of a lowered program in words (vlmc --plan):
 * which estimator each latent gets, the parameters, and the activation
 * memory of a training batch. Sizes are evaluated at the consts' defaults. */
#include "vlmc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value of a size expression as the emitter writes it: products of
 * `c_NAME`, integer literals (`784L`) and parentheses. */
static double eval_size(const VlmcModel *m, const char *s)
{
    double r = 1;
    while (*s) {
        if (*s == '(' || *s == ')' || *s == '*' || *s == ' ') {
            s++;
        } else if (s[0] == 'c' && s[1] == '_') {
            const char *b = s + 2, *e = b;
            while (*e && *e != '*' && *e != ')' && *e != ' ')
                e++;
            for (int i = 0; i < m->n_consts; i++)
                if (strlen(m->consts[i]->name) == (size_t)(e - b) &&
                    !strncmp(m->consts[i]->name, b, (size_t)(e - b)))
                    r *= (double)m->consts[i]->value;
            s = e;
        } else {
            char *e;
            double v = strtod(s, &e);
            if (e == s)
                return r;   /* not a product: stop (gen_ipow and the like) */
            r *= v;
            s = e;
            if (*s == 'L')
                s++;
        }
    }
    return r;
}

static double graph_bytes(const VlmcProgram *p, const VlmcGraph *g, bool batched)
{
    double b = 0;
    for (int i = 0; i < g->n; i++) {
        const VlmcNode *x = &g->nodes[i];
        if (!x->live || x->batched != batched)
            continue;
        int k = 0;
        if (x->op != VLMC_OP_PARAM && x->op != VLMC_OP_LATENT && x->op != VLMC_OP_ENUM &&
            x->op != VLMC_OP_OBS && x->op != VLMC_OP_LOGP && x->op != VLMC_OP_SAMPLE &&
            x->op != VLMC_OP_MEAN && x->op != VLMC_OP_RSAMPLE)
            k++;
        if (x->dep && x->op != VLMC_OP_PARAM && x->op != VLMC_OP_LATENT && x->op != VLMC_OP_LOGP)
            k++;
        if (x->op == VLMC_OP_RSAMPLE)
            k++;
        b += 4.0 * k * eval_size(p->model, x->n);
    }
    return b;
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
    for (int j = 0; j < p->n_latent; j++)
        if (p->vars[j].treat != VLMC_TREAT_ENUMERATE)
            return "stochastic gradient (Adam) on the ELBO";
    return "gradient (Adam) on the exact marginal";
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
        fprintf(o, "  %s %s: %s (%.0f value%s per item)\n", j < p->n_latent ? "latent  " : "observed",
                s->name, s->dist->name, eval_size(m, v->n), eval_size(m, v->n) == 1 ? "" : "s");
        if (j >= p->n_latent) {
            fprintf(o, "      log-density summed over observed entries; missing entries (NaN or --mask) are "
                       "marginalized\n");
            continue;
        }
        if (v->treat == VLMC_TREAT_ENUMERATE) {
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
        fprintf(o, "      KL(q || p) term: Monte Carlo, log p(z) - log q(z) at the sample\n");
    }
    if (p->E && strcmp(p->E, "1L"))
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
    double row = graph_bytes(p, &p->model_g, true) + graph_bytes(p, &p->guide_g, true);
    double fixed = graph_bytes(p, &p->model_g, false) + graph_bytes(p, &p->guide_g, false);
    double E = p->E && strcmp(p->E, "1L") ? eval_size(m, p->E) : 1;
    double batch = 128 * E * row + fixed + 4 * 4 * (theta + phi);
    fprintf(o, "  memory: %.1f KiB of activations per row; batch 128 (%.0f rows): %.1f MiB with parameters, "
               "gradients and Adam moments\n",
            row / 1024, 128 * E, batch / (1024 * 1024));
}
