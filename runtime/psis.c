/* psis.c — the Pareto-smoothed importance sampling diagnostic k-hat
 * (Vehtari, Simpson, Gelman, Yao and Gabry, "Pareto smoothed importance
 * sampling"): a generalized Pareto fit to the largest importance weights
 * of one item, as R's loo computes it. Only the diagnostic: the estimates
 * themselves stay plain importance sampling (infer.c). */
#include "vlm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* loo's n_pareto with r_eff = 1: M = ceil(min(0.2 S, 3 sqrt(S))). */
int vlm_psis_tail_len(int S)
{
    if (S < 1)
        return 0;
    double m = fmin(0.2 * S, 3 * sqrt((double)S));
    return (int)ceil(m - 1e-9);   /* 0.2 * 25 must give 5, not 6 */
}

/* Grid size of the Zhang & Stephens fit: 30 + floor(sqrt(n)) points. */
static int gpd_grid(int n)
{
    return 30 + (int)floor(sqrt((double)n));
}

size_t vlm_psis_work(int S)
{
    int M = vlm_psis_tail_len(S);
    return (size_t)S + 2 * (size_t)gpd_grid(M) + (size_t)M + 1;
}

/* The generalized Pareto distribution with location 0,
 *   p(x | k, sigma) = (1/sigma) (1 + k x / sigma)^(-1/k - 1),  x > 0,
 * fitted by Zhang & Stephens (2009) as in loo's gpdfit: with theta = -k /
 * sigma, the profile log-likelihood
 *   l(theta) = n (log(-theta / k(theta)) - k(theta) - 1),
 *   k(theta) = mean_i log(1 - theta x_i),
 * on the grid theta_j = 1/x_(n) + (1 - sqrt(m / (j - 1/2))) / (3 x*),
 * j = 1..m, x* the first quartile; theta-hat is the posterior mean over the
 * grid (weights exp(l - logsumexp l)), k = k(theta-hat), sigma = -k /
 * theta-hat; then the weakly informative prior centred on 1/2 that loo
 * applies: k <- (n k + 10 * 0.5) / (n + 10). (k here is the negative of
 * Zhang & Stephens' k: k > 0 is a heavy tail.) x ascending, positive.
 * k = NaN when the first quartile is 0 (a quarter of the values tied at
 * the threshold: there is no grid); work: 2 * (30 + floor(sqrt(n)))
 * doubles. */
void vlm_gpd_fit(int n, const double *x, double *k_out, double *sigma_out,
                 double *work)
{
    *k_out = NAN;
    *sigma_out = NAN;
    if (n < 1)
        return;
    int m = gpd_grid(n);
    double *theta = work, *l = work + m;
    int q = (int)floor(n / 4.0 + 0.5) - 1;    /* R's x[floor(n/4 + 0.5)] */
    double xstar = x[q < 0 ? 0 : q];
    if (!(xstar > 0))           /* no grid: most excesses are zero */
        return;
    double lmax = -INFINITY;
    for (int j = 0; j < m; j++) {
        theta[j] = 1 / x[n - 1] +
                   (1 - sqrt(m / (j + 0.5))) / (3 * xstar);
        double s = 0;
        for (int i = 0; i < n; i++)
            s += log1p(-theta[j] * x[i]);
        double kj = s / n;
        l[j] = n * (log(-theta[j] / kj) - kj - 1);
        if (l[j] > lmax)
            lmax = l[j];
    }
    double wsum = 0, th = 0;
    for (int j = 0; j < m; j++) {
        double w = isnan(l[j]) ? 0 : exp(l[j] - lmax);
        wsum += w;
        th += w * theta[j];
    }
    th /= wsum;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += log1p(-th * x[i]);
    double k = s / n;
    *sigma_out = -k / th;
    *k_out = (k * n + 10 * 0.5) / (n + 10);
}

static void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Partially order v[0..n) so that v[t] holds the value of rank t and
 * everything after it is >= it (Hoare's selection, median of three). */
static void select_rank(double *v, int n, int t)
{
    int lo = 0, hi = n - 1;
    while (hi > lo) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swap(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swap(&v[hi], &v[lo]);
        if (v[hi] < v[mid]) swap(&v[hi], &v[mid]);
        double p = v[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) {
                swap(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        if (t <= j)
            hi = j;
        else if (t >= i)
            lo = i;
        else
            return;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* k-hat of one item's S log weights, as loo's psis: shift by the maximum
 * (no overflow), take the M = vlm_psis_tail_len(S) largest, and fit the
 * generalized Pareto distribution to their excess over the next largest,
 * exp(lw_i) - exp(cutoff) = exp(lw_i) (1 - exp(cutoff - lw_i)) (computed
 * with expm1). NaN when there is no tail to fit: M < 5 (S < 21), or the
 * M largest weights are all equal or a quarter of them tie with the
 * cutoff (a discrete guide's few distinct weights: bounded, no heavy
 * tail; loo says Inf for the first and warns). work: vlm_psis_work(S). */
double vlm_psis_khat(int S, const double *logw, double *work)
{
    int M = vlm_psis_tail_len(S);
    if (M < 5 || M >= S)
        return NAN;
    double *v = work, *x = work + S, *grid = x + M + 1;
    memcpy(v, logw, (size_t)S * sizeof *v);
    select_rank(v, S, S - M - 1);           /* the cutoff and the tail */
    qsort(v + S - M, (size_t)M, sizeof *v, cmp_double);
    double mx = v[S - 1], cutoff = v[S - M - 1] - mx;
    if (!isfinite(mx) || !(v[S - 1] > v[S - M]))   /* all M tied */
        return NAN;
    for (int i = 0; i < M; i++) {
        double t = v[S - M + i] - mx;
        x[i] = t == cutoff ? 0 : -exp(t) * expm1(cutoff - t);
    }
    double k, sigma;
    vlm_gpd_fit(M, x, &k, &sigma, grid);
    return k;
}
