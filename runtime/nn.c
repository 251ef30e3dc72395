/* nn.c — network layers on OpenBLAS: a linear layer with its bias and
 * activation fused into one pass after the GEMM, and a per-row
 * matrix-vector product. Transposes are GEMM flags, never copies.
 * Everything is row major; no allocation. */
/* The Makefile builds at -O2, where GCC's "very cheap" vectorizer skips
 * any loop that needs a runtime alias check or a remainder loop, i.e.
 * every loop here; O3 for this file turns them into SIMD loops. No
 * trapping math / errno: nothing reads FP exception flags or errno, and
 * without them selects (x > 0 ? a : b) and sqrtf stay branch-free. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include "vlm.h"

#include <cblas.h>
#include <math.h>

/* Bias and activation on the block rows r0..r1, columns c0..c1 of y
 * (R, out): y = act(y + b). The activations are tensor.c's elementwise
 * functions, so the forms (stable, vectorizable) live in one place. */
typedef struct BiasAct {
    int out;
    const float *b;
    VlmAct act;
    float *y;
} BiasAct;

static void bias_act_block(void *ctx, int r0, int r1, int c0, int c1)
{
    static const VlmFn fn[] = {
        [VLM_ACT_IDENTITY] = VLM_FN_IDENTITY, [VLM_ACT_RELU] = VLM_FN_RELU,
        [VLM_ACT_TANH] = VLM_FN_TANH, [VLM_ACT_SIGMOID] = VLM_FN_SIGMOID,
        [VLM_ACT_SOFTPLUS] = VLM_FN_SOFTPLUS, [VLM_ACT_ELU] = VLM_FN_ELU,
    };
    const BiasAct *j = ctx;
    for (int r = r0; r < r1; r++) {
        float *yr = j->y + (size_t)r * j->out + c0;
        if (j->b)
            for (int c = 0; c < c1 - c0; c++) yr[c] += j->b[c0 + c];
        if (j->act != VLM_ACT_IDENTITY)
            vlm_ew_fn_fwd(fn[j->act], (size_t)(c1 - c0), yr, yr);
    }
}

/* y = act(x @ W + b): the GEMM writes the pre-activation into y (beta 0);
 * each GEMM slice then adds the bias and applies act to its own block
 * while it is in cache. */
// x (R,in) @ W (in,out) + b (out) -> act -> y (R,out)
void vlm_nn_linear_fwd(int R, int in, int out, const float *x,
                       const float *W, const float *b, VlmAct act, float *y)
{
    if (R <= 0 || out <= 0)
        return;
    BiasAct j = {out, b, act, y};
    bool ep = b || act != VLM_ACT_IDENTITY;
    if (in > 0) {
        vlm_sgemm_ep(false, false, R, out, in, 1.0f, x, in, W, out, 0.0f, y, out,
                     ep ? bias_act_block : NULL, &j);
        return;
    }
    for (size_t k = 0; k < (size_t)R * out; k++) y[k] = 0.0f;
    if (ep)
        bias_act_block(&j, 0, R, 0, out);
}

/* act'(pre) written through y = act(pre):
 *   relu y > 0;  tanh 1 - y^2;  sigmoid y (1 - y);
 *   softplus sigmoid(pre) = 1 - exp(-y) (= -expm1(-y), exact for small y);
 *   elu y > 0 ? 1 : y + 1.
 * dpre = act' * dy and db += sum_r dpre in the same pass, on the columns
 * c0..c1 of every row: a column slice owns its db entries and adds the
 * rows in order, so the sums do not depend on the slicing. Identity with
 * dpre == NULL only sums dy into db. */
typedef struct ActBwd {
    int R, out;
    const float *y, *dy;
    VlmAct act;
    float *dpre, *db;
} ActBwd;

static void act_bwd_cols(void *ctx, size_t c0, size_t c1)
{
    const ActBwd *j = ctx;
    int out = j->out, n = (int)(c1 - c0);
    VlmAct act = j->act;
    float *db = j->db ? j->db + c0 : NULL;
    for (int r = 0; r < j->R; r++) {
        const float *yr = j->y + (size_t)r * out + c0, *gr = j->dy + (size_t)r * out + c0;
        if (!j->dpre) {
            for (int c = 0; c < n; c++) db[c] += gr[c];
            continue;
        }
        float *d = j->dpre + (size_t)r * out + c0;
        switch (act) {
        case VLM_ACT_IDENTITY:
            if (d != gr)
                for (int c = 0; c < n; c++) d[c] = gr[c];
            break;
        case VLM_ACT_RELU: /* load first: a conditional load blocks SIMD */
            for (int c = 0; c < n; c++) {
                float g = gr[c];
                d[c] = yr[c] > 0 ? g : 0.0f;
            }
            break;
        case VLM_ACT_TANH:
            for (int c = 0; c < n; c++) d[c] = (1.0f - yr[c] * yr[c]) * gr[c];
            break;
        case VLM_ACT_SIGMOID:
            for (int c = 0; c < n; c++) d[c] = yr[c] * (1.0f - yr[c]) * gr[c];
            break;
        case VLM_ACT_SOFTPLUS:
            for (int c = 0; c < n; c++) d[c] = -expm1f(-yr[c]) * gr[c];
            break;
        case VLM_ACT_ELU:
            for (int c = 0; c < n; c++) {
                float g = gr[c];
                d[c] = yr[c] > 0 ? g : (yr[c] + 1.0f) * g;
            }
            break;
        }
        if (db)
            for (int c = 0; c < n; c++) db[c] += d[c];
    }
}

/* The two GEMMs of the backward pass as two tasks (single-threaded BLAS
 * calls: a task of the pool does not start another pool job). */
typedef struct BwdPair {
    int R, in, out;
    const float *x, *W, *dpre;
    float *dx, *dW;
} BwdPair;

static void bwd_pair(void *ctx, size_t lo, size_t hi)
{
    const BwdPair *j = ctx;
    for (size_t t = lo; t < hi; t++) {
        if (t == 0)   // dW (in,out) += x^T (in,R) @ dpre (R,out)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j->in, j->out, j->R, 1.0f, j->x,
                        j->in, j->dpre, j->out, 1.0f, j->dW, j->out);
        else          // dx (R,in) += dpre (R,out) @ W^T (out,in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->R, j->in, j->out, 1.0f, j->dpre,
                        j->out, j->W, j->out, 1.0f, j->dx, j->in);
    }
}

/* With dpre = act'(y) * dy:
 *   dx (R,in)   += dpre (R,out) @ W^T (out,in)
 *   dW (in,out) += x^T (in,R)   @ dpre (R,out)
 *   db (out)    += sum_r dpre
 * Identity with no scratch distinct from dy skips the copy. */
// x (R,in), W (in,out), y, dy (R,out) -> dx (R,in), dW (in,out), db (out)
void vlm_nn_linear_bwd(int R, int in, int out, const float *x,
                       const float *W, const float *y, const float *dy,
                       VlmAct act, float *scratch, float *dx, float *dW,
                       float *db)
{
    if (R <= 0 || out <= 0)
        return;
    const float *dpre = dy;
    if (act != VLM_ACT_IDENTITY || db) {
        /* identity with a scratch other than dy: only db is needed, sum
         * dy directly, no copy */
        bool sum_only = act == VLM_ACT_IDENTITY && scratch != dy;
        ActBwd j = {R, out, y, dy, act, sum_only ? NULL : scratch, db};
        vlm_parallel_for((size_t)out, 64, act_bwd_cols, &j);
        if (!sum_only)
            dpre = scratch;
    }
    if (in <= 0)
        return;
    if (dW && dx && vlm_parallel_threads() == 2 && (long)R * in * out >= (1L << 22)) {
        /* a pool of two and two GEMMs of equal size: one each, whole,
         * instead of splitting both (each half packs all of the shared
         * operand); 10% faster for the VAE's 400x784 output layer */
        BwdPair j = {R, in, out, x, W, dpre, dx, dW};
        vlm_parallel_for(2, 1, bwd_pair, &j);
        return;
    }
    if (dW)
        vlm_sgemm(true, false, in, out, R, 1.0f, x, in, dpre, out, 1.0f, dW, out);
    if (dx)
        vlm_sgemm(false, true, R, in, out, 1.0f, dpre, out, W, out, 1.0f, dx, in);
}

/* y[r] = A x[r] for every row: the batch is x @ A^T. */
// x (R,n) @ A^T (n,m) -> y (R,m)
void vlm_nn_matvec_fwd(int R, int m, int n, const float *A, const float *x,
                       float *y)
{
    if (R <= 0 || m <= 0)
        return;
    if (n <= 0) {
        for (size_t k = 0; k < (size_t)R * m; k++) y[k] = 0.0f;
        return;
    }
    vlm_sgemm(false, true, R, m, n, 1.0f, x, n, A, n, 0.0f, y, m);
}

// dy (R,m) -> dx (R,n) += dy @ A (m,n);  dA (m,n) += dy^T (m,R) @ x (R,n)
void vlm_nn_matvec_bwd(int R, int m, int n, const float *A, const float *x,
                       const float *dy, float *dA, float *dx)
{
    if (R <= 0 || m <= 0 || n <= 0)
        return;
    if (dx)
        vlm_sgemm(false, false, R, n, m, 1.0f, dy, m, A, n, 1.0f, dx, n);
    if (dA)
        vlm_sgemm(true, false, m, n, R, 1.0f, dy, m, x, n, 1.0f, dA, n);
}
