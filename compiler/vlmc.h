/* vlmc.h — the whole interface of the vlm compiler in one read.
 * Front end (arena, diagnostics, AST, distribution table, checker), middle
 * (tensor IR, autodiff, planning) and back end (C emission, cc driver).
 * It does not describe the runtime; that is runtime/vlm.h. */
#ifndef VLMC_H
#define VLMC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- arena */

/* One bump allocator per compilation; everything the front end and the IR
 * allocate lives here and is freed once by vlmc_arena_free. Allocation
 * failure is fatal with file:line (vlmc has nothing to save). */
typedef struct VlmcArena VlmcArena;
VlmcArena *vlmc_arena_new(void);
void *vlmc_arena_alloc(VlmcArena *a, size_t n);       /* zeroed, 16-aligned */
char *vlmc_arena_strndup(VlmcArena *a, const char *s, size_t n);
/* An arena array of n elements of `size` bytes with room for one more: arr
 * itself, or a copy with *cap doubled (first when it was 0). */
void *vlmc_arena_grow(VlmcArena *a, void *arr, int n, int *cap, size_t size,
                      int first);
void vlmc_arena_free(VlmcArena *a);

/* ---------------------------------------------------------- diagnostics */

/* 1-based line/column of the first character and one past the last
 * character of a span (end_col is exclusive, on end_line). */
typedef struct {
    int line, col, end_line, end_col;
} VlmcLoc;

typedef struct VlmcSource {
    const char *path;  /* as given on the command line */
    const char *text;  /* whole file, NUL-terminated copy */
    size_t len;        /* bytes (the file may contain NULs: they are errors) */
} VlmcSource;

/* Collects diagnostics; prints `file:line:col: error: msg`, the source line
 * and a caret/tilde span. Stops printing after VLMC_MAX_ERRORS errors with
 * "too many errors". */
#define VLMC_MAX_ERRORS 20
typedef struct VlmcDiag {
    const VlmcSource *src;
    FILE *out;        /* stderr normally; tests may redirect */
    int n_errors, n_warnings;
    bool too_many;    /* cap reached: callers should stop early */
} VlmcDiag;

void vlmc_error(VlmcDiag *d, VlmcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vlmc_warning(VlmcDiag *d, VlmcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vlmc_note(VlmcDiag *d, VlmcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Closest name among candidates by edit distance, or NULL if none is close. */
const char *vlmc_suggest(const char *name, const char *const *cands, int n);

/* ------------------------------------------------------------------ AST */

/* A size: a positive integer literal, the name of a `const`, or a sum of
 * them (`Z + K`, also the last dimension of a `concat`). Sizes stay
 * symbolic through the compiler because `--set NAME=VALUE` may change a
 * const when the generated program starts; two sizes are equal when their
 * canonical forms are (so `K + Z` is `Z + K`, but `D` is not `784`). */
typedef struct VlmcDim {
    int cst;     /* index into VlmcModel.consts; -1 for a literal; <= -2 for
                    the sum VlmcModel.dim_sums[-2 - cst] */
    long value;  /* the literal, or the default value (const or sum) */
} VlmcDim;

/* A sum of sizes in canonical form: lit + consts[cst[0]] + consts[cst[1]]
 * + ..., cst sorted ascending (a const may repeat: `K + K`), n >= 1, and
 * never a lone const (that is a plain VlmcDim). Interned per model, so
 * equal sums have the same index. */
typedef struct VlmcDimSum {
    long lit;
    int n;
    int *cst;
} VlmcDimSum;
#define VLMC_DIM_SUM(i) (-2 - (i))   /* VlmcDim.cst of dim_sums[i], and back */

#define VLMC_MAX_RANK 4
/* Per-item shape: rank 0 is a scalar. Batched values additionally carry a
 * leading row dimension that shapes never mention. */
typedef struct VlmcShape {
    int rank;
    VlmcDim dim[VLMC_MAX_RANK];
} VlmcShape;

typedef enum {
    VLMC_T_REAL,  /* float values */
    VLMC_T_INT,   /* discrete values: a Categorical/Poisson/Bernoulli draw */
} VlmcType;

typedef enum {
    VLMC_SYM_CONST,
    VLMC_SYM_PARAM,     /* learnable tensor: model's (theta) or a guide's (phi) */
    VLMC_SYM_NET,       /* linear/mlp: model's or a guide's */
    VLMC_SYM_LET,       /* named expression */
    VLMC_SYM_LATENT,
    VLMC_SYM_OBSERVED,
    VLMC_SYM_INPUT,     /* `input u[C];`: data the model conditions on, with
                           no distribution (REAL, or INT with `: category(K)`) */
} VlmcSymKind;

typedef enum {
    VLMC_E_NUM,    /* num */
    VLMC_E_NAME,   /* name -> sym */
    VLMC_E_NEG,    /* -a[0] */
    VLMC_E_BIN,    /* a[0] op a[1], op in + - * / @ */
    VLMC_E_CALL,   /* builtin function or net application: name(args) */
    VLMC_E_INDEX,  /* a[0][a[1]]: a param indexed by a discrete latent */
} VlmcExprKind;

/* Builtin elementwise functions and reductions, recognised by name. */
typedef enum {
    VLMC_FN_NONE = 0,
    VLMC_FN_EXP, VLMC_FN_LOG, VLMC_FN_LOG1P, VLMC_FN_SQRT, VLMC_FN_SIGMOID,
    VLMC_FN_SOFTPLUS, VLMC_FN_TANH, VLMC_FN_RELU, VLMC_FN_ABS, VLMC_FN_ELU,
    VLMC_FN_SUM,
    VLMC_FN_ONE_HOT,   /* one_hot(y): discrete y with K values -> [..., K] */
    VLMC_FN_SOFTMAX,   /* softmax(v): over the last dimension */
    VLMC_FN_CONCAT,    /* concat(a, b, ...): along the last dimension */
    VLMC_FN_SQUARE,    /* square(x) */
    VLMC_FN_POW,       /* pow(x, p): p a number literal */
    VLMC_FN_COUNT
} VlmcFn;

typedef struct VlmcSym VlmcSym;
typedef struct VlmcExpr VlmcExpr;

typedef struct VlmcArg {       /* call argument, positional or keyword */
    const char *key;           /* NULL when positional */
    VlmcLoc key_loc;
    VlmcExpr *value;
} VlmcArg;

struct VlmcExpr {
    VlmcExprKind kind;
    VlmcLoc loc;               /* whole expression span */
    double num;                /* VLMC_E_NUM */
    char op;                   /* VLMC_E_BIN: '+','-','*','/','@' */
    const char *name;          /* VLMC_E_NAME, VLMC_E_CALL: callee */
    VlmcExpr *a[2];            /* operands (NEG, BIN, INDEX) */
    VlmcArg *args; int n_args; /* VLMC_E_CALL */
    /* filled by the checker */
    VlmcSym *sym;              /* NAME: resolved symbol; CALL: the net, if any */
    VlmcFn fn;                 /* CALL: builtin function, if any */
    double power;              /* CALL pow: the literal exponent */
    VlmcShape shape;           /* per-item shape of the value */
    VlmcType type;
    bool batched;              /* depends on data or latents (varies per row) */
    int depth;                 /* nesting depth (parser limit VLMC_MAX_EXPR_DEPTH) */
};

#define VLMC_MAX_EXPR_DEPTH 1000   /* deeper expressions are an error */
#define VLMC_MAX_IDENT 256         /* longer identifiers are an error */

typedef enum {
    VLMC_ACT_IDENTITY = 0, VLMC_ACT_RELU, VLMC_ACT_TANH, VLMC_ACT_SIGMOID,
    VLMC_ACT_SOFTPLUS, VLMC_ACT_ELU
} VlmcAct;

#define VLMC_MAX_LAYERS 16
typedef struct VlmcNetSpec {
    bool is_mlp;               /* linear(in, out) is a one-layer net */
    int n_sizes;               /* layer widths: in, hidden..., out (>= 2) */
    VlmcDim sizes[VLMC_MAX_LAYERS + 1];
    VlmcAct act;               /* between layers (mlp), default relu */
    VlmcAct out_act;           /* after the last layer, default identity */
} VlmcNetSpec;

typedef enum {
    VLMC_INIT_DEFAULT,   /* normal(0, 0.01) for params; nets: uniform(+-1/sqrt(fan_in)) */
    VLMC_INIT_CONST,     /* = number */
    VLMC_INIT_NORMAL,    /* ~ normal(a, b) / init normal(a, b) */
    VLMC_INIT_UNIFORM,   /* uniform(a, b) */
} VlmcInitKind;

typedef enum {
    VLMC_CON_NONE,       /* unconstrained real */
    VLMC_CON_POSITIVE,   /* stored as log; the param's value is exp(raw) */
    VLMC_CON_UNIT,       /* in (0,1): stored as logit; value sigmoid(raw) */
    VLMC_CON_SIMPLEX,    /* last dimension sums to 1: stored as logits */
} VlmcConstraint;

typedef struct VlmcDist VlmcDist;

struct VlmcSym {
    VlmcSymKind kind;
    const char *name;
    VlmcLoc loc;               /* the name at its declaration */
    int index;                 /* position among symbols of its kind */
    bool in_guide;             /* declared inside a guide block (phi) */
    bool used;                 /* for "unused" warnings */
    VlmcShape shape;           /* per-item shape (params: whole shape) */
    VlmcType type;
    /* CONST */
    long value;
    /* PARAM */
    VlmcInitKind init; double init_a, init_b;
    VlmcConstraint constraint;
    /* NET */
    VlmcNetSpec net;
    /* LET */
    VlmcExpr *expr;
    /* LATENT / OBSERVED: the conditional `~ Dist(args)` */
    const VlmcDist *dist;
    VlmcExpr **dist_args;      /* canonical order of the chosen parameterization */
    int param_form;            /* which parameterization (e.g. probs vs logits) */
    VlmcLoc dist_loc;
    VlmcSym **deps; int n_deps;   /* latents/observed this conditional reads */
    long support;              /* discrete values: number of values per element
                                  (Categorical: K; Bernoulli: 2); 0 if infinite
                                  or continuous */
    VlmcDim support_dim;       /* Categorical: the K as a symbolic size */
    /* LATENT: the guide's conditional for it, if a guide samples it */
    const VlmcDist *q_dist;
    VlmcExpr **q_args;
    int q_param_form;
    VlmcLoc q_loc;
    /* OBSERVED: discrete with finitely many values and read by another
     * conditional: summed out (enumerated) in the rows where it is missing
     * (NaN), clamped to its value where it is given */
    bool summed;
    /* front-end additions */
    bool local;                /* PARAM declared in `guide local`: one value
                                  per data point (batched) */
    bool global;               /* `global latent`: one value for the whole
                                  data set (its draw has one row, GLOBAL) */
    VlmcLoc global_loc;        /* the `global` keyword */
    /* PARAM with a prior (`param w ~ Normal(0, 1)`): dist, dist_args,
     * param_form and dist_loc hold it; NULL dist: no prior */
    /* syntax as parsed, interpreted by the checker */
    VlmcExpr **dims; int n_dims;  /* `[K, 5]`: NAME or NUM expressions */
    VlmcExpr *init_expr;       /* PARAM: `= 1`, `= normal(a, b)`, ... */
    const char *con_name;      /* PARAM: `: positive` */
    VlmcLoc con_loc;
    VlmcExpr *net_call;        /* NET: the `mlp(...)`/`linear(...)` call */
    VlmcExpr *dist_call;       /* LATENT/OBSERVED: the `Dist(args)` call;
                                  INPUT: one written by mistake (an error) */
    VlmcExpr *input_type;      /* INPUT: the `category(K)` after `:`, or NULL
                                  (then `support`/`support_dim` hold K) */
};

/* One statement of a model or guide, in source order. */
typedef enum {
    VLMC_S_CONST, VLMC_S_PARAM, VLMC_S_NET, VLMC_S_LET,
    VLMC_S_LATENT, VLMC_S_OBSERVED,
    VLMC_S_SAMPLE,             /* inside a guide: name ~ Dist(args); */
    VLMC_S_INPUT,
} VlmcStmtKind;

typedef struct VlmcStmt {
    VlmcStmtKind kind;
    VlmcLoc loc;
    VlmcSym *sym;              /* the symbol declared or (SAMPLE) sampled;
                                  SAMPLE: NULL until the checker resolves it */
    /* SAMPLE only (front-end addition) */
    const char *target;        /* the sampled name */
    VlmcLoc target_loc;
    VlmcExpr *call;            /* the `Dist(args)` call */
} VlmcStmt;

typedef enum {
    VLMC_GUIDE_NONE,     /* no guide block: the compiler chooses */
    VLMC_GUIDE_AMORTIZED,/* guide { ... }: q(z | x), may read observed */
    VLMC_GUIDE_LOCAL,    /* guide local { ... }: params per data point */
} VlmcGuideKind;

/* How the generated code treats a latent variable. */
typedef enum {
    VLMC_TREAT_ENUMERATE,  /* discrete, small support, no guide: summed out */
    VLMC_TREAT_REPARAM,    /* continuous, reparameterizable guide: pathwise */
    VLMC_TREAT_SCORE,      /* discrete with a guide, or too many values */
    VLMC_TREAT_AUTO_GUIDE, /* continuous, no guide: mean-field Gaussian guide
                              synthesised by the compiler (then REPARAM) */
    VLMC_TREAT_MARKOV,     /* `~ Markov(...)`: summed out by the forward
                              algorithm (its K states are enumerated rows,
                              its emissions keep per-step terms) */
} VlmcTreatment;

#define VLMC_MAX_ENUM 4096 /* largest joint support summed out exactly */

typedef struct VlmcModel {
    const VlmcSource *src;
    VlmcStmt *stmts; int n_stmts;          /* model block, source order */
    VlmcStmt *gstmts; int n_gstmts;        /* guide block, source order */
    VlmcGuideKind guide;
    VlmcLoc guide_loc;
    /* symbols by kind, in declaration order (filled by the checker) */
    VlmcSym **consts; int n_consts;
    VlmcSym **params; int n_params;        /* model and guide params */
    VlmcSym **nets; int n_nets;            /* model and guide nets */
    VlmcSym **latents; int n_latents;
    VlmcSym **observed; int n_observed;
    VlmcTreatment *treat;                  /* per latent */
    VlmcDimSum *dim_sums; int n_dim_sums;  /* sizes that are sums (VlmcDim) */
    /* front-end additions */
    VlmcSym **lets; int n_lets;            /* model and guide lets */
    int n_guides;                          /* guide blocks seen (> 1 is an error) */
    VlmcLoc guide2_loc;                    /* the second one */
    VlmcSym **inputs; int n_inputs;        /* `input` declarations */
    VlmcSym **data; int n_data;            /* observed and inputs in declaration
                                              order: the data's column blocks */
} VlmcModel;

/* ------------------------------------------------------- distributions */

/* Support of a value or of a distribution parameter. */
typedef enum {
    VLMC_SUP_REAL, VLMC_SUP_POSITIVE, VLMC_SUP_NONNEG, VLMC_SUP_UNIT,
    VLMC_SUP_UNIT_CLOSED,   /* [0,1]: Bernoulli values as relaxed targets */
    VLMC_SUP_BINARY,        /* {0,1} */
    VLMC_SUP_CATEGORY,      /* {0..K-1}, K from the parameter's last dim */
    VLMC_SUP_COUNT,         /* {0,1,2,...} */
    VLMC_SUP_INTERVAL,      /* (low, high) from the parameters */
    VLMC_SUP_LOGITS,        /* vector of unnormalised log-probabilities */
    VLMC_SUP_SIMPLEX,       /* vector summing to 1 */
} VlmcSupport;

#define VLMC_MAX_DIST_PARAMS 3
/* One parameterization: e.g. Bernoulli(probs) or Bernoulli(logits). */
typedef struct VlmcDistForm {
    int n_params;
    const char *names[VLMC_MAX_DIST_PARAMS];
    VlmcSupport supports[VLMC_MAX_DIST_PARAMS];
    const char *runtime;       /* runtime function stem, e.g. "normal",
                                  "bernoulli_logits" -> vlm_dist_<stem>_logp */
} VlmcDistForm;

/* The one table of distributions, shared by the checker and the code
 * generator (compiler/dists.c). */
struct VlmcDist {
    const char *name;          /* "Normal" */
    int n_forms;
    VlmcDistForm forms[2];
    VlmcSupport value_support;
    bool discrete;
    bool reparam;              /* has a pathwise (reparameterized) sampler */
    bool event_last_dim;       /* Categorical: the last parameter dim is the
                                  category axis, the value drops it */
    bool chain;                /* Markov: a chain over the value's steps [T];
                                  K states from the last dim of trans */
};

const VlmcDist *vlmc_dist_lookup(const char *name);
extern const VlmcDist vlmc_dists[];
extern const int vlmc_n_dists;

/* ----------------------------------------------------------- front end */

/* Parse a source into a model (statements only, unresolved). Returns NULL
 * only if nothing could be parsed; diagnostics go to d. */
VlmcModel *vlmc_parse(VlmcArena *a, const VlmcSource *src, VlmcDiag *d);
/* Resolve names, infer/check shapes and types, choose treatments.
 * Returns true when no errors were reported. */
bool vlmc_check_model(VlmcArena *a, VlmcModel *m, VlmcDiag *d);
/* Warnings over a checked model (warn.c), printed in source order: unused
 * names, latents no observed variable depends on, unconstrained params
 * where a distribution needs constrained values. Never errors. */
void vlmc_warn_model(VlmcArena *a, const VlmcModel *m, VlmcDiag *d);
/* The checked model in a stable text form (golden-tested). */
void vlmc_dump_model(const VlmcModel *m, FILE *out);
/* Read a whole file; on failure prints `path: error: reason` to d->out. */
bool vlmc_read_source(VlmcArena *a, const char *path, VlmcSource *src,
                      FILE *err);

const char *vlmc_fn_name(VlmcFn fn);
const char *vlmc_act_name(VlmcAct act);
const char *vlmc_treat_name(VlmcTreatment t);
/* front-end additions */
const char *vlmc_support_name(VlmcSupport s);
const char *vlmc_sym_kind_name(VlmcSymKind k);      /* "param", "latent", ... */
/* With its article, for messages: "a param", "an observed variable". */
const char *vlmc_sym_kind_noun(VlmcSymKind k);
VlmcFn vlmc_fn_lookup(const char *name);            /* VLMC_FN_NONE if none */
/* An expression as source text, minimally parenthesised: `exp(0.5 * lv(h))`. */
void vlmc_print_expr(const VlmcExpr *e, FILE *out);
/* A shape as `[K, D]` (`[]` for a scalar); const names from m. */
void vlmc_print_shape(const VlmcModel *m, const VlmcShape *s, FILE *out);
/* A size as source text (`Z + K + 1`) or, c_expr, as the C expression of
 * generated code (`(c_Z+c_K+1L)`); snprintf's contract: the length it
 * needs is returned, at most n - 1 bytes and a NUL are written. */
size_t vlmc_dim_text(const VlmcModel *m, VlmcDim d, bool c_expr, char *buf, size_t n);

/* ------------------------------------------------------------ tensor IR */

/* A graph of whole-minibatch tensor operations in SSA form: node i reads
 * nodes with smaller ids. Every value has a row level (VlmcLevel): how
 * many rows of the minibatch it holds. Sizes are C expressions because
 * consts are only fixed when the generated program starts (`--set`). */

/* Row levels, lowest first. A node's level is the highest among its
 * inputs (leaves: params GLOBAL, data ITEM, guided latents SAMPLE,
 * enumerated values FULL). The rows of one level repeat those of the level
 * below consecutively: FULL row ((b*S + s)*E + e), SAMPLE row (b*S + s),
 * ITEM row b. A GLOBAL value is read by every row through a view of row
 * stride 0; a value of a level between GLOBAL and its reader's is lifted
 * by an explicit REPEAT node (backward: the segmented sum). A later
 * `global latent` has its one row at GLOBAL. */
typedef enum {
    VLMC_LEVEL_GLOBAL,   /* 1 row: params, and what is computed from them */
    VLMC_LEVEL_ITEM,     /* B rows: the item's data (and local params) */
    VLMC_LEVEL_SAMPLE,   /* B*S rows: depends on a sampled latent */
    VLMC_LEVEL_FULL,     /* B*S*E rows: depends on an enumerated value */
} VlmcLevel;
#define VLMC_N_LEVELS 4
const char *vlmc_level_name(VlmcLevel l);   /* "global", "item", ... */
typedef enum {
    VLMC_OP_NUM,      /* scalar constant: cexpr */
    VLMC_OP_PARAM,    /* global parameter tensor `param` */
    VLMC_OP_LOCAL,    /* per-data-point parameter, gathered by row item */
    VLMC_OP_OBS,      /* observed variable's data rows */
    VLMC_OP_LATENT,   /* latent value provided by the guide (model graph) */
    VLMC_OP_ENUM,     /* enumerated latent: every value of its support */
    VLMC_OP_FN,       /* elementwise function fn(in0) (incl. negation) */
    VLMC_OP_ADD, VLMC_OP_SUB, VLMC_OP_MUL, VLMC_OP_DIV,
    VLMC_OP_MATVEC,   /* global A (m,k) @ x (k) -> (m) */
    VLMC_OP_MATMAT,   /* global A (m,k) @ global B (k,cols) -> (m,cols) */
    VLMC_OP_SOFTMAX,  /* softmax over the last axis of length k */
    VLMC_OP_POW,      /* in0 ^ p, p the C literal cexpr */
    VLMC_OP_ONE_HOT,  /* in0 (n) category indices -> (n, K); no gradient */
    VLMC_OP_CONCAT,   /* in0 (cols, k) ++ in1 (cols, m) -> (cols, k+m) */
    VLMC_OP_LINEAR,   /* act(x (in) @ W (in,out) + b) -> (out); b optional */
    VLMC_OP_GATHER,   /* table (K, n)[idx] -> (n) */
    VLMC_OP_SUM,      /* sum over the row's elements -> scalar */
    VLMC_OP_LOGP,     /* log density of in0 under dist(in1..): one term */
    VLMC_OP_RSAMPLE,  /* reparameterized sample (guide) */
    VLMC_OP_SAMPLE,   /* sample without gradient (guide discrete / prior) */
    VLMC_OP_MEAN,     /* mean of dist(in0..): E[x | parents] */
    VLMC_OP_KL,       /* KL(N(in0, in1) || N(in2, in3)) in closed form */
    VLMC_OP_MARKOV,   /* a chain's init in0 (K) and trans in1 (K,K), global:
                         handed to the runtime's forward algorithm */
    VLMC_OP_REPEAT,   /* in0's rows, each repeated up to this node's level */
} VlmcOp;

#define VLMC_MAX_IN 4
typedef struct VlmcNode {
    VlmcOp op;
    int in[VLMC_MAX_IN]; int n_in;
    VlmcLevel level;      /* rows: see VlmcLevel */
    const char *n;        /* elements per row, a C expression */
    bool scalar;          /* rank 0 (broadcasts over elements) */
    VlmcLoc loc;
    /* op specifics */
    int fn;               /* FN: runtime VlmFn code */
    const char *cexpr;    /* NUM: value as a C expression; POW: exponent */
    int param;            /* PARAM/LOCAL/LINEAR weight: index in param table */
    int bias;             /* LINEAR: bias param index or -1 */
    int act;              /* LINEAR: VlmAct */
    const char *m, *k;    /* MATVEC rows/cols; LINEAR in (k) and out (m);
                             MATMAT A (m,k); SOFTMAX axis length k;
                             CONCAT last dims of in0 (k) and in1 (m) */
    const char *cols;     /* MATMAT: columns of B; CONCAT: groups per row
                             (the elements before the last dimension) */
    int var;              /* LOGP/RSAMPLE/SAMPLE/MEAN/LATENT/ENUM/OBS: runtime
                             variable index (latents first, then observed,
                             then inputs: OBS reads an input's data rows) */
    const VlmcDist *dist; int form;
    const char *K;        /* categories (Categorical, ONE_HOT), else "1" */
    bool shared_row;      /* Categorical: one [K] parameter row for every
                             element of a vector variable (element stride 0) */
    bool is_q;            /* LOGP of a guide term */
    int prior;            /* LOGP of a param's prior: its index among the
                             program's priors (var is -1), else -1 */
    const char *steps;    /* LOGP of a Markov chain's emission: its T steps
                             (per-step terms, logp_step); else NULL */
    /* filled by autodiff */
    bool live;            /* reachable from an output */
    bool dep;             /* depends on something trainable: needs a gradient */
    /* filled by buffer planning: slots of the graph's activation arena for
     * the value, the gradient and (RSAMPLE) the noise; -1 = none */
    int vslot, gslot, eslot;
    int gfirst;           /* node whose backward step starts the gradient's
                             life (it is zeroed just before) */
} VlmcNode;

/* Whether x has more than the one row of a GLOBAL value. */
static inline bool vlmc_is_batched(const VlmcNode *x) { return x->level != VLMC_LEVEL_GLOBAL; }

typedef struct VlmcGraph {
    VlmcNode *nodes; int n, cap;
    int n_slots;          /* buffers after planning (each the largest of
                             the values/gradients that take turns in it) */
} VlmcGraph;

/* One generated parameter tensor (a `param`, a net layer's W or b, or a
 * parameter of an automatic guide). */
typedef struct VlmcParam {
    const char *name;     /* "mu", "decoder.W0" */
    int rank; const char *dims[VLMC_MAX_RANK];  /* C expressions */
    int init;             /* runtime VlmInit */
    double a, b;
    const char *fan_in;   /* C expression: `a` of VLM_INIT_FAN_IN, else NULL */
    bool guide, local;
    int constraint;       /* VlmcConstraint */
} VlmcParam;

typedef struct VlmcVar {  /* runtime variable table: latents, then observed,
                             then inputs (after n_vars) */
    VlmcSym *sym;         /* NULL never */
    const char *n;        /* elements per item */
    int treat;            /* VlmcTreatment, or -1 for observed and inputs */
    const char *K;        /* support per element for discrete (and category
                             inputs), "0" else */
    bool has_q;           /* a guide (written or automatic) samples it */
    bool kl;              /* analytic KL(q || p) available (Normal/Normal) */
    const VlmcDist *q_dist;
    bool summed;          /* observed, enumerated where missing (VlmcSym.summed) */
    bool global;          /* `global latent`: GLOBAL draw, log p and log q
                             counted once per data set */
    const char *steps;    /* observed that reads a Markov chain: the chain's
                             T (its log density is kept per step); else NULL */
    VlmcLevel level;      /* level of its value: a guided latent's sample
                             (SAMPLE, or FULL when the guide reads an
                             enumerated value), enumerated FULL, data ITEM */
} VlmcVar;

typedef struct VlmcProgram {
    const VlmcModel *model;
    VlmcParam *params; int n_params, cap_params;
    VlmcVar *vars; int n_vars, n_latent;  /* random variables */
    int n_inputs;         /* inputs: vars[n_vars .. n_vars + n_inputs) */
    VlmcGraph model_g;    /* log p(x, z) with latents as inputs */
    VlmcGraph guide_g;    /* samples of guided latents and log q */
    VlmcGraph sample_g;   /* ancestral sampling from the model */
    bool has_local;
    int *priors; int n_priors; /* params (table indices) with a prior, in
                                  the order of their LOGP terms */
    const char *E;        /* enumeration size, C expression */
    int auto_hidden;      /* width of an automatic amortized guide */
    const struct VlmcMixture *mixture; /* conjugate mixture (EM), or NULL */
} VlmcProgram;

/* ------------------------------------------------------------ conjugacy */

/* How a recognised mixture's raw scale param holds the component scales
 * (mirrors the runtime's VlmMixScale). */
typedef enum {
    VLMC_MIX_LOG_SD,   /* exp(t[z]), t real; t[z], t positive (stored as log) */
    VLMC_MIX_LOG_VAR,  /* sqrt(t[z]), t positive; exp(0.5 * t[z]); sqrt(exp(t[z])) */
} VlmcMixScale;

/* A mixture of diagonal Gaussians with a closed-form M-step (conjugate.c):
 * indices into the program's variable and parameter tables. */
typedef struct VlmcMixture {
    int latent, observed;  /* variable indices of z and x */
    int weights;           /* Categorical logits [K] (or simplex probs [K];
                              both are stored as logits) */
    int mu, scale;         /* [K, <shape of x>] */
    VlmcMixScale scale_kind;
} VlmcMixture;
/* The mixture pattern of a lowered program, or NULL (see conjugate.c). */
const VlmcMixture *vlmc_recognise_mixture(VlmcArena *a, const VlmcProgram *p);

/* Lower a checked model to the three graphs; false (with diagnostics) when
 * the model uses something code generation does not support. */
bool vlmc_lower(VlmcArena *a, const VlmcModel *m, VlmcProgram *p, VlmcDiag *d);
/* Whether automatic guides read the data through an MLP (else local). */
bool vlmc_auto_amortized(const VlmcModel *m);
/* Mark live nodes and nodes that need gradients (reverse-mode at compile
 * time: the backward pass is emitted from this marking). */
void vlmc_autodiff(VlmcProgram *p);
/* Buffer planning: every intermediate value, gradient and noise buffer
 * gets a slot; buffers whose lifetimes (forward step of definition to last
 * read, in forward or backward) do not overlap share one. */
void vlmc_plan_buffers(VlmcProgram *p);
/* Which kinds of buffer a node owns (the rest live in VlmModel or the
 * parameter block). */
bool vlmc_node_owns_value(const VlmcNode *x);
bool vlmc_node_owns_grad(const VlmcNode *x);
/* Whether one of x's buffers (value, gradient, noise) lives in slot k. */
bool vlmc_node_in_slot(const VlmcNode *x, int k);
/* Human-readable inference plan and memory estimate (vlmc --plan). */
void vlmc_print_plan(const VlmcProgram *p, FILE *out);
/* Write the C translation unit. */
bool vlmc_emit_c(const VlmcProgram *p, const char *model_name, FILE *out,
                 bool line_directives);

/* ---------------------------------------------------------- cc driver */
typedef struct VlmcCcOptions {
    const char *c_file, *out_file;
    bool debug;           /* -O0 -g */
    bool verbose;
} VlmcCcOptions;
/* Compile and link a generated file with $CC (default cc) via posix_spawnp;
 * returns 0 or prints the compiler output and returns 1. */
int vlmc_cc(const VlmcCcOptions *o, FILE *err);

/* ------------------------------------------------------------ pipeline */
typedef struct VlmcGenOptions {
    const char *out;          /* -o: executable to produce */
    const char *emit_c;       /* --emit-c: write the C here */
    bool plan;                /* --plan: print the inference plan */
    bool debug;               /* -O0 -g */
    bool keep_temps;
    bool verbose;
    bool line_directives;     /* #line back to the .vlm (default on) */
} VlmcGenOptions;
/* Lower, differentiate, emit and compile a checked model; exit status. */
int vlmc_generate(VlmcArena *a, VlmcModel *m, VlmcDiag *d, const VlmcGenOptions *o);

#endif
