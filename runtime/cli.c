/* cli.c — the command line of every generated trainer: vlm_main parses
 * `./model <command> [options]` and runs train, eval, sample, posterior,
 * impute or info through the generic drivers. Errors: one line
 * "vlm_cli_prog: error: ..." and exit 1; bad usage: exit 2. No inference here
 * beyond `gradvar`, which only repeats the driver's gradient. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
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

const char *vlm_cli_prog = "model";

/* Where errors go: stderr, or on ranks > 0 under MPI (whose ordinary
 * output is silenced) a copy of the original stderr. */
static FILE *err_out;

int vlm_cli_fail(const char *fmt, ...)
{
    FILE *f = err_out ? err_out : stderr;
    va_list ap;
    va_start(ap, fmt);
    if (vlm_comm_world()->size > 1)
        fprintf(f, "%s: error (rank %d): ", vlm_cli_prog, vlm_comm_world()->rank);
    else
        fprintf(f, "%s: error: ", vlm_cli_prog);
    vfprintf(f, fmt, ap);
    fprintf(f, "\n");
    fflush(f);
    va_end(ap);
    return 1;
}

/* ------------------------------------------------------------ options */


/* A command: its help text, the options it accepts (a space-separated
 * list, each name between spaces) and the function that runs it. */
typedef struct Cmd {
    const char *name, *summary, *usage, *help, *allowed;
    int (*run)(VlmModel *m, const Opts *o);
} Cmd;

static const Cmd cmds[] = {
    {"train", "fit the model to data",
     "train --data FILE [options]",
     "  --data FILE          training data (.idx[.gz], .csv, .npy): the observed\n"
     "                       and input variables in consecutive columns, in\n"
     "                       declaration order\n"
     "  --data NAME=FILE     (repeatable) variable NAME's columns from a file of\n"
     "                       its own, e.g. --data x=images.idx3 --data\n"
     "                       y=labels.idx1 (raw class ids); the files must have\n"
     "                       the same items; a plain --data FILE holds the rest\n"
     "  --format F           idx | csv | npy (default: from the file)\n"
     "  --test FILE          also report the test ELBO after every epoch\n"
     "                       (--test NAME=FILE binds like --data)\n"
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
     "  --gemm B             openblas | onednn: the backend of the nets' matrix\n"
     "                       products (default onednn, or $VLM_GEMM)\n"
     "  --precision P        fp32 | bf16 (default fp32): bf16 multiplies the\n"
     "                       nets' layers in bf16 (fp32 accumulation; oneDNN on\n"
     "                       a CPU with AVX512-BF16 or AMX); weights, optimizer\n"
     "                       state and densities stay fp32/double\n"
     "  --set NAME=VALUE     change a const of the model (repeatable)\n"
     "  --objective O        elbo | iwae (default elbo)\n"
     "  --samples K          samples per item for the objective (default 1)\n"
     "  --save CKPT          write a checkpoint at the end (atomically)\n"
     "  --every N            ... and after every N epochs\n"
     "  --load CKPT          resume from a checkpoint (continues exactly)\n"
     "  --log FILE.csv       per-epoch metrics (appended to when its columns\n"
     "                       match)\n"
     "  --kl-weight B        weigh the guided latents' log p(z) - log q(z) (or\n"
     "                       KL) by B in training (beta-VAE; default 1: the\n"
     "                       ELBO); eval always reports the unweighted bound\n"
     "  --kl-warmup N        ramp that weight linearly from 0 over the first N\n"
     "                       epochs (KL warm-up; default 0: no ramp)\n"
     "  --keep-labels Y=N    semi-supervised: keep the given values of the\n"
     "                       partly observed class Y in N items per class\n"
     "                       (chosen from --seed), hide the rest\n"
     "  --labelled-only      ... and train on those items only (a baseline)\n"
     "  --hide NAME          treat observed variable NAME as missing in every\n"
     "                       item (also eval, posterior, impute)\n"
     "  --aux-weight A       semi-supervised models (a guide for a partly\n"
     "                       observed variable y): weight of log q(y | x) in\n"
     "                       the items where y is given (default 0.1 N / N_l,\n"
     "                       Kingma et al. 2014's alpha = 0.1 N)\n"
     "--save and --log are checked for writability before the data is read,\n"
     "and locked for the run: a second trainer on the same file is refused.\n"
     "conjugate Gaussian mixtures (see `info`) train by EM unless --optimizer\n"
     "is given; --epochs is then the maximum of iterations (default 100):\n"
     "  --tol T              stop when the mean log-likelihood per item\n"
     "                       changes by less than T (default 1e-3)\n"
     "  --reg-covar R        added to every variance (default 1e-3); a\n"
     "                       component that collapses onto one value (variance\n"
     "                       ~0, e.g. with 0) stops training with an error\n"
     "  --kmeans-iters N     Lloyd iterations of the k-means initialisation\n"
     "                       (default 300, scikit-learn's; it stops earlier\n"
     "                       when stable)\n",
     " data format test epochs batch lr optimizer schedule clip "
     "seed threads gemm precision set objective samples save every load log "
     "limit binarize mask mask-frac tol reg-covar kmeans-iters aux-weight kl-weight kl-warmup hide keep-labels labelled-only ",
     vlm_cmd_train},
    {"eval", "bounds and log-likelihood estimates on data",
     "eval --data FILE --load CKPT [options]",
     "  --data FILE          data to evaluate (or --data NAME=FILE, repeatable,\n"
     "                       as for train)\n"
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
     "  --hide NAME          treat observed variable NAME as missing in every\n"
     "                       item (e.g. a class, to test its prediction)\n"
     "  --seed S, --threads T, --set NAME=VALUE\n"
     "  --gemm B, --precision P  as for train (default onednn, fp32)\n",
     " data format load iw batch refine refine-lr refine-tol seed threads gemm precision set "
     "limit binarize mask init-from hide ",
     vlm_cmd_eval},
    {"sample", "draw from the model",
     "sample [--load CKPT] -n N --out FILE.csv|FILE.png [options]",
     "  --load CKPT          trained checkpoint (without: the parameters as\n"
     "                       initialised from --seed)\n"
     "  -n N                 number of samples (default 16)\n"
     "  --data FILE          a model with inputs: their values, one draw per\n"
     "                       row (instead of -n); the file holds the inputs\n"
     "                       in declaration order, or every data variable (the\n"
     "                       observed columns are then ignored); or\n"
     "                       --data NAME=FILE per input. --format, --limit N\n"
     "  --out FILE           .csv/.npy: one sample per row, every observed and\n"
     "                       input column in declaration order (the inputs as\n"
     "                       given: a file to train on); .png: image grid of\n"
     "                       the observed values; checked for writability\n"
     "                       before sampling\n"
     "  --shape HxW          image shape for .png (default: square)\n"
     "  --mean               write E[x | z] instead of raw samples\n"
     "  --latents FILE       also write the latents of each draw (.csv/.npy,\n"
     "                       one row per sample, every latent's elements in\n"
     "                       declaration order): e.g. a chain's true paths\n"
     "  --seed S, --threads T, --set NAME=VALUE\n"
     "  --gemm B, --precision P  as for train (default onednn, fp32)\n",
     " load n out shape mean seed threads gemm precision set data format limit latents ",
     vlm_cmd_sample},
    {"posterior", "per-item posterior over the latents",
     "posterior --data FILE --load CKPT --out FILE.csv [options]",
     "  --data FILE, --format F, --load CKPT (--data NAME=FILE: as for train)\n"
     "  --out FILE.csv       per item: p(z=k) and argmax for enumerated\n"
     "                       latents; the guide's mean and scale for latents\n"
     "                       with a Normal guide; else the importance-weighted\n"
     "                       posterior mean (checked for writability before\n"
     "                       any work)\n"
     "  --samples K          importance samples for guided latents (default 100)\n"
     "  --map                a Markov chain: its most probable path (Viterbi),\n"
     "                       one column per step, instead of the per-step\n"
     "                       marginals p(z[t]=k) (forward-backward)\n"
     "  --labels FILE        print cluster purity and NMI against class labels:\n"
     "                       an idx1 file, or a one-column CSV of integer ids\n"
     "                       0..65535 (a header line allowed); one label per\n"
     "                       data item (with --limit N: the file's count or N,\n"
     "                       the first N used), checked before any output\n"
     "  --limit N            use only the first N items of each data file\n"
     "  --binarize           threshold the data at 0.5 (x > 0.5 -> 1, else 0)\n"
     "  --mask M             top-half | none: hide the first half of each item\n"
     "  --hide NAME          treat observed variable NAME as missing in every\n"
     "                       item (e.g. a class, to test its prediction)\n"
     "  --init-from CKPT     as for eval\n"
     "  --refine N, --refine-tol T, --refine-lr LR (as for eval), --batch B,\n"
     "  --seed S, --threads T, --set\n"
     "  --gemm B, --precision P  as for train (default onednn, fp32)\n",
     " data format load out samples map labels refine refine-lr refine-tol "
     "batch seed threads gemm precision set limit binarize mask init-from hide ",
     vlm_cmd_posterior},
    {"impute", "fill missing entries",
     "impute --data FILE --load CKPT --out FILE [options]",
     "  --data FILE, --format F, --load CKPT (--data NAME=FILE: as for train)\n"
     "  --out FILE           .csv, .npy or .png: the data with missing entries\n"
     "                       replaced by posterior-predictive means (--out,\n"
     "                       --png and --probs are checked for writability\n"
     "                       before any work)\n"
     "  --mask M             top-half | none (default none); NaN entries are\n"
     "                       always missing\n"
     "  --samples K          importance samples per item (default 100)\n"
     "  --png FILE           rows observed / imputed / true for the first items\n"
     "  --probs FILE.csv     also write, per item, the probabilities of each\n"
     "                       value of the partly observed discrete variables\n"
     "                       (their missing entries are filled with the most\n"
     "                       probable value)\n"
     "  --reconstruct        every entry, observed ones too, replaced by its\n"
     "                       posterior-predictive mean (reconstructions)\n"
     "  --shape HxW          image shape for --png (default: from the data,\n"
     "                       else square)\n"
     "  --limit N            use only the first N items of each data file\n"
     "  --binarize           threshold the data at 0.5 (x > 0.5 -> 1, else 0)\n"
     "  --init-from CKPT     as for eval\n"
     "  --refine N, --refine-tol T, --refine-lr LR (as for eval), --batch B,\n"
     "  --hide NAME          treat observed variable NAME as missing in every\n"
     "                       item (e.g. a class, to test its prediction)\n"
     "  --seed S, --threads T, --set\n"
     "  --gemm B, --precision P  as for train (default onednn, fp32)\n",
     " data format load out mask samples png refine refine-lr refine-tol "
     "batch seed threads gemm precision set limit binarize init-from reconstruct shape probs hide ",
     vlm_cmd_impute},
    {"info", "the model, its plan, parameters and memory",
     "info [--set NAME=VALUE] [--gemm B]",
     "  --set NAME=VALUE     change a const\n"
     "  --gemm B             openblas | onednn: the backend to report (default\n"
     "                       onednn, or $VLM_GEMM)\n",
     " set gemm ",
     vlm_cmd_info},
    {"gradvar", "variance of the score-function gradient, with and without "
     "baseline",
     "gradvar --data FILE --load CKPT [options]",
     "  --data FILE, --format F, --limit N, --binarize (--data NAME=FILE: as\n"
     "                       for train)\n"
     "  --mask M             top-half | none: hide the first half of each item\n"
     "  --load CKPT          trained checkpoint (without: the initialisation)\n"
     "  --batch B            the minibatch: the first B items (default 64)\n"
     "  -n N                 gradient draws per estimator (default 100)\n"
     "  --samples K          also measure the leave-one-out baseline with K\n"
     "                       samples per item (K > 1)\n"
     "  --seed S, --threads T, --set NAME=VALUE\n"
     "  --gemm B, --precision P  as for train (default onednn, fp32)\n"
     "\nRepeats the training gradient of one fixed minibatch with fresh guide\n"
     "noise and prints the variance of the guide's (phi) gradient, summed\n"
     "over coordinates, for: no baseline (b = 0), the moving-average baseline\n"
     "of training (S = 1, warmed up for 20 draws first), and with --samples\n"
     "K > 1 the leave-one-out baseline; the ratios tell the reduction.\n",
     " data format load batch n samples seed threads gemm precision set limit "
     "binarize mask ",
     vlm_cmd_gradvar},
    {"params", "print the parameters as CSV",
     "params [--load CKPT] [options]",
     "  --load CKPT          trained checkpoint (without: the initialisation)\n"
     "  --seed S, --set NAME=VALUE\n"
     "\nOne line per parameter row: name,row,value,value,... (a matrix [K, D]\n"
     "prints K rows of D values; vectors and scalars one row). Values are\n"
     "as stored: a positive param's log, a unit param's logit, a simplex\n"
     "param's logits.\n",
     " load seed set ",
     vlm_cmd_params},
    {"gradcheck", "check the generated gradients against finite differences",
     "gradcheck [options]",
     "  --seed S             seed of the parameters and data it checks at\n"
     "                       (default 1)\n"
     "  --set NAME=VALUE     change a const of the model (repeatable)\n"
     "  --threads T          threads of the runtime's loops\n"
     "  --gemm B             openblas | onednn: the products' backend (default\n"
     "                       onednn, or $VLM_GEMM); gradcheck is fp32\n"
     "\nRuns the generated backward passes on a small batch of synthetic data\n"
     "and compares every gradient with central finite differences in double\n"
     "precision; also checks the param_ready reports. Exit 0 when all pass.\n",
     " seed set threads gemm ",
     vlm_cmd_gradcheck},
};
#define N_CMDS ((int)(sizeof cmds / sizeof cmds[0]))

static void usage_main(FILE *f, const VlmModelDesc *d)
{
    fprintf(f, "usage: %s <command> [options]\n\n%s: a vlm-generated trainer "
            "for the model `%s`.\n\ncommands:\n", vlm_cli_prog, vlm_cli_prog, d->name);
    for (int i = 0; i < N_CMDS; i++)
        fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\n`%s <command> --help` lists a command's options.\n", vlm_cli_prog);
}

static void usage_cmd(FILE *f, const Cmd *c)
{
    fprintf(f, "usage: %s %s\n\n%s.\n\noptions:\n%s", vlm_cli_prog, c->usage,
            c->summary, c->help);
}

static int bad_usage(const Cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad_usage(const Cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", vlm_cli_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    /* the usage line and a pointer to the options, not the whole list:
     * the error must stay on the screen */
    fprintf(stderr, "usage: %s %s\n%s: run `%s %s --help` for the options\n", vlm_cli_prog,
            c->usage, vlm_cli_prog, vlm_cli_prog, c->name);
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


/* parse_opts' return when it printed --help: exit 0 without running. */
#define HELP_SHOWN (-1)

static int parse_opts(const Cmd *c, const VlmModelDesc *d, int argc,
                      char **argv, Opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage_cmd(stdout, c);
            return HELP_SHOWN;
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
        if (!strstr(c->allowed, key))
            return bad_usage(c, "unknown option `%s` for %s", a, c->name);
        bool flag = !strcmp(name, "mean") || !strcmp(name, "binarize") ||
                    !strcmp(name, "reconstruct") || !strcmp(name, "labelled-only") ||
                    !strcmp(name, "map");
        if (flag) {
            if (val)
                return bad_usage(c, "--%s takes no value", name);
            if (!strcmp(name, "mean"))
                o->mean = true;
            else if (!strcmp(name, "labelled-only"))
                o->labelled_only = true;
            else if (!strcmp(name, "reconstruct"))
                o->reconstruct = true;
            else if (!strcmp(name, "map"))
                o->map = true;
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
        /* the option as the user spells it: -n, else --name */
        const char *shown = !strcmp(name, "n") ? "-n" : NULL;
        char dashed[70];
        if (!shown) {
            snprintf(dashed, sizeof dashed, "--%s", name);
            shown = dashed;
        }
#define NEED(cond, what)                                                    \
    do {                                                                    \
        if (!(cond))                                                        \
            return bad_usage(c, "%s expects %s, got `%s`", shown, what,     \
                             val);                                          \
    } while (0)
/* An integer in [lo, hi]; the message states the range. */
#define NEED_INT(lo, hi)                                                    \
    do {                                                                    \
        if (!parse_long(val, LONG_MIN, &L) || L < (lo) || L > (hi))         \
            return bad_usage(c, "%s expects an integer from %ld to %ld, "   \
                             "got `%s`", shown, (long)(lo), (long)(hi),     \
                             val);                                          \
    } while (0)
        if (!strcmp(name, "data") || !strcmp(name, "test")) {
            bool t = name[0] == 't';
            const char **args = t ? o->test_args : o->data_args;
            int *n = t ? &o->n_test_args : &o->n_data_args;
            if (*n == VLM_MAX_VARS)
                return bad_usage(c, "at most %d --%s files", VLM_MAX_VARS, name);
            args[(*n)++] = val;
            if (t) o->test = args[0];
            else o->data = args[0];
        }
        else if (!strcmp(name, "save")) o->save = val;
        else if (!strcmp(name, "load")) o->load = val;
        else if (!strcmp(name, "log")) o->log = val;
        else if (!strcmp(name, "out")) o->out = val;
        else if (!strcmp(name, "png")) o->png = val;
        else if (!strcmp(name, "labels")) o->labels = val;
        else if (!strcmp(name, "latents")) o->latents = val;
        else if (!strcmp(name, "init-from")) o->init_from = val;
        else if (!strcmp(name, "probs")) o->probs = val;
        else if (!strcmp(name, "hide")) o->hide = val;
        else if (!strcmp(name, "keep-labels")) {
            const char *eq = strchr(val, '=');
            NEED(eq && eq > val && eq - val < 64 && parse_long(eq + 1, 1, &L),
                 "NAME=N with a positive count N");
            o->keep_labels = val;
            o->keep_per_class = L;
        }
        else if (!strcmp(name, "limit")) {
            NEED_INT(1, LONG_MAX);
            o->limit = L;
        }
        else if (!strcmp(name, "format")) {
            if (!strcmp(val, "idx")) o->format = VLM_FMT_IDX;
            else if (!strcmp(val, "csv")) o->format = VLM_FMT_CSV;
            else if (!strcmp(val, "npy")) o->format = VLM_FMT_NPY;
            else NEED(false, "idx, csv or npy");
        } else if (!strcmp(name, "epochs")) {
            NEED_INT(0, LONG_MAX);
            o->epochs = L;
            o->has_epochs = true;
        } else if (!strcmp(name, "kmeans-iters")) {
            NEED_INT(0, 1000000);
            o->kmeans_iters = L;
        } else if (!strcmp(name, "tol")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->tol = F;
        } else if (!strcmp(name, "kl-weight")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->kl_weight = F;
            o->has_kl_weight = true;
        } else if (!strcmp(name, "kl-warmup")) {
            NEED(parse_float(val, &F), "a non-negative number of epochs");
            o->kl_warmup = F;
        } else if (!strcmp(name, "aux-weight")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->aux_weight = F;
            o->has_aux_weight = true;
        } else if (!strcmp(name, "reg-covar")) {
            NEED(parse_float(val, &F), "a non-negative number");
            o->reg_covar = F;
        } else if (!strcmp(name, "every")) {
            NEED_INT(1, LONG_MAX);
            o->every = L;
        } else if (!strcmp(name, "n")) {
            NEED_INT(1, 1000000);
            o->n = L;
            o->has_n = true;
        } else if (!strcmp(name, "refine")) {
            NEED_INT(0, 1000000);
            o->refine = L;
        } else if (!strcmp(name, "batch")) {
            NEED_INT(1, 1 << 20);
            o->batch = (int)L;
            o->has_batch = true;
        } else if (!strcmp(name, "samples")) {
            NEED_INT(1, 1 << 20);
            o->samples = (int)L;
            o->has_samples = true;
        } else if (!strcmp(name, "iw")) {
            NEED_INT(1, 1 << 24);
            o->iw = (int)L;
        } else if (!strcmp(name, "threads")) {
            NEED_INT(1, 1024);
            o->threads = (int)L;
        } else if (!strcmp(name, "gemm")) {
            NEED(vlm_gemm_parse_backend(val, &o->gemm), "openblas or onednn");
            o->has_gemm = true;
        } else if (!strcmp(name, "precision")) {
            if (!strcmp(val, "fp32")) o->precision = VLM_PREC_F32;
            else if (!strcmp(val, "bf16")) o->precision = VLM_PREC_BF16;
            else NEED(false, "fp32 or bf16");
        } else if (!strcmp(name, "seed")) {
            NEED_INT(0, LONG_MAX);
            o->seed = (uint64_t)L;
        } else if (!strcmp(name, "lr")) {
            NEED(parse_float(val, &F) && F > 0, "a positive number");
            o->lr = F;
            o->has_lr = true;
        } else if (!strcmp(name, "mask-frac")) {
            NEED(parse_float(val, &F) && F > 0 && F <= 1, "a number in (0, 1]");
            o->mask_frac = F;
        } else if (!strcmp(name, "refine-tol")) {
            NEED(parse_float(val, &F), "a non-negative number");
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
#undef NEED_INT
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

/* Every command's results go to standard output: a write error there
 * (a full disk, /dev/full, a closed pipe) must not pass as success. */
static int finish_stdout(int rc)
{
    errno = 0;
    bool flush_failed = fflush(stdout) != 0;
    int e = errno;
    if (flush_failed || ferror(stdout)) {
        vlm_cli_fail("cannot write the output to standard output: %s",
                     flush_failed && e ? strerror(e) : "write error");
        return rc ? rc : 1;
    }
    return rc;
}

/* Under mpirun: join MPI. train, eval, posterior and impute run on every
 * rank (each computes its shard; rank 0 alone prints and writes); the
 * other commands run on rank 0 while the others leave at once (-1). On
 * ranks > 0 standard output and the notes on stderr are silenced; errors
 * still reach the terminal, naming the rank. */
/* The commands that compute a shard on every rank under mpirun. */
static bool runs_on_every_rank(const char *cmd)
{
    return !strcmp(cmd, "train") || !strcmp(cmd, "eval") ||
           !strcmp(cmd, "posterior") || !strcmp(cmd, "impute");
}

static int start_mpi(const Opts *o)
{
    VlmErr err;
    if (vlm_mpi_init(&err) != 0)
        return vlm_cli_fail("%s", err.msg);
    const VlmComm *c = vlm_comm_world();
    if (c->size < 2)
        return 0;
    bool parallel = runs_on_every_rank(o->cmd);
    if (c->rank > 0) {
        int fd = dup(2);
        err_out = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!freopen("/dev/null", "w", stdout) ||
            !freopen("/dev/null", "w", stderr))
            return vlm_mpi_finalize(vlm_cli_fail("cannot open /dev/null"));
        if (!parallel) {
            vlm_mpi_finalize(0);
            return -1;
        }
    } else if (!parallel) {
        fprintf(stderr, "%s: note: `%s` runs on rank 0 alone (%d ranks)\n",
                vlm_cli_prog, o->cmd, c->size);
        vlm_mpi_go_alone();
    }
    return 0;
}

/* FNV-1a of n bytes, continuing from h */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* FNV-1a over the model hash and every const (--set), then over the
 * command line: ranks that disagree would compute different things, or
 * wait forever in collectives the others never start. */
static int same_model(const VlmModel *m, const Opts *o, int argc,
                      char **argv, VlmErr *err)
{
    const VlmComm *c = vlm_comm_world();
    if (c->size < 2 || !vlm_mpi_parallel() || !runs_on_every_rank(o->cmd))
        return 0;
    const uint64_t basis = 1469598103934665603ull;
    uint64_t words[2 + 64];
    int nw = 0;
    words[nw++] = m->hash;
    for (int i = 0; i < m->desc->n_consts && nw < 2 + 63; i++)
        words[nw++] = (uint64_t)m->desc->const_values[i];
    uint64_t h = basis;   /* the words' bytes, least significant first */
    for (int i = 0; i < nw; i++) {
        unsigned char b[8];
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)(words[i] >> (8 * k));
        h = fnv1a(h, b, sizeof b);
    }
    if (vlm_mpi_check_same(h, "models (model hash or --set values)", err) != 0)
        return -1;
    uint64_t hc = basis;   /* the command line, each argument with its NUL */
    for (int i = 1; i < argc; i++)
        hc = fnv1a(hc, argv[i], strlen(argv[i]) + 1);
    return vlm_mpi_check_same(hc, "command lines (command or options)", err);
}

int vlm_main(const VlmModelDesc *desc, int argc, char **argv)
{
    if (argc > 0 && argv[0])
        vlm_blas_core_check(argv);   /* may re-execute with OPENBLAS_CORETYPE */
    if (argc > 0 && argv[0]) {
        const char *s = strrchr(argv[0], '/');
        vlm_cli_prog = s ? s + 1 : argv[0];
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage_main(argc < 2 ? stderr : stdout, desc);
        return finish_stdout(argc < 2 ? 2 : 0);
    }
    int ci = -1;
    for (int i = 0; i < N_CMDS; i++)
        if (!strcmp(argv[1], cmds[i].name))
            ci = i;
    if (ci < 0) {
        fprintf(stderr, "%s: error: unknown command `%s`\n", vlm_cli_prog, argv[1]);
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
    int rc = parse_opts(&cmds[ci], desc, argc - 2, argv + 2, &o);
    if (rc == HELP_SHOWN)
        return finish_stdout(0);
    if (rc)
        return rc;
    if ((rc = vlm_cli_check_outputs(&o)) != 0)
        return rc;
    if ((rc = start_mpi(&o)) != 0)
        return rc < 0 ? 0 : rc;
    openblas_set_num_threads(1);   /* GEMMs are split by vlm's own pool */
    vlm_parallel_set_threads(o.threads);
    VlmErr err;
    if (!o.has_gemm && vlm_gemm_env_backend(&o.gemm, &err) != 0)
        return vlm_cli_fail("%s", err.msg);
    if (vlm_gemm_select(o.gemm, o.precision, &err) != 0)
        return vlm_cli_fail("--precision bf16: %s", err.msg);
    if (o.load && !o.set_given)
        consts_from_checkpoint(desc, o.load);
    VlmModel m;
    if (vlm_model_init(&m, desc, &err) != 0)
        return vlm_mpi_finalize(vlm_cli_fail("%s", err.msg));
    if (same_model(&m, &o, argc, argv, &err) != 0) {
        vlm_model_free(&m);
        return vlm_mpi_finalize(vlm_cli_fail("%s", err.msg));
    }
    rc = cmds[ci].run(&m, &o);
    vlm_model_free(&m);
    vlm_gemm_release();
    return vlm_mpi_finalize(finish_stdout(rc));
}
