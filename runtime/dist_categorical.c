/* dist_categorical.c — Categorical over K classes, by probs or by logits.
 * The parameter view addresses element i's class k at p[r*rs + i*es*K + k];
 * values are class indices 0..K-1 stored as floats (anything else: -inf).
 * probs are used as given (assumed normalised: log p_x, no renormalising);
 * logits are normalised by a stable log-softmax (-inf logits allowed). */
#include "dist_common.h"

static inline const float *cat_row(VlmIn v, int r, int i, int K)
{
    return v.p + (ptrdiff_t)r * v.rs + (ptrdiff_t)i * v.es * K;
}

static inline float *cat_grad_row(VlmOut v, int r, int i, int K)
{
    return v.p + (ptrdiff_t)r * v.rs + (ptrdiff_t)i * v.es * K;
}

/* The class index held by x, or -1 when x is not an integer in [0, K). */
static inline int cat_index(double x, int K)
{
    if (!(x >= 0 && x < K) || x != floor(x))
        return -1;
    return (int)x;
}

/* log-sum-exp of K floats in double; NaN if any is NaN or +inf. */
static double cat_lse(const float *l, int K)
{
    double m = -INFINITY;
    for (int k = 0; k < K; k++) {
        if (isnan(l[k]) || l[k] == INFINITY)
            return NAN;
        if (l[k] > m)
            m = l[k];
    }
    if (m == -INFINITY)
        return NAN; /* no class has mass */
    double s = 0.0;
    for (int k = 0; k < K; k++)
        s += exp(l[k] - m);
    return m + log(s);
}

/* log p = l_x - logsumexp(l) */
void vlm_dist_categorical_logits_logp(int R, int n, int K, VlmIn x,
                                      const VlmIn *th, VlmIn mask,
                                      double *out)
{
    for (int r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            const float *l = cat_row(th[0], r, i, K);
            double lse = cat_lse(l, K);
            int c = cat_index(vin_at(x, r, i), K);
            s += m * (isnan(lse) ? NAN : c < 0 ? -INFINITY : l[c] - lse);
        }
        out[r] = s;
    }
}

/* d/dl_k = [k = x] - softmax(l)_k */
void vlm_dist_categorical_logits_logp_bwd(int R, int n, int K, VlmIn x,
                                          const VlmIn *th, VlmIn mask,
                                          const float *dout, VlmOut dx,
                                          const VlmOut *dth)
{
    (void)dx;
    VlmOut d = dth_get(dth, 0);
    if (!d.p)
        return;
    for (int r = 0; r < R; r++) {
        double w = dout[r];
        if (w == 0)
            continue;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            const float *l = cat_row(th[0], r, i, K);
            int c = cat_index(vin_at(x, r, i), K);
            double lse = cat_lse(l, K);
            if (c < 0 || !isfinite(lse) || !isfinite(l[c] - lse))
                continue;
            float *g = cat_grad_row(d, r, i, K);
            for (int k = 0; k < K; k++)
                g[k] += (float)(w * m * ((k == c) - exp(l[k] - lse)));
        }
    }
}

/* log p = log p_x */
void vlm_dist_categorical_probs_logp(int R, int n, int K, VlmIn x,
                                     const VlmIn *th, VlmIn mask, double *out)
{
    for (int r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            const float *p = cat_row(th[0], r, i, K);
            int c = cat_index(vin_at(x, r, i), K);
            s += m * (c < 0 ? -INFINITY : log((double)p[c]));
        }
        out[r] = s;
    }
}

/* d/dp_k = [k = x] / p_x */
void vlm_dist_categorical_probs_logp_bwd(int R, int n, int K, VlmIn x,
                                         const VlmIn *th, VlmIn mask,
                                         const float *dout, VlmOut dx,
                                         const VlmOut *dth)
{
    (void)dx;
    VlmOut d = dth_get(dth, 0);
    if (!d.p)
        return;
    for (int r = 0; r < R; r++) {
        double w = dout[r];
        if (w == 0)
            continue;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            const float *p = cat_row(th[0], r, i, K);
            int c = cat_index(vin_at(x, r, i), K);
            if (c < 0 || !(p[c] > 0) || !isfinite(p[c]))
                continue;
            cat_grad_row(d, r, i, K)[c] += (float)(w * m / p[c]);
        }
    }
}

/* Inversion on the unnormalised weights exp(l_k - max l). */
void vlm_dist_categorical_logits_sample(VlmRng *rng, int R, int n, int K,
                                        const VlmIn *th, float *out)
{
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            const float *l = cat_row(th[0], r, i, K);
            double m = -INFINITY, s = 0.0;
            for (int k = 0; k < K; k++)
                if (l[k] > m)
                    m = l[k];
            for (int k = 0; k < K; k++)
                s += exp(l[k] - m);
            double u = vlm_rng_uniform(rng) * s, c = 0.0;
            int pick = K - 1;
            for (int k = 0; k < K; k++) {
                double e = exp(l[k] - m);
                c += e;
                if (e > 0)
                    pick = k;
                if (u < c)
                    break;
            }
            out[(size_t)r * n + i] = (float)pick;
        }
}

void vlm_dist_categorical_probs_sample(VlmRng *rng, int R, int n, int K,
                                       const VlmIn *th, float *out)
{
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++)
            out[(size_t)r * n + i] =
                (float)vlm_rng_categorical(rng, cat_row(th[0], r, i, K), K);
}

/* "Mean" of a categorical is its mode: the first argmax of the parameter
 * (the same class for probs and logits). */
static void cat_mode(int R, int n, int K, const VlmIn *th, float *out)
{
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            const float *p = cat_row(th[0], r, i, K);
            int best = 0;
            for (int k = 1; k < K; k++)
                if (p[k] > p[best])
                    best = k;
            out[(size_t)r * n + i] = (float)best;
        }
}

void vlm_dist_categorical_logits_mean(int R, int n, int K, const VlmIn *th,
                                      float *out)
{
    cat_mode(R, n, K, th, out);
}

void vlm_dist_categorical_probs_mean(int R, int n, int K, const VlmIn *th,
                                     float *out)
{
    cat_mode(R, n, K, th, out);
}
