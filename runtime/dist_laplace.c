/* dist_laplace.c — Laplace(loc, scale): log density, gradients, sampling
 * and inverse-CDF reparameterization. Finite loc, finite scale > 0. */
#include "dist_common.h"

/* log p = -|x - mu|/s - log(2 s)
 * d/dx = -sgn(x - mu)/s = -d/dmu,  d/ds = |x - mu|/s^2 - 1/s
 * (sgn(0) = 0: the subgradient at the kink) */
static double laplace_elem(double x, const double *th, double *g)
{
    double mu = th[0], s = th[1];
    if (!(s > 0) || !isfinite(s) || !isfinite(mu))
        return NAN;
    if (!isfinite(x))
        return -INFINITY;
    double d = x - mu, sg = (d > 0) - (d < 0);
    if (g) {
        g[0] = -sg / s;
        g[1] = sg / s;
        g[2] = fabs(d) / (s * s) - 1.0 / s;
    }
    return -fabs(d) / s - log(2.0 * s);
}

static double laplace_mean(const double *th) { return th[0]; }

/* u uniform in (0,1), v = u - 1/2: x = mu - s sgn(v) log(1 - 2|v|)
 * dx/dmu = 1,  dx/ds = -sgn(v) log(1 - 2|v|) */
static double laplace_transform(const double *th, double eps, double y,
                                double *dg)
{
    (void)y;
    double v = eps - 0.5, sg = (v > 0) - (v < 0);
    double e = -sg * log1p(-2.0 * fabs(v));
    if (dg) {
        dg[0] = 1.0;
        dg[1] = e;
    }
    return th[0] + th[1] * e;
}

static double laplace_draw(VlmRng *rng, const double *th)
{
    return laplace_transform(th, vlm_rng_uniform(rng), 0.0, NULL);
}

DIST_DEFINE_LOGP(laplace, 2, true, laplace_elem)
DIST_DEFINE_SAMPLE(laplace, 2, laplace_draw)
DIST_DEFINE_MEAN(laplace, 2, laplace_mean)
DIST_DEFINE_RSAMPLE(laplace, 2, laplace_transform)

void vlm_dist_laplace_noise(VlmRng *rng, size_t n, float *eps)
{
    vlm_rng_uniform_fill(rng, eps, n);
}
