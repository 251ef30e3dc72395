/* test_rng.c — CUnit suite "rng": Philox known answers, reproducibility,
 * stream independence, save/restore, the bulk fill paths against the word
 * stream, and the samplers' moments and unbiasedness (fixed seeds, 5-SE
 * tolerances). Distribution densities are tested in test_dists.c. */
#include "vlm.h"
#include "fdcheck.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* moments: tu_moments_ok (fdcheck.h), mean and variance within 5 SE */

#define NDRAW 1000000

static void test_philox_kat(void)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0},
         {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
        VlmRng r;
        vlm_rng_init(&r, (uint64_t)kat[t].key[1] << 32 | kat[t].key[0],
                     (uint64_t)kat[t].ctr[3] << 32 | kat[t].ctr[2]);
        r.counter = (uint64_t)kat[t].ctr[1] << 32 | kat[t].ctr[0];
        for (int w = 0; w < 4; w++)
            CU_ASSERT_EQUAL(vlm_rng_u32(&r), kat[t].out[w]);
    }
}

static void test_reproducible(void)
{
    VlmRng a, b;
    vlm_rng_init(&a, 12345, VLM_STREAM_NOISE);
    vlm_rng_init(&b, 12345, VLM_STREAM_NOISE);
    int same = 1;
    for (int i = 0; i < 1000; i++)
        same &= vlm_rng_u32(&a) == vlm_rng_u32(&b);
    CU_ASSERT(same);
    float fa[333], fb[333];
    vlm_rng_normal_fill(&a, fa, 333);
    vlm_rng_normal_fill(&b, fb, 333);
    CU_ASSERT(memcmp(fa, fb, sizeof fa) == 0);
}

/* Different streams (and seeds) give different, uncorrelated sequences:
 * |corr| below 5/sqrt(N), also at lag 1. */
static void test_streams_independent(void)
{
    enum { N = 200000 };
    double *u = malloc(sizeof(double) * N), *v = malloc(sizeof(double) * N),
           *w = malloc(sizeof(double) * N);
    VlmRng a, b, c;
    vlm_rng_init(&a, 7, 1);
    vlm_rng_init(&b, 7, 2);
    vlm_rng_init(&c, 8, 1);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        u[i] = vlm_rng_uniform(&a);
        v[i] = vlm_rng_uniform(&b);
        w[i] = vlm_rng_uniform(&c);
        differ += u[i] != v[i];
    }
    CU_ASSERT(differ > N - 10);
    const double *pairs[][2] = {{u, v}, {u, w}, {v, w}};
    for (int p = 0; p < 3; p++)
        for (int lag = 0; lag < 2; lag++) {
            const double *x = pairs[p][0], *y = pairs[p][1];
            double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
            int m = N - lag;
            for (int i = 0; i < m; i++) {
                sx += x[i];
                sy += y[i + lag];
                sxy += x[i] * y[i + lag];
                sxx += x[i] * x[i];
                syy += y[i + lag] * y[i + lag];
            }
            double cov = sxy / m - sx / m * sy / m;
            double corr = cov / sqrt((sxx / m - sx / m * sx / m) *
                                     (syy / m - sy / m * sy / m));
            CU_ASSERT(fabs(corr) < 5.0 / sqrt((double)m));
        }
    free(u);
    free(v);
    free(w);
}

/* Consume a mixture of draws and report a digest of what came out. */
static double mixed_draws(VlmRng *r)
{
    double h = 0;
    float f[37];
    for (int k = 0; k < 5; k++) {
        h = h * 1.0001 + vlm_rng_u32(r);
        h = h * 1.0001 + vlm_rng_uniform(r);
        h = h * 1.0001 + vlm_rng_normal(r);
        vlm_rng_normal_fill(r, f, 37 - k);
        for (int i = 0; i < 37 - k; i++)
            h = h * 1.0001 + f[i];
        vlm_rng_uniform_fill(r, f, 3 + k);
        for (int i = 0; i < 3 + k; i++)
            h = h * 1.0001 + f[i];
        h = h * 1.0001 + vlm_rng_gamma(r, 0.5 + k);
        h = h * 1.0001 + (double)vlm_rng_poisson(r, 3.0 + 10 * k);
        h = h * 1.0001 + (double)vlm_rng_below(r, 1000 + k);
    }
    return h;
}

static void test_save_restore(void)
{
    VlmRng r, saved;
    vlm_rng_init(&r, 99, VLM_STREAM_ORDER);
    for (int i = 0; i < 7; i++) /* mid-block */
        vlm_rng_u32(&r);
    saved = r;
    double h1 = mixed_draws(&r);
    VlmRng after = r;
    r = saved;
    double h2 = mixed_draws(&r);
    CU_ASSERT_EQUAL(h1, h2);
    CU_ASSERT(memcmp(&r, &after, sizeof r) == 0);
}

/* The bulk fill consumes exactly the word stream vlm_rng_u32 gives, from
 * any buffer position, and maps each word to a float in (0, 1). */
static void test_fill_matches_words(void)
{
    for (int start = 0; start < 4; start++) {
        VlmRng a, b;
        vlm_rng_init(&a, 5, 6);
        for (int i = 0; i < start; i++)
            vlm_rng_u32(&a);
        b = a;
        float f[1031];
        vlm_rng_uniform_fill(&a, f, 1031);
        int ok = 1;
        for (int i = 0; i < 1031; i++) {
            uint32_t w = vlm_rng_u32(&b);
            ok &= f[i] == ((float)(w >> 9) + 0.5f) * 0x1p-23f;
        }
        CU_ASSERT(ok);
        CU_ASSERT(memcmp(&a, &b, sizeof a) == 0);
    }
}

static void test_uniform_open(void)
{
    VlmRng r;
    vlm_rng_init(&r, 1, 1);
    double lo = 1, hi = 0;
    float flo = 1, fhi = 0;
    double *v = malloc(sizeof(double) * NDRAW);
    float *f = malloc(sizeof(float) * NDRAW);
    for (size_t i = 0; i < NDRAW; i++) {
        v[i] = vlm_rng_uniform(&r);
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    vlm_rng_uniform_fill(&r, f, NDRAW);
    for (size_t i = 0; i < NDRAW; i++) {
        flo = fminf(flo, f[i]);
        fhi = fmaxf(fhi, f[i]);
    }
    CU_ASSERT(lo > 0 && hi < 1);
    CU_ASSERT(flo > 0 && fhi < 1);
    /* the extreme words map strictly inside (0, 1) */
    CU_ASSERT(((float)(0u >> 9) + 0.5f) * 0x1p-23f > 0);
    CU_ASSERT(((float)(0xffffffffu >> 9) + 0.5f) * 0x1p-23f < 1);
    CU_ASSERT(((double)(UINT64_MAX >> 12) + 0.5) * 0x1p-52 < 1);
    CU_ASSERT(tu_moments_ok(v, NDRAW, 0.5, 1.0 / 12, "uniform"));
    for (size_t i = 0; i < NDRAW; i++)
        v[i] = f[i];
    CU_ASSERT(tu_moments_ok(v, NDRAW, 0.5, 1.0 / 12, "uniform_fill"));
    free(v);
    free(f);
}

static void test_normal(void)
{
    VlmRng r;
    vlm_rng_init(&r, 2, 1);
    double *v = malloc(sizeof(double) * NDRAW);
    float *f = malloc(sizeof(float) * NDRAW);
    for (size_t i = 0; i < NDRAW; i++)
        v[i] = vlm_rng_normal(&r);
    CU_ASSERT(tu_moments_ok(v, NDRAW, 0, 1, "normal"));
    vlm_rng_normal_fill(&r, f, NDRAW - 1); /* odd length */
    double m4 = 0, tail = 0;
    for (size_t i = 0; i < NDRAW - 1; i++) {
        v[i] = f[i];
        m4 += v[i] * v[i] * v[i] * v[i];
        tail += fabs(v[i]) > 2;
    }
    CU_ASSERT(tu_moments_ok(v, NDRAW - 1, 0, 1, "normal_fill"));
    /* kurtosis 3 (SE sqrt(96/N)) and P(|z| > 2) = 0.0455 */
    CU_ASSERT(fabs(m4 / (NDRAW - 1) - 3) < 5 * sqrt(96.0 / NDRAW));
    double p2 = 0.04550026389635842;
    CU_ASSERT(fabs(tail / (NDRAW - 1) - p2) < 5 * sqrt(p2 * (1 - p2) / NDRAW));
    free(v);
    free(f);
}

static void test_gamma_beta(void)
{
    VlmRng r;
    vlm_rng_init(&r, 3, 1);
    double *v = malloc(sizeof(double) * NDRAW);
    const double shapes[] = {0.05, 0.3, 1.0, 2.5, 40.0};
    for (size_t s = 0; s < 5; s++) {
        double a = shapes[s];
        for (size_t i = 0; i < NDRAW; i++)
            v[i] = vlm_rng_gamma(&r, a);
        char label[64];
        snprintf(label, sizeof label, "gamma(%g)", a);
        CU_ASSERT(tu_moments_ok(v, NDRAW, a, a, label));
    }
    const double ab[][2] = {{0.5, 0.5}, {2, 5}, {0.05, 0.1}};
    for (size_t s = 0; s < 3; s++) {
        double a = ab[s][0], b = ab[s][1];
        int inside = 1;
        for (size_t i = 0; i < NDRAW; i++) {
            v[i] = vlm_rng_beta(&r, a, b);
            inside &= v[i] >= 0 && v[i] <= 1;
        }
        CU_ASSERT(inside);
        double m = a / (a + b), var = a * b / ((a + b) * (a + b) * (a + b + 1));
        CU_ASSERT(tu_moments_ok(v, NDRAW, m, var, "beta"));
    }
    CU_ASSERT(isnan(vlm_rng_gamma(&r, 0)));
    CU_ASSERT(isnan(vlm_rng_beta(&r, -1, 1)));
    free(v);
}

static void test_poisson(void)
{
    VlmRng r;
    vlm_rng_init(&r, 4, 1);
    double *v = malloc(sizeof(double) * NDRAW);
    const double rates[] = {0.01, 1.0, 9.99, 10.0, 47.5, 1e5};
    for (size_t s = 0; s < 6; s++) {
        int nonneg = 1;
        for (size_t i = 0; i < NDRAW; i++) {
            long k = vlm_rng_poisson(&r, rates[s]);
            nonneg &= k >= 0;
            v[i] = (double)k;
        }
        char label[64];
        snprintf(label, sizeof label, "poisson(%g)", rates[s]);
        CU_ASSERT(nonneg);
        CU_ASSERT(tu_moments_ok(v, NDRAW, rates[s], rates[s], label));
    }
    CU_ASSERT_EQUAL(vlm_rng_poisson(&r, 0), 0);
    CU_ASSERT_EQUAL(vlm_rng_poisson(&r, NAN), 0);
    CU_ASSERT(vlm_rng_poisson(&r, 1e20) > 0);
    free(v);
}

static void test_bernoulli_categorical(void)
{
    VlmRng r;
    vlm_rng_init(&r, 5, 1);
    double *v = malloc(sizeof(double) * NDRAW);
    for (size_t i = 0; i < NDRAW; i++)
        v[i] = vlm_rng_bernoulli(&r, 0.3);
    CU_ASSERT(tu_moments_ok(v, NDRAW, 0.3, 0.21, "bernoulli"));
    CU_ASSERT_EQUAL(vlm_rng_bernoulli(&r, 0), 0);
    CU_ASSERT_EQUAL(vlm_rng_bernoulli(&r, 1), 1);
    const float p[5] = {0.1f, 0.0f, 0.4f, 0.2f, 0.3f};
    long cnt[5] = {0};
    for (size_t i = 0; i < NDRAW; i++) {
        int k = vlm_rng_categorical(&r, p, 5);
        cnt[k]++;
        v[i] = k;
    }
    CU_ASSERT_EQUAL(cnt[1], 0);
    double m = 0, m2 = 0;
    for (int k = 0; k < 5; k++) {
        m += k * p[k];
        m2 += k * k * p[k];
    }
    CU_ASSERT(tu_moments_ok(v, NDRAW, m, m2 - m * m, "categorical"));
    /* probabilities summing slightly short of 1 never run off the end */
    const float q[2] = {0.0f, 0.9999999f};
    int ok = 1;
    for (int i = 0; i < 10000; i++)
        ok &= vlm_rng_categorical(&r, q, 2) == 1;
    CU_ASSERT(ok);
    free(v);
}

/* below(n): chi-square over n = 7 (6 dof, 99.99th percentile 27.9), and
 * n = 3*2^30 / 3*2^62, where modulo reduction of a raw word would put 1/2
 * (not 1/3) of the mass below 2^30 / 2^62. */
static void test_below(void)
{
    VlmRng r;
    vlm_rng_init(&r, 6, 1);
    enum { N = 140000 };
    long c[7] = {0};
    for (int i = 0; i < N; i++)
        c[vlm_rng_below(&r, 7)]++;
    double chi = 0;
    for (int k = 0; k < 7; k++)
        chi += (c[k] - N / 7.0) * (c[k] - N / 7.0) / (N / 7.0);
    CU_ASSERT(chi < 27.9);
    const uint64_t big[2] = {3ull << 30, 3ull << 62};
    for (int b = 0; b < 2; b++) {
        long low = 0;
        int inrange = 1;
        for (int i = 0; i < N; i++) {
            uint64_t x = vlm_rng_below(&r, big[b]);
            inrange &= x < big[b];
            low += x < big[b] / 3;
        }
        CU_ASSERT(inrange);
        CU_ASSERT(fabs(low / (double)N - 1.0 / 3) < 5 * sqrt(2.0 / 9 / N));
    }
    CU_ASSERT_EQUAL(vlm_rng_below(&r, 0), 0);
    CU_ASSERT_EQUAL(vlm_rng_below(&r, 1), 0);
}

/* shuffle gives a permutation; over 3 elements all 6 orders are equally
 * likely (chi-square, 5 dof, 99.99th percentile 25.7). */
static void test_shuffle(void)
{
    VlmRng r;
    vlm_rng_init(&r, 7, 1);
    enum { N = 1000 };
    uint32_t perm[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++)
        perm[i] = (uint32_t)i;
    vlm_rng_shuffle(&r, perm, N);
    int ok = 1, moved = 0;
    for (int i = 0; i < N; i++) {
        ok &= perm[i] < N && !seen[perm[i]];
        seen[perm[i] < N ? perm[i] : 0] = 1;
        moved += perm[i] != (uint32_t)i;
    }
    CU_ASSERT(ok);
    CU_ASSERT(moved > N / 2);
    long c[6] = {0};
    enum { T = 60000 };
    for (int t = 0; t < T; t++) {
        uint32_t p[3] = {0, 1, 2};
        vlm_rng_shuffle(&r, p, 3);
        c[p[0] * 2 + (p[1] > p[2])]++;
    }
    double chi = 0;
    for (int k = 0; k < 6; k++)
        chi += (c[k] - T / 6.0) * (c[k] - T / 6.0) / (T / 6.0);
    CU_ASSERT(chi < 25.7);
    vlm_rng_shuffle(&r, perm, 0); /* no-ops */
    vlm_rng_shuffle(&r, perm, 1);
}

void vlm_test_rng(void)
{
    CU_pSuite s = CU_add_suite("rng", NULL, NULL);
    CU_add_test(s, "philox known answers", test_philox_kat);
    CU_add_test(s, "same seed and stream reproduce", test_reproducible);
    CU_add_test(s, "streams independent", test_streams_independent);
    CU_add_test(s, "save and restore mid-stream", test_save_restore);
    CU_add_test(s, "fill follows the word stream", test_fill_matches_words);
    CU_add_test(s, "uniform in the open interval", test_uniform_open);
    CU_add_test(s, "normal moments", test_normal);
    CU_add_test(s, "gamma and beta moments", test_gamma_beta);
    CU_add_test(s, "poisson moments", test_poisson);
    CU_add_test(s, "bernoulli and categorical", test_bernoulli_categorical);
    CU_add_test(s, "below is unbiased", test_below);
    CU_add_test(s, "shuffle is a uniform permutation", test_shuffle);
}
