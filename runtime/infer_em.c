/* infer_em.c — exact EM for the conjugate Gaussian mixtures the compiler
 * recognises (desc->mixture): E-step and sufficient statistics over the
 * whole data set (float kernels that stream the data once per pass, on
 * the runtime's thread pool; double GEMMs when fp32 is off), the
 * closed-form M-step with a variance floor, and a seeded k-means++ / Lloyd
 * initialisation. It keeps
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM_CHUNK 512   /* items per GEMM of the double path */

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
    em->fp32 = true;
    vlm_em_from_params(em, m);
    return 0;
}

void vlm_em_free(VlmEm *em)
{
    free(em->logpi); free(em->mu); free(em->var); free(em->Nk);
    free(em->T); free(em->W); free(em->A); free(em->L); free(em->resp);
    free(em->ll);
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

/* W (P, K) from the current parameters for rows in raw units (x = u v,
 * vlm_data_rows_raw): the x and x^2 blocks carry u and u^2; cst (K) the
 * per-component constant when there is no mask (P = 2D), else the c
 * block (P = 3D). */
static void build_w(VlmEm *em, bool masked, double u, double *cst)
{
    int K = em->K, D = em->D;
    double *W = em->W;
    for (int k = 0; k < K; k++) {
        double c = em->logpi[k];
        for (int d = 0; d < D; d++) {
            double mu = em->mu[(size_t)k * D + d], v = em->var[(size_t)k * D + d];
            double ckd = -0.5 * log(2 * M_PI * v) - 0.5 * mu * mu / v;
            W[(size_t)d * K + k] = u * mu / v;
            W[(size_t)(D + d) * K + k] = -0.5 * u * u / v;
            if (masked)
                W[(size_t)(2 * D + d) * K + k] = ckd;
            else
                c += ckd;
        }
        cst[k] = c;   /* masked: log pi only */
    }
}

/* A (n, P) = [m v, m v^2 (, m)] of items i0..i0+n in double (raw units). */
static void build_a(VlmEm *em, const VlmData *data, size_t i0, int n, int P)
{
    int D = em->D;
    float *x = vlm_xmalloc((size_t)D * sizeof *x);
    for (int i = 0; i < n; i++) {
        vlm_data_rows_raw(data, i0 + i, 1, 0, (size_t)D, x);
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
    free(x);
}

/* ------------------------------------------------- float kernels, blocks
 *
 * The float path streams the data once per pass: rows are gathered EM_ROWS
 * at a time into A (EM_ROWS, Pp) floats (L2-resident), the K scores of each
 * row come from a register-blocked dot kernel (no GEMM packing of a
 * 784-wide X for N = 10 outputs), and the statistics from a blocked
 * rank-update kernel on the same rows while they are in cache. Work is
 * split in fixed blocks of EM_BLOCK rows run on vlm_parallel_for; each
 * block writes its own partial sums and the caller adds the blocks in
 * index order, so the result does not depend on --threads. */
#define EM_ROWS 32      /* rows per kernel call: A (32, Pp) stays in L2 */
#define EM_BLOCK 2048   /* rows per work item: float partials within one */
#define KG 5            /* components per register block */

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// out (n,Kp) = A (n,Pp) @ W^T, W (Kp,Pp) row major; Kp % KG == 0,
// Pp % 16 == 0. K-group outer so KG rows of W stay in L1 across rows.
static void dots(int n, int Pp, int Kp, const float *A, const float *W,
                 float *out)
{
    for (int k0 = 0; k0 < Kp; k0 += KG) {
        const float *w = W + (size_t)k0 * Pp;
        int i = 0;
#if defined(__AVX2__) && defined(__FMA__)
        for (; i + 2 <= n; i += 2) {
            const float *a0 = A + (size_t)i * Pp, *a1 = a0 + Pp;
            __m256 s0[KG], s1[KG];
            _Pragma("GCC unroll 8")
            for (int k = 0; k < KG; k++)
                s0[k] = s1[k] = _mm256_setzero_ps();
            for (int j = 0; j < Pp; j += 8) {
                __m256 x0 = _mm256_loadu_ps(a0 + j), x1 = _mm256_loadu_ps(a1 + j);
                _Pragma("GCC unroll 8")
                for (int k = 0; k < KG; k++) {
                    __m256 wk = _mm256_loadu_ps(w + (size_t)k * Pp + j);
                    s0[k] = _mm256_fmadd_ps(x0, wk, s0[k]);
                    s1[k] = _mm256_fmadd_ps(x1, wk, s1[k]);
                }
            }
            _Pragma("GCC unroll 8")
            for (int k = 0; k < KG; k++) {
                out[(size_t)i * Kp + k0 + k] = hsum8(s0[k]);
                out[(size_t)(i + 1) * Kp + k0 + k] = hsum8(s1[k]);
            }
        }
#endif
        for (; i < n; i++) {
            const float *a = A + (size_t)i * Pp;
            _Pragma("GCC unroll 8")
            for (int k = 0; k < KG; k++) {
                float s = 0;
                for (int j = 0; j < Pp; j++)
                    s += a[j] * w[(size_t)k * Pp + j];
                out[(size_t)i * Kp + k0 + k] = s;
            }
        }
    }
}

// T (Kp,Pp) += R^T (Kp,n) @ A (n,Pp), R (n,Kp) row major.
static void rank_update(int n, int Pp, int Kp, const float *R, const float *A,
                        float *T)
{
    for (int k0 = 0; k0 < Kp; k0 += KG) {
        float *t = T + (size_t)k0 * Pp;
#if defined(__AVX2__) && defined(__FMA__)
        for (int j = 0; j < Pp; j += 16) {
            __m256 u0[KG], u1[KG];
            _Pragma("GCC unroll 8")
            for (int k = 0; k < KG; k++) {
                u0[k] = _mm256_loadu_ps(t + (size_t)k * Pp + j);
                u1[k] = _mm256_loadu_ps(t + (size_t)k * Pp + j + 8);
            }
            for (int i = 0; i < n; i++) {
                const float *a = A + (size_t)i * Pp + j;
                __m256 a0 = _mm256_loadu_ps(a), a1 = _mm256_loadu_ps(a + 8);
                _Pragma("GCC unroll 8")
                for (int k = 0; k < KG; k++) {
                    __m256 r = _mm256_broadcast_ss(R + (size_t)i * Kp + k0 + k);
                    u0[k] = _mm256_fmadd_ps(r, a0, u0[k]);
                    u1[k] = _mm256_fmadd_ps(r, a1, u1[k]);
                }
            }
            _Pragma("GCC unroll 8")
            for (int k = 0; k < KG; k++) {
                _mm256_storeu_ps(t + (size_t)k * Pp + j, u0[k]);
                _mm256_storeu_ps(t + (size_t)k * Pp + j + 8, u1[k]);
            }
        }
#else
        for (int i = 0; i < n; i++)
            _Pragma("GCC unroll 8")
            for (int k = 0; k < KG; k++) {
                float r = R[(size_t)i * Kp + k0 + k];
                const float *a = A + (size_t)i * Pp;
                for (int j = 0; j < Pp; j++)
                    t[(size_t)k * Pp + j] += r * a[j];
            }
#endif
    }
}

/* Row i of the data as D floats in raw units (no mask applied). */
static inline void get_row(const VlmData *data, size_t i, float *out)
{
    vlm_data_rows_raw(data, i, 1, 0, data->d, out);
}

/* A rows (n, Pp) = [m v, m v^2 (, m), 0 padding] of items i0..i0+n, v the
 * raw values (x = unit * v). */
static void build_rows(const VlmData *data, size_t i0, int n, int Pp,
                       bool squares, float *A)
{
    int D = (int)data->d;
    for (int i = 0; i < n; i++) {
        float *a = A + (size_t)i * Pp;
        get_row(data, i0 + i, a);
        int used = D;
        if (data->mask) {
            const float *mk = data->mask + (i0 + i) * (size_t)D;
            for (int d = 0; d < D; d++)
                if (mk[d] == 0)
                    a[d] = 0;
            if (squares) {
                for (int d = 0; d < D; d++) {
                    a[D + d] = a[d] * a[d];
                    a[2 * D + d] = mk[d] != 0;
                }
                used = 3 * D;
            }
        } else if (squares) {
            for (int d = 0; d < D; d++)
                a[D + d] = a[d] * a[d];
            used = 2 * D;
        }
        for (int j = used; j < Pp; j++)
            a[j] = 0;
    }
}

static void *xalloc_aligned(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", __FILE__,
                __LINE__, bytes);
        abort();
    }
    return p;
}

typedef struct {
    const VlmData *data;
    int K, Kp, P, Pp;
    bool stats;
    const float *W;         /* (Kp, Pp) */
    const double *cst;      /* K */
    double *ll;             /* nb: sum of log p(x_i) per block */
    double *nk;             /* (nb, K) */
    double *T;              /* (nb, K, P) */
    size_t first;           /* this rank's first block (MPI) */
} EstepJob;

/* Under MPI: the sum of log p(x) and the statistics of every rank's
 * items, in double (one allreduce); returns the total. */
static double reduce_estep(VlmEm *em, double total, bool stats, int P)
{
    if (!vlm_mpi_parallel())
        return total;
    size_t n = 1 + (stats ? (size_t)em->K * (1 + (size_t)P) : 0);
    double *v = vlm_xmalloc(n * sizeof *v);
    v[0] = total;
    if (stats) {
        memcpy(v + 1, em->Nk, (size_t)em->K * sizeof *v);
        memcpy(v + 1 + em->K, em->T, (size_t)em->K * P * sizeof *v);
    }
    vlm_mpi_sum_d(v, n);
    if (stats) {
        memcpy(em->Nk, v + 1, (size_t)em->K * sizeof *v);
        memcpy(em->T, v + 1 + em->K, (size_t)em->K * P * sizeof *v);
    }
    total = v[0];
    free(v);
    return total;
}

static void estep_blocks(void *ctx, size_t b0, size_t b1)
{
    const EstepJob *j = ctx;
    b0 += j->first;
    b1 += j->first;
    int K = j->K, Kp = j->Kp, Pp = j->Pp, P = j->P;
    float *A = xalloc_aligned((size_t)EM_ROWS * Pp * sizeof *A);
    float *Lf = xalloc_aligned((size_t)EM_ROWS * Kp * sizeof *Lf);
    double *L = vlm_xmalloc((size_t)EM_ROWS * K * sizeof *L);
    double *r = vlm_xmalloc((size_t)EM_ROWS * K * sizeof *r);
    double *ll = vlm_xmalloc(EM_ROWS * sizeof *ll);
    float *Tf = j->stats ? xalloc_aligned((size_t)Kp * Pp * sizeof *Tf) : NULL;
    size_t n = j->data->n;
    for (size_t b = b0; b < b1; b++) {
        size_t lo = b * EM_BLOCK, hi = lo + EM_BLOCK < n ? lo + EM_BLOCK : n;
        double tot = 0, *nk = j->nk + b * K;
        if (Tf) {
            memset(Tf, 0, (size_t)Kp * Pp * sizeof *Tf);
            memset(nk, 0, (size_t)K * sizeof *nk);
        }
        for (size_t i0 = lo; i0 < hi; i0 += EM_ROWS) {
            int m = hi - i0 < EM_ROWS ? (int)(hi - i0) : EM_ROWS;
            build_rows(j->data, i0, m, Pp, true, A);
            // Lf (m,Kp) = A (m,Pp) @ W^T
            dots(m, Pp, Kp, A, j->W, Lf);
            for (int i = 0; i < m; i++)
                for (int k = 0; k < K; k++)
                    L[(size_t)i * K + k] = (double)Lf[(size_t)i * Kp + k] + j->cst[k];
            vlm_logsumexp(m, K, L, ll, Tf ? r : NULL);
            for (int i = 0; i < m; i++)
                tot += ll[i];
            if (!Tf)
                continue;
            for (int i = 0; i < m; i++)
                for (int k = 0; k < Kp; k++) {
                    double v = k < K ? r[(size_t)i * K + k] : 0;
                    if (k < K)
                        nk[k] += v;
                    Lf[(size_t)i * Kp + k] = (float)v;   /* L is consumed */
                }
            // Tf (Kp,Pp) += R^T (Kp,m) @ A (m,Pp)
            rank_update(m, Pp, Kp, Lf, A, Tf);
        }
        j->ll[b] = tot;
        if (Tf)
            for (int k = 0; k < K; k++)
                for (int p = 0; p < P; p++)
                    j->T[(b * K + k) * P + p] = Tf[(size_t)k * Pp + p];
    }
    free(A); free(Lf); free(L); free(r); free(ll); free(Tf);
}

/* The float path of vlm_em_estep: W (P,K) of build_w transposed to
 * (Kp, Pp) floats, blocks in parallel, partials added in block order. */
static double estep_float(VlmEm *em, const VlmData *data, bool stats,
                          int P, const double *cst)
{
    int K = em->K, Kp = (int)round_up((size_t)K, KG), Pp = (int)round_up((size_t)P, 16);
    size_t nb = (data->n + EM_BLOCK - 1) / EM_BLOCK;
    float *W = xalloc_aligned((size_t)Kp * Pp * sizeof *W);
    memset(W, 0, (size_t)Kp * Pp * sizeof *W);
    for (int k = 0; k < K; k++)
        for (int p = 0; p < P; p++)
            W[(size_t)k * Pp + p] = (float)em->W[(size_t)p * K + k];
    EstepJob j = {
        .data = data, .K = K, .Kp = Kp, .P = P, .Pp = Pp, .stats = stats,
        .W = W, .cst = cst,
        .ll = vlm_xmalloc(nb * sizeof(double)),
        .nk = stats ? vlm_xmalloc(nb * K * sizeof(double)) : NULL,
        .T = stats ? vlm_xmalloc(nb * K * (size_t)P * sizeof(double)) : NULL,
    };
    /* under MPI each rank takes its range of whole blocks (the same
     * blocks as one process, so each block's float partial is the same) */
    const VlmComm *cw = vlm_comm_world();
    size_t blo, bhi;
    vlm_shard_range(nb, cw->rank, cw->size, &blo, &bhi);
    j.first = blo;
    vlm_parallel_for(bhi - blo, 1, estep_blocks, &j);
    double total = 0;
    for (size_t b = blo; b < bhi; b++) {
        total += j.ll[b];
        if (!stats)
            continue;
        for (int k = 0; k < K; k++)
            em->Nk[k] += j.nk[b * K + k];
        const double *t = j.T + b * K * (size_t)P;
        for (size_t q = 0; q < (size_t)K * P; q++)
            em->T[q] += t[q];
    }
    free(W); free(j.ll); free(j.nk); free(j.T);
    return reduce_estep(em, total, stats, P) / (double)data->n;
}

double vlm_em_estep(VlmEm *em, const VlmData *data, bool stats)
{
    int K = em->K, D = em->D;
    bool masked = data->mask != NULL;
    int P = masked ? 3 * D : 2 * D;
    double cst[K];
    build_w(em, masked, vlm_data_unit(data), cst);
    if (stats) {
        memset(em->Nk, 0, (size_t)K * sizeof *em->Nk);
        memset(em->T, 0, (size_t)K * P * sizeof *em->T);
        em->masked = masked;
        em->n = (double)data->n;
        em->unit = vlm_data_unit(data);
    }
    if (em->fp32)
        return estep_float(em, data, stats, P, cst);
    double total = 0;
    const VlmComm *cw = vlm_comm_world();
    size_t nc = (data->n + EM_CHUNK - 1) / EM_CHUNK, clo, chi;
    vlm_shard_range(nc, cw->rank, cw->size, &clo, &chi);   /* MPI: chunks */
    for (size_t i0 = clo * EM_CHUNK; i0 < data->n && i0 < chi * EM_CHUNK; i0 += EM_CHUNK) {
        int n = data->n - i0 < EM_CHUNK ? (int)(data->n - i0) : EM_CHUNK;
        // L (n,K) = A (n,P) @ W (P,K)
        build_a(em, data, i0, n, P);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, K, P,
                    1.0, em->A, P, em->W, K, 0.0, em->L, K);
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
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, n, 1.0,
                    em->resp, K, em->A, P, 1.0, em->T, P);
    }
    return reduce_estep(em, total, stats, P) / (double)data->n;
}

void vlm_em_mstep(VlmEm *em)
{
    int K = em->K, D = em->D, P = em->masked ? 3 * D : 2 * D;
    double u = em->unit;   /* S1, S2 are in raw units */
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
            double mu = u * t[d] / nkd;
            double v = u * u * t[D + d] / nkd - mu * mu;
            em->mu[(size_t)k * D + d] = mu;
            em->var[(size_t)k * D + d] = (v > 0 ? v : 0) + em->reg_covar;
        }
    }
}

/* The variances are E[x^2] - mu^2 plus reg_covar: with reg_covar 0 a
 * component that owns one point (or identical points) gets a variance of
 * 0 or a rounding residue, and its density there is unbounded. */
int vlm_em_collapsed(const VlmEm *em, int *k, int *d)
{
    double worst = 1e-9;
    int found = 0;
    for (int c = 0; c < em->K; c++)
        for (int j = 0; j < em->D; j++) {
            double v = em->var[(size_t)c * em->D + j];
            double mu = em->mu[(size_t)c * em->D + j];
            double r = v / (mu * mu + v);
            if (!(v > 0) || r <= worst) {
                worst = v > 0 ? r : 0;
                *k = c;
                *d = j;
                found = 1;
            }
        }
    return found;
}

/* ------------------------------------------------------------ k-means */

/* Squared distances as ||x||^2 - 2 x.c + ||c||^2 from the dot kernel, in
 * the data's raw units (assignments do not depend on the scale).
 * Missing entries count as 0 (the initialisation only needs a sensible
 * partition). Two passes of one job type for the seeding:
 *   KM_NORMS   xx_i = ||x_i||^2 and per-block sums of x and x^2;
 *   KM_DIST    dist (n, nc) to the nc centers. */
enum { KM_NORMS, KM_DIST };

typedef struct {
    int mode;
    const VlmData *data;
    int D, Dp, nc, Kp;
    const float *C, *cc;    /* (Kp, Dp) centers, nc norms */
    float *xx;              /* n */
    float *dist;            /* (n, nc) */
    double *sum;            /* (nb, 2, D) for KM_NORMS */
} KmJob;

static void km_blocks(void *ctx, size_t b0, size_t b1)
{
    const KmJob *j = ctx;
    int D = j->D, Dp = j->Dp, nc = j->nc, Kp = j->Kp;
    size_t n = j->data->n;
    float *A = xalloc_aligned((size_t)EM_ROWS * Dp * sizeof *A);
    float *dt = xalloc_aligned((size_t)EM_ROWS * (Kp ? Kp : 1) * sizeof *dt);
    float *sf = j->mode == KM_NORMS ? xalloc_aligned((size_t)2 * Dp * sizeof *sf) : NULL;
    for (size_t b = b0; b < b1; b++) {
        size_t lo = b * EM_BLOCK, hi = lo + EM_BLOCK < n ? lo + EM_BLOCK : n;
        if (sf)
            memset(sf, 0, (size_t)2 * Dp * sizeof *sf);
        for (size_t i0 = lo; i0 < hi; i0 += EM_ROWS) {
            int m = hi - i0 < EM_ROWS ? (int)(hi - i0) : EM_ROWS;
            build_rows(j->data, i0, m, Dp, false, A);
            if (j->mode == KM_NORMS) {
                for (int i = 0; i < m; i++) {
                    const float *a = A + (size_t)i * Dp;
                    double s = 0;
                    for (int d = 0; d < D; d++) {
                        s += (double)a[d] * a[d];
                        sf[d] += a[d];
                        sf[Dp + d] += a[d] * a[d];
                    }
                    j->xx[i0 + i] = (float)s;
                }
                continue;
            }
            // dt (m,Kp) = A (m,Dp) @ C^T
            dots(m, Dp, Kp, A, j->C, dt);
            for (int i = 0; i < m; i++)
                for (int c = 0; c < nc; c++) {
                    float v = j->xx[i0 + i] + j->cc[c] - 2 * dt[(size_t)i * Kp + c];
                    j->dist[(i0 + i) * nc + c] = v > 0 ? v : 0;
                }
        }
        if (sf)   /* float within a block, double across blocks */
            for (int c = 0; c < 2; c++)
                for (int d = 0; d < D; d++)
                    j->sum[(b * 2 + c) * D + d] = sf[(size_t)c * Dp + d];
    }
    free(A); free(dt); free(sf);
}

/* ------------------------------------------- Lloyd with Hamerly's bounds
 *
 * Each item keeps an upper bound u on its distance to its own center and
 * a lower bound l on its distance to every other; a center moving by
 * delta raises u by delta and lowers l by the largest move. An item with
 * u <= max(l, half the distance from its center to the nearest other)
 * keeps its label without computing a distance, which after the first
 * few iterations is nearly every item. Others get all K distances (the
 * dot kernel over the gathered rows). The float distances carry an
 * error of up to 1e-6 (||x||^2 + ||c||^2) in squared units; u and l are
 * widened by it, so a skip is sound. The cluster sums change only by the
 * items that move, per block in double (exact for byte data), added in
 * block order: the same partition and centers for any --threads. */
typedef struct {
    const VlmData *data;
    int D, Dp, K, Kp;
    const float *C, *cc;    /* (Kp, Dp) centers, K norms */
    float cmax;             /* max cc */
    const double *half;     /* K: half the distance to the nearest other */
    const double *move;     /* K: how far each center moved; maxmove */
    double maxmove;
    const float *xx;        /* n */
    double *u, *l;          /* n bounds (double: 100 updates add no error) */
    int *label;             /* n, -1 = none yet */
    size_t *changed;        /* nb */
    double *dsum;           /* (nb, K, D): sum of moved-in minus moved-out */
    long *dcnt;             /* (nb, K) */
} HamJob;

static void ham_blocks(void *ctx, size_t b0, size_t b1)
{
    const HamJob *j = ctx;
    int D = j->D, Dp = j->Dp, K = j->K, Kp = j->Kp;
    size_t n = j->data->n;
    float *A = xalloc_aligned((size_t)EM_ROWS * Dp * sizeof *A);
    float *dt = xalloc_aligned((size_t)EM_ROWS * Kp * sizeof *dt);
    size_t rows[EM_ROWS];
    for (size_t b = b0; b < b1; b++) {
        size_t lo = b * EM_BLOCK, hi = lo + EM_BLOCK < n ? lo + EM_BLOCK : n;
        size_t changed = 0;
        double *dsum = j->dsum + b * (size_t)K * D;
        long *dcnt = j->dcnt + b * K;
        memset(dcnt, 0, (size_t)K * sizeof *dcnt);
        bool touched = false;
        int m = 0;
        for (size_t i = lo; i <= hi; i++) {
            if (i < hi) {
                int a = j->label[i];
                if (a >= 0) {
                    j->u[i] += j->move[a];
                    j->l[i] -= j->maxmove;
                    double bound = j->half[a] > j->l[i] ? j->half[a] : j->l[i];
                    if (j->u[i] <= bound)
                        continue;
                }
                rows[m++] = i;
                if (m < EM_ROWS)
                    continue;
            }
            if (!m)
                continue;
            for (int r = 0; r < m; r++)
                build_rows(j->data, rows[r], 1, Dp, false, A + (size_t)r * Dp);
            // dt (m,Kp) = A (m,Dp) @ C^T
            dots(m, Dp, Kp, A, j->C, dt);
            for (int r = 0; r < m; r++) {
                size_t it = rows[r];
                const float *d2 = dt + (size_t)r * Kp;
                float err = 1e-6f * (j->xx[it] + j->cmax);
                int best = 0, second = -1;
                float v[K];
                for (int c = 0; c < K; c++) {
                    float x = j->xx[it] + j->cc[c] - 2 * d2[c];
                    v[c] = x > 0 ? x : 0;
                }
                for (int c = 1; c < K; c++)
                    if (v[c] < v[best])
                        best = c;
                for (int c = 0; c < K; c++)
                    if (c != best && (second < 0 || v[c] < v[second]))
                        second = c;
                j->u[it] = sqrtf(v[best] + err);
                j->l[it] = second < 0 ? INFINITY : sqrtf(fmaxf(v[second] - err, 0.0f));
                int old = j->label[it];
                if (best == old)
                    continue;
                changed++;
                j->label[it] = best;
                if (!touched) {
                    memset(dsum, 0, (size_t)K * D * sizeof *dsum);
                    touched = true;
                }
                const float *a = A + (size_t)r * Dp;
                double *in = dsum + (size_t)best * D;
                dcnt[best]++;
                for (int d = 0; d < D; d++)
                    in[d] += a[d];
                if (old >= 0) {
                    double *out = dsum + (size_t)old * D;
                    dcnt[old]--;
                    for (int d = 0; d < D; d++)
                        out[d] -= a[d];
                }
            }
            m = 0;
        }
        j->changed[b] = changed;
    }
    free(A); free(dt);
}

static void sqnorms(const float *C, int nc, int Dp, float *cc)
{
    for (int c = 0; c < nc; c++) {
        double s = 0;
        for (int d = 0; d < Dp; d++)
            s += (double)C[(size_t)c * Dp + d] * C[(size_t)c * Dp + d];
        cc[c] = (float)s;
    }
}

/* Distances of every item to the nc centers C (Kp, Dp): dist (n, nc). */
static void km_dist(KmJob *j, const float *C, int nc, float *dist)
{
    float cc[KG * ((nc + KG - 1) / KG)];
    sqnorms(C, nc, j->Dp, cc);
    j->mode = KM_DIST;
    j->C = C;
    j->cc = cc;
    j->nc = nc;
    j->Kp = (int)round_up((size_t)nc, KG);
    j->dist = dist;
    j->sum = NULL;
    vlm_parallel_for((j->data->n + EM_BLOCK - 1) / EM_BLOCK, 1, km_blocks, j);
}

/* k-means++ seeding (greedy: the best of 2 + log K candidates per
 * center, as scikit-learn), then Lloyd iterations until no item changes
 * cluster, the centers move less than 1e-4 of the data's mean variance
 * (squared, summed; scikit-learn's tol), or `iters`. C is (Kp, Dp),
 * zero-padded. Returns the Lloyd iterations run. */
static int kmeans(const VlmData *data, int K, uint64_t seed, int iters,
                  int *label, float *C)
{
    size_t n = data->n, nb = (n + EM_BLOCK - 1) / EM_BLOCK;
    int D = (int)data->d, Dp = (int)round_up((size_t)D, 16);
    VlmRng rng;
    vlm_rng_init(&rng, seed, VLM_STREAM_INIT);
    float *xx = vlm_xmalloc(n * sizeof *xx);
    size_t nsum = nb * 2 * (size_t)D;
    double *sum = vlm_xmalloc(nsum * sizeof *sum);
    size_t *changed = vlm_xmalloc(nb * sizeof *changed);
    KmJob j = {.mode = KM_NORMS, .data = data, .D = D, .Dp = Dp, .xx = xx,
               .sum = sum};
    vlm_parallel_for(nb, 1, km_blocks, &j);
    double mean_var = 0;
    for (int d = 0; d < D; d++) {
        double s1 = 0, s2 = 0;
        for (size_t b = 0; b < nb; b++) {
            s1 += sum[(b * 2) * D + d];
            s2 += sum[(b * 2 + 1) * D + d];
        }
        mean_var += s2 / n - (s1 / n) * (s1 / n);
    }
    mean_var /= D;

    int trials = 2 + (int)log((double)K);
    float *closest = vlm_xmalloc(n * sizeof *closest);
    float *dist = vlm_xmalloc(n * (size_t)trials * sizeof *dist);
    float *cand = xalloc_aligned((size_t)round_up((size_t)trials, KG) * Dp * sizeof *cand);
    memset(cand, 0, (size_t)round_up((size_t)trials, KG) * Dp * sizeof *cand);
    size_t first = vlm_rng_below(&rng, n);
    build_rows(data, first, 1, Dp, false, C);
    km_dist(&j, C, 1, closest);
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
            build_rows(data, i, 1, Dp, false, cand + (size_t)t * Dp);
        }
        /* potential of each candidate: sum_i min(closest_i, d(x_i, cand)) */
        km_dist(&j, cand, trials, dist);
        int best = 0;
        double bestpot = INFINITY;
        for (int t = 0; t < trials; t++) {
            double p = 0;
            for (size_t i = 0; i < n; i++)
                p += fminf(closest[i], dist[i * trials + t]);
            if (p < bestpot) {
                bestpot = p;
                best = t;
            }
        }
        memcpy(C + (size_t)c * Dp, cand + (size_t)best * Dp, (size_t)Dp * sizeof *C);
        for (size_t i = 0; i < n; i++)
            closest[i] = fminf(closest[i], dist[i * trials + best]);
    }
    free(closest); free(dist); free(cand);

    /* Lloyd, Hamerly-bounded (ham_blocks): sums and counts of the
     * clusters follow the items that move */
    int Kp = (int)round_up((size_t)K, KG);
    float cc[Kp];
    double half[K], move[K], *u = vlm_xmalloc(n * sizeof *u), *l = vlm_xmalloc(n * sizeof *l);
    double *csum = vlm_xcalloc((size_t)K * D, sizeof *csum);
    long ccnt[K];
    double *dsum = vlm_xmalloc(nb * (size_t)K * D * sizeof *dsum);
    long *dcnt = vlm_xmalloc(nb * K * sizeof *dcnt);
    for (size_t i = 0; i < n; i++)
        label[i] = -1;
    for (int k = 0; k < K; k++) {
        move[k] = 0;
        ccnt[k] = 0;
    }
    HamJob h = {.data = data, .D = D, .Dp = Dp, .K = K, .Kp = Kp, .C = C, .cc = cc,
                .half = half, .move = move, .xx = xx, .u = u, .l = l, .label = label,
                .changed = changed, .dsum = dsum, .dcnt = dcnt};
    int it = 0;
    for (bool last = iters <= 0;;) {
        sqnorms(C, K, Dp, cc);
        h.cmax = 0;
        h.maxmove = 0;
        for (int k = 0; k < K; k++) {
            h.cmax = fmaxf(h.cmax, cc[k]);
            h.maxmove = fmax(h.maxmove, move[k]);
            /* half the distance to the nearest other center, a hair low */
            double dmin = INFINITY;
            for (int c = 0; c < K; c++) {
                if (c == k)
                    continue;
                double s2 = 0;
                for (int d = 0; d < D; d++) {
                    double t = (double)C[(size_t)k * Dp + d] - C[(size_t)c * Dp + d];
                    s2 += t * t;
                }
                dmin = fmin(dmin, s2);
            }
            half[k] = 0.5 * sqrt(dmin) * (1 - 1e-12);
        }
        vlm_parallel_for(nb, 1, ham_blocks, &h);
        if (last)
            break;
        it++;
        size_t nchanged = 0;
        for (size_t b = 0; b < nb; b++) {
            if (!changed[b])
                continue;
            nchanged += changed[b];
            for (int k = 0; k < K; k++)
                ccnt[k] += dcnt[b * K + k];
            for (size_t q = 0; q < (size_t)K * D; q++)
                csum[q] += dsum[b * (size_t)K * D + q];
        }
        double shift = 0;
        for (int k = 0; k < K; k++) {
            double mk = 0;
            if (ccnt[k]) {     /* empty cluster: keep its center */
                for (int d = 0; d < D; d++) {
                    float c = (float)(csum[(size_t)k * D + d] / ccnt[k]);
                    double t = (double)c - C[(size_t)k * Dp + d];
                    mk += t * t;
                    C[(size_t)k * Dp + d] = c;
                }
            }
            shift += mk;
            move[k] = sqrt(mk) * (1 + 1e-12);
        }
        /* one more pass assigns every item to the final centers */
        last = !nchanged || shift <= 1e-4 * mean_var || it >= iters;
    }
    free(u); free(l); free(csum); free(dsum); free(dcnt);
    free(sum); free(changed); free(xx);
    return it;
}

int vlm_kmeans(const VlmData *data, int K, uint64_t seed, int iters,
               int *label, float *C)
{
    int D = (int)data->d, Dp = (int)round_up((size_t)D, 16);
    size_t csize = round_up((size_t)K, KG) * Dp * sizeof(float);
    float *Cp = xalloc_aligned(csize);
    memset(Cp, 0, csize);
    int it = kmeans(data, K, seed, iters, label, Cp);
    double u = vlm_data_unit(data);
    for (int k = 0; k < K; k++)
        for (int d = 0; d < D; d++)
            C[(size_t)k * D + d] = (float)(u * Cp[(size_t)k * Dp + d]);
    free(Cp);
    return it;
}

/* The statistics of hard responsibilities (the k-means labels), per
 * block of items in double (exact for byte data). */
typedef struct {
    const VlmData *data;
    const int *label;
    int K, P;
    double *nk;             /* (nb, K) */
    double *T;              /* (nb, K, P) */
} HardStats;

static void hard_stats_blocks(void *ctx, size_t b0, size_t b1)
{
    const HardStats *j = ctx;
    int K = j->K, P = j->P, Pp = (int)round_up((size_t)P, 16);
    size_t n = j->data->n;
    float *a = xalloc_aligned((size_t)Pp * sizeof *a);
    for (size_t b = b0; b < b1; b++) {
        double *nk = j->nk + b * K, *T = j->T + b * (size_t)K * P;
        memset(nk, 0, (size_t)K * sizeof *nk);
        memset(T, 0, (size_t)K * P * sizeof *T);
        size_t lo = b * EM_BLOCK, hi = lo + EM_BLOCK < n ? lo + EM_BLOCK : n;
        for (size_t i = lo; i < hi; i++) {
            build_rows(j->data, i, 1, Pp, true, a);   /* [m v, m v^2 (, m)] */
            double *t = T + (size_t)j->label[i] * P;
            nk[j->label[i]] += 1;
            for (int p = 0; p < P; p++)
                t[p] += a[p];
        }
    }
    free(a);
}

/* Hard responsibilities from k-means, then the M-step: the weights, means
 * and variances of the clusters (scikit-learn's init_params="kmeans"). */
int vlm_em_init_kmeans(VlmEm *em, const VlmData *data, uint64_t seed,
                       int iters)
{
    int K = em->K, D = em->D, Dp = (int)round_up((size_t)D, 16);
    int *label = vlm_xmalloc(data->n * sizeof *label);
    size_t csize = round_up((size_t)K, KG) * Dp * sizeof(float);
    float *C = xalloc_aligned(csize);
    memset(C, 0, csize);
    int lloyd = kmeans(data, K, seed, iters, label, C);
    bool masked = data->mask != NULL;
    int P = masked ? 3 * D : 2 * D;
    memset(em->Nk, 0, (size_t)K * sizeof *em->Nk);
    memset(em->T, 0, (size_t)K * P * sizeof *em->T);
    em->masked = masked;
    em->n = (double)data->n;
    em->unit = vlm_data_unit(data);
    size_t nb = (data->n + EM_BLOCK - 1) / EM_BLOCK;
    HardStats hs = {data, label, K, P, vlm_xmalloc(nb * K * sizeof(double)),
                    vlm_xmalloc(nb * (size_t)K * P * sizeof(double))};
    vlm_parallel_for(nb, 1, hard_stats_blocks, &hs);
    for (size_t b = 0; b < nb; b++) {   /* in block order */
        for (int k = 0; k < K; k++)
            em->Nk[k] += hs.nk[b * K + k];
        for (size_t q = 0; q < (size_t)K * P; q++)
            em->T[q] += hs.T[b * (size_t)K * P + q];
    }
    free(hs.nk);
    free(hs.T);
    for (int k = 0; k < K; k++)   /* for unobserved dims */
        for (int d = 0; d < D; d++) {
            em->mu[(size_t)k * D + d] = em->unit * C[(size_t)k * Dp + d];
            em->var[(size_t)k * D + d] = 1;
        }
    vlm_em_mstep(em);
    free(label);
    free(C);
    return lloyd;
}
