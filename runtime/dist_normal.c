/* dist_normal.c — Normal(loc, scale): log density, gradients, sampling,
 * reparameterization, and the closed-form Normal KL and entropy.
 * Parameters must be finite with scale > 0; otherwise logp is NaN. */
#include "dist_common.h"

/* log N(x; mu, s) = -z^2/2 - log s - log sqrt(2 pi),  z = (x - mu)/s
 * d/dx = -z/s,  d/dmu = z/s,  d/ds = (z^2 - 1)/s */
static double normal_elem(double x, const double *th, double *g)
{
    double mu = th[0], s = th[1];
    if (!(s > 0) || !isfinite(s) || !isfinite(mu))
        return NAN;
    if (!isfinite(x))
        return -INFINITY;
    double z = (x - mu) / s;
    if (g) {
        g[0] = -z / s;
        g[1] = z / s;
        g[2] = (z * z - 1.0) / s;
    }
    return -0.5 * z * z - log(s) - LOG_SQRT_2PI;
}

static double normal_mean(const double *th) { return th[0]; }

/* x = mu + s eps;  dx/dmu = 1,  dx/ds = eps */
static double normal_transform(const double *th, double eps, double y,
                               double *dg)
{
    (void)y;
    if (dg) {
        dg[0] = 1.0;
        dg[1] = eps;
    }
    return th[0] + th[1] * eps;
}

DIST_DEFINE_LOGP(normal, 2, true, normal_elem)
DIST_DEFINE_MEAN(normal, 2, normal_mean)
DIST_DEFINE_RSAMPLE(normal, 2, normal_transform)

void vlm_dist_normal_noise(VlmRng *rng, size_t n, float *eps)
{
    vlm_rng_normal_fill(rng, eps, n);
}

/* Draw the standard normals in bulk, then shift and scale in place. */
void vlm_dist_normal_sample(VlmRng *rng, int R, int n, int K,
                            const VlmIn *th, float *out)
{
    (void)K;
    vlm_rng_normal_fill(rng, out, (size_t)R * n);
    vlm_dist_normal_rsample(R, n, th, out, out);
}

/* KL(N(mq, sq) || N(mp, sp)) = log(sp/sq) + (sq^2 + (mq - mp)^2)/(2 sp^2) - 1/2
 * summed over the n elements of each row. */
void vlm_dist_normal_kl(int R, int n, VlmIn lq, VlmIn sq, VlmIn lp,
                        VlmIn sp, double *out)
{
    for (int r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double d = vin_at(lq, r, i) - vin_at(lp, r, i);
            double a = vin_at(sq, r, i), b = vin_at(sp, r, i);
            s += log(b / a) + (a * a + d * d) / (2.0 * b * b) - 0.5;
        }
        out[r] = s;
    }
}

/* d/dmq = (mq - mp)/sp^2 = -d/dmp,  d/dsq = sq/sp^2 - 1/sq,
 * d/dsp = 1/sp - (sq^2 + (mq - mp)^2)/sp^3 */
void vlm_dist_normal_kl_bwd(int R, int n, VlmIn lq, VlmIn sq, VlmIn lp,
                            VlmIn sp, const float *dout, VlmOut dlq,
                            VlmOut dsq, VlmOut dlp, VlmOut dsp)
{
    for (int r = 0; r < R; r++) {
        double w = dout[r];
        if (w == 0)
            continue;
        for (int i = 0; i < n; i++) {
            double d = vin_at(lq, r, i) - vin_at(lp, r, i);
            double a = vin_at(sq, r, i), b = vin_at(sp, r, i);
            double ib2 = 1.0 / (b * b);
            vout_add(dlq, r, i, w * d * ib2);
            vout_add(dlp, r, i, -w * d * ib2);
            vout_add(dsq, r, i, w * (a * ib2 - 1.0 / a));
            vout_add(dsp, r, i, w * (1.0 / b - (a * a + d * d) * ib2 / b));
        }
    }
}

/* H(N(mu, s)) = 1/2 + log sqrt(2 pi) + log s, summed per row. */
void vlm_dist_normal_entropy(int R, int n, VlmIn scale, double *out)
{
    for (int r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += 0.5 + LOG_SQRT_2PI + log(vin_at(scale, r, i));
        out[r] = s;
    }
}
