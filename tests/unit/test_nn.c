/* test_nn.c — CUnit suite "nn": the linear layer (every activation, with
 * and without bias, scratch aliasing dy) and the per-row matvec, against
 * double-precision references whose analytic gradients are themselves
 * checked by central finite differences. Loss: sum(w * y). */
#include "vlm.h"
#include "fdcheck.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *act_name[] = {"identity", "relu", "tanh", "sigmoid",
                                 "softplus", "elu"};

static double ref_act(VlmAct a, double x)
{
    switch (a) {
    case VLM_ACT_IDENTITY: return x;
    case VLM_ACT_RELU: return x > 0 ? x : 0;
    case VLM_ACT_TANH: return tanh(x);
    case VLM_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case VLM_ACT_SOFTPLUS: return log1p(exp(x));
    case VLM_ACT_ELU: return x > 0 ? x : expm1(x);
    }
    return NAN;
}

static double ref_act_deriv(VlmAct a, double x)
{
    switch (a) {
    case VLM_ACT_IDENTITY: return 1;
    case VLM_ACT_RELU: return x > 0;
    case VLM_ACT_TANH: { double t = tanh(x); return 1 - t * t; }
    case VLM_ACT_SIGMOID: { double s = 1 / (1 + exp(-x)); return s * (1 - s); }
    case VLM_ACT_SOFTPLUS: return 1 / (1 + exp(-x));
    case VLM_ACT_ELU: return x > 0 ? 1 : exp(x);
    }
    return NAN;
}

/* The double reference of the linear layer; `var` selects which of x, W,
 * b the loss is a function of (for finite differences). */
typedef struct LinCtx {
    int R, in, out;
    VlmAct act;
    const double *x, *W, *b, *w;
    int var; /* 0 x, 1 W, 2 b */
} LinCtx;

static double ref_pre(const LinCtx *c, const double *x, const double *W,
                      const double *b, int r, int j)
{
    double s = b ? b[j] : 0;
    for (int k = 0; k < c->in; k++)
        s += x[r * c->in + k] * W[k * c->out + j];
    return s;
}

static double lin_loss(const double *v, size_t n, void *ctx)
{
    (void)n;
    LinCtx *c = ctx;
    const double *x = c->var == 0 ? v : c->x, *W = c->var == 1 ? v : c->W;
    const double *b = c->var == 2 ? v : c->b;
    double L = 0;
    for (int r = 0; r < c->R; r++)
        for (int j = 0; j < c->out; j++)
            L += c->w[r * c->out + j] * ref_act(c->act, ref_pre(c, x, W, b, r, j));
    return L;
}

/* Analytic: dpre = w act'(pre); dx = dpre W^T; dW = x^T dpre; db = sum dpre */
static void lin_ref_bwd(const LinCtx *c, double *y, double *dx, double *dW,
                        double *db)
{
    for (int r = 0; r < c->R; r++)
        for (int j = 0; j < c->out; j++) {
            double pre = ref_pre(c, c->x, c->W, c->b, r, j);
            y[r * c->out + j] = ref_act(c->act, pre);
            double d = c->w[r * c->out + j] * ref_act_deriv(c->act, pre);
            if (db)
                db[j] += d;
            for (int k = 0; k < c->in; k++) {
                dx[r * c->in + k] += d * c->W[k * c->out + j];
                dW[k * c->out + j] += d * c->x[r * c->in + k];
            }
        }
}

static void diff(const float *after, const float *before, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (double)after[i] - before[i];
}

static void run_linear_fd(int R, int in, int out, VlmAct act, bool bias,
                          bool alias, bool with_fd, uint64_t *rng)
{
    char what[96];
    snprintf(what, sizeof what, "linear %s R=%d in=%d out=%d%s%s",
             act_name[act], R, in, out, bias ? "" : " nobias",
             alias ? " scratch=dy" : "");
    size_t nx = (size_t)R * in, nW = (size_t)in * out, ny = (size_t)R * out;
    float *x = tu_floats(rng, nx, -1, 1);
    /* at realistic sizes (no FD), W scaled as an initialisation, so the
     * pre-activations stay O(1), and float's sums over K ~ 400 terms
     * judged at 1e-4, as test_linear_big */
    double wr = with_fd ? 0.7 : 1.0 / sqrt((double)in);
    float *W = tu_floats(rng, nW, -wr, wr);
    float *b = bias ? tu_floats(rng, out, -0.5, 0.5) : NULL;
    float *w = tu_floats(rng, ny, -1, 1), *wcopy = tu_copy(w, ny);
    float *y = tu_floats(rng, ny, 0, 0);
    float *scratch = alias ? wcopy : tu_floats(rng, ny, 0, 0);
    float *dx = tu_floats(rng, nx, -1, 1), *dx0 = tu_copy(dx, nx);
    float *dW = tu_floats(rng, nW, -1, 1), *dW0 = tu_copy(dW, nW);
    float *db = tu_floats(rng, out, -1, 1), *db0 = tu_copy(db, out);
    double *xd = tu_to_double(x, nx), *Wd = tu_to_double(W, nW);
    double *bd = bias ? tu_to_double(b, out) : NULL, *wd = tu_to_double(w, ny);
    double *yref = calloc(ny, sizeof(double)), *yk = calloc(ny, sizeof(double));
    double *dxr = calloc(nx, sizeof(double)), *dWr = calloc(nW, sizeof(double));
    double *dbr = calloc(out, sizeof(double));
    double *fd = calloc(nx + nW + out, sizeof(double));
    double *got = calloc(nx + nW + out, sizeof(double));

    LinCtx c = {R, in, out, act, xd, Wd, bd, wd, 0};
    lin_ref_bwd(&c, yref, dxr, dWr, bias ? dbr : NULL);
    /* the reference's own gradients against finite differences */
    if (with_fd) {
    c.var = 0;
    tu_fd_grad(lin_loss, xd, nx, &c, fd);
    tu_check_close(dxr, fd, nx, 1e-6, what, "ref dx vs fd");
    c.var = 1;
    tu_fd_grad(lin_loss, Wd, nW, &c, fd);
    tu_check_close(dWr, fd, nW, 1e-6, what, "ref dW vs fd");
    if (bias) {
        c.var = 2;
        tu_fd_grad(lin_loss, bd, out, &c, fd);
        tu_check_close(dbr, fd, out, 1e-6, what, "ref db vs fd");
    }
    }

    vlm_nn_linear_fwd(R, in, out, x, W, b, act, y);
    for (size_t k = 0; k < ny; k++) yk[k] = y[k];
    tu_check_close(yk, yref, ny, with_fd ? 1e-5 : 1e-4, what, "fwd");

    vlm_nn_linear_bwd(R, in, out, x, W, y, wcopy, act, scratch, dx, dW,
                      bias ? db : NULL);
    diff(dx, dx0, nx, got);
    tu_check_close(got, dxr, nx, 1e-4, what, "dx");
    diff(dW, dW0, nW, got);
    tu_check_close(got, dWr, nW, 1e-4, what, "dW");
    if (bias) {
        diff(db, db0, out, got);
        tu_check_close(got, dbr, out, 1e-4, what, "db");
    } else {
        CU_ASSERT(memcmp(db, db0, out * sizeof *db) == 0);
    }

    /* dx may be NULL: dW still accumulated the same way */
    memcpy(dW, dW0, nW * sizeof *dW);
    memcpy(wcopy, w, ny * sizeof *w);
    vlm_nn_linear_bwd(R, in, out, x, W, y, wcopy, act, scratch, NULL, dW, NULL);
    diff(dW, dW0, nW, got);
    tu_check_close(got, dWr, nW, 1e-4, what, "dW (dx NULL)");

    free(x); free(W); free(b); free(w); free(wcopy); free(y);
    if (!alias) free(scratch);
    free(dx); free(dx0); free(dW); free(dW0); free(db); free(db0);
    free(xd); free(Wd); free(bd); free(wd); free(yref); free(yk);
    free(dxr); free(dWr); free(dbr); free(fd); free(got);
}

static void run_linear(int R, int in, int out, VlmAct act, bool bias,
                       bool alias, uint64_t *rng)
{
    run_linear_fd(R, in, out, act, bias, alias, true, rng);
}

/* Narrow products (fewer than 32 output columns, 64 rows or more: the
 * forward of a 20-wide head, dW of a layer with 20 outputs, dx of one
 * with 20 inputs) run transposed (gemm.c): against the double reference
 * (its gradients are checked against finite differences above). */
static void test_linear_narrow(void)
{
    uint64_t rng = 31;
    int shapes[][3] = {{128, 400, 20}, {128, 20, 400}, {70, 33, 9}, {64, 31, 31}};
    for (int s = 0; s < 4; s++)
        for (int a = VLM_ACT_IDENTITY; a <= VLM_ACT_ELU; a++)
            run_linear_fd(shapes[s][0], shapes[s][1], shapes[s][2], (VlmAct)a, a != VLM_ACT_TANH,
                          a == VLM_ACT_RELU, false, &rng);
}

static void test_linear(void)
{
    uint64_t rng = 23;
    int shapes[][3] = {{1, 1, 1}, {1, 13, 7}, {5, 3, 9}, {7, 17, 11},
                       {2, 1, 10}, {9, 10, 1}};
    for (int s = 0; s < 6; s++)
        for (int a = VLM_ACT_IDENTITY; a <= VLM_ACT_ELU; a++)
            for (int v = 0; v < 3; v++)
                run_linear(shapes[s][0], shapes[s][1], shapes[s][2], (VlmAct)a,
                           v != 1, v == 2, &rng);
}

/* A layer of realistic size: forward against the double reference. */
static void test_linear_big(void)
{
    uint64_t rng = 29;
    int R = 37, in = 301, out = 129;
    float *x = tu_floats(&rng, (size_t)R * in, -1, 1);
    float *W = tu_floats(&rng, (size_t)in * out, -0.1, 0.1);
    float *b = tu_floats(&rng, out, -0.5, 0.5);
    float *y = tu_floats(&rng, (size_t)R * out, 0, 0);
    double *yk = calloc((size_t)R * out, sizeof(double));
    double *yr = calloc((size_t)R * out, sizeof(double));
    double *xd = tu_to_double(x, (size_t)R * in);
    double *Wd = tu_to_double(W, (size_t)in * out), *bd = tu_to_double(b, out);
    LinCtx c = {R, in, out, VLM_ACT_TANH, xd, Wd, bd, NULL, 0};
    for (int r = 0; r < R; r++)
        for (int j = 0; j < out; j++)
            yr[r * out + j] = tanh(ref_pre(&c, xd, Wd, bd, r, j));
    vlm_nn_linear_fwd(R, in, out, x, W, b, VLM_ACT_TANH, y);
    for (int k = 0; k < R * out; k++) yk[k] = y[k];
    tu_check_close(yk, yr, (size_t)R * out, 1e-4, "linear big", "fwd");
    free(x); free(W); free(b); free(y); free(yk); free(yr); free(xd);
    free(Wd); free(bd);
}

/* ------------------------------------------------------------ matvec */

typedef struct MvCtx {
    int R, m, n;
    const double *A, *x, *w;
    int var; /* 0 A, 1 x */
} MvCtx;

static double mv_loss(const double *v, size_t len, void *ctx)
{
    (void)len;
    MvCtx *c = ctx;
    const double *A = c->var == 0 ? v : c->A, *x = c->var == 1 ? v : c->x;
    double L = 0;
    for (int r = 0; r < c->R; r++)
        for (int i = 0; i < c->m; i++) {
            double s = 0;
            for (int k = 0; k < c->n; k++)
                s += A[i * c->n + k] * x[r * c->n + k];
            L += c->w[r * c->m + i] * s;
        }
    return L;
}

static void test_matvec(void)
{
    uint64_t rng = 31;
    int shapes[][3] = {{1, 1, 1}, {1, 2, 2}, {6, 3, 5}, {11, 9, 17}};
    for (int s = 0; s < 4; s++) {
        int R = shapes[s][0], m = shapes[s][1], n = shapes[s][2];
        char what[64];
        snprintf(what, sizeof what, "matvec R=%d m=%d n=%d", R, m, n);
        size_t nA = (size_t)m * n, nx = (size_t)R * n, ny = (size_t)R * m;
        float *A = tu_floats(&rng, nA, -1, 1), *x = tu_floats(&rng, nx, -1, 1);
        float *w = tu_floats(&rng, ny, -1, 1), *y = tu_floats(&rng, ny, 0, 0);
        float *dA = tu_floats(&rng, nA, -1, 1), *dA0 = tu_copy(dA, nA);
        float *dx = tu_floats(&rng, nx, -1, 1), *dx0 = tu_copy(dx, nx);
        double *Ad = tu_to_double(A, nA), *xd = tu_to_double(x, nx);
        double *wd = tu_to_double(w, ny);
        double *yr = calloc(ny, sizeof(double)), *yk = calloc(ny, sizeof(double));
        double *dAr = calloc(nA, sizeof(double)), *dxr = calloc(nx, sizeof(double));
        double *fd = calloc(nA + nx, sizeof(double));
        double *got = calloc(nA + nx, sizeof(double));
        for (int r = 0; r < R; r++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int k = 0; k < n; k++) {
                    acc += Ad[i * n + k] * xd[r * n + k];
                    dAr[i * n + k] += wd[r * m + i] * xd[r * n + k];
                    dxr[r * n + k] += wd[r * m + i] * Ad[i * n + k];
                }
                yr[r * m + i] = acc;
            }
        MvCtx c = {R, m, n, Ad, xd, wd, 0};
        tu_fd_grad(mv_loss, Ad, nA, &c, fd);
        tu_check_close(dAr, fd, nA, 1e-6, what, "ref dA vs fd");
        c.var = 1;
        tu_fd_grad(mv_loss, xd, nx, &c, fd);
        tu_check_close(dxr, fd, nx, 1e-6, what, "ref dx vs fd");

        vlm_nn_matvec_fwd(R, m, n, A, x, y);
        for (size_t k = 0; k < ny; k++) yk[k] = y[k];
        tu_check_close(yk, yr, ny, 1e-5, what, "fwd");
        vlm_nn_matvec_bwd(R, m, n, A, x, w, dA, dx);
        diff(dA, dA0, nA, got);
        tu_check_close(got, dAr, nA, 1e-4, what, "dA");
        diff(dx, dx0, nx, got);
        tu_check_close(got, dxr, nx, 1e-4, what, "dx");
        /* either gradient may be NULL */
        memcpy(dx, dx0, nx * sizeof *dx);
        vlm_nn_matvec_bwd(R, m, n, A, x, w, NULL, dx);
        diff(dx, dx0, nx, got);
        tu_check_close(got, dxr, nx, 1e-4, what, "dx (dA NULL)");
        free(A); free(x); free(w); free(y); free(dA); free(dA0); free(dx);
        free(dx0); free(Ad); free(xd); free(wd); free(yr); free(yk);
        free(dAr); free(dxr); free(fd); free(got);
    }
}

/* Activations at the extremes stay finite forward and backward. */
static void test_linear_extremes(void)
{
    float x[2] = {1, -1}, W[2] = {500, 500}, y[2], dy[2] = {1, 1}, s[2];
    float dW[1] = {0}, dx[2] = {0, 0};
    for (int a = VLM_ACT_IDENTITY; a <= VLM_ACT_ELU; a++) {
        vlm_nn_linear_fwd(2, 1, 1, x, W, NULL, (VlmAct)a, y);
        dx[0] = dx[1] = dW[0] = 0;
        vlm_nn_linear_bwd(2, 1, 1, x, W, y, dy, (VlmAct)a, s, dx, dW, NULL);
        CU_ASSERT(isfinite(y[0]) && isfinite(y[1]));
        CU_ASSERT(isfinite(dx[0]) && isfinite(dx[1]) && isfinite(dW[0]));
    }
}

/* The same checks on each GEMM backend, on 1 and 2 threads (2: the
 * realistic size is split into slices). */
static void on_backend(VlmGemmBackend b, void (*test)(void))
{
    VlmErr err;
    for (int th = 1; th <= 2; th++) {
        CU_ASSERT_FATAL(vlm_gemm_select(b, VLM_PREC_F32, &err) == 0);
        vlm_parallel_set_threads(th);
        test();
    }
    vlm_parallel_set_threads(1);
    vlm_gemm_select(VLM_GEMM_DEFAULT, VLM_PREC_F32, &err);
}
static void test_linear_onednn(void) { on_backend(VLM_GEMM_ONEDNN, test_linear); }
static void test_linear_openblas(void) { on_backend(VLM_GEMM_OPENBLAS, test_linear); }
static void test_narrow_onednn(void) { on_backend(VLM_GEMM_ONEDNN, test_linear_narrow); }
static void test_narrow_openblas(void) { on_backend(VLM_GEMM_OPENBLAS, test_linear_narrow); }
static void test_linear_big_onednn(void) { on_backend(VLM_GEMM_ONEDNN, test_linear_big); }
static void test_linear_big_openblas(void) { on_backend(VLM_GEMM_OPENBLAS, test_linear_big); }
static void test_extremes_onednn(void) { on_backend(VLM_GEMM_ONEDNN, test_linear_extremes); }
static void test_extremes_openblas(void) { on_backend(VLM_GEMM_OPENBLAS, test_linear_extremes); }
static void test_matvec_onednn(void) { on_backend(VLM_GEMM_ONEDNN, test_matvec); }
static void test_matvec_openblas(void) { on_backend(VLM_GEMM_OPENBLAS, test_matvec); }

void vlm_test_nn(void)
{
    CU_pSuite s = CU_add_suite("nn", NULL, NULL);
    CU_add_test(s, "linear fwd/bwd, every activation, vs double ref + FD (onednn)",
                test_linear_onednn);
    CU_add_test(s, "linear fwd/bwd, every activation, vs double ref + FD (openblas)",
                test_linear_openblas);
    CU_add_test(s, "linear fwd/bwd at narrow outputs vs double ref (onednn)", test_narrow_onednn);
    CU_add_test(s, "linear fwd/bwd at narrow outputs vs double ref (openblas)", test_narrow_openblas);
    CU_add_test(s, "linear fwd at a realistic size (onednn)", test_linear_big_onednn);
    CU_add_test(s, "linear fwd at a realistic size (openblas)", test_linear_big_openblas);
    CU_add_test(s, "linear finite at saturated activations (onednn)", test_extremes_onednn);
    CU_add_test(s, "linear finite at saturated activations (openblas)", test_extremes_openblas);
    CU_add_test(s, "matvec fwd/bwd vs double ref + FD (onednn)", test_matvec_onednn);
    CU_add_test(s, "matvec fwd/bwd vs double ref + FD (openblas)", test_matvec_openblas);
}
