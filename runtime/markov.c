/* markov.c — the kernels of a discrete Markov chain z_0..z_{T-1} over K
 * states (`Markov(init, trans)`): its parameters in log space, the forward
 * and backward recursions of one item (log Z = log sum over the K^T paths,
 * the posterior marginals and the gradients), the Viterbi path, ancestral
 * sampling, and the per-step log densities of the emissions that read the
 * chain. Everything in double, in log space. It does not know about
 * batches of items or models (infer_markov.c does). */
#include "vlm.h"

#include <math.h>
#include <string.h>

/* log sum_i exp(a[i] + b[i * stride]): one column of a transition, or
 * with a NULL (zeros) a plain log-sum-exp; -inf when every term is -inf,
 * NaN if any is. libm's exp, unlike vlm_logsumexp's approximation. */
static double lse_sum(int K, const double *a, const double *b, ptrdiff_t stride)
{
    double m = -INFINITY;
    for (int i = 0; i < K; i++) {
        double v = (a ? a[i] : 0.0) + b[i * stride];
        if (isnan(v))
            return NAN;
        if (v > m)
            m = v;
    }
    if (m == -INFINITY || m == INFINITY)
        return m;
    double s = 0;
    for (int i = 0; i < K; i++)
        s += exp((a ? a[i] : 0.0) + b[i * stride] - m);
    return m + log(s);
}

/* log sum_k exp(x[k]) */
static double lse(int K, const double *x) { return lse_sum(K, NULL, x, 1); }

// init (K), trans (K,K) probs or logits -> li (K), lA (K,K) log-probs
void vlm_markov_log_params(int K, bool logits, const float *init,
                           const float *trans, double *li, double *lA)
{
    for (int i = 0; i <= K; i++) {   /* row K is init, rows 0..K-1 trans */
        const float *src = i < K ? trans + (size_t)i * K : init;
        double *dst = i < K ? lA + (size_t)i * K : li;
        for (int k = 0; k < K; k++)
            dst[k] = logits ? (double)src[k] : log((double)src[k]);
        if (logits) {
            double z = lse(K, dst);
            for (int k = 0; k < K; k++)
                dst[k] -= z;
        }
    }
}

// dPi (K), dPA (K,K): d/d probs -> dinit, dtrans (+=, float) of the raw
// parameters: probs as they are; logits through the log-softmax,
// d/da_k = g_k - p_k sum_j g_j with g = p * dP
void vlm_markov_params_bwd(int K, bool logits, const double *li,
                           const double *lA, const double *dPi,
                           const double *dPA, float *dinit, float *dtrans)
{
    for (int i = 0; i <= K; i++) {
        const double *l = i < K ? lA + (size_t)i * K : li;
        const double *dp = i < K ? dPA + (size_t)i * K : dPi;
        float *d = i < K ? dtrans : dinit;
        if (!d)
            continue;
        if (i < K)
            d += (size_t)i * K;
        if (!logits) {
            for (int k = 0; k < K; k++)
                d[k] += (float)dp[k];
            continue;
        }
        double sg = 0;
        for (int k = 0; k < K; k++)
            sg += exp(l[k]) * dp[k];
        for (int k = 0; k < K; k++) {
            double p = exp(l[k]);
            d[k] += (float)(p * dp[k] - p * sg);
        }
    }
}

// alpha (T,K): alpha_t(k) = log p(x_0..x_t, z_t = k); returns log Z
double vlm_markov_forward(int T, int K, const double *li, const double *lA,
                          const double *em, double *alpha)
{
    for (int k = 0; k < K; k++)
        alpha[k] = li[k] + em[k];
    for (int t = 1; t < T; t++) {
        const double *prev = alpha + (size_t)(t - 1) * K;
        for (int j = 0; j < K; j++)
            alpha[(size_t)t * K + j] = em[(size_t)t * K + j] + lse_sum(K, prev, lA + j, K);
    }
    return lse(K, alpha + (size_t)(T - 1) * K);
}

// beta (T,K): beta_t(i) = log p(x_{t+1}..x_{T-1} | z_t = i)
void vlm_markov_backward(int T, int K, const double *lA, const double *em,
                         double *beta, double *work)
{
    for (int k = 0; k < K; k++)
        beta[(size_t)(T - 1) * K + k] = 0;
    for (int t = T - 2; t >= 0; t--) {
        /* work (K) = em[t+1][j] + beta_{t+1}(j) */
        for (int j = 0; j < K; j++)
            work[j] = em[(size_t)(t + 1) * K + j] + beta[(size_t)(t + 1) * K + j];
        for (int i = 0; i < K; i++)
            beta[(size_t)t * K + i] = lse_sum(K, work, lA + (size_t)i * K, 1);
    }
}

// gamma (T,K) = p(z_t = k | x) = d log Z / d em[t][k]; dPi (K) += c d log Z
// / d init_k and dPA (K,K) += c d log Z / d trans_ij, derivatives with
// respect to the probabilities (finite also where a probability is 0)
void vlm_markov_grad(int T, int K, const double *em, const double *alpha,
                     const double *beta, double logz, double c,
                     double *gamma, double *dPi, double *dPA)
{
    bool ok = isfinite(logz);
    for (size_t i = 0; i < (size_t)T * K; i++)
        gamma[i] = ok ? exp(alpha[i] + beta[i] - logz) : 0;
    if (!ok || c == 0)
        return;
    if (dPi)
        for (int k = 0; k < K; k++)
            dPi[k] += c * exp(em[k] + beta[k] - logz);
    if (dPA)
        for (int t = 1; t < T; t++) {
            const double *a = alpha + (size_t)(t - 1) * K;
            const double *e = em + (size_t)t * K, *b = beta + (size_t)t * K;
            for (int i = 0; i < K; i++) {
                if (a[i] == -INFINITY)
                    continue;
                for (int j = 0; j < K; j++)
                    dPA[(size_t)i * K + j] += c * exp(a[i] + e[j] + b[j] - logz);
            }
        }
}

// the most probable path (T) and its log joint probability; delta (T,K)
// and back (T,K) are work space; ties go to the smaller state
double vlm_markov_viterbi(int T, int K, const double *li, const double *lA,
                          const double *em, double *delta, int *back,
                          int *path)
{
    for (int k = 0; k < K; k++) {
        delta[k] = li[k] + em[k];
        back[k] = 0;
    }
    for (int t = 1; t < T; t++) {
        const double *prev = delta + (size_t)(t - 1) * K;
        for (int j = 0; j < K; j++) {
            double best = -INFINITY;
            int arg = 0;
            for (int i = 0; i < K; i++) {
                double v = prev[i] + lA[(size_t)i * K + j];
                if (v > best) {
                    best = v;
                    arg = i;
                }
            }
            delta[(size_t)t * K + j] = best + em[(size_t)t * K + j];
            back[(size_t)t * K + j] = arg;
        }
    }
    const double *last = delta + (size_t)(T - 1) * K;
    int z = 0;
    for (int k = 1; k < K; k++)
        if (last[k] > last[z])
            z = k;
    double best = last[z];
    for (int t = T - 1; t >= 0; t--) {
        path[t] = z;
        z = back[(size_t)t * K + z];
    }
    return best;
}

/* One draw from the K weights w (any scale, not all zero); the last
 * positive one when rounding leaves u past the total. */
static int draw(VlmRng *rng, int K, const double *w)
{
    double tot = 0;
    for (int k = 0; k < K; k++)
        tot += w[k];
    double u = vlm_rng_uniform(rng) * tot, acc = 0;
    int last = 0;
    for (int k = 0; k < K; k++) {
        if (w[k] <= 0)
            continue;
        last = k;
        acc += w[k];
        if (u < acc)
            return k;
    }
    return last;
}

/* Paths of R chains of n steps: th[0] init (K) and th[1] trans (K,K) per
 * row (rs == 0: one chain for every row), element k at p[r*rs + k*es]. */
static void markov_sample(VlmRng *rng, int R, int n, int K, const VlmIn *th,
                          float *out, bool logits)
{
    double w[K > 0 ? K : 1], lg[K > 0 ? K : 1];
    for (int r = 0; r < R; r++) {
        const float *ip = th[0].p + (ptrdiff_t)r * th[0].rs;
        const float *tp = th[1].p + (ptrdiff_t)r * th[1].rs;
        int z = -1;
        for (int t = 0; t < n; t++) {
            const float *p = t == 0 ? ip : tp;
            ptrdiff_t es = t == 0 ? th[0].es : th[1].es;
            ptrdiff_t off = t == 0 ? 0 : (ptrdiff_t)z * K;
            for (int k = 0; k < K; k++)
                lg[k] = p[(off + k) * es];
            if (logits) {
                double z0 = lse(K, lg);
                for (int k = 0; k < K; k++)
                    w[k] = exp(lg[k] - z0);
            } else {
                memcpy(w, lg, sizeof w);
            }
            z = draw(rng, K, w);
            out[(size_t)r * n + t] = (float)z;
        }
    }
}

void vlm_dist_markov_probs_sample(VlmRng *rng, int R, int n, int K,
                                  const VlmIn *th, float *out)
{
    markov_sample(rng, R, n, K, th, out, false);
}

void vlm_dist_markov_logits_sample(VlmRng *rng, int R, int n, int K,
                                   const VlmIn *th, float *out)
{
    markov_sample(rng, R, n, K, th, out, true);
}

/* A view moved to the first element of step t (n elements per step; a
 * parameter view holds K values per element). NULL stays NULL. */
static VlmIn step_in(VlmIn v, int t, int n, int K)
{
    if (v.p)
        v.p += (ptrdiff_t)t * n * v.es * K;
    return v;
}

static VlmOut step_out(VlmOut v, int t, int n, int K)
{
    if (v.p)
        v.p += (ptrdiff_t)t * n * v.es * K;
    return v;
}

// x (R, T*n) -> out (T, R): the log density of each step of each row
void vlm_logp_steps(VlmLogpFn *f, int R, int T, int n, int K, VlmIn x,
                    const VlmIn *th, int n_th, VlmIn mask, double *out)
{
    VlmIn tt[4];
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < n_th && j < 4; j++)
            tt[j] = step_in(th[j], t, n, K);
        f(R, n, K, step_in(x, t, n, 1), tt, step_in(mask, t, n, 1),
          out + (size_t)t * R);
    }
}

// dout (T, R): the coefficient of each step's log density
void vlm_logp_steps_bwd(VlmLogpBwdFn *f, int R, int T, int n, int K,
                        VlmIn x, const VlmIn *th, int n_th, VlmIn mask,
                        const float *dout, VlmOut dx, const VlmOut *dth)
{
    VlmIn tt[4];
    VlmOut dt[4];
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < n_th && j < 4; j++) {
            tt[j] = step_in(th[j], t, n, K);
            dt[j] = step_out(dth[j], t, n, K);
        }
        f(R, n, K, step_in(x, t, n, 1), tt, step_in(mask, t, n, 1),
          dout + (size_t)t * R, step_out(dx, t, n, 1), dt);
    }
}
