/* test_gemm.c — CUnit suite "gemm": the GEMM boundary on both backends
 * against a double-precision reference (every transpose, alpha and beta,
 * leading dimensions wider than the matrix, 1 and 2 threads); the two
 * backends agreeing on a linear layer at the VAE's size; bf16 products
 * within the bf16 rounding bound of their inner dimension (skipped, with
 * the reason printed, on a CPU without bf16 units); the bf16 conversion;
 * the errors of an impossible selection; the OpenBLAS core remedy. */
#include "vlm.h"
#include "fdcheck.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void use(VlmGemmBackend b, VlmPrecision p)
{
    VlmErr err;
    CU_ASSERT_FATAL(vlm_gemm_select(b, p, &err) == 0);
}

/* C = alpha op(A) op(B) + beta C in double, with leading dimensions */
static void ref_gemm(bool ta, bool tb, int M, int N, int K, double alpha, const float *A,
                     int lda, const float *B, int ldb, double beta, const float *C0, int ldc,
                     double *C)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                     (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * N + j] = alpha * s + beta * C0[i * ldc + j];
        }
}

/* vlm_sgemm on the selected backend against the reference: every
 * transpose, alpha 1 and 0.5, beta 0, 1 and -0.5, leading dimensions 3
 * wider than the matrix, on 1 and 2 threads (the 2-thread shapes are big
 * enough to be split by rows or by columns). */
static void check_backend(VlmGemmBackend be)
{
    use(be, VLM_PREC_F32);
    const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {130, 77, 65}, {3, 517, 129}, {257, 9, 301}};
    uint64_t rng = 41;
    for (int th = 1; th <= 2; th++) {
        vlm_parallel_set_threads(th);
        for (int sh = 0; sh < 5; sh++)
            for (int t = 0; t < 4; t++)
                for (int ab = 0; ab < 3; ab++) {
                    int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
                    bool ta = t & 1, tb = t & 2;
                    float alpha = ab == 1 ? 0.5f : 1.0f;
                    float beta = ab == 0 ? 0.0f : ab == 1 ? 1.0f : -0.5f;
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 3, ldc = N + 3;
                    float *A = tu_floats(&rng, (size_t)(ta ? K : M) * lda, -1, 1);
                    float *B = tu_floats(&rng, (size_t)(tb ? N : K) * ldb, -1, 1);
                    float *C = tu_floats(&rng, (size_t)M * ldc, -1, 1);
                    float *C0 = tu_copy(C, (size_t)M * ldc);
                    double *want = calloc((size_t)M * N, sizeof *want);
                    double *got = calloc((size_t)M * N, sizeof *got);
                    ref_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc, want);
                    vlm_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++)
                            got[i * N + j] = C[i * ldc + j];
                    char what[128];
                    snprintf(what, sizeof what, "%s %d threads %dx%dx%d ta=%d tb=%d alpha=%g beta=%g",
                             vlm_gemm_backend_name(be), th, M, N, K, ta, tb, alpha, beta);
                    tu_check_close(got, want, (size_t)M * N, 1e-4, what, "C");
                    /* the padding between rows is never written */
                    bool pad_kept = true;
                    for (int i = 0; i < M; i++)
                        for (int j = N; j < ldc; j++)
                            pad_kept = pad_kept && C[i * ldc + j] == C0[i * ldc + j];
                    CU_ASSERT(pad_kept);
                    free(A); free(B); free(C); free(C0); free(want); free(got);
                }
    }
    vlm_parallel_set_threads(1);
    use(VLM_GEMM_DEFAULT, VLM_PREC_F32);
}

static void test_onednn_vs_ref(void) { check_backend(VLM_GEMM_ONEDNN); }
static void test_openblas_vs_ref(void) { check_backend(VLM_GEMM_OPENBLAS); }

/* The VAE's first layer (128 x 784 -> 400, relu, bias), forward and
 * backward, on both backends and 1 and 2 threads: the results agree to
 * 1e-4 relative. */
static void test_backends_agree(void)
{
    int R = 128, in = 784, out = 400;
    uint64_t rng = 43;
    size_t nx = (size_t)R * in, nW = (size_t)in * out, ny = (size_t)R * out;
    float *x = tu_floats(&rng, nx, -1, 1), *W = tu_floats(&rng, nW, -0.05, 0.05);
    float *b = tu_floats(&rng, out, -0.5, 0.5), *dy = tu_floats(&rng, ny, -1, 1);
    float *res[4][4];   /* [config][y, dx, dW, db] */
    for (int c = 0; c < 4; c++) {
        use(c & 1 ? VLM_GEMM_ONEDNN : VLM_GEMM_OPENBLAS, VLM_PREC_F32);
        vlm_parallel_set_threads(c & 2 ? 2 : 1);
        float *y = tu_floats(&rng, ny, 0, 0), *s = tu_floats(&rng, ny, 0, 0);
        float *dx = tu_floats(&rng, nx, 0, 0), *dW = tu_floats(&rng, nW, 0, 0);
        float *db = tu_floats(&rng, out, 0, 0);
        vlm_nn_linear_fwd(R, in, out, x, W, b, VLM_ACT_RELU, y);
        vlm_nn_linear_bwd(R, in, out, x, W, y, dy, VLM_ACT_RELU, s, dx, dW, db);
        res[c][0] = y; res[c][1] = dx; res[c][2] = dW; res[c][3] = db;
        free(s);
    }
    size_t n[4] = {ny, nx, nW, (size_t)out};
    static const char *what[4] = {"y", "dx", "dW", "db"};
    for (int c = 1; c < 4; c++)
        for (int k = 0; k < 4; k++) {
            double *g = tu_to_double(res[c][k], n[k]), *w = tu_to_double(res[0][k], n[k]);
            char cfg[64];
            snprintf(cfg, sizeof cfg, "%s %d threads vs openblas 1 thread",
                     c & 1 ? "onednn" : "openblas", c & 2 ? 2 : 1);
            tu_check_close(g, w, n[k], 1e-4, cfg, what[k]);
            free(g); free(w);
        }
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 4; k++) free(res[c][k]);
    free(x); free(W); free(b); free(dy);
    vlm_parallel_set_threads(1);
    use(VLM_GEMM_DEFAULT, VLM_PREC_F32);
}

/* ------------------------------------------------------------ bf16 */

static bool bf16_available(const char *test)
{
    VlmErr err;
    if (vlm_gemm_select(VLM_GEMM_ONEDNN, VLM_PREC_BF16, &err) == 0)
        return true;
    printf("\n  SKIP %s: %s\n", test, err.msg);
    return false;
}

/* The error of a product of bf16-rounded inputs accumulated in fp32:
 * each input is rounded with relative error at most u = 2^-8, so entry
 * (i,j) is off by sum_k x_k w_k (d_k + e_k) plus fp32 accumulation. The
 * worst case (2u sum |x_k w_k|) grows with K and would let a wrong result
 * pass; the rounding errors are independent with zero mean and variance
 * below u^2, so the bound used is 6 standard deviations,
 * 6 sqrt(2) u sqrt(sum (x_k w_k)^2), which grows as sqrt(K), plus the
 * fp32 worst case K 2^-24 sum |x_k w_k| and 1e-6 of the entry. */
typedef struct Bound {
    double *sq, *abs;   /* per entry: sum (x_k w_k)^2, sum |x_k w_k| */
} Bound;

static double bf16_tol(double sq, double ab, int K, double v)
{
    return 6 * sqrt(2.0) * 0x1p-8 * sqrt(sq) + K * 0x1p-24 * ab + 1e-6 * (1 + fabs(v));
}

/* C (M,N) (+)= op(A) op(B) in bf16 through the layer kernels' products,
 * checked entry by entry; returns the largest error over its bound. */
static double bf16_check(bool ta, bool tb, int M, int N, int K, const float *A, const float *B,
                         const float *got, const float *C0, const float *bias, VlmAct act)
{
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sq = 0, ab = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)(ta ? A[k * M + i] : A[i * K + k]) *
                           (tb ? B[j * K + k] : B[k * N + j]);
                s += p; sq += p * p; ab += fabs(p);
            }
            if (bias)
                s += bias[j];
            if (act == VLM_ACT_RELU)
                s = s > 0 ? s : 0;   /* 1-Lipschitz: the bound carries over */
            if (C0)
                s += C0[i * N + j];
            double e = fabs(got[i * N + j] - s) / bf16_tol(sq, ab, K, s);
            worst = fmax(worst, e);
        }
    return worst;
}

/* The linear layer's three products in bf16 (forward with bias and relu,
 * dW = x^T dy and dx = dy W^T accumulated onto nonzero gradients) within
 * the bound, at the VAE's sizes and a small one, on 1 and 2 threads; and
 * in fp32 on the same data to 1e-4, so the bound is not what passes. */
static void test_bf16_linear(void)
{
    if (!bf16_available("bf16 linear kernels"))
        return;
    const int shapes[][3] = {{128, 784, 400}, {128, 400, 784}, {128, 20, 400}, {7, 13, 5}};
    uint64_t rng = 47;
    for (int th = 1; th <= 2; th++)
        for (int sh = 0; sh < 4; sh++) {
            vlm_parallel_set_threads(th);
            int R = shapes[sh][0], in = shapes[sh][1], out = shapes[sh][2];
            size_t nx = (size_t)R * in, nW = (size_t)in * out, ny = (size_t)R * out;
            float *x = tu_floats(&rng, nx, -1, 1), *W = tu_floats(&rng, nW, -0.1, 0.1);
            float *b = tu_floats(&rng, out, -0.5, 0.5), *dy = tu_floats(&rng, ny, -1, 1);
            float *y = tu_floats(&rng, ny, 0, 0), *s = tu_floats(&rng, ny, 0, 0);
            float *dx = tu_floats(&rng, nx, -1, 1), *dx0 = tu_copy(dx, nx);
            float *dW = tu_floats(&rng, nW, -1, 1), *dW0 = tu_copy(dW, nW);
            use(VLM_GEMM_ONEDNN, VLM_PREC_BF16);
            vlm_nn_linear_fwd(R, in, out, x, W, b, VLM_ACT_RELU, y);
            /* identity backward: dpre = dy exactly, so the products alone
             * are judged */
            vlm_nn_linear_bwd(R, in, out, x, W, y, dy, VLM_ACT_IDENTITY, s, dx, dW, NULL);
            char what[96];
            snprintf(what, sizeof what, "bf16 %d threads R=%d in=%d out=%d", th, R, in, out);
            double ef = bf16_check(false, false, R, out, in, x, W, y, NULL, b, VLM_ACT_RELU);
            double ew = bf16_check(true, false, in, out, R, x, dy, dW, dW0, NULL, VLM_ACT_IDENTITY);
            double ex = bf16_check(false, true, R, in, out, dy, W, dx, dx0, NULL, VLM_ACT_IDENTITY);
            if (getenv("VLM_TEST_VERBOSE") || ef > 1 || ew > 1 || ex > 1)
                printf("\n  %s: error / bound: y %.3g, dW %.3g, dx %.3g\n", what, ef, ew, ex);
            CU_ASSERT(ef <= 1);
            CU_ASSERT(ew <= 1);
            CU_ASSERT(ex <= 1);
            /* bf16 really ran: the forward differs from fp32's somewhere */
            float *y32 = tu_floats(&rng, ny, 0, 0);
            use(VLM_GEMM_ONEDNN, VLM_PREC_F32);
            vlm_nn_linear_fwd(R, in, out, x, W, b, VLM_ACT_RELU, y32);
            CU_ASSERT(memcmp(y, y32, ny * sizeof *y) != 0);
            free(x); free(W); free(b); free(dy); free(y); free(s); free(dx); free(dx0);
            free(dW); free(dW0); free(y32);
        }
    vlm_parallel_set_threads(1);
    use(VLM_GEMM_DEFAULT, VLM_PREC_F32);
}

/* Every activation fused into a bf16 forward stays within the bound of
 * its 1-Lipschitz image: checked through tanh, sigmoid, softplus and elu
 * against the relu-free reference via the derivative bound |act'| <= 1. */
static void test_bf16_activations(void)
{
    if (!bf16_available("bf16 activations"))
        return;
    int R = 16, in = 300, out = 24;
    uint64_t rng = 53;
    float *x = tu_floats(&rng, (size_t)R * in, -1, 1), *W = tu_floats(&rng, (size_t)in * out, -0.2, 0.2);
    float *b = tu_floats(&rng, out, -0.5, 0.5), *y = tu_floats(&rng, (size_t)R * out, 0, 0);
    for (int a = VLM_ACT_IDENTITY; a <= VLM_ACT_ELU; a++) {
        use(VLM_GEMM_ONEDNN, VLM_PREC_BF16);
        vlm_nn_linear_fwd(R, in, out, x, W, b, (VlmAct)a, y);
        double worst = 0;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < out; j++) {
                double s = b[j], sq = 0, ab = 0;
                for (int k = 0; k < in; k++) {
                    double p = (double)x[i * in + k] * W[k * out + j];
                    s += p; sq += p * p; ab += fabs(p);
                }
                double v = a == VLM_ACT_RELU ? (s > 0 ? s : 0)
                         : a == VLM_ACT_TANH ? tanh(s)
                         : a == VLM_ACT_SIGMOID ? 1 / (1 + exp(-s))
                         : a == VLM_ACT_SOFTPLUS ? log1p(exp(s))
                         : a == VLM_ACT_ELU ? (s > 0 ? s : expm1(s)) : s;
                worst = fmax(worst, fabs(y[i * out + j] - v) / bf16_tol(sq, ab, in, v));
            }
        if (worst > 1)
            printf("\n  bf16 activation %d: error / bound %.3g\n", a, worst);
        CU_ASSERT(worst <= 1);
    }
    free(x); free(W); free(b); free(y);
    use(VLM_GEMM_DEFAULT, VLM_PREC_F32);
}

/* Round to nearest even; NaN stays NaN; back is exact. */
static void test_bf16_convert(void)
{
    float in[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 0x1p-7f + 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f,
                  -2.5f, INFINITY, NAN, 3.0e38f, 0.0f};
    float want[] = {1.0f, 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -2.5f, INFINITY, NAN, 0, 0.0f};
    uint16_t h[9];
    vlm_bf16_from_f32(9, in, h);
    for (int i = 0; i < 9; i++) {
        float back = vlm_bf16_to_f32(h[i]);
        bool ok;
        if (i == 6)
            ok = isnan(back);
        else if (i == 7)   /* near FLT_MAX: rounds to a finite bf16 or to inf, by RNE */
            ok = fabsf(back - in[i]) <= 0x1p-8f * in[i] || isinf(back);
        else
            ok = back == want[i];
        CU_ASSERT(ok);
    }
}

/* bf16 on OpenBLAS is refused naming the backend; on oneDNN it is refused
 * exactly when oneDNN reports no bf16 ISA, naming the CPU feature. */
static void test_select_errors(void)
{
    VlmErr err;
    CU_ASSERT(vlm_gemm_select(VLM_GEMM_OPENBLAS, VLM_PREC_BF16, &err) != 0);
    CU_ASSERT(strstr(err.msg, "onednn") != NULL);
    VlmGemmInfo gi;
    vlm_gemm_info(&gi);
    int rc = vlm_gemm_select(VLM_GEMM_ONEDNN, VLM_PREC_BF16, &err);
    CU_ASSERT((rc == 0) == gi.bf16_ok);
    CU_ASSERT(rc == 0 || strstr(err.msg, "AVX512-BF16") != NULL);
    CU_ASSERT(strstr(gi.impl_f32, "ref") != gi.impl_f32);   /* not oneDNN's reference loops */
    use(VLM_GEMM_DEFAULT, VLM_PREC_F32);
    VlmGemmBackend b;
    CU_ASSERT(vlm_gemm_parse_backend("openblas", &b) && b == VLM_GEMM_OPENBLAS);
    CU_ASSERT(vlm_gemm_parse_backend("onednn", &b) && b == VLM_GEMM_ONEDNN);
    CU_ASSERT(!vlm_gemm_parse_backend("mkl", &b));
}

/* The OpenBLAS remedy: only a generic core on a CPU with AVX2+FMA. */
static void test_blas_core_remedy(void)
{
    CU_ASSERT_STRING_EQUAL(vlm_blas_core_remedy("Prescott", true, false), "Haswell");
    CU_ASSERT_STRING_EQUAL(vlm_blas_core_remedy("Nehalem", true, true), "SkylakeX");
    CU_ASSERT_STRING_EQUAL(vlm_blas_core_remedy("Core2", true, false), "Haswell");
    CU_ASSERT(vlm_blas_core_remedy("Prescott", false, false) == NULL);
    CU_ASSERT(vlm_blas_core_remedy("Haswell", true, true) == NULL);
    CU_ASSERT(vlm_blas_core_remedy("Zen", true, false) == NULL);
    CU_ASSERT(vlm_blas_core_remedy("Cooperlake", true, true) == NULL);
}

void vlm_test_gemm(void)
{
    CU_pSuite s = CU_add_suite("gemm", NULL, NULL);
    CU_add_test(s, "sgemm on oneDNN vs double ref (transposes, alpha, beta, ld, threads)",
                test_onednn_vs_ref);
    CU_add_test(s, "sgemm on OpenBLAS vs double ref", test_openblas_vs_ref);
    CU_add_test(s, "linear fwd/bwd at 128x784x400: backends and thread counts agree",
                test_backends_agree);
    CU_add_test(s, "bf16 linear products within the bf16 bound (or skip)", test_bf16_linear);
    CU_add_test(s, "bf16 fused activations within the bound (or skip)", test_bf16_activations);
    CU_add_test(s, "bf16 conversion rounds to nearest even", test_bf16_convert);
    CU_add_test(s, "impossible selections fail naming what is missing", test_select_errors);
    CU_add_test(s, "OpenBLAS generic-core remedy", test_blas_core_remedy);
}
