/* dist_common.h — private helpers shared by runtime/dist_*.c: strided view
 * access and the generic batched loops that turn a per-element density
 * (with its gradient) into the logp / logp_bwd / sample / rsample entry
 * points of vlm.h. Not part of the public API; nothing here is exported.
 *
 * Per-element work is done in double: the view values are widened, the
 * density and its gradient computed, and only gradients narrowed back. */
#ifndef VLM_DIST_COMMON_H
#define VLM_DIST_COMMON_H

#include "vlm.h"

#include <math.h>

#define LOG_SQRT_2PI 0.91893853320467274178 /* log(sqrt(2 pi)) */

/* Most parameters any scalar (K = 1) distribution has. */
#define DIST_MAX_PARAMS 2

static inline double vin_at(VlmIn v, int r, int i)
{
    return v.p[(ptrdiff_t)r * v.rs + (ptrdiff_t)i * v.es];
}

static inline void vout_add(VlmOut o, int r, int i, double g)
{
    if (o.p)
        o.p[(ptrdiff_t)r * o.rs + (ptrdiff_t)i * o.es] += (float)g;
}

static inline double mask_at(VlmIn m, int r, int i)
{
    return m.p ? vin_at(m, r, i) : 1.0;
}

static inline VlmOut dth_get(const VlmOut *dth, int j)
{
    VlmOut none = {0};
    return dth ? dth[j] : none;
}

/* x log y with 0 log y = 0 (also for y = 0), as a density needs it. */
static inline double xlogy(double x, double y)
{
    return x == 0 ? 0.0 : x * log(y);
}

/* 1 / (1 + exp(-l)) without overflow for either sign of l. */
static inline double sigmoid(double l)
{
    if (l >= 0)
        return 1.0 / (1.0 + exp(-l));
    double e = exp(l);
    return e / (1.0 + e);
}

/* A per-element log-density: log p(x | th[0..np-1]). When g is not NULL
 * it also stores d/dx in g[0] and d/dth[j] in g[1 + j]; g is only read by
 * the caller when the returned value is finite. */
typedef double DistElemFn(double x, const double *th, double *g);

/* out[r] = sum_i mask * f(x, th) in double; masked-out elements (mask 0)
 * are skipped, so an out-of-support value there cannot produce NaN. */
static inline void dist_logp_loop(int r0, int R, int n, int np, VlmIn x,
                                  const VlmIn *th, VlmIn mask, double *out,
                                  DistElemFn *f)
{
    for (int r = r0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            double t[DIST_MAX_PARAMS];
            for (int j = 0; j < np; j++)
                t[j] = vin_at(th[j], r, i);
            s += m * f(vin_at(x, r, i), t, NULL);
        }
        out[r] = s;
    }
}

/* Accumulate dout[r] * mask * grad into dx and dth[j]. Elements whose log
 * density is not finite (out of support, +inf spikes, NaN parameters)
 * contribute no gradient. value_grad = false for discrete values. */
static inline void dist_logp_bwd_loop(int r0, int R, int n, int np, VlmIn x,
                                      const VlmIn *th, VlmIn mask,
                                      const float *dout, VlmOut dx,
                                      const VlmOut *dth, bool value_grad,
                                      DistElemFn *f)
{
    VlmOut d[DIST_MAX_PARAMS];
    bool any = value_grad && dx.p;
    for (int j = 0; j < np; j++) {
        d[j] = dth_get(dth, j);
        any = any || d[j].p;
    }
    if (!any)
        return;
    for (int r = r0; r < R; r++) {
        double w = dout[r];
        if (w == 0)
            continue;
        for (int i = 0; i < n; i++) {
            double m = mask_at(mask, r, i);
            if (m == 0)
                continue;
            double t[DIST_MAX_PARAMS], g[1 + DIST_MAX_PARAMS];
            for (int j = 0; j < np; j++)
                t[j] = vin_at(th[j], r, i);
            double lp = f(vin_at(x, r, i), t, g);
            if (!isfinite(lp))
                continue;
            double s = w * m;
            if (value_grad)
                vout_add(dx, r, i, s * g[0]);
            for (int j = 0; j < np; j++)
                vout_add(d[j], r, i, s * g[1 + j]);
        }
    }
}

/* Rows of a log-density pass on the pool: each row's sum (and each row's
 * gradient) is computed as in one pass, so the split changes nothing.
 * The backward splits only where every gradient it writes has a row of
 * its own (rs != 0); a broadcast parameter's gradient (rs == 0) is one
 * sum over all rows, added in one pass. From 8192 elements on (VaDE's
 * prior over 10 clusters x 20 dimensions x 128 items: 25,600). */
typedef struct DistRowsJob {
    int n;
    VlmIn x, mask;
    const VlmIn *th;
    double *out;
    const float *dout;
    VlmOut dx;
    const VlmOut *dth;
} DistRowsJob;

static inline bool dist_rows_own(int np, VlmOut dx, const VlmOut *dth)
{
    if (dx.p && dx.rs == 0)
        return false;
    for (int j = 0; j < np; j++) {
        VlmOut d = dth_get(dth, j);
        if (d.p && d.rs == 0)
            return false;
    }
    return true;
}

static inline void dist_rows(int R, int n, bool split, VlmTaskFn *fn, void *ctx)
{
    if (split && R > 1 && (long)R * n >= 8192)
        vlm_parallel_for((size_t)R, 1 + 2048 / (size_t)(n > 0 ? n : 1), fn, ctx);
    else
        fn(ctx, 0, (size_t)(R > 0 ? R : 0));
}

/* A per-element sampler: one draw given the parameters. */
typedef double DistDrawFn(VlmRng *rng, const double *th);

static inline void dist_sample_loop(VlmRng *rng, int R, int n, int np,
                                    const VlmIn *th, float *out,
                                    DistDrawFn *f)
{
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            double t[DIST_MAX_PARAMS];
            for (int j = 0; j < np; j++)
                t[j] = vin_at(th[j], r, i);
            out[(size_t)r * n + i] = (float)f(rng, t);
        }
}

/* A per-element function of the parameters only (mean). */
typedef double DistParamFn(const double *th);

static inline void dist_param_loop(int R, int n, int np, const VlmIn *th,
                                   float *out, DistParamFn *f)
{
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            double t[DIST_MAX_PARAMS];
            for (int j = 0; j < np; j++)
                t[j] = vin_at(th[j], r, i);
            out[(size_t)r * n + i] = (float)f(t);
        }
}

/* Reparameterized transform: y = g(th, eps); with dg not NULL it also
 * stores dy/dth[j] in dg[j] (y is given for transforms that reuse it). */
typedef double DistTransformFn(const double *th, double eps, double y,
                               double *dg);

static inline void dist_rsample_loop(int R, int n, int np, const VlmIn *th,
                                     const float *eps, float *out,
                                     DistTransformFn *f)
{
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            double t[DIST_MAX_PARAMS];
            size_t k = (size_t)r * n + i;
            for (int j = 0; j < np; j++)
                t[j] = vin_at(th[j], r, i);
            out[k] = (float)f(t, eps[k], 0.0, NULL);
        }
}

static inline void dist_rsample_bwd_loop(int R, int n, int np,
                                         const VlmIn *th, const float *eps,
                                         const float *out, const float *dout,
                                         const VlmOut *dth,
                                         DistTransformFn *f)
{
    VlmOut d[DIST_MAX_PARAMS];
    bool any = false;
    for (int j = 0; j < np; j++) {
        d[j] = dth_get(dth, j);
        any = any || d[j].p;
    }
    if (!any)
        return;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < n; i++) {
            double t[DIST_MAX_PARAMS], g[DIST_MAX_PARAMS];
            size_t k = (size_t)r * n + i;
            if (dout[k] == 0)
                continue;
            for (int j = 0; j < np; j++)
                t[j] = vin_at(th[j], r, i);
            f(t, eps[k], out[k], g);
            for (int j = 0; j < np; j++)
                vout_add(d[j], r, i, dout[k] * g[j]);
        }
}

/* The VLM_DECLARE_DIST entry points of a scalar distribution, defined from
 * its per-element functions (a file may write its own sampler instead). */
#define DIST_DEFINE_LOGP(stem, np, value_grad, elem)                         \
    static void stem##_logp_rows(void *ctx, size_t lo, size_t hi)           \
    {                                                                        \
        const DistRowsJob *j = ctx;                                          \
        dist_logp_loop((int)lo, (int)hi, j->n, np, j->x, j->th, j->mask,     \
                       j->out, elem);                                        \
    }                                                                        \
    static void stem##_logp_bwd_rows(void *ctx, size_t lo, size_t hi)       \
    {                                                                        \
        const DistRowsJob *j = ctx;                                          \
        dist_logp_bwd_loop((int)lo, (int)hi, j->n, np, j->x, j->th, j->mask, \
                           j->dout, j->dx, j->dth, value_grad, elem);        \
    }                                                                        \
    void vlm_dist_##stem##_logp(int R, int n, int K, VlmIn x,                \
                                const VlmIn *th, VlmIn mask, double *out)    \
    {                                                                        \
        (void)K;                                                             \
        DistRowsJob j = {n, x, mask, th, out, NULL, {0}, NULL};              \
        dist_rows(R, n, true, stem##_logp_rows, &j);                         \
    }                                                                        \
    void vlm_dist_##stem##_logp_bwd(int R, int n, int K, VlmIn x,            \
                                    const VlmIn *th, VlmIn mask,             \
                                    const float *dout, VlmOut dx,            \
                                    const VlmOut *dth)                       \
    {                                                                        \
        (void)K;                                                             \
        DistRowsJob j = {n, x, mask, th, NULL, dout, dx, dth};               \
        VlmOut none = {0};                                                   \
        dist_rows(R, n, dist_rows_own(np, value_grad ? dx : none, dth),      \
                  stem##_logp_bwd_rows, &j);                                 \
    }
#define DIST_DEFINE_SAMPLE(stem, np, draw)                                   \
    void vlm_dist_##stem##_sample(VlmRng *rng, int R, int n, int K,          \
                                  const VlmIn *th, float *out)               \
    {                                                                        \
        (void)K;                                                             \
        dist_sample_loop(rng, R, n, np, th, out, draw);                      \
    }
#define DIST_DEFINE_MEAN(stem, np, mean)                                     \
    void vlm_dist_##stem##_mean(int R, int n, int K, const VlmIn *th,        \
                                float *out)                                  \
    {                                                                        \
        (void)K;                                                             \
        dist_param_loop(R, n, np, th, out, mean);                            \
    }

/* The rsample pair of a reparameterizable scalar distribution. */
#define DIST_DEFINE_RSAMPLE(stem, np, transform)                             \
    void vlm_dist_##stem##_rsample(int R, int n, const VlmIn *th,            \
                                   const float *eps, float *out)             \
    {                                                                        \
        dist_rsample_loop(R, n, np, th, eps, out, transform);                \
    }                                                                        \
    void vlm_dist_##stem##_rsample_bwd(int R, int n, const VlmIn *th,        \
                                       const float *eps, const float *out,   \
                                       const float *dout, const VlmOut *dth) \
    {                                                                        \
        dist_rsample_bwd_loop(R, n, np, th, eps, out, dout, dth, transform); \
    }

#endif
