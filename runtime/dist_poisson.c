/* dist_poisson.c — Poisson(rate): log mass, gradient in the rate,
 * sampling and mean. Values are non-negative integers stored as floats;
 * rate = 0 is allowed (all mass at 0); finite rate >= 0. */
#include "dist_common.h"

/* log p = x log l - l - lgamma(x + 1);  d/dl = x/l - 1 (no value gradient) */
static double poisson_elem(double x, const double *th, double *g)
{
    double l = th[0];
    if (!(l >= 0) || !isfinite(l))
        return NAN;
    if (!(x >= 0) || x == INFINITY || x != floor(x))
        return -INFINITY;
    if (g) {
        g[0] = 0.0;
        g[1] = (x == 0 ? 0.0 : x / l) - 1.0;
    }
    return xlogy(x, l) - l - lgamma(x + 1.0);
}

static double poisson_draw(VlmRng *rng, const double *th)
{
    return (double)vlm_rng_poisson(rng, th[0]);
}

static double poisson_mean(const double *th) { return th[0]; }

DIST_DEFINE_LOGP(poisson, 1, false, poisson_elem)
DIST_DEFINE_SAMPLE(poisson, 1, poisson_draw)
DIST_DEFINE_MEAN(poisson, 1, poisson_mean)
