/* rows.c — row expansion for the R = B*S*E layout: the guide draws its
 * samples for B*S rows and repeats each over the E enumeration rows.
 * Nothing here knows about models. */
#include "vlm.h"

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
