/* test_psis.c — CUnit suite "psis": the Pareto k-hat diagnostic (psis.c)
 * and the evidence verdict (evidence.c). The generalized Pareto fit
 * recovers known shapes from large samples within a tolerance set from the
 * estimator's standard error, matches an independent transcription of R
 * loo's gpdfit on fixed vectors (tests/unit/psis_reference.py), and says
 * "not available" where there is no tail to fit. Seeds are fixed. */
#include "vlm.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n draws of the GPD(k, sigma) by inversion: sigma ((1 - u)^-k - 1) / k. */
static void gpd_draws(VlmRng *r, int n, double k, double sigma, double *x)
{
    for (int i = 0; i < n; i++) {
        double u = vlm_rng_uniform(r);
        x[i] = sigma * expm1(-k * log1p(-u)) / k;
    }
}

static void test_tail_len(void)
{
    /* ceil(min(0.2 S, 3 sqrt(S))) */
    CU_ASSERT(vlm_psis_tail_len(20) == 4);
    CU_ASSERT(vlm_psis_tail_len(21) == 5);
    CU_ASSERT(vlm_psis_tail_len(25) == 5);
    CU_ASSERT(vlm_psis_tail_len(100) == 20);
    CU_ASSERT(vlm_psis_tail_len(1000) == 95);
    CU_ASSERT(vlm_psis_tail_len(10000) == 300);
}

/* The fit directly on n = 20000 draws: the estimator's standard error is
 * about (1 + k) / sqrt(n) (the maximum likelihood one; Zhang & Stephens'
 * is as efficient), so 4 of them, plus the prior's pull towards 1/2 of
 * 10 / (n + 10). */
static void test_gpd_fit_recovers_k(void)
{
    const int n = 20000;
    const double ks[3] = {0.2, 0.5, 0.9};
    double *x = vlm_xmalloc(n * sizeof *x);
    double *work = vlm_xmalloc(2 * (30 + 200) * sizeof *work);
    VlmRng r;
    vlm_rng_init(&r, 11, 7);
    for (int t = 0; t < 3; t++) {
        gpd_draws(&r, n, ks[t], 1.5, x);
        qsort(x, n, sizeof *x, cmp);
        double k, sigma;
        vlm_gpd_fit(n, x, &k, &sigma, work);
        double tol = 4 * (1 + ks[t]) / sqrt(n) + fabs(0.5 - ks[t]) * 10 / (n + 10.0);
        printf("\n  gpd fit, n = %d: k %.2f -> %.4f (tol %.3f), sigma 1.5 -> %.4f",
               n, ks[t], k, tol, sigma);
        CU_ASSERT(fabs(k - ks[t]) < tol);
        CU_ASSERT(fabs(sigma - 1.5) < 0.1);
    }
    free(x);
    free(work);
}

/* k-hat of log weights whose upper tail is a GPD: S = 100000 draws, the
 * fit uses the largest M = 949 (3 sqrt(S)); the excess of a GPD over a
 * threshold is a GPD of the same k. SE about (1 + k) / sqrt(M). */
static void test_khat_recovers_k(void)
{
    const int S = 100000;
    const double ks[3] = {0.2, 0.5, 0.9};
    double *lw = vlm_xmalloc(S * sizeof *lw);
    double *work = vlm_xmalloc(vlm_psis_work(S) * sizeof *work);
    VlmRng r;
    vlm_rng_init(&r, 12, 7);
    int M = vlm_psis_tail_len(S);
    CU_ASSERT(M == 949);
    for (int t = 0; t < 3; t++) {
        gpd_draws(&r, S, ks[t], 1, lw);
        for (int i = 0; i < S; i++)
            lw[i] = log1p(lw[i]) - 700;   /* log weights, far below 0 */
        double k = vlm_psis_khat(S, lw, work);
        double tol = 4 * (1 + ks[t]) / sqrt(M) + fabs(0.5 - ks[t]) * 10 / (M + 10.0);
        printf("\n  k-hat, S = %d: k %.2f -> %.4f (tol %.3f)", S, ks[t], k, tol);
        CU_ASSERT(fabs(k - ks[t]) < tol);
    }
    /* light tails: log weights N(0, 0.3^2), a well matched guide */
    for (int i = 0; i < S; i++)
        lw[i] = 0.3 * vlm_rng_normal(&r);
    double k = vlm_psis_khat(S, lw, work);
    printf("\n  k-hat of N(0, 0.3^2) log weights: %.4f\n", k);
    CU_ASSERT(k < 0.2);
    free(lw);
    free(work);
}

/* Fixed vectors against tests/unit/psis_reference.py, a pure-Python
 * transcription of R loo's gpdfit and psis tail, run once (Python 3.11):
 *   gpdfit: k = 0.78621674171865  sigma = 0.530869479634945
 *   khat(lw, S = 100) = 0.40116338202686 */
static void test_reference_values(void)
{
    double x[12] = {0.11, 0.52, 0.03, 1.7, 0.26, 0.94, 3.8, 0.07, 0.61,
                    2.2, 0.38, 12.5};
    double work[256], k, sigma;
    qsort(x, 12, sizeof *x, cmp);
    vlm_gpd_fit(12, x, &k, &sigma, work);
    CU_ASSERT(fabs(k - 0.78621674171865) < 1e-12);
    CU_ASSERT(fabs(sigma - 0.530869479634945) < 1e-12);
    double lw[100];
    for (int i = 0; i < 100; i++)
        lw[i] = 2.0 * sin(0.7 * i) + 0.013 * pow(i, 1.3);
    CU_ASSERT(vlm_psis_work(100) <= 256);
    CU_ASSERT(fabs(vlm_psis_khat(100, lw, work) - 0.40116338202686) < 1e-12);
    /* shifting every log weight changes nothing (it works on lw - max) */
    for (int i = 0; i < 100; i++)
        lw[i] += 1e4;
    CU_ASSERT(fabs(vlm_psis_khat(100, lw, work) - 0.40116338202686) < 1e-9);
}

/* k-hat depends on the multiset of log weights, not their order: the
 * selection of the cutoff must put the value of rank S - M - 1 in place
 * whatever the input order (a wrong branch on t == j leaves another value
 * there). 200 heavy-tailed vectors, S = 21, 24, ..., 618, each against
 * its sorted copy; the results must be bitwise equal, since the tail is
 * sorted before the fit. */
static void test_khat_order_free(void)
{
    enum { NV = 200, SMAX = 21 + 3 * (NV - 1) };
    double *lw = vlm_xmalloc(SMAX * sizeof *lw);
    double *sorted = vlm_xmalloc(SMAX * sizeof *sorted);
    double *work = vlm_xmalloc(vlm_psis_work(SMAX) * sizeof *work);
    VlmRng r;
    vlm_rng_init(&r, 31, 5);
    int differ = 0, finite = 0;
    for (int v = 0; v < NV; v++) {
        int S = 21 + 3 * v;
        for (int i = 0; i < S; i++) {
            double u = vlm_rng_uniform(&r), z = vlm_rng_normal(&r);
            /* (log U)^2, or a t-like z / sqrt(U): both heavy upper tails */
            lw[i] = v % 2 ? log(u) * log(u) : z / sqrt(u + 1e-12);
        }
        memcpy(sorted, lw, S * sizeof *lw);
        qsort(sorted, S, sizeof *sorted, cmp);
        double a = vlm_psis_khat(S, lw, work);
        double b = vlm_psis_khat(S, sorted, work);
        finite += isfinite(a);
        differ += memcmp(&a, &b, sizeof a) != 0;
    }
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT_EQUAL(finite, NV);          /* not vacuous: every k-hat exists */
    free(lw);
    free(sorted);
    free(work);
}

/* No number where there is no tail: fewer than 5 tail samples (S < 21),
 * tied largest weights (a discrete guide with few values), and excesses
 * whose first quartile is 0 (tied with the threshold). */
static void test_not_available(void)
{
    double lw[200], work[512];
    for (int i = 0; i < 200; i++)
        lw[i] = sin(1.3 * i);
    CU_ASSERT(isnan(vlm_psis_khat(20, lw, work)));
    /* M = 5 at S = 21; psis_reference.py's khat of these: -0.27120308235838 */
    CU_ASSERT(fabs(vlm_psis_khat(21, lw, work) + 0.27120308235838) < 1e-12);
    for (int i = 0; i < 200; i++)          /* three values, the largest
                                              drawn 60 times */
        lw[i] = i % 10 < 3 ? -1.0 : i % 10 < 7 ? -2.5 : -0.2;
    CU_ASSERT(isnan(vlm_psis_khat(200, lw, work)));
    double x[8] = {0, 0, 0, 2, 3, 4, 5, 6}, k, sigma;
    vlm_gpd_fit(8, x, &k, &sigma, work);
    CU_ASSERT(isnan(k));
    x[0] = x[1] = x[2] = 1;      /* ties above 0 are a tail (as in loo) */
    vlm_gpd_fit(8, x, &k, &sigma, work);
    CU_ASSERT(isfinite(k));
}

/* Per-item statistics: one sample has no SE (NaN, printed n/a) and no
 * k-hat; equal weights give ESS = K and SE 0. */
static void test_item_stats(void)
{
    double lw[100];
    VlmItemStats st;
    lw[0] = -3;
    vlm_infer_stats(1, lw, NULL, &st);
    CU_ASSERT(isnan(st.se) && isnan(st.khat) && st.ess == 1);
    CU_ASSERT(st.iwae == -3 && st.elbo == -3);
    for (int i = 0; i < 100; i++)
        lw[i] = -3;
    vlm_infer_stats(100, lw, NULL, &st);
    CU_ASSERT(st.se == 0 && fabs(st.ess - 100) < 1e-9);
    CU_ASSERT(fabs(st.iwae + 3) < 1e-12);
}

/* K = 2 weights 1 and 3 (log w = 0, log 3): mean 2, sample sd sqrt 2
 * (divisor K - 1), SE = sd / mean / sqrt K = 1/2 exactly; the population
 * sd (divisor K) would give 0.35355. IWAE = log 2, ELBO = log 3 / 2,
 * ESS = 16 / 10. */
static void test_item_stats_two(void)
{
    double lw[2] = {0, log(3.0)};
    VlmItemStats st;
    vlm_infer_stats(2, lw, NULL, &st);
    CU_ASSERT(fabs(st.se - 0.5) < 1e-12);
    CU_ASSERT(fabs(st.iwae - log(2.0)) < 1e-12);
    CU_ASSERT(fabs(st.elbo - log(3.0) / 2) < 1e-12);
    CU_ASSERT(fabs(st.ess - 1.6) < 1e-12);
    CU_ASSERT(isnan(st.khat));
}

/* The verdict: unreliable when k-hat > 0.7 on more than 1% of the items
 * or ESS < 2 on any; SE n/a at K = 1; the words say what helps. */
static void test_verdict(void)
{
    enum { N = 200 };
    VlmItemStats st[N];
    for (int i = 0; i < N; i++)
        st[i] = (VlmItemStats){.elbo = -5, .iwae = -4, .se = 0.01,
                               .ess = 80, .khat = 0.3};
    VlmEvidence ev;
    vlm_evidence_summarize(N, st, 100, false, true, &ev);
    CU_ASSERT(!ev.unreliable && ev.khat_bad == 0 && ev.khat_n == N);
    CU_ASSERT(fabs(ev.se - sqrt(N * 1e-4) / N) < 1e-12);
    st[3].khat = 0.9;
    st[4].khat = 0.8;                    /* 1% of 200: not more than 1% */
    vlm_evidence_summarize(N, st, 100, false, true, &ev);
    CU_ASSERT(!ev.unreliable && ev.khat_bad == 2 && ev.khat_max == 0.9);
    st[5].khat = 0.71;                   /* 1.5% */
    vlm_evidence_summarize(N, st, 100, false, true, &ev);
    CU_ASSERT(ev.unreliable);
    st[3].khat = st[4].khat = st[5].khat = 0.3;
    st[7].ess = 1.5;
    vlm_evidence_summarize(N, st, 100, false, true, &ev);
    CU_ASSERT(ev.unreliable && ev.ess_below2 == 1);

    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    vlm_evidence_print(f, &ev, "data.csv");
    fclose(f);
    CU_ASSERT(strstr(buf, "warning: this log p(x) estimate is unreliable") != NULL);
    CU_ASSERT(strstr(buf, "effective sample size is below 2 on 1 item") != NULL);
    CU_ASSERT(strstr(buf, "more samples (--iw") != NULL);
    CU_ASSERT(strstr(buf, "--refine") != NULL);
    CU_ASSERT(strstr(buf, "k-hat           max 0.30; 0.0% of items above 0.7") != NULL);

    /* reliable by the rule, but log-mean-exp's bias sum se^2 / 2N (0.02)
     * exceeds the SE of the mean sqrt(sum se^2) / N (0.014): a note */
    for (int i = 0; i < N; i++)
        st[i] = (VlmItemStats){.elbo = -5, .iwae = -4, .se = 0.2, .ess = 60,
                               .khat = 0.4};
    vlm_evidence_summarize(N, st, 1000, false, false, &ev);
    CU_ASSERT(!ev.unreliable && fabs(ev.bias - 0.02) < 1e-12);
    f = fmemopen(buf, sizeof buf, "w");
    vlm_evidence_print(f, &ev, "data.csv");
    fclose(f);
    CU_ASSERT(strstr(buf, "note: log-mean-exp is biased low by about 0.02") != NULL);
    CU_ASSERT(strstr(buf, "warning") == NULL);

    /* K = 1: the SE and k-hat are n/a, and no verdict */
    for (int i = 0; i < N; i++)
        st[i] = (VlmItemStats){.elbo = -5, .iwae = -5, .se = NAN, .ess = 1,
                               .khat = NAN};
    vlm_evidence_summarize(N, st, 1, false, false, &ev);
    CU_ASSERT(isnan(ev.se) && !ev.unreliable);
    f = fmemopen(buf, sizeof buf, "w");
    vlm_evidence_print(f, &ev, "data.csv");
    fclose(f);
    CU_ASSERT(strstr(buf, "+- n/a") != NULL);
    CU_ASSERT(strstr(buf, "k-hat           n/a") != NULL);
    CU_ASSERT(strstr(buf, "warning") == NULL);
}

/* sd over items is the population sd of the items' IWAE estimates,
 * sqrt(mean x^2 - mean^2): for -1 and -5, sqrt(13 - 9) = 2 (not its square,
 * 4); for -1, -2, -6: sqrt(41/3 - 9) = sqrt(14/3). One item has none. */
static void test_sd_items(void)
{
    VlmItemStats st[3] = {{.elbo = -2, .iwae = -1, .se = 0.1, .ess = 50, .khat = 0.2},
                          {.elbo = -6, .iwae = -5, .se = 0.1, .ess = 50, .khat = 0.2},
                          {.elbo = -7, .iwae = -6, .se = 0.1, .ess = 50, .khat = 0.2}};
    VlmEvidence ev;
    vlm_evidence_summarize(2, st, 100, false, true, &ev);
    CU_ASSERT_DOUBLE_EQUAL(ev.iwae, -3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(ev.sd_items, 2, 1e-12);
    st[1].iwae = -2;
    vlm_evidence_summarize(3, st, 100, false, true, &ev);
    CU_ASSERT_DOUBLE_EQUAL(ev.sd_items, sqrt(14.0 / 3), 1e-12);
    vlm_evidence_summarize(1, st, 100, false, true, &ev);
    CU_ASSERT(ev.sd_items == 0);
}

void vlm_test_psis(void)
{
    CU_pSuite s = CU_add_suite("psis", NULL, NULL);
    CU_add_test(s, "tail length ceil(min(0.2 S, 3 sqrt S))", test_tail_len);
    CU_add_test(s, "gpd fit recovers k = 0.2, 0.5, 0.9", test_gpd_fit_recovers_k);
    CU_add_test(s, "k-hat recovers a GPD tail's k", test_khat_recovers_k);
    CU_add_test(s, "gpdfit and k-hat match the reference", test_reference_values);
    CU_add_test(s, "k-hat not available without a tail", test_not_available);
    CU_add_test(s, "item stats: K = 1 has no SE", test_item_stats);
    CU_add_test(s, "item stats: K = 2, SE with divisor K - 1", test_item_stats_two);
    CU_add_test(s, "k-hat does not depend on the order of the weights",
                test_khat_order_free);
    CU_add_test(s, "verdict: k-hat share, ESS < 2, n/a at K = 1", test_verdict);
    CU_add_test(s, "sd over items is the population sd", test_sd_items);
}
