/* special.c — scalar special functions the distributions need beyond libm:
 * digamma and the stable softplus / log-sigmoid pair. Double precision. */
#include "vlm.h"

#include <math.h>

/* psi(x) = d/dx log Gamma(x). Reflection for x < 0, the recurrence
 * psi(x) = psi(x + 1) - 1/x up to x >= 10, then the asymptotic series
 * log x - 1/(2x) - sum_k B_2k / (2k x^2k) (truncation error < 1e-15).
 * Poles (0, -1, -2, ...) give NaN; psi(+inf) = +inf. */
double vlm_digamma(double x)
{
    if (isnan(x) || x == -INFINITY)
        return NAN;
    if (x == INFINITY)
        return INFINITY;
    if (x <= 0) {
        if (x == floor(x))
            return NAN;
        /* psi(1 - x) - psi(x) = pi cot(pi x) */
        return vlm_digamma(1.0 - x) - M_PI / tan(M_PI * x);
    }
    double acc = 0.0;
    while (x < 10.0) {
        acc -= 1.0 / x;
        x += 1.0;
    }
    double z = 1.0 / (x * x);
    double series =
        z * (1.0 / 12 -
             z * (1.0 / 120 -
                  z * (1.0 / 252 -
                       z * (1.0 / 240 - z * (1.0 / 132 - z * (691.0 / 32760))))));
    return acc + log(x) - 0.5 / x - series;
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, full precision for
 * large negative x. */
double vlm_log1pexp(double x)
{
    return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

/* log sigmoid(x) = -softplus(-x). */
double vlm_log_sigmoid(double x)
{
    return -vlm_log1pexp(-x);
}
