/* test_dists.c — CUnit suite "dists": every distribution's logp against an
 * independent double-precision reference, its gradients (value and every
 * parameter, through full, broadcast and masked views) against central
 * finite differences of that reference, rsample_bwd against finite
 * differences of the transform, known values, edge inputs, sampler
 * moments, and the special functions (digamma, softplus, Normal KL). */
#include "vlm.h"
#include "fdcheck.h"

#include <CUnit/CUnit.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_2PI 1.8378770664093454836

/* ------------------------------------------------------------ references */

/* log p(x | th) in plain double, written independently of the kernels.
 * Categorical: th holds the K entries of its one parameter. */
typedef double RefFn(double x, const double *th, int K);

static double ref_normal(double x, const double *t, int K)
{
    (void)K;
    double z = (x - t[0]) / t[1];
    return -0.5 * z * z - log(t[1]) - 0.5 * LOG_2PI;
}
static double ref_laplace(double x, const double *t, int K)
{
    (void)K;
    return -fabs(x - t[0]) / t[1] - log(2 * t[1]);
}
static double ref_lognormal(double x, const double *t, int K)
{
    (void)K;
    double d = log(x) - t[0];
    return -d * d / (2 * t[1] * t[1]) - log(t[1] * x * sqrt(2 * M_PI));
}
static double ref_exponential(double x, const double *t, int K)
{
    (void)K;
    return log(t[0]) - t[0] * x;
}
static double ref_gamma(double x, const double *t, int K)
{
    (void)K;
    return log(pow(t[1], t[0]) * pow(x, t[0] - 1) / tgamma(t[0])) - t[1] * x;
}
static double ref_beta(double x, const double *t, int K)
{
    (void)K;
    double a = t[0], b = t[1];
    return log(pow(x, a - 1) * pow(1 - x, b - 1) * tgamma(a + b) /
               (tgamma(a) * tgamma(b)));
}
static double ref_uniform(double x, const double *t, int K)
{
    (void)K;
    return x >= t[0] && x <= t[1] ? -log(t[1] - t[0]) : -INFINITY;
}
static double ref_poisson(double x, const double *t, int K)
{
    (void)K;
    return log(pow(t[0], x) * exp(-t[0]) / tgamma(x + 1));
}
static double ref_bern_probs(double x, const double *t, int K)
{
    (void)K;
    return x * log(t[0]) + (1 - x) * log(1 - t[0]);
}
static double ref_bern_logits(double x, const double *t, int K)
{
    double p = 1 / (1 + exp(-t[0]));
    return ref_bern_probs(x, &p, K);
}
static double ref_cat_probs(double x, const double *t, int K)
{
    (void)K;
    return log(t[(int)x]);
}
static double ref_cat_logits(double x, const double *t, int K)
{
    double s = 0;
    for (int k = 0; k < K; k++)
        s += exp(t[k]);
    return t[(int)x] - log(s);
}
/* The continuous Bernoulli in its paper's form, C = 2 atanh(1-2p)/(1-2p)
 * (only used away from p = 1/2). */
static double ref_cb_probs(double x, const double *t, int K)
{
    (void)K;
    double p = t[0];
    return x * log(p) + (1 - x) * log(1 - p) +
           log(2 * atanh(1 - 2 * p) / (1 - 2 * p));
}
static double ref_cb_logits(double x, const double *t, int K)
{
    double p = 1 / (1 + exp(-t[0]));
    return ref_cb_probs(x, &p, K);
}

/* ------------------------------------------------------------ generators */

static double unif(VlmRng *g, double a, double b)
{
    return a + (b - a) * vlm_rng_uniform(g);
}

/* Fill one parameter slot (K floats) of parameter j with a valid value. */
typedef void GenThFn(VlmRng *g, int j, int K, float *dst);
/* A value inside the support, given the element's parameters. */
typedef double GenXFn(VlmRng *g, const double *th, int K);

static void gen_loc_scale(VlmRng *g, int j, int K, float *d)
{
    (void)K;
    d[0] = (float)(j == 0 ? unif(g, -1.5, 1.5) : unif(g, 0.4, 2.0));
}
static void gen_pos2(VlmRng *g, int j, int K, float *d)
{
    (void)K;
    d[0] = (float)(j == 0 ? unif(g, 0.6, 4.0) : unif(g, 0.5, 3.0));
}
static void gen_rate(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    (void)K;
    d[0] = (float)unif(g, 0.5, 4.0);
}
static void gen_low_high(VlmRng *g, int j, int K, float *d)
{
    (void)K;
    d[0] = (float)(j == 0 ? unif(g, -2.0, -0.2) : unif(g, 0.3, 2.0));
}
static void gen_prob(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    (void)K;
    d[0] = (float)unif(g, 0.05, 0.95);
}
static void gen_logit(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    (void)K;
    d[0] = (float)unif(g, -3.0, 3.0);
}
/* probs / logits away from 1/2, where the reference's closed form is
 * accurate (the Taylor window is tested separately) */
static void gen_cb_prob(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    (void)K;
    double p = unif(g, 0.06, 0.44);
    d[0] = (float)(vlm_rng_u32(g) & 1 ? p : 1 - p);
}
static void gen_cb_logit(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    (void)K;
    double l = unif(g, 0.3, 3.0);
    d[0] = (float)(vlm_rng_u32(g) & 1 ? l : -l);
}
static void gen_cat_probs(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    double s = 0, w[64];
    for (int k = 0; k < K; k++)
        s += w[k] = unif(g, 0.2, 1.0);
    for (int k = 0; k < K; k++)
        d[k] = (float)(w[k] / s);
}
static void gen_cat_logits(VlmRng *g, int j, int K, float *d)
{
    (void)j;
    for (int k = 0; k < K; k++)
        d[k] = (float)unif(g, -2.0, 2.0);
}

static double gx_real(VlmRng *g, const double *t, int K)
{
    (void)K;
    return t[0] + t[1] * unif(g, -2.5, 2.5);
}
static double gx_laplace(VlmRng *g, const double *t, int K)
{
    (void)K;
    double d = t[1] * unif(g, 0.05, 2.5); /* away from the kink */
    return vlm_rng_u32(g) & 1 ? t[0] + d : t[0] - d;
}
static double gx_positive(VlmRng *g, const double *t, int K)
{
    (void)t;
    (void)K;
    return unif(g, 0.1, 3.0);
}
static double gx_unit(VlmRng *g, const double *t, int K)
{
    (void)t;
    (void)K;
    return unif(g, 0.05, 0.95);
}
static double gx_between(VlmRng *g, const double *t, int K)
{
    (void)K;
    double w = t[1] - t[0];
    return t[0] + w * unif(g, 0.05, 0.95);
}
static double gx_count(VlmRng *g, const double *t, int K)
{
    (void)t;
    (void)K;
    return (double)vlm_rng_below(g, 9);
}
/* relaxed Bernoulli values: both ends and the interior */
static double gx_bern(VlmRng *g, const double *t, int K)
{
    (void)t;
    (void)K;
    uint32_t c = vlm_rng_below(g, 3);
    return c == 0 ? 0.0 : c == 1 ? 1.0 : unif(g, 0.05, 0.95);
}
static double gx_class(VlmRng *g, const double *t, int K)
{
    (void)t;
    return (double)vlm_rng_below(g, (uint64_t)K);
}

typedef struct DistCase {
    const char *name;
    VlmLogpFn *logp;
    VlmLogpBwdFn *bwd;
    int np;
    bool cat, value_grad;
    RefFn *ref;
    GenThFn *gen_th;
    GenXFn *gen_x;
    /* absolute error allowed per element on top of 1e-9 relative: the
     * Bernoulli-logits fast path computes log(1 + e^-|l|) in float
     * (<= 1.2e-7, see dist_bernoulli.c); every other row is all double */
    double elem_tol;
} DistCase;

#define D(stem) vlm_dist_##stem##_logp, vlm_dist_##stem##_logp_bwd
static const DistCase cases[] = {
    {"normal", D(normal), 2, false, true, ref_normal, gen_loc_scale, gx_real, 0},
    {"laplace", D(laplace), 2, false, true, ref_laplace, gen_loc_scale, gx_laplace, 0},
    {"lognormal", D(lognormal), 2, false, true, ref_lognormal, gen_loc_scale, gx_positive, 0},
    {"exponential", D(exponential), 1, false, true, ref_exponential, gen_rate, gx_positive, 0},
    {"gamma", D(gamma), 2, false, true, ref_gamma, gen_pos2, gx_positive, 0},
    {"beta", D(beta), 2, false, true, ref_beta, gen_pos2, gx_unit, 0},
    {"uniform", D(uniform), 2, false, true, ref_uniform, gen_low_high, gx_between, 0},
    {"poisson", D(poisson), 1, false, false, ref_poisson, gen_rate, gx_count, 0},
    {"bernoulli_probs", D(bernoulli_probs), 1, false, true, ref_bern_probs, gen_prob, gx_bern, 0},
    {"bernoulli_logits", D(bernoulli_logits), 1, false, true, ref_bern_logits, gen_logit, gx_bern, 1.2e-7},
    {"categorical_probs", D(categorical_probs), 1, true, false, ref_cat_probs, gen_cat_probs, gx_class, 0},
    {"categorical_logits", D(categorical_logits), 1, true, false, ref_cat_logits, gen_cat_logits, gx_class, 0},
    {"continuous_bernoulli_probs", D(continuous_bernoulli_probs), 1, false, true, ref_cb_probs, gen_cb_prob, gx_unit, 0},
    {"continuous_bernoulli_logits", D(continuous_bernoulli_logits), 1, false, true, ref_cb_logits, gen_cb_logit, gx_unit, 0},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* ------------------------------------------------------------ views */

/* How a parameter is laid out over (R, n): every element, one row shared
 * by all rows (a global parameter), one scalar per row, one scalar. */
enum { BC_FULL, BC_GLOBAL, BC_ROW, BC_SCALAR };

static size_t bc_slots(int bc, int R, int n)
{
    return bc == BC_FULL ? (size_t)R * n : bc == BC_GLOBAL ? (size_t)n
         : bc == BC_ROW ? (size_t)R : 1;
}

static void bc_strides(int bc, int n, int K, ptrdiff_t *rs, ptrdiff_t *es)
{
    *rs = bc == BC_FULL ? (ptrdiff_t)n * K : bc == BC_ROW ? K : 0;
    *es = bc == BC_FULL || bc == BC_GLOBAL ? 1 : 0;
}

static size_t bc_offset(int bc, int r, int i, int n, int K)
{
    ptrdiff_t rs, es;
    bc_strides(bc, n, K, &rs, &es);
    return (size_t)(r * rs + i * es * K);
}

/* The state of one gradient check: double copies of every operand. */
typedef struct Ctx {
    const DistCase *dc;
    int R, n, K, bc[2];
    double *x, *th[2], *mask, *dout;
} Ctx;

static void elem_params(const Ctx *c, int r, int i, double *t)
{
    for (int j = 0; j < c->dc->np; j++) {
        size_t o = bc_offset(c->bc[j], r, i, c->n, c->K);
        for (int k = 0; k < c->K; k++)
            t[j * c->K + k] = c->th[j][o + k];
    }
}

static double ref_row(const Ctx *c, int r)
{
    double s = 0, t[2 * 64];
    for (int i = 0; i < c->n; i++) {
        double m = c->mask ? c->mask[r * c->n + i] : 1.0;
        if (m == 0)
            continue;
        elem_params(c, r, i, t);
        s += m * c->dc->ref(c->x[r * c->n + i], t, c->K);
    }
    return s;
}

static double objective(const Ctx *c)
{
    double s = 0;
    for (int r = 0; r < c->R; r++)
        s += c->dout[r] * ref_row(c, r);
    return s;
}

/* Central difference of the objective in *v with step h. */
static double fd(const Ctx *c, double *v, double h)
{
    double v0 = *v;
    *v = v0 + h;
    double fp = objective(c);
    *v = v0 - h;
    double fm = objective(c);
    *v = v0;
    return (fp - fm) / (2 * h);
}

/* Check the analytic gradient g (kernel, float, pre-filled with 0.25 to
 * test accumulation) of storage v against the double reference. Returns
 * the number of failures. */
static int check_grad(const Ctx *c, double *v, const float *g, size_t count,
                      bool differentiable, const char *what)
{
    int fails = 0;
    for (size_t s = 0; s < count; s++) {
        double an = (double)g[s] - 0.25;
        double want = 0;
        if (differentiable && !isnan(v[s])) {
            double h = 1e-5 * fmax(fabs(v[s]), 0.1);
            double f1 = fd(c, &v[s], h), f2 = fd(c, &v[s], h / 2);
            /* the reference's own finite difference has converged */
            if (fabs(f1 - f2) > 1e-6 * (fabs(f2) + 1)) {
                fprintf(stderr, "\n  %s %s[%zu]: FD not converged %.10g %.10g\n",
                        c->dc->name, what, s, f1, f2);
                fails++;
            }
            want = f2;
        }
        if (!(fabs(an - want) <= 1e-4 * (fabs(want) + 1))) {
            if (fails < 5)
                fprintf(stderr, "\n  %s %s[%zu] (R=%d n=%d K=%d bc=%d,%d): "
                        "analytic %.8g, reference %.8g\n", c->dc->name, what,
                        s, c->R, c->n, c->K, c->bc[0], c->bc[1], an, want);
            fails++;
        }
    }
    return fails;
}

static float *fdup(const double *v, size_t n)
{
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    return f;
}

/* One layout: random valid parameters and values, logp against the
 * reference, then every gradient against finite differences. */
static int check_layout(const DistCase *dc, int R, int n, int K, int bc0,
                        int bc1, bool use_mask, uint64_t seed)
{
    VlmRng g;
    vlm_rng_init(&g, seed, 77);
    Ctx c = {dc, R, n, K, {bc0, bc1}, NULL, {NULL, NULL}, NULL, NULL};
    size_t slots[2] = {0, 0};
    VlmIn th[2];
    VlmOut dth[2];
    float *thf[2] = {NULL, NULL}, *gth[2] = {NULL, NULL};
    float tmp[64];
    for (int j = 0; j < dc->np; j++) {
        slots[j] = bc_slots(c.bc[j], R, n) * K;
        c.th[j] = malloc(sizeof(double) * slots[j]);
        for (size_t s = 0; s < slots[j]; s += K) {
            dc->gen_th(&g, j, K, tmp);
            for (int k = 0; k < K; k++)
                c.th[j][s + k] = tmp[k];
        }
        thf[j] = fdup(c.th[j], slots[j]);
        gth[j] = malloc(sizeof(float) * slots[j]);
        for (size_t s = 0; s < slots[j]; s++)
            gth[j][s] = 0.25f;
        bc_strides(c.bc[j], n, K, &th[j].rs, &th[j].es);
        th[j].p = thf[j];
        dth[j] = (VlmOut){gth[j], th[j].rs, th[j].es};
    }
    size_t N = (size_t)R * n;
    c.x = malloc(sizeof(double) * N);
    c.mask = use_mask ? malloc(sizeof(double) * N) : NULL;
    c.dout = malloc(sizeof(double) * R);
    double t[2 * 64];
    for (int r = 0; r < R; r++) {
        c.dout[r] = unif(&g, 0.5, 1.5);
        for (int i = 0; i < n; i++) {
            double m = 1;
            if (use_mask)
                m = (r == 0 && i == 1) || vlm_rng_uniform(&g) < 0.3 ? 0 : 1;
            if (c.mask)
                c.mask[r * n + i] = m;
            elem_params(&c, r, i, t);
            /* masked-out elements hold NaN: they must not leak */
            c.x[r * n + i] = m ? (float)dc->gen_x(&g, t, K) : NAN;
        }
    }
    float *xf = fdup(c.x, N), *mf = c.mask ? fdup(c.mask, N) : NULL;
    float *doutf = fdup(c.dout, R), *gx = malloc(sizeof(float) * N);
    for (size_t s = 0; s < N; s++)
        gx[s] = 0.25f;
    VlmIn xv = {xf, n, 1}, mv = {mf, n, 1};
    int fails = 0;

    double *out = malloc(sizeof(double) * R);
    dc->logp(R, n, K, xv, th, mv, out);
    for (int r = 0; r < R; r++) {
        double want = ref_row(&c, r);
        if (!(fabs(out[r] - want) <= 1e-9 * (fabs(want) + 1) + n * dc->elem_tol)) {
            fprintf(stderr, "\n  %s logp row %d: %.12g want %.12g\n", dc->name,
                    r, out[r], want);
            fails++;
        }
    }
    /* the reference's dout is the float one the kernel sees */
    for (int r = 0; r < R; r++)
        c.dout[r] = doutf[r];
    dc->bwd(R, n, K, xv, th, mv, doutf, (VlmOut){gx, n, 1}, dth);
    fails += check_grad(&c, c.x, gx, N, dc->value_grad, "dx");
    for (int j = 0; j < dc->np; j++)
        fails += check_grad(&c, c.th[j], gth[j], slots[j], true,
                            j ? "dth1" : "dth0");
    /* nothing needed: no writes, no crash */
    dc->bwd(R, n, K, xv, th, mv, doutf, (VlmOut){NULL, 0, 0}, NULL);

    free(out);
    free(xf);
    free(mf);
    free(doutf);
    free(gx);
    free(c.x);
    free(c.mask);
    free(c.dout);
    for (int j = 0; j < dc->np; j++) {
        free(c.th[j]);
        free(thf[j]);
        free(gth[j]);
    }
    return fails;
}

static void test_logp_grads(void)
{
    for (size_t d = 0; d < N_CASES; d++) {
        const DistCase *dc = &cases[d];
        int fails = 0;
        const int Ks[2] = {1, 7};
        for (int kk = 0; kk < (dc->cat ? 2 : 1); kk++) {
            int K = Ks[kk];
            uint64_t s = 1000 * d + 10 * kk;
            fails += check_layout(dc, 3, 11, K, BC_FULL, BC_FULL, false, s + 1);
            fails += check_layout(dc, 3, 11, K, BC_GLOBAL, BC_ROW, true, s + 2);
            fails += check_layout(dc, 1, 5, K, BC_SCALAR, BC_SCALAR, false, s + 3);
            fails += check_layout(dc, 2, 13, K, BC_ROW, BC_GLOBAL, true, s + 4);
            fails += check_layout(dc, 4, 8, K, BC_SCALAR, BC_FULL, false, s + 5);
        }
        if (fails)
            fprintf(stderr, "\n  %s: %d gradient/value failures\n", dc->name,
                    fails);
        CU_ASSERT_EQUAL(fails, 0);
    }
}

/* ------------------------------------------------------------ known values */

static double logp1(VlmLogpFn *f, double x, double a, double b)
{
    float xf = (float)x, t[2] = {(float)a, (float)b};
    VlmIn th[2] = {{&t[0], 0, 0}, {&t[1], 0, 0}};
    double out;
    f(1, 1, 1, (VlmIn){&xf, 0, 0}, th, (VlmIn){NULL, 0, 0}, &out);
    return out;
}

static double logp_cat(VlmLogpFn *f, double x, const float *p, int K)
{
    float xf = (float)x;
    VlmIn th = {p, 0, 0};
    double out;
    f(1, 1, K, (VlmIn){&xf, 0, 0}, &th, (VlmIn){NULL, 0, 0}, &out);
    return out;
}

#define CLOSE(a, b) CU_ASSERT_DOUBLE_EQUAL((a), (b), 1e-6 * (fabs((double)(b)) + 1e-3))

static void test_known_values(void)
{
    CLOSE(logp1(vlm_dist_normal_logp, 0, 0, 1), -0.91893853320467274);
    CLOSE(logp1(vlm_dist_normal_logp, 3, 1, 2), -2.112085713764618);
    CLOSE(logp1(vlm_dist_laplace_logp, 1, 0, 1), -1 - M_LN2);
    CLOSE(logp1(vlm_dist_lognormal_logp, 1, 0, 1), -0.91893853320467274);
    CLOSE(logp1(vlm_dist_exponential_logp, 1, 2, 0), M_LN2 - 2);
    CLOSE(logp1(vlm_dist_exponential_logp, 0, 2, 0), M_LN2);
    CLOSE(logp1(vlm_dist_gamma_logp, 0.5, 2, 3), 0.004077396776274167);
    CLOSE(logp1(vlm_dist_gamma_logp, 0, 1, 3), log(3.0));
    CLOSE(logp1(vlm_dist_beta_logp, 0.4, 2, 3), 0.5469646703818639);
    CLOSE(logp1(vlm_dist_beta_logp, 0, 1, 3), log(3.0));
    CLOSE(logp1(vlm_dist_uniform_logp, 0, -1, 3), -log(4.0));
    CLOSE(logp1(vlm_dist_uniform_logp, 3, -1, 3), -log(4.0));
    CLOSE(logp1(vlm_dist_poisson_logp, 2, 3, 0), -1.4959226032237258);
    CLOSE(logp1(vlm_dist_poisson_logp, 0, 0, 0), 0);
    CLOSE(logp1(vlm_dist_bernoulli_probs_logp, 1, 0.25, 0), log(0.25));
    CLOSE(logp1(vlm_dist_bernoulli_probs_logp, 0, 0, 0), 0);
    CLOSE(logp1(vlm_dist_bernoulli_logits_logp, 0, 0, 0), -M_LN2);
    CLOSE(logp1(vlm_dist_bernoulli_logits_logp, 1, 100, 0), 0);
    CLOSE(logp1(vlm_dist_bernoulli_logits_logp, 0, -200, 0), 0);
    CLOSE(logp1(vlm_dist_bernoulli_logits_logp, 1, -200, 0), -200);
    CLOSE(logp1(vlm_dist_continuous_bernoulli_logits_logp, 0.3, 0, 0), 0);
    CLOSE(logp1(vlm_dist_continuous_bernoulli_probs_logp, 0.9, 0.5, 0), 0);
    CLOSE(logp1(vlm_dist_continuous_bernoulli_logits_logp, 0.3, 2, 0),
          -0.5614393615711956);
    const float lg[3] = {0, (float)M_LN2, (float)log(3.0)};
    CLOSE(logp_cat(vlm_dist_categorical_logits_logp, 2, lg, 3), log(0.5));
    CLOSE(logp_cat(vlm_dist_categorical_logits_logp, 0, lg, 3), -log(6.0));
    const float pr[3] = {0.5f, 0.25f, 0.25f};
    CLOSE(logp_cat(vlm_dist_categorical_probs_logp, 1, pr, 3), log(0.25));
    const float one = 3.5f; /* K = 1: the only class has probability 1 */
    CLOSE(logp_cat(vlm_dist_categorical_logits_logp, 0, &one, 1), 0);
    /* -inf logits are classes with no mass */
    const float masked[3] = {0, -INFINITY, 0};
    CLOSE(logp_cat(vlm_dist_categorical_logits_logp, 0, masked, 3), -M_LN2);
    CU_ASSERT(logp_cat(vlm_dist_categorical_logits_logp, 1, masked, 3) == -INFINITY);
}

/* Continuous Bernoulli near p = 1/2: against log C(l) = log(l / tanh(l/2))
 * in long double, and smooth across the Taylor window's edge. */
static void test_cb_near_half(void)
{
    const double ls[] = {1e-7, -3e-6, 2e-4, -9.99e-4, 1.001e-3, 5e-3, 0.05};
    for (size_t t = 0; t < sizeof ls / sizeof ls[0]; t++) {
        double l = (float)ls[t];
        long double lc = logl((long double)l / tanhl((long double)l / 2));
        long double want = 0.3L * l - log1pl(expl((long double)l)) + lc;
        CLOSE(logp1(vlm_dist_continuous_bernoulli_logits_logp, 0.3, l, 0),
              (double)want);
        double p = (float)(1 / (1 + exp(-l)));
        double lp = log(p) - log1p(-p);
        long double lcp = lp == 0 ? logl(2)
                                  : logl((long double)lp / tanhl((long double)lp / 2));
        long double wantp = 0.3L * logl(p) + 0.7L * log1pl(-(long double)p) + lcp;
        double gotp = logp1(vlm_dist_continuous_bernoulli_probs_logp, 0.3, p, 0);
        if (!(fabs(gotp - (double)wantp) <= 1e-9))
            fprintf(stderr, "\n  cb probs p=%.9g: %.15g want %.15g\n", p, gotp,
                    (double)wantp);
        CU_ASSERT_DOUBLE_EQUAL(gotp, (double)wantp, 1e-9);
        /* gradient in l: x - sigmoid(l) + 1/l - 1/sinh(l) */
        float xf = 0.3f, lf = (float)l, dout = 1, gl = 0;
        VlmIn th = {&lf, 0, 0};
        VlmOut dth = {&gl, 0, 0};
        vlm_dist_continuous_bernoulli_logits_logp_bwd(
            1, 1, 1, (VlmIn){&xf, 0, 0}, &th, (VlmIn){NULL, 0, 0}, &dout,
            (VlmOut){NULL, 0, 0}, &dth);
        long double L = l;
        long double wg = 0.3L - 1 / (1 + expl(-L)) + 1 / L - 1 / sinhl(L);
        CU_ASSERT_DOUBLE_EQUAL(gl, (double)wg, 1e-6);
    }
    /* continuity across the window edge */
    double a = logp1(vlm_dist_continuous_bernoulli_logits_logp, 0.5,
                     nextafterf(1e-3f, 0), 0);
    double b = logp1(vlm_dist_continuous_bernoulli_logits_logp, 0.5,
                     nextafterf(1e-3f, 1), 0);
    CU_ASSERT_DOUBLE_EQUAL(a, b, 1e-12);
}

/* ------------------------------------------------------------ edges */

typedef struct EdgeCase {
    const char *name;
    VlmLogpFn *logp;
    VlmLogpBwdFn *bwd;
    double a, b;
    bool pinf_at_zero; /* documented +inf spike at x = 0 (Beta: also 1) */
} EdgeCase;

static const EdgeCase edges[] = {
    {"normal", D(normal), 0.5, 1.5, false},
    {"laplace", D(laplace), -0.5, 0.7, false},
    {"lognormal", D(lognormal), 0.2, 0.9, false},
    {"exponential", D(exponential), 1.5, 0, false},
    {"gamma", D(gamma), 2.5, 1.5, false},
    {"gamma a=1", D(gamma), 1.0, 1.5, false},
    {"gamma a<1", D(gamma), 0.5, 1.5, true},
    {"beta", D(beta), 2.5, 1.5, false},
    {"beta a<1", D(beta), 0.5, 0.5, true},
    {"uniform", D(uniform), -1, 1, false},
    {"poisson", D(poisson), 2.5, 0, false},
    {"poisson rate 0", D(poisson), 0, 0, false},
    {"bernoulli_probs", D(bernoulli_probs), 0.3, 0, false},
    {"bernoulli_probs p=0", D(bernoulli_probs), 0, 0, false},
    {"bernoulli_probs p=1", D(bernoulli_probs), 1, 0, false},
    {"bernoulli_logits", D(bernoulli_logits), -1.2, 0, false},
    {"continuous_bernoulli_probs", D(continuous_bernoulli_probs), 0.3, 0, false},
    {"continuous_bernoulli_probs p=0", D(continuous_bernoulli_probs), 0, 0, false},
    {"continuous_bernoulli_probs p=1", D(continuous_bernoulli_probs), 1, 0, false},
    {"continuous_bernoulli_logits", D(continuous_bernoulli_logits), 0.8, 0, false},
};

/* logp of one element and its gradients; counts NaN outputs (and +inf
 * ones unless allowed). */
static int edge_eval(const EdgeCase *e, float x, float a, float b,
                     bool allow_pinf)
{
    float t[2] = {a, b}, g[3] = {0, 0, 0}, dout = 1;
    VlmIn th[2] = {{&t[0], 0, 0}, {&t[1], 0, 0}};
    VlmOut dth[2] = {{&g[1], 0, 0}, {&g[2], 0, 0}};
    double out;
    e->logp(1, 1, 1, (VlmIn){&x, 0, 0}, th, (VlmIn){NULL, 0, 0}, &out);
    e->bwd(1, 1, 1, (VlmIn){&x, 0, 0}, th, (VlmIn){NULL, 0, 0}, &dout,
           (VlmOut){&g[0], 0, 0}, dth);
    int bad = isnan(out) || (out == INFINITY && !allow_pinf) ||
              isnan(g[0]) || isnan(g[1]) || isnan(g[2]);
    if (bad)
        fprintf(stderr, "\n  edge %s x=%g a=%g b=%g: logp %g grads %g %g %g\n",
                e->name, x, a, b, out, g[0], g[1], g[2]);
    return bad;
}

static void test_edges(void)
{
    const float xs[] = {0.0f, -0.0f, 1e-38f, -1e-38f, 1e30f, -1e30f,
                        INFINITY, -INFINITY, NAN, 1.0f, 0.5f, -1.0f, 2.0f,
                        FLT_MAX, -FLT_MAX, 1e-45f};
    int bad = 0;
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++) {
        const EdgeCase *e = &edges[k];
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
            bad += edge_eval(e, xs[i], (float)e->a, (float)e->b,
                             e->pinf_at_zero &&
                                 (xs[i] == 0 || (e->logp == vlm_dist_beta_logp &&
                                                 xs[i] == 1)));
    }
    /* extreme but valid parameters for the location-scale families */
    const float scales[] = {1e-38f, 1e-45f, 1e30f, FLT_MAX};
    for (size_t k = 0; k < 3; k++)
        for (size_t s = 0; s < 4; s++)
            for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
                bad += edge_eval(&edges[k], xs[i], 1e30f, scales[s], false) +
                       edge_eval(&edges[k], xs[i], -3.0f, scales[s], false);
    /* rates, shapes and logits at extremes */
    for (size_t s = 0; s < 4; s++)
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
            float v = scales[s];
            bad += edge_eval(&edges[3], xs[i], v, 0, false);
            bad += edge_eval(&edges[4], xs[i], v, v, xs[i] == 0);
            bad += edge_eval(&edges[7], xs[i], v, v, xs[i] == 0 || xs[i] == 1);
            bad += edge_eval(&edges[10], xs[i], v, 0, false);
            bad += edge_eval(&edges[15], xs[i], v, 0, false);
            bad += edge_eval(&edges[15], xs[i], -v, 0, false);
            bad += edge_eval(&edges[19], xs[i], v, 0, false);
            bad += edge_eval(&edges[19], xs[i], -v, 0, false);
        }
    CU_ASSERT_EQUAL(bad, 0);

    /* out of support is -inf, exactly */
    CU_ASSERT(logp1(vlm_dist_normal_logp, INFINITY, 0, 1) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_normal_logp, NAN, 0, 1) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_lognormal_logp, 0, 0, 1) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_exponential_logp, -1e-38, 1, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_gamma_logp, 0, 2, 1) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_gamma_logp, 0, 0.5, 1) == INFINITY);
    CU_ASSERT(logp1(vlm_dist_beta_logp, 1.0000001, 2, 2) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_uniform_logp, 3.0001, -1, 3) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_poisson_logp, 2.5, 3, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_poisson_logp, 1, 0, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_bernoulli_probs_logp, 1.5, 0.5, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_bernoulli_probs_logp, 1, 0, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_bernoulli_logits_logp, -0.1, 0, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_bernoulli_logits_logp, 0, INFINITY, 0) == -INFINITY);
    CU_ASSERT(logp1(vlm_dist_continuous_bernoulli_logits_logp, 2, 0, 0) == -INFINITY);
    const float lg[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const float xs_bad[] = {-1, 4, 1.5f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT(logp_cat(vlm_dist_categorical_logits_logp, xs_bad[i], lg, 4) == -INFINITY);
        CU_ASSERT(logp_cat(vlm_dist_categorical_probs_logp, xs_bad[i], lg, 4) == -INFINITY);
    }
    const float big[3] = {1e30f, -1e30f, 0};
    CLOSE(logp_cat(vlm_dist_categorical_logits_logp, 0, big, 3), 0);
    CU_ASSERT_DOUBLE_EQUAL(logp_cat(vlm_dist_categorical_logits_logp, 1, big, 3), -2e30, 1e24);
    CU_ASSERT_DOUBLE_EQUAL(logp_cat(vlm_dist_categorical_logits_logp, 2, big, 3), -1e30, 1e24);

    /* invalid parameters are NaN (documented) */
    CU_ASSERT(isnan(logp1(vlm_dist_normal_logp, 0, 0, 0)));
    CU_ASSERT(isnan(logp1(vlm_dist_normal_logp, 0, 0, -1)));
    CU_ASSERT(isnan(logp1(vlm_dist_normal_logp, 0, NAN, 1)));
    CU_ASSERT(isnan(logp1(vlm_dist_gamma_logp, 1, -1, 1)));
    CU_ASSERT(isnan(logp1(vlm_dist_uniform_logp, 0, 1, 1)));
    CU_ASSERT(isnan(logp1(vlm_dist_bernoulli_probs_logp, 0, 1.5, 0)));
    CU_ASSERT(isnan(logp1(vlm_dist_poisson_logp, 0, -1, 0)));
}

/* Masked-out elements contribute nothing even when they hold NaN values
 * and the row has otherwise -inf: the mask is a skip, not a multiply. */
static void test_mask_skips(void)
{
    float x[4] = {NAN, 0.5f, -3.0f, 0.25f}, mask[4] = {0, 1, 0, 1};
    float p = 0.5f, dout = 1, gx[4] = {0}, gp = 0;
    VlmIn th = {&p, 0, 0};
    VlmOut dth = {&gp, 0, 0};
    double out;
    vlm_dist_bernoulli_probs_logp(1, 4, 1, (VlmIn){x, 4, 1}, &th,
                                  (VlmIn){mask, 4, 1}, &out);
    CLOSE(out, 2 * log(0.5));
    vlm_dist_bernoulli_probs_logp_bwd(1, 4, 1, (VlmIn){x, 4, 1}, &th,
                                      (VlmIn){mask, 4, 1}, &dout,
                                      (VlmOut){gx, 4, 1}, &dth);
    CU_ASSERT(gx[0] == 0 && gx[2] == 0 && isfinite(gp));
    /* gradient at a -inf point is 0 */
    float xo = 2.0f, gxo = 0;
    gp = 0;
    vlm_dist_bernoulli_probs_logp_bwd(1, 1, 1, (VlmIn){&xo, 0, 0}, &th,
                                      (VlmIn){NULL, 0, 0}, &dout,
                                      (VlmOut){&gxo, 0, 0}, &dth);
    CU_ASSERT(gxo == 0 && gp == 0);
}

/* The categorical "mean" is the mode, and the first argmax on ties (the
 * promise in dist_categorical.c), for probs and logits alike. */
static void test_cat_mode_ties(void)
{
    float flat[4] = {0.25f, 0.25f, 0.25f, 0.25f}, lg[3] = {1, 3, 3};
    float mode = -1;
    vlm_dist_categorical_probs_mean(1, 1, 4, &(VlmIn){flat, 0, 0}, &mode);
    CU_ASSERT_EQUAL(mode, 0);
    mode = -1;
    vlm_dist_categorical_logits_mean(1, 1, 3, &(VlmIn){lg, 0, 0}, &mode);
    CU_ASSERT_EQUAL(mode, 1);
}

/* A class with logit -inf has log p = -inf; its gradient is 0, not
 * [k = c] - softmax_k (which would be {1, -1/2, -1/2} here), through the
 * per-row loop (rs != 0) and the shared-logits path (rs == 0). */
static void test_cat_logits_grad_at_neg_inf(void)
{
    float l[3] = {-INFINITY, 0, 0}, x = 0, dout = 1;
    for (ptrdiff_t rs = 0; rs <= 3; rs += 3) {
        float g[3] = {0, 0, 0};
        VlmIn th = {l, rs, 1};
        VlmOut dth = {g, rs, 1};
        double out;
        vlm_dist_categorical_logits_logp(1, 1, 3, (VlmIn){&x, 0, 0}, &th,
                                         (VlmIn){NULL, 0, 0}, &out);
        CU_ASSERT(out == -INFINITY);
        vlm_dist_categorical_logits_logp_bwd(1, 1, 3, (VlmIn){&x, 0, 0}, &th,
                                             (VlmIn){NULL, 0, 0}, &dout,
                                             (VlmOut){NULL, 0, 0}, &dth);
        CU_ASSERT(g[0] == 0 && g[1] == 0 && g[2] == 0);
    }
}

/* ------------------------------------------------------------ rsample */

typedef double RefTransformFn(const double *th, double eps);

static double rt_normal(const double *t, double e) { return t[0] + t[1] * e; }
static double rt_laplace(const double *t, double e)
{
    double v = e - 0.5;
    return t[0] - t[1] * (v > 0 ? 1 : -1) * log(1 - 2 * fabs(v));
}
static double rt_lognormal(const double *t, double e) { return exp(t[0] + t[1] * e); }
static double rt_exponential(const double *t, double e) { return -log(e) / t[0]; }
static double rt_uniform(const double *t, double e) { return t[0] + (t[1] - t[0]) * e; }

typedef struct RsCase {
    const char *name;
    VlmNoiseFn *noise;
    VlmRsampleFn *rsample;
    VlmRsampleBwdFn *bwd;
    int np;
    RefTransformFn *ref;
    GenThFn *gen_th;
} RsCase;

#define RS(stem) vlm_dist_##stem##_noise, vlm_dist_##stem##_rsample, \
                 vlm_dist_##stem##_rsample_bwd
static const RsCase rs_cases[] = {
    {"normal", RS(normal), 2, rt_normal, gen_loc_scale},
    {"laplace", RS(laplace), 2, rt_laplace, gen_loc_scale},
    {"lognormal", RS(lognormal), 2, rt_lognormal, gen_loc_scale},
    {"exponential", RS(exponential), 1, rt_exponential, gen_rate},
    {"uniform", RS(uniform), 2, rt_uniform, gen_low_high},
};

/* sum_k dout[k] * g(th(k), eps[k]) in double */
static double rs_objective(const RsCase *rc, int R, int n, const int *bc,
                           double *const *th, const float *eps,
                           const float *dout)
{
    double s = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            double t[2];
            for (int j = 0; j < rc->np; j++)
                t[j] = th[j][bc_offset(bc[j], r, i, n, 1)];
            s += dout[r * n + i] * rc->ref(t, eps[r * n + i]);
        }
    return s;
}

static int check_rsample(const RsCase *rc, int R, int n, int bc0, int bc1,
                         uint64_t seed)
{
    VlmRng g;
    vlm_rng_init(&g, seed, 5);
    int bc[2] = {bc0, bc1}, fails = 0;
    size_t N = (size_t)R * n, slots[2];
    double *th[2] = {NULL, NULL};
    float *thf[2] = {NULL, NULL}, *gth[2] = {NULL, NULL};
    VlmIn tv[2];
    VlmOut dv[2];
    for (int j = 0; j < rc->np; j++) {
        slots[j] = bc_slots(bc[j], R, n);
        th[j] = malloc(sizeof(double) * slots[j]);
        thf[j] = malloc(sizeof(float) * slots[j]);
        gth[j] = malloc(sizeof(float) * slots[j]);
        for (size_t s = 0; s < slots[j]; s++) {
            rc->gen_th(&g, j, 1, &thf[j][s]);
            th[j][s] = thf[j][s];
            gth[j][s] = 0.25f;
        }
        bc_strides(bc[j], n, 1, &tv[j].rs, &tv[j].es);
        tv[j].p = thf[j];
        dv[j] = (VlmOut){gth[j], tv[j].rs, tv[j].es};
    }
    float *eps = malloc(sizeof(float) * N), *out = malloc(sizeof(float) * N),
          *dout = malloc(sizeof(float) * N);
    rc->noise(&g, N, eps);
    for (size_t k = 0; k < N; k++)
        dout[k] = (float)unif(&g, -1.0, 1.0);
    rc->rsample(R, n, tv, eps, out);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            double t[2];
            for (int j = 0; j < rc->np; j++)
                t[j] = th[j][bc_offset(bc[j], r, i, n, 1)];
            double want = rc->ref(t, eps[r * n + i]);
            if (!(fabs(out[r * n + i] - want) <= 1e-6 * (fabs(want) + 1)))
                fails++;
        }
    rc->bwd(R, n, tv, eps, out, dout, dv);
    for (int j = 0; j < rc->np; j++)
        for (size_t s = 0; s < slots[j]; s++) {
            double v0 = th[j][s], h = 1e-5 * fmax(fabs(v0), 0.1);
            th[j][s] = v0 + h;
            double fp = rs_objective(rc, R, n, bc, th, eps, dout);
            th[j][s] = v0 - h;
            double fm = rs_objective(rc, R, n, bc, th, eps, dout);
            th[j][s] = v0;
            double want = (fp - fm) / (2 * h), an = gth[j][s] - 0.25;
            if (!(fabs(an - want) <= 1e-4 * (fabs(want) + 1))) {
                fprintf(stderr, "\n  rsample %s dth%d[%zu]: %.8g want %.8g\n",
                        rc->name, j, s, an, want);
                fails++;
            }
        }
    free(eps);
    free(out);
    free(dout);
    for (int j = 0; j < rc->np; j++) {
        free(th[j]);
        free(thf[j]);
        free(gth[j]);
    }
    return fails;
}

static void test_rsample_grads(void)
{
    for (size_t k = 0; k < sizeof rs_cases / sizeof rs_cases[0]; k++) {
        int f = check_rsample(&rs_cases[k], 3, 11, BC_FULL, BC_FULL, 10 + k) +
                check_rsample(&rs_cases[k], 3, 11, BC_GLOBAL, BC_ROW, 20 + k) +
                check_rsample(&rs_cases[k], 1, 5, BC_SCALAR, BC_SCALAR, 30 + k);
        CU_ASSERT_EQUAL(f, 0);
    }
}

/* ------------------------------------------------------------ moments */

static int moments_ok(const float *v, size_t N, double mu, double var,
                      const char *label)
{
    double *w = tu_to_double(v, N);
    int ok = tu_moments_ok(w, N, mu, var, label);
    free(w);
    return ok;
}

typedef struct MomentCase {
    const char *name;
    VlmSampleFn *sample;
    VlmMeanFn *mean;
    float a, b;
    double mu, var;
} MomentCase;

static double cb_var(double l)
{
    return 1 / (l * l) - exp(l) / ((exp(l) - 1) * (exp(l) - 1));
}
static double cb_mean(double l) { return exp(l) / (exp(l) - 1) - 1 / l; }

#define MS(stem) vlm_dist_##stem##_sample, vlm_dist_##stem##_mean

#define SIDE 1000 /* R = n = SIDE: 10^6 draws */

static void test_sample_moments(void)
{
    double lm = 0.1, ls = 0.5, ga = 0.3, gb = 2, ba = 0.5, bb = 0.7;
    double sig = 1 / (1 + exp(0.8)), lp2 = log(0.2 / 0.8);
    const MomentCase mc[] = {
        {"normal", MS(normal), 0.7f, 1.3f, 0.7, 1.69},
        {"laplace", MS(laplace), -0.4f, 0.8f, -0.4, 1.28},
        {"lognormal", MS(lognormal), 0.1f, 0.5f, exp(lm + ls * ls / 2),
         (exp(ls * ls) - 1) * exp(2 * lm + ls * ls)},
        {"exponential", MS(exponential), 2.5f, 0, 0.4, 0.16},
        {"gamma a<1", MS(gamma), 0.3f, 2.0f, ga / gb, ga / (gb * gb)},
        {"gamma", MS(gamma), 4.5f, 0.7f, 4.5 / 0.7, 4.5 / 0.49},
        {"beta", MS(beta), 0.5f, 0.7f, ba / (ba + bb),
         ba * bb / ((ba + bb) * (ba + bb) * (ba + bb + 1))},
        {"beta 3,2", MS(beta), 3, 2, 0.6, 6.0 / 150},
        {"uniform", MS(uniform), -1, 3, 1, 16.0 / 12},
        {"poisson", MS(poisson), 3.5f, 0, 3.5, 3.5},
        {"poisson large", MS(poisson), 1234.5f, 0, 1234.5, 1234.5},
        {"bernoulli_probs", MS(bernoulli_probs), 0.3f, 0, 0.3, 0.21},
        {"bernoulli_logits", MS(bernoulli_logits), -0.8f, 0, sig, sig * (1 - sig)},
        {"cb_logits", MS(continuous_bernoulli_logits), 1.3f, 0, cb_mean(1.3),
         cb_var(1.3)},
        {"cb_logits 0", MS(continuous_bernoulli_logits), 0, 0, 0.5, 1.0 / 12},
        {"cb_logits -40", MS(continuous_bernoulli_logits), -40, 0,
         cb_mean(-40), cb_var(-40)},
        {"cb_probs", MS(continuous_bernoulli_probs), 0.2f, 0, cb_mean(lp2),
         cb_var(lp2)},
        {"cb_probs 1/2", MS(continuous_bernoulli_probs), 0.5f, 0, 0.5, 1.0 / 12},
    };
    float *v = malloc(sizeof(float) * SIDE * SIDE);
    VlmRng g;
    vlm_rng_init(&g, 2024, VLM_STREAM_SAMPLE);
    for (size_t k = 0; k < sizeof mc / sizeof mc[0]; k++) {
        float t[2] = {mc[k].a, mc[k].b};
        VlmIn th[2] = {{&t[0], 0, 0}, {&t[1], 0, 0}};
        mc[k].sample(&g, SIDE, SIDE, 1, th, v);
        CU_ASSERT(moments_ok(v, (size_t)SIDE * SIDE, mc[k].mu, mc[k].var,
                             mc[k].name));
        float m;
        mc[k].mean(1, 1, 1, th, &m);
        CU_ASSERT_DOUBLE_EQUAL(m, mc[k].mu, 1e-6 * (fabs(mc[k].mu) + 1));
    }
    /* categorical: index moments, K = 7, probs and logits */
    float p[7], l[7];
    double s = 0, w[7], m1 = 0, m2 = 0;
    for (int c = 0; c < 7; c++)
        s += w[c] = 1.0 + (c * 5 % 7);
    for (int c = 0; c < 7; c++) {
        p[c] = (float)(w[c] / s);
        l[c] = (float)log(w[c]) + 3.0f;
        m1 += c * w[c] / s;
        m2 += c * c * w[c] / s;
    }
    VlmIn tp = {p, 0, 0}, tl = {l, 0, 0};
    vlm_dist_categorical_probs_sample(&g, SIDE, SIDE, 7, &tp, v);
    CU_ASSERT(moments_ok(v, (size_t)SIDE * SIDE, m1, m2 - m1 * m1, "cat probs"));
    vlm_dist_categorical_logits_sample(&g, SIDE, SIDE, 7, &tl, v);
    CU_ASSERT(moments_ok(v, (size_t)SIDE * SIDE, m1, m2 - m1 * m1, "cat logits"));
    float mode[2];
    VlmIn tp2 = {p, 0, 0};
    vlm_dist_categorical_probs_mean(1, 2, 7, &tp2, mode);
    CU_ASSERT(mode[0] == 4 && mode[1] == 4); /* w = 1 + (5c mod 7) peaks at c = 4 */
    free(v);
}

static void test_rsample_moments(void)
{
    enum { N = SIDE * SIDE };
    float *eps = malloc(sizeof(float) * N), *v = malloc(sizeof(float) * N);
    VlmRng g;
    vlm_rng_init(&g, 4048, VLM_STREAM_NOISE);
    double lm = -0.3, ls = 0.4;
    struct {
        const RsCase *rc;
        float a, b;
        double mu, var;
    } mc[] = {
        {&rs_cases[0], 0.7f, 1.3f, 0.7, 1.69},
        {&rs_cases[1], -0.4f, 0.8f, -0.4, 1.28},
        {&rs_cases[2], -0.3f, 0.4f, exp(lm + ls * ls / 2),
         (exp(ls * ls) - 1) * exp(2 * lm + ls * ls)},
        {&rs_cases[3], 2.5f, 0, 0.4, 0.16},
        {&rs_cases[4], -1, 3, 1, 16.0 / 12},
    };
    for (size_t k = 0; k < sizeof mc / sizeof mc[0]; k++) {
        float t[2] = {mc[k].a, mc[k].b};
        VlmIn th[2] = {{&t[0], 0, 0}, {&t[1], 0, 0}};
        mc[k].rc->noise(&g, N, eps);
        mc[k].rc->rsample(SIDE, SIDE, th, eps, v);
        CU_ASSERT(moments_ok(v, N, mc[k].mu, mc[k].var, mc[k].rc->name));
    }
    free(eps);
    free(v);
}

/* ------------------------------------------------------------ special */

static void test_special(void)
{
    const double euler = 0.57721566490153286061;
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(1), -euler, 1e-14);
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(0.5), -euler - 2 * M_LN2, 1e-14);
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(10), 2.2517525890667211, 1e-14);
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(100), 4.6001618527380874, 1e-13);
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(-0.5), 0.03648997397857652, 1e-13);
    /* reflection psi(x) = psi(1 - x) - pi cot(pi x) away from the half
     * integers, where cot(pi x) = 0 hides its sign: cot = -1 at -0.25 and
     * -1.25, +1 at -2.75 (values from mpmath, 30 digits) */
    const struct { double x, psi; } neg[] = {
        {-0.25, 2.914139120213528}, {-1.25, 3.714139120213528},
        {-2.75, -1.959055264977997}, {-1.5, 0.7031566406452432}};
    for (int k = 0; k < 4; k++)
        CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(neg[k].x), neg[k].psi,
                               1e-12 * fabs(neg[k].psi));
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(1e-8) / (-1e8 - euler), 1, 1e-15);
    CU_ASSERT(isnan(vlm_digamma(0)) && isnan(vlm_digamma(-3)));
    CU_ASSERT(isnan(vlm_digamma(NAN)));
    CU_ASSERT(vlm_digamma(INFINITY) == INFINITY);
    CU_ASSERT_DOUBLE_EQUAL(vlm_digamma(1e30), log(1e30), 1e-12);
    /* recurrence and the derivative of lgamma */
    int bad = 0;
    for (double x = 0.013; x < 60; x *= 1.37) {
        bad += fabs(vlm_digamma(x + 1) - vlm_digamma(x) - 1 / x) > 1e-12 * (1 + 1 / x);
        double h = 1e-5 * x;
        double fdv = (lgamma(x + h) - lgamma(x - h)) / (2 * h);
        bad += fabs(fdv - vlm_digamma(x)) > 1e-6 * (1 + fabs(fdv));
    }
    CU_ASSERT_EQUAL(bad, 0);

    CU_ASSERT_DOUBLE_EQUAL(vlm_log1pexp(0), M_LN2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(vlm_log1pexp(800), 800, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(vlm_log1pexp(-40) / exp(-40), 1, 1e-12);
    CU_ASSERT(vlm_log1pexp(-800) >= 0 && vlm_log1pexp(-800) < 1e-300);
    CU_ASSERT(vlm_log1pexp(INFINITY) == INFINITY);
    CU_ASSERT(vlm_log1pexp(-INFINITY) == 0);
    CU_ASSERT_DOUBLE_EQUAL(vlm_log_sigmoid(-800), -800, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(vlm_log_sigmoid(0), -M_LN2, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(vlm_log_sigmoid(40) / -exp(-40), 1, 1e-12);
}

/* KL(N(a, s) || N(b, t)) per element, in double */
static double ref_kl(double a, double s, double b, double t)
{
    return log(t / s) + (s * s + (a - b) * (a - b)) / (2 * t * t) - 0.5;
}

/* sum_r dout[r] sum_i KL, q full (R, n), p's loc global (n), scale scalar */
static double kl_obj(int R, int n, const double *lq, const double *sq,
                     const double *lp, const double *sp, const float *dout)
{
    double o = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++)
            o += dout[r] * ref_kl(lq[r * n + i], sq[r * n + i], lp[i], sp[0]);
    return o;
}

static void test_normal_kl(void)
{
    enum { R = 3, n = 9 };
    VlmRng g;
    vlm_rng_init(&g, 31, 1);
    /* q full, p global (rs = 0) and scalar (es = 0) */
    float lq[R * n], sq[R * n], lp[n], sp[1];
    double dq[R * n], ds[R * n], dlp[n], dsp[1];
    for (int k = 0; k < R * n; k++) {
        lq[k] = (float)unif(&g, -1, 1);
        sq[k] = (float)unif(&g, 0.3, 2);
        dq[k] = lq[k];
        ds[k] = sq[k];
    }
    for (int k = 0; k < n; k++)
        dlp[k] = lp[k] = (float)unif(&g, -1, 1);
    dsp[0] = sp[0] = 1.3f;
    VlmIn vlq = {lq, n, 1}, vsq = {sq, n, 1}, vlp = {lp, 0, 1}, vsp = {sp, 0, 0};
    double out[R];
    float dout[R] = {1.0f, -0.5f, 2.0f};
    vlm_dist_normal_kl(R, n, vlq, vsq, vlp, vsp, out);
    for (int r = 0; r < R; r++) {
        double w = 0;
        for (int i = 0; i < n; i++)
            w += ref_kl(dq[r * n + i], ds[r * n + i], dlp[i], dsp[0]);
        CU_ASSERT_DOUBLE_EQUAL(out[r], w, 1e-10);
    }
    float glq[R * n] = {0}, gsq[R * n] = {0}, glp[n] = {0}, gsp[1] = {0};
    vlm_dist_normal_kl_bwd(R, n, vlq, vsq, vlp, vsp, dout, (VlmOut){glq, n, 1},
                           (VlmOut){gsq, n, 1}, (VlmOut){glp, 0, 1},
                           (VlmOut){gsp, 0, 0});
    struct {
        double *v;
        float *g;
        int count;
    } ops[4] = {{dq, glq, R * n}, {ds, gsq, R * n}, {dlp, glp, n}, {dsp, gsp, 1}};
    int bad = 0;
    for (int o = 0; o < 4; o++)
        for (int k = 0; k < ops[o].count; k++) {
            double v0 = ops[o].v[k], h = 1e-6;
            ops[o].v[k] = v0 + h;
            double fp = kl_obj(R, n, dq, ds, dlp, dsp, dout);
            ops[o].v[k] = v0 - h;
            double fm = kl_obj(R, n, dq, ds, dlp, dsp, dout);
            ops[o].v[k] = v0;
            double want = (fp - fm) / (2 * h);
            bad += !(fabs(ops[o].g[k] - want) <= 1e-4 * (fabs(want) + 1));
        }
    CU_ASSERT_EQUAL(bad, 0);
    /* KL of a distribution with itself is 0; entropy of N(0, 1) */
    float zero = 0, one = 1;
    VlmIn z = {&zero, 0, 0}, u = {&one, 0, 0};
    vlm_dist_normal_kl(1, 4, z, u, z, u, out);
    CU_ASSERT_DOUBLE_EQUAL(out[0], 0, 1e-15);
    vlm_dist_normal_entropy(1, 2, u, out);
    CU_ASSERT_DOUBLE_EQUAL(out[0], 2 * 1.4189385332046727, 1e-12);
}

void vlm_test_dists(void)
{
    CU_pSuite s = CU_add_suite("dists", NULL, NULL);
    CU_add_test(s, "logp and gradients vs double reference",
                test_logp_grads);
    CU_add_test(s, "known values", test_known_values);
    CU_add_test(s, "continuous bernoulli near p = 1/2", test_cb_near_half);
    CU_add_test(s, "edge inputs", test_edges);
    CU_add_test(s, "mask skips elements", test_mask_skips);
    CU_add_test(s, "categorical mode: first argmax on ties", test_cat_mode_ties);
    CU_add_test(s, "categorical logits: no gradient where log p = -inf",
                test_cat_logits_grad_at_neg_inf);
    CU_add_test(s, "rsample gradients", test_rsample_grads);
    CU_add_test(s, "sample moments and means", test_sample_moments);
    CU_add_test(s, "rsample moments", test_rsample_moments);
    CU_add_test(s, "digamma, softplus, log-sigmoid", test_special);
    CU_add_test(s, "normal KL and entropy", test_normal_kl);
}
