/* rows.c — row operations of the R = B*S*E layout: the guide draws its
 * samples for B*S rows and repeats each over the E enumeration rows; the
 * rows of a partly observed variable that contradict the data are clamped
 * out. Nothing here knows about models. */
#include "vlm.h"

#include <math.h>
#include <string.h>

// buf (G,n) at the front -> (G*E,n), row r = original row r / E
void vlm_rows_repeat(int G, int E, size_t n, float *buf)
{
    if (E <= 1 || n == 0)
        return;
    /* From the back: row g's copies land at rows >= g, so no source row is
     * overwritten before it is read (row 0 copies onto itself last). */
    for (int g = G - 1; g >= 0; g--) {
        const float *src = buf + (size_t)g * n;
        for (int e = E - 1; e >= 0; e--) {
            float *dst = buf + ((size_t)g * E + e) * n;
            if (dst != src)
                memmove(dst, src, n * sizeof *buf);
        }
    }
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
