/* dist_bernoulli.c — Bernoulli in two parameterizations, probs and logits.
 * Values in {0, 1}; any value in [0, 1] is also accepted and scored by the
 * same formula (the cross-entropy relaxation used for grey-level images),
 * with its gradient; values outside [0, 1] give -inf. */
/* the logits loops are the output layer of image models: vectorize them */
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#include "dist_common.h"
#include "fastmath.h"

#include <stdatomic.h>

/* log p = x log p + (1 - x) log(1 - p), with 0 log 0 = 0; p in [0, 1].
 * d/dx = log p - log(1 - p),  d/dp = x/p - (1 - x)/(1 - p) */
static double bernoulli_probs_elem(double x, const double *th, double *g)
{
    double p = th[0];
    if (!(p >= 0 && p <= 1))
        return NAN;
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    if (g) {
        g[0] = log(p) - log1p(-p);
        g[1] = (x == 0 ? 0.0 : x / p) - (x == 1 ? 0.0 : (1.0 - x) / (1.0 - p));
    }
    return xlogy(x, p) + (x == 1 ? 0.0 : (1.0 - x) * log1p(-p));
}

/* log p = x l - softplus(l);  d/dx = l,  d/dl = x - sigmoid(l).
 * l = +-inf are the degenerate limits p = 1, 0. */
static double bernoulli_logits_elem(double x, const double *th, double *g)
{
    double l = th[0];
    if (isnan(l))
        return NAN;
    if (!(x >= 0 && x <= 1))
        return -INFINITY;
    if (g) {
        g[0] = isinf(l) ? 0.0 : l;
        g[1] = x - sigmoid(l);
    }
    if (isinf(l))
        return (l > 0 ? x == 1 : x == 0) ? 0.0 : -INFINITY;
    return x * l - vlm_log1pexp(l);
}

static double bernoulli_probs_draw(VlmRng *rng, const double *th)
{
    return vlm_rng_bernoulli(rng, th[0]);
}

static double bernoulli_logits_draw(VlmRng *rng, const double *th)
{
    return vlm_rng_bernoulli(rng, sigmoid(th[0]));
}

static double bernoulli_probs_mean(const double *th) { return th[0]; }
static double bernoulli_logits_mean(const double *th) { return sigmoid(th[0]); }

DIST_DEFINE_LOGP(bernoulli_probs, 1, true, bernoulli_probs_elem)
DIST_DEFINE_SAMPLE(bernoulli_probs, 1, bernoulli_probs_draw)
DIST_DEFINE_MEAN(bernoulli_probs, 1, bernoulli_probs_mean)
/* The logits form is the output layer of every image VAE, so it has its
 * own loops: one exp per element (softplus and sigmoid share e^-|l|), and
 * no log at all in the backward pass. Infinite logits and values outside
 * [0, 1] fall back to the element function. */
/* Fast path: value and logits contiguous rows (rs = n, es = 1), no mask,
 * every logit finite and every value in [0, 1] (checked per row, the row
 * falls back otherwise), with the vectorizable exp/log of fastmath.h (no
 * libm call per element). */
static bool logits_row_ok(const float *xr, const float *lr, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad |= !(xr[i] >= 0.0f) | !(xr[i] <= 1.0f) | !(fabsf(lr[i]) <= 3.0e38f);
    return !bad;
}

static bool logits_contiguous(int n, VlmIn x, VlmIn l, VlmIn mask)
{
    return !mask.p && x.rs == n && x.es == 1 && l.rs == n && l.es == 1;
}

// x, l (R,n) -> out (R): sum_i x l - softplus(l)
static bool logits_logp_row(const float *xr, const float *lr, int n, double *out)
{
    /* softplus(l) = max(l, 0) + log(1 + e^-|l|): the log term, in [0,
     * ln 2], in float 8 lanes wide (absolute error <= 1.2e-7, below the
     * rounding of the float logit itself once |l| > 2); the rest in
     * double. Summed over 8 fixed double accumulators, so the row does
     * not wait on one serial chain of additions and is the same every
     * run. The row check of logits_row_ok rides along. */
    double acc[8] = {0};
    float sp[256];
    int bad = 0;
    for (int i0 = 0; i0 < n; i0 += 256) {
        int len = n - i0 < 256 ? n - i0 : 256;
        const float *xb = xr + i0, *lb = lr + i0;
        for (int i = 0; i < len; i++) {
            bad |= !(xb[i] >= 0.0f) | !(xb[i] <= 1.0f) | !(fabsf(lb[i]) <= 3.0e38f);
            sp[i] = log1p_unit(exp_nonpos(-fabsf(lb[i])));
        }
        int i = 0;
        for (; i + 8 <= len; i += 8)
            for (int k = 0; k < 8; k++) {
                double l = lb[i + k];
                acc[k] += (double)xb[i + k] * l - (l > 0.0 ? l : 0.0) - sp[i + k];
            }
        for (; i < len; i++) {
            double l = lb[i];
            acc[i & 7] += (double)xb[i] * l - (l > 0.0 ? l : 0.0) - sp[i];
        }
    }
    if (bad)
        return false;
    *out = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    return true;
}

typedef struct LogitsJob {
    int n;
    const float *x, *l;
    double *out;
    atomic_bool ok;       /* every row took the fast path */
} LogitsJob;

static void logits_logp_rows(void *ctx, size_t lo, size_t hi)
{
    LogitsJob *j = ctx;
    for (size_t r = lo; r < hi; r++)
        if (!logits_logp_row(j->x + r * j->n, j->l + r * j->n, j->n, &j->out[r]))
            atomic_store_explicit(&j->ok, false, memory_order_relaxed);
}

void vlm_dist_bernoulli_logits_logp(int R, int n, int K, VlmIn x,
                                    const VlmIn *th, VlmIn mask, double *out)
{
    (void)K;
    bool fast = logits_contiguous(n, x, th[0], mask);
    if (fast) {
        /* rows in parallel; rows off the fast path are done below */
        LogitsJob j = {n, x.p, th[0].p, out, true};
        vlm_parallel_for((size_t)R, 16, logits_logp_rows, &j);
        if (atomic_load(&j.ok))
            return;
    }
    for (int r = 0; r < R; r++) {
        /* rows that passed the check were written by the parallel pass */
        if (fast && logits_row_ok(x.p + (size_t)r * n, th[0].p + (size_t)r * n, n))
            continue;
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            double xv = vin_at(x, r, i), l = vin_at(th[0], r, i), lp;
            if (isfinite(l) && xv >= 0 && xv <= 1)
                /* log(1 + e) rather than log1p: the absolute error (1e-16)
                 * is all a summed log-likelihood sees, at half the cost */
                lp = xv * l - (l > 0 ? l : 0.0) - log(1.0 + exp(-fabs(l)));
            else
                lp = bernoulli_logits_elem(xv, &l, NULL);
            s += m * lp;
        }
        out[r] = s;
    }
}

/* One row of the backward pass in double, for any views, mask and
 * values: d/dx = l, d/dl = x - sigmoid(l), out-of-support elements none. */
static void logits_bwd_row(int r, int n, VlmIn x, VlmIn lv, VlmIn mask, double w,
                           VlmOut dx, VlmOut dl)
{
    for (int i = 0; i < n; i++) {
        double m = mask_at(mask, r, i);
        if (m == 0)
            continue;
        double xv = vin_at(x, r, i), l = vin_at(lv, r, i);
        double g[2];
        if (isfinite(l) && xv >= 0 && xv <= 1) {
            double e = exp(-fabs(l));
            g[0] = l;
            g[1] = xv - (l >= 0 ? 1.0 : e) / (1.0 + e);
        } else if (!isfinite(bernoulli_logits_elem(xv, &l, g))) {
            continue;
        }
        vout_add(dx, r, i, w * m * g[0]);
        vout_add(dl, r, i, w * m * g[1]);
    }
}

typedef struct LogitsBwdJob {
    int n;
    VlmIn x, l, mask;
    const float *dout;
    VlmOut dx, dl;
    bool fast;            /* contiguous, no mask, no dx: float rows */
} LogitsBwdJob;

/* Rows in parallel (each row is written by one slice): a row whose values
 * and logits pass the check takes the float loop, any other the double
 * one. */
static void logits_bwd_rows(void *ctx, size_t lo, size_t hi)
{
    const LogitsBwdJob *j = ctx;
    for (size_t r = lo; r < hi; r++) {
        float w = j->dout[r];
        if (w == 0)
            continue;
        if (!j->fast || !logits_row_ok(j->x.p + r * j->n, j->l.p + r * j->n, j->n)) {
            logits_bwd_row((int)r, j->n, j->x, j->l, j->mask, w, j->dx, j->dl);
            continue;
        }
        const float *xr = j->x.p + r * j->n, *lr = j->l.p + r * j->n;
        float *d = j->dl.p + r * j->n;
        for (int i = 0; i < j->n; i++)
            d[i] += w * (xr[i] - sigmoidf_(lr[i]));
    }
}

void vlm_dist_bernoulli_logits_logp_bwd(int R, int n, int K, VlmIn x,
                                        const VlmIn *th, VlmIn mask,
                                        const float *dout, VlmOut dx,
                                        const VlmOut *dth)
{
    (void)K;
    VlmOut dl = dth_get(dth, 0);
    if (!dx.p && !dl.p)
        return;
    LogitsBwdJob j = {n, x, th[0], mask, dout, dx, dl,
                      logits_contiguous(n, x, th[0], mask) && !dx.p && dl.rs == n && dl.es == 1};
    /* rows are independent only when each row has its own gradient row */
    if (j.fast)
        vlm_parallel_for((size_t)R, 16, logits_bwd_rows, &j);
    else
        logits_bwd_rows(&j, 0, (size_t)R);
}
DIST_DEFINE_SAMPLE(bernoulli_logits, 1, bernoulli_logits_draw)
DIST_DEFINE_MEAN(bernoulli_logits, 1, bernoulli_logits_mean)
