/* dist_uniform.c — Uniform(low, high): log density, gradients, sampling,
 * reparameterization. Support is the closed interval [low, high]; finite
 * low < high. */
#include "dist_common.h"

/* log p = -log(h - l) on [l, h];  d/dx = 0,  d/dl = 1/(h - l) = -d/dh */
static double uniform_elem(double x, const double *th, double *g)
{
    double lo = th[0], hi = th[1];
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return NAN;
    if (!(x >= lo && x <= hi))
        return -INFINITY;
    double w = hi - lo;
    if (g) {
        g[0] = 0.0;
        g[1] = 1.0 / w;
        g[2] = -1.0 / w;
    }
    return -log(w);
}

static double uniform_mean(const double *th) { return 0.5 * (th[0] + th[1]); }

/* x = l + (h - l) u;  dx/dl = 1 - u,  dx/dh = u */
static double uniform_transform(const double *th, double eps, double y,
                                double *dg)
{
    (void)y;
    if (dg) {
        dg[0] = 1.0 - eps;
        dg[1] = eps;
    }
    return th[0] + (th[1] - th[0]) * eps;
}

static double uniform_draw(VlmRng *rng, const double *th)
{
    return uniform_transform(th, vlm_rng_uniform(rng), 0.0, NULL);
}

DIST_DEFINE_LOGP(uniform, 2, true, uniform_elem)
DIST_DEFINE_SAMPLE(uniform, 2, uniform_draw)
DIST_DEFINE_MEAN(uniform, 2, uniform_mean)
DIST_DEFINE_RSAMPLE(uniform, 2, uniform_transform)

void vlm_dist_uniform_noise(VlmRng *rng, size_t n, float *eps)
{
    vlm_rng_uniform_fill(rng, eps, n);
}
