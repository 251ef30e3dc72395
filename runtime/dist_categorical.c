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

/* A per-element log-density of class c under the parameter row p (K
 * floats); c is -1 for a value outside the support. With g not NULL it
 * also adds s * d/dp_k into g[k], and only where log p is finite. */
typedef double CatElemFn(const float *p, int K, int c, float *g, double s);

/* log p = l_c - logsumexp(l);  d/dl_k = [k = c] - softmax(l)_k */
static double cat_logits_elem(const float *l, int K, int c, float *g,
                              double s)
{
    double lse = cat_lse(l, K);
    if (isnan(lse))
        return NAN;
    if (c < 0)
        return -INFINITY;
    double lp = l[c] - lse;
    if (g && isfinite(lse) && isfinite(lp))
        for (int k = 0; k < K; k++)
            g[k] += (float)(s * ((k == c) - exp(l[k] - lse)));
    return lp;
}

/* log p = log p_c;  d/dp_k = [k = c] / p_c */
static double cat_probs_elem(const float *p, int K, int c, float *g,
                             double s)
{
    (void)K;
    if (c < 0)
        return -INFINITY;
    if (g && p[c] > 0 && isfinite(p[c]))
        g[c] += (float)(s / p[c]);
    return log((double)p[c]);
}

/* out[r] = sum_i mask * log p(x | row), masked-out elements skipped. */
static inline void cat_logp_loop(int r0, int R, int n, int K, VlmIn x,
                                 const VlmIn *th, VlmIn mask, double *out,
                                 CatElemFn *f)
{
    for (int r = r0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            int c = cat_index(vin_at(x, r, i), K);
            s += m * f(cat_row(th[0], r, i, K), K, c, NULL, 0.0);
        }
        out[r] = s;
    }
}

/* dth[0] += dout[r] * mask * d log p / d row; class values get none. */
static inline void cat_logp_bwd_loop(int R, int n, int K, VlmIn x,
                                     const VlmIn *th, VlmIn mask,
                                     const float *dout, const VlmOut *dth,
                                     CatElemFn *f)
{
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
            int c = cat_index(vin_at(x, r, i), K);
            f(cat_row(th[0], r, i, K), K, c, cat_grad_row(d, r, i, K), w * m);
        }
    }
}

/* Rows on the pool (dist_common.h): each row's sum as in one pass. */
typedef struct CatRowsJob {
    DistRowsJob d;
    int K;
} CatRowsJob;

static void cat_logits_rows(void *ctx, size_t lo, size_t hi)
{
    const CatRowsJob *j = ctx;
    cat_logp_loop((int)lo, (int)hi, j->d.n, j->K, j->d.x, j->d.th, j->d.mask, j->d.out,
                  cat_logits_elem);
}

static void cat_probs_rows(void *ctx, size_t lo, size_t hi)
{
    const CatRowsJob *j = ctx;
    cat_logp_loop((int)lo, (int)hi, j->d.n, j->K, j->d.x, j->d.th, j->d.mask, j->d.out,
                  cat_probs_elem);
}

void vlm_dist_categorical_logits_logp(int R, int n, int K, VlmIn x,
                                      const VlmIn *th, VlmIn mask,
                                      double *out)
{
    CatRowsJob j = {{n, x, mask, th, out, NULL, {0}, NULL}, K};
    dist_rows(R, n * K, true, cat_logits_rows, &j);
}

/* Logits shared by every row (a global parameter: rs == 0 for them and
 * their gradient): the softmax once per element, then per class the sum
 * of the rows' weights, d/dl_k = sum_r s_r ([c_r = k] - softmax_k), in
 * double; rows whose class is out of range add nothing (log p = -inf),
 * as in the per-row loop. */
static bool cat_logits_bwd_shared(int R, int n, int K, VlmIn x, const VlmIn *th, VlmIn mask,
                                  const float *dout, VlmOut d)
{
    if (th[0].rs != 0 || d.rs != 0 || K > 256)
        return false;
    double acc[256], sm[256];
    for (int i = 0; i < n; i++) {
        const float *l = cat_row(th[0], 0, i, K);
        double lse = cat_lse(l, K);
        if (!isfinite(lse))
            continue;   /* NaN or no class with mass: no gradient */
        for (int k = 0; k < K; k++) {
            sm[k] = exp(l[k] - lse);
            acc[k] = 0.0;
        }
        double tot = 0.0;
        for (int r = 0; r < R; r++) {
            double w = dout[r], m = mask_at(mask, r, i);
            int c = cat_index(vin_at(x, r, i), K);
            if (w == 0 || m == 0 || c < 0 || !isfinite(l[c] - lse))
                continue;
            acc[c] += w * m;
            tot += w * m;
        }
        float *g = cat_grad_row(d, 0, i, K);
        for (int k = 0; k < K; k++)
            g[k] += (float)(acc[k] - tot * sm[k]);
    }
    return true;
}

void vlm_dist_categorical_logits_logp_bwd(int R, int n, int K, VlmIn x,
                                          const VlmIn *th, VlmIn mask,
                                          const float *dout, VlmOut dx,
                                          const VlmOut *dth)
{
    (void)dx;
    VlmOut d = dth_get(dth, 0);
    if (d.p && cat_logits_bwd_shared(R, n, K, x, th, mask, dout, d))
        return;
    cat_logp_bwd_loop(R, n, K, x, th, mask, dout, dth, cat_logits_elem);
}

void vlm_dist_categorical_probs_logp(int R, int n, int K, VlmIn x,
                                     const VlmIn *th, VlmIn mask, double *out)
{
    CatRowsJob j = {{n, x, mask, th, out, NULL, {0}, NULL}, K};
    dist_rows(R, n * K, true, cat_probs_rows, &j);
}

void vlm_dist_categorical_probs_logp_bwd(int R, int n, int K, VlmIn x,
                                         const VlmIn *th, VlmIn mask,
                                         const float *dout, VlmOut dx,
                                         const VlmOut *dth)
{
    (void)dx;
    cat_logp_bwd_loop(R, n, K, x, th, mask, dout, dth, cat_probs_elem);
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
