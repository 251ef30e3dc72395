/* fdcheck.h — helpers shared by the kernel/nn/optim suites: a tiny
 * deterministic RNG for test data, float<->double copies, central finite
 * differences in double and a relative closeness check; and for the
 * rng/dists suites, a check of a sample's moments. Header-only
 * (static inline) because the Makefile compiles only tests/unit/test_*.c. */
#ifndef VLM_FDCHECK_H
#define VLM_FDCHECK_H

#include "vlm.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: independent of the runtime RNG so these suites test only
 * the kernels. */
static inline uint64_t tu_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double tu_uniform(uint64_t *s)
{
    return (tu_next(s) >> 11) * 0x1.0p-53;
}
static inline size_t tu_below(uint64_t *s, size_t n)
{
    return (size_t)(tu_next(s) % n);
}
/* n floats uniform in [lo, hi) (all zero when lo == hi == 0). */
static inline float *tu_floats(uint64_t *s, size_t n, double lo, double hi)
{
    float *p = vlm_xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * tu_uniform(s));
    return p;
}
static inline float *tu_copy(const float *x, size_t n)
{
    float *p = vlm_xmalloc(n * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}
static inline double *tu_to_double(const float *x, size_t n)
{
    double *p = vlm_xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = x[i];
    return p;
}

typedef double TuLossFn(const double *x, size_t n, void *ctx);

/* grad[i] = (L(x + h e_i) - L(x - h e_i)) / 2h, h = 1e-6 max(1, |x_i|). */
static inline void tu_fd_grad(TuLossFn *L, const double *x, size_t n,
                              void *ctx, double *grad)
{
    double *t = vlm_xmalloc(n * sizeof *t);
    memcpy(t, x, n * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        double h = 1e-6 * fmax(1.0, fabs(x[i]));
        t[i] = x[i] + h;
        double up = L(t, n, ctx);
        t[i] = x[i] - h;
        double dn = L(t, n, ctx);
        t[i] = x[i];
        grad[i] = (up - dn) / (2 * h);
    }
    free(t);
}

/* Relative error max_i |got - want| / (|want_i| + 0.01 max|want|): element
 * relative, with a floor at 1% of the vector's scale so entries that
 * cancel to ~0 are judged against the size of their neighbours. */
static inline double tu_rel_err(const double *got, const double *want,
                                size_t n)
{
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (fabs(want[i]) + 0.01 * scale + 1e-300);
        if (!(e <= err)) /* NaN propagates */
            err = e;
    }
    return err;
}

static inline void tu_check_close(const double *got, const double *want,
                                  size_t n, double rtol, const char *what,
                                  const char *part)
{
    double e = tu_rel_err(got, want, n);
    if (!(e <= rtol))
        fprintf(stderr, "\n  %s: %s: relative error %.3g > %.3g\n", what,
                part, e, rtol);
    CU_ASSERT(e <= rtol);
}

/* Mean within 5 SE (true variance) and variance within 5 SE, the variance's
 * SE from the sample fourth central moment: sqrt((m4 - v^2) / N). */
static inline int tu_moments_ok(const double *v, size_t N, double mu,
                                double var, const char *label)
{
    double m = 0, m2 = 0, m4 = 0;
    for (size_t i = 0; i < N; i++)
        m += v[i];
    m /= (double)N;
    for (size_t i = 0; i < N; i++) {
        double d = v[i] - m, d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
    }
    m2 /= (double)N;
    m4 /= (double)N;
    double se_m = sqrt(var / (double)N), se_v = sqrt((m4 - m2 * m2) / (double)N);
    int ok = fabs(m - mu) <= 5 * se_m && fabs(m2 - var) <= 5 * se_v;
    if (!ok)
        fprintf(stderr, "\n  %s: mean %.6g (want %.6g, se %.3g) var %.6g "
                "(want %.6g, se %.3g)\n", label, m, mu, se_m, m2, var, se_v);
    return ok;
}

#endif
