/* cli.c — the command line of every generated trainer: vlm_main parses
 * `./model <command> [options]` and runs train, eval, sample, posterior,
 * impute or info through the generic drivers. Errors: one line
 * "prog: error: ..." and exit 1; bad usage: exit 2. No inference here
 * beyond `gradvar`, which only repeats the driver's gradient. */
#include "vlm.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void openblas_set_num_threads(int);

/* The pool's default size: the online cores, at most 8 (past that the
 * batch-sized GEMMs and loops stop gaining). */
static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static const char *prog = "model";

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* ------------------------------------------------------------ options */

typedef struct Opts {
    const char *cmd;
    const char *data, *test, *save, *load, *log, *out, *png, *labels;
    const char *mask, *init_from;
    VlmFormat format;
    long epochs, every, n, refine, limit;
    int batch, samples, iw, threads, shape_h, shape_w;
    float lr, clip, refine_lr, mask_frac;
    double refine_tol;       /* --refine-tol */
    VlmOptKind optimizer;
    VlmSched sched;
    VlmObjective objective;
    uint64_t seed;
    bool mean, binarize, reconstruct;
    bool set_given;          /* some --set on the command line */
    bool has_batch, has_lr, has_optimizer, has_samples, has_objective,
         has_clip, has_sched;
    double tol, reg_covar;   /* EM (conjugate mixtures) */
    long kmeans_iters;
    bool has_epochs;
} Opts;

typedef struct Cmd {
    const char *name, *summary, *usage, *help;
} Cmd;

static const Cmd cmds[] = {
    {"train", "fit the model to data",
     "train --data FILE [options]",
     "  --data FILE          training data (.idx[.gz], .csv, .npy)\n"
     "  --format F           idx | csv | npy (default: from the file)\n"
     "  --test FILE          also report the test ELBO after every epoch\n"
     "  --limit N            use only the first N items of each data file\n"
     "  --binarize           threshold the data at 0.5 (x > 0.5 -> 1, else 0)\n"
     "  --mask M             top-half | none (default none): hide the first half\n"
     "                       of every item's values (the top rows of an image);\n"
     "                       hidden and NaN entries are marginalized\n"
     "  --mask-frac P        ... in a fraction P of the training items only\n"
     "                       (every 1/P-th item; default 1: all of them)\n"
     "  --epochs N           train until N epochs in total (default 10)\n"
     "  --batch B            minibatch size (default 64)\n"
     "  --lr LR              learning rate (default 1e-3)\n"
     "  --optimizer O        adam | sgd (default adam)\n"
     "  --schedule S         const | cosine | step (default const)\n"
     "  --clip C             clip the global gradient norm at C (default off)\n"
     "  --seed S             seed of initialisation, order and noise (default 1)\n"
     "  --threads T          threads for GEMMs and the runtime's loops (default:\n"
     "                       the machine's cores, at most 8; a run is\n"
     "                       reproducible for a given T)\n"
     "  --set NAME=VALUE     change a const of the model (repeatable)\n"
     "  --objective O        elbo | iwae (default elbo)\n"
     "  --samples K          samples per item for the objective (default 1)\n"
     "  --save CKPT          write a checkpoint at the end (atomically)\n"
     "  --every N            ... and after every N epochs\n"
     "  --load CKPT          resume from a checkpoint (continues exactly)\n"
     "  --log FILE.csv       per-epoch metrics\n"
     "conjugate Gaussian mixtures (see `info`) train by EM unless --optimizer\n"
     "is given; --epochs is then the maximum of iterations (default 100):\n"
     "  --tol T              stop when the mean log-likelihood per item\n"
     "                       changes by less than T (default 1e-3)\n"
     "  --reg-covar R        added to every variance (default 1e-3)\n"
     "  --kmeans-iters N     Lloyd iterations of the k-means initialisation\n"
     "                       (default 300, scikit-learn's; it stops earlier\n"
     "                       when stable)\n"},
    {"eval", "bounds and log-likelihood estimates on data",
     "eval --data FILE --load CKPT [options]",
     "  --data FILE          data to evaluate\n"
     "  --format F           idx | csv | npy\n"
     "  --load CKPT          trained checkpoint\n"
     "  --init-from CKPT     instead of --load: copy the global parameters\n"
     "                       whose name and shape match from another model's\n"
     "                       checkpoint (e.g. a decoder); the rest keep their\n"
     "                       initialisation; local parameters are refined\n"
     "  --limit N            use only the first N items of each data file\n"
     "  --binarize           threshold the data at 0.5 (x > 0.5 -> 1, else 0)\n"
     "  --mask M             top-half | none: hide the first half of each item\n"
     "  --iw K               importance samples per item (default 1000: k-hat\n"
     "                       needs them; with 100 its own noise alone puts a\n"
     "                       few % of items above 0.7)\n"
     "  --batch B            items per pass (default 64)\n"
     "  --refine N           local-guide models: the local parameters are fitted\n"
     "                       to the data (theta frozen) until the ELBO stops\n"
     "                       improving, at most N steps (default 5000)\n"
     "  --refine-tol T       ... stops improving: rises by less than T * |ELBO|\n"
     "                       over 25 steps (default 1e-4)\n"
     "  --refine-lr LR       Adam's first learning rate in the refinement; then\n"
     "                       LR/4 and LR/16, each until the ELBO stops improving\n"
     "                       (default 5e-2)\n"
     "  --seed S, --threads T, --set NAME=VALUE\n"},
    {"sample", "draw from the model",
     "sample [--load CKPT] -n N --out FILE.csv|FILE.png [options]",
     "  --load CKPT          trained checkpoint (without: the parameters as\n"
     "                       initialised from --seed)\n"
     "  -n N                 number of samples (default 16)\n"
     "  --out FILE           .csv (one sample per row) or .png (image grid)\n"
     "  --shape HxW          image shape for .png (default: square)\n"
     "  --mean               write E[x | z] instead of raw samples\n"
     "  --seed S, --threads T, --set NAME=VALUE\n"},
    {"posterior", "per-item posterior over the latents",
     "posterior --data FILE --load CKPT --out FILE.csv [options]",
     "  --data FILE, --format F, --load CKPT\n"
     "  --out FILE.csv       per item: p(z|x) and argmax for enumerated\n"
     "                       latents, the guide's mean and scale otherwise\n"
     "  --samples K          importance samples for guided latents (default 100)\n"
     "  --labels IDXFILE     print cluster purity and NMI against labels\n"
     "  --limit N            use only the first N items of each data file\n"
     "  --binarize           threshold the data at 0.5 (x > 0.5 -> 1, else 0)\n"
     "  --init-from CKPT     as for eval\n"
     "  --refine N, --refine-tol T, --refine-lr LR (as for eval), --batch B,\n"
     "  --seed S, --threads T, --set\n"},
    {"impute", "fill missing entries",
     "impute --data FILE --load CKPT --out FILE [options]",
     "  --data FILE, --format F, --load CKPT\n"
     "  --out FILE           .csv, .npy or .png: the data with missing entries\n"
     "                       replaced by posterior-predictive means\n"
     "  --mask M             top-half | none (default none); NaN entries are\n"
     "                       always missing\n"
     "  --samples K          importance samples per item (default 100)\n"
     "  --png FILE           rows observed / imputed / true for the first items\n"
     "  --reconstruct        every entry, observed ones too, replaced by its\n"
     "                       posterior-predictive mean (reconstructions)\n"
     "  --shape HxW          image shape for --png (default: from the data,\n"
     "                       else square)\n"
     "  --limit N            use only the first N items of each data file\n"
     "  --binarize           threshold the data at 0.5 (x > 0.5 -> 1, else 0)\n"
     "  --init-from CKPT     as for eval\n"
     "  --refine N, --refine-tol T, --refine-lr LR (as for eval), --batch B,\n"
     "  --seed S, --threads T, --set\n"},
    {"info", "the model, its plan, parameters and memory",
     "info [--set NAME=VALUE]", "  --set NAME=VALUE     change a const\n"},
    {"gradvar", "variance of the score-function gradient, with and without "
     "baseline",
     "gradvar --data FILE --load CKPT [options]",
     "  --data FILE, --format F, --limit N, --binarize\n"
     "  --load CKPT          trained checkpoint (without: the initialisation)\n"
     "  --batch B            the minibatch: the first B items (default 64)\n"
     "  -n N                 gradient draws per estimator (default 100)\n"
     "  --samples K          also measure the leave-one-out baseline with K\n"
     "                       samples per item (K > 1)\n"
     "  --seed S, --threads T, --set NAME=VALUE\n"
     "\nRepeats the training gradient of one fixed minibatch with fresh guide\n"
     "noise and prints the variance of the guide's (phi) gradient, summed\n"
     "over coordinates, for: no baseline (b = 0), the moving-average baseline\n"
     "of training (S = 1, warmed up for 20 draws first), and with --samples\n"
     "K > 1 the leave-one-out baseline; the ratios tell the reduction.\n"},
    {"params", "print the parameters as CSV",
     "params [--load CKPT] [options]",
     "  --load CKPT          trained checkpoint (without: the initialisation)\n"
     "  --seed S, --set NAME=VALUE\n"
     "\nOne line per parameter row: name,row,value,value,... (a matrix [K, D]\n"
     "prints K rows of D values; vectors and scalars one row). Values are\n"
     "as stored: a positive param's log, a unit param's logit, a simplex\n"
     "param's logits.\n"},
};
#define N_CMDS ((int)(sizeof cmds / sizeof cmds[0]))

static void usage_main(FILE *f, const VlmModelDesc *d)
{
    fprintf(f, "usage: %s <command> [options]\n\n%s: a vlm-generated trainer "
            "for the model `%s`.\n\ncommands:\n", prog, prog, d->name);
    for (int i = 0; i < N_CMDS; i++)
        fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "  %-10s %s\n", "gradcheck",
            "check the generated gradients against finite differences [--seed N]");
    fprintf(f, "\n`%s <command> --help` lists a command's options.\n", prog);
}

static void usage_cmd(FILE *f, const Cmd *c)
{
    fprintf(f, "usage: %s %s\n\n%s.\n\noptions:\n%s", prog, c->usage,
            c->summary, c->help);
}

static int bad_usage(const Cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad_usage(const Cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage_cmd(stderr, c);
    return 2;
}

static bool parse_long(const char *s, long lo, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo)
        return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0)
        return false;
    *out = (float)v;
    return true;
}

/* Apply --set NAME=VALUE to the descriptor's const table. */
static int apply_set(const Cmd *c, const VlmModelDesc *d, const char *arg)
{
    const char *eq = strchr(arg, '=');
    long v;
    if (!eq || eq == arg || !parse_long(eq + 1, 1, &v))
        return bad_usage(c, "--set expects NAME=VALUE with a positive integer "
                         "VALUE, got `%s`", arg);
    for (int i = 0; i < d->n_consts; i++)
        if (strlen(d->const_names[i]) == (size_t)(eq - arg) &&
            !strncmp(d->const_names[i], arg, (size_t)(eq - arg))) {
            d->const_values[i] = v;
            return 0;
        }
    char list[512] = "";
    for (int i = 0; i < d->n_consts; i++) {
        size_t u = strlen(list);
        snprintf(list + u, sizeof list - u, "%s%s=%ld", i ? ", " : "",
                 d->const_names[i], d->const_values[i]);
    }
    return bad_usage(c, "--set: the model has no const `%.*s` (%s%s)",
                     (int)(eq - arg), arg,
                     d->n_consts ? "its consts: " : "it has no consts",
                     list);
}

/* Options allowed per command: a space-separated list. */
static const char *allowed[] = {
    /* train */ " data format test epochs batch lr optimizer schedule clip "
                "seed threads set objective samples save every load log "
                "limit binarize mask mask-frac tol reg-covar kmeans-iters ",
    /* eval */ " data format load iw batch refine refine-lr refine-tol seed "
               "threads set "
               "limit binarize mask init-from ",
    /* sample */ " load n out shape mean seed threads set ",
    /* posterior */ " data format load out samples labels refine refine-lr "
                    "refine-tol "
                    "batch seed threads set limit binarize init-from ",
    /* impute */ " data format load out mask samples png refine refine-lr "
                 "refine-tol "
                 "batch seed threads set limit binarize init-from reconstruct shape ",
    /* info */ " set ",
    /* gradvar */ " data format load batch n samples seed threads set limit "
                  "binarize ",
    /* params */ " load seed set ",
};

static int parse_opts(const Cmd *c, int ci, const VlmModelDesc *d, int argc,
                      char **argv, Opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_cmd(stdout, c);
            exit(0);
        }
        char name[64];
        const char *val = NULL;
        if (!strcmp(a, "-n"))
            snprintf(name, sizeof name, "n");
        else if (!strncmp(a, "--", 2) && a[2]) {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            if (len >= sizeof name)
                len = sizeof name - 1;
            memcpy(name, a + 2, len);
            name[len] = 0;
            if (eq)
                val = eq + 1;
        } else {
            return bad_usage(c, "unexpected argument `%s`", a);
        }
        char key[70];
        snprintf(key, sizeof key, " %s ", name);
        if (!strstr(allowed[ci], key))
            return bad_usage(c, "unknown option `%s` for %s", a, c->name);
        bool flag = !strcmp(name, "mean") || !strcmp(name, "binarize") ||
                    !strcmp(name, "reconstruct");
        if (flag) {
            if (val)
                return bad_usage(c, "--%s takes no value", name);
            if (!strcmp(name, "mean"))
                o->mean = true;
            else if (!strcmp(name, "reconstruct"))
                o->reconstruct = true;
            else
                o->binarize = true;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return bad_usage(c, "option `%s` needs a value", a);
            val = argv[++i];
        }
        long L;
        float F;
#define NEED(cond, what)                                                    \
    do {                                                                    \
        if (!(cond))                                                        \
            return bad_usage(c, "--%s expects %s, got `%s`", name, what,    \
                             val);                                          \
    } while (0)
        if (!strcmp(name, "data")) o->data = val;
        else if (!strcmp(name, "test")) o->test = val;
        else if (!strcmp(name, "save")) o->save = val;
        else if (!strcmp(name, "load")) o->load = val;
        else if (!strcmp(name, "log")) o->log = val;
        else if (!strcmp(name, "out")) o->out = val;
        else if (!strcmp(name, "png")) o->png = val;
        else if (!strcmp(name, "labels")) o->labels = val;
        else if (!strcmp(name, "init-from")) o->init_from = val;
        else if (!strcmp(name, "limit")) {
            NEED(parse_long(val, 1, &L), "a positive count");
            o->limit = L;
        }
        else if (!strcmp(name, "format")) {
            if (!strcmp(val, "idx")) o->format = VLM_FMT_IDX;
            else if (!strcmp(val, "csv")) o->format = VLM_FMT_CSV;
            else if (!strcmp(val, "npy")) o->format = VLM_FMT_NPY;
            else NEED(false, "idx, csv or npy");
        } else if (!strcmp(name, "epochs")) {
            NEED(parse_long(val, 0, &L), "a count");
            o->epochs = L;
            o->has_epochs = true;
        } else if (!strcmp(name, "kmeans-iters")) {
            NEED(parse_long(val, 0, &L) && L <= 1000000, "a count");
            o->kmeans_iters = L;
        } else if (!strcmp(name, "tol")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->tol = F;
        } else if (!strcmp(name, "reg-covar")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->reg_covar = F;
        } else if (!strcmp(name, "every")) {
            NEED(parse_long(val, 1, &L), "a positive count");
            o->every = L;
        } else if (!strcmp(name, "n")) {
            NEED(parse_long(val, 1, &L) && L <= 1000000, "a positive count");
            o->n = L;
        } else if (!strcmp(name, "refine")) {
            NEED(parse_long(val, 0, &L) && L <= 1000000, "a count");
            o->refine = L;
        } else if (!strcmp(name, "batch")) {
            NEED(parse_long(val, 1, &L) && L <= 1 << 20, "a positive count");
            o->batch = (int)L;
            o->has_batch = true;
        } else if (!strcmp(name, "samples")) {
            NEED(parse_long(val, 1, &L) && L <= 1 << 20, "a positive count");
            o->samples = (int)L;
            o->has_samples = true;
        } else if (!strcmp(name, "iw")) {
            NEED(parse_long(val, 1, &L) && L <= 1 << 24, "a positive count");
            o->iw = (int)L;
        } else if (!strcmp(name, "threads")) {
            NEED(parse_long(val, 1, &L) && L <= 1024, "a positive count");
            o->threads = (int)L;
        } else if (!strcmp(name, "seed")) {
            NEED(parse_long(val, 0, &L), "a non-negative integer");
            o->seed = (uint64_t)L;
        } else if (!strcmp(name, "lr")) {
            NEED(parse_float(val, &F) && F > 0, "a positive number");
            o->lr = F;
            o->has_lr = true;
        } else if (!strcmp(name, "mask-frac")) {
            NEED(parse_float(val, &F) && F > 0 && F <= 1, "a number in (0, 1]");
            o->mask_frac = F;
        } else if (!strcmp(name, "refine-tol")) {
            NEED(parse_float(val, &F) && F >= 0, "a non-negative number");
            o->refine_tol = F;
        } else if (!strcmp(name, "refine-lr")) {
            NEED(parse_float(val, &F) && F > 0, "a positive number");
            o->refine_lr = F;
        } else if (!strcmp(name, "clip")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->clip = F;
            o->has_clip = true;
        } else if (!strcmp(name, "optimizer")) {
            if (!strcmp(val, "adam")) o->optimizer = VLM_OPT_ADAM;
            else if (!strcmp(val, "sgd")) o->optimizer = VLM_OPT_SGD;
            else NEED(false, "adam or sgd");
            o->has_optimizer = true;
        } else if (!strcmp(name, "schedule")) {
            if (!strcmp(val, "const")) o->sched = VLM_SCHED_CONST;
            else if (!strcmp(val, "cosine")) o->sched = VLM_SCHED_COSINE;
            else if (!strcmp(val, "step")) o->sched = VLM_SCHED_STEP;
            else NEED(false, "const, cosine or step");
            o->has_sched = true;
        } else if (!strcmp(name, "objective")) {
            if (!strcmp(val, "elbo")) o->objective = VLM_OBJ_ELBO;
            else if (!strcmp(val, "iwae")) o->objective = VLM_OBJ_IWAE;
            else NEED(false, "elbo or iwae");
            o->has_objective = true;
        } else if (!strcmp(name, "mask")) {
            NEED(!strcmp(val, "top-half") || !strcmp(val, "none"),
                 "top-half or none");
            o->mask = val;
        } else if (!strcmp(name, "shape")) {
            int h, w;
            char extra;
            NEED(sscanf(val, "%dx%d%c", &h, &w, &extra) == 2 && h > 0 &&
                     w > 0, "HxW");
            o->shape_h = h;
            o->shape_w = w;
        } else if (!strcmp(name, "set")) {
            o->set_given = true;
            int rc = apply_set(c, d, val);
            if (rc)
                return rc;
        }
#undef NEED
    }
    return 0;
}

/* ------------------------------------------------------------ helpers */

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* Read a data file, keep its first --limit items, --binarize it. */
static int read_data(const VlmModel *m, const Opts *o, const char *path,
                     VlmData *d)
{
    VlmErr err;
    if (vlm_data_read(path, o->format, 0, d, &err) != 0)
        return fail("%s", err.msg);
    if (d->n == 0) {
        vlm_data_free(d);
        return fail("%s: no items", path);
    }
    if (o->limit > 0 && (size_t)o->limit < d->n)
        d->n = (size_t)o->limit;   /* the arrays keep their size */
    if (o->binarize && d->x8)   /* stays compact: 0 or 255 = 1.0f */
        for (size_t i = 0; i < d->n * d->d; i++)
            d->x8[i] = d->x8[i] / 255.0f > 0.5f ? 255 : 0;
    else if (o->binarize)
        for (size_t i = 0; i < d->n * d->d; i++)
            if (!isnan(d->x[i]))
                d->x[i] = d->x[i] > 0.5f ? 1.0f : 0.0f;
    if (vlm_model_check_data(m, d, path, &err) != 0) {
        vlm_data_free(d);
        return fail("%s", err.msg);
    }
    return 0;
}

/* --mask top-half for train and eval: the first half of each item's values
 * (the top rows of a row-major image) become missing, like NaN entries,
 * in a fraction frac of the items: item i when floor((i+1) frac) >
 * floor(i frac) (every item at 1, every other one at 0.5). A model never
 * shown a top half cannot learn it, so imputation needs frac < 1. */
static void mask_top_half(VlmData *d, double frac)
{
    if (!d->mask) {
        d->mask = vlm_xmalloc(d->n * d->d * sizeof *d->mask);
        for (size_t i = 0; i < d->n * d->d; i++)
            d->mask[i] = 1;
    }
    for (size_t i = 0; i < d->n; i++)
        for (size_t k = 0; k < d->d / 2 && (frac >= 1 || floor((i + 1) * frac)
                                            > floor(i * frac)); k++) {
            d->mask[i * d->d + k] = 0;
            if (d->x8)
                d->x8[i * d->d + k] = 0;
            else
                d->x[i * d->d + k] = 0;
        }
}

static bool want_mask(const Opts *o)
{
    return o->mask && !strcmp(o->mask, "top-half");
}

static long total_numel(const VlmModel *m)
{
    long n = 0;
    for (int j = 0; j < m->n_observed; j++)
        n += m->vars[m->n_latent + j].numel;
    return n;
}

/* Rows for evaluation: room for `items` items of K samples, capped by an
 * activation budget of 1 GiB. */
static int eval_rows(const VlmModel *m, int items, int K)
{
    size_t per = m->bytes_per_row ? m->bytes_per_row : 256;
    size_t cap = ((size_t)1 << 30) / per;
    size_t want = (size_t)items * (size_t)K * (size_t)m->E;
    if (want > cap)
        want = cap;
    if (want < (size_t)m->E)
        want = (size_t)m->E;
    if (want > (size_t)1 << 24)
        want = (size_t)1 << 24;
    return (int)want;
}

/* --init-from: copy the global parameters of another model's checkpoint
 * whose name and shape match (e.g. vae.vlm's decoder into vae_local.vlm).
 * The checkpoint's model hash is read from its header (bytes 12..19,
 * docs/io.md) so that the loader's integrity checks still run. */
static int init_from(VlmModel *m, const char *path)
{
    VlmErr err;
    unsigned char h[20];
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail("%s: cannot open checkpoint: %s", path, strerror(errno));
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got != sizeof h)
        return fail("%s: not a vlm checkpoint (too short)", path);
    uint64_t hash = 0;
    for (int i = 0; i < 8; i++)
        hash |= (uint64_t)h[12 + i] << (8 * i);
    VlmCkpt c;
    if (vlm_ckpt_load(path, hash, &c, &err) != 0)
        return fail("%s", err.msg);
    int copied = 0;
    size_t floats = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (p->local)
            continue;
        for (int k = 0; k < c.n_tensors; k++) {
            const VlmCkptTensor *t = &c.t[k];
            bool same = !strcmp(t->name, p->name) && t->rank == p->rank &&
                        t->count == p->count;
            for (int r = 0; same && r < p->rank; r++)
                same = t->dims[r] == p->dims[r];
            if (same) {
                memcpy(m->w + p->offset, t->data, p->count * sizeof(float));
                copied++;
                floats += p->count;
                break;
            }
        }
    }
    vlm_ckpt_free(&c);
    if (copied == 0)
        return fail("%s: no parameter of this model matches the checkpoint's "
                    "by name and shape", path);
    fprintf(stderr, "%s: initialised %d parameter tensors (%zu values) from "
            "%s\n", prog, copied, floats, path);
    return 0;
}

/* Load a trained model for eval/posterior/impute/sample; for data-bound
 * commands size the local table to the data and refine it. */
static int load_trained(VlmModel *m, const Opts *o, const VlmData *d,
                        int rows)
{
    VlmErr err;
    /* sample without --load draws from the parameters as initialised
     * from --seed: a model with known parameters, for synthetic data. */
    if (!o->load && !o->init_from && strcmp(o->cmd, "sample") &&
        strcmp(o->cmd, "gradvar"))
        return fail("%s needs --load CKPT (a trained checkpoint)", o->cmd);
    if (o->load && o->init_from)
        return fail("give --load or --init-from, not both");
    vlm_model_alloc_local(m, d && m->local_width ? d->n : 0);
    vlm_model_init_params(m, o->seed);
    bool loc_loaded = false;
    if (o->load && vlm_model_load(m, o->load, &loc_loaded, &err) != 0)
        return fail("%s", err.msg);
    if (o->init_from && init_from(m, o->init_from) != 0)
        return 1;
    vlm_model_alloc_rows(m, rows);
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_SAMPLE);
    if (d && m->local_width && o->refine > 0) {
        VlmRefineOpts r;
        vlm_refine_defaults(&r);
        r.max_steps = (int)o->refine;
        r.tol = o->refine_tol;
        r.batch = o->batch > 0 ? o->batch : 64;
        r.lr = o->refine_lr;
        if (vlm_train_refine(m, d, &r, NULL, &err))
            return fail("%s", err.msg);
    }
    return 0;
}

/* ------------------------------------------------------------ train */

static int cmd_train(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data)
        return fail("train needs --data FILE");
    if (o->objective == VLM_OBJ_IWAE && o->samples < 2)
        fprintf(stderr, "%s: note: --objective iwae with --samples 1 is the "
                "ELBO\n", prog);
    VlmData data, test;
    if (read_data(m, o, o->data, &data))
        return 1;
    bool have_test = false;
    if (o->test) {
        if (read_data(m, o, o->test, &test)) {
            vlm_data_free(&data);
            return 1;
        }
        have_test = true;
    }
    if (want_mask(o)) {
        mask_top_half(&data, o->mask_frac);
        if (have_test)
            mask_top_half(&test, 1);
    }
    VlmTrainOpts t = {
        .data_path = o->data, .test_path = o->test, .save = o->save,
        .load = o->load, .log = o->log, .epochs = o->epochs,
        .every = o->every, .batch = o->batch, .samples = o->samples,
        .lr = o->lr, .clip = o->clip, .optimizer = o->optimizer,
        .sched = o->sched, .objective = o->objective, .seed = o->seed,
        .has_batch = o->has_batch, .has_lr = o->has_lr,
        .has_optimizer = o->has_optimizer, .has_samples = o->has_samples,
        .has_objective = o->has_objective, .has_clip = o->has_clip,
        .has_sched = o->has_sched, .has_epochs = o->has_epochs,
        .tol = o->tol, .reg_covar = o->reg_covar,
        .kmeans_iters = (int)o->kmeans_iters,
    };
    int rc = vlm_train(m, &data, have_test ? &test : NULL, &t, &err);
    vlm_data_free(&data);
    if (have_test)
        vlm_data_free(&test);
    if (rc != 0)
        return fail("%s", err.msg);
    if (o->save)
        printf("saved %s\n", o->save);
    return 0;
}

/* ------------------------------------------------------------ eval */

static int cmd_eval(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data)
        return fail("eval needs --data FILE");
    VlmData d;
    if (read_data(m, o, o->data, &d))
        return 1;
    if (want_mask(o))
        mask_top_half(&d, 1);
    int K = vlm_model_exact(m) ? 1 : o->iw;
    int rows = eval_rows(m, o->batch > 0 ? o->batch : 64, K);
    if (load_trained(m, o, &d, rows)) {
        vlm_data_free(&d);
        return 1;
    }
    VlmItemStats *st = vlm_xmalloc(d.n * sizeof *st);
    if (vlm_infer_eval_data(m, &d, K, st, &err) != 0) {
        free(st);
        vlm_data_free(&d);
        return fail("%s", err.msg);
    }
    VlmEvidence ev;
    vlm_evidence_summarize(d.n, st, K, vlm_model_exact(m), m->local_width > 0,
                           &ev);
    vlm_evidence_print(stdout, &ev, o->data);
    free(st);
    vlm_data_free(&d);
    return 0;
}

/* ------------------------------------------------------------ outputs */

static char **col_names(const VlmModel *m, long D)
{
    char **names = vlm_xmalloc((size_t)D * sizeof *names);
    long c = 0;
    for (int j = 0; j < m->n_observed; j++) {
        const VlmVarInfo *v = &m->vars[m->n_latent + j];
        for (long i = 0; i < v->numel; i++) {
            char buf[96];
            if (v->numel == 1)
                snprintf(buf, sizeof buf, "%s", v->name);
            else
                snprintf(buf, sizeof buf, "%s[%ld]", v->name, i);
            names[c++] = strdup(buf);
        }
    }
    return names;
}

static void free_names(char **names, long n)
{
    for (long i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool image_shape(long D, int h, int w, int *H, int *W)
{
    if (h > 0) {
        if ((long)h * w != D)
            return false;
        *H = h;
        *W = w;
        return true;
    }
    long s = (long)floor(sqrt((double)D) + 0.5);
    if (s * s != D)
        return false;
    *H = *W = (int)s;
    return true;
}

/* Write n rows of D values to .csv, .npy or .png (atomic writers). */
static int write_rows(const VlmModel *m, const char *path, size_t n, long D,
                      const float *x, int h, int w, VlmErr *err)
{
    if (ends_with(path, ".png")) {
        int H, W;
        if (!image_shape(D, h, w, &H, &W)) {
            vlm_err_set(err, "%s: %ld values per item are not an image; give "
                        "--shape HxW", path, D);
            return -1;
        }
        int cols = (int)ceil(sqrt((double)n));
        return vlm_png_grid(path, x, (int)n, H, W, cols, err);
    }
    if (ends_with(path, ".npy"))
        return vlm_data_write_npy(path, n, (size_t)D, x, err);
    char **names = col_names(m, D);
    int rc = vlm_data_write_csv(path, (const char *const *)names, n,
                                (size_t)D, x, err);
    free_names(names, D);
    return rc;
}

/* ------------------------------------------------------------ sample */

static int cmd_sample(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->out)
        return fail("sample needs --out FILE.csv|FILE.png");
    if (!m->desc->sample)
        return fail("this model has no sampler");
    long D = total_numel(m);
    size_t n = (size_t)o->n;
    int chunk = n < 4096 ? (int)n : 4096;
    if (load_trained(m, o, NULL, chunk))
        return 1;
    float *all = vlm_xmalloc(n * (size_t)D * sizeof *all);
    float *os[VLM_MAX_VARS] = {0};
    for (int j = 0; j < m->n_observed; j++)
        os[m->n_latent + j] = vlm_xmalloc(
            (size_t)chunk * (size_t)m->vars[m->n_latent + j].numel *
            sizeof(float));
    m->want_mean = o->mean;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)chunk) {
        int R = n - i0 < (size_t)chunk ? (int)(n - i0) : chunk;
        m->R = m->B = R;
        m->S = 1;
        m->desc->sample(m, os);
        long col = 0;
        for (int j = 0; j < m->n_observed; j++) {
            int v = m->n_latent + j;
            long k = m->vars[v].numel;
            const float *src = o->mean ? m->obs_mean[v] : os[v];
            if (!src) {
                free(all);
                return fail("the model computes no mean for `%s`",
                            m->vars[v].name);
            }
            for (int r = 0; r < R; r++)
                memcpy(all + (i0 + r) * D + col, src + (size_t)r * k,
                       (size_t)k * sizeof *all);
            col += k;
        }
    }
    int rc = write_rows(m, o->out, n, D, all, o->shape_h, o->shape_w, &err);
    for (int j = 0; j < VLM_MAX_VARS; j++)
        free(os[j]);
    free(all);
    if (rc != 0)
        return fail("%s", err.msg);
    printf("wrote %zu %s to %s\n", n, o->mean ? "means" : "samples", o->out);
    return 0;
}

/* ------------------------------------------------------------ posterior */

/* Cluster purity and normalised mutual information (arithmetic mean of
 * the entropies) between cluster ids c and labels y. */
static void purity_nmi(size_t n, const int *c, const int32_t *y, int K,
                       double *purity, double *nmi)
{
    int L = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] + 1 > L)
            L = y[i] + 1;
    double *t = vlm_xcalloc((size_t)K * L, sizeof *t);
    for (size_t i = 0; i < n; i++)
        if (y[i] >= 0)
            t[(size_t)c[i] * L + y[i]] += 1;
    double pur = 0, hc = 0, hy = 0, mi = 0;
    double *py = vlm_xcalloc((size_t)L, sizeof *py);
    for (int k = 0; k < K; k++) {
        double best = 0, pk = 0;
        for (int l = 0; l < L; l++) {
            best = fmax(best, t[(size_t)k * L + l]);
            pk += t[(size_t)k * L + l];
            py[l] += t[(size_t)k * L + l];
        }
        pur += best;
        if (pk > 0)
            hc -= pk / n * log(pk / n);
    }
    for (int l = 0; l < L; l++)
        if (py[l] > 0)
            hy -= py[l] / n * log(py[l] / n);
    for (int k = 0; k < K; k++) {
        double pk = 0;
        for (int l = 0; l < L; l++)
            pk += t[(size_t)k * L + l];
        for (int l = 0; l < L; l++) {
            double pkl = t[(size_t)k * L + l] / n;
            if (pkl > 0)
                mi += pkl * log(pkl / (pk / n * py[l] / n));
        }
    }
    *purity = pur / n;
    *nmi = hc + hy > 0 ? 2 * mi / (hc + hy) : 1;
    free(t);
    free(py);
}

/* Rows for the commands that weigh draws per item (posterior, impute): S
 * draws per item (1 when every latent is summed out), SE = S x E rows per
 * item, and at least one item's SE rows. */
static int draw_rows(const VlmModel *m, const Opts *o, int *S, int *SE)
{
    *S = vlm_model_exact(m) ? 1 : o->samples;
    *SE = *S * (int)m->E;
    int rows = eval_rows(m, o->batch > 0 ? o->batch : 64, *S);
    return rows < *SE ? *SE : rows;
}

/* Labels for the items of d; with --limit the file has more labels than
 * d has items: its first d->n are used. */
static int read_labels(const char *path, VlmData *d, VlmErr *err)
{
    VlmData l = {0};
    if (vlm_data_read_labels(path, &l, err) != 0)
        return -1;
    if (l.n < d->n) {
        vlm_err_set(err, "%s: %zu labels for %zu data items", path, l.n, d->n);
        vlm_data_free(&l);
        return -1;
    }
    free(d->labels);
    d->labels = l.labels;
    l.labels = NULL;
    vlm_data_free(&l);
    return 0;
}

static int cmd_posterior(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data || !o->out)
        return fail("posterior needs --data FILE and --out FILE.csv");
    VlmData d;
    if (read_data(m, o, o->data, &d))
        return 1;
    int S, SE, rows = draw_rows(m, o, &S, &SE);
    if (load_trained(m, o, &d, rows)) {
        vlm_data_free(&d);
        return 1;
    }
    /* Columns: enumerated latents: per element, p(z = k) for each k and
     * the argmax; guided latents with a Normal guide: loc and scale per
     * element; other guided latents: the importance-weighted mean. */
    long ncol = 0;
    for (int j = 0; j < m->n_latent; j++) {
        const VlmVarInfo *v = &m->vars[j];
        if (v->treat == VLM_TREAT_ENUMERATE)
            ncol += v->numel * (v->support + 1);
        else if (m->q_loc[j])
            ncol += 2 * v->numel;
        else
            ncol += v->numel;
    }
    if (ncol == 0) {
        vlm_data_free(&d);
        return fail("the model has no latent variables");
    }
    char **names = vlm_xmalloc((size_t)ncol * sizeof *names);
    long c = 0;
    for (int j = 0; j < m->n_latent; j++) {
        const VlmVarInfo *v = &m->vars[j];
        for (long i = 0; i < v->numel; i++) {
            char el[80], buf[128];
            if (v->numel == 1)
                snprintf(el, sizeof el, "%s", v->name);
            else
                snprintf(el, sizeof el, "%s[%ld]", v->name, i);
            if (v->treat == VLM_TREAT_ENUMERATE) {
                for (long k = 0; k < v->support; k++) {
                    snprintf(buf, sizeof buf, "p(%s=%ld)", el, k);
                    names[c++] = strdup(buf);
                }
                snprintf(buf, sizeof buf, "%s.argmax", el);
                names[c++] = strdup(buf);
            } else if (m->q_loc[j]) {
                snprintf(buf, sizeof buf, "%s.mean", el);
                names[c++] = strdup(buf);
                snprintf(buf, sizeof buf, "%s.scale", el);
                names[c++] = strdup(buf);
            } else {
                snprintf(buf, sizeof buf, "%s.mean", el);
                names[c++] = strdup(buf);
            }
        }
    }
    float *out = vlm_xcalloc(d.n * (size_t)ncol, sizeof *out);
    int *cluster = vlm_xcalloc(d.n, sizeof *cluster);
    int cl_var = -1;
    for (int j = 0; j < m->n_latent && cl_var < 0; j++)
        if (m->vars[j].treat == VLM_TREAT_ENUMERATE && m->vars[j].numel == 1)
            cl_var = j;
    int Bp = rows / SE;
    double *wrow = vlm_xmalloc((size_t)Bp * SE * sizeof *wrow);
    uint32_t *idx = vlm_xmalloc((size_t)Bp * sizeof *idx);
    VlmItemStats *st = vlm_xmalloc(d.n * sizeof *st);
    int rc = 0;
    for (size_t i0 = 0; i0 < d.n && rc == 0; i0 += (size_t)Bp) {
        int nb = d.n - i0 < (size_t)Bp ? (int)(d.n - i0) : Bp;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        vlm_model_fill_batch(m, &d, idx, nb, S);
        if ((rc = vlm_infer_row_weights(m, wrow, st + i0, &err)) != 0)
            break;
        for (int b = 0; b < nb; b++) {
            float *row = out + (i0 + b) * (size_t)ncol;
            long col = 0;
            for (int j = 0; j < m->n_latent; j++) {
                const VlmVarInfo *v = &m->vars[j];
                long nu = v->numel;
                const float *lat = m->lat[j];
                for (long i = 0; i < nu; i++) {
                    if (v->treat == VLM_TREAT_ENUMERATE) {
                        long K = v->support;
                        for (int k = 0; k < SE; k++) {
                            size_t r = (size_t)b * SE + k;
                            long z = (long)lat[r * nu + i];
                            if (z >= 0 && z < K)
                                row[col + z] += (float)wrow[r];
                        }
                        long best = 0;
                        for (long k = 1; k < K; k++)
                            if (row[col + k] > row[col + best])
                                best = k;
                        row[col + K] = (float)best;
                        if (j == cl_var)
                            cluster[i0 + b] = (int)best;
                        col += K + 1;
                    } else if (m->q_loc[j]) {
                        size_t r = (size_t)b * SE;
                        row[col++] = m->q_loc[j][r * nu + i];
                        row[col++] = m->q_scale[j][r * nu + i];
                    } else {
                        double s = 0;
                        for (int k = 0; k < SE; k++) {
                            size_t r = (size_t)b * SE + k;
                            s += wrow[r] * lat[r * nu + i];
                        }
                        row[col++] = (float)s;
                    }
                }
            }
        }
    }
    if (rc == 0)
        rc = vlm_data_write_csv(o->out, (const char *const *)names, d.n,
                                (size_t)ncol, out, &err);
    int ret = 0;
    if (rc != 0) {
        ret = fail("%s", err.msg);
    } else {
        VlmEvidence ev;
        vlm_evidence_summarize(d.n, st, S, vlm_model_exact(m),
                               m->local_width > 0, &ev);
        vlm_evidence_line(stderr, &ev, "posterior");
        printf("wrote the posterior of %zu items to %s\n", d.n, o->out);
        if (o->labels) {
            if (cl_var < 0) {
                ret = fail("--labels needs an enumerated scalar latent "
                           "(a cluster id)");
            } else if (read_labels(o->labels, &d, &err) != 0) {
                ret = fail("%s", err.msg);
            } else {
                double pur, nmi;
                purity_nmi(d.n, cluster, d.labels,
                           (int)m->vars[cl_var].support, &pur, &nmi);
                printf("clusters of `%s` vs %s: purity %.4f  NMI %.4f\n",
                       m->vars[cl_var].name, o->labels, pur, nmi);
            }
        }
    }
    free_names(names, ncol);
    free(out);
    free(cluster);
    free(st);
    free(wrow);
    free(idx);
    vlm_data_free(&d);
    return ret;
}

/* ------------------------------------------------------------ impute */

static int cmd_impute(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data || !o->out)
        return fail("impute needs --data FILE and --out FILE");
    VlmData d;
    if (read_data(m, o, o->data, &d))
        return 1;
    vlm_data_floats(&d);   /* values are rewritten below */
    size_t n = d.n, D = d.d;
    /* truth: the data as read (NaN where missing); mask: 1 = observed in
     * what the model sees (data mask x synthetic mask). */
    float *truth = vlm_xmalloc(n * D * sizeof *truth);
    for (size_t i = 0; i < n * D; i++)
        truth[i] = d.mask && d.mask[i] == 0 ? NAN : d.x[i];
    bool synthetic = o->mask && !strcmp(o->mask, "top-half");
    if (!d.mask)
        d.mask = vlm_xmalloc(n * D * sizeof *d.mask);
    float *mask = d.mask;
    for (size_t i = 0; i < n * D; i++)
        mask[i] = isnan(truth[i]) ? 0.0f : 1.0f;
    if (synthetic)
        /* the first half of each item's values: the top rows of a
         * row-major image */
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < D / 2; k++)
                mask[i * D + k] = 0;
    for (size_t i = 0; i < n * D; i++)
        if (mask[i] == 0)
            d.x[i] = 0;
    int S, SE, rows = draw_rows(m, o, &S, &SE);
    if (load_trained(m, o, &d, rows)) {
        free(truth);
        vlm_data_free(&d);
        return 1;
    }
    m->want_mean = true;
    float *imp = vlm_xmalloc(n * D * sizeof *imp);
    int Bp = rows / SE;
    double *wrow = vlm_xmalloc((size_t)Bp * SE * sizeof *wrow);
    uint32_t *idx = vlm_xmalloc((size_t)Bp * sizeof *idx);
    VlmItemStats *st = vlm_xmalloc(n * sizeof *st);
    int rc = 0;
    for (size_t i0 = 0; i0 < n && rc == 0; i0 += (size_t)Bp) {
        int nb = n - i0 < (size_t)Bp ? (int)(n - i0) : Bp;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        vlm_model_fill_batch(m, &d, idx, nb, S);
        if ((rc = vlm_infer_row_weights(m, wrow, st + i0, &err)) != 0)
            break;
        for (int b = 0; b < nb; b++) {
            size_t it = i0 + b;
            long col = 0;
            for (int j = 0; j < m->n_observed; j++) {
                int v = m->n_latent + j;
                long nu = m->vars[v].numel;
                const float *mean = m->obs_mean[v];
                for (long k = 0; k < nu; k++) {
                    size_t e = it * D + col + k;
                    if (mask[e] != 0 && !o->reconstruct) {
                        imp[e] = d.x[e];
                        continue;
                    }
                    double s = 0;
                    for (int q = 0; q < SE; q++) {
                        size_t r = (size_t)b * SE + q;
                        s += wrow[r] * (mean ? mean[r * nu + k] : NAN);
                    }
                    imp[e] = (float)s;
                }
                col += nu;
            }
        }
    }
    int ret = 0;
    if (rc != 0) {
        ret = fail("%s", err.msg);
        goto done;
    }
    VlmEvidence ev;
    vlm_evidence_summarize(n, st, S, vlm_model_exact(m), m->local_width > 0,
                           &ev);
    vlm_evidence_line(stderr, &ev, "impute");
    if (write_rows(m, o->out, n, (long)D, imp, d.shape[0] && d.rank == 2 ?
                   d.shape[0] : 0, d.rank == 2 ? d.shape[1] : 0, &err) != 0) {
        ret = fail("%s", err.msg);
        goto done;
    }
    size_t missing = 0;
    for (size_t i = 0; i < n * D; i++)
        missing += mask[i] == 0;
    if (o->reconstruct)
        printf("reconstructed %zu items (E[x | z], z from the posterior given "
               "the observed entries); wrote %s\n", n, o->out);
    else
        printf("imputed %zu missing values of %zu items; wrote %s\n", missing,
               n, o->out);
    if (synthetic) {
        /* MSE on the entries the mask hid but the data knows, against
         * filling each entry with its mean over the data's known values. */
        double se = 0, se_mean = 0;
        size_t cnt = 0;
        for (size_t k = 0; k < D; k++) {
            double mu = 0;
            size_t c = 0;
            for (size_t i = 0; i < n; i++)
                if (!isnan(truth[i * D + k]))
                    mu += truth[i * D + k], c++;
            mu = c ? mu / c : 0;
            for (size_t i = 0; i < n; i++) {
                size_t e = i * D + k;
                if (mask[e] == 0 && !isnan(truth[e])) {
                    se += (imp[e] - truth[e]) * (imp[e] - truth[e]);
                    se_mean += (mu - truth[e]) * (mu - truth[e]);
                    cnt++;
                }
            }
        }
        if (cnt)
            printf("hidden entries: %zu  MSE %.6f  (per-entry mean of the "
                   "data: MSE %.6f)\n", cnt, se / cnt, se_mean / cnt);
    }
    if (o->png) {
        int H, W;
        int sh = d.rank == 2 ? d.shape[0] : o->shape_h;
        int sw = d.rank == 2 ? d.shape[1] : o->shape_w;
        if (!image_shape((long)D, sh, sw, &H, &W)) {
            ret = fail("%s: %zu values per item are not an image", o->png, D);
            goto done;
        }
        int k = n < 10 ? (int)n : 10;
        float *g = vlm_xmalloc((size_t)3 * k * D * sizeof *g);
        for (int i = 0; i < k; i++)
            for (size_t e = 0; e < D; e++) {
                size_t at = (size_t)i * D + e;
                float t = truth[at];
                g[at] = mask[at] != 0 ? t : 0.5f;        // observed (grey)
                g[(size_t)k * D + at] = imp[at];
                g[(size_t)2 * k * D + at] = isnan(t) ? 0.5f : t;
            }
        if (vlm_png_grid(o->png, g, 3 * k, H, W, k, &err) != 0)
            ret = fail("%s", err.msg);
        else
            printf("wrote %s (rows: observed, %s, true)\n", o->png,
                   o->reconstruct ? "reconstructed" : "imputed");
        free(g);
    }
done:
    free(truth);
    free(imp);
    free(st);
    free(wrow);
    free(idx);
    vlm_data_free(&d);
    return ret;
}

/* ------------------------------------------------------------ gradvar */

/* Trace of the covariance of the guide's gradient over n draws of the
 * training gradient on one fixed minibatch (items 0..B-1), with S samples
 * per item; `none` fixes the baseline at 0, otherwise the estimator runs
 * as in training (moving average at S = 1 after 20 warm-up draws,
 * leave-one-out at S > 1). Also returns the squared norm of the mean. */
static int grad_trace(VlmModel *m, const VlmData *d, int B, int S, long n,
                      bool none, double *trace, double *mean_sq, VlmErr *err)
{
    size_t nw = m->n_w;
    double *s1 = vlm_xcalloc(nw ? nw : 1, sizeof *s1);
    double *s2 = vlm_xcalloc(nw ? nw : 1, sizeof *s2);
    uint32_t *idx = vlm_xmalloc((size_t)B * sizeof *idx);
    for (int b = 0; b < B; b++)
        idx[b] = (uint32_t)b;
    VlmInfer st;
    vlm_infer_init(&st, VLM_OBJ_ELBO);
    if (none) {          /* baseline 0, never updated (decay 1) */
        st.baseline = 0;
        st.baseline_set = true;
        st.decay = 1;
    }
    int warm = none || S > 1 ? 0 : 20;
    int rc = 0;
    for (long t = 0; t < warm + n && rc == 0; t++) {
        vlm_model_fill_batch(m, d, idx, B, S);
        double obj;
        if ((rc = vlm_infer_grad(m, &st, &obj, err)) != 0 || t < warm)
            continue;
        for (int i = 0; i < m->n_params; i++) {
            const VlmParamInfo *p = &m->params[i];
            if (!p->guide || p->local)
                continue;
            for (size_t k = p->offset; k < p->offset + p->count; k++) {
                s1[k] += m->dw[k];
                s2[k] += (double)m->dw[k] * m->dw[k];
            }
        }
    }
    double tr = 0, ms = 0;
    for (size_t k = 0; k < nw; k++) {
        double mu = s1[k] / n;
        tr += (s2[k] - n * mu * mu) / (n - 1);
        ms += mu * mu;
    }
    *trace = tr;
    *mean_sq = ms;
    free(s1);
    free(s2);
    free(idx);
    return rc;
}

static int cmd_gradvar(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data)
        return fail("gradvar needs --data FILE");
    int score = -1;
    for (int j = 0; j < m->n_latent && score < 0; j++)
        if (m->vars[j].treat == VLM_TREAT_SCORE)
            score = j;
    if (score < 0)
        return fail("the model has no latent with a score-function gradient "
                    "(see vlmc --plan): nothing to measure");
    VlmData d;
    if (read_data(m, o, o->data, &d))
        return 1;
    int B = o->batch < (int)d.n ? o->batch : (int)d.n;
    long n = o->n > 1 ? o->n : 2;
    int S = o->has_samples ? o->samples : 1;
    if (load_trained(m, o, NULL, B * S * (int)m->E)) {
        vlm_data_free(&d);
        return 1;
    }
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_NOISE);
    double t0, m0, t1, m1, t2 = 0, m2 = 0;
    int rc = grad_trace(m, &d, B, 1, n, true, &t0, &m0, &err);
    if (rc == 0)
        rc = grad_trace(m, &d, B, 1, n, false, &t1, &m1, &err);
    if (rc == 0 && S > 1)
        rc = grad_trace(m, &d, B, S, n, false, &t2, &m2, &err);
    vlm_data_free(&d);
    if (rc != 0)
        return fail("%s", err.msg);
    printf("gradvar: guide (phi) gradient of the ELBO on %d items, %ld draws "
           "each; variance = trace of the covariance\n", B, n);
    printf("  no baseline (b = 0)          variance %.6g  |mean|^2 %.6g\n",
           t0, m0);
    printf("  moving-average baseline      variance %.6g  |mean|^2 %.6g\n",
           t1, m1);
    printf("  ratio none / moving average  %.2f\n", t0 / t1);
    if (S > 1) {
        printf("  leave-one-out, %d samples    variance %.6g  |mean|^2 %.6g\n",
               S, t2, m2);
        printf("  ratio none / leave-one-out   %.2f  (x %d for equal cost: "
               "%.2f)\n", t0 / t2, S, t0 / (t2 * S));
    }
    return 0;
}

/* ------------------------------------------------------------ info */

static int cmd_info(VlmModel *m)
{
    const VlmModelDesc *d = m->desc;
    printf("model %s\n", d->name);
    if (d->n_consts) {
        printf("consts:");
        for (int i = 0; i < d->n_consts; i++)
            printf(" %s=%ld", d->const_names[i], d->const_values[i]);
        printf("\n");
    }
    printf("\n-- source\n%s", d->source ? d->source : "");
    if (d->source && d->source[0] && d->source[strlen(d->source) - 1] != '\n')
        printf("\n");
    printf("\n-- plan\n%s", d->plan ? d->plan : "");
    if (d->plan && d->plan[0] && d->plan[strlen(d->plan) - 1] != '\n')
        printf("\n");
    printf("\n-- variables\n");
    for (int j = 0; j < m->n_vars; j++) {
        static const char *tr[] = {"enumerate", "reparameterized",
                                   "score function", "automatic guide", ""};
        const VlmVarInfo *v = &m->vars[j];
        printf("  %-8s %-12s %-12s %6ld elements  %s\n",
               v->kind == VLM_VAR_LATENT ? "latent" : "observed", v->name,
               v->dist ? v->dist : "", v->numel, tr[v->treat]);
    }
    printf("\n-- parameters\n");
    size_t theta = 0, phi = 0, loc = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        char shape[64] = "";
        for (int k = 0; k < p->rank; k++) {
            size_t u = strlen(shape);
            snprintf(shape + u, sizeof shape - u, "%s%ld", k ? "x" : "",
                     p->dims[k]);
        }
        printf("  %-24s %-12s %10zu  %s%s\n", p->name, p->rank ? shape : "scalar",
               p->count, p->guide ? "guide" : "model",
               p->local ? ", per item" : "");
        if (p->local)
            loc += p->count;
        else if (p->guide)
            phi += p->count;
        else
            theta += p->count;
    }
    printf("  total: %zu model + %zu guide parameters", theta, phi);
    if (loc)
        printf(" + %zu per item", loc);
    printf("\n\n-- memory\n");
    printf("  parameters, gradients, Adam moments: %.2f MB\n",
           4.0 * 4 * m->n_w / 1e6);
    printf("  activations: %zu bytes per row + %zu fixed; rows = batch x "
           "samples x %ld (enumeration)\n", m->bytes_per_row, m->bytes_fixed,
           m->E);
    printf("  e.g. --batch 64: %.2f MB\n",
           (m->bytes_fixed + (double)m->bytes_per_row * 64 * m->E) / 1e6);
    if (m->local_width)
        printf("  local parameters: %zu floats x 4 per item\n",
               m->local_width);
    return 0;
}

/* ------------------------------------------------------------ params */

/* The global parameters as stored, one CSV line per row (tests and
 * scripts read fitted values with it, e.g. a mixture's means). */
static int cmd_params(VlmModel *m, const Opts *o)
{
    VlmErr err;
    vlm_model_init_params(m, o->seed);
    if (o->load && vlm_model_load(m, o->load, NULL, &err) != 0)
        return fail("%s", err.msg);
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (p->local)
            continue;
        size_t rows = p->rank >= 2 ? (size_t)p->dims[0] : 1;
        size_t w = p->count / (rows ? rows : 1);
        const float *x = m->w + p->offset;
        for (size_t r = 0; r < rows; r++) {
            printf("%s,%zu", p->name, r);
            for (size_t j = 0; j < w; j++) {
                double v = x[r * w + j];
                printf(",%.9g", v);
            }
            printf("\n");
        }
    }
    return 0;
}

/* A checkpoint records the consts its model was trained with: without an
 * explicit --set, a command that loads it uses them (a checkpoint that
 * cannot be read is left to the real load to report). */
static void consts_from_checkpoint(const VlmModelDesc *desc, const char *path)
{
    VlmCkpt c;
    VlmErr err;
    memset(&c, 0, sizeof c);
    if (desc->n_consts == 0 || vlm_ckpt_load(path, 0, &c, &err) != 0)
        return;
    for (int i = 0; i < c.n_tensors; i++) {
        if (strcmp(c.t[i].name, "consts") || c.t[i].count != 2 * (size_t)desc->n_consts)
            continue;
        for (int k = 0; k < desc->n_consts; k++) {
            float hi = c.t[i].data[2 * k], lo = c.t[i].data[2 * k + 1];
            long v = (long)hi * 65536 + (long)lo;
            if (hi >= 0 && lo >= 0 && v > 0 && v != desc->const_values[k]) {
                fprintf(stderr, "note: %s was trained with %s=%ld\n", path, desc->const_names[k], v);
                desc->const_values[k] = v;
            }
        }
    }
    vlm_ckpt_free(&c);
}

/* ------------------------------------------------------------ main */

int vlm_main(const VlmModelDesc *desc, int argc, char **argv)
{
    if (argc > 0 && argv[0]) {
        const char *s = strrchr(argv[0], '/');
        prog = s ? s + 1 : argv[0];
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage_main(argc < 2 ? stderr : stdout, desc);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "gradcheck")) {
        /* developer check of the generated code: gradcheck [--seed N] */
        uint64_t seed = 1;
        if (argc == 4 && !strcmp(argv[2], "--seed"))
            seed = strtoull(argv[3], NULL, 10);
        else if (argc != 2) {
            fprintf(stderr, "usage: %s gradcheck [--seed N]\n", prog);
            return 2;
        }
        openblas_set_num_threads(1);
        return vlm_gradcheck(desc, seed, stdout);
    }
    int ci = -1;
    for (int i = 0; i < N_CMDS; i++)
        if (!strcmp(argv[1], cmds[i].name))
            ci = i;
    if (ci < 0) {
        fprintf(stderr, "%s: error: unknown command `%s`\n", prog, argv[1]);
        usage_main(stderr, desc);
        return 2;
    }
    Opts o = {
        .cmd = cmds[ci].name, .format = VLM_FMT_AUTO, .epochs = 10,
        .every = 0, .n = 16, .refine = 5000, .batch = 64, .samples = 1,
        .iw = 1000, .threads = default_threads(), .lr = 1e-3f, .refine_lr = 5e-2f,
        .refine_tol = 1e-4,
        .mask_frac = 1,
        .optimizer = VLM_OPT_ADAM, .sched = VLM_SCHED_CONST,
        .objective = VLM_OBJ_ELBO, .seed = 1,
        .tol = 1e-3, .reg_covar = 1e-3, .kmeans_iters = 300,
    };
    if (!strcmp(o.cmd, "posterior") || !strcmp(o.cmd, "impute"))
        o.samples = 100;
    if (!strcmp(o.cmd, "gradvar"))
        o.n = 100;
    int rc = parse_opts(&cmds[ci], ci, desc, argc - 2, argv + 2, &o);
    if (rc)
        return rc;
    openblas_set_num_threads(1);   /* GEMMs are split by vlm's own pool */
    vlm_parallel_set_threads(o.threads);
    if (o.load && !o.set_given)
        consts_from_checkpoint(desc, o.load);
    VlmModel m;
    VlmErr err;
    if (vlm_model_init(&m, desc, &err) != 0)
        return fail("%s", err.msg);
    switch (ci) {
    case 0: rc = cmd_train(&m, &o); break;
    case 1: rc = cmd_eval(&m, &o); break;
    case 2: rc = cmd_sample(&m, &o); break;
    case 3: rc = cmd_posterior(&m, &o); break;
    case 4: rc = cmd_impute(&m, &o); break;
    case 5: rc = cmd_info(&m); break;
    case 6: rc = cmd_gradvar(&m, &o); break;
    default: rc = cmd_params(&m, &o); break;
    }
    vlm_model_free(&m);
    return rc;
}
