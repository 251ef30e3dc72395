/* rows.c — row operations between the row levels of the R = B*S*E layout
 * (one row per item, per (item, sample), per (item, sample, enumerated
 * value)): repeating a lower level's rows, their segmented sums (the
 * backward of a repeat), and clamping out the rows of a partly observed
 * variable that contradict the data. Nothing here knows about models. */
#include "vlm.h"

#include <math.h>
#include <string.h>

// buf (G,n) at the front -> (G*F,n), row r = original row r / F
void vlm_rows_repeat(int G, int F, size_t n, float *buf)
{
    if (F <= 1 || n == 0)
        return;
    /* From the back: row g's copies land at rows >= g, so no source row is
     * overwritten before it is read (row 0 copies onto itself last). */
    for (int g = G - 1; g >= 0; g--) {
        const float *src = buf + (size_t)g * n;
        for (int e = F - 1; e >= 0; e--) {
            float *dst = buf + ((size_t)g * F + e) * n;
            if (dst != src)
                memmove(dst, src, n * sizeof *buf);
        }
    }
}

void vlm_rows_repeat_f64(int G, int F, size_t n, double *buf)
{
    if (F <= 1 || n == 0)
        return;
    for (int g = G - 1; g >= 0; g--) {   /* from the back, as above */
        const double *src = buf + (size_t)g * n;
        for (int e = F - 1; e >= 0; e--) {
            double *dst = buf + ((size_t)g * F + e) * n;
            if (dst != src)
                memmove(dst, src, n * sizeof *buf);
        }
    }
}

void vlm_rows_repeat_copy(int G, int F, size_t n, const float *src, float *dst)
{
    for (int g = 0; g < G; g++)
        for (int e = 0; e < F; e++)
            memcpy(dst + ((size_t)g * F + e) * n, src + (size_t)g * n, n * sizeof *dst);
}

void vlm_rows_sum(int G, int F, size_t n, const float *src, float *dst)
{
    for (int g = 0; g < G; g++) {
        float *d = dst + (size_t)g * n;
        for (int e = 0; e < F; e++) {
            const float *s = src + ((size_t)g * F + e) * n;
            for (size_t i = 0; i < n; i++)
                d[i] += s[i];
        }
    }
}

void vlm_rows_pick(int G, int F, size_t n, const float *src, float *dst)
{
    for (int g = 0; g < G; g++)
        memcpy(dst + (size_t)g * n, src + (size_t)g * F * n, n * sizeof *dst);
}

/* The generated code reads a picked or repeated value through the
 * pointer these return: dst after the copy, or src itself when F == 1
 * (one row per row: nothing to copy). Nothing writes through it. */
float *vlm_rows_pick_view(int G, int F, size_t n, const float *src, float *dst)
{
    if (F == 1)
        return (float *)src;
    vlm_rows_pick(G, F, n, src, dst);
    return dst;
}

float *vlm_rows_repeat_view(int G, int F, size_t n, const float *src, float *dst)
{
    if (F == 1)
        return (float *)src;
    vlm_rows_repeat_copy(G, F, n, src, dst);
    return dst;
}

// value (R,n), obs (R,n), mask (R,n) or NULL -> logp (R) = -inf where a
// given entry differs from the row's enumerated value
void vlm_rows_clamp_given(int R, int n, const float *value, const float *obs,
                          const float *mask, double *logp)
{
    for (int r = 0; r < R; r++) {
        const float *v = value + (size_t)r * n, *o = obs + (size_t)r * n;
        const float *k = mask ? mask + (size_t)r * n : NULL;
        for (int i = 0; i < n; i++)
            if ((!k || k[i] != 0) && !isnan(o[i]) && o[i] != v[i]) {
                logp[r] = -INFINITY;
                break;
            }
    }
}
