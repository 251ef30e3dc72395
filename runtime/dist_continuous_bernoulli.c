/* dist_continuous_bernoulli.c — Continuous Bernoulli (Loaiza-Ganem and
 * Cunningham 2019) on [0, 1], by probs or by logits:
 *   p(x | l) = C(l) sigmoid(l)^x (1 - sigmoid(l))^(1 - x),
 *   C(l) = l / tanh(l/2)  (= 2 at l = 0),
 * i.e. an exponential family exp(l x) / ((e^l - 1)/l) on [0, 1].
 * Everything is computed from the logit, where log C is even and smooth;
 * a Taylor window around l = 0 (probs near 1/2) replaces the 0/0 form. */
#include "dist_common.h"

#include <float.h>

#define CB_TAYLOR 1e-3

/* log C(l) and d/dl log C(l) = 1/l - 1/sinh(l). Near 0:
 * log C = log 2 + l^2/12 - 7 l^4/1440,  d/dl = l/6 - 7 l^3/360. */
static double cb_log_norm(double l, double *dl)
{
    double a = fabs(l);
    if (a < CB_TAYLOR) {
        double l2 = l * l;
        if (dl)
            *dl = l / 6.0 - 7.0 * l * l2 / 360.0;
        return M_LN2 + l2 / 12.0 - 7.0 * l2 * l2 / 1440.0;
    }
    if (dl)
        *dl = 1.0 / l - 1.0 / sinh(l);
    return log(a) - log(tanh(0.5 * a));
}

/* log p = x l - softplus(l) + log C(l), x in [0, 1]
 * d/dx = l,  d/dl = x - sigmoid(l) + (log C)'(l) */
static double cb_logits_elem(double x, const double *th, double *g)
{
    double l = th[0];
    if (!isfinite(l))
        return NAN;
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    double dc, lc = cb_log_norm(l, g ? &dc : NULL);
    if (g) {
        g[0] = l;
        g[1] = x - sigmoid(l) + dc;
    }
    return x * l - vlm_log1pexp(l) + lc;
}

/* probs are clamped to [eps, 1 - eps] (eps = FLT_EPSILON, as PyTorch
 * does) since p = 0 or 1 has no density; outside the clamp the gradient
 * in p is 0. With l = logit(p), dl/dp = 1/(p (1 - p)). */
static double cb_clamp(double p, bool *clamped)
{
    *clamped = p < FLT_EPSILON || p > 1.0 - FLT_EPSILON;
    return p < FLT_EPSILON ? FLT_EPSILON
         : p > 1.0 - FLT_EPSILON ? 1.0 - FLT_EPSILON : p;
}

static double cb_probs_elem(double x, const double *th, double *g)
{
    if (!(th[0] >= 0 && th[0] <= 1))
        return NAN;
    bool clamped;
    double p = cb_clamp(th[0], &clamped);
    double l = log(p) - log1p(-p);
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    double dc, lc = cb_log_norm(l, g ? &dc : NULL);
    if (g) {
        g[0] = l;
        g[1] = clamped ? 0.0 : (x - p + dc) / (p * (1.0 - p));
    }
    return x * log(p) + (1.0 - x) * log1p(-p) + lc;
}

/* Inverse CDF: F(x) = (e^(l x) - 1)/(e^l - 1), so
 * x = log1p(u expm1(l))/l, or 1 + log(u + (1 - u) e^-l)/l for l >= 1
 * (no overflow); x = u at l = 0. */
static double cb_draw_logit(VlmRng *rng, double l)
{
    double u = vlm_rng_uniform(rng);
    if (l == 0)
        return u;
    if (l >= 1.0)
        return 1.0 + log(u + (1.0 - u) * exp(-l)) / l;
    return log1p(u * expm1(l)) / l;
}

/* E[x] = 1 + 1/expm1(l) - 1/l;  near 0: 1/2 + l/12 - l^3/720 */
static double cb_mean_logit(double l)
{
    if (fabs(l) < CB_TAYLOR)
        return 0.5 + l / 12.0 - l * l * l / 720.0;
    return 1.0 + 1.0 / expm1(l) - 1.0 / l;
}

static double cb_logit_of_probs(double p)
{
    bool clamped;
    p = cb_clamp(p, &clamped);
    return log(p) - log1p(-p);
}

static double cb_logits_draw(VlmRng *rng, const double *th)
{
    return cb_draw_logit(rng, th[0]);
}

static double cb_probs_draw(VlmRng *rng, const double *th)
{
    return cb_draw_logit(rng, cb_logit_of_probs(th[0]));
}

static double cb_logits_mean(const double *th) { return cb_mean_logit(th[0]); }

static double cb_probs_mean(const double *th)
{
    return cb_mean_logit(cb_logit_of_probs(th[0]));
}

DIST_DEFINE_LOGP(continuous_bernoulli_logits, 1, true, cb_logits_elem)
DIST_DEFINE_SAMPLE(continuous_bernoulli_logits, 1, cb_logits_draw)
DIST_DEFINE_MEAN(continuous_bernoulli_logits, 1, cb_logits_mean)
DIST_DEFINE_LOGP(continuous_bernoulli_probs, 1, true, cb_probs_elem)
DIST_DEFINE_SAMPLE(continuous_bernoulli_probs, 1, cb_probs_draw)
DIST_DEFINE_MEAN(continuous_bernoulli_probs, 1, cb_probs_mean)
