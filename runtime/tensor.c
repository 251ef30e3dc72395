/* tensor.c — elementwise kernels with broadcasting views, row sums,
 * log-sum-exp, gathers. Single-threaded loops (products: gemm.c). No allocation: broadcast paths work
 * in fixed-size stack chunks. */
/* The Makefile builds at -O2, where GCC's "very cheap" vectorizer skips
 * any loop that needs a runtime alias check or a remainder loop, i.e.
 * every loop here; O3 for this file turns them into SIMD loops. No
 * trapping math / errno: nothing reads FP exception flags or errno, and
 * without them selects (x > 0 ? a : b) and sqrtf stay branch-free. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include "vlm.h"
#include "fastmath.h"

#include <math.h>
#include <string.h>

/* Non-contiguous rows are processed in chunks of this many elements,
 * materialised on the stack so the arithmetic loop is always contiguous. */
#define CHUNK 256

static bool is_contig(ptrdiff_t rs, ptrdiff_t es, int n)
{
    return es == 1 && rs == n;
}

/* Elements [i0, i0+len) of row r of v as a contiguous pointer: the view
 * itself when es == 1, else copied (or splatted, es == 0) into buf. */
static const float *row_chunk(VlmIn v, int r, int i0, int len, float *buf)
{
    const float *p = v.p + r * v.rs + i0 * v.es;
    if (v.es == 1)
        return p;
    if (v.es == 0) {
        float s = p[0];
        for (int i = 0; i < len; i++)
            buf[i] = s;
    } else {
        for (int i = 0; i < len; i++)
            buf[i] = p[i * v.es];
    }
    return buf;
}

/* d(r, i0..i0+len) += g, reducing over d's broadcast axes: es == 0 sums
 * the chunk into one scalar (in double); rs == 0 makes every row land on
 * the same storage, which sums over rows. */
static void accum_chunk(VlmOut d, int r, int i0, int len, const float *g)
{
    float *p = d.p + r * d.rs + i0 * d.es;
    if (d.es == 1) {
        for (int i = 0; i < len; i++)
            p[i] += g[i];
    } else if (d.es == 0) {
        double s = 0;
        for (int i = 0; i < len; i++)
            s += g[i];
        p[0] += (float)s;
    } else {
        for (int i = 0; i < len; i++)
            p[i * d.es] += g[i];
    }
}

/* ------------------------------------------------------------ unary */


static float softplusf_(float x)
{
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

// x (n) -> y (n) = f(x), y written through a local buffer (see below)
static void fn_chunk(VlmFn f, size_t n, const float *x, float *y)
{
    switch (f) {
    case VLM_FN_EXP:
        for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    case VLM_FN_LOG:
        for (size_t i = 0; i < n; i++) y[i] = logf(x[i]);
        break;
    case VLM_FN_LOG1P:
        for (size_t i = 0; i < n; i++) y[i] = log1pf(x[i]);
        break;
    case VLM_FN_SQRT:
        for (size_t i = 0; i < n; i++) y[i] = sqrtf(x[i]);
        break;
    case VLM_FN_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = sigmoidf_(x[i]);
        break;
    case VLM_FN_SOFTPLUS:
        for (size_t i = 0; i < n; i++) y[i] = softplusf_(x[i]);
        break;
    case VLM_FN_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf_(x[i]);
        break;
    case VLM_FN_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case VLM_FN_ABS:
        for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
        break;
    case VLM_FN_ELU: /* alpha = 1 */
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : expm1f(x[i]);
        break;
    case VLM_FN_NEG:
        for (size_t i = 0; i < n; i++) y[i] = -x[i];
        break;
    case VLM_FN_IDENTITY:
        for (size_t i = 0; i < n; i++) y[i] = x[i];
        break;
    case VLM_FN_SQUARE:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * x[i];
        break;
    }
}

/* y may be x (in place, as the linear layer uses it). A loop reading x
 * and writing y only vectorizes behind a runtime overlap check, which in
 * place fails; a local buffer cannot alias, so fn_chunk is always SIMD. */
// x (n) -> y (n) = f(x)
void vlm_ew_fn_fwd(VlmFn f, size_t n, const float *x, float *y)
{
    float buf[CHUNK];
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t len = n - i0 < CHUNK ? n - i0 : CHUNK;
        fn_chunk(f, len, x + i0, buf);
        memcpy(y + i0, buf, len * sizeof *buf);
    }
}

// dy (n) -> dx (n) += f'(x) * dy; see vlm.h for which of x, y is read
void vlm_ew_fn_bwd(VlmFn f, size_t n, const float *x, const float *y,
                   const float *dy, float *dx)
{
    switch (f) {
    case VLM_FN_EXP: /* d exp = y */
        for (size_t i = 0; i < n; i++) dx[i] += y[i] * dy[i];
        break;
    case VLM_FN_LOG:
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] / x[i];
        break;
    case VLM_FN_LOG1P:
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] / (1.0f + x[i]);
        break;
    case VLM_FN_SQRT: /* 1 / (2 sqrt x) */
        for (size_t i = 0; i < n; i++) dx[i] += 0.5f * dy[i] / y[i];
        break;
    case VLM_FN_SIGMOID:
        for (size_t i = 0; i < n; i++) dx[i] += y[i] * (1.0f - y[i]) * dy[i];
        break;
    case VLM_FN_SOFTPLUS: /* sigmoid(x) */
        for (size_t i = 0; i < n; i++) dx[i] += sigmoidf_(x[i]) * dy[i];
        break;
    case VLM_FN_TANH:
        for (size_t i = 0; i < n; i++) dx[i] += (1.0f - y[i] * y[i]) * dy[i];
        break;
    case VLM_FN_RELU:
        for (size_t i = 0; i < n; i++) {
            float g = dy[i]; /* unconditional load keeps it SIMD */
            dx[i] += x[i] > 0 ? g : 0.0f;
        }
        break;
    case VLM_FN_ABS: /* sign(x), 0 at 0 */
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            dx[i] += x[i] > 0 ? g : x[i] < 0 ? -g : 0.0f;
        }
        break;
    case VLM_FN_ELU: /* y > 0 ? 1 : exp(x) = y + 1 */
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            dx[i] += y[i] > 0 ? g : (y[i] + 1.0f) * g;
        }
        break;
    case VLM_FN_NEG:
        for (size_t i = 0; i < n; i++) dx[i] -= dy[i];
        break;
    case VLM_FN_IDENTITY:
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        break;
    case VLM_FN_SQUARE: /* 2x */
        for (size_t i = 0; i < n; i++) dx[i] += 2.0f * x[i] * dy[i];
        break;
    }
}

// x (n) -> y (n) = x^p
void vlm_ew_pow_fwd(size_t n, float p, const float *x, float *y)
{
    if (p == 2.0f) {
        vlm_ew_fn_fwd(VLM_FN_SQUARE, n, x, y);
        return;
    }
    for (size_t i = 0; i < n; i++)
        y[i] = powf(x[i], p);
}

// dy (n) -> dx (n) += p x^(p-1) dy
void vlm_ew_pow_bwd(size_t n, float p, const float *x, const float *dy, float *dx)
{
    if (p == 0.0f) /* constant 1: no gradient, not even NaN at x = 0 */
        return;
    if (p == 1.0f) {
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    if (p == 2.0f) {
        vlm_ew_fn_bwd(VLM_FN_SQUARE, n, x, NULL, dy, dx);
        return;
    }
    float q = p - 1.0f;
    for (size_t i = 0; i < n; i++)
        dx[i] += p * powf(x[i], q) * dy[i];
}

/* ------------------------------------------------------------ binary */

/* The forward of every binary op has the same shape: one tight loop when
 * a, b and out are all contiguous (R*n elements), else per row in chunks
 * over contiguous (possibly materialised) operands. OP is an expression
 * in x and y. */
#define EW_BINARY_FWD(NAME, OP)                                             \
    void vlm_ew_##NAME##_fwd(int R, int n, VlmIn a, VlmIn b, float *out)    \
    {                                                                       \
        if (is_contig(a.rs, a.es, n) && is_contig(b.rs, b.es, n)) {         \
            size_t N = (size_t)R * (size_t)n;                               \
            const float *pa = a.p, *pb = b.p;                               \
            for (size_t k = 0; k < N; k++) {                                \
                float x = pa[k], y = pb[k];                                 \
                out[k] = (OP);                                              \
            }                                                               \
            return;                                                         \
        }                                                                   \
        float ba[CHUNK], bb[CHUNK];                                         \
        for (int r = 0; r < R; r++)                                         \
            for (int i0 = 0; i0 < n; i0 += CHUNK) {                         \
                int len = n - i0 < CHUNK ? n - i0 : CHUNK;                  \
                const float *pa = row_chunk(a, r, i0, len, ba);             \
                const float *pb = row_chunk(b, r, i0, len, bb);             \
                float *o = out + (size_t)r * n + i0;                        \
                for (int i = 0; i < len; i++) {                             \
                    float x = pa[i], y = pb[i];                             \
                    o[i] = (OP);                                            \
                }                                                           \
            }                                                               \
    }

// a (R,n) view + b (R,n) view -> out (R,n)
EW_BINARY_FWD(add, x + y)
// a (R,n) view - b (R,n) view -> out (R,n)
EW_BINARY_FWD(sub, x - y)
// a (R,n) view * b (R,n) view -> out (R,n)
EW_BINARY_FWD(mul, x * y)
// a (R,n) view / b (R,n) view -> out (R,n)
EW_BINARY_FWD(div, x / y)

/* d += sign * dout, reduced over d's broadcast axes. */
static void accum_scaled(int R, int n, const float *dout, float sign,
                         VlmOut d)
{
    if (!d.p)
        return;
    if (is_contig(d.rs, d.es, n)) {
        size_t N = (size_t)R * (size_t)n;
        for (size_t k = 0; k < N; k++)
            d.p[k] += sign * dout[k];
        return;
    }
    float g[CHUNK];
    for (int r = 0; r < R; r++)
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            int len = n - i0 < CHUNK ? n - i0 : CHUNK;
            const float *dp = dout + (size_t)r * n + i0;
            for (int i = 0; i < len; i++)
                g[i] = sign * dp[i];
            accum_chunk(d, r, i0, len, g);
        }
}

// dout (R,n) -> da += dout, db += dout (reduced over broadcast axes)
void vlm_ew_add_bwd(int R, int n, const float *dout, VlmOut da, VlmOut db)
{
    accum_scaled(R, n, dout, 1.0f, da);
    accum_scaled(R, n, dout, 1.0f, db);
}

// dout (R,n) -> da += dout, db -= dout
void vlm_ew_sub_bwd(int R, int n, const float *dout, VlmOut da, VlmOut db)
{
    accum_scaled(R, n, dout, 1.0f, da);
    accum_scaled(R, n, dout, -1.0f, db);
}

/* Gradient into one operand of mul/div: d += G, G an expression in
 * dy (= dout), x (= a) and y (= b). da and db are done in separate passes,
 * so they may alias (x * x). */
#define EW_GRAD(d, G)                                                       \
    do {                                                                    \
        if (!(d).p)                                                         \
            break;                                                          \
        if (is_contig((d).rs, (d).es, n) && is_contig(a.rs, a.es, n) &&     \
            is_contig(b.rs, b.es, n)) {                                     \
            size_t N = (size_t)R * (size_t)n;                               \
            float *dp = (d).p;                                              \
            for (size_t k = 0; k < N; k++) {                                \
                float x = a.p[k], y = b.p[k], dy = dout[k];                 \
                (void)x; (void)y;                                           \
                dp[k] += (G);                                               \
            }                                                               \
            break;                                                          \
        }                                                                   \
        float ba[CHUNK], bb[CHUNK], g[CHUNK];                               \
        for (int r = 0; r < R; r++)                                         \
            for (int i0 = 0; i0 < n; i0 += CHUNK) {                         \
                int len = n - i0 < CHUNK ? n - i0 : CHUNK;                  \
                const float *pa = row_chunk(a, r, i0, len, ba);             \
                const float *pb = row_chunk(b, r, i0, len, bb);             \
                const float *dp = dout + (size_t)r * n + i0;                \
                for (int i = 0; i < len; i++) {                             \
                    float x = pa[i], y = pb[i], dy = dp[i];                 \
                    (void)x; (void)y;                                       \
                    g[i] = (G);                                             \
                }                                                           \
                accum_chunk((d), r, i0, len, g);                            \
            }                                                               \
    } while (0)

// out = a * b:  da += dout * b,  db += dout * a
void vlm_ew_mul_bwd(int R, int n, VlmIn a, VlmIn b, const float *dout,
                    VlmOut da, VlmOut db)
{
    EW_GRAD(da, dy * y);
    EW_GRAD(db, dy * x);
}

// out = a / b:  da += dout / b,  db -= dout * a / b^2
void vlm_ew_div_bwd(int R, int n, VlmIn a, VlmIn b, const float *dout,
                    VlmOut da, VlmOut db)
{
    EW_GRAD(da, dy / y);
    EW_GRAD(db, -dy * x / (y * y));
}

// a (R,n) view -> out (R,n) contiguous
void vlm_ew_copy_fwd(int R, int n, VlmIn a, float *out)
{
    float buf[CHUNK];
    for (int r = 0; r < R; r++)
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            int len = n - i0 < CHUNK ? n - i0 : CHUNK;
            const float *pa = row_chunk(a, r, i0, len, buf);
            float *o = out + (size_t)r * n + i0;
            for (int i = 0; i < len; i++)
                o[i] = pa[i];
        }
}

// dout (R,n) -> da += dout, reduced over da's broadcast axes
void vlm_ew_copy_bwd(int R, int n, const float *dout, VlmOut da)
{
    accum_scaled(R, n, dout, 1.0f, da);
}

/* ------------------------------------------------------------ reductions */

// x (R,n) -> out (R): out[r] = sum_i x[r,i], accumulated in double
void vlm_sum_rows_fwd(int R, int n, const float *x, float *out)
{
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * n;
        double s = 0;
        for (int i = 0; i < n; i++)
            s += xr[i];
        out[r] = (float)s;
    }
}

// dout (R) -> dx (R,n) += dout[r]
void vlm_sum_rows_bwd(int R, int n, const float *dout, float *dx)
{
    for (int r = 0; r < R; r++) {
        float *d = dx + (size_t)r * n;
        float g = dout[r];
        for (int i = 0; i < n; i++)
            d[i] += g;
    }
}

/* x (G,K) -> out (G) = log sum_k exp x[g,k], softmax (G,K) = exp(x - out).
 * Shifted by the row max m. Rows that are all -inf give out = -inf and a
 * zero softmax (no mass, so no gradient); rows whose max is +inf give +inf
 * with the weight split evenly over the +inf entries; NaN propagates. */
void vlm_logsumexp(int G, int K, const double *x, double *out, double *softmax)
{
    for (int g = 0; g < G; g++) {
        const double *xr = x + (size_t)g * K;
        double *sm = softmax ? softmax + (size_t)g * K : NULL;
        double m = -INFINITY;
        bool nan = false;
        for (int k = 0; k < K; k++) {
            if (isnan(xr[k]))
                nan = true;
            else if (xr[k] > m)
                m = xr[k];
        }
        if (nan) {
            out[g] = NAN;
            if (sm)
                for (int k = 0; k < K; k++) sm[k] = NAN;
            continue;
        }
        if (isinf(m)) {
            out[g] = m;
            if (sm) {
                int cnt = 0;
                for (int k = 0; k < K; k++) cnt += xr[k] == m;
                for (int k = 0; k < K; k++)
                    sm[k] = m > 0 && xr[k] == m ? 1.0 / cnt : 0.0;
            }
            continue;
        }
        /* one exp per entry, exp_nonpos_d (x - m <= 0: no overflow, and
         * far-below-max entries flush to 0 without libm's slow underflow
         * path; 1e-11 relative) */
        double s = 0;
        for (int k = 0; k < K; k++) {
            double e = exp_nonpos_d(xr[k] - m);
            if (sm)
                sm[k] = e;
            s += e;
        }
        out[g] = m + log(s);
        if (sm) {
            double inv = 1.0 / s;
            for (int k = 0; k < K; k++)
                sm[k] *= inv;
        }
    }
}

/* ------------------------------------------------------------ one-hot */

// idx (n) -> out (n,K): out[i,k] = (idx[i] == k); zeros outside [0, K)
void vlm_one_hot_fwd(size_t n, int K, const float *idx, float *out)
{
    memset(out, 0, n * (size_t)K * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        float v = idx[i];
        /* NaN fails both comparisons; a non-integer fails the last */
        if (v >= 0 && v < (float)K && v == floorf(v))
            out[i * (size_t)K + (size_t)v] = 1.0f;
    }
}

/* ------------------------------------------------------------ concat */

// a (R,G,ka) view ++ b (R,G,kb) view -> out (R,G,ka+kb)
void vlm_concat_fwd(int R, int G, int ka, VlmIn a, int kb, VlmIn b, float *out)
{
    size_t k = (size_t)ka + (size_t)kb;
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
            float *o = out + ((size_t)r * G + g) * k;
            const float *pa = a.p + r * a.rs + (ptrdiff_t)g * ka * a.es;
            const float *pb = b.p + r * b.rs + (ptrdiff_t)g * kb * b.es;
            for (int i = 0; i < ka; i++)
                o[i] = pa[i * a.es];
            for (int i = 0; i < kb; i++)
                o[ka + i] = pb[i * b.es];
        }
}

/* d(r, g, 0..k) += dout rows, through d's view (rs == 0 or es == 0 sum) */
static void concat_part_bwd(int R, int G, int k, size_t off, size_t width, const float *dout,
                            VlmOut d)
{
    if (!d.p)
        return;
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
            const float *s = dout + ((size_t)r * G + g) * width + off;
            float *p = d.p + r * d.rs + (ptrdiff_t)g * k * d.es;
            if (d.es == 0) { /* one value repeated along the row */
                double acc = 0;
                for (int i = 0; i < k; i++)
                    acc += s[i];
                p[0] += (float)acc;
            } else {
                for (int i = 0; i < k; i++)
                    p[i * d.es] += s[i];
            }
        }
}

// dout (R,G,ka+kb) -> da += dout[.., :ka], db += dout[.., ka:]
void vlm_concat_bwd(int R, int G, int ka, int kb, const float *dout, VlmOut da, VlmOut db)
{
    size_t width = (size_t)ka + (size_t)kb;
    concat_part_bwd(R, G, ka, 0, width, dout, da);
    concat_part_bwd(R, G, kb, (size_t)ka, width, dout, db);
}

/* ------------------------------------------------------------ gather */

// table (K,n)[idx (R)] -> out (R,n); idx must lie in [0, K)
void vlm_gather_fwd(int R, int n, const float *table, const float *idx,
                    float *out)
{
    for (int r = 0; r < R; r++) {
        const float *src = table + (size_t)idx[r] * n;
        float *dst = out + (size_t)r * n;
        for (int i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

// dout (R,n) -> dtable (K,n)[idx[r]] += dout[r]
void vlm_gather_bwd(int R, int n, const float *idx, const float *dout,
                    float *dtable)
{
    for (int r = 0; r < R; r++) {
        float *dst = dtable + (size_t)idx[r] * n;
        const float *src = dout + (size_t)r * n;
        for (int i = 0; i < n; i++)
            dst[i] += src[i];
    }
}

/* ------------------------------------------------------------ softmax */

// x (rows,K) -> y (rows,K), each row exp(x - max) / sum, in double
void vlm_softmax_fwd(int rows, int K, const float *x, float *y)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * K;
        float *yr = y + (size_t)r * K;
        double mx = -INFINITY, s = 0;
        for (int k = 0; k < K; k++)
            mx = fmax(mx, xr[k]);
        for (int k = 0; k < K; k++)
            s += exp(xr[k] - mx);
        for (int k = 0; k < K; k++)
            yr[k] = (float)(exp(xr[k] - mx) / s);
    }
}

// dx += y * (dy - <dy, y>) per row
void vlm_softmax_bwd(int rows, int K, const float *y, const float *dy, float *dx)
{
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * K, *gr = dy + (size_t)r * K;
        double dot = 0;
        for (int k = 0; k < K; k++)
            dot += (double)gr[k] * yr[k];
        for (int k = 0; k < K; k++)
            dx[(size_t)r * K + k] += (float)(yr[k] * (gr[k] - dot));
    }
}
