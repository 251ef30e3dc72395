/* dist_exponential.c — Exponential(rate): log density, gradients,
 * sampling, reparameterization. Support x >= 0; finite rate > 0. */
#include "dist_common.h"

/* log p = log l - l x;  d/dx = -l,  d/dl = 1/l - x */
static double exponential_elem(double x, const double *th, double *g)
{
    double l = th[0];
    if (!(l > 0) || !isfinite(l))
        return NAN;
    if (!(x >= 0) || x == INFINITY)
        return -INFINITY;
    if (g) {
        g[0] = -l;
        g[1] = 1.0 / l - x;
    }
    return log(l) - l * x;
}

static double exponential_mean(const double *th) { return 1.0 / th[0]; }

/* x = -log(u)/l;  dx/dl = log(u)/l^2 = -x/l */
static double exponential_transform(const double *th, double eps, double y,
                                    double *dg)
{
    (void)y;
    double x = -log(eps) / th[0];
    if (dg)
        dg[0] = -x / th[0];
    return x;
}

static double exponential_draw(VlmRng *rng, const double *th)
{
    return exponential_transform(th, vlm_rng_uniform(rng), 0.0, NULL);
}

DIST_DEFINE_LOGP(exponential, 1, true, exponential_elem)
DIST_DEFINE_SAMPLE(exponential, 1, exponential_draw)
DIST_DEFINE_MEAN(exponential, 1, exponential_mean)
DIST_DEFINE_RSAMPLE(exponential, 1, exponential_transform)

void vlm_dist_exponential_noise(VlmRng *rng, size_t n, float *eps)
{
    vlm_rng_uniform_fill(rng, eps, n);
}
