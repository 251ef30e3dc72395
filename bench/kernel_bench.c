/* kernel_bench.c — throughput of the linear layer's forward + backward
 * (y = relu(x W + b); dW, dx, db) on each GEMM backend (and in bf16 where
 * the CPU has it) against a plain loop of the same three cblas_sgemm
 * calls on OpenBLAS's own threads, at R=128, in=784, out=400, on 1 and 2
 * threads; and the machine's measured matmul peak (one large product
 * through the GEMM boundary). Prints GFLOP/s; judges nothing itself.
 * Usage: kernel_bench [--quick] [R in out]
 *        kernel_bench --peak [--quick]  (2048^3 products: fp32 on both
 *                                        backends, bf16 on oneDNN)
 *        kernel_bench --info   (OpenBLAS config and core, oneDNN's ISA and
 *                               implementation, one line each) */
#include "vlm.h"
#include "gemm.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randn(size_t n, unsigned *seed, float scale)
{
    float *p = vlm_xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ((float)rand_r(seed) / RAND_MAX - 0.5f);
    return p;
}

typedef struct Bufs {
    int R, in, out;
    float *x, *W, *b, *y, *dy, *scratch, *dx, *dW, *db;
} Bufs;

/* The three GEMMs of a linear layer's fwd + bwd, nothing else. */
static void sgemm_step(Bufs *B)
{
    int R = B->R, in = B->in, out = B->out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, out, in, 1.0f,
                B->x, in, B->W, out, 0.0f, B->y, out);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, R, 1.0f,
                B->x, in, B->dy, out, 1.0f, B->dW, out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, in, out, 1.0f,
                B->dy, out, B->W, out, 1.0f, B->dx, in);
}

static void linear_step(Bufs *B)
{
    vlm_nn_linear_fwd(B->R, B->in, B->out, B->x, B->W, B->b, VLM_ACT_RELU,
                      B->y);
    vlm_nn_linear_bwd(B->R, B->in, B->out, B->x, B->W, B->y, B->dy,
                      VLM_ACT_RELU, B->scratch, B->dx, B->dW, B->db);
}

/* Mean seconds per step over one timed run of `iters` steps. */
static double time_steps(void (*step)(Bufs *), Bufs *B, int iters)
{
    double t0 = now();
    for (int i = 0; i < iters; i++)
        step(B);
    return (now() - t0) / iters;
}

static void select_or_die(VlmGemmBackend b, VlmPrecision p)
{
    VlmErr err;
    if (vlm_gemm_select(b, p, &err) != 0) {
        fprintf(stderr, "kernel_bench: %s\n", err.msg);
        exit(1);
    }
}

/* GFLOP/s of C (n,n) = A B through the boundary, best of `reps` */
static double peak(VlmGemmBackend b, VlmPrecision p, int n, int reps)
{
    select_or_die(b, p);
    size_t nn = (size_t)n * n;
    unsigned seed = 3;
    float *A = randn(nn, &seed, 1.0f), *B = randn(nn, &seed, 1.0f), *C = randn(nn, &seed, 0.0f);
    uint16_t *A16 = vlm_xmalloc(nn * sizeof *A16), *B16 = vlm_xmalloc(nn * sizeof *B16);
    vlm_bf16_from_f32(nn, A, A16);
    vlm_bf16_from_f32(nn, B, B16);
    VlmGemm g = {.M = n, .N = n, .K = n, .lda = n, .ldb = n, .ldc = n, .alpha = 1.0f,
                 .A = A, .B = B, .C = C};
    if (p == VLM_PREC_BF16) {
        g.bf16 = true;
        g.A = A16;
        g.B = B16;
    }
    vlm_gemm_run(&g);   /* warm up: primitive, pages */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        vlm_gemm_run(&g);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(A); free(B); free(C); free(A16); free(B16);
    select_or_die(VLM_GEMM_DEFAULT, VLM_PREC_F32);
    return 2.0 * n * n * n / best / 1e9;
}

static int run_peak(bool quick)
{
    int n = quick ? 512 : 2048, reps = quick ? 2 : 5;
    VlmGemmInfo gi;
    vlm_gemm_info(&gi);
    /* as in the trainers: vlm's pool of t splits the product and OpenBLAS
     * runs single-threaded inside each slice (left at its default, its
     * own threads would make the "1 thread" figure a 2-thread one) */
    openblas_set_num_threads(1);
    for (int t = 1; t <= 2; t++) {
        vlm_parallel_set_threads(t);
        printf("peak n=%d threads=%d  fp32 onednn %7.1f GFLOP/s  fp32 openblas %7.1f GFLOP/s", n, t,
               peak(VLM_GEMM_ONEDNN, VLM_PREC_F32, n, reps),
               peak(VLM_GEMM_OPENBLAS, VLM_PREC_F32, n, reps));
        if (gi.bf16_ok)
            printf("  bf16 onednn %7.1f GFLOP/s", peak(VLM_GEMM_ONEDNN, VLM_PREC_BF16, n, reps));
        else
            printf("  bf16 unavailable");
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool quick = false;
    int dims[3] = {128, 784, 400}, nd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--info")) {
            VlmGemmInfo gi;
            vlm_gemm_info(&gi);
            printf("openblas %s; core %s\n", gi.openblas_config, gi.openblas_core);
            printf("onednn %s; ISA %s; matmul fp32 %s, bf16 %s\n", gi.onednn_version,
                   gi.onednn_isa, gi.impl_f32, gi.impl_bf16);
            return 0;
        }
        else if (!strcmp(argv[i], "--peak")) {
            bool q = i + 1 < argc && !strcmp(argv[i + 1], "--quick");
            return run_peak(q || quick);
        }
        else if (nd < 3 && atoi(argv[i]) > 0)
            dims[nd++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: kernel_bench [--quick | --info] [R in out]\n");
            return 2;
        }
    }
    Bufs B = {.R = dims[0], .in = dims[1], .out = dims[2]};
    size_t nx = (size_t)B.R * B.in, nW = (size_t)B.in * B.out;
    size_t ny = (size_t)B.R * B.out;
    unsigned seed = 1;
    B.x = randn(nx, &seed, 2.0f);
    B.W = randn(nW, &seed, 0.1f);
    B.b = randn(B.out, &seed, 0.1f);
    B.y = randn(ny, &seed, 0.0f);
    B.dy = randn(ny, &seed, 1.0f);
    B.scratch = randn(ny, &seed, 0.0f);
    B.dx = randn(nx, &seed, 0.0f);
    B.dW = randn(nW, &seed, 0.0f);
    B.db = randn(B.out, &seed, 0.0f);

    double flops = 3.0 * 2.0 * B.R * B.in * B.out;
    /* about 0.3 s per measurement in full mode */
    int iters = quick ? 3 : (int)(0.3 * 20e9 / flops) + 1;
    int rounds = quick ? 1 : 7;
    printf("linear fwd+bwd (relu, bias) R=%d in=%d out=%d: %.1f MFLOP/step%s\n",
           B.R, B.in, B.out, flops / 1e6, quick ? " [quick]" : "");
    VlmGemmInfo gi;
    vlm_gemm_info(&gi);
    for (int t = 1; t <= 2; t++) {
        /* the sgemm loop on OpenBLAS's own t threads; the layer on vlm's
         * pool of t (OpenBLAS single-threaded inside its slices) */
        vlm_parallel_set_threads(t);
        double ts = 1e30, tl[3] = {1e30, 1e30, 1e30};
        const VlmGemmBackend be[3] = {VLM_GEMM_OPENBLAS, VLM_GEMM_ONEDNN, VLM_GEMM_ONEDNN};
        const VlmPrecision pr[3] = {VLM_PREC_F32, VLM_PREC_F32, VLM_PREC_BF16};
        int nconf = gi.bf16_ok ? 3 : 2;
        /* alternate them so drift (frequency, neighbours) hits all; keep
         * each one's best round */
        for (int r = 0; r < rounds; r++) {
            openblas_set_num_threads(t);
            if (r == 0)
                sgemm_step(&B);   /* warm up: pages, thread pool */
            double a = time_steps(sgemm_step, &B, iters);
            ts = a < ts ? a : ts;
            openblas_set_num_threads(1);
            for (int c = 0; c < nconf; c++) {
                select_or_die(be[c], pr[c]);
                if (r == 0)
                    linear_step(&B);   /* primitives, bf16 copies */
                double b = time_steps(linear_step, &B, iters);
                tl[c] = b < tl[c] ? b : tl[c];
            }
        }
        select_or_die(VLM_GEMM_DEFAULT, VLM_PREC_F32);
        printf("threads=%d  sgemm %7.2f GFLOP/s  linear openblas %7.2f GFLOP/s  "
               "efficiency %5.1f%%  linear onednn %7.2f GFLOP/s", t, flops / ts / 1e9,
               flops / tl[0] / 1e9, 100.0 * ts / tl[0], flops / tl[1] / 1e9);
        if (gi.bf16_ok)
            printf("  linear onednn bf16 %7.2f GFLOP/s", flops / tl[2] / 1e9);
        printf("\n");
    }
    vlm_parallel_set_threads(1);
    free(B.x); free(B.W); free(B.b); free(B.y); free(B.dy); free(B.scratch);
    free(B.dx); free(B.dW); free(B.db);
    return 0;
}
