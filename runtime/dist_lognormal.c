/* dist_lognormal.c — LogNormal(loc, scale): log x ~ Normal(loc, scale).
 * Log density, gradients, sampling, reparameterization. Support x > 0. */
#include "dist_common.h"

/* log p = -z^2/2 - log s - log x - log sqrt(2 pi),  z = (log x - mu)/s
 * d/dx = -(z/s + 1)/x,  d/dmu = z/s,  d/ds = (z^2 - 1)/s */
static double lognormal_elem(double x, const double *th, double *g)
{
    double mu = th[0], s = th[1];
    if (!(s > 0) || !isfinite(s) || !isfinite(mu))
        return NAN;
    if (!(x > 0) || x == INFINITY)
        return -INFINITY;
    double lx = log(x), z = (lx - mu) / s;
    if (g) {
        g[0] = -(z / s + 1.0) / x;
        g[1] = z / s;
        g[2] = (z * z - 1.0) / s;
    }
    return -0.5 * z * z - log(s) - lx - LOG_SQRT_2PI;
}

static double lognormal_mean(const double *th)
{
    return exp(th[0] + 0.5 * th[1] * th[1]);
}

/* x = exp(mu + s eps);  dx/dmu = x,  dx/ds = x eps */
static double lognormal_transform(const double *th, double eps, double y,
                                  double *dg)
{
    (void)y;
    double x = exp(th[0] + th[1] * eps);
    if (dg) {
        dg[0] = x;
        dg[1] = x * eps;
    }
    return x;
}

static double lognormal_draw(VlmRng *rng, const double *th)
{
    return lognormal_transform(th, vlm_rng_normal(rng), 0.0, NULL);
}

DIST_DEFINE_LOGP(lognormal, 2, true, lognormal_elem)
DIST_DEFINE_SAMPLE(lognormal, 2, lognormal_draw)
DIST_DEFINE_MEAN(lognormal, 2, lognormal_mean)
DIST_DEFINE_RSAMPLE(lognormal, 2, lognormal_transform)

void vlm_dist_lognormal_noise(VlmRng *rng, size_t n, float *eps)
{
    vlm_rng_normal_fill(rng, eps, n);
}
