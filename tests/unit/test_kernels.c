/* test_kernels.c — CUnit suite "kernels": tensor.c against double-precision
 * references. Each backward is checked twice: the double reference's
 * analytic gradient against central finite differences of the double
 * forward (<= 1e-6), and the float kernel's gradient against that
 * reference (float32 tolerance). The loss is always sum(w * y), w random. */
#include "vlm.h"
#include "fdcheck.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ unary */

static double ref_fn(VlmFn f, double x)
{
    switch (f) {
    case VLM_FN_EXP: return exp(x);
    case VLM_FN_LOG: return log(x);
    case VLM_FN_LOG1P: return log1p(x);
    case VLM_FN_SQRT: return sqrt(x);
    case VLM_FN_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case VLM_FN_SOFTPLUS: return log1p(exp(x));
    case VLM_FN_TANH: return tanh(x);
    case VLM_FN_RELU: return x > 0 ? x : 0;
    case VLM_FN_ABS: return fabs(x);
    case VLM_FN_ELU: return x > 0 ? x : expm1(x);
    case VLM_FN_NEG: return -x;
    case VLM_FN_IDENTITY: return x;
    case VLM_FN_SQUARE: return x * x;
    }
    return NAN;
}

static double ref_fn_deriv(VlmFn f, double x)
{
    switch (f) {
    case VLM_FN_EXP: return exp(x);
    case VLM_FN_LOG: return 1 / x;
    case VLM_FN_LOG1P: return 1 / (1 + x);
    case VLM_FN_SQRT: return 0.5 / sqrt(x);
    case VLM_FN_SIGMOID: { double s = 1 / (1 + exp(-x)); return s * (1 - s); }
    case VLM_FN_SOFTPLUS: return 1 / (1 + exp(-x));
    case VLM_FN_TANH: { double t = tanh(x); return 1 - t * t; }
    case VLM_FN_RELU: return x > 0;
    case VLM_FN_ABS: return x > 0 ? 1 : -1;
    case VLM_FN_ELU: return x > 0 ? 1 : exp(x);
    case VLM_FN_NEG: return -1;
    case VLM_FN_IDENTITY: return 1;
    case VLM_FN_SQUARE: return 2 * x;
    }
    return NAN;
}

/* Which of x / y the kernel is documented to read (the other is NULL). */
static bool fn_reads_y(VlmFn f)
{
    return f == VLM_FN_EXP || f == VLM_FN_SQRT || f == VLM_FN_SIGMOID ||
           f == VLM_FN_TANH || f == VLM_FN_ELU;
}
static bool fn_reads_x(VlmFn f)
{
    return f == VLM_FN_LOG || f == VLM_FN_LOG1P || f == VLM_FN_SOFTPLUS ||
           f == VLM_FN_RELU || f == VLM_FN_ABS || f == VLM_FN_SQUARE;
}

typedef struct UnaryCtx { VlmFn f; const double *w; } UnaryCtx;

static double unary_loss(const double *x, size_t n, void *ctx)
{
    UnaryCtx *c = ctx;
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += c->w[i] * ref_fn(c->f, x[i]);
    return L;
}

static void test_ew_fn(void)
{
    static const char *names[] = {"exp", "log", "log1p", "sqrt", "sigmoid",
        "softplus", "tanh", "relu", "abs", "elu", "neg", "identity", "square"};
    uint64_t rng = 11;
    for (int f = VLM_FN_EXP; f <= VLM_FN_SQUARE; f++) {
        size_t n = 1 + tu_below(&rng, 37);
        bool positive = f == VLM_FN_LOG || f == VLM_FN_LOG1P || f == VLM_FN_SQRT;
        float *x = tu_floats(&rng, n, positive ? 0.2 : -3, positive ? 2.5 : 3);
        float *w = tu_floats(&rng, n, -1, 1);
        float *y = tu_floats(&rng, n, 0, 0);
        float *dx = tu_floats(&rng, n, -1, 1);
        float *dx0 = tu_copy(dx, n);
        double *xd = tu_to_double(x, n), *wd = tu_to_double(w, n);
        double *yref = calloc(n, sizeof *yref), *gref = calloc(n, sizeof *gref);
        double *gfd = calloc(n, sizeof *gfd), *gk = calloc(n, sizeof *gk);
        double *yk = calloc(n, sizeof *yk);

        vlm_ew_fn_fwd((VlmFn)f, n, x, y);
        for (size_t i = 0; i < n; i++) {
            yref[i] = ref_fn((VlmFn)f, xd[i]);
            yk[i] = y[i];
            gref[i] = wd[i] * ref_fn_deriv((VlmFn)f, xd[i]);
        }
        tu_check_close(yk, yref, n, 2e-6, names[f], "fwd");

        UnaryCtx c = {(VlmFn)f, wd};
        tu_fd_grad(unary_loss, xd, n, &c, gfd);
        tu_check_close(gref, gfd, n, 1e-6, names[f], "ref vs fd");

        /* the kernel gets only the operand vlm.h says it reads */
        vlm_ew_fn_bwd((VlmFn)f, n, fn_reads_x((VlmFn)f) ? x : NULL,
                      fn_reads_y((VlmFn)f) ? y : NULL, w, dx);
        for (size_t i = 0; i < n; i++)
            gk[i] = (double)dx[i] - dx0[i];
        tu_check_close(gk, gref, n, 1e-4, names[f], "bwd");
        free(x); free(w); free(y); free(dx); free(dx0); free(xd); free(wd);
        free(yref); free(gref); free(gfd); free(gk); free(yk);
    }
}

/* Stable forms: no overflow, no NaN at the extremes. */
static void test_ew_fn_extremes(void)
{
    float x[6] = {-1000, -100, -20, 20, 100, 1000}, y[6], dx[6];
    vlm_ew_fn_fwd(VLM_FN_SIGMOID, 6, x, y);
    for (int i = 0; i < 6; i++) CU_ASSERT(isfinite(y[i]) && y[i] >= 0 && y[i] <= 1);
    CU_ASSERT(y[0] == 0 && y[5] == 1);
    memset(dx, 0, sizeof dx);
    vlm_ew_fn_bwd(VLM_FN_SIGMOID, 6, NULL, y, (float[]){1, 1, 1, 1, 1, 1}, dx);
    for (int i = 0; i < 6; i++) CU_ASSERT(isfinite(dx[i]) && dx[i] >= 0);

    vlm_ew_fn_fwd(VLM_FN_SOFTPLUS, 6, x, y);
    for (int i = 0; i < 6; i++) CU_ASSERT(isfinite(y[i]) && y[i] >= 0);
    CU_ASSERT(y[5] == 1000.0f && y[4] == 100.0f);
    CU_ASSERT(fabsf(y[2] - expf(-20)) < 1e-6f * expf(-20));
    memset(dx, 0, sizeof dx);
    vlm_ew_fn_bwd(VLM_FN_SOFTPLUS, 6, x, NULL, (float[]){1, 1, 1, 1, 1, 1}, dx);
    for (int i = 0; i < 6; i++) CU_ASSERT(isfinite(dx[i]));
    CU_ASSERT(dx[0] == 0 && dx[5] == 1);

    vlm_ew_fn_fwd(VLM_FN_TANH, 6, x, y);
    for (int i = 0; i < 6; i++) CU_ASSERT(isfinite(y[i]));
    CU_ASSERT(y[0] == -1.0f && y[5] == 1.0f);
    vlm_ew_fn_fwd(VLM_FN_ELU, 6, x, y);
    CU_ASSERT(y[0] == -1.0f && y[5] == 1000.0f);
}

/* sigmoid, tanh and softplus use their own exp polynomial: a few ulp of
 * the double result over a dense grid crossing every branch point (tanh's
 * 0.625, exp's -87 cutoff), computed in place as the linear layer does. */
static void test_ew_fn_accuracy(void)
{
    enum { N = 24001 };
    VlmFn fns[3] = {VLM_FN_SIGMOID, VLM_FN_TANH, VLM_FN_SOFTPLUS};
    static float x[N];
    for (int f = 0; f < 3; f++) {
        double worst = 0;
        for (int i = 0; i < N; i++) x[i] = -60.0f + 120.0f * i / (N - 1);
        x[0] = 0.625f; x[1] = -0.625f; x[2] = 0.62499994f; x[3] = -43.5f;
        x[4] = -43.6f; x[5] = 1e-7f; x[6] = -1e-30f; x[7] = 0.0f;
        float *xs = tu_copy(x, N);
        vlm_ew_fn_fwd(fns[f], N, x, x);
        for (int i = 0; i < N; i++) {
            double ref = ref_fn(fns[f], xs[i]);
            double e = fabs(x[i] - ref) / (fabs(ref) + 1e-37);
            worst = e > worst ? e : worst;
        }
        if (!(worst < 6e-7))
            fprintf(stderr, "\n  fn %d: worst relative error %.3g\n", fns[f], worst);
        CU_ASSERT(worst < 6e-7);
        free(xs);
    }
    float nan_in = NAN, out;
    for (int f = 0; f < 3; f++) {
        vlm_ew_fn_fwd(fns[f], 1, &nan_in, &out);
        CU_ASSERT(isnan(out));
    }
}

/* ------------------------------------------------------------ binary */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

typedef struct View { ptrdiff_t rs, es; const char *name; } View;

/* full, broadcast row (param), per-row scalar, global scalar, strided. */
static View view_kind(int k, int n)
{
    switch (k) {
    case 0: return (View){n, 1, "full"};
    case 1: return (View){0, 1, "row-bcast"};
    case 2: return (View){1, 0, "row-scalar"};
    case 3: return (View){0, 0, "scalar"};
    default: return (View){2 * n + 3, 2, "strided"};
    }
}

static size_t view_size(View v, int R, int n)
{
    return (size_t)((R - 1) * v.rs + (n - 1) * v.es + 1);
}

static double ref_op(int op, double a, double b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
    }
}

typedef struct BinCtx {
    int op, R, n;
    View va, vb;
    const double *a, *b, *w;
    int which; /* 0: differentiate wrt a, 1: wrt b */
} BinCtx;

static void ref_binary_fwd(const BinCtx *c, const double *a, const double *b,
                           double *out)
{
    for (int r = 0; r < c->R; r++)
        for (int i = 0; i < c->n; i++)
            out[r * c->n + i] = ref_op(c->op, a[r * c->va.rs + i * c->va.es],
                                       b[r * c->vb.rs + i * c->vb.es]);
}

static double bin_loss(const double *v, size_t len, void *ctx)
{
    (void)len;
    BinCtx *c = ctx;
    double L = 0;
    for (int r = 0; r < c->R; r++)
        for (int i = 0; i < c->n; i++) {
            double a = (c->which == 0 ? v : c->a)[r * c->va.rs + i * c->va.es];
            double b = (c->which == 1 ? v : c->b)[r * c->vb.rs + i * c->vb.es];
            L += c->w[r * c->n + i] * ref_op(c->op, a, b);
        }
    return L;
}

/* Analytic reference: da[ia] += w d(op)/da, summing over broadcasts. */
static void ref_binary_bwd(const BinCtx *c, double *da, double *db)
{
    for (int r = 0; r < c->R; r++)
        for (int i = 0; i < c->n; i++) {
            size_t ia = r * c->va.rs + i * c->va.es;
            size_t ib = r * c->vb.rs + i * c->vb.es;
            double a = c->a[ia], b = c->b[ib], w = c->w[r * c->n + i];
            switch (c->op) {
            case OP_ADD: da[ia] += w; db[ib] += w; break;
            case OP_SUB: da[ia] += w; db[ib] -= w; break;
            case OP_MUL: da[ia] += w * b; db[ib] += w * a; break;
            default: da[ia] += w / b; db[ib] -= w * a / (b * b); break;
            }
        }
}

static void run_binary(int op, int R, int n, View va, View vb, uint64_t *rng)
{
    static const char *opn[] = {"add", "sub", "mul", "div"};
    char what[128];
    snprintf(what, sizeof what, "%s R=%d n=%d a=%s b=%s", opn[op], R, n,
             va.name, vb.name);
    size_t sa = view_size(va, R, n), sb = view_size(vb, R, n);
    size_t N = (size_t)R * n;
    float *a = tu_floats(rng, sa, -2, 2);
    float *b = tu_floats(rng, sb, -2, 2);
    if (op == OP_DIV) /* keep b away from 0 */
        for (size_t k = 0; k < sb; k++) b[k] = copysignf(0.5f + fabsf(b[k]), b[k]);
    float *w = tu_floats(rng, N, -1, 1);
    float *out = tu_floats(rng, N, 0, 0);
    float *da = tu_floats(rng, sa, -1, 1), *da0 = tu_copy(da, sa);
    float *db = tu_floats(rng, sb, -1, 1), *db0 = tu_copy(db, sb);
    double *ad = tu_to_double(a, sa), *bd = tu_to_double(b, sb);
    double *wd = tu_to_double(w, N);
    double *oref = calloc(N, sizeof *oref), *ok = calloc(N, sizeof *ok);
    double *daref = calloc(sa, sizeof(double)), *dbref = calloc(sb, sizeof(double));
    double *dafd = calloc(sa, sizeof(double)), *dbfd = calloc(sb, sizeof(double));
    double *dak = calloc(sa, sizeof(double)), *dbk = calloc(sb, sizeof(double));

    BinCtx c = {op, R, n, va, vb, ad, bd, wd, 0};
    VlmIn ia = {a, va.rs, va.es}, ib = {b, vb.rs, vb.es};
    VlmOut oa = {da, va.rs, va.es}, ob = {db, vb.rs, vb.es};
    switch (op) {
    case OP_ADD: vlm_ew_add_fwd(R, n, ia, ib, out); break;
    case OP_SUB: vlm_ew_sub_fwd(R, n, ia, ib, out); break;
    case OP_MUL: vlm_ew_mul_fwd(R, n, ia, ib, out); break;
    default: vlm_ew_div_fwd(R, n, ia, ib, out); break;
    }
    ref_binary_fwd(&c, ad, bd, oref);
    for (size_t k = 0; k < N; k++) ok[k] = out[k];
    tu_check_close(ok, oref, N, 1e-6, what, "fwd");

    ref_binary_bwd(&c, daref, dbref);
    c.which = 0;
    tu_fd_grad(bin_loss, ad, sa, &c, dafd);
    c.which = 1;
    tu_fd_grad(bin_loss, bd, sb, &c, dbfd);
    tu_check_close(daref, dafd, sa, 1e-6, what, "ref da vs fd");
    tu_check_close(dbref, dbfd, sb, 1e-6, what, "ref db vs fd");

    switch (op) {
    case OP_ADD: vlm_ew_add_bwd(R, n, w, oa, ob); break;
    case OP_SUB: vlm_ew_sub_bwd(R, n, w, oa, ob); break;
    case OP_MUL: vlm_ew_mul_bwd(R, n, ia, ib, w, oa, ob); break;
    default: vlm_ew_div_bwd(R, n, ia, ib, w, oa, ob); break;
    }
    for (size_t k = 0; k < sa; k++) dak[k] = (double)da[k] - da0[k];
    for (size_t k = 0; k < sb; k++) dbk[k] = (double)db[k] - db0[k];
    tu_check_close(dak, daref, sa, 2e-4, what, "da");
    tu_check_close(dbk, dbref, sb, 2e-4, what, "db");

    /* a NULL gradient is skipped; the other is still accumulated */
    memcpy(db, db0, sb * sizeof *db);
    VlmOut none = {NULL, 0, 0};
    switch (op) {
    case OP_ADD: vlm_ew_add_bwd(R, n, w, none, ob); break;
    case OP_SUB: vlm_ew_sub_bwd(R, n, w, none, ob); break;
    case OP_MUL: vlm_ew_mul_bwd(R, n, ia, ib, w, none, ob); break;
    default: vlm_ew_div_bwd(R, n, ia, ib, w, none, ob); break;
    }
    for (size_t k = 0; k < sb; k++) dbk[k] = (double)db[k] - db0[k];
    tu_check_close(dbk, dbref, sb, 2e-4, what, "db alone");

    free(a); free(b); free(w); free(out); free(da); free(da0); free(db);
    free(db0); free(ad); free(bd); free(wd); free(oref); free(ok);
    free(daref); free(dbref); free(dafd); free(dbfd); free(dak); free(dbk);
}

/* Every combination of views on both operands, several shapes. */
static void test_ew_binary(void)
{
    uint64_t rng = 7;
    int shapes[][2] = {{1, 1}, {1, 13}, {5, 1}, {7, 19}, {3, 300}, {6, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int op = OP_ADD; op <= OP_DIV; op++)
            for (int ka = 0; ka < 5; ka++)
                for (int kb = 0; kb < 5; kb++) {
                    int R = shapes[s][0], n = shapes[s][1];
                    run_binary(op, R, n, view_kind(ka, n), view_kind(kb, n), &rng);
                }
}

/* x * x with one gradient buffer for both operands: d/dx = 2 x. */
static void test_ew_mul_alias(void)
{
    uint64_t rng = 3;
    int R = 4, n = 11, N = R * n;
    float *x = tu_floats(&rng, N, -2, 2), *dy = tu_floats(&rng, N, -1, 1);
    float *dx = tu_floats(&rng, N, 0, 0), *out = tu_floats(&rng, N, 0, 0);
    VlmIn in = {x, n, 1};
    VlmOut g = {dx, n, 1};
    vlm_ew_mul_fwd(R, n, in, in, out);
    vlm_ew_mul_bwd(R, n, in, in, dy, g, g);
    for (int k = 0; k < N; k++) {
        CU_ASSERT(out[k] == x[k] * x[k]);
        CU_ASSERT(fabsf(dx[k] - 2 * x[k] * dy[k]) <= 1e-6f * (1 + fabsf(dx[k])));
    }
    free(x); free(dy); free(dx); free(out);
}

/* copy materialises a view; its backward reduces over broadcast axes. */
static void test_ew_copy(void)
{
    uint64_t rng = 5;
    int R = 6, n = 9, N = R * n;
    for (int k = 0; k < 5; k++) {
        View v = view_kind(k, n);
        size_t sa = view_size(v, R, n);
        float *a = tu_floats(&rng, sa, -1, 1), *out = tu_floats(&rng, N, 0, 0);
        float *dy = tu_floats(&rng, N, -1, 1);
        float *da = tu_floats(&rng, sa, 0, 0);
        double *want = calloc(sa, sizeof *want), *got = calloc(sa, sizeof *got);
        vlm_ew_copy_fwd(R, n, (VlmIn){a, v.rs, v.es}, out);
        for (int r = 0; r < R; r++)
            for (int i = 0; i < n; i++) {
                CU_ASSERT(out[r * n + i] == a[r * v.rs + i * v.es]);
                want[r * v.rs + i * v.es] += dy[r * n + i];
            }
        vlm_ew_copy_bwd(R, n, dy, (VlmOut){da, v.rs, v.es});
        for (size_t j = 0; j < sa; j++) got[j] = da[j];
        tu_check_close(got, want, sa, 1e-6, v.name, "copy bwd");
        free(a); free(out); free(dy); free(da); free(want); free(got);
    }
}

/* ------------------------------------------------------------ reductions */

static void test_sum_rows(void)
{
    uint64_t rng = 9;
    int shapes[][2] = {{1, 1}, {1, 17}, {9, 3}, {4, 1001}};
    for (int s = 0; s < 4; s++) {
        int R = shapes[s][0], n = shapes[s][1];
        float *x = tu_floats(&rng, (size_t)R * n, -1, 1);
        float *out = tu_floats(&rng, R, 0, 0), *dout = tu_floats(&rng, R, -1, 1);
        float *dx = tu_floats(&rng, (size_t)R * n, -1, 1);
        float *dx0 = tu_copy(dx, (size_t)R * n);
        vlm_sum_rows_fwd(R, n, x, out);
        vlm_sum_rows_bwd(R, n, dout, dx);
        for (int r = 0; r < R; r++) {
            double s2 = 0;
            for (int i = 0; i < n; i++) {
                s2 += x[r * n + i];
                CU_ASSERT(fabs((double)dx[r * n + i] - dx0[r * n + i] - dout[r]) < 1e-6);
            }
            CU_ASSERT(fabs(out[r] - s2) <= 1e-6 * (1 + fabs(s2)));
        }
        free(x); free(out); free(dout); free(dx); free(dx0);
    }
}

static double lse_loss(const double *x, size_t K, void *ctx)
{
    (void)ctx;
    double out;
    vlm_logsumexp(1, (int)K, x, &out, NULL);
    return out;
}

static void test_logsumexp(void)
{
    /* moderate values: against the naive formula; softmax = gradient */
    uint64_t rng = 13;
    for (int K = 1; K <= 9; K += 4) {
        double x[9], sm[9], fd[9], out;
        for (int k = 0; k < K; k++) x[k] = tu_uniform(&rng) * 6 - 3;
        vlm_logsumexp(1, K, x, &out, sm);
        double s = 0, ssm = 0;
        for (int k = 0; k < K; k++) s += exp(x[k]), ssm += sm[k];
        CU_ASSERT(fabs(out - log(s)) < 1e-14 * (1 + fabs(out)));
        CU_ASSERT(fabs(ssm - 1) < 1e-14);
        tu_fd_grad(lse_loss, x, K, NULL, fd);
        tu_check_close(sm, fd, K, 1e-6, "logsumexp", "softmax vs fd");
    }
    /* huge values: no overflow; rows with -inf; +inf; several groups */
    double x[5][3] = {
        {1000, 1000, 999},
        {-1e300, -1e300, -1e300},
        {-INFINITY, -INFINITY, -INFINITY},
        {-INFINITY, 2.0, -INFINITY},
        {INFINITY, 1.0, INFINITY},
    };
    double out[5], sm[5][3];
    vlm_logsumexp(5, 3, &x[0][0], out, &sm[0][0]);
    double e = 1000 + log(2 + exp(-1));
    CU_ASSERT(fabs(out[0] - e) < 1e-12 * e);
    CU_ASSERT(fabs(sm[0][2] - exp(-1) / (2 + exp(-1))) < 1e-14);
    CU_ASSERT(fabs(out[1] - (-1e300 + log(3.0))) <= 1e-12 * 1e300);
    CU_ASSERT(isinf(out[2]) && out[2] < 0);
    for (int k = 0; k < 3; k++) CU_ASSERT(sm[2][k] == 0);
    CU_ASSERT(out[3] == 2.0);
    CU_ASSERT(sm[3][0] == 0 && sm[3][1] == 1 && sm[3][2] == 0);
    CU_ASSERT(isinf(out[4]) && out[4] > 0);
    CU_ASSERT(sm[4][0] == 0.5 && sm[4][1] == 0 && sm[4][2] == 0.5);
    for (int g = 0; g < 5; g++)
        for (int k = 0; k < 3; k++) CU_ASSERT(!isnan(sm[g][k]));
    /* softmax may be NULL */
    double one;
    vlm_logsumexp(1, 3, x[3], &one, NULL);
    CU_ASSERT(one == 2.0);
}

/* ------------------------------------------------------------ gather */

static void test_gather(void)
{
    uint64_t rng = 17;
    int K = 5, n = 7, R = 9;
    float *table = tu_floats(&rng, (size_t)K * n, -1, 1);
    float idx[9] = {0, 4, 2, 2, 1, 4, 4, 3, 0};
    float *out = tu_floats(&rng, (size_t)R * n, 0, 0);
    float *dout = tu_floats(&rng, (size_t)R * n, -1, 1);
    float *dt = tu_floats(&rng, (size_t)K * n, -1, 1);
    float *dt0 = tu_copy(dt, (size_t)K * n);
    vlm_gather_fwd(R, n, table, idx, out);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++)
            CU_ASSERT(out[r * n + i] == table[(int)idx[r] * n + i]);
    vlm_gather_bwd(R, n, idx, dout, dt);
    for (int k = 0; k < K; k++)
        for (int i = 0; i < n; i++) {
            double want = dt0[k * n + i];
            for (int r = 0; r < R; r++)
                if ((int)idx[r] == k) want += dout[r * n + i];
            CU_ASSERT(fabs(dt[k * n + i] - want) < 1e-6);
        }
    free(table); free(out); free(dout); free(dt); free(dt0);
}

/* ------------------------------------------------------------ softmax */

typedef struct SmCtx { int rows, K; const double *w; } SmCtx;

/* L = sum w * softmax(x), in double */
static double softmax_loss(const double *x, size_t n, void *vctx)
{
    const SmCtx *c = vctx;
    double L = 0;
    (void)n;
    for (int r = 0; r < c->rows; r++) {
        const double *xr = x + (size_t)r * c->K;
        double mx = -INFINITY, s = 0;
        for (int k = 0; k < c->K; k++)
            mx = fmax(mx, xr[k]);
        for (int k = 0; k < c->K; k++)
            s += exp(xr[k] - mx);
        for (int k = 0; k < c->K; k++)
            L += c->w[(size_t)r * c->K + k] * exp(xr[k] - mx) / s;
    }
    return L;
}

static void test_softmax(void)
{
    uint64_t rng = 23;
    int shapes[3][2] = {{1, 1}, {3, 7}, {5, 10}};
    for (int t = 0; t < 3; t++) {
        int rows = shapes[t][0], K = shapes[t][1];
        size_t n = (size_t)rows * K;
        float *x = tu_floats(&rng, n, -3, 3), *y = tu_floats(&rng, n, 0, 0);
        float *w = tu_floats(&rng, n, -1, 1), *dx = tu_floats(&rng, n, 0, 0);
        vlm_softmax_fwd(rows, K, x, y);
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += y[r * K + k];
            CU_ASSERT(fabs(s - 1) < 1e-6);
        }
        vlm_softmax_bwd(rows, K, y, w, dx);
        double *xd = tu_to_double(x, n), *wd = tu_to_double(w, n), *fd = vlm_xmalloc(n * sizeof *fd);
        SmCtx c = {rows, K, wd};
        tu_fd_grad(softmax_loss, xd, n, &c, fd);
        double *got = tu_to_double(dx, n);
        CU_ASSERT(tu_rel_err(got, fd, n) < 1e-4);
        free(x); free(y); free(w); free(dx); free(xd); free(wd); free(fd); free(got);
    }
    float big[3] = {1000, -1000, 999}, yb[3];
    vlm_softmax_fwd(1, 3, big, yb);
    CU_ASSERT(isfinite(yb[0]) && fabs(yb[0] + yb[1] + yb[2] - 1) < 1e-6);
}

/* ------------------------------------------------------------ pow */

typedef struct PowCtx { double p; const double *w; } PowCtx;

static double pow_loss(const double *x, size_t n, void *vctx)
{
    const PowCtx *c = vctx;
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += c->w[i] * pow(x[i], c->p);
    return L;
}

/* x^p for integer p over negative and positive x, non-integer p over
 * positive x: forward against pow in double, the double gradient
 * p x^(p-1) against FD, the float kernel's gradient against it. */
static void test_ew_pow(void)
{
    static const float ps[] = {2, 3, 1, 0, -1, -2, 0.5f, 1.5f, -0.5f, 2.5f};
    uint64_t rng = 29;
    for (size_t t = 0; t < sizeof ps / sizeof ps[0]; t++) {
        float p = ps[t];
        bool integer = p == floorf(p);
        size_t n = 1 + tu_below(&rng, 40);
        float *x = tu_floats(&rng, n, integer ? -2.5 : 0.2, 2.5);
        for (size_t i = 0; i < n; i++) /* away from 0, where x^-2 blows up */
            if (fabsf(x[i]) < 0.2f) x[i] = copysignf(0.2f + fabsf(x[i]), x[i]);
        float *w = tu_floats(&rng, n, -1, 1), *y = tu_floats(&rng, n, 0, 0);
        float *dx = tu_floats(&rng, n, -1, 1), *dx0 = tu_copy(dx, n);
        double *xd = tu_to_double(x, n), *wd = tu_to_double(w, n);
        double *yk = calloc(n, sizeof *yk), *yref = calloc(n, sizeof *yref);
        double *gref = calloc(n, sizeof *gref), *gfd = calloc(n, sizeof *gfd);
        double *gk = calloc(n, sizeof *gk);
        char what[40];
        snprintf(what, sizeof what, "pow p=%g", p);

        vlm_ew_pow_fwd(n, p, x, y);
        for (size_t i = 0; i < n; i++) {
            yk[i] = y[i];
            yref[i] = pow(xd[i], p);
            gref[i] = p == 0 ? 0 : wd[i] * p * pow(xd[i], p - 1);
        }
        tu_check_close(yk, yref, n, 2e-6, what, "fwd");
        PowCtx c = {p, wd};
        tu_fd_grad(pow_loss, xd, n, &c, gfd);
        tu_check_close(gref, gfd, n, 1e-6, what, "ref vs fd");
        vlm_ew_pow_bwd(n, p, x, w, dx);
        for (size_t i = 0; i < n; i++)
            gk[i] = (double)dx[i] - dx0[i];
        tu_check_close(gk, gref, n, 1e-4, what, "bwd");
        free(x); free(w); free(y); free(dx); free(dx0); free(xd); free(wd);
        free(yk); free(yref); free(gref); free(gfd); free(gk);
    }
    /* the documented edges: odd powers of negatives, NaN for a negative
     * base with a non-integer power, x^0 = 1 with no gradient even at 0 */
    float x[3] = {-2, 0, 4}, y[3], dx[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    vlm_ew_pow_fwd(3, 3, x, y);
    CU_ASSERT(y[0] == -8 && y[1] == 0 && y[2] == 64);
    vlm_ew_pow_bwd(3, 3, x, one, dx);
    CU_ASSERT(dx[0] == 12 && dx[1] == 0 && dx[2] == 48);
    vlm_ew_pow_fwd(3, 0.5f, x, y);
    CU_ASSERT(isnan(y[0]) && y[1] == 0 && y[2] == 2);
    vlm_ew_pow_fwd(3, 0, x, y);
    CU_ASSERT(y[0] == 1 && y[1] == 1 && y[2] == 1);
    memset(dx, 0, sizeof dx);
    vlm_ew_pow_bwd(3, 0, x, one, dx);
    CU_ASSERT(dx[0] == 0 && dx[1] == 0 && dx[2] == 0);
    vlm_ew_pow_fwd(3, -1, x, y);
    CU_ASSERT(y[0] == -0.5f && isinf(y[1]) && y[2] == 0.25f);
}

/* ------------------------------------------------------------ one-hot */

static void test_one_hot(void)
{
    enum { N = 9, K = 4 };
    float idx[N] = {0, 3, 1, 2, 4, -1, 1.5f, NAN, 3};
    float out[N * K];
    memset(out, 0x7f, sizeof out); /* every entry is written */
    vlm_one_hot_fwd(N, K, idx, out);
    for (int i = 0; i < N; i++) {
        bool valid = idx[i] >= 0 && idx[i] < K && idx[i] == floorf(idx[i]);
        for (int k = 0; k < K; k++)
            CU_ASSERT(out[i * K + k] == (valid && (int)idx[i] == k ? 1.0f : 0.0f));
    }
    /* K = 1: every valid index is 0 */
    float one[2] = {0, 1}, o1[2];
    vlm_one_hot_fwd(2, 1, one, o1);
    CU_ASSERT(o1[0] == 1 && o1[1] == 0);
}

/* ------------------------------------------------------------ concat */

typedef struct CatCtx {
    int R, G, ka, kb;
    View va, vb;
    const double *a, *b, *w;
    int which; /* 0: wrt a, 1: wrt b */
} CatCtx;

static double cat_at(const double *p, View v, int r, int g, int k, int i)
{
    return p[r * v.rs + (g * k + i) * v.es];
}

static double cat_loss(const double *v, size_t len, void *ctx)
{
    (void)len;
    const CatCtx *c = ctx;
    const double *a = c->which == 0 ? v : c->a, *b = c->which == 1 ? v : c->b;
    int k = c->ka + c->kb;
    double L = 0;
    for (int r = 0; r < c->R; r++)
        for (int g = 0; g < c->G; g++)
            for (int i = 0; i < k; i++) {
                double x = i < c->ka ? cat_at(a, c->va, r, g, c->ka, i)
                                     : cat_at(b, c->vb, r, g, c->kb, i - c->ka);
                L += c->w[((size_t)r * c->G + g) * k + i] * x;
            }
    return L;
}

/* View kinds for an operand of k values per group: full, global
 * (row-broadcast), strided, and (k == 1, G == 1) a per-row scalar. */
static View cat_view(int kind, int G, int k)
{
    int n = G * k;
    switch (kind) {
    case 0: return (View){n, 1, "full"};
    case 1: return (View){0, 1, "global"};
    case 2: return (View){2 * n + 1, 2, "strided"};
    default: return (View){1, 0, "row-scalar"};
    }
}

static void run_concat(int R, int G, int ka, int kb, int kinda, int kindb, uint64_t *rng)
{
    View va = cat_view(kinda, G, ka), vb = cat_view(kindb, G, kb);
    char what[128];
    snprintf(what, sizeof what, "concat R=%d G=%d ka=%d (%s) kb=%d (%s)", R, G, ka,
             va.name, kb, vb.name);
    size_t sa = view_size(va, R, G * ka), sb = view_size(vb, R, G * kb);
    int k = ka + kb;
    size_t N = (size_t)R * G * k;
    float *a = tu_floats(rng, sa, -2, 2), *b = tu_floats(rng, sb, -2, 2);
    float *w = tu_floats(rng, N, -1, 1), *out = tu_floats(rng, N, 0, 0);
    float *da = tu_floats(rng, sa, -1, 1), *da0 = tu_copy(da, sa);
    float *db = tu_floats(rng, sb, -1, 1), *db0 = tu_copy(db, sb);
    double *ad = tu_to_double(a, sa), *bd = tu_to_double(b, sb), *wd = tu_to_double(w, N);
    double *dafd = calloc(sa, sizeof(double)), *dbfd = calloc(sb, sizeof(double));
    double *dak = calloc(sa, sizeof(double)), *dbk = calloc(sb, sizeof(double));

    vlm_concat_fwd(R, G, ka, (VlmIn){a, va.rs, va.es}, kb, (VlmIn){b, vb.rs, vb.es}, out);
    bool same = true;
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++)
            for (int i = 0; i < k; i++) {
                double want = i < ka ? cat_at(ad, va, r, g, ka, i) : cat_at(bd, vb, r, g, kb, i - ka);
                same &= out[((size_t)r * G + g) * k + i] == (float)want;
            }
    if (!same)
        fprintf(stderr, "\n  %s: fwd differs\n", what);
    CU_ASSERT(same);

    /* the loss is linear, so FD is exact up to rounding: it is the reference */
    CatCtx c = {R, G, ka, kb, va, vb, ad, bd, wd, 0};
    tu_fd_grad(cat_loss, ad, sa, &c, dafd);
    c.which = 1;
    tu_fd_grad(cat_loss, bd, sb, &c, dbfd);
    vlm_concat_bwd(R, G, ka, kb, w, (VlmOut){da, va.rs, va.es}, (VlmOut){db, vb.rs, vb.es});
    for (size_t i = 0; i < sa; i++) dak[i] = (double)da[i] - da0[i];
    for (size_t i = 0; i < sb; i++) dbk[i] = (double)db[i] - db0[i];
    tu_check_close(dak, dafd, sa, 1e-5, what, "da");
    tu_check_close(dbk, dbfd, sb, 1e-5, what, "db");

    /* a NULL gradient is skipped; the other is still accumulated */
    memcpy(db, db0, sb * sizeof *db);
    vlm_concat_bwd(R, G, ka, kb, w, (VlmOut){NULL, 0, 0}, (VlmOut){db, vb.rs, vb.es});
    for (size_t i = 0; i < sb; i++) dbk[i] = (double)db[i] - db0[i];
    tu_check_close(dbk, dbfd, sb, 1e-5, what, "db alone");

    free(a); free(b); free(w); free(out); free(da); free(da0); free(db); free(db0);
    free(ad); free(bd); free(wd); free(dafd); free(dbfd); free(dak); free(dbk);
}

/* Every pair of operand views (batched, global, strided; per-row scalars
 * where the operand is one value), one group and several. */
static void test_concat(void)
{
    uint64_t rng = 31;
    int shapes[][4] = {{1, 1, 1, 1}, {5, 1, 3, 1}, {4, 1, 1, 6}, {6, 3, 2, 5}, {3, 2, 7, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ka = 0; ka < 4; ka++)
            for (int kb = 0; kb < 4; kb++) {
                int R = shapes[s][0], G = shapes[s][1], a = shapes[s][2], b = shapes[s][3];
                if ((ka == 3 && (a != 1 || G != 1)) || (kb == 3 && (b != 1 || G != 1)))
                    continue;
                run_concat(R, G, a, b, ka, kb, &rng);
            }
}

/* ------------------------------------------------------------ GEMM */

static void test_gemm(void)
{
    uint64_t rng = 19;
    int shapes[][3] = {{1, 1, 1}, {1, 9, 5}, {7, 1, 13}, {13, 11, 17},
                       {33, 29, 65}};
    for (int s = 0; s < 5; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                float *A = tu_floats(&rng, (size_t)M * K, -1, 1);
                float *B = tu_floats(&rng, (size_t)K * N, -1, 1);
                float *C = tu_floats(&rng, (size_t)M * N, -1, 1);
                double *want = calloc((size_t)M * N, sizeof *want);
                double *got = calloc((size_t)M * N, sizeof *got);
                float alpha = 0.75f, beta = -0.5f;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double acc = 0;
                        for (int k = 0; k < K; k++) {
                            double a = ta ? A[k * M + i] : A[i * K + k];
                            double b = tb ? B[j * K + k] : B[k * N + j];
                            acc += a * b;
                        }
                        want[i * N + j] = alpha * acc + beta * C[i * N + j];
                    }
                vlm_gemm(ta, tb, M, N, K, alpha, A, B, beta, C);
                for (int k = 0; k < M * N; k++) got[k] = C[k];
                char what[64];
                snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d", M, N,
                         K, ta, tb);
                tu_check_close(got, want, (size_t)M * N, 1e-5, what, "C");
                free(A); free(B); free(C); free(want); free(got);
            }
    /* beta = 0 ignores what C held (even NaN); K = 0 scales C by beta */
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1};
    float C[4] = {NAN, NAN, NAN, NAN};
    vlm_gemm(false, false, 2, 2, 3, 1.0f, A, B, 0.0f, C);
    CU_ASSERT(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
    vlm_gemm(false, false, 2, 2, 0, 1.0f, A, B, 2.0f, C);
    CU_ASSERT(C[0] == 8 && C[3] == 22);
}

void vlm_test_kernels(void)
{
    CU_pSuite s = CU_add_suite("kernels", NULL, NULL);
    CU_add_test(s, "ew_fn fwd/bwd vs double ref + FD", test_ew_fn);
    CU_add_test(s, "ew_fn stable at extremes", test_ew_fn_extremes);
    CU_add_test(s, "ew_fn sigmoid/tanh/softplus accuracy grid", test_ew_fn_accuracy);
    CU_add_test(s, "ew binary ops, every broadcast combination", test_ew_binary);
    CU_add_test(s, "ew mul x*x with aliased gradients", test_ew_mul_alias);
    CU_add_test(s, "ew copy fwd/bwd over views", test_ew_copy);
    CU_add_test(s, "sum_rows fwd/bwd", test_sum_rows);
    CU_add_test(s, "logsumexp: values, softmax, -inf/+inf/huge", test_logsumexp);
    CU_add_test(s, "gather fwd/bwd with repeated indices", test_gather);
    CU_add_test(s, "gemm vs naive, all transposes", test_gemm);
    CU_add_test(s, "softmax fwd/bwd vs FD, huge logits", test_softmax);
    CU_add_test(s, "pow fwd/bwd vs double ref + FD, edges", test_ew_pow);
    CU_add_test(s, "one_hot values, out-of-range and NaN rows", test_one_hot);
    CU_add_test(s, "concat fwd/bwd vs FD, batched/global/strided/scalar views", test_concat);
}
