/* infer_em.c — exact EM for the conjugate Gaussian mixtures the compiler
 * recognises (desc->mixture): E-step and sufficient statistics over the
 * whole data set as double-precision GEMMs, the closed-form M-step with a
 * variance floor, and a seeded k-means++ / Lloyd initialisation. It keeps
 * its own double copy of (log pi, mu, var) and writes the model's raw
 * parameters back; the training loop and checkpoints are train.c's.
 *
 * Model: z ~ Categorical(pi), x | z = k ~ N(mu_k, diag(var_k)), x in R^D.
 * E-step, per item i (entries with mask m_id = 0 are marginalized out):
 *   log p(x_i, z = k) = log pi_k + sum_d m_id c_kd + sum_d m_id x_id mu_kd / var_kd
 *                       - 1/2 sum_d m_id x_id^2 / var_kd,
 *   c_kd = -1/2 log(2 pi var_kd) - 1/2 mu_kd^2 / var_kd,
 * so with A_i = [m x, m x^2, m] (3D columns; 2D without a mask, the c term
 * then a constant per k) and W = [mu/var; -1/(2 var); c] it is A @ W.
 * r_ik = softmax_k, log p(x_i) = logsumexp_k.
 * Statistics: N_k = sum_i r_ik, and R^T A = [S1, S2, N_kd] with
 * S1 = sum_i r_ik m x_i, S2 = sum_i r_ik m x_i^2, N_kd = sum_i r_ik m_id.
 * M-step (scikit-learn's, which adds reg_covar to every variance):
 *   pi_k = N_k / n,  mu_kd = S1_kd / N_kd,
 *   var_kd = max(S2_kd / N_kd - mu_kd^2, 0) + reg_covar,
 * with N_k, N_kd + 10 eps against empty components; a dimension no item
 * of component k observes keeps its mean and variance. */
#include "vlm.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EM_CHUNK 512   /* items per GEMM: A (512, 3D) stays in cache */

int vlm_em_init(VlmEm *em, const VlmModel *m, double reg_covar, VlmErr *err)
{
    memset(em, 0, sizeof *em);
    const VlmMixtureInfo *mi = m->desc->mixture;
    if (!mi) {
        vlm_err_set(err, "the model is not a conjugate Gaussian mixture: EM "
                    "does not apply");
        return -1;
    }
    const VlmParamInfo *w = &m->params[mi->weights], *mu = &m->params[mi->mu],
                       *sc = &m->params[mi->scale];
    long K = (long)w->count, D = m->vars[mi->observed].numel;
    if (K < 1 || D < 1 || mu->count != (size_t)(K * D) ||
        sc->count != (size_t)(K * D) || m->vars[mi->latent].support != K) {
        vlm_err_set(err, "internal: mixture table does not match the "
                    "parameters (K = %ld, D = %ld)", K, D);
        return -1;
    }
    em->mi = mi;
    em->K = (int)K;
    em->D = (int)D;
    em->reg_covar = reg_covar;
    size_t KD = (size_t)K * D;
    em->logpi = vlm_xcalloc((size_t)K, sizeof(double));
    em->mu = vlm_xcalloc(KD, sizeof(double));
    em->var = vlm_xcalloc(KD, sizeof(double));
    em->Nk = vlm_xcalloc((size_t)K, sizeof(double));
    em->T = vlm_xcalloc(3 * KD, sizeof(double));
    em->W = vlm_xcalloc(3 * KD, sizeof(double));
    em->A = vlm_xmalloc((size_t)EM_CHUNK * 3 * D * sizeof(double));
    em->L = vlm_xmalloc((size_t)EM_CHUNK * K * sizeof(double));
    em->resp = vlm_xmalloc((size_t)EM_CHUNK * K * sizeof(double));
    em->ll = vlm_xmalloc((size_t)EM_CHUNK * sizeof(double));
    em->Wf = vlm_xmalloc(3 * KD * sizeof(float));
    em->Tf = vlm_xmalloc(3 * KD * sizeof(float));
    em->fp32 = true;
    vlm_em_from_params(em, m);
    return 0;
}

void vlm_em_free(VlmEm *em)
{
    free(em->logpi); free(em->mu); free(em->var); free(em->Nk);
    free(em->T); free(em->W); free(em->A); free(em->L); free(em->resp);
    free(em->ll); free(em->Wf); free(em->Tf);
    memset(em, 0, sizeof *em);
}

/* log pi = log_softmax(logits); var from the raw scale param. */
void vlm_em_from_params(VlmEm *em, const VlmModel *m)
{
    const VlmMixtureInfo *mi = em->mi;
    int K = em->K;
    size_t KD = (size_t)K * em->D;
    const float *lg = m->w + m->params[mi->weights].offset;
    const float *mu = m->w + m->params[mi->mu].offset;
    const float *sc = m->w + m->params[mi->scale].offset;
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++)
        mx = fmax(mx, lg[k]);
    for (int k = 0; k < K; k++)
        s += exp(lg[k] - mx);
    for (int k = 0; k < K; k++)
        em->logpi[k] = lg[k] - mx - log(s);
    double f = mi->scale_kind == VLM_MIX_LOG_SD ? 2.0 : 1.0;
    for (size_t i = 0; i < KD; i++) {
        em->mu[i] = mu[i];
        em->var[i] = exp(f * sc[i]);
    }
}

/* The model's raw parameters: logits = log pi, mu, log sd or log var. */
void vlm_em_to_params(const VlmEm *em, VlmModel *m)
{
    const VlmMixtureInfo *mi = em->mi;
    size_t KD = (size_t)em->K * em->D;
    float *lg = m->w + m->params[mi->weights].offset;
    float *mu = m->w + m->params[mi->mu].offset;
    float *sc = m->w + m->params[mi->scale].offset;
    for (int k = 0; k < em->K; k++)
        lg[k] = (float)em->logpi[k];
    double f = mi->scale_kind == VLM_MIX_LOG_SD ? 0.5 : 1.0;
    for (size_t i = 0; i < KD; i++) {
        mu[i] = (float)em->mu[i];
        sc[i] = (float)(f * log(em->var[i]));
    }
}

/* W (P, K) from the current parameters; cst (K) the per-component
 * constant when there is no mask (P = 2D), else the c block (P = 3D). */
static void build_w(VlmEm *em, bool masked, double *cst)
{
    int K = em->K, D = em->D;
    double *W = em->W;
    for (int k = 0; k < K; k++) {
        double c = em->logpi[k];
        for (int d = 0; d < D; d++) {
            double mu = em->mu[(size_t)k * D + d], v = em->var[(size_t)k * D + d];
            double ckd = -0.5 * log(2 * M_PI * v) - 0.5 * mu * mu / v;
            W[(size_t)d * K + k] = mu / v;
            W[(size_t)(D + d) * K + k] = -0.5 / v;
            if (masked)
                W[(size_t)(2 * D + d) * K + k] = ckd;
            else
                c += ckd;
        }
        cst[k] = c;   /* masked: log pi only */
    }
}

/* A (n, P) = [m x, m x^2 (, m)] of items i0..i0+n in double. */
static void build_a(VlmEm *em, const VlmData *data, size_t i0, int n, int P)
{
    int D = em->D;
    for (int i = 0; i < n; i++) {
        const float *x = data->x + (i0 + i) * (size_t)D;
        double *a = em->A + (size_t)i * P;
        if (data->mask) {
            const float *mk = data->mask + (i0 + i) * (size_t)D;
            for (int d = 0; d < D; d++) {
                double v = mk[d] != 0 ? x[d] : 0.0;
                a[d] = v;
                a[D + d] = v * v;
                a[2 * D + d] = mk[d] != 0;
            }
        } else {
            for (int d = 0; d < D; d++) {
                double v = x[d];
                a[d] = v;
                a[D + d] = v * v;
            }
        }
    }
}

/* The same in float: A (n, P) and W (P, K) as floats. */
static void build_af(VlmEm *em, const VlmData *data, size_t i0, int n, int P)
{
    int D = em->D;
    float *A = (float *)em->A;
    for (int i = 0; i < n; i++) {
        const float *x = data->x + (i0 + i) * (size_t)D;
        float *a = A + (size_t)i * P;
        if (data->mask) {
            const float *mk = data->mask + (i0 + i) * (size_t)D;
            for (int d = 0; d < D; d++) {
                float v = mk[d] != 0 ? x[d] : 0.0f;
                a[d] = v;
                a[D + d] = v * v;
                a[2 * D + d] = mk[d] != 0;
            }
        } else {
            for (int d = 0; d < D; d++) {
                a[d] = x[d];
                a[D + d] = x[d] * x[d];
            }
        }
    }
}

double vlm_em_estep(VlmEm *em, const VlmData *data, bool stats)
{
    int K = em->K, D = em->D;
    bool masked = data->mask != NULL;
    int P = masked ? 3 * D : 2 * D;
    double cst[K];
    build_w(em, masked, cst);
    if (stats) {
        memset(em->Nk, 0, (size_t)K * sizeof *em->Nk);
        memset(em->T, 0, (size_t)K * P * sizeof *em->T);
        em->masked = masked;
        em->n = (double)data->n;
    }
    float *Wf = em->fp32 ? em->Wf : NULL, *Lf = (float *)em->resp;
    if (Wf)
        for (size_t j = 0; j < (size_t)P * K; j++)
            Wf[j] = (float)em->W[j];
    double total = 0;
    for (size_t i0 = 0; i0 < data->n; i0 += EM_CHUNK) {
        int n = data->n - i0 < EM_CHUNK ? (int)(data->n - i0) : EM_CHUNK;
        // L (n,K) = A (n,P) @ W (P,K)
        if (Wf) {
            build_af(em, data, i0, n, P);
            vlm_gemm(false, false, n, K, P, 1.0f, (float *)em->A, Wf, 0.0f, Lf);
            for (size_t j = 0; j < (size_t)n * K; j++)
                em->L[j] = Lf[j];
        } else {
            build_a(em, data, i0, n, P);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, K, P,
                        1.0, em->A, P, em->W, K, 0.0, em->L, K);
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++)
                em->L[(size_t)i * K + k] += cst[k];
        vlm_logsumexp(n, K, em->L, em->ll, stats ? em->resp : NULL);
        for (int i = 0; i < n; i++)
            total += em->ll[i];
        if (!stats)
            continue;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++)
                em->Nk[k] += em->resp[(size_t)i * K + k];
        // T (K,P) += resp^T (K,n) @ A (n,P)
        if (Wf) {   /* float within the chunk, double across chunks */
            float *rf = (float *)em->L;   /* L is consumed: reuse it */
            for (size_t j = 0; j < (size_t)n * K; j++)
                rf[j] = (float)em->resp[j];
            vlm_gemm(true, false, K, P, n, 1.0f, rf, (float *)em->A, 0.0f, em->Tf);
            for (size_t j = 0; j < (size_t)K * P; j++)
                em->T[j] += em->Tf[j];
        } else {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, n, 1.0,
                        em->resp, K, em->A, P, 1.0, em->T, P);
        }
    }
    return total / (double)data->n;
}

void vlm_em_mstep(VlmEm *em)
{
    int K = em->K, D = em->D, P = em->masked ? 3 * D : 2 * D;
    double tot = 0;
    for (int k = 0; k < K; k++)
        tot += em->Nk[k] + 10 * DBL_EPSILON;
    for (int k = 0; k < K; k++) {
        double nk = em->Nk[k] + 10 * DBL_EPSILON;
        em->logpi[k] = log(nk / tot);
        const double *t = em->T + (size_t)k * P;
        for (int d = 0; d < D; d++) {
            double nkd = em->masked ? t[2 * D + d] : em->Nk[k];
            if (em->masked && !(nkd > 0))
                continue;     /* unobserved in this component: keep */
            nkd += 10 * DBL_EPSILON;
            double mu = t[d] / nkd;
            double v = t[D + d] / nkd - mu * mu;
            em->mu[(size_t)k * D + d] = mu;
            em->var[(size_t)k * D + d] = (v > 0 ? v : 0) + em->reg_covar;
        }
    }
}

/* ------------------------------------------------------------ k-means */

/* Squared distances of items i0..i0+n to the centers C (nc, D), as
 * ||x||^2 - 2 x.c + ||c||^2 (one GEMM): out (n, nc). xx: ||x||^2 of every
 * item, cc: ||c||^2. Missing entries count as 0 (the initialisation only
 * needs a sensible partition). */
static void sqdist(const VlmData *data, size_t i0, int n, const float *xx,
                   const float *C, const float *cc, int nc, float *out)
{
    int D = (int)data->d;
    // out (n,nc) = -2 X (n,D) @ C^T (D,nc)
    vlm_gemm(false, true, n, nc, D, -2.0f, data->x + i0 * D, C, 0.0f, out);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < nc; c++) {
            float v = out[(size_t)i * nc + c] + xx[i0 + i] + cc[c];
            out[(size_t)i * nc + c] = v > 0 ? v : 0;
        }
}

static void sqnorms(const float *C, int nc, int D, float *cc)
{
    for (int c = 0; c < nc; c++) {
        double s = 0;
        for (int d = 0; d < D; d++)
            s += (double)C[(size_t)c * D + d] * C[(size_t)c * D + d];
        cc[c] = (float)s;
    }
}

/* One pass: label every item by its nearest center; with sum/cnt, also
 * the clusters' sums (chunk by chunk while the rows are in cache).
 * Returns how many labels changed. */
static size_t assign(const VlmData *data, const float *xx, const float *C,
                     int K, int *label, double *sum, long *cnt, float *dc,
                     float *fsum)
{
    size_t n = data->n, changed = 0;
    int D = (int)data->d;
    float cc[K];
    sqnorms(C, K, D, cc);
    if (sum) {
        memset(sum, 0, (size_t)K * D * sizeof *sum);
        memset(cnt, 0, (size_t)K * sizeof *cnt);
    }
    for (size_t i0 = 0; i0 < n; i0 += EM_CHUNK) {
        int m = n - i0 < EM_CHUNK ? (int)(n - i0) : EM_CHUNK;
        sqdist(data, i0, m, xx, C, cc, K, dc);
        if (sum)
            memset(fsum, 0, (size_t)K * D * sizeof *fsum);
        for (int i = 0; i < m; i++) {
            const float *d2 = dc + (size_t)i * K;
            int b = 0;
            for (int k = 1; k < K; k++)
                if (d2[k] < d2[b])
                    b = k;
            changed += b != label[i0 + i];
            label[i0 + i] = b;
            if (sum) {
                const float *x = data->x + (i0 + i) * D;
                float *s = fsum + (size_t)b * D;
                cnt[b]++;
                for (int d = 0; d < D; d++)
                    s[d] += x[d];
            }
        }
        if (sum)   /* float within a chunk, double across chunks */
            for (size_t j = 0; j < (size_t)K * D; j++)
                sum[j] += fsum[j];
    }
    return changed;
}

/* k-means++ seeding (greedy: the best of 2 + log K candidates per
 * center, as scikit-learn), then Lloyd iterations until no item changes
 * cluster, the centers move less than 1e-4 of the data's mean variance
 * (squared, summed), or `iters`. Returns the Lloyd iterations run. */
static int kmeans(const VlmData *data, int K, uint64_t seed, int iters,
                  int *label, float *C)
{
    size_t n = data->n;
    int D = (int)data->d;
    VlmRng rng;
    vlm_rng_init(&rng, seed, VLM_STREAM_INIT);
    float *xx = vlm_xmalloc(n * sizeof *xx);
    double mean_var = 0;
    {
        double *s1 = vlm_xcalloc((size_t)D, sizeof *s1), *s2 = vlm_xcalloc((size_t)D, sizeof *s2);
        for (size_t i = 0; i < n; i++) {
            const float *x = data->x + i * D;
            double s = 0;
            for (int d = 0; d < D; d++) {
                s += (double)x[d] * x[d];
                s1[d] += x[d];
                s2[d] += (double)x[d] * x[d];
            }
            xx[i] = (float)s;
        }
        for (int d = 0; d < D; d++)
            mean_var += s2[d] / n - (s1[d] / n) * (s1[d] / n);
        mean_var /= D;
        free(s1);
        free(s2);
    }
    int trials = 2 + (int)log((double)K);
    int width = trials > K ? trials : K;
    float *closest = vlm_xmalloc(n * sizeof *closest);
    float *dc = vlm_xmalloc((size_t)EM_CHUNK * width * sizeof *dc);
    float *cand = vlm_xmalloc((size_t)trials * D * sizeof *cand);
    double *pots = vlm_xmalloc((size_t)trials * sizeof *pots);
    float cc[width];
    size_t first = vlm_rng_below(&rng, n);
    memcpy(C, data->x + first * D, (size_t)D * sizeof *C);
    sqnorms(C, 1, D, cc);
    for (size_t i0 = 0; i0 < n; i0 += EM_CHUNK) {
        int m = n - i0 < EM_CHUNK ? (int)(n - i0) : EM_CHUNK;
        sqdist(data, i0, m, xx, C, cc, 1, closest + i0);
    }
    for (int c = 1; c < K; c++) {
        double pot = 0;
        for (size_t i = 0; i < n; i++)
            pot += closest[i];
        for (int t = 0; t < trials; t++) {
            double u = vlm_rng_uniform(&rng) * pot, acc = 0;
            size_t i = 0;
            for (; i + 1 < n; i++) {
                acc += closest[i];
                if (acc >= u)
                    break;
            }
            memcpy(cand + (size_t)t * D, data->x + i * D, (size_t)D * sizeof *cand);
        }
        /* potential of each candidate: sum_i min(closest_i, d(x_i, cand)) */
        sqnorms(cand, trials, D, cc);
        memset(pots, 0, (size_t)trials * sizeof *pots);
        for (size_t i0 = 0; i0 < n; i0 += EM_CHUNK) {
            int m = n - i0 < EM_CHUNK ? (int)(n - i0) : EM_CHUNK;
            sqdist(data, i0, m, xx, cand, cc, trials, dc);
            for (int i = 0; i < m; i++)
                for (int t = 0; t < trials; t++)
                    pots[t] += fminf(closest[i0 + i], dc[(size_t)i * trials + t]);
        }
        int best = 0;
        for (int t = 1; t < trials; t++)
            if (pots[t] < pots[best])
                best = t;
        memcpy(C + (size_t)c * D, cand + (size_t)best * D, (size_t)D * sizeof *C);
        sqnorms(C + (size_t)c * D, 1, D, cc);
        for (size_t i0 = 0; i0 < n; i0 += EM_CHUNK) {
            int m = n - i0 < EM_CHUNK ? (int)(n - i0) : EM_CHUNK;
            sqdist(data, i0, m, xx, C + (size_t)c * D, cc, 1, dc);
            for (int i = 0; i < m; i++)
                closest[i0 + i] = fminf(closest[i0 + i], dc[i]);
        }
    }
    double *sum = vlm_xmalloc((size_t)K * D * sizeof *sum);
    float *fsum = vlm_xmalloc((size_t)K * D * sizeof *fsum);
    long *cnt = vlm_xmalloc((size_t)K * sizeof *cnt);
    for (size_t i = 0; i < n; i++)
        label[i] = -1;
    int it = 0;
    while (it < iters) {
        size_t changed = assign(data, xx, C, K, label, sum, cnt, dc, fsum);
        it++;
        double shift = 0;
        for (int k = 0; k < K; k++) {
            if (!cnt[k])
                continue;     /* empty cluster: keep its center */
            for (int d = 0; d < D; d++) {
                float c = (float)(sum[(size_t)k * D + d] / cnt[k]);
                double u = c - C[(size_t)k * D + d];
                shift += u * u;
                C[(size_t)k * D + d] = c;
            }
        }
        if (!changed || shift <= 1e-4 * mean_var)
            break;
    }
    assign(data, xx, C, K, label, NULL, NULL, dc, NULL);  /* final labels */
    free(sum); free(fsum); free(cnt); free(xx); free(closest); free(dc);
    free(cand); free(pots);
    return it;
}

/* Hard responsibilities from k-means, then the M-step: the weights, means
 * and variances of the clusters (scikit-learn's init_params="kmeans"). */
int vlm_em_init_kmeans(VlmEm *em, const VlmData *data, uint64_t seed,
                       int iters)
{
    int K = em->K, D = em->D;
    int *label = vlm_xmalloc(data->n * sizeof *label);
    float *C = vlm_xmalloc((size_t)K * D * sizeof *C);
    int lloyd = kmeans(data, K, seed, iters, label, C);
    bool masked = data->mask != NULL;
    int P = masked ? 3 * D : 2 * D;
    memset(em->Nk, 0, (size_t)K * sizeof *em->Nk);
    memset(em->T, 0, (size_t)K * P * sizeof *em->T);
    em->masked = masked;
    em->n = (double)data->n;
    for (size_t i = 0; i < data->n; i++) {
        const float *x = data->x + i * D;
        const float *mk = masked ? data->mask + i * D : NULL;
        double *t = em->T + (size_t)label[i] * P;
        em->Nk[label[i]] += 1;
        for (int d = 0; d < D; d++) {
            double o = mk ? mk[d] != 0 : 1, v = o ? x[d] : 0;
            t[d] += v;
            t[D + d] += v * v;
            if (masked)
                t[2 * D + d] += o;
        }
    }
    for (size_t i = 0; i < (size_t)K * D; i++) {   /* for unobserved dims */
        em->mu[i] = C[i];
        em->var[i] = 1;
    }
    vlm_em_mstep(em);
    free(label);
    free(C);
    return lloyd;
}
