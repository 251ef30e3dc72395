/* kernel_bench.c — throughput of the linear layer's forward + backward
 * (y = relu(x W + b); dW, dx, db) against a plain loop of the same three
 * cblas_sgemm calls, at R=128, in=784, out=400, on 1 and 2 OpenBLAS
 * threads. Prints GFLOP/s and the ratio; judges nothing itself.
 * Usage: kernel_bench [--quick] [R in out]
 *        kernel_bench --info   (OpenBLAS build config and core, one line) */
#include "vlm.h"

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

int main(int argc, char **argv)
{
    bool quick = false;
    int dims[3] = {128, 784, 400}, nd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--info")) {
            printf("openblas %s; core %s; threads %d\n", openblas_get_config(),
                   openblas_get_corename(), openblas_get_num_threads());
            return 0;
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
    int threads[2] = {1, 2};
    for (int ti = 0; ti < 2; ti++) {
        openblas_set_num_threads(threads[ti]);
        sgemm_step(&B);   /* warm up: pages, thread pool */
        linear_step(&B);
        /* alternate the two so drift (frequency, neighbours) hits both;
         * keep each one's best round */
        double ts = 1e30, tl = 1e30;
        for (int r = 0; r < rounds; r++) {
            double a = time_steps(sgemm_step, &B, iters);
            double b = time_steps(linear_step, &B, iters);
            ts = a < ts ? a : ts;
            tl = b < tl ? b : tl;
        }
        printf("threads=%d  sgemm %7.2f GFLOP/s  linear %7.2f GFLOP/s  "
               "efficiency %5.1f%%\n", threads[ti], flops / ts / 1e9,
               flops / tl / 1e9, 100.0 * ts / tl);
    }
    free(B.x); free(B.W); free(B.b); free(B.y); free(B.dy); free(B.scratch);
    free(B.dx); free(B.dW); free(B.db);
    return 0;
}
