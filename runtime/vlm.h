/* vlm.h — the whole public interface of libvlm, the runtime that generated
 * trainers link to: memory, errors, RNG, tensor kernels, distributions,
 * optimizers, data, checkpoints, progress, images and inference drivers.
 * It holds no model-specific code; models reach it through VlmModelDesc. */
#ifndef VLM_H
#define VLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ============================================================ memory */

/* Checked allocation: on failure print "file:line: out of memory (N bytes)"
 * and exit(1). Used everywhere instead of malloc. */
void *vlm_xmalloc_(size_t n, const char *file, int line);
void *vlm_xcalloc_(size_t n, size_t size, const char *file, int line);
void *vlm_xrealloc_(void *p, size_t n, const char *file, int line);
#define vlm_xmalloc(n) vlm_xmalloc_((n), __FILE__, __LINE__)
#define vlm_xcalloc(n, s) vlm_xcalloc_((n), (s), __FILE__, __LINE__)
#define vlm_xrealloc(p, n) vlm_xrealloc_((p), (n), __FILE__, __LINE__)

/* A bump arena sized once at start-up; 64-byte aligned, zeroed blocks. */
typedef struct VlmArena {
    char *base;
    size_t size, used;
} VlmArena;
void vlm_arena_init(VlmArena *a, size_t size);
void *vlm_arena_alloc(VlmArena *a, size_t n); /* exits if the arena is full */
void vlm_arena_reset(VlmArena *a);
void vlm_arena_free(VlmArena *a);

/* ============================================================ errors */

/* Fallible runtime calls return 0 on success and -1 on failure, with a
 * one-line human message in err (no trailing newline). */
typedef struct VlmErr {
    char msg[512];
} VlmErr;
void vlm_err_set(VlmErr *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ============================================================ RNG */

/* Philox4x32-10, counter based. A generator is (seed, stream, counter):
 * streams with different ids are independent; the whole state is the three
 * numbers plus the unread part of the current block, so saving VlmRng and
 * restoring it continues the identical sequence. */
/* Under MPI, a rank's place in the draws of one process (see
 * vlm_rng_normal_fill): each bulk draw of n values for this rank's b items
 * is the slice [lo * n/b, (lo + b) * n/b) of a draw for B items, and the
 * stream ends where that whole draw would leave it. Any other draw on a
 * stream with a shard sets `missed` (the ranks' noise is then not the one
 * process's). */
typedef struct VlmRngShard {
    size_t lo, b, B;
    bool missed;
} VlmRngShard;

typedef struct VlmRng {
    uint64_t seed;
    uint64_t stream;
    uint64_t counter;   /* blocks consumed */
    uint32_t buf[4];
    uint32_t pos;       /* next unread word of buf; 4 = empty */
    VlmRngShard *shard; /* NULL: draws as they come (not saved) */
} VlmRng;

enum { VLM_STREAM_INIT = 1, VLM_STREAM_ORDER = 2, VLM_STREAM_NOISE = 3,
       VLM_STREAM_SAMPLE = 4,
       VLM_STREAM_REFINE = 5, /* the fixed noise of refinement's checks */
       VLM_STREAM_LABELS = 6  /* which items keep their label (--keep-labels) */ };

void vlm_rng_init(VlmRng *r, uint64_t seed, uint64_t stream);
/* The index of the next word of the stream, and a jump to a word. */
uint64_t vlm_rng_tell(const VlmRng *r);
void vlm_rng_seek(VlmRng *r, uint64_t word);
uint32_t vlm_rng_u32(VlmRng *r);
double vlm_rng_uniform(VlmRng *r);            /* in (0, 1), never 0 or 1 */
double vlm_rng_normal(VlmRng *r);             /* standard normal */
void vlm_rng_uniform_fill(VlmRng *r, float *out, size_t n);
void vlm_rng_normal_fill(VlmRng *r, float *out, size_t n);
int vlm_rng_bernoulli(VlmRng *r, double p);
int vlm_rng_categorical(VlmRng *r, const float *probs, int k); /* sums to 1 */
double vlm_rng_gamma(VlmRng *r, double shape); /* rate 1, shape > 0 */
double vlm_rng_beta(VlmRng *r, double a, double b);
long vlm_rng_poisson(VlmRng *r, double rate);
uint64_t vlm_rng_below(VlmRng *r, uint64_t n); /* uniform in [0, n) */
void vlm_rng_shuffle(VlmRng *r, uint32_t *perm, size_t n);

/* ============================================================ threads */

/* A pool for the runtime's own loops and the GEMMs' slices (gemm.c):
 * fn(ctx, lo, hi) runs on fixed slices of [0, n), each at least
 * min_chunk long, as many as threads, claimed by the caller and the free
 * workers; returns when all are done. The slices' bounds depend only on
 * n, min_chunk and the thread count, so a run is reproducible for a
 * given thread count. */
typedef void VlmTaskFn(void *ctx, size_t lo, size_t hi);
void vlm_parallel_set_threads(int threads);
int vlm_parallel_threads(void);
void vlm_parallel_for(size_t n, size_t min_chunk, VlmTaskFn *fn, void *ctx);
/* fn(ctx, lo, hi) in the background, on a worker (or, with one thread,
 * here and now); it must not call vlm_parallel_for. vlm_parallel_wait
 * returns when every task posted is done (running those no worker has
 * taken yet). */
void vlm_parallel_async(VlmTaskFn *fn, void *ctx, size_t lo, size_t hi);
void vlm_parallel_wait(void);
/* timeline.c: with VLM_TIMELINE=FILE, the pool records each slice and
 * task (thread, start, end, function) and the record is written to FILE
 * at exit (bench/timeline.sh reads it) */
bool vlm_timeline_on(void);
void vlm_timeline_add(int thread, char kind, const void *fn, double t0, double t1);

/* ============================================================ tensors */

/* Strided operand views used by every batched kernel. Element i of row r
 * is p[r*rs + i*es]: rs == 0 broadcasts one row over all rows (a global
 * parameter), es == 0 broadcasts one scalar over the row. */
typedef struct VlmIn {
    const float *p;
    ptrdiff_t rs, es;
} VlmIn;
/* Gradient accumulators with the same layout; contributions are added
 * (+=), summed over the broadcast axes. p == NULL means "not needed". */
typedef struct VlmOut {
    float *p;
    ptrdiff_t rs, es;
} VlmOut;

/* Elementwise functions (same codes as the language's builtins). */
typedef enum {
    VLM_FN_EXP, VLM_FN_LOG, VLM_FN_LOG1P, VLM_FN_SQRT, VLM_FN_SIGMOID,
    VLM_FN_SOFTPLUS, VLM_FN_TANH, VLM_FN_RELU, VLM_FN_ABS, VLM_FN_ELU,
    VLM_FN_NEG, VLM_FN_IDENTITY,
    VLM_FN_SQUARE               /* `square(x)` and `pow(x, 2)` */
} VlmFn;

/* y[i] = f(x[i]), i < n (contiguous). */
void vlm_ew_fn_fwd(VlmFn f, size_t n, const float *x, float *y);
/* dx[i] += f'(x[i]) * dy[i]. Each derivative reads only one of x and
 * y = f(x), the cheaper/stabler one; the other may be NULL.
 * From y: exp (y), sqrt (0.5/y), sigmoid (y(1-y)), tanh (1-y^2),
 *         elu (y > 0 ? 1 : y+1; alpha = 1).
 * From x: log (1/x), log1p (1/(1+x)), softplus (sigmoid(x)),
 *         relu (x > 0), abs (sign(x), 0 at 0), square (2x).
 * Neither: neg, identity. */
void vlm_ew_fn_bwd(VlmFn f, size_t n, const float *x, const float *y,
                   const float *dy, float *dx);

/* y[i] = x[i]^p (powf), i < n: `pow(x, p)` with a literal p. An integer p
 * takes any real x (a negative x to an odd power is negative); a
 * non-integer p gives NaN for x < 0 (as the math does), and p < 0 gives
 * Inf at x = 0. */
void vlm_ew_pow_fwd(size_t n, float p, const float *x, float *y);
/* dx[i] += p x[i]^(p-1) dy[i]; p == 0 contributes nothing (also at x = 0,
 * where 0 * 0^-1 would be NaN). Reads x only. */
void vlm_ew_pow_bwd(size_t n, float p, const float *x, const float *dy,
                    float *dx);

/* out (R,n) = a op b with broadcasting through the views; out contiguous. */
void vlm_ew_add_fwd(int R, int n, VlmIn a, VlmIn b, float *out);
void vlm_ew_sub_fwd(int R, int n, VlmIn a, VlmIn b, float *out);
void vlm_ew_mul_fwd(int R, int n, VlmIn a, VlmIn b, float *out);
void vlm_ew_div_fwd(int R, int n, VlmIn a, VlmIn b, float *out);
/* da += d(out)/da * dout, db += ..., reduced over broadcast axes.
 * dout (R,n) contiguous. */
void vlm_ew_add_bwd(int R, int n, const float *dout, VlmOut da, VlmOut db);
void vlm_ew_sub_bwd(int R, int n, const float *dout, VlmOut da, VlmOut db);
void vlm_ew_mul_bwd(int R, int n, VlmIn a, VlmIn b, const float *dout,
                    VlmOut da, VlmOut db);
void vlm_ew_div_bwd(int R, int n, VlmIn a, VlmIn b, const float *dout,
                    VlmOut da, VlmOut db);
/* out (R,n) = a (strided) — materialise a broadcast view; bwd reduces. */
void vlm_ew_copy_fwd(int R, int n, VlmIn a, float *out);
void vlm_ew_copy_bwd(int R, int n, const float *dout, VlmOut da);

/* out[r] = sum_i x[r,i]   x (R,n) contiguous -> out (R) */
void vlm_sum_rows_fwd(int R, int n, const float *x, float *out);
/* dx[r,i] += dout[r] */
void vlm_sum_rows_bwd(int R, int n, const float *dout, float *dx);

/* Log-sum-exp over groups: x (G,K) -> out (G), in double; -inf rows give
 * -inf, never NaN. softmax (G,K) optional (may be NULL): the normalised
 * weights exp(x - out). */
void vlm_logsumexp(int G, int K, const double *x, double *out, double *softmax);

/* Softmax over the last axis: y (rows,K) = exp(x - logsumexp_k x).
 * bwd: dx += y * (dy - sum_k dy*y). Used for `simplex` parameters. */
void vlm_softmax_fwd(int rows, int K, const float *x, float *y);
void vlm_softmax_bwd(int rows, int K, const float *y, const float *dy,
                     float *dx);

/* One-hot codes: idx (n) category indices stored as float -> out (n,K),
 * out[i,k] = 1 if idx[i] == k else 0. An index that is not an integer in
 * [0, K) (e.g. the NaN of a missing entry) gives a row of zeros. There is
 * no backward: the index is discrete, so no gradient flows into it. */
void vlm_one_hot_fwd(size_t n, int K, const float *idx, float *out);

/* Concatenation along the last axis: a (R,G,ka) view ++ b (R,G,kb) view ->
 * out (R,G,ka+kb) contiguous; element (g,i) of a row is p[r*rs + (g*k+i)*es],
 * so a global operand (rs == 0) repeats on every row and es == 0 repeats
 * one value along the row (a scalar operand, k == 1). */
void vlm_concat_fwd(int R, int G, int ka, VlmIn a, int kb, VlmIn b,
                    float *out);
/* da += dout[.., :ka], db += dout[.., ka:], summed over the broadcast axes
 * of each view (rs == 0: over rows). Either may be {NULL}. */
void vlm_concat_bwd(int R, int G, int ka, int kb, const float *dout,
                    VlmOut da, VlmOut db);

/* Gather rows of a table by index: out (R,n) = table (K,n)[idx[r]].
 * idx holds integer values in [0, K) stored as float (not checked). */
void vlm_gather_fwd(int R, int n, const float *table, const float *idx,
                    float *out);
/* dtable[idx[r]] += dout[r] */
void vlm_gather_bwd(int R, int n, const float *idx, const float *dout,
                    float *dtable);

/* Row levels (compiler/vlmc.h VlmcLevel): a value of one level has one
 * row per item (B), per (item, sample) (B*S) or per (item, sample,
 * enumerated value) (R = B*S*E), and the rows of a higher level repeat
 * those of a lower one consecutively, F times each. */

/* Expand G rows of n floats at the front of buf, in place, to G*F rows:
 * row r becomes original row r / F. buf holds G*F*n floats. */
void vlm_rows_repeat(int G, int F, size_t n, float *buf);
/* The same for G doubles (a log-density term per row). */
void vlm_rows_repeat_f64(int G, int F, size_t n, double *buf);
// src (G,n) -> dst (G*F,n), dst row r = src row r / F
void vlm_rows_repeat_copy(int G, int F, size_t n, const float *src,
                          float *dst);
/* Its backward, the segmented sum: dst (G,n) += sum of src's F rows per
 * row, src (G*F,n). */
void vlm_rows_sum(int G, int F, size_t n, const float *src, float *dst);
// src (G*F,n) -> dst (G,n), dst row g = src row g*F (the first copy)
void vlm_rows_pick(int G, int F, size_t n, const float *src, float *dst);
/* The same two as views: the rows copied into dst, or, with F == 1, src
 * itself; the result is read only. */
float *vlm_rows_pick_view(int G, int F, size_t n, const float *src, float *dst);
float *vlm_rows_repeat_view(int G, int F, size_t n, const float *src, float *dst);

/* A discrete observed variable summed out where the data lack it: in
 * every row whose enumerated value (R,n) differs from a given entry of
 * the data obs (R,n) (given: mask NULL or nonzero, and not NaN), its
 * log-density term logp (R) becomes -inf, so the sum over the item's
 * enumeration rows keeps the row of the given value only. */
void vlm_rows_clamp_given(int R, int n, const float *value, const float *obs,
                          const float *mask, double *logp);

/* ============================================================ GEMM */

/* The GEMM boundary (runtime/gemm.c): every single-precision matrix product
 * of the runtime goes through it. It splits a product over vlm's pool into
 * static slices of C, and each slice runs single-threaded on the selected
 * backend: oneDNN's matmul primitive (one per shape, created on first use
 * and kept; runtime/gemm_onednn.c) or OpenBLAS's cblas_sgemm. OpenBLAS's own
 * threads and oneDNN's OpenMP threads never run: the pool is the only one.
 * EM's double-precision products stay on OpenBLAS (infer_em.c). */
typedef enum { VLM_GEMM_ONEDNN = 0, VLM_GEMM_OPENBLAS } VlmGemmBackend;
/* bf16: the nets' linear layers multiply bf16 copies of their inputs and
 * weights, accumulating in fp32 (oneDNN only, on a CPU with bf16 units);
 * everything else stays fp32/double. */
typedef enum { VLM_PREC_F32 = 0, VLM_PREC_BF16 } VlmPrecision;
/* The default: oneDNN (measured faster, docs/performance.md), or $VLM_GEMM. */
#define VLM_GEMM_DEFAULT VLM_GEMM_ONEDNN
/* Select backend and precision for the whole process (from the calling
 * thread, between parallel jobs). Fails with a message naming the missing
 * CPU feature when bf16 is asked where oneDNN reports no bf16 ISA, or when
 * bf16 is asked of OpenBLAS. */
int vlm_gemm_select(VlmGemmBackend b, VlmPrecision p, VlmErr *err);
VlmGemmBackend vlm_gemm_backend(void);
VlmPrecision vlm_gemm_precision(void);
const char *vlm_gemm_backend_name(VlmGemmBackend b);
/* "openblas" / "onednn" -> *b; false for anything else. */
bool vlm_gemm_parse_backend(const char *s, VlmGemmBackend *b);
/* The backend named by $VLM_GEMM, else VLM_GEMM_DEFAULT; -1 with a message
 * when $VLM_GEMM names none. */
int vlm_gemm_env_backend(VlmGemmBackend *b, VlmErr *err);
/* What the machine's GEMMs run on, for `info` and the bench: oneDNN's
 * version, the CPU ISA it dispatches to, the implementation it picks for a
 * 128x784 @ 784x400 product in fp32 and in bf16 ("unavailable" where it has
 * none), whether bf16 is available, and OpenBLAS's core and config. */
typedef struct VlmGemmInfo {
    char onednn_version[32], onednn_isa[48];
    char impl_f32[64], impl_bf16[64];
    bool bf16_ok;
    char openblas_core[32], openblas_config[160];
} VlmGemmInfo;
void vlm_gemm_info(VlmGemmInfo *info);
/* Release the backend's primitives and buffers (at exit; a later product
 * creates them again). */
void vlm_gemm_release(void);

/* No silent slow OpenBLAS (runtime/blas_core.c): the core to set in
 * OPENBLAS_CORETYPE when OpenBLAS chose the generic `core` on a CPU with
 * AVX2+FMA (avx512: AVX512F/BW/VL/DQ): "Haswell" or "SkylakeX"; else NULL.
 * vlm_blas_core_check re-executes the program (execv, /proc/self/exe) with
 * it when OPENBLAS_CORETYPE is unset and VLM_OPENBLAS_REEXEC is not 0;
 * vlm_blas_core_origin says where the core in use came from. */
const char *vlm_blas_core_remedy(const char *core, bool avx2_fma, bool avx512);
void vlm_blas_core_check(char **argv);
const char *vlm_blas_core_origin(char *buf, size_t n);

/* bf16 (the top 16 bits of a float, rounded to nearest even; NaN kept a
 * quiet NaN) and back. */
void vlm_bf16_from_f32(size_t n, const float *x, uint16_t *y);
float vlm_bf16_to_f32(uint16_t h);

/* C (M,N) = alpha * op(A) op(B) + beta * C, row major with leading
 * dimensions, through the boundary above. */
void vlm_sgemm(bool ta, bool tb, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);
/* Plain GEMM wrapper: C (M,N) = alpha * op(A) op(B) + beta * C, row major. */
void vlm_gemm(bool ta, bool tb, int M, int N, int K, float alpha,
              const float *A, const float *B, float beta, float *C);

/* ============================================================ networks */

/* Activation codes for nets (subset of VlmFn). */
typedef enum {
    VLM_ACT_IDENTITY = 0, VLM_ACT_RELU, VLM_ACT_TANH, VLM_ACT_SIGMOID,
    VLM_ACT_SOFTPLUS, VLM_ACT_ELU
} VlmAct;

/* y (R,out) = act(x (R,in) @ W (in,out) + b (out)); b may be NULL. */
void vlm_nn_linear_fwd(int R, int in, int out, const float *x,
                       const float *W, const float *b, VlmAct act, float *y);
/* Given y = the forward output and dy, with the activation's derivative
 * expressed through y: dpre = act'(y) * dy (computed into scratch (R,out),
 * which may alias dy), then dx += dpre @ W^T (dx may be NULL),
 * dW += x^T @ dpre, db += sum_r dpre (db may be NULL). */
void vlm_nn_linear_bwd(int R, int in, int out, const float *x,
                       const float *W, const float *y, const float *dy,
                       VlmAct act, float *scratch, float *dx, float *dW,
                       float *db);
/* Matrix-vector per row: y (R,m) = A (m,n) @ x_r (n), i.e. x @ A^T. */
void vlm_nn_matvec_fwd(int R, int m, int n, const float *A, const float *x,
                       float *y);
/* dx += dy @ A ; dA += dy^T @ x (either may be NULL) */
void vlm_nn_matvec_bwd(int R, int m, int n, const float *A, const float *x,
                       const float *dy, float *dA, float *dx);

/* ============================================================ distributions */

/* Every distribution has the same batched entry points, named
 * vlm_dist_<stem>_<op>, where <stem> is e.g. normal, bernoulli_logits,
 * bernoulli_probs, categorical_logits, categorical_probs, laplace,
 * lognormal, exponential, gamma, beta, uniform, poisson,
 * continuous_bernoulli_logits, continuous_bernoulli_probs.
 *
 * R rows, n independent elements per row, K categories (Categorical: the
 * parameter view addresses element i's category k at p[r*rs + i*es*K + k];
 * K = 1 for every other distribution). th[j] are the parameters in the
 * order of the table in docs/distributions.md (Normal: loc, scale; Gamma:
 * concentration, rate; Beta: alpha, beta; Uniform: low, high; ...).
 * Discrete values are stored as floats holding integers.
 *
 * logp: out[r] = sum_i mask(r,i) * log p(x(r,i) | th(r,i)), accumulated in
 * double. mask.p == NULL means every element is observed. Values outside
 * the support give -inf; invalid parameters (e.g. scale <= 0) give NaN. */
typedef void VlmLogpFn(int R, int n, int K, VlmIn x, const VlmIn *th,
                       VlmIn mask, double *out);
/* Gradients of logp with respect to the value and each parameter, scaled by
 * dout[r] and accumulated (+=) into dx and dth[j] (any p may be NULL). */
typedef void VlmLogpBwdFn(int R, int n, int K, VlmIn x, const VlmIn *th,
                          VlmIn mask, const float *dout, VlmOut dx,
                          const VlmOut *dth);
/* Draw out (R,n) contiguous from the distribution (no gradient). */
typedef void VlmSampleFn(VlmRng *rng, int R, int n, int K, const VlmIn *th,
                         float *out);
/* Reparameterized sampling: eps (R*n) from vlm_dist_<stem>_noise, then
 * out = g(th, eps); rsample_bwd accumulates dth from dout. */
typedef void VlmNoiseFn(VlmRng *rng, size_t n, float *eps);
typedef void VlmRsampleFn(int R, int n, const VlmIn *th, const float *eps,
                          float *out);
typedef void VlmRsampleBwdFn(int R, int n, const VlmIn *th, const float *eps,
                             const float *out, const float *dout,
                             const VlmOut *dth);
/* Mean of the distribution, out (R,n) contiguous (Categorical: the mode). */
typedef void VlmMeanFn(int R, int n, int K, const VlmIn *th, float *out);

#define VLM_DECLARE_DIST(stem)                                   \
    VlmLogpFn vlm_dist_##stem##_logp;                            \
    VlmLogpBwdFn vlm_dist_##stem##_logp_bwd;                     \
    VlmSampleFn vlm_dist_##stem##_sample;                        \
    VlmMeanFn vlm_dist_##stem##_mean;
#define VLM_DECLARE_RSAMPLE(stem)                                \
    VlmNoiseFn vlm_dist_##stem##_noise;                          \
    VlmRsampleFn vlm_dist_##stem##_rsample;                      \
    VlmRsampleBwdFn vlm_dist_##stem##_rsample_bwd;

VLM_DECLARE_DIST(normal)
VLM_DECLARE_DIST(laplace)
VLM_DECLARE_DIST(lognormal)
VLM_DECLARE_DIST(exponential)
VLM_DECLARE_DIST(gamma)
VLM_DECLARE_DIST(beta)
VLM_DECLARE_DIST(uniform)
VLM_DECLARE_DIST(poisson)
VLM_DECLARE_DIST(bernoulli_probs)
VLM_DECLARE_DIST(bernoulli_logits)
VLM_DECLARE_DIST(categorical_probs)
VLM_DECLARE_DIST(categorical_logits)
VLM_DECLARE_DIST(continuous_bernoulli_probs)
VLM_DECLARE_DIST(continuous_bernoulli_logits)
VLM_DECLARE_RSAMPLE(normal)
VLM_DECLARE_RSAMPLE(laplace)
VLM_DECLARE_RSAMPLE(lognormal)
VLM_DECLARE_RSAMPLE(exponential)
VLM_DECLARE_RSAMPLE(uniform)

/* ---- markov.c: a discrete Markov chain z_0..z_{T-1} over K states,
 * p(z) = init[z_0] prod_t trans[z_{t-1}, z_t], with emissions em (T,K):
 * em[t][k] = log p(x_t | z_t = k) (0 for a step whose data are missing).
 * Double, log space; one item per call (infer_markov.c batches them). */
/* init (K), trans (K,K) as probs, or logits normalised per row -> li (K),
 * lA (K,K) log-probabilities. */
void vlm_markov_log_params(int K, bool logits, const float *init,
                           const float *trans, double *li, double *lA);
/* Gradients with respect to the probabilities, dPi (K) and dPA (K,K), into
 * those of the raw parameters (+=; either may be NULL): probs as they are,
 * logits through the log-softmax (d/da_k = g_k - p_k sum_j g_j, g = p dP). */
void vlm_markov_params_bwd(int K, bool logits, const double *li,
                           const double *lA, const double *dPi,
                           const double *dPA, float *dinit, float *dtrans);
/* Forward recursion: alpha (T,K), alpha_t(k) = log p(x_0..t, z_t = k);
 * returns log Z = log p(x_0..T-1), the sum over all K^T paths. O(T K^2). */
double vlm_markov_forward(int T, int K, const double *li, const double *lA,
                          const double *em, double *alpha);
/* Backward recursion: beta (T,K), beta_t(i) = log p(x_t+1..T-1 | z_t = i);
 * work: K doubles. */
void vlm_markov_backward(int T, int K, const double *lA, const double *em,
                         double *beta, double *work);
/* From alpha, beta and log Z: gamma (T,K) = p(z_t = k | x) = d log Z /
 * d em[t][k]; dPi += c d log Z / d init_k = c exp(em_0k + beta_0k - log Z);
 * dPA += c d log Z / d trans_ij = c sum_t exp(alpha_t-1(i) + em_tj +
 * beta_tj - log Z) (dPi, dPA may be NULL). Non-finite log Z: gamma 0. */
void vlm_markov_grad(int T, int K, const double *em, const double *alpha,
                     const double *beta, double logz, double c,
                     double *gamma, double *dPi, double *dPA);
/* The most probable path (T states) and its log joint probability
 * log p(x, z*); delta (T,K) and back (T,K) are work space. Ties go to the
 * smaller state. */
double vlm_markov_viterbi(int T, int K, const double *li, const double *lA,
                          const double *em, double *delta, int *back,
                          int *path);
/* Ancestral sampling (VlmSampleFn): n = T steps per row, th[0] = init (K),
 * th[1] = trans (K,K), probs or logits. */
VlmSampleFn vlm_dist_markov_probs_sample;
VlmSampleFn vlm_dist_markov_logits_sample;
/* Per-step log densities of an emission x (R rows of T steps of n
 * elements) under any distribution's logp: out (T,R), out[t*R + r] = the
 * sum over step t's elements (a view's step t starts t*n elements on;
 * parameters hold K values per element). n_th <= 4. */
void vlm_logp_steps(VlmLogpFn *f, int R, int T, int n, int K, VlmIn x,
                    const VlmIn *th, int n_th, VlmIn mask, double *out);
/* ... and its backward, dout (T,R) the coefficient of each step's term. */
void vlm_logp_steps_bwd(VlmLogpBwdFn *f, int R, int T, int n, int K,
                        VlmIn x, const VlmIn *th, int n_th, VlmIn mask,
                        const float *dout, VlmOut dx, const VlmOut *dth);

/* Closed forms, per row summed over n elements (double):
 * KL(N(lq, sq) || N(lp, sp)) and its gradients; Normal entropy. */
void vlm_dist_normal_kl(int R, int n, VlmIn lq, VlmIn sq, VlmIn lp,
                        VlmIn sp, double *out);
void vlm_dist_normal_kl_bwd(int R, int n, VlmIn lq, VlmIn sq, VlmIn lp,
                            VlmIn sp, const float *dout, VlmOut dlq,
                            VlmOut dsq, VlmOut dlp, VlmOut dsp);
void vlm_dist_normal_entropy(int R, int n, VlmIn scale, double *out);

/* Scalar helpers (numerically stable forms). */
double vlm_log1pexp(double x);   /* softplus */
double vlm_log_sigmoid(double x);
double vlm_digamma(double x);    /* d/dx lgamma(x); NaN at the poles */

/* ============================================================ optimizers */

typedef enum { VLM_OPT_ADAM, VLM_OPT_SGD } VlmOptKind;
typedef enum { VLM_SCHED_CONST, VLM_SCHED_COSINE, VLM_SCHED_STEP } VlmSched;

typedef struct VlmOptim {
    VlmOptKind kind;
    float lr, beta1, beta2, eps, weight_decay, momentum;
    float clip_norm;        /* 0 = no clipping */
    VlmSched sched;
    long total_steps;       /* for cosine */
    long step_every; float step_gamma; /* for step */
    long t;                 /* steps taken (bias correction, schedule) */
} VlmOptim;

void vlm_optim_defaults(VlmOptim *o, VlmOptKind kind, float lr);
/* Learning rate of step t (1-based: o->t after vlm_optim_begin_step).
 * With k = t - 1 steps taken: constant lr; cosine
 * lr (1 + cos(pi min(k, total_steps) / total_steps)) / 2, reaching 0 after
 * total_steps steps; step lr * step_gamma^floor(k / step_every). */
float vlm_optim_lr(const VlmOptim *o, long t);
/* Global L2 norm of g (n) and, when above clip_norm, rescale g in place.
 * Returns the norm before clipping. */
double vlm_optim_clip(float *g, size_t n, float clip_norm);
/* One step over a contiguous block: p -= update(g); m and v are the first
 * and second moment buffers (SGD uses m as momentum; v may be NULL).
 * Increments o->t once per call of vlm_optim_begin_step. */
void vlm_optim_begin_step(VlmOptim *o);
void vlm_optim_update(const VlmOptim *o, float *p, const float *g, float *m,
                      float *v, size_t n);
/* The same step, consuming g: finite blocks are updated and their g
 * zeroed; -1 when some gradient is Inf/NaN (those blocks are left as they
 * were, so the caller can name the parameter). */
int vlm_optim_update_consume(const VlmOptim *o, float *p, float *g, float *m,
                             float *v, size_t n);
/* The same on the calling thread alone (from inside a pool slice). */
int vlm_optim_consume_span(const VlmOptim *o, float *p, float *g, float *m, float *v, size_t n);
/* Lazy update of selected rows of a (rows, width) block: only the rows in
 * idx (count, no duplicates) take a step; used for per-data-point
 * parameters. p, m, v are the whole (rows, width) blocks; g is compact
 * (count, width): g row j is the gradient of row idx[j]. Bias correction
 * uses the global step o->t (as TF's LazyAdam and torch's SparseAdam). */
void vlm_optim_update_rows(const VlmOptim *o, float *p, const float *g,
                           float *m, float *v, size_t width,
                           const uint32_t *idx, size_t count);

/* ============================================================ data */

/* Where one data-bound variable (observed or input) takes its values:
 * columns column .. column + numel of `data`, each item's row. raw: bytes
 * are taken as the integers 0..255 (class ids, labels), not scaled by
 * 1/255 (images); float data read the same either way. */
struct VlmData;
typedef struct VlmBind {
    const struct VlmData *data;
    size_t column;
    bool raw;
} VlmBind;

/* A data set in memory: N items of D values, row major, either as floats
 * (x) or, for uint8 files (IDX, uint8 NPY: nothing can be missing), as
 * bytes x8 standing for x8[i] / 255.0f (a quarter of the memory; x is then
 * NULL), or for x8[i] itself when `raw` (an idx1 label file). Read values
 * through vlm_data_rows; code that rewrites values in place calls
 * vlm_data_floats first. mask (N*D) is NULL when nothing is missing, else
 * 1 = observed, 0 = missing (the value there is 0). labels (N) when the
 * format has them (IDX label file).
 *
 * Several aligned files (`--data x=images --data y=labels`) make one data
 * set too: `parts` own the files (each with n items), `bind` (VLM_MAX_VARS
 * entries, by variable index) says where each data variable reads, and
 * x, x8, mask are NULL (d = 0). Without bind, this one file holds every
 * data variable in consecutive columns, in declaration order: the common
 * case, see vlm_data_bind_of. */
typedef struct VlmData {
    size_t n, d;
    int shape[3]; int rank;   /* per-item shape as stored (IDX: 28x28) */
    float *x;
    uint8_t *x8;              /* the compact form, or NULL */
    bool raw;                 /* x8 holds integer codes, not intensities */
    float *mask;
    int32_t *labels;
    char **colnames;          /* d names from a CSV header line, else NULL */
    struct VlmData *parts;    /* a set of aligned files: n_parts of them */
    int n_parts;
    VlmBind *bind;            /* ... and the variables' places in them */
} VlmData;

/* max_bytes == 0 means this default cap on what a reader allocates. */
#define VLM_DATA_DEFAULT_MAX_BYTES ((size_t)8 << 30)

typedef enum { VLM_FMT_AUTO, VLM_FMT_IDX, VLM_FMT_CSV, VLM_FMT_NPY } VlmFormat;

/* Read a data file. IDX (optionally .gz) uint8 images are scaled to [0,1]
 * (idx1 files are labels: raw integers);
 * CSV: optional header line, empty/NA/NaN fields are missing; NPY: float32,
 * float64 or uint8 (uint8 scaled to [0,1]), C order. Every header and size
 * is validated before allocating (max_bytes caps the allocation). */
int vlm_data_read(const char *path, VlmFormat fmt, size_t max_bytes,
                  VlmData *out, VlmErr *err);
/* Class labels -> labels (n): an idx1 file (uint8), or a one-column CSV
 * of integer class ids 0..VLM_LABEL_MAX (a header line allowed), told
 * apart as data files are. With data->n set, the count must equal it;
 * with data->n = 0 it is set. */
#define VLM_LABEL_MAX 65535
int vlm_data_read_labels(const char *path, VlmData *data, VlmErr *err);
int vlm_data_read_labels_idx(const char *path, VlmData *data, VlmErr *err);
int vlm_data_read_labels_csv(const char *path, VlmData *data, VlmErr *err);
void vlm_data_free(VlmData *d);
// out (n, ncols) = values of items i0..i0+n, columns col0..col0+ncols,
// from either form (bytes convert exactly as the float form was read).
void vlm_data_rows(const VlmData *d, size_t i0, size_t n, size_t col0,
                   size_t ncols, float *out);
/* The same as stored, without the 1/255 of the compact form: value =
 * vlm_data_unit(d) * raw (bytes give the integers 0..255, no division;
 * EM and k-means work in these units and scale their results once). */
void vlm_data_rows_raw(const VlmData *d, size_t i0, size_t n, size_t col0,
                       size_t ncols, float *out);
double vlm_data_unit(const VlmData *d);   /* 1/255 for bytes, else 1 */
/* The float form in place (converts and frees x8 if compact); returns x. */
float *vlm_data_floats(VlmData *d);
/* Write N rows of D floats as CSV (NaN written as "NaN"), atomically. */
int vlm_data_write_csv(const char *path, const char *const *colnames,
                       size_t n, size_t d, const float *x, VlmErr *err);
/* Write float32 NPY, atomically. */
int vlm_data_write_npy(const char *path, size_t n, size_t d, const float *x,
                       VlmErr *err);

/* The per-format readers behind vlm_data_read (fmt already known). */
int vlm_data_read_idx(const char *path, size_t max_bytes, VlmData *out,
                      VlmErr *err);
int vlm_data_read_csv(const char *path, size_t max_bytes, VlmData *out,
                      VlmErr *err);
int vlm_data_read_npy(const char *path, size_t max_bytes, VlmData *out,
                      VlmErr *err);

/* Sequential reader over a plain or gzip file (zlib reads both), used by
 * the binary readers; errors name the path and the byte offset. */
typedef struct VlmReader {
    void *gz;               /* gzFile */
    const char *path;
    uint64_t file_size;     /* bytes on disk */
    bool compressed;
    uint64_t offset;        /* uncompressed bytes consumed */
} VlmReader;
int vlm_reader_open(VlmReader *r, const char *path, VlmErr *err);
/* Up to n bytes; returns the count (0 at end of file) or -1 on error. */
long vlm_reader_read_some(VlmReader *r, void *buf, size_t n, VlmErr *err);
/* Exactly n bytes, else "path: truncated at byte offset X (...)". */
int vlm_reader_read(VlmReader *r, void *buf, size_t n, VlmErr *err);
/* Exactly n bytes into a new buffer. Plain files: n is checked against
 * the bytes left on disk before allocating; gzip files: the buffer grows
 * with the data actually decompressed, so a lying header cannot make it
 * allocate what the file does not hold. */
int vlm_reader_read_alloc(VlmReader *r, size_t n, uint8_t **buf, VlmErr *err);
/* Error unless the file ends here ("trailing data at byte offset X"). */
int vlm_reader_expect_eof(VlmReader *r, VlmErr *err);
int vlm_reader_rewind(VlmReader *r, VlmErr *err);
void vlm_reader_close(VlmReader *r);

/* Atomic file writing (io.c), used by every writer: the content goes to a
 * temp file in the target's directory (mkstemp); commit fsyncs it, renames
 * it over the target and fsyncs the directory. Any failure, or abort,
 * unlinks the temp and leaves the old file untouched. Writes are
 * buffered; after the first failure the others are no-ops and commit
 * reports it. */
typedef struct VlmAtomicFile {
    char *path, *tmp;
    int fd;
    bool created, failed;
    VlmErr err;
    size_t len;
    char buf[1 << 16];
} VlmAtomicFile;
int vlm_atomic_open(VlmAtomicFile *f, const char *path, VlmErr *err);
int vlm_atomic_write(VlmAtomicFile *f, const void *p, size_t n);
int vlm_atomic_printf(VlmAtomicFile *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Commit (rename over the target) or, when anything failed, abort and
 * return -1 with the first error. Frees f's resources either way. */
int vlm_atomic_commit(VlmAtomicFile *f, VlmErr *err);
void vlm_atomic_abort(VlmAtomicFile *f);
/* Whole-buffer convenience: open + write + commit. */
int vlm_atomic_write_file(const char *path, const void *p, size_t n,
                          VlmErr *err);
/* Temporaries are ".NAME.tmp.PID.XXXXXX", flocked by their writer; opening
 * a new one first removes those of this target whose writer is provably
 * gone (no such pid, no flock held, a regular file of this user). */

/* Before any long work: can path be written as an output (its directory
 * exists and takes a new file; with append, an existing file opens for
 * appending)? Creates and removes a temporary, as a writer would. */
int vlm_io_check_writable(const char *path, bool append, VlmErr *err);

/* Advisory lock of an output path for a whole run: an flock on the lock
 * file ".NAME.lock" beside it, which records the holder's pid. A second
 * holder is refused ("PATH is in use: another process (pid N) ..."); a
 * lock file left by a dead process does not block (the kernel released
 * its flock). Unlock removes the lock file. Without flock support on the
 * file system the call succeeds unlocked. */
typedef struct VlmLock {
    int fd;
    char *path;
} VlmLock;
int vlm_io_lock(VlmLock *l, const char *path, VlmErr *err);
void vlm_io_unlock(VlmLock *l);

/* Shuffled minibatches with a resumable cursor: (epoch, pos) plus the
 * order stream's RNG state determine the order exactly. */
typedef struct VlmBatcher {
    size_t n, batch;
    uint32_t *perm;
    size_t pos;        /* next index into perm */
    long epoch;
    VlmRng rng;        /* VLM_STREAM_ORDER */
    bool shuffle;
} VlmBatcher;
void vlm_batcher_init(VlmBatcher *b, size_t n, size_t batch, uint64_t seed,
                      bool shuffle);
/* Next batch indices; returns count (0 at the end of an epoch, after which
 * the next call starts a new, reshuffled epoch). */
size_t vlm_batcher_next(VlmBatcher *b, const uint32_t **idx);
void vlm_batcher_free(VlmBatcher *b);

/* ============================================================ MPI (mpi.c)
 * The communicator layer. A trainer started by mpirun (OMPI_COMM_WORLD_SIZE
 * or PMIX_RANK in the environment) joins MPI_COMM_WORLD; run alone it never
 * calls MPI_Init: rank 0 of 1, and every helper below is a no-op. Only the
 * main thread calls MPI. mpi.h stays out of this header (the generated
 * code does not see it). */
typedef struct VlmComm {
    int rank, size;
    bool active;            /* MPI_Init was called (under a launcher) */
} VlmComm;
/* Joins MPI when a launcher started this process; 0, or -1 with a message
 * when MPI cannot start. Idempotent. */
int vlm_mpi_init(VlmErr *err);
/* rc == 0: MPI_Finalize; rc != 0 with other ranks: MPI_Abort, so that no
 * rank is left waiting in a collective. Returns rc. */
int vlm_mpi_finalize(int rc);
const VlmComm *vlm_comm_world(void);
/* Rank 0 running a command alone (the others left): size 1 from now on,
 * so no helper waits for ranks that are gone. */
void vlm_mpi_go_alone(void);
static inline bool vlm_mpi_parallel(void) { return vlm_comm_world()->size > 1; }
/* Blocking sums, in place, over every rank (double for statistics). */
void vlm_mpi_sum_d(double *x, size_t n);
void vlm_mpi_sum_f(float *x, size_t n);
/* A non-blocking float sum in place (a gradient tensor), completed by
 * vlm_mpi_wait_all; at most VLM_MPI_MAX_PENDING pending. Every rank
 * must start them in the same order. Returns the seconds spent waiting. */
#define VLM_MPI_MAX_PENDING 4096
void vlm_mpi_isum_f(float *x, size_t n);
double vlm_mpi_wait_all(void);
void vlm_mpi_bcast(void *p, size_t bytes, int root);
/* Each rank's block [off[r], off[r] + cnt[r]) of x (elements of elem
 * bytes) lands in rank 0's x: x is the same size on every rank. */
void vlm_mpi_gather_blocks(void *x, size_t elem, const size_t *off,
                           const size_t *cnt);
/* The same for the items [lo, hi) of each rank (vlm_shard_range of n):
 * rank 0's x then holds every item's row, in input order. */
void vlm_mpi_gather_items(void *x, size_t item_bytes, size_t n);
uint64_t vlm_mpi_max_u64(uint64_t v);
/* Whether flag is nonzero on any rank. */
int vlm_mpi_any(int flag);
/* rc combined over the ranks: 0 where every rank's rc is 0, else -1; a
 * rank whose own rc was 0 gets "another rank stopped" in err. */
int vlm_mpi_agree(int rc, VlmErr *err);
/* Every rank must hold the same value (the model hash, the consts, the
 * command): -1 with a message naming the ranks that differ. */
int vlm_mpi_check_same(uint64_t v, const char *what, VlmErr *err);

/* ============================================================ shards (shard.c)
 * Which items a rank computes. A step's global batch (idx, cnt) is cut
 * into `size` contiguous slices in batch order (VLM_SHARD_SLICE), or, for
 * a model with local guide parameters, each item goes to the rank owning
 * it: the fixed block partition of the n items (VLM_SHARD_OWNER). */
typedef enum { VLM_SHARD_SLICE, VLM_SHARD_OWNER } VlmShardKind;
/* The owner of item i of n among size ranks, and rank r's items [lo, hi). */
int vlm_shard_owner(size_t i, size_t n, int size);
void vlm_shard_range(size_t n, int rank, int size, size_t *lo, size_t *hi);
/* This rank's items of the batch into out (at most cnt); returns their
 * count. min_cnt: the least count over all ranks (every rank knows it);
 * counts (size entries) is scratch for the owner partition. */
size_t vlm_shard_batch(VlmShardKind k, const uint32_t *idx, size_t cnt,
                       size_t n, int rank, int size, uint32_t *out,
                       size_t *counts, size_t *min_cnt);

/* ============================================================ checkpoints */

/* Versioned binary checkpoint: magic "VLMCKPT\0", format version, model
 * hash, named tensors with shapes, a free-form metadata block (optimizer
 * state, RNG states, epoch, cursor), CRC32 over everything. */
#define VLM_CKPT_MAX_TENSORS 256
typedef struct VlmCkptTensor {
    char name[64];
    int rank;
    int64_t dims[4];
    float *data;          /* save: caller's; load: allocated by the loader */
    size_t count;
} VlmCkptTensor;

typedef struct VlmCkpt {
    uint64_t model_hash;
    int n_tensors;
    VlmCkptTensor t[VLM_CKPT_MAX_TENSORS];
    uint8_t *meta; size_t meta_len;   /* opaque to the checkpoint layer */
} VlmCkpt;

/* Atomic: temp file in the same directory, fsync, rename, fsync dir. On
 * any failure the previous file at path is untouched. */
int vlm_ckpt_save(const char *path, const VlmCkpt *c, VlmErr *err);
/* Validates everything (magic, version, sizes, CRC) before returning;
 * expected_hash mismatch is an error naming both hashes (expected_hash 0:
 * any model, for reading what a checkpoint says about itself). */
int vlm_ckpt_load(const char *path, uint64_t expected_hash, VlmCkpt *c,
                  VlmErr *err);
void vlm_ckpt_free(VlmCkpt *c);   /* frees what load allocated */
uint32_t vlm_crc32(uint32_t crc, const void *p, size_t n);

/* File layer with failure injection for tests: when the countdown reaches
 * zero the next write/fsync/rename fails (as ENOSPC/EIO). -1 = never.
 * Counted operations: temp-file creation, each write(2), fsync of the
 * file, close, rename, fsync of the directory. vlm_io_ops() counts the
 * operations performed so far (tests use it to size the sweep). */
void vlm_io_fail_after(long n_ops);
long vlm_io_ops(void);

/* ============================================================ progress */

typedef struct VlmProgress {
    FILE *out;
    bool tty;
    const char *label;
    long total, done;
    double t_start, t_last;
    double running;     /* running objective shown on the bar */
} VlmProgress;
double vlm_now(void);   /* monotonic seconds */
void vlm_progress_start(VlmProgress *p, FILE *out, const char *label,
                        long total);
void vlm_progress_update(VlmProgress *p, long done, double objective);
void vlm_progress_finish(VlmProgress *p, const char *summary);

/* Metrics CSV: header written once, then one row per call. */
typedef struct VlmMetrics {
    FILE *f;
    int n_cols;
} VlmMetrics;
int vlm_metrics_open(VlmMetrics *m, const char *path,
                     const char *const *cols, int n_cols, VlmErr *err);
void vlm_metrics_row(VlmMetrics *m, const double *vals);
void vlm_metrics_close(VlmMetrics *m);

/* ============================================================ images */

/* Grid of n grey images of h x w floats in [0,1] (clamped), cols per row,
 * 2-pixel gaps, written as an 8-bit PNG atomically. */
int vlm_png_grid(const char *path, const float *imgs, int n, int h, int w,
                 int cols, VlmErr *err);

/* ============================================================ models and inference */

/* What generated code tells the runtime about a model. Generated trainers
 * contain one VlmModelDesc and call vlm_main(); every inference algorithm
 * (ELBO with reparameterization / enumeration / score function, IWAE,
 * importance sampling, sampling, posterior, imputation) lives in the
 * runtime and sees the model only through this struct and VlmModel.
 *
 * Rows. Every batched buffer has R rows laid out as R = B * S * E:
 * row r belongs to item b = r / (S*E) of the minibatch, importance/MC
 * sample s = (r / E) % S, and enumeration index e = r % E, where E is the
 * joint number of values of the enumerated (summed-out) latents. The
 * driver fills the observed rows (each item's data repeated S*E times) and
 * row_item; the generated code fills everything else. Rows of one (b, s)
 * share the same guide sample (the generated guide draws noise for R/E rows
 * and repeats it). Every per-variable array below (obs, obs_mask, lat,
 * logp_term, obs_mean, ...) is indexed by variable index: latents first,
 * then observed variables, in declaration order. */

/* Inputs (`input u[C];`) are data rows without a density: they follow the
 * n_vars random variables in the variable table (vars[n_vars + i]) and are
 * read into obs[] like observed variables. */
typedef enum { VLM_VAR_LATENT, VLM_VAR_OBSERVED, VLM_VAR_INPUT } VlmVarKind;
typedef enum {   /* same order as the compiler's VlmcTreatment */
    VLM_TREAT_ENUMERATE, VLM_TREAT_REPARAM, VLM_TREAT_SCORE,
    VLM_TREAT_AUTO_GUIDE, VLM_TREAT_NONE /* observed */,
    VLM_TREAT_MARKOV        /* a Markov chain, summed out by the forward
                               algorithm (infer_markov.c) */
} VlmTreat;
typedef enum { VLM_INIT_NORMAL, VLM_INIT_UNIFORM, VLM_INIT_CONST,
               VLM_INIT_FAN_IN, /* uniform(+-1/sqrt(a)), a = the layer's fan-in */
               /* a constrained param's uniform(a, b): the *value* is uniform
                * in [a, b]; what is stored is its preimage */
               VLM_INIT_UNIFORM_LOG,   /* `positive`: log(u), 0 <= a < b */
               VLM_INIT_UNIFORM_LOGIT, /* `unit`: logit(u), 0 <= a < b <= 1 */
} VlmInit;

typedef struct VlmParamInfo {
    const char *name;       /* "mu", "decoder.W0", "enc.b1" */
    int rank;
    long dims[4];
    size_t count;           /* elements */
    size_t offset;          /* in floats, into VlmModel.w (global) or into
                               one row of VlmModel.loc (local) */
    VlmInit init;
    float a, b;             /* init arguments (normal: mean, sd; ...) */
    bool guide;             /* phi (guide) vs theta (model) */
    bool local;             /* per data point: one row of loc per item */
} VlmParamInfo;

typedef struct VlmVarInfo {
    const char *name;
    VlmVarKind kind;
    VlmTreat treat;
    const char *dist;       /* "Normal", "Bernoulli", ...; NULL for inputs */
    bool discrete;          /* inputs: integer-valued (`category(K)`) */
    long numel;             /* elements per item */
    long support;           /* discrete finite support per element (inputs:
                               K of `category(K)`), else 0 */
    int rank;
    long dims[4];
    bool item_rows;         /* a data variable that the generated code reads
                               at each item's first row only (it computes at
                               row levels): vlm_model_fill_batch leaves its
                               other S*E - 1 rows (not its mask's) unfilled */
    bool global;            /* `global latent`: one value for the data set;
                               its log p and log q terms weigh 1/N per item */
} VlmVarInfo;

#define VLM_MAX_VARS 32
#define VLM_MAX_PARAMS 128
#define VLM_MAX_PRIORS 32

typedef struct VlmModel VlmModel;
typedef struct VlmModelDesc VlmModelDesc;

struct VlmModel {
    const VlmModelDesc *desc;
    /* filled by desc->configure from desc->const_values */
    int n_params; VlmParamInfo params[VLM_MAX_PARAMS];
    int n_vars; VlmVarInfo vars[VLM_MAX_VARS];  /* latents, then observed;
                                                   then n_inputs inputs */
    int n_latent, n_observed, n_inputs;
    int n_data, data_var[VLM_MAX_VARS]; /* the data's column blocks: observed
                                           and input variables in declaration
                                           order (vlm_model_init fills it with
                                           the observed ones when configure
                                           leaves it empty) */
    size_t n_w;             /* floats of global parameters */
    size_t local_width;     /* floats of local parameters per item (0: none) */
    long E;                 /* enumeration size of the current batch
                               (1: nothing enumerated): E_max, or E_given
                               in a training batch where every summed
                               observed variable is given */
    long E_max;             /* the model's enumeration size, which sizes
                               the rows (vlm_model_init: configure's E) */
    long E_given;           /* the enumerated latents' alone (configure;
                               0 = E_max): a labelled item's summed variable
                               is clamped, its other values need no rows */
    bool summed_given;      /* this batch's E is E_given: the generated code
                               reads summed variables from the data */
    long n_given_batches;   /* training batches computed at E_given */
    uint64_t hash;          /* model structure + sizes, for checkpoints */
    size_t bytes_per_row;   /* activation memory per row (for planning) */
    size_t bytes_fixed;

    /* parameters: one block; gradients and optimizer moments alongside */
    float *w, *dw, *w_m, *w_v;
    /* per-data-point parameters: local_rows x local_width */
    size_t local_rows;
    float *loc, *dloc, *loc_m, *loc_v;

    /* batch interface, R rows (see above); set by the driver */
    int R, B, S;
    int Rmax;               /* buffers were allocated for this many rows */
    const float *obs[VLM_MAX_VARS];      /* per observed var and input:
                                            R x numel */
    const float *obs_mask[VLM_MAX_VARS]; /* NULL = fully observed */
    uint32_t *row_item;     /* R: data index of each row's item (local) */

    /* outputs of the generated forward passes (allocated by desc->alloc) */
    float *lat[VLM_MAX_VARS];     /* per latent: R x numel values */
    float *dlat[VLM_MAX_VARS];    /* per latent: d logp / d value (continuous) */
    double *logp_term[VLM_MAX_VARS]; /* per variable (latents, then observed):
                                        R, log p(var | parents) */
    double *logq_term[VLM_MAX_VARS]; /* per latent with a guide: R, log q */
    float *obs_mean[VLM_MAX_VARS];   /* per observed: R x numel, E[x | z]
                                        (computed when want_mean) */
    float *q_loc[VLM_MAX_VARS];      /* per guided Normal latent: guide's loc */
    float *q_scale[VLM_MAX_VARS];    /* ... and scale, R x numel */
    bool want_mean;
    bool use_kl;            /* ELBO training: for latents with kl_term, the
                               closed-form KL(q || p) replaces the Monte
                               Carlo log q(z) - log p(z) (their log p and
                               log q terms are then left out, with their
                               gradients); eval always uses Monte Carlo */
    double *kl_term[VLM_MAX_VARS]; /* per latent with a Normal prior free of
                                      other latents and a Normal guide: R,
                                      KL(q || p), at the e = 0 row */
    float *dkl[VLM_MAX_VARS];      /* its coefficient, set by the driver */
    bool replay;            /* guide_fwd keeps the current values of latents
                               it samples without reparameterization (their
                               log q is recomputed at those values) */

    /* upstream gradients, set by the driver before the backward passes
     * (allocated by the driver, like obs, obs_mask and row_item). The
     * coefficient of a (b, s)'s log q sits on its row e = 0; rows e > 0
     * carry 0 (log q is read at e = 0 too: every e row holds the same). */
    float *dlogp;           /* R: coefficient of every log p term */
    bool dw_zero;           /* dw is all zeros (the optimizer consumed it):
                               the next gradient needs no memset */
    /* Called by the generated backward passes (model_bwd, then guide_bwd)
     * once per global parameter, as soon as its gradient is complete and
     * nothing later in the pass reads its value; NULL: not called. The
     * training loop steps the optimizer there, while the gradient and the
     * weights are still in cache. */
    void (*param_ready)(VlmModel *m, int param);
    void *ready_ctx;
    double *scratch;        /* driver's per-batch work space: 8 x Rmax,
                               allocated with the rows (no malloc per batch) */
    float *dlogq[VLM_MAX_VARS]; /* per latent: R, coefficient of its log q */
    float *dlogp_lat[VLM_MAX_VARS]; /* per guided latent: R, coefficient of
                                       its log p term (dlogp times the KL
                                       weight; the generated code reads it
                                       for that term instead of dlogp) */

    VlmRng rng;             /* VLM_STREAM_NOISE: guide noise and samples */

    /* Terms counted once per data set (global latents' log p and log q,
     * params' priors): the per-item objective weighs them 1/n_items, so
     * the mean over a minibatch of B items is unbiased for ELBO / N. */
    size_t n_items;         /* N of the data set being processed (set by
                               vlm_model_fill_batch from its data) */
    int n_priors;           /* params with a prior (`param w ~ Dist`) */
    int prior_param[VLM_MAX_PRIORS];    /* ... their indices in params */
    double *prior_term[VLM_MAX_PRIORS]; /* R: log p(w) of each, repeated */
    float *dprior;          /* R: coefficient of the prior terms (driver) */
    bool predictive;        /* forward leaves the once-per-data-set terms
                               out of the log weights (eval's posterior
                               predictive: w is drawn from q(w)) */
    double global_term;     /* last forward: the sum of those terms (log p
                               - log q of global latents, log priors) */
    /* A Markov chain `z[T] ~ Markov(init, trans)` (markov_var >= 0; -1:
     * none). Its K states are the enumeration's rows: row e holds z with
     * every step in state e (so E = K: the chain is the only enumerated
     * variable). Its emissions (markov_emit: the observed variables that
     * read it) write their log densities per step, logp_step[v] (T x R,
     * step-major: [t*R + r]), instead of logp_term; the driver combines
     * them with init and trans by the forward algorithm (infer_markov.c)
     * and hands back per-step coefficients dlogp_step[v] (T x R, the
     * posterior marginals times the item's weight) and dmarkov_init/trans.
     * The chain's own logp_term and its emissions' stay 0. */
    int markov_var;
    long markov_T, markov_K;
    bool markov_logits;     /* Markov(init_logits, trans_logits) */
    int n_markov_emit, markov_emit[VLM_MAX_VARS];
    double *logp_step[VLM_MAX_VARS];
    float *dlogp_step[VLM_MAX_VARS];
    float *markov_init, *markov_trans;   /* K, K*K: written by model_fwd */
    float *dmarkov_init, *dmarkov_trans; /* K, K*K: set by the driver */
    double *markov_work;    /* the driver's work space for one item */
};

/* A mixture of diagonal Gaussians the compiler recognised as conjugate
 * (compiler/conjugate.c): train fits it by EM with a closed-form M-step
 * (infer_em.c). Indices into VlmModel.vars and VlmModel.params; K and D
 * come from the parameter shapes at run time (consts may be --set). */
typedef enum {   /* how the raw scale param holds the component scales */
    VLM_MIX_LOG_SD,   /* raw = log sd:  exp(t[z]); t[z] with t positive */
    VLM_MIX_LOG_VAR,  /* raw = log var: sqrt(t[z]) with t positive;
                         exp(0.5 * t[z]); sqrt(exp(t[z])) */
} VlmMixScale;
typedef struct VlmMixtureInfo {
    int latent, observed;   /* z ~ Categorical, x ~ Normal(mu[z], scale) */
    int weights;            /* logits (K); simplex probs are stored as
                               logits too: raw = log pi up to a constant */
    int mu, scale;          /* (K, D) */
    VlmMixScale scale_kind;
} VlmMixtureInfo;

struct VlmModelDesc {
    const char *name;             /* model name (file stem) */
    const char *source;           /* the .vlm text, for `info` */
    const char *plan;             /* vlmc --plan text, for `info` */
    int n_consts;
    const char *const *const_names;
    long *const_values;           /* defaults; --set overwrites */
    bool has_guide_local;
    /* Fill the tables of m from the const values; -1 with a message when
     * the sizes are invalid (non-positive, too large). */
    int (*configure)(VlmModel *m, VlmErr *err);
    /* Allocate every activation buffer for up to Rmax rows. */
    void (*alloc)(VlmModel *m, int Rmax);
    void (*release)(VlmModel *m);
    /* Guide: sample every guided latent into m->lat and compute
     * m->logq_term (and q_loc/q_scale). No-op when nothing is guided. */
    void (*guide_fwd)(VlmModel *m);
    /* Model: set enumerated latents, compute m->logp_term for every
     * variable (and obs_mean when want_mean). */
    void (*model_fwd)(VlmModel *m);
    /* Zero m->dlat, then accumulate dw (theta part) and dlat from
     * dlogp (every logp term weighted by dlogp[r]). Call after model_fwd. */
    void (*model_bwd)(VlmModel *m);
    /* Accumulate dw (phi part) and dloc from dlogq[j] (weight of latent j's
     * log q term) and from m->dlat flowing through reparameterized samples.
     * Call after model_bwd. */
    void (*guide_bwd)(VlmModel *m);
    /* Ancestral sampling from the model into lat / a copy of obs values
     * (obs_sample) and obs_mean: R rows. obs_sample[v] is indexed like obs
     * (by variable), R x numel floats, allocated by the driver. */
    void (*sample)(VlmModel *m, float **obs_sample);
    /* Set when the model is a conjugate Gaussian mixture (EM), else NULL. */
    const VlmMixtureInfo *mixture;
};

/* The generated main: parses argv, runs the command (train, eval, sample,
 * posterior, impute, info). Returns the process exit code. */
int vlm_main(const VlmModelDesc *desc, int argc, char **argv);

/* `./model gradcheck`: the generated backward passes against central
 * finite differences of the generated forward passes, on synthetic data;
 * prints one line per bad coordinate and a summary; 0 when all agree. */
int vlm_gradcheck(const VlmModelDesc *desc, uint64_t seed, FILE *out);

/* ---- the generic drivers behind vlm_main (model.c, infer.c, train.c) */

/* Configure m from desc->const_values and allocate the parameter block
 * (w, dw, w_m, w_v: one allocation). Rows and locals come later. */
int vlm_model_init(VlmModel *m, const VlmModelDesc *desc, VlmErr *err);
/* desc->alloc(Rmax) plus the driver's buffers (obs, obs_mask, row_item,
 * dlogp, dlogq); frees any previous row buffers first. */
void vlm_model_alloc_rows(VlmModel *m, int Rmax);
/* Local table of rows x local_width (loc, dloc, loc_m, loc_v), zeroed. */
void vlm_model_alloc_local(VlmModel *m, size_t rows);
/* Draw every parameter (global and local) from its VlmInit, from the
 * VLM_STREAM_INIT stream of seed; zero moments and gradients. Local params
 * only: vlm_model_init_local. */
void vlm_model_init_params(VlmModel *m, uint64_t seed);
void vlm_model_init_local(VlmModel *m, uint64_t seed);
void vlm_model_free(VlmModel *m);
/* Error unless data width == the data variables' elements (observed and
 * inputs); the message names the variables and the const to --set. */
int vlm_model_check_data(const VlmModel *m, const VlmData *d,
                         const char *path, VlmErr *err);
/* Set R = B*S*E and fill obs / obs_mask / row_item for items idx[0..B),
 * with E = E_max. */
void vlm_model_fill_batch(VlmModel *m, const VlmData *d, const uint32_t *idx,
                          int B, int S);
/* The same for a training step: when every item of the batch has every
 * summed observed variable given (M2's labelled items), E = E_given and
 * summed_given is set: the rows of the values the data exclude (each
 * clamped to -inf otherwise) are not computed at all. */
void vlm_model_fill_training_batch(VlmModel *m, const VlmData *d,
                                   const uint32_t *idx, int B, int S);
/* For sampling: R = B rows, one per item, of the inputs only. */
void vlm_model_fill_inputs(VlmModel *m, const VlmData *d, const uint32_t *idx,
                           int B);

/* ---- bind.c: which file and columns each data variable reads */

/* Whether variable v reads integers (Categorical and Poisson observed
 * variables, `category` inputs): its bytes are then raw, never / 255. */
bool vlm_var_integer(const VlmModel *m, int v);
/* Where data variable v reads in d: d->bind[v] for a set of files; for a
 * single file its block of the consecutive columns in declaration order,
 * raw for an integer variable or a raw file. */
VlmBind vlm_data_bind_of(const VlmModel *m, const VlmData *d, int v);
/* Make a data set of n files read for m's data variables (the files are
 * moved into *out, or freed on error). names[k] is the variable file k
 * holds, or NULL for at most one unnamed file that holds every variable
 * not named, in declaration order (alone: the plain single-file case,
 * returned as it was read). With inputs_only (sampling) the variables are
 * the inputs, and an unnamed file holds just them or every data variable.
 * Errors: an unknown or twice-bound name, a variable bound to no file,
 * a width that is not the variable's, files with different numbers of
 * items, NaN in an input, a `category(K)` input value that is not an
 * integer in 0..K-1 (row and column named). */
int vlm_data_bind(const VlmModel *m, VlmData *files, const char *const *names,
                  const char *const *paths, int n, bool inputs_only,
                  VlmData *out, VlmErr *err);
/* The values of d against m (the plain file: paths[0]; a set: one path
 * per part): every input given (no NaN) and a `category(K)` input in
 * 0..K-1 (errors name the row and column), the given values of a variable
 * summed out where missing among its values. vlm_model_check_data and
 * vlm_data_bind call it. */
int vlm_data_check_values(const VlmModel *m, const VlmData *d,
                          const char *const *paths, VlmErr *err);
/* Keep the first n items (every part of a set). */
void vlm_data_limit(VlmData *d, size_t n);

/* labels.c: hiding the values of observed variable v in data d (through
 * the mask of the file it reads; the model then sums them out). */
/* Every item's value (hide NULL), or those of the items with hide[i]. */
void vlm_data_hide(const VlmModel *m, VlmData *d, int v, const bool *hide);
/* Whether item i gives v's (first) value. */
bool vlm_data_given(const VlmModel *m, const VlmData *d, int v, size_t i);
/* Keep the value of v, a partly observed class, in per_class items of each
 * class (the first in an order shuffled from seed), hide the rest; *kept:
 * the items that keep theirs. -1 with err when v is not such a class. */
int vlm_data_keep_per_class(const VlmModel *m, VlmData *d, int v, long per_class,
                            uint64_t seed, size_t *kept, VlmErr *err);
/* Keep only the items where v is given, in order; returns their count. */
size_t vlm_data_keep_given(const VlmModel *m, VlmData *d, int v);
/* One float file in the plain layout (every data variable in consecutive
 * columns, declaration order) holding the values each variable reads. */
void vlm_data_merge(const VlmModel *m, const VlmData *d, VlmData *out);

typedef enum { VLM_OBJ_ELBO, VLM_OBJ_IWAE } VlmObjective;

/* Estimator state carried across steps (saved in checkpoints). */
typedef struct VlmInfer {
    VlmObjective objective;
    double baseline;        /* moving average of the learning signal */
    bool baseline_set;
    double decay;           /* 0.9 */
    double aux_weight;      /* semi-supervised M2: weight of log q(y | x) in
                               the rows where y is given (eq. 9's alpha per
                               labelled item); set by training, 0 else */
    double kl_weight;       /* the guided latents' terms log p(z) - log q(z)
                               (or the closed-form KL) weigh this much in the
                               training objective (beta-VAE, KL warm-up); 1:
                               the ELBO. Not in checkpoints: set per step */
} VlmInfer;
void vlm_infer_init(VlmInfer *st, VlmObjective obj);
/* The observed variable summed out where missing that the guide gives a
 * distribution q(y | x) (semi-supervised M2; needs the rows allocated),
 * or -1. Training then weighs its values by q(y | x) where it is missing
 * and adds aux_weight x log q(y | x) where it is given. */
int vlm_infer_guided_summed(const VlmModel *m);

/* One minibatch (after fill_batch): guide and model forward, the
 * per-(b,s) log weights logw (B*S, may be NULL), and the per-item
 * objective summed over the B items into *obj_sum. Errors name the term
 * that is NaN/Inf. */
int vlm_infer_forward(VlmModel *m, double *logw, double *obj_sum,
                      VlmObjective obj, VlmErr *err);
/* Forward, then the gradient of loss = -mean_b objective_b: sets dlogp,
 * dlogq, zeroes dw and the batch's dloc rows, runs model_bwd, guide_bwd. */
int vlm_infer_grad(VlmModel *m, VlmInfer *st, double *obj_sum, VlmErr *err);

/* Per-item summary of K log importance weights. */
typedef struct VlmItemStats {
    double elbo;       /* mean_k logw */
    double iwae;       /* logsumexp_k logw - log K = IS estimate of log p(x) */
    double se;         /* delta-method SE of iwae: sd(w) / mean(w) / sqrt(K);
                          NaN for K = 1 (not available) */
    double ess;        /* (sum w)^2 / sum w^2 */
    double khat;       /* Pareto k-hat of the weights (psis.c); NaN: not
                          available (K < 21, or tied largest weights) */
} VlmItemStats;
/* work: vlm_psis_work(K) doubles, or NULL (allocated inside). */
void vlm_infer_stats(int K, const double *logw, double *work,
                     VlmItemStats *out);
/* The weight of variable v's terms in the per-item objective: 1/N for a
 * global latent (counted once per data set), else 1. */
double vlm_infer_term_scale(const VlmModel *m, int v);
/* Whether the model has a global latent (eval then draws one w per pass). */
bool vlm_model_has_global(const VlmModel *m);
/* True when no latent has a guide (each is enumerated or a Markov chain):
 * log p(x) is computed exactly. */
bool vlm_model_exact(const VlmModel *m);
/* Statistics of every item of d (stats: d->n) from K importance samples
 * each (an exact model takes one pass: iwae = elbo = log p(x), se = 0),
 * in chunks of at most m->Rmax rows (needs Rmax >= E). */
int vlm_infer_eval_data(VlmModel *m, const VlmData *d, int K,
                        VlmItemStats *stats, VlmErr *err);

/* Row weights for posterior summaries: forward, then wrow (R) = the
 * self-normalised importance weight of each row within its item,
 * exp(lp_r - lq_bs) / sum over the item's S*E rows; stats (B, may be
 * NULL): each item's statistics of its S log weights (k-hat, ESS, ...). */
int vlm_infer_row_weights(VlmModel *m, double *wrow, VlmItemStats *stats,
                          VlmErr *err);

/* ---- infer_markov.c: a model's Markov chain (VlmModel.markov_var) */
/* Doubles of VlmModel.markov_work (allocated with the rows). */
size_t vlm_markov_work_size(const VlmModel *m);
/* After model_fwd: L[bs] = lp[bs * E] (the terms that do not read the
 * chain, equal in its K rows) + log Z_bs by the forward algorithm. */
void vlm_infer_markov_reduce(VlmModel *m, const double *lp, double *L);
/* Gradient of loss = -sum_bs c[bs] log Z_bs (c: B*S weights): sets
 * dlogp_step (-c_bs times the posterior marginals) and dmarkov_init /
 * dmarkov_trans (expected counts, through the logits for that form). */
void vlm_infer_markov_grad(VlmModel *m, const double *c);
/* One (b, s) after model_fwd: gamma (T,K) = p(z_t = k | x) and, with
 * path, the Viterbi path (T; back: T*K ints of work). Returns log Z. */
double vlm_infer_markov_item(VlmModel *m, int bs, double *gamma, int *path,
                             int *back);

/* ---- psis.c: the Pareto k-hat diagnostic of importance weights */
/* Tail length: ceil(min(0.2 S, 3 sqrt(S))) (loo's, r_eff = 1). */
int vlm_psis_tail_len(int S);
/* Doubles of work space vlm_psis_khat needs for S weights. */
size_t vlm_psis_work(int S);
/* Generalized Pareto fit (Zhang & Stephens, as R loo's gpdfit with its
 * weakly informative prior) to n positive values x in ascending order;
 * k > 0 is a heavy tail; k = NaN when the fit has no tail to work on.
 * work: 2 * (30 + sqrt(n)) doubles. */
void vlm_gpd_fit(int n, const double *x, double *k, double *sigma,
                 double *work);
/* k-hat of S log weights (any scale: shifted by their maximum inside);
 * NaN when S < 21 (fewer than 5 tail samples) or the tail is tied. */
double vlm_psis_khat(int S, const double *logw, double *work);

/* ---- evidence.c: the evaluation report */
typedef struct VlmEvidence {
    size_t n;               /* items */
    int K;                  /* importance samples per item */
    bool exact;             /* log p(x) computed exactly (no guide) */
    bool local;             /* the guide has local (refined) parameters */
    double elbo, iwae;      /* means per item */
    double se;              /* SE of the mean iwae: sqrt(sum se_i^2) / n;
                               NaN when K = 1 */
    double sd_items;        /* sd of iwae over items */
    double bias;            /* the delta method's estimate of log-mean-exp's
                               downward bias of the mean: sum se_i^2 / 2n */
    double ess_mean, ess_min;
    size_t ess_below2;      /* items with ESS < 2 */
    size_t khat_n;          /* items with a k-hat */
    size_t khat_bad;        /* ... above 0.7 */
    size_t khat_tied;       /* items whose k-hat is NaN with K >= 21 */
    double khat_max;
    bool unreliable;        /* k-hat > 0.7 on > 1% of items or any ESS < 2 */
    bool global;            /* the model has global latents: the IS
                               estimate is the posterior predictive
                               log p(x | training data) under q(w), and the
                               ELBO holds the global terms' 1/N share (set
                               by the caller after summarize) */
    bool priors;            /* params have priors: the ELBO holds 1/N of
                               their log density, log p(x) is given them */
} VlmEvidence;
void vlm_evidence_summarize(size_t n, const VlmItemStats *st, int K,
                            bool exact, bool local, VlmEvidence *ev);
/* eval's report: ELBO, IWAE_K, log p(x) (IS) +- SE, ESS, k-hat and, when
 * unreliable, a warning that says what helps. */
void vlm_evidence_print(FILE *out, const VlmEvidence *ev,
                        const char *data_name);
/* One line for commands that weigh samples (posterior, impute): k-hat and
 * ESS of the weights, and the warning when unreliable. */
void vlm_evidence_line(FILE *out, const VlmEvidence *ev, const char *cmd);

/* ---- infer_em.c: EM for desc->mixture models (see the file's header) */
typedef struct VlmEm {
    const VlmMixtureInfo *mi;
    int K, D;
    double reg_covar;       /* added to every variance (floor) */
    double *logpi;          /* K: the parameters, in double */
    double *mu, *var;       /* (K, D) */
    /* sufficient statistics of the last E-step with stats */
    double n;               /* items */
    bool masked;            /* the data had missing entries */
    double *Nk;             /* K: sum_i r_ik */
    double *T;              /* (K, P): [S1, S2 (, N_kd)], P = 2D (3D masked),
                               S1, S2 of the raw values (vlm_data_rows_raw) */
    double unit;            /* x = unit * raw for those statistics */
    /* A pass in float kernels (default) or double GEMMs: the float path
     * sums within blocks of 2048 items in float (~1e-6 relative) and
     * across blocks in double, in block order whatever --threads. Tests
     * of exact monotonicity set fp32 = false. */
    bool fp32;
    /* scratch for one chunk of items (the double path) */
    double *W, *A, *L, *resp, *ll;
} VlmEm;
/* Sizes from m's tables and the current parameters (vlm_em_from_params);
 * -1 when desc->mixture is NULL. */
int vlm_em_init(VlmEm *em, const VlmModel *m, double reg_covar, VlmErr *err);
void vlm_em_free(VlmEm *em);
void vlm_em_from_params(VlmEm *em, const VlmModel *m);
/* Write logits = log pi, mu and the raw scale (log sd or log var) into
 * m->w, in the model's parameterisation. */
void vlm_em_to_params(const VlmEm *em, VlmModel *m);
/* Mean log p(x) per item of data under em's parameters (exact, double);
 * with stats, also the sufficient statistics for vlm_em_mstep. */
double vlm_em_estep(VlmEm *em, const VlmData *data, bool stats);
/* Closed-form M-step from the statistics of the last E-step. */
void vlm_em_mstep(VlmEm *em);
/* A component collapsed onto (nearly) a single value in some dimension:
 * var_kd <= 1e-9 (mu_kd^2 + var_kd), where the likelihood grows without
 * bound and float arithmetic no longer resolves the density (with
 * reg_covar 0: a component owning one point, or a constant dimension).
 * Returns 1 and the worst (k, d), else 0. */
int vlm_em_collapsed(const VlmEm *em, int *k, int *d);
/* k-means++ (seeded) and at most `iters` Lloyd iterations; the clusters'
 * weights, means and variances become em's parameters. Returns the Lloyd
 * iterations run. */
int vlm_em_init_kmeans(VlmEm *em, const VlmData *data, uint64_t seed,
                        int iters);
/* The k-means under it: label (n) each item's cluster for the final
 * centers C (K, D), in the data's units (missing entries count as 0).
 * Returns the Lloyd iterations run. */
int vlm_kmeans(const VlmData *data, int K, uint64_t seed, int iters,
               int *label, float *C);

/* ---- train.c */
typedef struct VlmTrainOpts {
    const char *data_path, *test_path, *save, *load, *log;
    long epochs, every;
    int batch, samples;
    float lr, clip;
    VlmOptKind optimizer;
    VlmSched sched;
    VlmObjective objective;
    uint64_t seed;
    /* which of these were given on the command line (a resumed run keeps
     * the checkpoint's value for the others) */
    bool has_batch, has_lr, has_optimizer, has_samples, has_objective,
         has_clip, has_sched;
    /* EM (desc->mixture models, unless --optimizer is given): at most
     * `epochs` iterations (100 when has_epochs is false), stop when the
     * mean log-likelihood changes less than tol; reg_covar is added to
     * every variance; kmeans_iters Lloyd iterations initialise it. */
    bool has_epochs;
    double tol, reg_covar;
    int kmeans_iters;
    /* semi-supervised M2 (a guide for a partly observed variable): the
     * weight of log q(y | x) per labelled item; default (has_aux_weight
     * false) the paper's alpha = 0.1 N over the N_l labelled items */
    bool has_aux_weight;
    double aux_weight;
    /* the guided latents' terms weigh kl_weight (has_kl_weight false: 1,
     * the ELBO), ramped linearly from 0 over the first kl_warmup epochs
     * (0: no ramp) */
    bool has_kl_weight;
    double kl_weight, kl_warmup;
} VlmTrainOpts;
/* Train on data (test: may be NULL); prints progress to stderr and the
 * per-epoch summary to stdout. -1 with err on failure (NaN/Inf objective:
 * the message names the term; nothing is saved). */
int vlm_train(VlmModel *m, const VlmData *data, const VlmData *test,
              const VlmTrainOpts *o, VlmErr *err);
/* Parameters (and the local table, when its rows match) from a
 * checkpoint of this model; *loc_loaded tells whether it did. */
int vlm_model_load(VlmModel *m, const char *path, bool *loc_loaded,
                   VlmErr *err);
/* Local (per-item) guide parameters fitted to d with theta frozen: Adam on
 * the ELBO, every item one step per iteration, until the mean ELBO over
 * the items (measured every `window` steps with fixed noise) rises by less
 * than tol * |ELBO| over a window, or max_steps (see train.c). */
typedef struct VlmRefineOpts {
    int max_steps;          /* the cap (--refine N; default 5000) */
    double tol;             /* relative rise per window (--refine-tol; 1e-4) */
    int window;             /* steps between checks (25) */
    int batch;              /* items per forward (64) */
    float lr;               /* Adam's learning rate (--refine-lr; 5e-2) */
    int check_samples;      /* samples per item of each check (4) */
    int lr_levels;          /* learning rates lr, lr/4, lr/16, ...: each
                               until the ELBO stops improving (3) */
    FILE *progress;         /* progress and the summary line; NULL: quiet */
} VlmRefineOpts;
typedef struct VlmRefineResult {
    int steps;              /* steps every item took */
    double elbo_start, elbo_end;   /* mean ELBO per item (fixed noise) */
    bool converged;         /* stopped by tol, not by max_steps */
} VlmRefineResult;
void vlm_refine_defaults(VlmRefineOpts *o);
/* res may be NULL; prints "refine: N steps, ELBO a -> b" to o->progress. */
int vlm_train_refine(VlmModel *m, const VlmData *d, const VlmRefineOpts *o,
                     VlmRefineResult *res, VlmErr *err);

#endif
