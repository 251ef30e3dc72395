/* fastmath.h — private to the runtime: float exp/log/sigmoid/tanh in
 * straight-line arithmetic (no libm calls), so the loops calling them
 * vectorize. Accuracy about 1 ulp; see each function for its domain. Not
 * part of the public API (runtime/vlm.h). */
#ifndef VLM_FASTMATH_H
#define VLM_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0 in straight-line float arithmetic, so loops calling
 * it vectorize (libm's expf is an opaque call). Cephes expf: x = n ln2 + r,
 * |r| <= ln2/2, a degree-6 polynomial for e^r, times 2^n built in the
 * exponent bits; about 1 ulp. Below -87 (under FLT_MIN) it returns 0;
 * NaN propagates. */
static inline float exp_nonpos(float x)
{
    float t = x < -87.0f ? -87.0f : x;
    float n = (t * 1.44269504089f + 12582912.0f) - 12582912.0f; /* rint */
    float r = t - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)(t == t ? n : 0.0f) + 127) << 23; /* no NaN cast */
    float s;
    memcpy(&s, &e, sizeof s);
    return x < -87.0f ? 0.0f : p * s;
}

static inline float sigmoidf_(float x)
{
    float e = exp_nonpos(-fabsf(x)); /* in [0, 1]: never overflows */
    float q = 1.0f / (1.0f + e);
    return x >= 0 ? q : e * q;
}

/* tanh: an odd polynomial below 0.625 (Cephes tanhf), where
 * (1 - e)/(1 + e), e = exp(-2|x|), would cancel; that form above it. Both
 * are computed and one selected, which keeps the loop branch-free. */
static inline float tanhf_(float x)
{
    float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float e = exp_nonpos(-2.0f * a);
    float big = copysignf((1.0f - e) / (1.0f + e), x);
    return a < 0.625f ? small : big;
}

/* log(1 + y) for y in [0, 1]: 1 + y = 2^k m with m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, odd series to s^9
 * (error < 1e-9). The rounding of 1 + y costs at most 6e-8 absolute, which
 * is all a summed log-likelihood sees. */
static inline float log1p_unit(float y)
{
    float u = 1.0f + y;
    int big = u > 1.41421356f;
    float mm = big ? 0.5f * u : u;
    float k = big ? 0.693147181f : 0.0f;
    float s = (mm - 1.0f) / (mm + 1.0f), z = s * s;
    float p = 0.111111111f;
    p = p * z + 0.142857143f;
    p = p * z + 0.2f;
    p = p * z + 0.333333333f;
    p = p * z + 1.0f;
    return k + 2.0f * s * p;
}

/* Double precision, for log-likelihood terms that are summed: exp(x) for
 * x <= 0 and log(1 + y) for y in [0, 1], about 1e-11 relative, in
 * arithmetic the vectorizer handles (no double->int64 conversion: n is
 * read from the bits of x log2(e) + 1.5 2^52). */
static inline double exp_nonpos_d(double x)
{
    const double magic = 6755399441055744.0;   /* 1.5 * 2^52 */
    double t = x < -700.0 ? -700.0 : x;
    double kd = t * 1.4426950408889634 + magic;
    double n = kd - magic;
    double r = t - n * 6.93145751953125e-1 - n * 1.42860682030941723212e-6;
    /* e^r, |r| <= 0.347: Taylor to r^10 (error < 1e-11 relative, far
     * below what a float-data log-likelihood resolves) */
    double p = 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t kb, mb;
    memcpy(&kb, &kd, sizeof kb);
    double mg = magic;
    memcpy(&mb, &mg, sizeof mb);
    int64_t e = (kb - mb + 1023) << 52;
    double sc;
    memcpy(&sc, &e, sizeof sc);
    return x < -700.0 ? 0.0 : p * sc;
}

static inline double log1p_unit_d(double y)
{
    double u = 1.0 + y;
    int big = u > 1.4142135623730951;
    double mm = big ? 0.5 * u : u;
    double k = big ? 0.6931471805599453 : 0.0;
    double s = (mm - 1.0) / (mm + 1.0), z = s * s;
    /* 2 atanh(s) = 2 (s + s^3/3 + ... + s^13/13), |s| < 0.172: the rest
     * is below 1e-12 */
    double p = 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    p = p * z + 1.0;
    return k + 2.0 * s * p;
}

#endif
