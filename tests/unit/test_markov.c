/* test_markov.c — CUnit suite "markov": the chain kernels of markov.c
 * against brute force over all K^T paths (log Z, the marginals, Viterbi)
 * in double, their gradients against central finite differences, the
 * sampler's pair frequencies against the exact law, and the per-step
 * emission densities against direct sums. */
#include "fdcheck.h"

#define MAXT 6
#define MAXK 4

typedef struct Chain {
    int T, K;
    double p[MAXK], A[MAXK * MAXK];      /* probabilities (rows may hold 0) */
    double li[MAXK], lA[MAXK * MAXK];
    double em[MAXT * MAXK];
} Chain;

static void chain_logs(Chain *c)
{
    for (int k = 0; k < c->K; k++)
        c->li[k] = log(c->p[k]);
    for (int k = 0; k < c->K * c->K; k++)
        c->lA[k] = log(c->A[k]);
}

/* random normalised probabilities; with zeros, one entry of init and of
 * each transition row but the first is exactly 0 */
static void chain_random(Chain *c, uint64_t *s, int T, int K, bool zeros)
{
    c->T = T;
    c->K = K;
    for (int i = -1; i < K; i++) {
        double *row = i < 0 ? c->p : c->A + (size_t)i * K, tot = 0;
        for (int k = 0; k < K; k++)
            tot += row[k] = 0.1 + tu_uniform(s);
        if (zeros && K > 1 && i != 0)
            tot -= row[(i + 2) % K], row[(i + 2) % K] = 0;
        for (int k = 0; k < K; k++)
            row[k] /= tot;
    }
    for (int t = 0; t < T * K; t++)
        c->em[t] = 6 * (tu_uniform(s) - 0.5);
    chain_logs(c);
}

/* log p(x, path) of one path */
static double path_logp(const Chain *c, const int *z)
{
    double l = c->li[z[0]] + c->em[z[0]];
    for (int t = 1; t < c->T; t++)
        l += c->lA[z[t - 1] * c->K + z[t]] + c->em[t * c->K + z[t]];
    return l;
}

/* Brute force over the K^T paths: log Z, the marginals (T,K) and the best
 * path with its log joint. */
static double brute(const Chain *c, double *marg, int *best, double *best_lp)
{
    int z[MAXT] = {0};
    long n = 1;
    for (int t = 0; t < c->T; t++)
        n *= c->K;
    double m = -INFINITY;
    *best_lp = -INFINITY;
    for (long p = 0; p < n; p++) {
        long q = p;
        for (int t = 0; t < c->T; t++, q /= c->K)
            z[t] = (int)(q % c->K);
        double l = path_logp(c, z);
        if (l > m)
            m = l;
        if (l > *best_lp) {
            *best_lp = l;
            memcpy(best, z, sizeof z);
        }
    }
    double s = 0;
    memset(marg, 0, sizeof(double) * (size_t)c->T * c->K);
    for (long p = 0; p < n; p++) {
        long q = p;
        for (int t = 0; t < c->T; t++, q /= c->K)
            z[t] = (int)(q % c->K);
        double w = exp(path_logp(c, z) - m);
        s += w;
        for (int t = 0; t < c->T; t++)
            marg[t * c->K + z[t]] += w;
    }
    for (int i = 0; i < c->T * c->K; i++)
        marg[i] /= s;
    return m + log(s);
}

static double logz_of(const Chain *c)
{
    double alpha[MAXT * MAXK];
    return vlm_markov_forward(c->T, c->K, c->li, c->lA, c->em, alpha);
}

/* forward = brute force, and forward-backward's marginals = brute force,
 * to 1e-10, for T = 1..6 and K = 1..4, with and without zero probabilities
 * and with missing steps (emission 0) */
static void test_forward_brute(void)
{
    uint64_t s = 11;
    int cases = 0;
    for (int T = 1; T <= MAXT; T++)
        for (int K = 1; K <= MAXK; K++)
            for (int v = 0; v < 3; v++) {
                Chain c;
                chain_random(&c, &s, T, K, v == 1);
                if (v == 2)
                    for (int k = 0; k < K; k++)
                        c.em[(T / 2) * K + k] = 0;   /* a missing step */
                double marg[MAXT * MAXK], blp, alpha[MAXT * MAXK], beta[MAXT * MAXK];
                double gamma[MAXT * MAXK], work[MAXK];
                int bp[MAXT];
                double want = brute(&c, marg, bp, &blp);
                double got = vlm_markov_forward(T, K, c.li, c.lA, c.em, alpha);
                vlm_markov_backward(T, K, c.lA, c.em, beta, work);
                vlm_markov_grad(T, K, c.em, alpha, beta, got, 0, gamma, NULL, NULL);
                CU_ASSERT(fabs(got - want) <= 1e-10 * fmax(1, fabs(want)));
                double worst = 0;
                for (int i = 0; i < T * K; i++)
                    worst = fmax(worst, fabs(gamma[i] - marg[i]));
                CU_ASSERT(worst <= 1e-10);
                /* beta_0 and alpha agree on log Z too */
                double z0 = -INFINITY;
                for (int k = 0; k < K; k++)
                    if (c.li[k] + c.em[k] > -INFINITY)
                        z0 = fmax(z0, c.li[k] + c.em[k] + beta[k]);
                CU_ASSERT(z0 <= got + 1e-12);
                cases++;
            }
    CU_ASSERT_EQUAL(cases, 72);
}

/* Viterbi = the best of the K^T paths (random emissions: no ties) */
static void test_viterbi_brute(void)
{
    uint64_t s = 23;
    for (int T = 1; T <= MAXT; T++)
        for (int K = 2; K <= MAXK; K++)
            for (int v = 0; v < 2; v++) {
                Chain c;
                chain_random(&c, &s, T, K, v == 1);
                double marg[MAXT * MAXK], blp, delta[MAXT * MAXK];
                int bp[MAXT], back[MAXT * MAXK], path[MAXT];
                brute(&c, marg, bp, &blp);
                double got = vlm_markov_viterbi(T, K, c.li, c.lA, c.em, delta, back, path);
                CU_ASSERT(fabs(got - blp) <= 1e-10 * fmax(1, fabs(blp)));
                CU_ASSERT(memcmp(path, bp, sizeof(int) * (size_t)T) == 0);
                CU_ASSERT(fabs(path_logp(&c, path) - got) <= 1e-10 * fmax(1, fabs(got)));
            }
}

/* Ties go to the smaller state (markov.c's promise), in the back pointers
 * as well as at the last step: with a uniform chain and flat emissions
 * every path is equally likely and the answer is all zeros, log 1/8. */
static void test_viterbi_ties(void)
{
    enum { T = 3, K = 2 };
    double li[K], lA[K * K], em[T * K] = {0}, delta[T * K];
    int back[T * K], path[T] = {-1, -1, -1};
    for (int k = 0; k < K; k++)
        li[k] = log(0.5);
    for (int k = 0; k < K * K; k++)
        lA[k] = log(0.5);
    double got = vlm_markov_viterbi(T, K, li, lA, em, delta, back, path);
    CU_ASSERT(path[0] == 0 && path[1] == 0 && path[2] == 0);
    CU_ASSERT(fabs(got - 3 * log(0.5)) <= 1e-12);
}

/* d log Z / d em = gamma, / d init and / d trans (probabilities, also at
 * a zero probability: one-sided there) against finite differences */
static void test_grad_fd(void)
{
    uint64_t s = 37;
    for (int v = 0; v < 2; v++) {
        Chain c;
        int T = 5, K = 3;
        chain_random(&c, &s, T, K, v == 1);
        double alpha[MAXT * MAXK], beta[MAXT * MAXK], gamma[MAXT * MAXK], work[MAXK];
        double dPi[MAXK] = {0}, dPA[MAXK * MAXK] = {0};
        double lz = vlm_markov_forward(T, K, c.li, c.lA, c.em, alpha);
        vlm_markov_backward(T, K, c.lA, c.em, beta, work);
        /* c = 2: the accumulations are scaled */
        vlm_markov_grad(T, K, c.em, alpha, beta, lz, 2.0, gamma, dPi, dPA);
        const double h = 1e-6;
        for (int i = 0; i < T * K; i++) {
            Chain d = c;
            d.em[i] += h;
            double fp = logz_of(&d);
            d.em[i] -= 2 * h;
            double fm = logz_of(&d);
            CU_ASSERT(fabs((fp - fm) / (2 * h) - gamma[i]) <= 1e-7);
        }
        for (int i = 0; i < K + K * K; i++) {
            Chain d = c;
            double *pp = i < K ? &d.p[i] : &d.A[i - K];
            double an = (i < K ? dPi[i] : dPA[i - K]) / 2.0, fd;
            double p0 = *pp;
            if (p0 == 0) {
                *pp = h;
                chain_logs(&d);
                fd = (logz_of(&d) - lz) / h;
            } else {
                *pp = p0 + h;
                chain_logs(&d);
                double fp = logz_of(&d);
                *pp = p0 - h;
                chain_logs(&d);
                fd = (fp - logz_of(&d)) / (2 * h);
            }
            CU_ASSERT(fabs(fd - an) <= 1e-5 * fmax(1, fabs(an)));
        }
    }
}

/* logits: vlm_markov_log_params normalises each row, and
 * vlm_markov_params_bwd takes the probability gradients through it */
static void test_logits_fd(void)
{
    uint64_t s = 41;
    int T = 4, K = 3;
    float init[MAXK], trans[MAXK * MAXK];
    for (int k = 0; k < K; k++)
        init[k] = (float)(2 * tu_uniform(&s) - 1);
    for (int k = 0; k < K * K; k++)
        trans[k] = (float)(2 * tu_uniform(&s) - 1);
    Chain c = {.T = T, .K = K};
    for (int t = 0; t < T * K; t++)
        c.em[t] = 4 * (tu_uniform(&s) - 0.5);
    vlm_markov_log_params(K, true, init, trans, c.li, c.lA);
    double tot = 0;
    for (int k = 0; k < K; k++)
        tot += exp(c.li[k]);
    CU_ASSERT(fabs(tot - 1) < 1e-12);
    double alpha[MAXT * MAXK], beta[MAXT * MAXK], gamma[MAXT * MAXK], work[MAXK];
    double dPi[MAXK] = {0}, dPA[MAXK * MAXK] = {0};
    double lz = vlm_markov_forward(T, K, c.li, c.lA, c.em, alpha);
    vlm_markov_backward(T, K, c.lA, c.em, beta, work);
    vlm_markov_grad(T, K, c.em, alpha, beta, lz, 1.0, gamma, dPi, dPA);
    float dinit[MAXK] = {0}, dtrans[MAXK * MAXK] = {0};
    vlm_markov_params_bwd(K, true, c.li, c.lA, dPi, dPA, dinit, dtrans);
    /* finite differences in double of log Z(log_softmax(a)) */
    const double h = 1e-6;
    for (int i = 0; i < K + K * K; i++) {
        double f[2];
        for (int sg = 0; sg < 2; sg++) {
            double a[MAXK * (MAXK + 1)];
            for (int k = 0; k < K; k++)
                a[k] = init[k];
            for (int k = 0; k < K * K; k++)
                a[K + k] = trans[k];
            a[i] += sg ? -h : h;
            Chain d = c;
            for (int r = 0; r <= K; r++) {
                double *row = a + (r == 0 ? 0 : K + (r - 1) * K), m = 0;
                double *dst = r == 0 ? d.li : d.lA + (r - 1) * K;
                for (int k = 0; k < K; k++)
                    m += exp(row[k]);
                for (int k = 0; k < K; k++)
                    dst[k] = row[k] - log(m);
            }
            f[sg] = logz_of(&d);
        }
        double fd = (f[0] - f[1]) / (2 * h), an = i < K ? dinit[i] : dtrans[i - K];
        CU_ASSERT(fabs(fd - an) <= 1e-5);
    }
    /* the probability form passes its gradients through unchanged */
    float pi[MAXK] = {0}, pa[MAXK * MAXK] = {0};
    vlm_markov_params_bwd(K, false, c.li, c.lA, dPi, dPA, pi, pa);
    CU_ASSERT(fabs(pi[1] - (float)dPi[1]) < 1e-6 && fabs(pa[4] - (float)dPA[4]) < 1e-6);
}

/* The sampler's (z_0, z_1, z_2) frequencies against the exact law, within
 * 4.5 standard errors, for probs and for logits */
static void test_sample_law(void)
{
    const int K = 3, T = 3, N = 120000;
    float p[3] = {0.5f, 0.3f, 0.2f};
    float A[9] = {0.8f, 0.1f, 0.1f, 0.2f, 0.6f, 0.2f, 0.0f, 0.3f, 0.7f};
    float lp[3], lA[9];
    for (int k = 0; k < 3; k++)
        lp[k] = logf(p[k]) + 1.5f;   /* logits: any shift per row */
    for (int k = 0; k < 9; k++)
        lA[k] = A[k] > 0 ? logf(A[k]) - 0.5f : -INFINITY;
    float *out = vlm_xmalloc(sizeof(float) * (size_t)N * T);
    for (int form = 0; form < 2; form++) {
        VlmRng rng;
        vlm_rng_init(&rng, 5 + form, VLM_STREAM_SAMPLE);
        VlmIn th[2] = {{form ? lp : p, 0, 1}, {form ? lA : A, 0, 1}};
        (form ? vlm_dist_markov_logits_sample : vlm_dist_markov_probs_sample)(&rng, N, T, K, th, out);
        long cnt[27] = {0};
        for (int r = 0; r < N; r++)
            cnt[(int)out[r * T] * 9 + (int)out[r * T + 1] * 3 + (int)out[r * T + 2]]++;
        int bad = 0;
        for (int c = 0; c < 27; c++) {
            int a = c / 9, b = (c / 3) % 3, d = c % 3;
            double q = (double)p[a] * A[a * 3 + b] * A[b * 3 + d];
            double se = sqrt(q * (1 - q) / N) + 1e-12;
            if (fabs((double)cnt[c] / N - q) > 4.5 * se)
                bad++;
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
    free(out);
}

/* Per-step densities: out[t*R + r] = sum over step t's elements of row r,
 * a masked-out step gives 0, and the backward equals finite differences of
 * sum_t,r dout * out with respect to the loc values. */
static void test_logp_steps(void)
{
    const int R = 3, T = 4, n = 2;
    uint64_t s = 3;
    float *x = tu_floats(&s, (size_t)R * T * n, -1, 1);
    float *loc = tu_floats(&s, (size_t)R * T * n, -1, 1);
    float scale = 0.7f;
    float mask[3 * 4 * 2];
    for (int i = 0; i < R * T * n; i++)
        mask[i] = 1;
    mask[(1 * T + 2) * n] = mask[(1 * T + 2) * n + 1] = 0;   /* row 1, step 2 */
    VlmIn th[2] = {{loc, T * n, 1}, {&scale, 0, 0}};
    double out[3 * 4];
    vlm_logp_steps(vlm_dist_normal_logp, R, T, n, 1, (VlmIn){x, T * n, 1}, th, 2,
                   (VlmIn){mask, T * n, 1}, out);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            double want = 0;
            for (int i = 0; i < n; i++) {
                size_t e = ((size_t)r * T + t) * n + i;
                double z = (x[e] - loc[e]) / scale;
                want += mask[e] * (-0.5 * z * z - log(scale) - 0.5 * log(2 * M_PI));
            }
            CU_ASSERT(fabs(out[t * R + r] - want) < 1e-5);
        }
    CU_ASSERT_EQUAL(out[2 * R + 1], 0);
    float dout[3 * 4], dloc[3 * 4 * 2] = {0};
    for (int i = 0; i < R * T; i++)
        dout[i] = (float)(tu_uniform(&s) - 0.5);
    VlmOut dth[2] = {{dloc, T * n, 1}, {NULL, 0, 0}};
    vlm_logp_steps_bwd(vlm_dist_normal_logp_bwd, R, T, n, 1, (VlmIn){x, T * n, 1}, th, 2,
                       (VlmIn){mask, T * n, 1}, dout, (VlmOut){NULL, 0, 0}, dth);
    for (int e = 0; e < R * T * n; e++) {
        int r = e / (T * n), t = (e / n) % T;
        double z = (x[e] - loc[e]) / scale;
        double want = dout[t * R + r] * mask[e] * z / scale;   /* d/dloc */
        CU_ASSERT(fabs(dloc[e] - want) < 1e-5);
    }
    free(x);
    free(loc);
}

void vlm_test_markov(void)
{
    CU_pSuite s = CU_add_suite("markov", NULL, NULL);
    CU_add_test(s, "forward and marginals = brute force (T <= 6), 1e-10", test_forward_brute);
    CU_add_test(s, "Viterbi = brute force", test_viterbi_brute);
    CU_add_test(s, "Viterbi ties go to the smaller state", test_viterbi_ties);
    CU_add_test(s, "gradients of log Z vs finite differences", test_grad_fd);
    CU_add_test(s, "logits form vs finite differences", test_logits_fd);
    CU_add_test(s, "sampler's path frequencies = the law", test_sample_law);
    CU_add_test(s, "per-step emission densities and their backward", test_logp_steps);
}
