/* gemm.h — the GEMM boundary's internal interface (runtime only): one
 * product as a struct, run by gemm.c over the pool, each slice on a
 * backend; gemm_onednn.c's primitive cache. Public selection API: vlm.h. */
#ifndef VLM_GEMM_H
#define VLM_GEMM_H

#include "vlm.h"

/* C (M,N) = act(alpha * op(A) op(B) + bias) + beta * C, row major with
 * leading dimensions. A and B are float, or bf16 (uint16_t) when bf16 is
 * set (oneDNN only). bias (N) and act are fused into the product (oneDNN
 * post-ops where it has the activation, else a pass over each slice while
 * it is in cache); they need beta == 0. */
typedef struct VlmGemm {
    bool ta, tb, bf16;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const void *A, *B;
    float *C;
    const float *bias;
    VlmAct act;
} VlmGemm;

/* Run one product over the pool (K <= 0: C = beta * C, then bias/act). */
void vlm_gemm_run(const VlmGemm *g);
/* A linear layer's two backward products by slices of its weight's rows
 * (the layer's inputs): slice a..b runs dx's columns a..b (gx, which
 * reads only W's rows a..b; may be NULL), then dW's rows a..b (gw), both
 * on one thread, with one fork-join for the two. `in` is W's rows. */
void vlm_gemm_run_wrows(const VlmGemm *gx, const VlmGemm *gw, int in);

/* ---- oneDNN (gemm_onednn.c) */
typedef struct VlmDnnPrim VlmDnnPrim;
/* The primitive for g's shape (strides, transposes, type, bias, act,
 * alpha, beta; not the pointers), created on first use, with memory
 * objects and scratchpad for concurrent slot `slot` (0..63). Call from the
 * pool's calling thread, never inside a job. Exits with a message if
 * oneDNN cannot build it. *fused_act: act was fused as a post-op. */
VlmDnnPrim *vlm_dnn_prepare(const VlmGemm *g, int slot, bool *fused_act);
/* Run it on g's pointers as slot `slot` (any thread; slots differ between
 * concurrent calls). */
void vlm_dnn_exec(VlmDnnPrim *p, int slot, const VlmGemm *g);
/* oneDNN's ISA and bf16 availability; implementation names of a probe
 * product; version. */
void vlm_dnn_info(VlmGemmInfo *info);
bool vlm_dnn_bf16_ok(char *isa, size_t n);
void vlm_dnn_release(void);
/* OpenMP threads per primitive (1 unless VLM_ONEDNN_THREADS=omp) */
void vlm_dnn_set_team(int n);

#endif
