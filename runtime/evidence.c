/* evidence.c — what eval, posterior and impute say about their importance
 * sampling: the per-item statistics (infer.c) summed over a data set, the
 * Pareto k-hat and ESS verdict, and a warning in words that says what
 * helps. Computes no estimate itself. */
#include "vlm.h"

#include <math.h>

void vlm_evidence_summarize(size_t n, const VlmItemStats *st, int K,
                            bool exact, bool local, VlmEvidence *ev)
{
    *ev = (VlmEvidence){.n = n, .K = K, .exact = exact, .local = local,
                        .ess_min = INFINITY, .khat_max = -INFINITY};
    double sq = 0, se2 = 0;
    for (size_t i = 0; i < n; i++) {
        ev->elbo += st[i].elbo;
        ev->iwae += st[i].iwae;
        sq += st[i].iwae * st[i].iwae;
        se2 += st[i].se * st[i].se;
        ev->ess_mean += st[i].ess;
        ev->ess_min = fmin(ev->ess_min, st[i].ess);
        ev->ess_below2 += st[i].ess < 2;
        if (!isnan(st[i].khat)) {
            ev->khat_n++;
            ev->khat_bad += st[i].khat > 0.7;
            ev->khat_max = fmax(ev->khat_max, st[i].khat);
        } else if (vlm_psis_tail_len(K) >= 5) {
            ev->khat_tied++;
        }
    }
    double N = n ? (double)n : 1;
    ev->elbo /= N;
    ev->iwae /= N;
    ev->ess_mean /= N;
    ev->sd_items = n > 1 ? sqrt(fmax(sq / N - ev->iwae * ev->iwae, 0)) : 0;
    ev->se = exact ? 0 : K > 1 ? sqrt(se2) / N : NAN;
    ev->bias = exact || K < 2 ? 0 : se2 / (2 * N);
    ev->unreliable = !exact && K > 1 &&
                     ((double)ev->khat_bad > 0.01 * (double)n ||
                      ev->ess_below2 > 0);
}

static double pct(size_t a, size_t n)
{
    return n ? 100.0 * (double)a / (double)n : 0;
}

/* The reasons, e.g. "k-hat is above 0.7 on 12.0% of the items and the
 * effective sample size is below 2 on 40 items". */
static void reasons(FILE *out, const VlmEvidence *ev)
{
    bool k = (double)ev->khat_bad > 0.01 * (double)ev->n;
    if (k)
        fprintf(out, "k-hat is above 0.7 on %.1f%% of the items", pct(ev->khat_bad, ev->n));
    if (ev->ess_below2)
        fprintf(out, "%sthe effective sample size is below 2 on %zu item%s",
                k ? " and " : "", ev->ess_below2,
                ev->ess_below2 == 1 ? "" : "s");
}

static void advice(FILE *out, const VlmEvidence *ev, const char *samples)
{
    fprintf(out, "What helps: more samples (%s, now %d)", samples, ev->K);
    if (ev->local)
        fprintf(out, ", a longer refinement of the local guide (a larger "
                "--refine, a smaller --refine-tol)");
    fprintf(out, ", or a better guide: one closer to the posterior "
            "p(z | x)%s.\n", ev->local ? "" : " (train longer, or a guide "
            "with more flexibility)");
    /* k-hat from few samples is itself noisy: say so when it alone spoke */
    if (ev->ess_below2 == 0 && ev->K < 1000)
        fprintf(out, "  With %d samples k-hat rests on the %d largest weights "
                "of an item and its own noise\n  can put a few %% of the items "
                "above 0.7: %s 1000 tells the two apart.\n", ev->K,
                vlm_psis_tail_len(ev->K), samples);
}

void vlm_evidence_print(FILE *out, const VlmEvidence *ev,
                        const char *data_name)
{
    fprintf(out, "eval: %zu items of %s\n", ev->n, data_name);
    if (ev->exact) {
        fprintf(out, "  log p(x)        %.6f  (exact: every latent is summed "
                "out; per item, sd over items %.4f)\n", ev->iwae,
                ev->sd_items);
        return;
    }
    fprintf(out, "  ELBO            %.6f\n", ev->elbo);
    fprintf(out, "  IWAE_%-10d %.6f\n", ev->K, ev->iwae);
    if (ev->global)
        fprintf(out, "  (global latents: the ELBO counts their log p - log q once per data set, 1/N per\n"
                "   item; IWAE and log p(x) are the posterior predictive log p(x | training data),\n"
                "   each sample a draw of w from q(w) and of the local latents from their guide)\n");
    if (ev->priors)
        fprintf(out, "  (priors on params: the ELBO counts their log density once per data set, 1/N per\n"
                "   item; IWAE and log p(x) are log p(x | params), without it)\n");
    if (ev->K > 1)
        fprintf(out, "  log p(x) (IS)   %.6f +- %.6f  (Monte Carlo standard "
                "error of the mean, delta method; sd over items %.4f)\n",
                ev->iwae, ev->se, ev->sd_items);
    else
        fprintf(out, "  log p(x) (IS)   %.6f +- n/a  (one sample per item "
                "has no spread to measure: use --iw 100 or more; sd over "
                "items %.4f)\n", ev->iwae, ev->sd_items);
    fprintf(out, "  ESS             %.2f of %d  (mean per item; min %.2f)\n",
            ev->ess_mean, ev->K, ev->ess_min);
    if (ev->khat_n == 0) {
        fprintf(out, "  k-hat           n/a  (PSIS diagnostic: %s)\n",
                vlm_psis_tail_len(ev->K) < 5
                    ? "needs --iw 21 or more"
                    : "the largest weights are tied on every item: no tail");
    } else {
        fprintf(out, "  k-hat           max %.2f; %.1f%% of items above 0.7",
                ev->khat_max, pct(ev->khat_bad, ev->n));
        if (ev->khat_tied)
            fprintf(out, "; n/a on %zu items (tied largest weights)",
                    ev->khat_tied);
        fprintf(out, "  (PSIS diagnostic: below 0.5 good, 0.5-0.7 ok, above "
                "0.7 unreliable)\n");
    }
    if (ev->unreliable) {
        fprintf(out, "warning: this log p(x) estimate is unreliable: ");
        reasons(out, ev);
        fprintf(out, ".\n  A few importance samples carry most of the "
                "weight, so log-mean-exp lands below log p(x),\n  typically "
                "by more than the standard error printed, which misses that "
                "bias.\n  ");
        advice(out, ev, "--iw");
    } else if (ev->K > 1 && ev->bias > ev->se) {
        fprintf(out, "note: log-mean-exp is biased low by about %.2g "
                "(delta method), more than the standard error;\n  more "
                "samples (--iw) shrink both.\n", ev->bias);
    }
}

void vlm_evidence_line(FILE *out, const VlmEvidence *ev, const char *cmd)
{
    if (ev->exact || ev->n == 0)
        return;
    fprintf(out, "%s: importance weights of %d samples per item: ESS mean "
            "%.1f, min %.2f; k-hat ", cmd, ev->K, ev->ess_mean, ev->ess_min);
    if (ev->khat_n)
        fprintf(out, "max %.2f, %.1f%% of items above 0.7\n", ev->khat_max,
                pct(ev->khat_bad, ev->n));
    else
        fprintf(out, "n/a\n");
    if (ev->unreliable) {
        fprintf(out, "warning: summaries weighted by these importance "
                "weights are unreliable: ");
        reasons(out, ev);
        fprintf(out, ".\n  ");
        advice(out, ev, "--samples");
    }
}
