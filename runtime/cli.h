/* cli.h — what the trainer's command files share (internal to the
 * runtime): the parsed options, the error helper and the helpers of
 * cli_common.c. Option parsing and dispatch are in cli.c, one command per
 * cmd_NAME.c. */
#ifndef VLM_CLI_H
#define VLM_CLI_H

#include "vlm.h"

#include <stdio.h>

typedef struct Opts {
    const char *cmd;
    const char *data, *test, *save, *load, *log, *out, *png, *labels;
    const char *latents;     /* sample --latents FILE: the latents drawn */
    bool map;                /* posterior --map: a chain's Viterbi path */
    /* --data and --test, repeatable: FILE, or NAME=FILE binding the
     * variable NAME to a file of its own (data, test: the first given) */
    const char *data_args[VLM_MAX_VARS], *test_args[VLM_MAX_VARS];
    int n_data_args, n_test_args;
    bool has_n;
    const char *mask, *init_from, *probs;
    const char *hide, *keep_labels;   /* --hide NAME, --keep-labels NAME=N */
    long keep_per_class;
    bool labelled_only;
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
    double aux_weight;       /* M2: --aux-weight */
    double kl_weight, kl_warmup;   /* --kl-weight, --kl-warmup */
    bool has_kl_weight;
    bool has_aux_weight;
    long kmeans_iters;
    bool has_epochs;
    VlmGemmBackend gemm;     /* --gemm, else $VLM_GEMM, else the default */
    bool has_gemm;
    VlmPrecision precision;  /* --precision */
} Opts;

/* The program's name as invoked (argv[0] without its directory). */
extern const char *vlm_cli_prog;

/* "prog: error: ..." on stderr; returns 1 (the exit status of an error). */
int vlm_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_common.c */
bool vlm_cli_ends_with(const char *s, const char *suf);
/* --save, --log, --out, --png and --probs can be written
 * (vlm_io_check_writable);
 * on failure the error is printed and 1 returned. */
int vlm_cli_check_outputs(const Opts *o);
/* Read the files of --data (--test when `test`), bind them to the model's
 * data variables (sample: its inputs), keep the first --limit items,
 * --binarize the observed values; on failure the error is printed and 1
 * returned. */
int vlm_cli_read_data(const VlmModel *m, const Opts *o, bool test,
                      VlmData *d);
/* ... and tell how many items the files hold (before --limit). */
int vlm_cli_read_data_counted(const VlmModel *m, const Opts *o, bool test,
                              VlmData *d, size_t *in_file);
/* The files of --data (or --test) as text for messages: "a.csv" or
 * "x=a.idx, y=b.idx". */
const char *vlm_cli_data_name(const Opts *o, bool test, char *buf, size_t n);
void vlm_cli_mask_top_half(const VlmModel *m, VlmData *d, double frac);
bool vlm_cli_want_mask(const Opts *o);
long vlm_cli_total_numel(const VlmModel *m);   /* observed values per item */
long vlm_cli_data_numel(const VlmModel *m);    /* observed and input values */
int vlm_cli_eval_rows(const VlmModel *m, int items, int K);
int vlm_cli_draw_rows(const VlmModel *m, const Opts *o, int *S, int *SE);
int vlm_cli_load_trained(VlmModel *m, const Opts *o, const VlmData *d,
                         int rows);
/* Print a checkpoint load error (naming --set when it was given and the
 * checkpoint is another model's); returns 1. */
int vlm_cli_fail_load(const Opts *o, const char *msg);
void vlm_cli_free_names(char **names, long n);
bool vlm_cli_image_shape(long D, int h, int w, int *H, int *W);
int vlm_cli_write_rows(const VlmModel *m, const char *path, size_t n, long D,
                       const float *x, int h, int w, VlmErr *err);

/* The commands: each returns the process's exit status. */
int vlm_cmd_train(VlmModel *m, const Opts *o);
int vlm_cmd_eval(VlmModel *m, const Opts *o);
int vlm_cmd_sample(VlmModel *m, const Opts *o);
int vlm_cmd_posterior(VlmModel *m, const Opts *o);
int vlm_cmd_impute(VlmModel *m, const Opts *o);
int vlm_cmd_gradvar(VlmModel *m, const Opts *o);
int vlm_cmd_info(VlmModel *m, const Opts *o);
int vlm_cmd_params(VlmModel *m, const Opts *o);
int vlm_cmd_gradcheck(VlmModel *m, const Opts *o);

#endif
