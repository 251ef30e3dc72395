/* test_optim.c — CUnit suite "optim": Adam and SGD steps against values
 * worked out by hand, bias correction, decoupled weight decay, clipping,
 * schedules, lazy row updates, and convergence on a quadratic. */
#include "vlm.h"
#include "fdcheck.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#define NEAR(a, b, tol) CU_ASSERT(fabs((double)(a) - (double)(b)) <= (tol))

/* Two Adam steps on one scalar, lr 0.1, defaults (0.9, 0.999, 1e-8):
 * t=1, g=0.5:  m=0.05, v=2.5e-4, mhat=0.5, vhat=0.25 -> step 0.1, p=0.9
 * t=2, g=-0.2: m=0.025, v=2.8975e-4, mhat=0.025/0.19, vhat=2.8975e-4/0.001999
 *              -> step 0.1 * 0.1315789 / 0.3807191 = 0.0345606, p=0.8654394 */
static void test_adam_hand(void)
{
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_ADAM, 0.1f);
    float p = 1, m = 0, v = 0, g = 0.5f;
    vlm_optim_begin_step(&o);
    CU_ASSERT(o.t == 1);
    vlm_optim_update(&o, &p, &g, &m, &v, 1);
    NEAR(m, 0.05, 1e-7);
    NEAR(v, 2.5e-4, 3e-8); /* 1 - 0.999f is 1.00005e-3 */
    NEAR(p, 0.9, 1e-6);
    g = -0.2f;
    vlm_optim_begin_step(&o);
    vlm_optim_update(&o, &p, &g, &m, &v, 1);
    NEAR(m, 0.025, 1e-7);
    NEAR(v, 2.8975e-4, 3e-8);
    NEAR(p, 0.8654394, 2e-6);
}

/* With bias correction the first step is lr * sign(g) whatever |g| is. */
static void test_adam_bias_correction(void)
{
    float gs[4] = {1e-3f, -1.0f, 1e3f, -42.0f};
    for (int k = 0; k < 4; k++) {
        VlmOptim o;
        vlm_optim_defaults(&o, VLM_OPT_ADAM, 0.01f);
        float p = 0, m = 0, v = 0;
        vlm_optim_begin_step(&o);
        vlm_optim_update(&o, &p, &gs[k], &m, &v, 1);
        NEAR(p, -0.01 * (gs[k] > 0 ? 1 : -1), 1e-6);
    }
    /* a constant gradient keeps the step at lr for many steps */
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_ADAM, 0.01f);
    float p = 0, m = 0, v = 0, g = 3.0f;
    for (int t = 0; t < 50; t++) {
        float before = p;
        vlm_optim_begin_step(&o);
        vlm_optim_update(&o, &p, &g, &m, &v, 1);
        NEAR(before - p, 0.01, 1e-6);
    }
}

/* Decoupled weight decay: with g = 0 the parameter shrinks by lr * wd,
 * and the moments stay 0 (decay is not fed through them). */
static void test_weight_decay(void)
{
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_ADAM, 0.1f);
    o.weight_decay = 0.5f;
    float p[2] = {2, -4}, g[2] = {0, 0}, m[2] = {0, 0}, v[2] = {0, 0};
    vlm_optim_begin_step(&o);
    vlm_optim_update(&o, p, g, m, v, 2);
    NEAR(p[0], 2 * 0.95, 1e-6);
    NEAR(p[1], -4 * 0.95, 1e-6);
    CU_ASSERT(m[0] == 0 && v[1] == 0);
}

/* SGD with momentum 0.9, lr 0.1:
 * g=1: m=1, p = 1 - 0.1 = 0.9;  g=1: m=1.9, p = 0.9 - 0.19 = 0.71 */
static void test_sgd(void)
{
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_SGD, 0.1f);
    o.momentum = 0.9f;
    float p = 1, m = 0, g = 1;
    vlm_optim_begin_step(&o);
    vlm_optim_update(&o, &p, &g, &m, NULL, 1);
    NEAR(p, 0.9, 1e-7);
    vlm_optim_begin_step(&o);
    vlm_optim_update(&o, &p, &g, &m, NULL, 1);
    NEAR(m, 1.9, 1e-6);
    NEAR(p, 0.71, 1e-6);
    /* plain SGD (no momentum buffer) */
    vlm_optim_defaults(&o, VLM_OPT_SGD, 0.5f);
    p = 1;
    g = 0.25f;
    vlm_optim_begin_step(&o);
    vlm_optim_update(&o, &p, &g, NULL, NULL, 1);
    NEAR(p, 0.875, 1e-7);
}

/* SGD with momentum and weight decay: the decay multiplies p on the
 * momentum path too (torch's decoupled form used here), lr 0.1, mu 0.9,
 * wd 0.5, p = 1, g = 1:  m = 1,  p = 1 (1 - 0.1 * 0.5) - 0.1 * 1 = 0.85.
 * Without the decay it would be 0.9; only the C API reaches this path. */
static void test_sgd_momentum_decay(void)
{
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_SGD, 0.1f);
    o.momentum = 0.9f;
    o.weight_decay = 0.5f;
    float p = 1, m = 0, g = 1;
    vlm_optim_begin_step(&o);
    vlm_optim_update(&o, &p, &g, &m, NULL, 1);
    NEAR(m, 1.0, 1e-7);
    NEAR(p, 0.85, 1e-7);
}

static void test_clip(void)
{
    float g[2] = {3, 4};
    double n = vlm_optim_clip(g, 2, 1.0f);
    NEAR(n, 5.0, 1e-12);
    NEAR(g[0], 0.6, 1e-7);
    NEAR(g[1], 0.8, 1e-7);
    float h[3] = {1, 2, 2};
    n = vlm_optim_clip(h, 3, 10.0f); /* below the threshold: untouched */
    NEAR(n, 3.0, 1e-12);
    CU_ASSERT(h[0] == 1 && h[1] == 2 && h[2] == 2);
    n = vlm_optim_clip(h, 3, 0.0f); /* 0 = no clipping, norm still given */
    NEAR(n, 3.0, 1e-12);
    CU_ASSERT(h[2] == 2);
    /* the norm, not its square, is compared with the threshold: ||g|| = 3
     * with clip 5 or 4 (below both, though ||g||^2 = 9 is above) stays as
     * it is; ||g|| = 0.5 with clip 0.3 (||g||^2 = 0.25 is below 0.3) is
     * scaled to norm 0.3 */
    const float clips[2] = {5.0f, 4.0f};
    for (int k = 0; k < 2; k++) {
        float u[3] = {1, 2, 2};
        NEAR(vlm_optim_clip(u, 3, clips[k]), 3.0, 1e-12);
        CU_ASSERT(u[0] == 1 && u[1] == 2 && u[2] == 2);
    }
    float s[2] = {0.3f, 0.4f};
    NEAR(vlm_optim_clip(s, 2, 0.3f), 0.5, 1e-7);
    NEAR(s[0], 0.18, 1e-7);
    NEAR(s[1], 0.24, 1e-7);
    /* at exactly the threshold: untouched */
    float e[2] = {3, 4};
    vlm_optim_clip(e, 2, 5.0f);
    CU_ASSERT(e[0] == 3 && e[1] == 4);
    float z[2] = {0, 0};
    CU_ASSERT(vlm_optim_clip(z, 2, 1.0f) == 0 && z[0] == 0);
    float bad[2] = {NAN, 1};
    CU_ASSERT(isnan(vlm_optim_clip(bad, 2, 1.0f)) && bad[1] == 1);
}

static void test_schedules(void)
{
    VlmOptim o;
    vlm_optim_defaults(&o, VLM_OPT_ADAM, 0.4f);
    NEAR(vlm_optim_lr(&o, 1), 0.4, 1e-7);
    NEAR(vlm_optim_lr(&o, 1000), 0.4, 1e-7);

    o.sched = VLM_SCHED_COSINE;
    o.total_steps = 100;
    NEAR(vlm_optim_lr(&o, 1), 0.4, 1e-7);       /* k = 0 */
    NEAR(vlm_optim_lr(&o, 51), 0.2, 1e-7);      /* k = T/2 */
    NEAR(vlm_optim_lr(&o, 26), 0.2 * (1 + cos(M_PI / 4)), 1e-7);
    NEAR(vlm_optim_lr(&o, 101), 0.0, 1e-7);     /* k = T */
    NEAR(vlm_optim_lr(&o, 5000), 0.0, 1e-7);
    for (long t = 1; t < 101; t++)
        CU_ASSERT(vlm_optim_lr(&o, t + 1) <= vlm_optim_lr(&o, t));

    o.sched = VLM_SCHED_STEP;
    o.step_every = 10;
    o.step_gamma = 0.5f;
    NEAR(vlm_optim_lr(&o, 1), 0.4, 1e-7);
    NEAR(vlm_optim_lr(&o, 10), 0.4, 1e-7);
    NEAR(vlm_optim_lr(&o, 11), 0.2, 1e-7);
    NEAR(vlm_optim_lr(&o, 21), 0.1, 1e-7);
    NEAR(vlm_optim_lr(&o, 35), 0.05, 1e-7);

    /* the update uses the schedule's rate at o->t: SGD step = lr(t) * g */
    vlm_optim_defaults(&o, VLM_OPT_SGD, 1.0f);
    o.sched = VLM_SCHED_STEP;
    o.step_every = 1;
    o.step_gamma = 0.5f;
    float p = 0, g = 1;
    float want[3] = {-1, -1.5f, -1.75f};
    for (int t = 0; t < 3; t++) {
        vlm_optim_begin_step(&o);
        vlm_optim_update(&o, &p, &g, NULL, NULL, 1);
        NEAR(p, want[t], 1e-7);
    }
}

/* Only the listed rows move (p, m and v); each moves exactly as a full
 * update of that row alone would. */
static void test_update_rows(void)
{
    uint64_t rng = 37;
    enum { ROWS = 7, W = 5 };
    for (int kind = 0; kind < 2; kind++) {
        VlmOptim o;
        vlm_optim_defaults(&o, kind ? VLM_OPT_SGD : VLM_OPT_ADAM, 0.05f);
        o.momentum = 0.9f;
        o.weight_decay = 0.1f;
        float *p = tu_floats(&rng, ROWS * W, -1, 1), *p0 = tu_copy(p, ROWS * W);
        float *m = tu_floats(&rng, ROWS * W, -0.1, 0.1), *m0 = tu_copy(m, ROWS * W);
        float *v = tu_floats(&rng, ROWS * W, 0, 0.1), *v0 = tu_copy(v, ROWS * W);
        uint32_t idx[3] = {5, 0, 3};
        float *g = tu_floats(&rng, 3 * W, -1, 1);
        vlm_optim_begin_step(&o);
        vlm_optim_begin_step(&o);
        vlm_optim_update_rows(&o, p, g, m, v, W, idx, 3);
        for (int r = 0; r < ROWS; r++) {
            int j = r == 5 ? 0 : r == 0 ? 1 : r == 3 ? 2 : -1;
            if (j < 0) {
                CU_ASSERT(memcmp(p + r * W, p0 + r * W, W * sizeof *p) == 0);
                CU_ASSERT(memcmp(m + r * W, m0 + r * W, W * sizeof *m) == 0);
                CU_ASSERT(memcmp(v + r * W, v0 + r * W, W * sizeof *v) == 0);
                continue;
            }
            float pr[W], mr[W], vr[W];
            memcpy(pr, p0 + r * W, sizeof pr);
            memcpy(mr, m0 + r * W, sizeof mr);
            memcpy(vr, v0 + r * W, sizeof vr);
            vlm_optim_update(&o, pr, g + j * W, mr, vr, W);
            CU_ASSERT(memcmp(pr, p + r * W, sizeof pr) == 0);
            CU_ASSERT(memcmp(mr, m + r * W, sizeof mr) == 0);
            if (kind == 0)
                CU_ASSERT(memcmp(vr, v + r * W, sizeof vr) == 0);
            CU_ASSERT(memcmp(pr, p0 + r * W, sizeof pr) != 0);
        }
        free(p); free(p0); free(m); free(m0); free(v); free(v0); free(g);
    }
}

/* Adam on an ill-conditioned quadratic 0.5 sum c_i (p_i - t_i)^2 reaches
 * the minimum; with a cosine schedule it settles to high precision. */
static void test_adam_quadratic(void)
{
    enum { N = 6 };
    const float c[N] = {100, 10, 1, 0.1f, 3, 0.5f};
    const float target[N] = {1, -2, 3, 0.5f, -0.25f, 0};
    for (int sched = 0; sched < 2; sched++) {
        VlmOptim o;
        vlm_optim_defaults(&o, VLM_OPT_ADAM, 0.05f);
        o.sched = sched ? VLM_SCHED_COSINE : VLM_SCHED_CONST;
        o.total_steps = 4000;
        float p[N] = {0}, m[N] = {0}, v[N] = {0}, g[N];
        for (int t = 0; t < 4000; t++) {
            for (int i = 0; i < N; i++) g[i] = c[i] * (p[i] - target[i]);
            vlm_optim_begin_step(&o);
            vlm_optim_update(&o, p, g, m, v, N);
        }
        double tol = sched ? 1e-4 : 1e-2;
        for (int i = 0; i < N; i++) NEAR(p[i], target[i], tol);
    }
}

void vlm_test_optim(void)
{
    CU_pSuite s = CU_add_suite("optim", NULL, NULL);
    CU_add_test(s, "adam two steps match hand computation", test_adam_hand);
    CU_add_test(s, "adam bias correction", test_adam_bias_correction);
    CU_add_test(s, "decoupled weight decay", test_weight_decay);
    CU_add_test(s, "sgd with momentum", test_sgd);
    CU_add_test(s, "sgd with momentum applies weight decay",
                test_sgd_momentum_decay);
    CU_add_test(s, "global-norm clipping", test_clip);
    CU_add_test(s, "lr schedules", test_schedules);
    CU_add_test(s, "lazy row updates touch only given rows", test_update_rows);
    CU_add_test(s, "adam converges on a quadratic", test_adam_quadratic);
}
