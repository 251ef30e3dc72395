/* dist_bernoulli.c — Bernoulli in two parameterizations, probs and logits.
 * Values in {0, 1}; any value in [0, 1] is also accepted and scored by the
 * same formula (the cross-entropy relaxation used for grey-level images),
 * with its gradient; values outside [0, 1] give -inf. */
#include "dist_common.h"

static double sigmoid(double l)
{
    if (l >= 0)
        return 1.0 / (1.0 + exp(-l));
    double e = exp(l);
    return e / (1.0 + e);
}

/* log p = x log p + (1 - x) log(1 - p), with 0 log 0 = 0; p in [0, 1].
 * d/dx = log p - log(1 - p),  d/dp = x/p - (1 - x)/(1 - p) */
static double bernoulli_probs_elem(double x, const double *th, double *g)
{
    double p = th[0];
    if (!(p >= 0 && p <= 1))
        return NAN;
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    if (g) {
        g[0] = log(p) - log1p(-p);
        g[1] = (x == 0 ? 0.0 : x / p) - (x == 1 ? 0.0 : (1.0 - x) / (1.0 - p));
    }
    return xlogy(x, p) + (x == 1 ? 0.0 : (1.0 - x) * log1p(-p));
}

/* log p = x l - softplus(l);  d/dx = l,  d/dl = x - sigmoid(l).
 * l = +-inf are the degenerate limits p = 1, 0. */
static double bernoulli_logits_elem(double x, const double *th, double *g)
{
    double l = th[0];
    if (isnan(l))
        return NAN;
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    if (g) {
        g[0] = isinf(l) ? 0.0 : l;
        g[1] = x - sigmoid(l);
    }
    if (isinf(l))
        return (l > 0 ? x == 1 : x == 0) ? 0.0 : -INFINITY;
    return x * l - vlm_log1pexp(l);
}

static double bernoulli_probs_draw(VlmRng *rng, const double *th)
{
    return vlm_rng_bernoulli(rng, th[0]);
}

static double bernoulli_logits_draw(VlmRng *rng, const double *th)
{
    return vlm_rng_bernoulli(rng, sigmoid(th[0]));
}

static double bernoulli_probs_mean(const double *th) { return th[0]; }
static double bernoulli_logits_mean(const double *th) { return sigmoid(th[0]); }

DIST_DEFINE_LOGP(bernoulli_probs, 1, true, bernoulli_probs_elem)
DIST_DEFINE_SAMPLE(bernoulli_probs, 1, bernoulli_probs_draw)
DIST_DEFINE_MEAN(bernoulli_probs, 1, bernoulli_probs_mean)
/* The logits form is the output layer of every image VAE, so it has its
 * own loops: one exp per element (softplus and sigmoid share e^-|l|), and
 * no log at all in the backward pass. Infinite logits and values outside
 * [0, 1] fall back to the element function. */
void vlm_dist_bernoulli_logits_logp(int R, int n, int K, VlmIn x,
                                    const VlmIn *th, VlmIn mask, double *out)
{
    (void)K;
    for (int r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            double xv = vin_at(x, r, i), l = vin_at(th[0], r, i), lp;
            if (isfinite(l) && xv >= 0 && xv <= 1)
                /* log(1 + e) rather than log1p: the absolute error (1e-16)
                 * is all a summed log-likelihood sees, at half the cost */
                lp = xv * l - (l > 0 ? l : 0.0) - log(1.0 + exp(-fabs(l)));
            else
                lp = bernoulli_logits_elem(xv, &l, NULL);
            s += m * lp;
        }
        out[r] = s;
    }
}

void vlm_dist_bernoulli_logits_logp_bwd(int R, int n, int K, VlmIn x,
                                        const VlmIn *th, VlmIn mask,
                                        const float *dout, VlmOut dx,
                                        const VlmOut *dth)
{
    (void)K;
    VlmOut dl = dth_get(dth, 0);
    if (!dx.p && !dl.p)
        return;
    for (int r = 0; r < R; r++) {
        double w = dout[r];
        if (w == 0)
            continue;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            double xv = vin_at(x, r, i), l = vin_at(th[0], r, i);
            double g[2];
            if (isfinite(l) && xv >= 0 && xv <= 1) {
                double e = exp(-fabs(l));
                g[0] = l;
                g[1] = xv - (l >= 0 ? 1.0 : e) / (1.0 + e);
            } else if (!isfinite(bernoulli_logits_elem(xv, &l, g))) {
                continue;
            }
            vout_add(dx, r, i, w * m * g[0]);
            vout_add(dl, r, i, w * m * g[1]);
        }
    }
}
DIST_DEFINE_SAMPLE(bernoulli_logits, 1, bernoulli_logits_draw)
DIST_DEFINE_MEAN(bernoulli_logits, 1, bernoulli_logits_mean)
