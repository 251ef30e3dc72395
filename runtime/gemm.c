/* gemm.c — the GEMM boundary: every single-precision product of the
 * runtime (the nets' linear layers, `@` in models) is one VlmGemm, split
 * here over vlm's pool into static slices of C (rows, or columns for a
 * short C), each run single-threaded by the selected backend: a oneDNN
 * matmul primitive (gemm_onednn.c) or OpenBLAS's cblas_sgemm. Bias and
 * activation are applied to each slice's block while it is in cache (or
 * fused by oneDNN as post-ops). The backend selection, bf16 conversion and
 * the machine report for `info` live here too. Not here: the layers'
 * backward logic (nn.c) and EM's double products (infer_em.c). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include "gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS's extensions (declared here: <cblas.h> may be another BLAS's) */
char *openblas_get_corename(void);
char *openblas_get_config(void);

#define SLOTS 64
/* A product is split over the pool from this many multiply-adds
 * (M N K) on: below it (the 20-wide layers of a VAE at batch 128, about
 * 1M) a split costs more in waking the other thread and moving operands
 * between caches than it saves; measured on the VAE at 2 threads, the
 * 20-wide layers ran 1.3-2x slower split than whole. */
#define SPLIT_MIN (1L << 22)

static struct {
    bool chosen;
    VlmGemmBackend backend;
    VlmPrecision precision;
} sel;

const char *vlm_gemm_backend_name(VlmGemmBackend b)
{
    return b == VLM_GEMM_OPENBLAS ? "openblas" : "onednn";
}

bool vlm_gemm_parse_backend(const char *s, VlmGemmBackend *b)
{
    if (!strcmp(s, "openblas"))
        *b = VLM_GEMM_OPENBLAS;
    else if (!strcmp(s, "onednn"))
        *b = VLM_GEMM_ONEDNN;
    else
        return false;
    return true;
}

int vlm_gemm_env_backend(VlmGemmBackend *b, VlmErr *err)
{
    const char *s = getenv("VLM_GEMM");
    *b = VLM_GEMM_DEFAULT;
    if (!s || !*s)
        return 0;
    if (!vlm_gemm_parse_backend(s, b)) {
        vlm_err_set(err, "VLM_GEMM=%s: expected openblas or onednn", s);
        return -1;
    }
    return 0;
}

VlmGemmBackend vlm_gemm_backend(void)
{
    if (!sel.chosen) {   /* a program that never selected: $VLM_GEMM or the default */
        VlmErr err;
        if (vlm_gemm_env_backend(&sel.backend, &err) != 0)
            sel.backend = VLM_GEMM_DEFAULT;
        sel.chosen = true;
    }
    return sel.backend;
}

VlmPrecision vlm_gemm_precision(void) { return sel.precision; }

int vlm_gemm_select(VlmGemmBackend b, VlmPrecision p, VlmErr *err)
{
    if (p == VLM_PREC_BF16) {
        char isa[48];
        if (b != VLM_GEMM_ONEDNN) {
            vlm_err_set(err, "bf16 needs the onednn GEMM backend (--gemm onednn), not %s",
                        vlm_gemm_backend_name(b));
            return -1;
        }
        if (!vlm_dnn_bf16_ok(isa, sizeof isa)) {
            vlm_err_set(err, "bf16 needs a CPU with AVX512-BF16 (avx512_bf16) or AMX-BF16; "
                        "oneDNN finds at most %s here (use fp32)", isa);
            return -1;
        }
    }
    sel.chosen = true;
    sel.backend = b;
    sel.precision = p;
    return 0;
}

/* VLM_ONEDNN_THREADS=omp: oneDNN's OpenMP team does each product whole
 * while vlm's pool waits (the alternative to single-threaded primitives
 * in the pool's slices; measured slower, docs/performance.md) */
static bool omp_team(void)
{
    static int mode = -1;
    if (mode < 0) {
        const char *s = getenv("VLM_ONEDNN_THREADS");
        mode = s && !strcmp(s, "omp");
    }
    return mode;
}

/* ------------------------------------------------------------ bf16 */

/* round to nearest even on the 16 bits dropped; a NaN stays a quiet NaN
 * (rounding could carry it into infinity) */
static inline uint16_t bf16_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

typedef struct Bf16Job {
    const float *x;
    uint16_t *y;
} Bf16Job;

static void bf16_slice(void *ctx, size_t lo, size_t hi)
{
    const Bf16Job *j = ctx;
    for (size_t i = lo; i < hi; i++)
        j->y[i] = bf16_of(j->x[i]);
}

void vlm_bf16_from_f32(size_t n, const float *x, uint16_t *y)
{
    Bf16Job j = {x, y};
    vlm_parallel_for(n, 1 << 14, bf16_slice, &j);
}

float vlm_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------ slices */

/* y = act(y + b) on a block of C, by the thread that wrote it. The
 * activations are tensor.c's elementwise functions (stable forms). */
static void bias_act(const VlmGemm *s, bool add_bias, bool apply_act)
{
    static const VlmFn fn[] = {
        [VLM_ACT_IDENTITY] = VLM_FN_IDENTITY, [VLM_ACT_RELU] = VLM_FN_RELU,
        [VLM_ACT_TANH] = VLM_FN_TANH, [VLM_ACT_SIGMOID] = VLM_FN_SIGMOID,
        [VLM_ACT_SOFTPLUS] = VLM_FN_SOFTPLUS, [VLM_ACT_ELU] = VLM_FN_ELU,
    };
    add_bias = add_bias && s->bias;
    apply_act = apply_act && s->act != VLM_ACT_IDENTITY;
    if (!add_bias && !apply_act)
        return;
    for (int r = 0; r < s->M; r++) {
        float *yr = s->C + (size_t)r * s->ldc;
        if (add_bias)
            for (int c = 0; c < s->N; c++) yr[c] += s->bias[c];
        if (apply_act)
            vlm_ew_fn_fwd(fn[s->act], (size_t)s->N, yr, yr);
    }
}

/* The sub-product of C's rows (or columns) lo..hi. */
static VlmGemm slice_of(const VlmGemm *g, bool by_rows, int lo, int hi)
{
    VlmGemm s = *g;
    size_t es = g->bf16 ? sizeof(uint16_t) : sizeof(float);
    if (by_rows) {
        s.M = hi - lo;
        s.A = (const char *)g->A + (g->ta ? (size_t)lo : (size_t)lo * g->lda) * es;
        s.C = g->C + (size_t)lo * g->ldc;
    } else {
        s.N = hi - lo;
        s.B = (const char *)g->B + (g->tb ? (size_t)lo * g->ldb : (size_t)lo) * es;
        s.C = g->C + lo;
        if (g->bias)
            s.bias = g->bias + lo;
    }
    return s;
}

/* A slice's backend setup: its oneDNN primitive (NULL: OpenBLAS), whether
 * that fuses the activation, and whether it computes C transposed. */
typedef struct Prep {
    VlmDnnPrim *prim;
    bool fused, tr;
} Prep;

/* A narrow C (fewer than 32 columns, at least 64 rows), e.g. a VAE's
 * 20-wide mean or its decoder's input gradient: oneDNN's kernels block N
 * by 16 to 64 and run it at about half speed (17.4 us against 10.4 us for
 * 128x20 @ K 400 on AVX-512), so the product runs as C^T = op(B)^T op(A)^T
 * into the slot's scratch, then is added into C transposed. */
static float *tr_scratch[SLOTS];
static size_t tr_scratch_n[SLOTS];

static bool narrow(const VlmGemm *s) { return s->N < 32 && s->M >= 64; }

static VlmGemm transposed(const VlmGemm *s, int slot)
{
    return (VlmGemm){.ta = !s->tb, .tb = !s->ta, .M = s->N, .N = s->M, .K = s->K,
                     .lda = s->ldb, .ldb = s->lda, .ldc = s->M, .alpha = s->alpha, .beta = 0.0f,
                     .A = s->B, .B = s->A, .C = tr_scratch[slot], .bf16 = s->bf16};
}

/* Before the slices run (the caller's thread): the primitive, created the
 * first time its shape is seen, and the transposed form's scratch. */
static Prep prepare(const VlmGemm *s, int slot)
{
    Prep p = {0};
    p.tr = narrow(s);
    if (!p.tr) {
        p.prim = vlm_dnn_prepare(s, slot, &p.fused);
        return p;
    }
    size_t need = (size_t)s->M * (size_t)s->N;
    if (tr_scratch_n[slot] < need) {
        free(tr_scratch[slot]);
        tr_scratch[slot] = vlm_xmalloc(need * sizeof(float));
        tr_scratch_n[slot] = need;
    }
    VlmGemm t = transposed(s, slot);
    p.prim = vlm_dnn_prepare(&t, slot, NULL);
    return p;
}

void vlm_gemm_release(void)
{
    vlm_dnn_release();
    for (int t = 0; t < SLOTS; t++) {
        free(tr_scratch[t]);
        tr_scratch[t] = NULL;
        tr_scratch_n[t] = 0;
    }
}

/* One slice on the backend. */
static void run_one(const VlmGemm *s, const Prep *p, int slot)
{
    if (p->prim && p->tr) {
        VlmGemm t = transposed(s, slot);
        vlm_dnn_exec(p->prim, slot, &t);
        const float *T = tr_scratch[slot];
        for (int r = 0; r < s->M; r++) {
            float *cr = s->C + (size_t)r * s->ldc;
            for (int c = 0; c < s->N; c++)
                cr[c] = (s->beta == 0.0f ? 0.0f : s->beta * cr[c]) + T[(size_t)c * s->M + r];
        }
        bias_act(s, true, true);
        return;
    }
    if (p->prim) {
        vlm_dnn_exec(p->prim, slot, s);
        bias_act(s, false, !p->fused);
        return;
    }
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                s->M, s->N, s->K, s->alpha, (const float *)s->A, s->lda, (const float *)s->B, s->ldb,
                s->beta, s->C, s->ldc);
    bias_act(s, true, true);
}

/* One or two products cut into the same slices a..b of n: slice t runs
 * g[0]'s part (when given) then g[1]'s, each split by its rows or its
 * columns, on slot t. */
typedef struct Job {
    const VlmGemm *g[2];
    bool by_rows[2];
    int n, chunk, slices;
    Prep prep[2][SLOTS];
} Job;

static void job_slice(void *ctx, size_t lo, size_t hi)
{
    Job *j = ctx;
    for (size_t t = lo; t < hi; t++) {
        int a = (int)t * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
        for (int k = 0; k < 2 && a < b; k++)
            if (j->g[k]) {
                VlmGemm s = slice_of(j->g[k], j->by_rows[k], a, b);
                run_one(&s, &j->prep[k][t], (int)t);
            }
    }
}

/* Cuts the job into `slices` (at least 1) and runs it: the primitives
 * are prepared here, on the caller's thread, then the slices on the pool. */
static void run_job(Job *j, int slices, bool dnn)
{
    j->slices = slices < 1 ? 1 : slices;
    j->chunk = (j->n + j->slices - 1) / j->slices;
    for (int t = 0; t < j->slices && dnn; t++) {
        int a = t * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
        for (int k = 0; k < 2 && a < b; k++)
            if (j->g[k]) {
                VlmGemm s = slice_of(j->g[k], j->by_rows[k], a, b);
                j->prep[k][t] = prepare(&s, t);
            }
    }
    if (j->slices == 1)
        job_slice(j, 0, 1);
    else
        vlm_parallel_for((size_t)j->slices, 1, job_slice, j);
}

/* K <= 0: the product is empty (BLAS rejects ld = 0) */
static void run_empty(const VlmGemm *g)
{
    for (int r = 0; r < g->M; r++) {
        float *cr = g->C + (size_t)r * g->ldc;
        for (int c = 0; c < g->N; c++)
            cr[c] = g->beta == 0 ? 0.0f : g->beta * cr[c];
    }
    bias_act(g, true, true);
}

void vlm_gemm_run(const VlmGemm *g)
{
    if (g->M <= 0 || g->N <= 0)
        return;
    if (g->K <= 0) {
        run_empty(g);
        return;
    }
    bool dnn = vlm_gemm_backend() == VLM_GEMM_ONEDNN || g->bf16;
    Job j = {.g = {NULL, g}, .by_rows = {false, true}, .n = g->M};
    int T = vlm_parallel_threads(), slices = 1;
    if (dnn)
        vlm_dnn_set_team(omp_team() ? T : 1);
    if (T > 1 && (long)g->M * g->N * g->K >= SPLIT_MIN && !(dnn && omp_team())) {
        /* Each slice packs its part of the split operand and all of the
         * other: splitting the longer of M and N packs the least (a batch
         * of 128 rows times a 784x400 weight splits the weight's columns). */
        int min_chunk = 16;
        if (!(g->M >= 32 * T && g->M >= g->N)) {
            j.by_rows[1] = false;
            j.n = g->N;
            min_chunk = 32;
        }
        slices = j.n / T < min_chunk ? j.n / min_chunk : T;
    }
    run_job(&j, slices, dnn);
}

void vlm_gemm_run_wrows(const VlmGemm *gx, const VlmGemm *gw, int in)
{
    bool dnn = vlm_gemm_backend() == VLM_GEMM_ONEDNN || gw->bf16;
    if (dnn && omp_team()) {   /* oneDNN's team does each product whole */
        if (gx)
            vlm_gemm_run(gx);
        vlm_gemm_run(gw);
        return;
    }
    if (dnn)
        vlm_dnn_set_team(1);
    /* dx's columns and dW's rows of the same inputs a..b */
    Job j = {.g = {gx, gw}, .by_rows = {false, true}, .n = in};
    int T = vlm_parallel_threads(), slices = 1;
    long work = (long)gw->M * gw->N * gw->K * (gx ? 2 : 1);
    if (T > 1 && work >= SPLIT_MIN && in >= 2 * 16)
        slices = in / T < 16 ? in / 16 : T;
    run_job(&j, slices, dnn);
}

// op(A) (M,K) @ op(B) (K,N) -> C (M,N), row major with leading dimensions
void vlm_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc)
{
    VlmGemm g = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
                 .ldc = ldc, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C};
    vlm_gemm_run(&g);
}

// op(A) (M,K) @ op(B) (K,N) -> C (M,N) = alpha * op(A) op(B) + beta * C
void vlm_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
              const float *A, const float *B, float beta, float *C)
{
    vlm_sgemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
}

/* ------------------------------------------------------------ info */

void vlm_gemm_info(VlmGemmInfo *info)
{
    memset(info, 0, sizeof *info);
    vlm_dnn_info(info);
    const char *core = openblas_get_corename(), *cfg = openblas_get_config();
    snprintf(info->openblas_core, sizeof info->openblas_core, "%s", core ? core : "?");
    snprintf(info->openblas_config, sizeof info->openblas_config, "%s", cfg ? cfg : "?");
}
