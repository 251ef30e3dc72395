/* test_parallel.c — the pool: every index is visited exactly once for any
 * thread count and chunk size, also while background tasks keep workers
 * busy; every background task runs once and is done at the wait; and a
 * threaded optimizer step equals the single-threaded one bit for bit. */
#include "vlm.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void count_slice(void *ctx, size_t lo, size_t hi)
{
    int *hits = ctx;
    for (size_t i = lo; i < hi; i++)
        hits[i]++;
}

static void test_cover(void)
{
    static int hits[10007];
    const size_t ns[] = {0, 1, 2, 7, 100, 10007};
    const size_t chunks[] = {1, 16, 5000};
    for (int t = 1; t <= 3; t++) {
        vlm_parallel_set_threads(t);
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
                memset(hits, 0, sizeof hits);
                vlm_parallel_for(ns[a], chunks[c], count_slice, hits);
                int bad = 0;
                for (size_t i = 0; i < ns[a]; i++)
                    bad += hits[i] != 1;
                CU_ASSERT_EQUAL(bad, 0);
            }
    }
    vlm_parallel_set_threads(1);
    CU_ASSERT_EQUAL(vlm_parallel_threads(), 1);
}

/* A background task: a slow pass over its range, then counted. */
typedef struct Bg {
    atomic_int runs[64];
    double sink[64];
} Bg;

static void bg_task(void *ctx, size_t lo, size_t hi)
{
    Bg *b = ctx;
    double s = 0;
    for (long k = 0; k < 200000; k++)   /* long enough to overlap the loops */
        s += sqrt((double)k + (double)lo);
    b->sink[lo] = s;
    (void)hi;
    atomic_fetch_add(&b->runs[lo], 1);
}

/* Tasks posted between two waits each run once and are done when the wait
 * returns; loops run meanwhile still cover every index once (their
 * slices go to whoever is free); with one thread a task runs at once. */
static void test_async(void)
{
    static int hits[10007];
    for (int t = 1; t <= 3; t++) {
        vlm_parallel_set_threads(t);
        for (int round = 0; round < 3; round++) {
            static Bg b;
            for (int k = 0; k < 64; k++)
                atomic_store(&b.runs[k], 0);
            int n_tasks = 1 + 20 * round;
            for (int k = 0; k < n_tasks; k++) {
                vlm_parallel_async(bg_task, &b, (size_t)k, (size_t)k + 1);
                if (t == 1)
                    CU_ASSERT_EQUAL(atomic_load(&b.runs[k]), 1);
                memset(hits, 0, sizeof hits);
                vlm_parallel_for(10007, 16, count_slice, hits);
                int bad = 0;
                for (size_t i = 0; i < 10007; i++)
                    bad += hits[i] != 1;
                CU_ASSERT_EQUAL(bad, 0);
            }
            vlm_parallel_wait();
            int wrong = 0;
            for (int k = 0; k < 64; k++)
                wrong += atomic_load(&b.runs[k]) != (k < n_tasks);
            CU_ASSERT_EQUAL(wrong, 0);
        }
        vlm_parallel_wait();   /* nothing posted: returns */
    }
    vlm_parallel_set_threads(1);
}

/* Log-density passes split by rows (dist_common.h, from 8192 elements)
 * equal the single pass bit for bit: Normal logp and its gradients with
 * per-row parameter views, and with a broadcast loc (rs == 0, one sum over
 * all rows, not split), at 1 and 2 threads; and the categorical logits
 * density with shared logits. */
static void test_dist_rows_identical(void)
{
    enum { R = 700, n = 20, K = 10 };
    VlmRng r;
    vlm_rng_init(&r, 5, 1);
    static float x[R * n], mu[R * n], sd[R * n], dout[R], c[R], lg[K];
    vlm_rng_normal_fill(&r, x, R * n);
    vlm_rng_normal_fill(&r, mu, R * n);
    vlm_rng_normal_fill(&r, dout, R);
    for (int i = 0; i < R * n; i++)
        sd[i] = 0.5f + 0.25f * (float)(i % 7);
    for (int i = 0; i < R; i++)
        c[i] = (float)(i % K);
    vlm_rng_normal_fill(&r, lg, K);
    double lp[2][R], lc[2][R];
    static float dx[2][R * n], dmu[2][R * n], dsd[2][R * n], dmu0[2][n], dlg[2][K];
    for (int t = 0; t < 2; t++) {
        vlm_parallel_set_threads(t + 1);
        VlmIn xv = {x, n, 1}, th[2] = {{mu, n, 1}, {sd, n, 1}}, none = {NULL, 0, 0};
        vlm_dist_normal_logp(R, n, 1, xv, th, none, lp[t]);
        VlmOut d[2] = {{dmu[t], n, 1}, {dsd[t], n, 1}};
        vlm_dist_normal_logp_bwd(R, n, 1, xv, th, none, dout, (VlmOut){dx[t], n, 1}, d);
        VlmIn thb[2] = {{mu, 0, 1}, {sd, n, 1}};   /* loc: one row for all */
        VlmOut db[2] = {{dmu0[t], 0, 1}, {NULL, 0, 0}};
        vlm_dist_normal_logp_bwd(R, n, 1, xv, thb, none, dout, (VlmOut){NULL, 0, 0}, db);
        VlmIn cv = {c, 1, 0}, tl[1] = {{lg, 0, 1}};
        vlm_dist_categorical_logits_logp(R, 1, K, cv, tl, none, lc[t]);
        VlmOut dl[1] = {{dlg[t], 0, 1}};
        vlm_dist_categorical_logits_logp_bwd(R, 1, K, cv, tl, none, dout, (VlmOut){NULL, 0, 0}, dl);
    }
    vlm_parallel_set_threads(1);
    CU_ASSERT(memcmp(lp[0], lp[1], sizeof lp[0]) == 0);
    CU_ASSERT(memcmp(dx[0], dx[1], sizeof dx[0]) == 0);
    CU_ASSERT(memcmp(dmu[0], dmu[1], sizeof dmu[0]) == 0);
    CU_ASSERT(memcmp(dsd[0], dsd[1], sizeof dsd[0]) == 0);
    CU_ASSERT(memcmp(dmu0[0], dmu0[1], sizeof dmu0[0]) == 0);
    CU_ASSERT(memcmp(lc[0], lc[1], sizeof lc[0]) == 0);
    CU_ASSERT(memcmp(dlg[0], dlg[1], sizeof dlg[0]) == 0);
    /* the broadcast loc's gradient is the sum of the per-row ones at that
     * loc (row 0 of mu copied to every row) */
    static float rep[R * n], drep[R * n];
    for (int q = 0; q < R; q++)
        memcpy(rep + q * n, mu, n * sizeof *mu);
    VlmIn xv = {x, n, 1}, th[2] = {{rep, n, 1}, {sd, n, 1}}, none = {NULL, 0, 0};
    VlmOut d[2] = {{drep, n, 1}, {NULL, 0, 0}};
    vlm_dist_normal_logp_bwd(R, n, 1, xv, th, none, dout, (VlmOut){NULL, 0, 0}, d);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int q = 0; q < R; q++)
            s += drep[q * n + i];
        worst = fmax(worst, fabs(s - dmu0[0][i]) / (1 + fabs(s)));
    }
    CU_ASSERT(worst < 1e-4);
}

static void test_adam_threads_identical(void)
{
    enum { N = 200003 };
    static float p1[N], p2[N], g[N], m1[N], m2[N], v1[N], v2[N];
    VlmRng r;
    vlm_rng_init(&r, 5, 1);
    vlm_rng_normal_fill(&r, p1, N);
    vlm_rng_normal_fill(&r, g, N);
    memcpy(p2, p1, sizeof p1);
    memset(m1, 0, sizeof m1); memset(m2, 0, sizeof m2);
    memset(v1, 0, sizeof v1); memset(v2, 0, sizeof v2);
    VlmOptim o1, o2;
    vlm_optim_defaults(&o1, VLM_OPT_ADAM, 1e-3f);
    o2 = o1;
    for (int step = 0; step < 3; step++) {
        vlm_parallel_set_threads(1);
        vlm_optim_begin_step(&o1);
        vlm_optim_update(&o1, p1, g, m1, v1, N);
        vlm_parallel_set_threads(2);
        vlm_optim_begin_step(&o2);
        vlm_optim_update(&o2, p2, g, m2, v2, N);
    }
    vlm_parallel_set_threads(1);
    CU_ASSERT(memcmp(p1, p2, sizeof p1) == 0);
    CU_ASSERT(memcmp(v1, v2, sizeof v1) == 0);
}

/* A GEMM split over the pool (by rows of C, or by columns when C is
 * short) equals the single-threaded one, for every transpose (to rounding:
 * BLAS edge kernels may order a sum differently for another slice). */
static void test_gemm_threads_identical(void)
{
    const int shapes[3][3] = {{130, 77, 65}, {3, 517, 129}, {257, 9, 301}};
    VlmRng r;
    vlm_rng_init(&r, 9, 1);
    for (int sh = 0; sh < 3; sh++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
            bool ta = t & 1, tb = t & 2;
            float *A = vlm_xmalloc(sizeof(float) * (size_t)M * K);
            float *B = vlm_xmalloc(sizeof(float) * (size_t)K * N);
            float *C1 = vlm_xmalloc(sizeof(float) * (size_t)M * N);
            float *C2 = vlm_xmalloc(sizeof(float) * (size_t)M * N);
            vlm_rng_normal_fill(&r, A, (size_t)M * K);
            vlm_rng_normal_fill(&r, B, (size_t)K * N);
            vlm_rng_normal_fill(&r, C1, (size_t)M * N);
            memcpy(C2, C1, sizeof(float) * (size_t)M * N);
            vlm_parallel_set_threads(1);
            vlm_gemm(ta, tb, M, N, K, 0.5f, A, B, 1.0f, C1);
            vlm_parallel_set_threads(2);
            vlm_gemm(ta, tb, M, N, K, 0.5f, A, B, 1.0f, C2);
            double err = 0;
            for (size_t i = 0; i < (size_t)M * N; i++)
                err = fmax(err, fabs((double)C1[i] - C2[i]) / (1 + fabs((double)C1[i])));
            CU_ASSERT(err < 1e-5);
            free(A); free(B); free(C1); free(C2);
        }
    vlm_parallel_set_threads(1);
}

/* A linear layer on two threads equals the single-threaded one (to
 * rounding): the bias and activation inside the GEMM slices, the
 * activation backward on column slices, and, at a size where both
 * backward GEMMs run as one task each, dW and dx. */
static void test_linear_threads_identical(void)
{
    const int shapes[2][3] = {{37, 23, 70}, {128, 300, 160}};   /* R, in, out */
    VlmRng r;
    vlm_rng_init(&r, 11, 1);
    for (int sh = 0; sh < 2; sh++)
        for (int act = VLM_ACT_IDENTITY; act <= VLM_ACT_TANH; act++) {
            int R = shapes[sh][0], in = shapes[sh][1], out = shapes[sh][2];
            size_t nx = (size_t)R * in, nw = (size_t)in * out, ny = (size_t)R * out;
            float *x = vlm_xmalloc(sizeof(float) * nx), *W = vlm_xmalloc(sizeof(float) * nw);
            float *b = vlm_xmalloc(sizeof(float) * out), *dy = vlm_xmalloc(sizeof(float) * ny);
            vlm_rng_normal_fill(&r, x, nx);
            vlm_rng_normal_fill(&r, W, nw);
            vlm_rng_normal_fill(&r, b, out);
            vlm_rng_normal_fill(&r, dy, ny);
            /* gradients accumulate (+=): start them off zero */
            float *g0 = vlm_xmalloc(sizeof(float) * (nx + nw + out));
            vlm_rng_normal_fill(&r, g0, nx + nw + out);
            float *res[2][5];   /* y, scratch, dx, dW, db per thread count */
            for (int t = 0; t < 2; t++) {
                float *y = vlm_xmalloc(sizeof(float) * ny), *s = vlm_xmalloc(sizeof(float) * ny);
                float *dx = vlm_xmalloc(sizeof(float) * nx), *dW = vlm_xmalloc(sizeof(float) * nw);
                float *db = vlm_xmalloc(sizeof(float) * out);
                memcpy(dx, g0, sizeof(float) * nx);
                memcpy(dW, g0 + nx, sizeof(float) * nw);
                memcpy(db, g0 + nx + nw, sizeof(float) * out);
                vlm_parallel_set_threads(t + 1);
                vlm_nn_linear_fwd(R, in, out, x, W, b, (VlmAct)act, y);
                vlm_nn_linear_bwd(R, in, out, x, W, y, dy, (VlmAct)act, s, dx, dW, db);
                res[t][0] = y; res[t][1] = s; res[t][2] = dx; res[t][3] = dW; res[t][4] = db;
            }
            const size_t len[5] = {ny, ny, nx, nw, (size_t)out};
            double err = 0;
            for (int k = 0; k < 5; k++) {
                if (k == 1 && act == VLM_ACT_IDENTITY)
                    continue;   /* identity writes no scratch: only db is needed */
                for (size_t i = 0; i < len[k]; i++)
                    err = fmax(err, fabs((double)res[0][k][i] - res[1][k][i]) /
                                        (1 + fabs((double)res[0][k][i])));
            }
            /* sums of 128-300 float products in another blocking order */
            CU_ASSERT(err < 1e-4);
            for (int t = 0; t < 2; t++)
                for (int k = 0; k < 5; k++)
                    free(res[t][k]);
            free(x); free(W); free(b); free(dy); free(g0);
        }
    vlm_parallel_set_threads(1);
}

/* The training loop's fused step: identical to update + zeroing, and a
 * block with a NaN gradient is reported and left untouched. */
static void test_update_consume(void)
{
    enum { N = 50000 };
    static float p1[N], p2[N], g1[N], g2[N], m1[N], m2[N], v1[N], v2[N];
    VlmRng r;
    vlm_rng_init(&r, 11, 1);
    vlm_rng_normal_fill(&r, p1, N);
    vlm_rng_normal_fill(&r, g1, N);
    memcpy(p2, p1, sizeof p1);
    memcpy(g2, g1, sizeof g1);
    memset(m1, 0, sizeof m1); memset(m2, 0, sizeof m2);
    memset(v1, 0, sizeof v1); memset(v2, 0, sizeof v2);
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_ADAM, 1e-3f);
    vlm_optim_begin_step(&o);
    for (int t = 1; t <= 2; t++) {
        vlm_parallel_set_threads(t);
        memcpy(p2, p1, sizeof p1);
        memcpy(g2, g1, sizeof g1);
        memset(m2, 0, sizeof m2);
        memset(v2, 0, sizeof v2);
        CU_ASSERT_EQUAL(vlm_optim_update_consume(&o, p2, g2, m2, v2, N), 0);
        float pr[N], mr[N] = {0}, vr[N] = {0};
        memcpy(pr, p1, sizeof pr);
        vlm_optim_update(&o, pr, g1, mr, vr, N);
        CU_ASSERT(memcmp(pr, p2, sizeof pr) == 0);
        int nonzero = 0;
        for (int i = 0; i < N; i++)
            nonzero += g2[i] != 0;
        CU_ASSERT_EQUAL(nonzero, 0);
    }
    /* a NaN in the gradient: reported, its block untouched */
    memcpy(p2, p1, sizeof p1);
    memcpy(g2, g1, sizeof g1);
    g2[12345] = NAN;
    CU_ASSERT_EQUAL(vlm_optim_update_consume(&o, p2, g2, m2, v2, N), -1);
    CU_ASSERT(isnan(g2[12345]));
    CU_ASSERT(p2[12345] == p1[12345]);
    vlm_parallel_set_threads(1);
    (void)m1; (void)v1;
}

void vlm_test_parallel(void)
{
    CU_pSuite s = CU_add_suite("parallel", NULL, NULL);
    CU_add_test(s, "every index once, any threads and chunk", test_cover);
    CU_add_test(s, "background tasks: each once, done at the wait, loops meanwhile", test_async);
    CU_add_test(s, "log-density rows on threads equal one pass", test_dist_rows_identical);
    CU_add_test(s, "threaded Adam step equals single-threaded", test_adam_threads_identical);
    CU_add_test(s, "threaded GEMM matches single-threaded, all transposes", test_gemm_threads_identical);
    CU_add_test(s, "fused Adam step: same update, zeroed gradient, NaN reported", test_update_consume);
    CU_add_test(s, "threaded linear layer matches single-threaded", test_linear_threads_identical);
}
