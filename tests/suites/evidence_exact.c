/* evidence_exact.c — exact log p(x) for the evidence suite (evidence.sh),
 * independent of the runtime: it reads the parameters a trainer prints
 * (`params --load CKPT`: name,row,values...) and a data CSV, and prints the
 * mean log p(x) per item (and, with -v, one value per item).
 *
 *   evidence_exact ppca PARAMS DATA SIGMA
 *       x ~ N(b, W W^T + SIGMA^2 I): tests/codegen/ppca.vlm in closed form
 *       (Cholesky in double).
 *   evidence_exact vae2d PARAMS DATA
 *       examples/vae_lecture.vlm: z ~ N(0, I_2), x | z ~ N(sigmoid(A z + c),
 *       sqrt(exp(sigmoid(B z + d)))), by the midpoint rule on grids over
 *       z in [-9, 9]^2 (the prior's mass outside is < 1e-18): 300 x 300
 *       and 450 x 450 cells must agree to 1e-9 on every item, else it
 *       fails (the integrand is smooth: the midpoint rule converges fast).
 *
 * Not part of the runtime; compiled by the suite with plain cc. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 16
#define MAXV 4096

typedef struct Param {
    char name[64];
    int rows, cols;
    double v[MAXV];
} Param;

static Param params[MAXP];
static int n_params;

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "evidence_exact: %s%s%s\n", msg, arg ? ": " : "",
            arg ? arg : "");
    exit(1);
}

/* `params` output: one line per row, name,row,v0,v1,... */
static void read_params(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open", path);
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *tok = strtok_r(line, ",\n", &save);
        if (!tok)
            continue;
        Param *p = NULL;
        for (int i = 0; i < n_params; i++)
            if (!strcmp(params[i].name, tok))
                p = &params[i];
        if (!p) {
            if (n_params == MAXP)
                die("too many parameters", path);
            p = &params[n_params++];
            snprintf(p->name, sizeof p->name, "%s", tok);
        }
        strtok_r(NULL, ",\n", &save);   /* the row number */
        int c = 0;
        while ((tok = strtok_r(NULL, ",\n", &save))) {
            if (p->rows * p->cols + c >= MAXV)
                die("parameter too large", p->name);
            p->v[p->rows * p->cols + c] = atof(tok);
            c++;
        }
        if (p->rows == 0)
            p->cols = c;
        else if (c != p->cols)
            die("ragged parameter", p->name);
        p->rows++;
    }
    fclose(f);
}

static const Param *param(const char *name)
{
    for (int i = 0; i < n_params; i++)
        if (!strcmp(params[i].name, name))
            return &params[i];
    die("no parameter", name);
    return NULL;
}

/* Data CSV with a header line: returns rows, sets *cols. */
static double *read_data(const char *path, int *n, int *cols)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open", path);
    char line[1 << 16];
    int cap = 1024, rows = 0, d = -1;
    double *x = malloc(sizeof *x * (size_t)cap * 64);
    if (!fgets(line, sizeof line, f))
        die("empty data file", path);
    while (fgets(line, sizeof line, f)) {
        double row[64];
        int c = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, ",\n", &save); t;
             t = strtok_r(NULL, ",\n", &save)) {
            if (c == 64)
                die("too many columns", path);
            row[c++] = atof(t);
        }
        if (c == 0)
            continue;
        if (d < 0)
            d = c;
        if (c != d)
            die("ragged data", path);
        if (rows == cap) {
            cap *= 2;
            x = realloc(x, sizeof *x * (size_t)cap * 64);
        }
        memcpy(x + (size_t)rows * d, row, sizeof *row * (size_t)d);
        rows++;
    }
    fclose(f);
    *n = rows;
    *cols = d;
    return x;
}

/* log N(x; b, W W^T + s^2 I) by Cholesky of the D x D covariance. */
static double ppca_logpx(int D, int Z, const double *W, const double *b,
                         double s, const double *x)
{
    double C[64 * 64], r[64];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double c = i == j ? s * s : 0;
            for (int k = 0; k < Z; k++)
                c += W[i * Z + k] * W[j * Z + k];
            C[i * D + j] = c;
        }
    double logdet = 0;
    for (int j = 0; j < D; j++) {   /* C = L L^T, L in the lower triangle */
        double d = C[j * D + j];
        for (int k = 0; k < j; k++)
            d -= C[j * D + k] * C[j * D + k];
        if (d <= 0)
            die("covariance not positive definite", NULL);
        double l = sqrt(d);
        C[j * D + j] = l;
        logdet += 2 * log(l);
        for (int i = j + 1; i < D; i++) {
            double v = C[i * D + j];
            for (int k = 0; k < j; k++)
                v -= C[i * D + k] * C[j * D + k];
            C[i * D + j] = v / l;
        }
    }
    double q = 0;
    for (int i = 0; i < D; i++) {   /* solve L r = x - b */
        double v = x[i] - b[i];
        for (int k = 0; k < i; k++)
            v -= C[i * D + k] * r[k];
        r[i] = v / C[i * D + i];
        q += r[i] * r[i];
    }
    return -0.5 * (D * log(2 * M_PI) + logdet + q);
}

static double sigmoid(double a) { return 1 / (1 + exp(-a)); }

/* The lecture VAE on an n x n midpoint grid over [-L, L]^2: per cell the
 * log prior plus log h^2, and per observed k the mean, log variance and
 * inverse variance, computed once for all items. */
typedef struct Grid {
    int n;
    double *lp, *mu[2], *lv[2], *iv[2];
} Grid;

static void grid_make(Grid *g, int n, const double *A, const double *c,
                      const double *B, const double *d)
{
    const double L = 9, h = 2 * L / n;
    size_t cells = (size_t)n * n;
    g->n = n;
    g->lp = malloc(sizeof(double) * cells * 7);
    for (int k = 0; k < 2; k++) {
        g->mu[k] = g->lp + cells * (1 + 3 * k);
        g->lv[k] = g->mu[k] + cells;
        g->iv[k] = g->lv[k] + cells;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            size_t at = (size_t)i * n + j;
            double z[2] = {-L + (i + 0.5) * h, -L + (j + 0.5) * h};
            g->lp[at] = -log(2 * M_PI) - 0.5 * (z[0] * z[0] + z[1] * z[1]) +
                        log(h * h);
            for (int k = 0; k < 2; k++) {
                double v = sigmoid(B[2 * k] * z[0] + B[2 * k + 1] * z[1] + d[k]);
                g->mu[k][at] = sigmoid(A[2 * k] * z[0] + A[2 * k + 1] * z[1] + c[k]);
                g->lv[k][at] = v;                /* log var = sigmoid(.) */
                g->iv[k][at] = exp(-v);
            }
        }
}

/* log p(x) = log sum over cells of h^2 p(z) p(x | z), by log-sum-exp. */
static double vae2d_logpx(const Grid *g, const double *x)
{
    size_t cells = (size_t)g->n * g->n;
    double mx = -INFINITY, s = 0;
    double *l = malloc(sizeof *l * cells);
    for (size_t a = 0; a < cells; a++) {
        double v = g->lp[a];
        for (int k = 0; k < 2; k++) {
            double e = x[k] - g->mu[k][a];
            v += -0.5 * (log(2 * M_PI) + g->lv[k][a]) - 0.5 * e * e * g->iv[k][a];
        }
        l[a] = v;
        if (v > mx)
            mx = v;
    }
    for (size_t a = 0; a < cells; a++)
        s += exp(l[a] - mx);
    free(l);
    return mx + log(s);
}

int main(int argc, char **argv)
{
    int verbose = argc > 1 && !strcmp(argv[1], "-v");
    argv += verbose;
    argc -= verbose;
    if (argc < 4)
        die("usage: evidence_exact [-v] ppca PARAMS DATA SIGMA | vae2d "
            "PARAMS DATA", NULL);
    read_params(argv[2]);
    int n, D;
    double *x = read_data(argv[3], &n, &D);
    double sum = 0;
    if (!strcmp(argv[1], "ppca") && argc == 5) {
        const Param *W = param("W"), *b = param("b");
        if (W->rows != D || b->cols != D || D > 64)
            die("W or b does not match the data's width", NULL);
        for (int i = 0; i < n; i++) {
            double l = ppca_logpx(D, W->cols, W->v, b->v, atof(argv[4]),
                                  x + (size_t)i * D);
            if (verbose)
                printf("%.9f\n", l);
            sum += l;
        }
    } else if (!strcmp(argv[1], "vae2d")) {
        const Param *A = param("A"), *c = param("c"), *B = param("B"),
                    *d = param("d");
        if (D != 2)
            die("the lecture VAE has 2 observed values per item", NULL);
        /* two grids must agree on every item */
        Grid g1, g2;
        grid_make(&g1, 300, A->v, c->v, B->v, d->v);
        grid_make(&g2, 450, A->v, c->v, B->v, d->v);
        for (int i = 0; i < n; i++) {
            const double *xi = x + (size_t)i * D;
            double l = vae2d_logpx(&g2, xi);
            if (fabs(l - vae2d_logpx(&g1, xi)) > 1e-9)
                die("the quadrature did not converge", NULL);
            if (verbose)
                printf("%.9f\n", l);
            sum += l;
        }
        free(g1.lp);
        free(g2.lp);
    } else {
        die("unknown model", argv[1]);
    }
    printf("%.9f\n", sum / n);
    free(x);
    return 0;
}
