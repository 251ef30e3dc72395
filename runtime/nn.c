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

/* Bias and activation, row by row so the row is still in cache for the
 * second pass: y = act(y + b). The activations are tensor.c's elementwise
 * functions, so the forms (stable, vectorizable) live in one place. */
static void bias_act_rows(int R, int out, const float *b, VlmAct act,
                          float *y)
{
    static const VlmFn fn[] = {
        [VLM_ACT_IDENTITY] = VLM_FN_IDENTITY, [VLM_ACT_RELU] = VLM_FN_RELU,
        [VLM_ACT_TANH] = VLM_FN_TANH, [VLM_ACT_SIGMOID] = VLM_FN_SIGMOID,
        [VLM_ACT_SOFTPLUS] = VLM_FN_SOFTPLUS, [VLM_ACT_ELU] = VLM_FN_ELU,
    };
    for (int r = 0; r < R; r++) {
        float *yr = y + (size_t)r * out;
        if (b)
            for (int j = 0; j < out; j++) yr[j] += b[j];
        if (act != VLM_ACT_IDENTITY)
            vlm_ew_fn_fwd(fn[act], (size_t)out, yr, yr);
    }
}

/* y = act(x @ W + b): the GEMM writes the pre-activation into y (beta 0),
 * then one pass adds the bias and applies act while the row is in cache. */
// x (R,in) @ W (in,out) + b (out) -> act -> y (R,out)
void vlm_nn_linear_fwd(int R, int in, int out, const float *x,
                       const float *W, const float *b, VlmAct act, float *y)
{
    if (R <= 0 || out <= 0)
        return;
    if (in > 0)
        vlm_sgemm(false, false, R, out, in, 1.0f, x, in, W, out, 0.0f, y, out);
    else
        for (size_t k = 0; k < (size_t)R * out; k++) y[k] = 0.0f;
    bias_act_rows(R, out, b, act, y);
}

/* act'(pre) written through y = act(pre):
 *   relu y > 0;  tanh 1 - y^2;  sigmoid y (1 - y);
 *   softplus sigmoid(pre) = 1 - exp(-y) (= -expm1(-y), exact for small y);
 *   elu y > 0 ? 1 : y + 1.
 * dpre = act' * dy and db += sum_r dpre in the same pass. */
static void act_bwd_rows(int R, int out, const float *y, const float *dy,
                         VlmAct act, float *dpre, float *db)
{
    for (int r = 0; r < R; r++) {
        const float *yr = y + (size_t)r * out, *gr = dy + (size_t)r * out;
        float *d = dpre + (size_t)r * out;
        switch (act) {
        case VLM_ACT_IDENTITY:
            if (d != gr)
                for (int j = 0; j < out; j++) d[j] = gr[j];
            break;
        case VLM_ACT_RELU: /* load first: a conditional load blocks SIMD */
            for (int j = 0; j < out; j++) {
                float g = gr[j];
                d[j] = yr[j] > 0 ? g : 0.0f;
            }
            break;
        case VLM_ACT_TANH:
            for (int j = 0; j < out; j++) d[j] = (1.0f - yr[j] * yr[j]) * gr[j];
            break;
        case VLM_ACT_SIGMOID:
            for (int j = 0; j < out; j++) d[j] = yr[j] * (1.0f - yr[j]) * gr[j];
            break;
        case VLM_ACT_SOFTPLUS:
            for (int j = 0; j < out; j++) d[j] = -expm1f(-yr[j]) * gr[j];
            break;
        case VLM_ACT_ELU:
            for (int j = 0; j < out; j++) {
                float g = gr[j];
                d[j] = yr[j] > 0 ? g : (yr[j] + 1.0f) * g;
            }
            break;
        }
        if (db)
            for (int j = 0; j < out; j++) db[j] += d[j];
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
        if (act == VLM_ACT_IDENTITY && scratch != dy) {
            /* only db is needed: sum dy directly, no copy */
            for (int r = 0; r < R; r++)
                for (int j = 0; j < out; j++) db[j] += dy[(size_t)r * out + j];
        } else {
            act_bwd_rows(R, out, y, dy, act, scratch, db);
            dpre = scratch;
        }
    }
    if (in <= 0)
        return;
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
