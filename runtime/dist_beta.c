/* dist_beta.c — Beta(alpha, beta): log density, gradients, sampling (as a
 * ratio of gammas) and mean. No rsample: score-function only.
 * Support the closed [0, 1] (density limits at the ends); finite a, b > 0. */
#include "dist_common.h"

/* log p = (a - 1) log x + (b - 1) log(1 - x) - log B(a, b)
 * d/dx = (a - 1)/x - (b - 1)/(1 - x)
 * d/da = log x - psi(a) + psi(a + b),  d/db = log(1 - x) - psi(b) + psi(a + b) */
static double beta_elem(double x, const double *th, double *g)
{
    double a = th[0], b = th[1];
    if (!(a > 0) || !isfinite(a) || !(b > 0) || !isfinite(b))
        return NAN;
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    double lx = log(x), l1x = log1p(-x);
    if (g) {
        double pab = vlm_digamma(a + b);
        g[0] = (a == 1.0 ? 0.0 : (a - 1.0) / x) -
               (b == 1.0 ? 0.0 : (b - 1.0) / (1.0 - x));
        g[1] = lx - vlm_digamma(a) + pab;
        g[2] = l1x - vlm_digamma(b) + pab;
    }
    double lbeta = lgamma(a) + lgamma(b) - lgamma(a + b);
    return (a == 1.0 ? 0.0 : (a - 1.0) * lx) +
           (b == 1.0 ? 0.0 : (b - 1.0) * l1x) - lbeta;
}

/* A draw kept inside (0, 1) once it is a float: 1/(1 + e^(ly - lx)) rounds
 * to 1.0f for about 2e-4 of Beta(1, 0.5)'s draws, where log p is +inf for
 * b < 1 (and 0.0f for a < 1 near 0): a guide's log q would be infinite.
 * Both bounds are floats, so the conversion keeps them. */
static double beta_draw(VlmRng *rng, const double *th)
{
    double x = vlm_rng_beta(rng, th[0], th[1]);
    if (x < 0x1p-126)
        return 0x1p-126;
    if (x > 1.0 - 0x1p-24)
        return 1.0 - 0x1p-24;
    return x;   /* NaN (bad parameters) passes */
}

static double beta_mean(const double *th) { return th[0] / (th[0] + th[1]); }

DIST_DEFINE_LOGP(beta, 2, true, beta_elem)
DIST_DEFINE_SAMPLE(beta, 2, beta_draw)
DIST_DEFINE_MEAN(beta, 2, beta_mean)
