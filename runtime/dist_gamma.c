/* dist_gamma.c — Gamma(concentration, rate): log density, gradients,
 * sampling (Marsaglia-Tsang) and mean. No rsample: score-function only.
 * Support x >= 0 (the density's limit at 0); finite a > 0, b > 0. */
#include "dist_common.h"

/* log p = a log b + (a - 1) log x - b x - lgamma(a)
 * d/dx = (a - 1)/x - b,  d/da = log b + log x - psi(a),  d/db = a/b - x
 * At x = 0: -inf for a > 1, log b for a = 1, +inf for a < 1. */
static double gamma_elem(double x, const double *th, double *g)
{
    double a = th[0], b = th[1];
    if (!(a > 0) || !isfinite(a) || !(b > 0) || !isfinite(b))
        return NAN;
    if (!(x >= 0) || x == INFINITY)
        return -INFINITY;
    double lx = log(x);
    if (g) {
        g[0] = (a == 1.0 ? 0.0 : (a - 1.0) / x) - b;
        g[1] = log(b) + lx - vlm_digamma(a);
        g[2] = a / b - x;
    }
    return a * log(b) + xlogy(a - 1.0, x) - b * x - lgamma(a);
}

static double gamma_draw(VlmRng *rng, const double *th)
{
    return vlm_rng_gamma(rng, th[0]) / th[1];
}

static double gamma_mean(const double *th) { return th[0] / th[1]; }

DIST_DEFINE_LOGP(gamma, 2, true, gamma_elem)
DIST_DEFINE_SAMPLE(gamma, 2, gamma_draw)
DIST_DEFINE_MEAN(gamma, 2, gamma_mean)
