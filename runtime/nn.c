/* nn.c — network layers on the GEMM boundary (gemm.c): a linear layer
 * with its bias and activation fused into the product, its backward pass
 * (activation derivative and bias gradient on the pool, then the two
 * products), the bf16 copies its products read under --precision bf16,
 * and a per-row matrix-vector product (always fp32). Transposes are GEMM
 * flags, never copies. Everything is row major; no allocation per batch. */
/* The Makefile builds at -O2, where GCC's "very cheap" vectorizer skips
 * any loop that needs a runtime alias check or a remainder loop, i.e.
 * every loop here; O3 for this file turns them into SIMD loops. No
 * trapping math / errno: nothing reads FP exception flags or errno, and
 * without them selects (x > 0 ? a : b) and sqrtf stay branch-free. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include "gemm.h"

#include <math.h>
#include <stdlib.h>

/* bf16 copies (--precision bf16): one per weight tensor, keyed by its
 * address and refreshed by every forward pass (a weight changes only in
 * the optimizer's step, which comes after its backward pass and before the
 * next forward), and two staging buffers for the activations and output
 * gradients of one layer, grown to the largest layer on the first batch
 * and reused after. Called from the thread that runs the generated code. */
typedef struct WeightCopy {
    const float *W;
    size_t n;
    uint16_t *h;
} WeightCopy;

static struct {
    WeightCopy *w;
    int n, cap;
    uint16_t *stage[2];
    size_t stage_n[2];
} bf16;

static const uint16_t *weight_bf16(const float *W, size_t n, bool refresh)
{
    WeightCopy *c = NULL;
    for (int i = 0; i < bf16.n && !c; i++)
        if (bf16.w[i].W == W)
            c = &bf16.w[i];
    if (!c) {
        if (bf16.n == bf16.cap) {
            bf16.cap = bf16.cap ? 2 * bf16.cap : 16;
            bf16.w = vlm_xrealloc(bf16.w, (size_t)bf16.cap * sizeof *bf16.w);
        }
        c = &bf16.w[bf16.n++];
        *c = (WeightCopy){W, 0, NULL};
        refresh = true;
    }
    if (c->n != n) {
        free(c->h);
        c->h = vlm_xmalloc(n * sizeof *c->h);
        c->n = n;
        refresh = true;
    }
    if (refresh)
        vlm_bf16_from_f32(n, W, c->h);
    return c->h;
}

static const uint16_t *stage_bf16(int k, const float *x, size_t n)
{
    if (bf16.stage_n[k] < n) {
        free(bf16.stage[k]);
        bf16.stage[k] = vlm_xmalloc(n * sizeof *bf16.stage[k]);
        bf16.stage_n[k] = n;
    }
    vlm_bf16_from_f32(n, x, bf16.stage[k]);
    return bf16.stage[k];
}

/* y = act(x @ W + b), one product through the GEMM boundary with the bias
 * and activation fused (gemm.c); in bf16, x and W as bf16 copies. */
// x (R,in) @ W (in,out) + b (out) -> act -> y (R,out)
void vlm_nn_linear_fwd(int R, int in, int out, const float *x,
                       const float *W, const float *b, VlmAct act, float *y)
{
    if (R <= 0 || out <= 0)
        return;
    VlmGemm g = {.M = R, .N = out, .K = in, .lda = in, .ldb = out, .ldc = out,
                 .alpha = 1.0f, .A = x, .B = W, .C = y, .bias = b, .act = act};
    if (in > 0 && vlm_gemm_precision() == VLM_PREC_BF16) {
        g.bf16 = true;
        g.A = stage_bf16(0, x, (size_t)R * in);
        g.B = weight_bf16(W, (size_t)in * out, true);
    }
    vlm_gemm_run(&g);
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

/* With dpre = act'(y) * dy:
 *   dx (R,in)   += dpre (R,out) @ W^T (out,in)
 *   dW (in,out) += x^T (in,R)   @ dpre (R,out)
 *   db (out)    += sum_r dpre
 * Identity with no scratch distinct from dy skips the copy. The two
 * products run together by slices of W's rows (vlm_gemm_run_wrows). */
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
    if (in <= 0 || (!dW && !dx))
        return;
    // dW (in,out) += x^T (in,R) @ dpre (R,out)
    VlmGemm gw = {.ta = true, .M = in, .N = out, .K = R, .lda = in, .ldb = out, .ldc = out,
                  .alpha = 1.0f, .beta = 1.0f, .A = x, .B = dpre, .C = dW};
    // dx (R,in) += dpre (R,out) @ W^T (out,in)
    VlmGemm gx = {.tb = true, .M = R, .N = in, .K = out, .lda = out, .ldb = out, .ldc = in,
                  .alpha = 1.0f, .beta = 1.0f, .A = dpre, .B = W, .C = dx};
    if (vlm_gemm_precision() == VLM_PREC_BF16) {
        gw.bf16 = gx.bf16 = true;
        gw.B = gx.A = stage_bf16(1, dpre, (size_t)R * out);
        if (dW)
            gw.A = stage_bf16(0, x, (size_t)R * in);
        if (dx)  /* the copy the forward pass made */
            gx.B = weight_bf16(W, (size_t)in * out, false);
    }
    if (!dW) {
        vlm_gemm_run(&gx);
        return;
    }
    vlm_gemm_run_wrows(dx ? &gx : NULL, &gw, in);
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
