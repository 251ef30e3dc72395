/* check.c — the semantic checker: name resolution (hash-table scopes),
 * shapes and types of every expression, distribution signatures and literal
 * supports, guide rules, and the treatment of each latent. Every kind of
 * semantic error has one constructor (err_*) so messages stay consistent.
 * It does not lower anything to IR. */
#include "vlmc.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ scopes */

/* Checker-side facts about a declared name. */
typedef struct Entry {
    VlmcSym *sym;
    int order;          /* statement index in its block */
    bool bad;           /* its declaration had errors: stay quiet about uses */
    int var_id;         /* latents/observed: dependency-set index, else -1 */
    VlmcSym **deps;     /* LET: the latents/observed it reads */
    int n_deps;
    unsigned visit;     /* cycle search stamp */
} Entry;

/* Open addressing; the hash sits in the slot so probes rarely touch the
 * entry (10 MB files declare hundreds of thousands of names). */
typedef struct Slot {
    uint64_t hash;
    Entry *e;
} Slot;

typedef struct Scope {
    Slot *slot;
    size_t cap, n;
} Scope;

typedef struct Ck {
    VlmcArena *a;
    VlmcDiag *d;
    VlmcModel *m;
    Scope model, guide;
    bool in_guide;
    int cur_order;          /* statement being checked */
    Entry *cur;             /* its entry, if it declares a name */
    /* dependency set of the statement being checked */
    VlmcSym **dep; int n_dep, cap_dep;
    unsigned *dep_mark; unsigned dep_stamp;
    int n_vars;
    unsigned visit_stamp;
    int cap_consts, cap_params, cap_nets, cap_lets, cap_latents, cap_observed;
    int cap_dim_sums;
    int cap_inputs, cap_data;
} Ck;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    /* FNV's low bits cluster for names like v1, v2, ...: mix (murmur3 fmix) */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static Entry *scope_get(const Scope *sc, const char *name)
{
    if (!sc->cap) return NULL;
    size_t mask = sc->cap - 1;
    uint64_t h = hash_str(name);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const Slot *sl = &sc->slot[i];
        if (!sl->e) return NULL;
        if (sl->hash == h && !strcmp(sl->e->sym->name, name)) return sl->e;
    }
}

static void scope_put(Ck *c, Scope *sc, Entry *e)
{
    if (2 * (sc->n + 1) > sc->cap) {
        size_t ncap = sc->cap ? 2 * sc->cap : 64;
        Slot *ns = vlmc_arena_alloc(c->a, ncap * sizeof *ns);
        for (size_t j = 0; j < sc->cap; j++) {
            Slot old = sc->slot[j];
            if (!old.e) continue;
            size_t i = old.hash & (ncap - 1);
            while (ns[i].e) i = (i + 1) & (ncap - 1);
            ns[i] = old;
        }
        sc->slot = ns;
        sc->cap = ncap;
    }
    uint64_t h = hash_str(e->sym->name);
    size_t i = h & (sc->cap - 1);
    while (sc->slot[i].e) i = (i + 1) & (sc->cap - 1);
    sc->slot[i] = (Slot){h, e};
    sc->n++;
}

/* Grow-by-doubling append into an arena array. */
static void *push(Ck *c, void *arr, int *n, int *cap, size_t size)
{
    arr = vlmc_arena_grow(c->a, arr, *n, cap, size, 8);
    (*n)++;
    return arr;
}
#define PUSH(c, arr, n, cap, v) \
    do { (arr) = push((c), (arr), &(n), &(cap), sizeof *(arr)); (arr)[(n) - 1] = (v); } while (0)

/* ------------------------------------------------- names for messages */

#define SHAPE_BUF 160

static const char *fmt_dim(const VlmcModel *m, VlmcDim d, char *buf, size_t n)
{
    vlmc_dim_text(m, d, false, buf, n);
    return buf;
}

static const char *fmt_shape(const VlmcModel *m, const VlmcShape *s, char *buf)
{
    size_t len = (size_t)snprintf(buf, SHAPE_BUF, "[");
    for (int i = 0; i < s->rank && len < SHAPE_BUF; i++) {
        char one[80];
        len += (size_t)snprintf(buf + len, SHAPE_BUF - len, "%s%s", i ? ", " : "",
                                fmt_dim(m, s->dim[i], one, sizeof one));
    }
    if (len < SHAPE_BUF) snprintf(buf + len, SHAPE_BUF - len, "]");
    return buf;
}

/* Sums are interned (canonical form, one index each): equal by index. */
static bool dim_eq(VlmcDim a, VlmcDim b)
{
    return a.cst == b.cst && (a.cst != -1 || a.value == b.value);
}

static bool shape_eq(const VlmcShape *a, const VlmcShape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (!dim_eq(a->dim[i], b->dim[i])) return false;
    return true;
}

/* Equal sizes under the const defaults, though not symbolically equal. */
static bool shape_same_values(const VlmcShape *a, const VlmcShape *b)
{
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i].value != b->dim[i].value) return false;
    return true;
}

static void note_symbolic(Ck *c, VlmcLoc loc, const VlmcShape *a, const VlmcShape *b)
{
    if (shape_same_values(a, b))
        vlmc_note(c->d, loc, "sizes are compared by name, not by value: a const "
                  "can be changed with `--set NAME=VALUE`, so use the same const on both sides");
}

/* --------------------------------------------------- error constructors */

static void err_undefined(Ck *c, VlmcLoc loc, const char *name, const char *sugg)
{
    if (sugg) vlmc_error(c->d, loc, "undefined name `%s`; did you mean `%s`?", name, sugg);
    else vlmc_error(c->d, loc, "undefined name `%s`", name);
}

static void err_redefinition(Ck *c, VlmcLoc loc, const VlmcSym *prev, const char *name)
{
    if (!prev) {
        vlmc_error(c->d, loc, "`%s` is a builtin function and cannot be redefined", name);
        return;
    }
    vlmc_error(c->d, loc, "redefinition of `%s`", name);
    vlmc_note(c->d, prev->loc, "`%s` was first declared here as %s", name,
              vlmc_sym_kind_noun(prev->kind));
}

static void err_use_before_def(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "%s `%s` is used before its declaration", vlmc_sym_kind_name(s->kind), s->name);
    vlmc_note(c->d, s->loc, "`%s` is declared here; move it before its first use", s->name);
}

static void err_cycle(Ck *c, VlmcLoc loc, const VlmcSym *self, const VlmcSym *other)
{
    if (!other || other == self)
        vlmc_error(c->d, loc, "%s `%s` refers to itself", vlmc_sym_kind_name(self->kind), self->name);
    else {
        vlmc_error(c->d, loc, "`%s` and `%s` are defined in terms of each other", self->name, other->name);
        vlmc_note(c->d, other->loc, "`%s` is declared here", other->name);
    }
}

static void err_unknown_dist(Ck *c, VlmcLoc loc, const char *name, const char *sugg)
{
    if (sugg) vlmc_error(c->d, loc, "unknown distribution `%s`; did you mean `%s`?", name, sugg);
    else vlmc_error(c->d, loc, "unknown distribution `%s`", name);
}

static void err_unknown_keyword(Ck *c, VlmcLoc loc, const char *key, const char *callee,
                                const char *sugg)
{
    if (sugg) vlmc_error(c->d, loc, "unknown keyword argument `%s` to `%s`; did you mean `%s`?", key, callee, sugg);
    else vlmc_error(c->d, loc, "unknown keyword argument `%s` to `%s`", key, callee);
}

static void err_duplicate_keyword(Ck *c, VlmcLoc loc, const char *key, VlmcLoc first)
{
    vlmc_error(c->d, loc, "argument `%s` is given twice", key);
    vlmc_note(c->d, first, "first given here");
}

static void err_missing_arg(Ck *c, VlmcLoc loc, const char *callee, const char *param)
{
    vlmc_error(c->d, loc, "`%s` is missing its argument `%s`", callee, param);
}

static void err_arg_count(Ck *c, VlmcLoc loc, const char *callee, int want, int got)
{
    vlmc_error(c->d, loc, "`%s` takes %d argument%s, got %d", callee, want, want == 1 ? "" : "s", got);
}

static void err_mixed_forms(Ck *c, VlmcLoc loc, const char *dist, const char *k1, const char *k2)
{
    vlmc_error(c->d, loc, "`%s` and `%s` select different parameterizations of %s; give only one",
               k1, k2, dist);
}

static void err_positional_after_keyword(Ck *c, VlmcLoc loc)
{
    vlmc_error(c->d, loc, "positional argument after a keyword argument");
}

static void err_shape_mismatch(Ck *c, VlmcLoc loc, char op, const VlmcShape *l, const VlmcShape *r)
{
    char a[SHAPE_BUF], b[SHAPE_BUF];
    vlmc_error(c->d, loc, "shape mismatch in `%c`: left is %s, right is %s (shapes must be equal or one side a scalar)",
               op, fmt_shape(c->m, l, a), fmt_shape(c->m, r, b));
    note_symbolic(c, loc, l, r);
}

static void err_dist_arg_shape(Ck *c, VlmcLoc loc, const char *param, const VlmcShape *got,
                               const char *var, const VlmcShape *want, bool categorical)
{
    char a[SHAPE_BUF], b[SHAPE_BUF];
    if (!want) {
        vlmc_error(c->d, loc, "Categorical's `%s` needs a last dimension of categories, got a scalar", param);
        return;
    }
    if (categorical)
        vlmc_error(c->d, loc, "argument `%s` has shape %s, but `%s` has shape %s: Categorical's `%s` "
                   "needs the value's shape plus a last dimension of categories",
                   param, fmt_shape(c->m, got, a), var, fmt_shape(c->m, want, b), param);
    else
        vlmc_error(c->d, loc, "argument `%s` has shape %s, but `%s` has shape %s "
                   "(an argument is a scalar or has the value's shape)",
                   param, fmt_shape(c->m, got, a), var, fmt_shape(c->m, want, b));
    note_symbolic(c, loc, got, want);
}

static void err_bad_size(Ck *c, VlmcLoc loc, const char *why)
{
    vlmc_error(c->d, loc, "%s", why);
}

static void err_unknown_const(Ck *c, VlmcLoc loc, const char *name, const VlmcSym *s,
                              const char *sugg)
{
    if (s)
        vlmc_error(c->d, loc, "`%s` is %s, not a const: a size is a const or an integer literal",
                   name, vlmc_sym_kind_noun(s->kind));
    else if (sugg)
        vlmc_error(c->d, loc, "unknown const `%s` in shape; did you mean `%s`?", name, sugg);
    else
        vlmc_error(c->d, loc, "unknown const `%s` in shape", name);
}

static void err_dim_syntax(Ck *c, VlmcLoc loc)
{
    vlmc_error(c->d, loc, "a size in a shape must be a const name, an integer literal or a sum of them (`Z + K`)");
}

static void err_const_expr(Ck *c, VlmcLoc loc, const char *what)
{
    vlmc_error(c->d, loc, "%s is not allowed in a const: use integers, earlier consts, `+`, `-`, `*` and parentheses", what);
}

static void err_too_many_dims(Ck *c, VlmcLoc loc, int rank)
{
    vlmc_error(c->d, loc, "too many dimensions (%d; the limit is %d)", rank, VLMC_MAX_RANK);
}

static void err_index_base(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    if (s->kind == VLMC_SYM_PARAM)
        vlmc_error(c->d, loc, "param `%s` is a scalar and cannot be indexed", s->name);
    else
        vlmc_error(c->d, loc, "only params can be indexed, but `%s` is %s", s->name,
                   vlmc_sym_kind_noun(s->kind));
}

static void err_index_not_latent(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    if (s)
        vlmc_error(c->d, loc, "index must be a discrete latent or observed variable, but `%s` is %s",
                   s->name, vlmc_sym_kind_noun(s->kind));
    else
        vlmc_error(c->d, loc, "index must be the name of a discrete latent or observed variable");
}

static void err_index_continuous(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "index `%s` is continuous (%s): only Categorical or Bernoulli variables can index",
               s->name, s->dist ? s->dist->name : "real");
}

static void err_index_not_scalar(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    char a[SHAPE_BUF];
    vlmc_error(c->d, loc, "index `%s` has shape %s; an index must be a scalar or a vector (one index "
               "per element, e.g. per step of a chain)", s->name, fmt_shape(c->m, &s->shape, a));
}

/* ---- Markov chains: one constructor per kind of error */

static void err_chain_shape(Ck *c, VlmcLoc loc, const char *var, const VlmcShape *got)
{
    char a[SHAPE_BUF];
    vlmc_error(c->d, loc, "`%s` ~ Markov has shape %s; a chain is a vector of steps: declare `%s[T]`",
               var, fmt_shape(c->m, got, a), var);
}

static void err_chain_arg_shape(Ck *c, VlmcLoc loc, const char *param, const VlmcShape *got,
                                const char *want)
{
    char a[SHAPE_BUF];
    vlmc_error(c->d, loc, "Markov's `%s` has shape %s; it must be %s", param, fmt_shape(c->m, got, a), want);
}

static void err_chain_arg_batched(Ck *c, VlmcLoc loc, const char *param)
{
    vlmc_error(c->d, loc, "Markov's `%s` reads data or a latent variable; a chain's init and trans must be "
               "the same for every item (params, consts and expressions of them)", param);
}

static void err_chain_observed(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "observed `%s` cannot be a Markov chain: Markov(...) declares a latent chain, "
               "summed out by the forward algorithm", s->name);
}

static void err_chain_guided(Ck *c, VlmcLoc loc, const VlmcSym *z)
{
    vlmc_error(c->d, loc, "the guide samples `%s`, a Markov chain; a chain is summed out exactly by the "
               "forward algorithm and takes no guide (remove this line)", z->name);
}

static void err_chain_guide_dist(Ck *c, VlmcLoc loc)
{
    vlmc_error(c->d, loc, "Markov(...) cannot be a guide's distribution: a chain in the model is summed "
               "out exactly, and the guide samples only the other latents");
}

static void err_chain_reader_latent(Ck *c, VlmcLoc loc, const VlmcSym *s, const VlmcSym *z)
{
    vlmc_error(c->d, loc, "latent `%s` reads the Markov chain `%s`; only observed variables may read a "
               "chain (its steps are summed out together with their emissions)", s->name, z->name);
}

static void err_chain_mixes_steps(Ck *c, VlmcLoc loc, const VlmcSym *x, const VlmcSym *z)
{
    vlmc_error(c->d, loc, "`%s` reads the Markov chain `%s` through an operation that mixes its steps; "
               "step t of an emission may read only step t of the chain (index `mu[%s]`, arithmetic and "
               "elementwise functions)", x->name, z->name, z->name);
}

static void err_chain_with_enum(Ck *c, VlmcLoc loc, const VlmcSym *y, const VlmcSym *z)
{
    vlmc_error(c->d, loc, "`%s` would be summed out by enumeration, and the model also has the Markov "
               "chain `%s`; a model with a chain cannot sum out other discrete variables yet (give `%s` a "
               "guide, or observe it)", y->name, z->name, y->name);
}

static void err_chain_twice(Ck *c, VlmcLoc loc, const VlmcSym *z, const VlmcSym *first)
{
    vlmc_error(c->d, loc, "`%s` is a second Markov chain; a model may have one chain (`%s`) for now",
               z->name, first->name);
}

static bool matmul_shape(const VlmcShape *l, const VlmcShape *r, VlmcShape *out);

static void err_matmul_shape(Ck *c, VlmcLoc loc, const VlmcShape *l, const VlmcShape *r)
{
    char a[SHAPE_BUF], b[SHAPE_BUF];
    vlmc_error(c->d, loc, "matrix product `@` cannot multiply %s by %s "
               "(needs [m, n] @ [n], [n] @ [n, m] or [m, n] @ [n, p])",
               fmt_shape(c->m, l, a), fmt_shape(c->m, r, b));
    VlmcShape lv = *l, rv = *r, out;
    for (int i = 0; i < lv.rank; i++) lv.dim[i].cst = -1;
    for (int i = 0; i < rv.rank; i++) rv.dim[i].cst = -1;
    if (matmul_shape(&lv, &rv, &out)) note_symbolic(c, loc, l, r);
}

static void err_net_input(Ck *c, VlmcLoc loc, const VlmcSym *net, const VlmcShape *got)
{
    char a[SHAPE_BUF], b[SHAPE_BUF];
    VlmcShape want = {1, {net->net.sizes[0]}};
    vlmc_error(c->d, loc, "net `%s` takes input of shape %s, got %s", net->name,
               fmt_shape(c->m, &want, a), fmt_shape(c->m, got, b));
    note_symbolic(c, loc, &want, got);
}

static void err_unknown_function(Ck *c, VlmcLoc loc, const char *name, const char *sugg)
{
    if (vlmc_dist_lookup(name))
        vlmc_error(c->d, loc, "`%s` is a distribution; distributions appear only after `~`", name);
    else if (sugg)
        vlmc_error(c->d, loc, "unknown function `%s`; did you mean `%s`?", name, sugg);
    else
        vlmc_error(c->d, loc, "unknown function `%s`", name);
}

static void err_fn_args(Ck *c, VlmcLoc loc, const char *name, int got, bool keyword)
{
    if (keyword) vlmc_error(c->d, loc, "`%s` takes no keyword arguments", name);
    else vlmc_error(c->d, loc, "`%s` takes 1 argument, got %d", name, got);
}

/* builtins with other than one argument: pow (2), concat (2 or more) */
static void err_builtin_arity(Ck *c, VlmcLoc loc, const char *name, int want, bool at_least, int got)
{
    vlmc_error(c->d, loc, "`%s` takes %s%d arguments, got %d", name, at_least ? "at least " : "", want, got);
}

static void err_one_hot_not_discrete(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    if (s && s->kind == VLMC_SYM_OBSERVED && s->dist && s->dist->value_support == VLMC_SUP_BINARY)
        vlmc_error(c->d, loc, "`one_hot` needs a discrete value, but observed `%s` is real: observed "
                   "Bernoulli data may lie in [0, 1]", s->name);
    else if (s && s->dist)
        vlmc_error(c->d, loc, "`one_hot` needs a discrete value (a Categorical or Bernoulli variable), "
                   "but `%s` ~ %s is real", s->name, s->dist->name);
    else if (s && s->kind == VLMC_SYM_INPUT)
        vlmc_error(c->d, loc, "`one_hot` needs a discrete value, but input `%s` is real-valued: declare "
                   "its number of values, e.g. `input %s : category(K);`", s->name, s->name);
    else
        vlmc_error(c->d, loc, "`one_hot` needs a discrete value (a Categorical or Bernoulli variable), "
                   "but its argument is real");
}

static void err_one_hot_categories(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "`one_hot` needs a fixed number of categories, but `%s` ~ %s has no upper "
               "bound (one_hot takes a Categorical or Bernoulli variable)", s->name, s->dist->name);
}

static void err_pow_exponent(Ck *c, VlmcLoc loc)
{
    vlmc_error(c->d, loc, "the exponent of `pow` must be a number literal, e.g. `pow(x, 3)` or `pow(x, -0.5)`");
}

static void err_softmax_scalar(Ck *c, VlmcLoc loc)
{
    vlmc_error(c->d, loc, "`softmax` normalises over the last dimension and needs a vector, got a scalar");
}

static void err_concat_shape(Ck *c, VlmcLoc loc, const VlmcShape *first, const VlmcShape *got)
{
    char a[SHAPE_BUF], b[SHAPE_BUF];
    vlmc_error(c->d, loc, "`concat` joins along the last dimension: this argument has shape %s, but the "
               "first has %s (all but the last dimension must agree; a scalar counts as [1])",
               fmt_shape(c->m, got, b), fmt_shape(c->m, first, a));
    VlmcShape x = *first, y = *got;
    if (x.rank == y.rank && x.rank > 0) {
        x.rank--; y.rank--;
        note_symbolic(c, loc, &x, &y);
    }
}

static void err_not_callable(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "`%s` is %s, not a function or net", s->name, vlmc_sym_kind_noun(s->kind));
}

static void err_not_a_value(Ck *c, VlmcLoc loc, const char *what, const char *name)
{
    vlmc_error(c->d, loc, "%s `%s` is a function; apply it to an input, e.g. `%s(x)`", what, name, name);
}

static void err_guide_samples_observed(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "the guide samples `%s`, but `%s` is observed: a guide samples only latent variables "
               "(and observed Categorical or Bernoulli variables that other variables read, which are "
               "summed out where missing)", s->name, s->name);
    vlmc_note(c->d, s->loc, "`%s` is declared observed here", s->name);
}

static void err_guide_samples_input(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "the guide samples `%s`, but `%s` is an input: inputs are data the model "
               "conditions on, and a guide samples only latent variables", s->name, s->name);
    vlmc_note(c->d, s->loc, "`%s` is declared an input here", s->name);
}

static void err_input_dist(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "input `%s` has a distribution: an input is data the model conditions on "
               "and does not model; declare it `observed %s ~ ...` to model it", s->name, s->name);
}

static void err_input_in_guide(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "input `%s` is declared in the guide: inputs are columns of the data, "
               "declared in the model (the guide reads them there)", s->name);
}

static void err_input_type(Ck *c, VlmcLoc loc, const char *why)
{
    vlmc_error(c->d, loc, "%s", why);
}

static void err_index_real_input(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "input `%s` is real-valued and cannot index: declare its number of values, "
               "e.g. `input %s : category(K);`", s->name, s->name);
    vlmc_note(c->d, s->loc, "`%s` is declared here", s->name);
}

static void err_guide_samples_unknown(Ck *c, VlmcLoc loc, const char *name, const char *sugg)
{
    if (sugg) vlmc_error(c->d, loc, "the guide samples `%s`, which the model does not declare; did you mean `%s`?", name, sugg);
    else vlmc_error(c->d, loc, "the guide samples `%s`, which the model does not declare", name);
}

static void err_guide_sample_not_latent(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "the guide samples `%s`, but `%s` is %s, not a latent variable",
               s->name, s->name, vlmc_sym_kind_noun(s->kind));
}

static void err_guide_samples_twice(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "the guide samples `%s` twice", s->name);
    vlmc_note(c->d, s->q_loc, "first sampled here");
}

static void err_guide_sample_shape(Ck *c, VlmcLoc loc, const VlmcSym *s, const char *param,
                                   const VlmcShape *got)
{
    char a[SHAPE_BUF], b[SHAPE_BUF];
    vlmc_error(c->d, loc, "the guide samples `%s` with shape %s (from `%s`), but the model declares `%s` with shape %s",
               s->name, fmt_shape(c->m, got, a), param, s->name, fmt_shape(c->m, &s->shape, b));
    note_symbolic(c, loc, got, &s->shape);
}

static void err_guide_reads_model(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "the guide cannot read the model's %s `%s`: a guide has its own params, nets and lets",
               vlmc_sym_kind_name(s->kind), s->name);
    vlmc_note(c->d, s->loc, "`%s` is declared in the model here", s->name);
}

static void err_guide_reads_unsampled(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "the guide reads latent `%s` before sampling it", s->name);
}

static void err_literal_support(Ck *c, VlmcLoc loc, const char *dist, const char *param,
                                VlmcSupport sup, double v)
{
    const char *want = sup == VLMC_SUP_POSITIVE ? "positive"
                     : sup == VLMC_SUP_NONNEG ? "nonnegative"
                     : sup == VLMC_SUP_UNIT ? "in (0, 1)"
                     : sup == VLMC_SUP_UNIT_CLOSED ? "in [0, 1]"
                     : "finite";
    vlmc_error(c->d, loc, "%s's %s must be %s, got %g", dist, param, want, v);
}

static void err_uniform_bounds(Ck *c, VlmcLoc loc, double lo, double hi)
{
    vlmc_error(c->d, loc, "Uniform needs low < high, got low = %g and high = %g", lo, hi);
}

static void err_support_mismatch(Ck *c, VlmcLoc loc, const char *what)
{
    vlmc_error(c->d, loc, "%s", what);
}

static void err_too_many_enum(Ck *c, VlmcLoc loc, const VlmcSym *s, const char *count, bool alone)
{
    if (alone)
        vlmc_error(c->d, loc, "latent `%s` has %s joint values: too many to sum out (the limit is %d); "
                   "sample it in a guide", s->name, count, VLMC_MAX_ENUM);
    else
        vlmc_error(c->d, loc, "latent `%s` brings the enumerated latents to %s joint values: too many "
                   "to sum out (the limit is %d); sample some of them in a guide", s->name, count, VLMC_MAX_ENUM);
}

static void err_too_many_summed(Ck *c, VlmcLoc loc, const VlmcSym *s, const char *count)
{
    vlmc_error(c->d, loc, "observed `%s` is read by another conditional, so it is summed out in rows where it "
               "is missing: %s joint values with the other summed variables, more than the limit of %d",
               s->name, count, VLMC_MAX_ENUM);
}

static void err_infinite_unguided(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "latent `%s` ~ %s has infinitely many values and cannot be summed out; "
               "sample it in a guide", s->name, s->dist->name);
}

static void err_no_observed(Ck *c)
{
    VlmcLoc loc = {1, 1, 1, 1};
    vlmc_error(c->d, loc, "the model has no observed variables (declare one, e.g. `observed x[D] ~ Normal(mu, 1);`)");
}

static void err_unknown_activation(Ck *c, VlmcLoc loc, const char *name, const char *sugg)
{
    if (sugg) vlmc_error(c->d, loc, "unknown activation `%s`; did you mean `%s`?", name, sugg);
    else vlmc_error(c->d, loc, "unknown activation `%s` (relu, tanh, sigmoid, softplus, elu or identity)", name);
}

static void err_bad_initializer(Ck *c, VlmcLoc loc, const char *why)
{
    vlmc_error(c->d, loc, "bad initializer: %s", why);
}

static void err_bad_constraint(Ck *c, VlmcLoc loc, const char *name, const char *sugg, const char *why)
{
    if (why) vlmc_error(c->d, loc, "%s", why);
    else if (sugg) vlmc_error(c->d, loc, "unknown constraint `%s`; did you mean `%s`?", name, sugg);
    else vlmc_error(c->d, loc, "unknown constraint `%s` (positive, unit or simplex)", name);
}

static void err_guide_twice(Ck *c, VlmcLoc loc, VlmcLoc first)
{
    vlmc_error(c->d, loc, "a model has at most one `guide` block");
    vlmc_note(c->d, first, "the first guide is here");
}

static void err_unknown_net_kind(Ck *c, VlmcLoc loc, const char *name, const char *sugg)
{
    if (sugg) vlmc_error(c->d, loc, "unknown network `%s`; did you mean `%s`?", name, sugg);
    else vlmc_error(c->d, loc, "unknown network `%s` (mlp or linear)", name);
}

static void err_net_sizes(Ck *c, VlmcLoc loc, bool mlp, int got)
{
    if (mlp)
        vlmc_error(c->d, loc, "mlp takes 2 to %d layer sizes (in, hidden..., out), got %d",
                   VLMC_MAX_LAYERS + 1, got);
    else
        vlmc_error(c->d, loc, "linear takes 2 sizes (in, out), got %d", got);
}

static void err_global_not_latent(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    if (s->kind == VLMC_SYM_PARAM)
        vlmc_error(c->d, loc, "a param is already one value for the whole data set: drop `global` "
                   "(a prior on it is written `param %s ~ Normal(0, 1);`)", s->name);
    else if (s->kind == VLMC_SYM_OBSERVED || s->kind == VLMC_SYM_INPUT)
        vlmc_error(c->d, loc, "`global` applies to latent variables only, not to %s (`%s` is read from each "
                   "data item)", vlmc_sym_kind_noun(s->kind), s->name);
    else
        vlmc_error(c->d, loc, "`global` applies to latent variables only, not to %s",
                   vlmc_sym_kind_noun(s->kind));
}

/* A value that is one for the whole data set (a global latent's
 * distribution or guide, a param's prior) reads one that varies per item. */
static void err_reads_item(Ck *c, VlmcLoc loc, const char *what, const VlmcSym *whose, const VlmcSym *item)
{
    vlmc_error(c->d, loc, "%s `%s` reads %s `%s`, which varies per data item: it is one distribution for "
               "the whole data set", what, whose->name, vlmc_sym_kind_noun(item->kind), item->name);
}

static void err_global_discrete(Ck *c, VlmcLoc loc, const VlmcSym *s)
{
    vlmc_error(c->d, loc, "global latent `%s` is discrete: global latents must be continuous (with a "
               "reparameterized guide)", s->name);
}

static void err_prior(Ck *c, VlmcLoc loc, const char *why)
{
    vlmc_error(c->d, loc, "%s", why);
}

static void warn_shadow(Ck *c, const VlmcSym *s, const VlmcSym *model_sym)
{
    vlmc_warning(c->d, s->loc, "the guide's `%s` shadows the model's %s `%s`", s->name,
                 vlmc_sym_kind_name(model_sym->kind), model_sym->name);
    vlmc_note(c->d, model_sym->loc, "the model's `%s` is declared here", model_sym->name);
}

/* ------------------------------------------------------- suggestions */

#define MAX_CANDS 20000

/* Names of `sc` passing `keep` (NULL: all), for vlmc_suggest. */
static const char *suggest_in(Ck *c, const char *name, const Scope *sc1, const Scope *sc2,
                              bool (*keep)(const Ck *, const Entry *, bool))
{
    const Scope *scs[2] = {sc1, sc2};
    size_t total = (sc1 ? sc1->n : 0) + (sc2 ? sc2->n : 0);
    if (total > MAX_CANDS) total = MAX_CANDS;
    const char **cands = vlmc_arena_alloc(c->a, (total + 1) * sizeof *cands);
    int n = 0;
    size_t len = strlen(name);
    for (int k = 0; k < 2; k++) {
        if (!scs[k]) continue;
        for (size_t i = 0; i < scs[k]->cap && (size_t)n < total; i++) {
            Entry *e = scs[k]->slot[i].e;
            if (!e || (keep && !keep(c, e, scs[k] == &c->model))) continue;
            size_t l2 = strlen(e->sym->name);
            if (l2 + 3 < len || len + 3 < l2) continue;
            cands[n++] = e->sym->name;
        }
    }
    return vlmc_suggest(name, cands, n);
}

/* Only names a use here could legally refer to: declared earlier in the
 * same block, or (in a guide) the model names a guide may read. */
static bool visible(const Ck *c, const Entry *e, bool model_scope)
{
    if (c->in_guide == model_scope) return true;   /* guide reading the model */
    return e->order < c->cur_order;
}
static bool keep_value(const Ck *c, const Entry *e, bool model_scope)
{
    const VlmcSym *s = e->sym;
    if (!visible(c, e, model_scope)) return false;
    if (!c->in_guide || !model_scope) return s->kind != VLMC_SYM_NET;
    return s->kind == VLMC_SYM_CONST || s->kind == VLMC_SYM_OBSERVED || s->kind == VLMC_SYM_INPUT
        || (s->kind == VLMC_SYM_LATENT && s->q_dist);
}
static bool keep_const(const Ck *c, const Entry *e, bool model_scope)
{
    return e->sym->kind == VLMC_SYM_CONST && visible(c, e, model_scope);
}
static bool keep_latent(const Ck *c, const Entry *e, bool model_scope)
{
    (void)c; (void)model_scope;
    return e->sym->kind == VLMC_SYM_LATENT;
}
static bool keep_net(const Ck *c, const Entry *e, bool model_scope)
{
    return e->sym->kind == VLMC_SYM_NET && (!c->in_guide || !model_scope)
        && visible(c, e, model_scope);
}

static const char *const fn_names[] = {"exp", "log", "log1p", "sqrt", "sigmoid", "softplus",
                                       "tanh", "relu", "abs", "elu", "sum", "one_hot", "softmax",
                                       "concat", "square", "pow"};
#define N_FN_NAMES ((int)(sizeof fn_names / sizeof fn_names[0]))
static const char *const act_names[] = {"identity", "relu", "tanh", "sigmoid", "softplus", "elu"};

/* ------------------------------------------------------------ lookups */

static Entry *lookup_any(Ck *c, const char *name)
{
    Entry *e = c->in_guide ? scope_get(&c->guide, name) : NULL;
    return e ? e : scope_get(&c->model, name);
}

/* Does let `e`'s expression reach `target` through later-declared lets? */
static bool reaches(Ck *c, const VlmcExpr *x, const VlmcSym *target, int budget)
{
    if (!x || budget <= 0) return false;
    if (x->kind == VLMC_E_NAME) {
        Entry *e = lookup_any(c, x->name);
        if (!e) return false;
        if (e->sym == target) return true;
        if (e->sym->kind != VLMC_SYM_LET || e->order <= c->cur_order || e->visit == c->visit_stamp)
            return false;
        e->visit = c->visit_stamp;
        return reaches(c, e->sym->expr, target, budget - 1);
    }
    for (int i = 0; i < 2; i++)
        if (reaches(c, x->a[i], target, budget - 1)) return true;
    for (int i = 0; i < x->n_args; i++)
        if (reaches(c, x->args[i].value, target, budget - 1)) return true;
    return false;
}

/* Resolve a use of `name`, applying order and guide rules. NULL after an
 * error (reported here) or when the name's declaration was bad. */
static Entry *resolve(Ck *c, const char *name, VlmcLoc loc, const VlmcExpr *use)
{
    Entry *e = NULL;
    bool from_model = false;
    if (c->in_guide) e = scope_get(&c->guide, name);
    if (!e) {
        e = scope_get(&c->model, name);
        from_model = c->in_guide && e;
    }
    if (!e && vlmc_fn_lookup(name)) {
        err_not_a_value(c, loc, "builtin", name);
        return NULL;
    }
    if (!e) {
        err_undefined(c, loc, name, suggest_in(c, name, c->in_guide ? &c->guide : NULL,
                                               &c->model, keep_value));
        return NULL;
    }
    VlmcSym *s = e->sym;
    if (from_model) {
        switch (s->kind) {
        case VLMC_SYM_CONST: case VLMC_SYM_OBSERVED: case VLMC_SYM_INPUT: break;
        case VLMC_SYM_LATENT:
            if (!s->q_dist) { err_guide_reads_unsampled(c, loc, s); return NULL; }
            break;
        default: err_guide_reads_model(c, loc, s); return NULL;
        }
    } else if (e->order >= c->cur_order) {
        if (c->cur && e == c->cur) { err_cycle(c, loc, s, NULL); e->bad = true; return NULL; }
        c->visit_stamp++;
        if (c->cur && c->cur->sym->kind == VLMC_SYM_LET && s->kind == VLMC_SYM_LET
            && reaches(c, s->expr, c->cur->sym, 10000)) {
            err_cycle(c, loc, c->cur->sym, s);
            c->cur->bad = true;
            return NULL;
        }
        err_use_before_def(c, loc, s);
        return NULL;
    }
    (void)use;
    s->used = true;
    return e->bad ? NULL : e;
}

static void add_dep(Ck *c, VlmcSym *s, int var_id)
{
    if (var_id < 0 || c->dep_mark[var_id] == c->dep_stamp) return;
    c->dep_mark[var_id] = c->dep_stamp;
    PUSH(c, c->dep, c->n_dep, c->cap_dep, s);
}

/* ------------------------------------------------------------ sizes */

static bool literal_value(const VlmcExpr *e, double *v)
{
    if (e->kind == VLMC_E_NUM) { *v = e->num; return true; }
    if (e->kind == VLMC_E_NEG && e->a[0]->kind == VLMC_E_NUM) { *v = -e->a[0]->num; return true; }
    return false;
}

#define MAX_SIZE 2147483647L

static bool check_size_value(Ck *c, VlmcLoc loc, double v)
{
    char why[160];
    if (v != floor(v)) {
        snprintf(why, sizeof why, "a size must be a positive integer, got %g", v);
        err_bad_size(c, loc, why);
        return false;
    }
    if (v <= 0) {
        snprintf(why, sizeof why, "a size must be positive, got %.0f", v);
        err_bad_size(c, loc, why);
        return false;
    }
    if (v > MAX_SIZE) {
        snprintf(why, sizeof why, "size %.0f is too large (the limit is %ld)", v, MAX_SIZE);
        err_bad_size(c, loc, why);
        return false;
    }
    return true;
}

/* The canonical sum a + b (see VlmcDimSum), interned in the model; an
 * error (at loc) when its default value is beyond the size limit. */
static bool dim_add(Ck *c, VlmcDim a, VlmcDim b, VlmcLoc loc, VlmcDim *out)
{
    VlmcModel *m = c->m;
    long total;
    if (__builtin_add_overflow(a.value, b.value, &total) || total > MAX_SIZE) {
        char why[400], x[160], y[160];
        snprintf(why, sizeof why, "size %s + %s = %.0f is too large (the limit is %ld)",
                 fmt_dim(m, a, x, sizeof x), fmt_dim(m, b, y, sizeof y), (double)a.value + (double)b.value,
                 MAX_SIZE);
        err_bad_size(c, loc, why);
        return false;
    }
    /* terms of both sides, merged in const order */
    VlmcDim side[2] = {a, b};
    const int *t[2];
    int nt[2], one[2];
    long lit = 0;
    for (int k = 0; k < 2; k++) {
        VlmcDim d = side[k];
        if (d.cst >= 0) { one[k] = d.cst; t[k] = &one[k]; nt[k] = 1; }
        else if (d.cst == -1) { t[k] = NULL; nt[k] = 0; lit += d.value; }
        else {
            const VlmcDimSum *su = &m->dim_sums[VLMC_DIM_SUM(d.cst)];
            t[k] = su->cst; nt[k] = su->n; lit += su->lit;
        }
    }
    int n = nt[0] + nt[1];
    *out = (VlmcDim){-1, total};
    if (n == 0) return true;
    if (n == 1 && lit == 0) { out->cst = nt[0] ? t[0][0] : t[1][0]; return true; }
    int *cst = vlmc_arena_alloc(c->a, (size_t)n * sizeof *cst);
    for (int i = 0, j = 0, k = 0; k < n; k++)
        cst[k] = j >= nt[1] || (i < nt[0] && t[0][i] <= t[1][j]) ? t[0][i++] : t[1][j++];
    for (int i = 0; i < m->n_dim_sums; i++) {
        const VlmcDimSum *su = &m->dim_sums[i];
        if (su->lit == lit && su->n == n && !memcmp(su->cst, cst, (size_t)n * sizeof *cst)) {
            out->cst = VLMC_DIM_SUM(i);
            return true;
        }
    }
    PUSH(c, m->dim_sums, m->n_dim_sums, c->cap_dim_sums, ((VlmcDimSum){lit, n, cst}));
    out->cst = VLMC_DIM_SUM(m->n_dim_sums - 1);
    return true;
}

static bool resolve_dim(Ck *c, const VlmcExpr *e, VlmcDim *out)
{
    double v;
    if (e->kind == VLMC_E_BIN && e->op == '+') {   /* `Z + K`: a sum of sizes */
        VlmcDim a, b;
        bool ok1 = resolve_dim(c, e->a[0], &a), ok2 = resolve_dim(c, e->a[1], &b);
        return ok1 && ok2 && dim_add(c, a, b, e->loc, out);
    }
    if (literal_value(e, &v)) {
        if (!check_size_value(c, e->loc, v)) return false;
        out->cst = -1;
        out->value = (long)v;
        return true;
    }
    if (e->kind != VLMC_E_NAME) { err_dim_syntax(c, e->loc); return false; }
    Entry *en = lookup_any(c, e->name);
    if (!en) {
        err_unknown_const(c, e->loc, e->name, NULL, suggest_in(c, e->name, NULL, &c->model, keep_const));
        return false;
    }
    if (en->sym->kind != VLMC_SYM_CONST) { err_unknown_const(c, e->loc, e->name, en->sym, NULL); return false; }
    en = resolve(c, e->name, e->loc, e);
    if (!en) return false;
    out->cst = en->sym->index;
    out->value = en->sym->value;
    return true;
}

static bool resolve_shape(Ck *c, VlmcSym *s)
{
    if (s->n_dims > VLMC_MAX_RANK) {
        VlmcLoc l = s->dims[0]->loc;
        l.end_line = s->dims[s->n_dims - 1]->loc.end_line;
        l.end_col = s->dims[s->n_dims - 1]->loc.end_col;
        err_too_many_dims(c, l, s->n_dims);
        return false;
    }
    bool ok = true;
    s->shape.rank = s->n_dims;
    for (int i = 0; i < s->n_dims; i++)
        ok &= resolve_dim(c, s->dims[i], &s->shape.dim[i]);
    return ok;
}

/* const expressions: integers, earlier consts, + - * and parentheses */
static bool eval_const(Ck *c, const VlmcExpr *e, long *out)
{
    long a, b;
    switch (e->kind) {
    case VLMC_E_NUM:
        if (e->num != floor(e->num) || fabs(e->num) > 4e18) {
            char why[120];
            snprintf(why, sizeof why, "a const must be an integer, got %g", e->num);
            err_bad_size(c, e->loc, why);
            return false;
        }
        *out = (long)e->num;
        return true;
    case VLMC_E_NAME: {
        Entry *en = lookup_any(c, e->name);
        if (en && en->sym->kind != VLMC_SYM_CONST) { err_unknown_const(c, e->loc, e->name, en->sym, NULL); return false; }
        en = resolve(c, e->name, e->loc, e);
        if (!en) return false;
        *out = en->sym->value;
        return true;
    }
    case VLMC_E_NEG:
        if (!eval_const(c, e->a[0], &a)) return false;
        *out = -a;
        return true;
    case VLMC_E_BIN: {
        if (e->op == '/' || e->op == '@') {
            err_const_expr(c, e->loc, e->op == '/' ? "division" : "matrix product");
            return false;
        }
        bool ok1 = eval_const(c, e->a[0], &a), ok2 = eval_const(c, e->a[1], &b);
        if (!ok1 || !ok2) return false;
        bool ovf = e->op == '+' ? __builtin_add_overflow(a, b, out)
                 : e->op == '-' ? __builtin_sub_overflow(a, b, out)
                 : __builtin_mul_overflow(a, b, out);
        if (ovf) { err_bad_size(c, e->loc, "const value overflows"); return false; }
        return true;
    }
    case VLMC_E_CALL: err_const_expr(c, e->loc, "a function call"); return false;
    case VLMC_E_INDEX: err_const_expr(c, e->loc, "indexing"); return false;
    }
    return false;
}

/* ------------------------------------------------------ expressions */

static bool check_expr(Ck *c, VlmcExpr *e);

static void set_scalar(VlmcExpr *e)
{
    e->shape.rank = 0;
    e->type = VLMC_T_REAL;
    e->batched = false;
}

static bool check_index(Ck *c, VlmcExpr *e)
{
    VlmcExpr *base = e->a[0], *idx = e->a[1];
    Entry *be = resolve(c, base->name, base->loc, base);
    bool ok = idx->kind == VLMC_E_NAME ? check_expr(c, idx) : (check_expr(c, idx), false);
    if (!be) return false;
    VlmcSym *p = be->sym;
    base->sym = p;
    base->shape = p->shape;
    base->batched = p->local;
    if (p->kind != VLMC_SYM_PARAM || p->shape.rank == 0) { err_index_base(c, base->loc, p); return false; }
    if (idx->kind != VLMC_E_NAME) { err_index_not_latent(c, idx->loc, NULL); return false; }
    if (!ok) return false;
    VlmcSym *z = idx->sym;
    if (z->kind == VLMC_SYM_INPUT) {
        /* `input c : category(K);` indexes a first dimension of K */
        if (z->support == 0) { err_index_real_input(c, idx->loc, z); return false; }
    } else {
        if (z->kind != VLMC_SYM_LATENT && z->kind != VLMC_SYM_OBSERVED) { err_index_not_latent(c, idx->loc, z); return false; }
        if (!z->dist) return false;
        if (!z->dist->discrete) { err_index_continuous(c, idx->loc, z); return false; }
    }
    if (z->shape.rank > 1) { err_index_not_scalar(c, idx->loc, z); return false; }
    char msg[400], a[80], b[80];
    if (z->support == 0) {
        snprintf(msg, sizeof msg, "index `%s` ~ %s has unbounded values; an index needs a Categorical "
                 "or Bernoulli variable", z->name, z->dist->name);
        err_support_mismatch(c, idx->loc, msg);
        return false;
    }
    if (!dim_eq(z->support_dim, p->shape.dim[0])) {
        snprintf(msg, sizeof msg, "`%s` takes %s values, but the first dimension of `%s` is %s",
                 z->name, fmt_dim(c->m, z->support_dim, a, sizeof a), p->name,
                 fmt_dim(c->m, p->shape.dim[0], b, sizeof b));
        err_support_mismatch(c, idx->loc, msg);
        return false;
    }
    /* a vector index `mu[z]`, z[T]: one row of mu per element -> [T, ...] */
    int lead = z->shape.rank;
    e->shape.rank = lead + p->shape.rank - 1;
    if (lead) e->shape.dim[0] = z->shape.dim[0];
    for (int i = 1; i < p->shape.rank; i++) e->shape.dim[lead + i - 1] = p->shape.dim[i];
    e->type = VLMC_T_REAL;
    e->batched = true;
    return true;
}

/* The variable a discrete value names: `y`, or a let that is `y`. Only
 * names are int-typed (arithmetic gives reals), so this finds it. */
static const VlmcSym *discrete_var(const VlmcExpr *x)
{
    for (int hops = 0; x && x->kind == VLMC_E_NAME && x->sym && hops < 10000; hops++) {
        const VlmcSym *s = x->sym;
        if (s->kind == VLMC_SYM_LATENT || s->kind == VLMC_SYM_OBSERVED || s->kind == VLMC_SYM_INPUT)
            return s;
        if (s->kind != VLMC_SYM_LET) return NULL;
        x = s->expr;
    }
    return NULL;
}

/* one_hot(y): y discrete with K values per element -> y's shape + [K] */
static bool check_one_hot(Ck *c, VlmcExpr *e, VlmcExpr *y)
{
    const VlmcSym *s = discrete_var(y);
    /* a Categorical/Bernoulli variable, or an input `: category(K)` */
    if (y->type != VLMC_T_INT || !s || (!s->dist && s->kind != VLMC_SYM_INPUT)) {
        err_one_hot_not_discrete(c, y->loc, s);
        return false;
    }
    if (s->support <= 0) { err_one_hot_categories(c, y->loc, s); return false; }
    if (y->shape.rank >= VLMC_MAX_RANK) { err_too_many_dims(c, e->loc, y->shape.rank + 1); return false; }
    e->shape = y->shape;
    e->shape.dim[e->shape.rank++] = s->support_dim;
    return true;
}

/* concat(a, b, ...): all but the last dimension agree (a scalar is [1]);
 * the last is the sum of the arguments' last dimensions. */
static bool check_concat(Ck *c, VlmcExpr *e)
{
    VlmcShape first = e->args[0].value->shape;
    if (first.rank == 0) first = (VlmcShape){1, {{-1, 1}}};
    e->shape = first;
    for (int i = 1; i < e->n_args; i++) {
        const VlmcExpr *x = e->args[i].value;
        VlmcShape sh = x->shape;
        if (sh.rank == 0) sh = (VlmcShape){1, {{-1, 1}}};
        bool same = sh.rank == first.rank;
        for (int k = 0; same && k + 1 < sh.rank; k++) same = dim_eq(sh.dim[k], first.dim[k]);
        if (!same) { err_concat_shape(c, x->loc, &first, &sh); return false; }
        int last = sh.rank - 1;
        if (!dim_add(c, e->shape.dim[last], sh.dim[last], e->loc, &e->shape.dim[last])) return false;
    }
    return true;
}

/* A builtin call: arity, then the shape of its value (always real). */
static bool check_builtin(Ck *c, VlmcExpr *e, bool kw, bool args_ok)
{
    VlmcFn fn = e->fn;
    int want = fn == VLMC_FN_POW || fn == VLMC_FN_CONCAT ? 2 : 1;
    if (kw) { err_fn_args(c, e->loc, e->name, e->n_args, true); return false; }
    if (fn == VLMC_FN_CONCAT ? e->n_args < want : e->n_args != want) {
        if (want == 1) err_fn_args(c, e->loc, e->name, e->n_args, false);
        else err_builtin_arity(c, e->loc, e->name, want, fn == VLMC_FN_CONCAT, e->n_args);
        return false;
    }
    if (!args_ok) return false;
    VlmcExpr *x = e->args[0].value;
    e->type = VLMC_T_REAL;
    e->batched = false;
    for (int i = 0; i < e->n_args; i++) e->batched |= e->args[i].value->batched;
    switch (fn) {
    case VLMC_FN_SUM:
        e->shape = (VlmcShape){0, {{0, 0}}};
        return true;
    case VLMC_FN_ONE_HOT:
        return check_one_hot(c, e, x);
    case VLMC_FN_SOFTMAX:
        if (x->shape.rank == 0) { err_softmax_scalar(c, x->loc); return false; }
        e->shape = x->shape;
        return true;
    case VLMC_FN_CONCAT:
        return check_concat(c, e);
    case VLMC_FN_POW:
        if (!literal_value(e->args[1].value, &e->power)) { err_pow_exponent(c, e->args[1].value->loc); return false; }
        e->shape = x->shape;
        return true;
    default:
        e->shape = x->shape;
        return true;
    }
}

static bool check_call(Ck *c, VlmcExpr *e)
{
    VlmcFn fn = vlmc_fn_lookup(e->name);
    Entry *en = fn ? NULL : lookup_any(c, e->name);
    if (!fn && !en) {
        const char *sugg = suggest_in(c, e->name, c->in_guide ? &c->guide : NULL,
                                      c->in_guide ? NULL : &c->model, keep_net);
        if (!sugg) sugg = vlmc_suggest(e->name, fn_names, N_FN_NAMES);
        err_unknown_function(c, e->loc, e->name, sugg);
        for (int i = 0; i < e->n_args; i++) check_expr(c, e->args[i].value);
        return false;
    }
    if (en && en->sym->kind != VLMC_SYM_NET) { err_not_callable(c, e->loc, en->sym); return false; }
    bool kw = false;
    for (int i = 0; i < e->n_args; i++) kw |= e->args[i].key != NULL;
    bool ok = true;
    for (int i = 0; i < e->n_args; i++) ok &= check_expr(c, e->args[i].value);
    if (fn) {
        e->fn = fn;
        return check_builtin(c, e, kw, ok);
    }
    en = resolve(c, e->name, e->loc, e);
    if (!en) return false;
    VlmcSym *net = en->sym;
    if (net->kind != VLMC_SYM_NET) { err_not_callable(c, e->loc, net); return false; }
    e->sym = net;
    if (kw || e->n_args != 1) { err_fn_args(c, e->loc, e->name, e->n_args, kw); return false; }
    if (!ok) return false;
    VlmcExpr *x = e->args[0].value;
    /* a scalar is a vector of one: it passes to a net whose input size is 1 */
    bool scalar_in = x->shape.rank == 0 && dim_eq(net->net.sizes[0], (VlmcDim){-1, 1});
    if (!scalar_in && (x->shape.rank != 1 || !dim_eq(x->shape.dim[0], net->net.sizes[0]))) {
        err_net_input(c, x->loc, net, &x->shape);
        if (x->shape.rank == 0)
            vlmc_note(c->d, x->loc, "a scalar passes only to a net whose input size is the literal 1");
        return false;
    }
    e->shape.rank = 1;
    e->shape.dim[0] = net->net.sizes[net->net.n_sizes - 1];
    e->type = VLMC_T_REAL;
    e->batched = x->batched;
    return true;
}

/* Shapes of `@`: [m,n]@[n] -> [m]; [n]@[n,m] -> [m]; [m,n]@[n,p] -> [m,p]. */
static bool matmul_shape(const VlmcShape *l, const VlmcShape *r, VlmcShape *out)
{
    /* declared above for err_matmul_shape */
    if (l->rank == 2 && r->rank == 1 && dim_eq(l->dim[1], r->dim[0])) {
        *out = (VlmcShape){1, {l->dim[0]}};
        return true;
    }
    if (l->rank == 1 && r->rank == 2 && dim_eq(l->dim[0], r->dim[0])) {
        *out = (VlmcShape){1, {r->dim[1]}};
        return true;
    }
    if (l->rank == 2 && r->rank == 2 && dim_eq(l->dim[1], r->dim[0])) {
        *out = (VlmcShape){2, {l->dim[0], r->dim[1]}};
        return true;
    }
    return false;
}

static bool check_expr(Ck *c, VlmcExpr *e)
{
    switch (e->kind) {
    case VLMC_E_NUM:
        set_scalar(e);
        return true;
    case VLMC_E_NAME: {
        Entry *en = resolve(c, e->name, e->loc, e);
        if (!en) return false;
        VlmcSym *s = en->sym;
        e->sym = s;
        switch (s->kind) {
        case VLMC_SYM_CONST: set_scalar(e); return true;
        case VLMC_SYM_NET: err_not_a_value(c, e->loc, "net", s->name); return false;
        case VLMC_SYM_PARAM:
            e->shape = s->shape; e->type = VLMC_T_REAL; e->batched = s->local;
            return true;
        case VLMC_SYM_LET:
            e->shape = s->shape; e->type = s->type; e->batched = s->expr->batched;
            for (int i = 0; i < en->n_deps; i++) {
                Entry *de = scope_get(&c->model, en->deps[i]->name);
                if (de) add_dep(c, en->deps[i], de->var_id);
            }
            return true;
        case VLMC_SYM_LATENT: case VLMC_SYM_OBSERVED: case VLMC_SYM_INPUT:
            e->shape = s->shape; e->type = s->type;
            e->batched = !(s->kind == VLMC_SYM_LATENT && s->global);
            add_dep(c, s, en->var_id);
            return true;
        }
        return false;
    }
    case VLMC_E_NEG:
        if (!check_expr(c, e->a[0])) return false;
        e->shape = e->a[0]->shape;
        e->type = VLMC_T_REAL;
        e->batched = e->a[0]->batched;
        return true;
    case VLMC_E_BIN: {
        bool ok1 = check_expr(c, e->a[0]), ok2 = check_expr(c, e->a[1]);
        if (!ok1 || !ok2) return false;
        VlmcExpr *l = e->a[0], *r = e->a[1];
        e->type = VLMC_T_REAL;
        e->batched = l->batched || r->batched;
        if (e->op == '@') {
            if (!matmul_shape(&l->shape, &r->shape, &e->shape)) {
                err_matmul_shape(c, e->loc, &l->shape, &r->shape);
                return false;
            }
            return true;
        }
        if (l->shape.rank == 0) e->shape = r->shape;
        else if (r->shape.rank == 0 || shape_eq(&l->shape, &r->shape)) e->shape = l->shape;
        else { err_shape_mismatch(c, e->loc, e->op, &l->shape, &r->shape); return false; }
        return true;
    }
    case VLMC_E_CALL:
        return check_call(c, e);
    case VLMC_E_INDEX:
        return check_index(c, e);
    }
    return false;
}

/* ---------------------------------------------------- distributions */

typedef struct DistResult {
    const VlmcDist *dist;
    int form;
    VlmcExpr **args;
    VlmcDim k;          /* Categorical: number of categories */
} DistResult;

static bool literal_in_support(VlmcSupport s, double v)
{
    switch (s) {
    case VLMC_SUP_POSITIVE: return v > 0;
    case VLMC_SUP_NONNEG: return v >= 0;
    case VLMC_SUP_UNIT: return v > 0 && v < 1;
    case VLMC_SUP_UNIT_CLOSED: return v >= 0 && v <= 1;
    default: return isfinite(v);
    }
}

/* Markov(init, trans): the value is [T]; trans is [K, K] and init [K],
 * both the same for every item (not batched). K goes to r->k. */
static bool check_chain_args(Ck *c, VlmcExpr *call, const char *var, const VlmcShape *vshape,
                             const VlmcDistForm *F, DistResult *r)
{
    bool ok = true;
    if (vshape->rank != 1) { err_chain_shape(c, call->loc, var, vshape); ok = false; }
    VlmcExpr *init = r->args[0], *trans = r->args[1];
    const VlmcShape *ts = &trans->shape, *is = &init->shape;
    if (ts->rank != 2 || !dim_eq(ts->dim[0], ts->dim[1])) {
        err_chain_arg_shape(c, trans->loc, F->names[1], ts, "a square matrix [K, K] over the K states");
        return false;
    }
    r->k = ts->dim[1];
    if (is->rank != 1 || !dim_eq(is->dim[0], r->k)) {
        char want[160], k[80];
        snprintf(want, sizeof want, "[%s], one entry per state of `%s`", fmt_dim(c->m, r->k, k, sizeof k),
                 F->names[1]);
        err_chain_arg_shape(c, init->loc, F->names[0], is, want);
        ok = false;
    }
    for (int p = 0; p < 2; p++)
        if (r->args[p]->batched) { err_chain_arg_batched(c, r->args[p]->loc, F->names[p]); ok = false; }
    return ok;
}

/* `var ~ Dist(args)` with `var` of shape `vshape`. `guide_of` is the latent
 * a guide samples (NULL in the model). */
static bool check_dist(Ck *c, VlmcExpr *call, const char *var, const VlmcShape *vshape,
                       VlmcSym *guide_of, DistResult *r)
{
    const VlmcDist *dist = vlmc_dist_lookup(call->name);
    bool ok = true;
    if (!dist) {
        const char *names[32];
        for (int i = 0; i < vlmc_n_dists && i < 32; i++) names[i] = vlmc_dists[i].name;
        err_unknown_dist(c, call->loc, call->name, vlmc_suggest(call->name, names, vlmc_n_dists));
        for (int i = 0; i < call->n_args; i++) check_expr(c, call->args[i].value);
        return false;
    }
    r->dist = dist;
    /* choose the form from the keywords */
    int form = -1, n_pos = 0;
    const VlmcArg *form_key = NULL;
    bool seen_kw = false;
    for (int i = 0; i < call->n_args; i++) {
        const VlmcArg *a = &call->args[i];
        if (!a->key) {
            if (seen_kw) { err_positional_after_keyword(c, a->value->loc); ok = false; }
            else n_pos++;
            continue;
        }
        seen_kw = true;
        int f = -1;
        for (int j = 0; j < dist->n_forms && f < 0; j++)
            for (int p = 0; p < dist->forms[j].n_params; p++)
                if (!strcmp(dist->forms[j].names[p], a->key)) { f = j; break; }
        if (f < 0) {
            const char *names[8];
            int nn = 0;
            for (int j = 0; j < dist->n_forms; j++)
                for (int p = 0; p < dist->forms[j].n_params; p++) names[nn++] = dist->forms[j].names[p];
            err_unknown_keyword(c, a->key_loc, a->key, dist->name, vlmc_suggest(a->key, names, nn));
            ok = false;
            continue;
        }
        if (form >= 0 && f != form) {
            err_mixed_forms(c, a->key_loc, dist->name, form_key->key, a->key);
            ok = false;
            continue;
        }
        form = f;
        form_key = a;
    }
    if (form < 0) form = 0;
    const VlmcDistForm *F = &dist->forms[form];
    r->form = form;
    r->args = vlmc_arena_alloc(c->a, VLMC_MAX_DIST_PARAMS * sizeof *r->args);
    VlmcLoc given[VLMC_MAX_DIST_PARAMS];
    if (n_pos > F->n_params) {
        err_arg_count(c, call->args[F->n_params].value->loc, dist->name, F->n_params, n_pos);
        ok = false;
    }
    for (int i = 0, pos = 0; i < call->n_args; i++) {
        const VlmcArg *a = &call->args[i];
        int slot = -1;
        if (!a->key) {
            if (pos >= n_pos) continue;   /* positional after a keyword: reported */
            slot = pos < F->n_params ? pos : -1;
            pos++;
        }
        else
            for (int p = 0; p < F->n_params; p++)
                if (!strcmp(F->names[p], a->key)) slot = p;
        if (slot < 0) continue;
        if (r->args[slot]) { err_duplicate_keyword(c, a->key_loc, a->key, given[slot]); ok = false; continue; }
        r->args[slot] = a->value;
        given[slot] = a->key ? a->key_loc : a->value->loc;
    }
    for (int p = 0; p < F->n_params && ok; p++)
        if (!r->args[p]) { err_missing_arg(c, call->loc, dist->name, F->names[p]); ok = false; }
    /* check every argument, even after errors, to report their own */
    for (int i = 0; i < call->n_args; i++)
        if (!check_expr(c, call->args[i].value)) ok = false;
    if (!ok) return false;
    if (dist->chain) return check_chain_args(c, call, var, vshape, F, r);
    for (int p = 0; p < F->n_params; p++) {
        VlmcExpr *x = r->args[p];
        double v;
        if (literal_value(x, &v) && !literal_in_support(F->supports[p], v)) {
            err_literal_support(c, x->loc, dist->name, F->names[p], F->supports[p], v);
            ok = false;
            continue;
        }
        if (dist->event_last_dim) {
            VlmcShape pre = x->shape;
            if (pre.rank == 0) {
                err_dist_arg_shape(c, x->loc, F->names[p], &x->shape, var, NULL, true);
                ok = false;
                continue;
            }
            r->k = pre.dim[--pre.rank];
            if (pre.rank != 0 && !shape_eq(&pre, vshape)) {
                if (guide_of) err_guide_sample_shape(c, x->loc, guide_of, F->names[p], &pre);
                else err_dist_arg_shape(c, x->loc, F->names[p], &x->shape, var, vshape, true);
                ok = false;
            }
            continue;
        }
        if (x->shape.rank != 0 && !shape_eq(&x->shape, vshape)) {
            if (guide_of) err_guide_sample_shape(c, x->loc, guide_of, F->names[p], &x->shape);
            else err_dist_arg_shape(c, x->loc, F->names[p], &x->shape, var, vshape, false);
            ok = false;
        }
    }
    double lo, hi;
    if (ok && !strcmp(dist->name, "Uniform") && literal_value(r->args[0], &lo)
        && literal_value(r->args[1], &hi) && !(lo < hi)) {
        err_uniform_bounds(c, call->loc, lo, hi);
        ok = false;
    }
    return ok;
}

/* Can values drawn from q (the guide) lie outside p's support? */
static bool support_within(VlmcSupport q, VlmcSupport p)
{
    if (q == p) return true;
    switch (p) {
    case VLMC_SUP_REAL:
        return q == VLMC_SUP_POSITIVE || q == VLMC_SUP_NONNEG || q == VLMC_SUP_UNIT
            || q == VLMC_SUP_UNIT_CLOSED || q == VLMC_SUP_INTERVAL;
    case VLMC_SUP_POSITIVE: return q == VLMC_SUP_UNIT;
    case VLMC_SUP_NONNEG: return q == VLMC_SUP_POSITIVE || q == VLMC_SUP_UNIT || q == VLMC_SUP_UNIT_CLOSED;
    case VLMC_SUP_UNIT_CLOSED: return q == VLMC_SUP_UNIT;
    case VLMC_SUP_INTERVAL: return q == VLMC_SUP_UNIT || q == VLMC_SUP_UNIT_CLOSED;
    case VLMC_SUP_COUNT: return q == VLMC_SUP_BINARY || q == VLMC_SUP_CATEGORY;
    default: return false;
    }
}

/* ------------------------------------------------------- statements */

static void finish_deps(Ck *c, VlmcSym *s)
{
    /* sort by dependency index: declaration order */
    for (int i = 1; i < c->n_dep; i++)
        for (int j = i; j > 0; j--) {
            Entry *a = scope_get(&c->model, c->dep[j - 1]->name);
            Entry *b = scope_get(&c->model, c->dep[j]->name);
            if (a->var_id <= b->var_id) break;
            VlmcSym *t = c->dep[j]; c->dep[j] = c->dep[j - 1]; c->dep[j - 1] = t;
        }
    s->n_deps = c->n_dep;
    if (c->n_dep == 0) { s->deps = NULL; return; }
    s->deps = vlmc_arena_alloc(c->a, (size_t)(c->n_dep + 1) * sizeof *s->deps);
    if (c->n_dep) memcpy(s->deps, c->dep, (size_t)c->n_dep * sizeof *s->deps);
}

static bool check_const(Ck *c, VlmcSym *s)
{
    long v;
    if (!eval_const(c, s->expr, &v)) { s->value = 1; return false; }
    if (!check_size_value(c, s->expr->loc, (double)v)) { s->value = 1; return false; }
    s->value = v;
    return true;
}

/* Parameters are float32, and a constrained one is stored as log (positive)
 * or logit (unit): a value the param can hold after that round trip. */
#define F32_MAX 3.4028234663852886e38
#define F32_MIN 1.1754943508222875e-38     /* smallest normal float */
#define UNIT_MAX (1.0 - 0x1p-24)           /* largest float below 1 */

static bool init_value_fits(const VlmcSym *s, double v, char *why, size_t n)
{
    switch (s->constraint) {
    case VLMC_CON_POSITIVE:
        if (!(v > 0)) { snprintf(why, n, "`%s` is positive, but its initial value is %g", s->name, v); return false; }
        if (v < F32_MIN || v > F32_MAX) {
            snprintf(why, n, "`%s` is a float32 param: its positive value %g is outside [%.9g, %.9g]",
                     s->name, v, F32_MIN, F32_MAX);
            return false;
        }
        return true;
    case VLMC_CON_UNIT:
        if (!(v > 0 && v < 1)) { snprintf(why, n, "`%s` is in (0, 1), but its initial value is %g", s->name, v); return false; }
        if (v < F32_MIN || v > UNIT_MAX) {
            snprintf(why, n, "`%s` is a float32 param in (0, 1): %.9g rounds to %s", s->name, v,
                     v < F32_MIN ? "0" : "1");
            return false;
        }
        return true;
    default:
        if (fabs(v) > F32_MAX) {
            snprintf(why, n, "`%s` is a float32 param: %g is beyond its largest value %.9g", s->name, v, F32_MAX);
            return false;
        }
        return true;
    }
}

/* The first symbol e reads that varies per data item (data, a local
 * latent, a `guide local` param unless local_ok), or NULL. */
static const VlmcSym *item_value(const VlmcExpr *e, bool local_ok)
{
    if (!e) return NULL;
    const VlmcSym *r = NULL;
    switch (e->kind) {
    case VLMC_E_NUM: return NULL;
    case VLMC_E_NAME: {
        const VlmcSym *s = e->sym;
        if (!s) return NULL;
        switch (s->kind) {
        case VLMC_SYM_OBSERVED: case VLMC_SYM_INPUT: return s;
        case VLMC_SYM_LATENT: return s->global ? NULL : s;
        case VLMC_SYM_LET: return item_value(s->expr, local_ok);
        case VLMC_SYM_PARAM: return s->local && !local_ok ? s : NULL;
        default: return NULL;
        }
    }
    case VLMC_E_CALL:
        for (int i = 0; i < e->n_args && !r; i++) r = item_value(e->args[i].value, local_ok);
        return r;
    default:
        r = item_value(e->a[0], local_ok);
        return r ? r : item_value(e->a[1], local_ok);
    }
}

/* The params of a global latent's guide are global even in `guide local`. */
static void make_params_global(VlmcExpr *e)
{
    if (!e) return;
    switch (e->kind) {
    case VLMC_E_NUM: return;
    case VLMC_E_NAME:
        if (e->sym && e->sym->kind == VLMC_SYM_PARAM) { e->sym->local = false; e->batched = false; }
        if (e->sym && e->sym->kind == VLMC_SYM_LET) make_params_global(e->sym->expr);
        return;
    case VLMC_E_CALL:
        for (int i = 0; i < e->n_args; i++) make_params_global(e->args[i].value);
        break;
    default:
        make_params_global(e->a[0]);
        make_params_global(e->a[1]);
    }
    e->batched = false;
}

/* `param w ~ Dist(args)`: a prior, counted once per data set (MAP). The
 * param's constraint must give values in the prior's support. */
static bool check_prior(Ck *c, VlmcSym *s)
{
    if (s->in_guide) {
        err_prior(c, s->dist_call->loc, "a guide's param cannot have a prior: priors belong to the model");
        return false;
    }
    DistResult r = {0};
    if (!check_dist(c, s->dist_call, s->name, &s->shape, NULL, &r) || !r.dist) return false;
    s->dist = r.dist;
    s->dist_loc = s->dist_call->loc;
    s->param_form = r.form;
    s->dist_args = r.args;
    if (r.dist->discrete) {
        err_prior(c, s->dist_call->loc, "a param's prior must be continuous (a param is real-valued)");
        return false;
    }
    for (int i = 0; i < r.dist->forms[r.form].n_params; i++) {
        const VlmcSym *it = item_value(r.args[i], false);
        if (it) { err_reads_item(c, r.args[i]->loc, "the prior of param", s, it); return false; }
    }
    VlmcSupport v = r.dist->value_support;
    VlmcConstraint want = v == VLMC_SUP_REAL ? VLMC_CON_NONE
                        : v == VLMC_SUP_POSITIVE || v == VLMC_SUP_NONNEG ? VLMC_CON_POSITIVE
                        : v == VLMC_SUP_UNIT || v == VLMC_SUP_UNIT_CLOSED ? VLMC_CON_UNIT : (VlmcConstraint)-1;
    static const char *const con[] = {"no constraint", "`: positive`", "`: unit`", "`: simplex`"};
    if ((int)want < 0 || s->constraint != want) {
        char why[300];
        snprintf(why, sizeof why, "the prior %s gives %s values, but param `%s` has %s%s%s", r.dist->name,
                 vlmc_support_name(v), s->name, con[s->constraint], (int)want < 0 ? "" : ": declare it with ",
                 (int)want < 0 ? "" : con[want]);
        err_prior(c, s->dist_call->loc, why);
        return false;
    }
    return true;
}

static bool check_param(Ck *c, VlmcSym *s)
{
    bool ok = resolve_shape(c, s);
    s->type = VLMC_T_REAL;
    if (s->con_name) {
        static const char *const cons[] = {"positive", "unit", "simplex"};
        int k = -1;
        for (int i = 0; i < 3; i++) if (!strcmp(cons[i], s->con_name)) k = i;
        if (k < 0) {
            err_bad_constraint(c, s->con_loc, s->con_name, vlmc_suggest(s->con_name, cons, 3), NULL);
            ok = false;
        } else {
            s->constraint = (VlmcConstraint)(k + 1);
            if (s->constraint == VLMC_CON_SIMPLEX && s->n_dims == 0) {
                err_bad_constraint(c, s->con_loc, s->con_name, NULL,
                                   "a simplex param needs at least one dimension (its last sums to 1)");
                ok = false;
            }
        }
    }
    if (s->dist_call && ok) ok = check_prior(c, s);
    VlmcExpr *x = s->init_expr;
    if (!x) { s->init = VLMC_INIT_DEFAULT; return ok; }
    double v, a, b;
    char why[240];
    if (literal_value(x, &v)) {
        s->init = VLMC_INIT_CONST;
        s->init_a = v;
        if (s->constraint == VLMC_CON_SIMPLEX) {
            err_bad_initializer(c, x->loc, "a simplex param starts uniform and takes no initializer");
            return false;
        }
        if (!init_value_fits(s, v, why, sizeof why)) {
            err_bad_initializer(c, x->loc, why);
            return false;
        }
        return ok;
    }
    bool is_normal = x->kind == VLMC_E_CALL && !strcmp(x->name, "normal");
    bool is_uniform = x->kind == VLMC_E_CALL && !strcmp(x->name, "uniform");
    if (!is_normal && !is_uniform) {
        err_bad_initializer(c, x->loc, "expected a number, normal(mean, sd) or uniform(low, high)");
        return false;
    }
    if (x->n_args != 2 || x->args[0].key || x->args[1].key
        || !literal_value(x->args[0].value, &a) || !literal_value(x->args[1].value, &b)) {
        snprintf(why, sizeof why, "%s takes two numbers, e.g. %s", x->name,
                 is_normal ? "normal(0, 0.01)" : "uniform(-0.1, 0.1)");
        err_bad_initializer(c, x->loc, why);
        return false;
    }
    s->init = is_normal ? VLMC_INIT_NORMAL : VLMC_INIT_UNIFORM;
    s->init_a = a;
    s->init_b = b;
    if (is_normal && !(b > 0)) {
        snprintf(why, sizeof why, "normal's standard deviation must be positive, got %g", b);
        err_bad_initializer(c, x->loc, why);
        return false;
    }
    if (is_uniform && !(a < b)) {
        snprintf(why, sizeof why, "uniform needs low < high, got %g and %g", a, b);
        err_bad_initializer(c, x->loc, why);
        return false;
    }
    if (s->constraint != VLMC_CON_NONE) {
        /* a random start must land inside the constraint: only uniform
         * draws the constrained value itself, within [low, high] */
        bool fits = s->constraint == VLMC_CON_POSITIVE ? (is_uniform && a >= 0)
                  : s->constraint == VLMC_CON_UNIT ? (is_uniform && a >= 0 && b <= 1) : false;
        if (!fits) {
            snprintf(why, sizeof why, "%s(%g, %g) can give values outside the `%s` constraint%s", x->name,
                     a, b, s->con_name,
                     s->constraint == VLMC_CON_SIMPLEX ? "; a simplex param takes no initializer"
                                                       : "; use a number or uniform(low, high) inside it");
            err_bad_initializer(c, x->loc, why);
            return false;
        }
    }
    /* storable in float32 after the log/logit round trip */
    if (s->constraint == VLMC_CON_NONE) {
        if (!init_value_fits(s, a, why, sizeof why) || !init_value_fits(s, b, why, sizeof why)) {
            err_bad_initializer(c, x->loc, why);
            return false;
        }
    } else {
        bool pos = s->constraint == VLMC_CON_POSITIVE;
        if (b < F32_MIN || (pos ? b > F32_MAX : a > UNIT_MAX)) {
            snprintf(why, sizeof why, "uniform(%.9g, %.9g) reaches values a float32 `%s` param cannot hold "
                     "(it holds %.9g to %.9g)", a, b, s->con_name, F32_MIN, pos ? F32_MAX : UNIT_MAX);
            err_bad_initializer(c, x->loc, why);
            return false;
        }
    }
    return ok;
}

static bool parse_act(Ck *c, const VlmcArg *a, VlmcAct *out)
{
    const VlmcExpr *x = a->value;
    if (x->kind == VLMC_E_NAME)
        for (int i = 0; i < 6; i++)
            if (!strcmp(act_names[i], x->name)) { *out = (VlmcAct)i; return true; }
    err_unknown_activation(c, x->loc, x->kind == VLMC_E_NAME ? x->name : "(expression)",
                           x->kind == VLMC_E_NAME ? vlmc_suggest(x->name, act_names, 6) : NULL);
    return false;
}

static bool check_net(Ck *c, VlmcSym *s)
{
    VlmcExpr *call = s->net_call;
    VlmcNetSpec *n = &s->net;
    static const char *const kinds[] = {"mlp", "linear"};
    n->is_mlp = !strcmp(call->name, "mlp");
    if (!n->is_mlp && strcmp(call->name, "linear")) {
        VlmcLoc l = call->loc;
        l.end_line = l.line;
        l.end_col = l.col + (int)strlen(call->name);
        err_unknown_net_kind(c, l, call->name, vlmc_suggest(call->name, kinds, 2));
        return false;
    }
    n->act = VLMC_ACT_RELU;
    n->out_act = VLMC_ACT_IDENTITY;
    bool ok = true, seen_kw = false;
    const VlmcArg *act_arg = NULL, *out_arg = NULL;
    int n_sizes = 0;
    for (int i = 0; i < call->n_args; i++) {
        const VlmcArg *a = &call->args[i];
        if (!a->key) {
            if (seen_kw) { err_positional_after_keyword(c, a->value->loc); ok = false; continue; }
            if (n_sizes < VLMC_MAX_LAYERS + 1) ok &= resolve_dim(c, a->value, &n->sizes[n_sizes]);
            n_sizes++;
            continue;
        }
        seen_kw = true;
        const VlmcArg **slot = !strcmp(a->key, "act") && n->is_mlp ? &act_arg
                             : !strcmp(a->key, "out") ? &out_arg : NULL;
        if (!slot) {
            static const char *const keys[] = {"act", "out"};
            err_unknown_keyword(c, a->key_loc, a->key, call->name,
                                n->is_mlp ? vlmc_suggest(a->key, keys, 2) : "out");
            ok = false;
            continue;
        }
        if (*slot) { err_duplicate_keyword(c, a->key_loc, a->key, (*slot)->key_loc); ok = false; continue; }
        *slot = a;
        ok &= parse_act(c, a, slot == &act_arg ? &n->act : &n->out_act);
    }
    if (n_sizes < 2 || n_sizes > VLMC_MAX_LAYERS + 1 || (!n->is_mlp && n_sizes != 2)) {
        err_net_sizes(c, call->loc, n->is_mlp, n_sizes);
        return false;
    }
    n->n_sizes = n_sizes;
    return ok;
}

static bool check_var(Ck *c, VlmcSym *s)
{
    bool ok = resolve_shape(c, s);
    DistResult r = {0};
    ok &= check_dist(c, s->dist_call, s->name, &s->shape, NULL, &r);
    if (!r.dist) return false;
    if (r.dist->chain && s->kind == VLMC_SYM_OBSERVED) { err_chain_observed(c, s->dist_call->loc, s); ok = false; }
    s->dist = r.dist;
    s->dist_loc = s->dist_call->loc;
    s->param_form = r.form;
    s->dist_args = r.args;
    s->type = r.dist->discrete ? VLMC_T_INT : VLMC_T_REAL;
    /* observed Bernoulli data may be relaxed to [0, 1] (e.g. grey pixels) */
    if (s->kind == VLMC_SYM_OBSERVED && r.dist->value_support == VLMC_SUP_BINARY)
        s->type = VLMC_T_REAL;
    if (s->global) {
        if (r.dist->discrete) { err_global_discrete(c, s->loc, s); return false; }
        for (int i = 0; i < r.dist->forms[r.form].n_params; i++) {
            const VlmcSym *it = item_value(r.args[i], false);
            if (it) { err_reads_item(c, r.args[i]->loc, "the distribution of global latent", s, it); return false; }
        }
    }
    s->support_dim = (VlmcDim){-1, 0};
    if (r.dist->value_support == VLMC_SUP_CATEGORY) {
        s->support_dim = r.k;
        s->support = r.k.value;
    } else if (r.dist->value_support == VLMC_SUP_BINARY) {
        s->support_dim = (VlmcDim){-1, 2};
        s->support = 2;
    }
    return ok;
}

/* `input u[C];` (real values) or `input c : category(K);` (integers in
 * 0..K-1, which may index a first dimension of K; the runtime checks the
 * data against K). */
static bool check_input(Ck *c, VlmcSym *s)
{
    bool ok = resolve_shape(c, s);
    s->type = VLMC_T_REAL;
    s->support = 0;
    s->support_dim = (VlmcDim){-1, 0};
    if (s->in_guide) { err_input_in_guide(c, s->loc, s); return false; }
    if (s->dist_call) {
        err_input_dist(c, s->dist_call->loc, s);
        return false;
    }
    VlmcExpr *t = s->input_type;
    if (!t) return ok;
    if (t->kind != VLMC_E_CALL && t->kind != VLMC_E_NAME) {
        err_input_type(c, t->loc, "expected the type of an input after `:`, e.g. `category(K)`");
        return false;
    }
    static const char *const types[] = {"category"};
    if (strcmp(t->name, "category")) {
        const char *sugg = vlmc_suggest(t->name, types, 1);
        char why[400];
        if (sugg)
            snprintf(why, sizeof why, "unknown input type `%s`; did you mean `%s`?", t->name, sugg);
        else
            snprintf(why, sizeof why, "unknown input type `%s` (an input is real-valued, or "
                     "`category(K)`: integers 0..K-1)", t->name);
        err_input_type(c, t->loc, why);
        return false;
    }
    if (t->kind == VLMC_E_NAME || t->n_args != 1 || t->args[0].key) {
        err_input_type(c, t->loc, "`category` takes one argument, the number of values: `category(K)`");
        return false;
    }
    VlmcDim k;
    if (!resolve_dim(c, t->args[0].value, &k)) return false;
    s->type = VLMC_T_INT;
    s->support_dim = k;
    s->support = k.value;
    return ok;
}

/* A guide for an observed variable summed out where missing (M2's
 * classifier q(y | x)): one class per item, and one such variable. */
static bool check_guided_summed(Ck *c, const VlmcStmt *st, const VlmcSym *y)
{
    if (y->shape.rank != 0) {
        vlmc_error(c->d, st->target_loc, "the guide gives `%s` a distribution, but `%s` has several values "
                   "per item: a guide for a partly observed variable needs a scalar (one class per item)",
                   y->name, y->name);
        return false;
    }
    for (int i = 0; i < c->m->n_observed; i++) {
        const VlmcSym *o = c->m->observed[i];
        if (o != y && o->q_dist) {
            vlmc_error(c->d, st->target_loc, "the guide already gives the partly observed `%s` a distribution; "
                       "one partly observed variable may have a guide", o->name);
            return false;
        }
    }
    return true;
}

static bool check_sample(Ck *c, VlmcStmt *st)
{
    Entry *en = scope_get(&c->model, st->target);
    if (!en) {
        err_guide_samples_unknown(c, st->target_loc, st->target,
                                  suggest_in(c, st->target, NULL, &c->model, keep_latent));
        return false;
    }
    VlmcSym *z = en->sym;
    /* an observed variable summed out where missing may have a guide
     * distribution q(y | x): used in the rows where it is missing (M2) */
    if (z->kind == VLMC_SYM_OBSERVED && !z->summed) { err_guide_samples_observed(c, st->target_loc, z); return false; }
    if (z->kind == VLMC_SYM_INPUT) { err_guide_samples_input(c, st->target_loc, z); return false; }
    if (z->kind != VLMC_SYM_LATENT && z->kind != VLMC_SYM_OBSERVED) { err_guide_sample_not_latent(c, st->target_loc, z); return false; }
    if (z->q_dist) { err_guide_samples_twice(c, st->target_loc, z); return false; }
    if (en->bad || !z->dist) return false;
    if (z->dist->chain) { err_chain_guided(c, st->target_loc, z); return false; }
    const VlmcDist *qd = vlmc_dist_lookup(st->call->name);
    if (qd && qd->chain) { err_chain_guide_dist(c, st->call->loc); return false; }
    DistResult r = {0};
    if (!check_dist(c, st->call, z->name, &z->shape, z, &r)) {
        if (r.dist) { z->q_dist = r.dist; z->q_loc = st->target_loc; }
        return false;
    }
    char msg[400], a[80], b[80];
    const VlmcDist *p = z->dist, *q = r.dist;
    if (p->discrete != q->discrete || !support_within(q->value_support, p->value_support)) {
        snprintf(msg, sizeof msg, "the guide samples `%s` from %s (%s values), but the model's %s gives it %s values",
                 z->name, q->name, vlmc_support_name(q->value_support), p->name,
                 vlmc_support_name(p->value_support));
        err_support_mismatch(c, st->call->loc, msg);
        return false;
    }
    /* a Uniform latent: with number bounds, q's values must lie inside */
    double plo, phi, qlo = 0, qhi = 1;
    if (p->value_support == VLMC_SUP_INTERVAL && literal_value(z->dist_args[0], &plo)
        && literal_value(z->dist_args[1], &phi)
        && (q->value_support != VLMC_SUP_INTERVAL
            || (literal_value(r.args[0], &qlo) && literal_value(r.args[1], &qhi)))
        && (qlo < plo || qhi > phi)) {
        snprintf(msg, sizeof msg, "the guide samples `%s` from %s (values in (%g, %g)), but the model's "
                 "%s gives it values in (%g, %g)", z->name, q->name, qlo, qhi, p->name, plo, phi);
        err_support_mismatch(c, st->call->loc, msg);
        return false;
    }
    if (q->value_support == VLMC_SUP_CATEGORY && p->value_support == VLMC_SUP_CATEGORY
        && !dim_eq(r.k, z->support_dim)) {
        snprintf(msg, sizeof msg, "the guide's Categorical has %s categories, but the model's `%s` has %s",
                 fmt_dim(c->m, r.k, a, sizeof a), z->name, fmt_dim(c->m, z->support_dim, b, sizeof b));
        err_support_mismatch(c, st->call->loc, msg);
        return false;
    }
    if (z->kind == VLMC_SYM_OBSERVED && !check_guided_summed(c, st, z)) return false;
    if (z->global) {
        for (int i = 0; i < q->forms[r.form].n_params; i++) {
            const VlmcSym *it = item_value(r.args[i], true);
            if (it) { err_reads_item(c, r.args[i]->loc, "the guide of global latent", z, it); return false; }
        }
        for (int i = 0; i < q->forms[r.form].n_params; i++) make_params_global(r.args[i]);
        if (!q->reparam) {
            char why[300];
            snprintf(why, sizeof why, "the guide of global latent `%s` must be reparameterizable (e.g. Normal); "
                     "%s is not", z->name, q->name);
            err_prior(c, st->call->loc, why);
            return false;
        }
    }
    z->q_dist = q;
    z->q_args = r.args;
    z->q_param_form = r.form;
    z->q_loc = st->target_loc;
    st->sym = z;
    return true;
}

/* Register a declaration in its block's scope; false on redefinition. */
static Entry *declare(Ck *c, VlmcSym *s, int order)
{
    Scope *sc = s->in_guide ? &c->guide : &c->model;
    Entry *prev = scope_get(sc, s->name);
    if (prev || vlmc_fn_lookup(s->name)) {
        err_redefinition(c, s->loc, prev ? prev->sym : NULL, s->name);
        return NULL;
    }
    if (s->in_guide) {
        Entry *m = scope_get(&c->model, s->name);
        if (m) warn_shadow(c, s, m->sym);
    }
    Entry *e = vlmc_arena_alloc(c->a, sizeof *e);
    e->sym = s;
    e->order = order;
    e->var_id = -1;
    if (s->kind == VLMC_SYM_LATENT || s->kind == VLMC_SYM_OBSERVED
        || (s->kind == VLMC_SYM_INPUT && !s->in_guide))
        e->var_id = c->n_vars++;
    scope_put(c, sc, e);
    VlmcModel *m = c->m;
    switch (s->kind) {
    case VLMC_SYM_CONST: s->index = m->n_consts; PUSH(c, m->consts, m->n_consts, c->cap_consts, s); break;
    case VLMC_SYM_PARAM: s->index = m->n_params; PUSH(c, m->params, m->n_params, c->cap_params, s); break;
    case VLMC_SYM_NET: s->index = m->n_nets; PUSH(c, m->nets, m->n_nets, c->cap_nets, s); break;
    case VLMC_SYM_LET: s->index = m->n_lets; PUSH(c, m->lets, m->n_lets, c->cap_lets, s); break;
    case VLMC_SYM_LATENT: s->index = m->n_latents; PUSH(c, m->latents, m->n_latents, c->cap_latents, s); break;
    case VLMC_SYM_OBSERVED: s->index = m->n_observed; PUSH(c, m->observed, m->n_observed, c->cap_observed, s); break;
    case VLMC_SYM_INPUT:
        if (s->in_guide) break;   /* an error, reported by check_input */
        s->index = m->n_inputs;
        PUSH(c, m->inputs, m->n_inputs, c->cap_inputs, s);
        break;
    }
    if (s->kind == VLMC_SYM_OBSERVED || (s->kind == VLMC_SYM_INPUT && !s->in_guide))
        PUSH(c, m->data, m->n_data, c->cap_data, s);
    return e;
}

static void check_block(Ck *c, VlmcStmt *stmts, int n, Entry **entries)
{
    for (int i = 0; i < n && !c->d->too_many; i++) {
        VlmcStmt *st = &stmts[i];
        c->cur_order = i;
        c->cur = entries[i];
        c->dep_stamp++;
        c->n_dep = 0;
        if (st->kind == VLMC_S_SAMPLE) { check_sample(c, st); continue; }
        if (!c->cur) continue;   /* redefinition: reported */
        VlmcSym *s = st->sym;
        bool ok = true;
        if (s->global && s->kind != VLMC_SYM_LATENT) {
            err_global_not_latent(c, s->global_loc, s);
            s->global = false;
            c->cur->bad = true;
        }
        switch (s->kind) {
        case VLMC_SYM_CONST: ok = check_const(c, s); break;
        case VLMC_SYM_PARAM: ok = check_param(c, s); break;
        case VLMC_SYM_NET: ok = check_net(c, s); break;
        case VLMC_SYM_LET:
            ok = check_expr(c, s->expr) && !c->cur->bad;
            s->shape = s->expr->shape;
            s->type = s->expr->type;
            if (ok) {
                finish_deps(c, s);
                c->cur->deps = s->deps;
                c->cur->n_deps = s->n_deps;
            }
            break;
        case VLMC_SYM_LATENT: case VLMC_SYM_OBSERVED:
            ok = check_var(c, s);
            finish_deps(c, s);
            break;
        case VLMC_SYM_INPUT: ok = check_input(c, s); break;
        }
        if (!ok) c->cur->bad = true;
    }
}

static void format_count(char *buf, size_t n, long support, long numel, double log2_total, bool alone)
{
    if (alone && numel > 1) snprintf(buf, n, "%ld^%ld", support, numel);
    else if (log2_total < 62) snprintf(buf, n, "%.0f", exp2(log2_total));
    else snprintf(buf, n, "about 2^%.0f", log2_total);
}

/* Observed variables read by another conditional of the model: a discrete
 * one with finitely many values is summed out in the rows where it is
 * missing (`summed`); one with unbounded values (Poisson) is read as data
 * (a missing value there is an error of the data). */
static void mark_summed(Ck *c)
{
    VlmcModel *m = c->m;
    for (int i = 0; i < m->n_stmts; i++) {
        const VlmcSym *s = m->stmts[i].sym;
        if (!s || (s->kind != VLMC_SYM_LATENT && s->kind != VLMC_SYM_OBSERVED)) continue;
        for (int k = 0; k < s->n_deps; k++) {
            VlmcSym *y = s->deps[k];
            if (y->kind != VLMC_SYM_OBSERVED || !y->dist || !y->dist->discrete || y->summed) continue;
            if (y->support > 0) y->summed = true;   /* unbounded: read as data, never summed */
        }
    }
}

/* How a let reads the chain being checked (memo per let, filled in
 * declaration order so a long chain of lets needs no deep recursion). */
enum { CHAIN_UNSEEN, CHAIN_NO, CHAIN_STEPWISE, CHAIN_MIXED };

/* Whether x reads chain z; the first operation that mixes z's steps (a
 * reduction, softmax, concat, one_hot, a net, `@`) goes to *bad. */
static bool chain_walk(const VlmcExpr *x, const VlmcSym *z, const char *memo,
                       const VlmcExpr *const *let_bad, const VlmcExpr **bad)
{
    if (!x) return false;
    switch (x->kind) {
    case VLMC_E_NUM: return false;
    case VLMC_E_NAME:
        if (x->sym == z) return true;
        if (!x->sym || x->sym->kind != VLMC_SYM_LET) return false;
        if (memo[x->sym->index] == CHAIN_MIXED && !*bad) *bad = let_bad[x->sym->index];
        return memo[x->sym->index] >= CHAIN_STEPWISE;
    case VLMC_E_INDEX: return chain_walk(x->a[1], z, memo, let_bad, bad);
    case VLMC_E_NEG: return chain_walk(x->a[0], z, memo, let_bad, bad);
    case VLMC_E_BIN: {
        bool r = chain_walk(x->a[0], z, memo, let_bad, bad);
        r |= chain_walk(x->a[1], z, memo, let_bad, bad);
        if (r && x->op == '@' && !*bad) *bad = x;
        return r;
    }
    case VLMC_E_CALL: {
        bool r = false;
        for (int i = 0; i < x->n_args; i++) r |= chain_walk(x->args[i].value, z, memo, let_bad, bad);
        bool mixes = (x->sym && x->sym->kind == VLMC_SYM_NET) || x->fn == VLMC_FN_SUM ||
                     x->fn == VLMC_FN_SOFTMAX || x->fn == VLMC_FN_CONCAT || x->fn == VLMC_FN_ONE_HOT;
        if (r && mixes && !*bad) *bad = x;
        return r;
    }
    }
    return false;
}

static bool reads_var(const VlmcSym *s, const VlmcSym *z)
{
    for (int k = 0; k < s->n_deps; k++)
        if (s->deps[k] == z) return true;
    return false;
}

/* A Markov chain z is summed out by the forward algorithm: one chain per
 * model, no other enumerated variable beside it, and only observed
 * variables (its emissions) read it, each step t of them only step t of z. */
static void check_chains(Ck *c)
{
    VlmcModel *m = c->m;
    const VlmcSym *z = NULL;
    for (int i = 0; i < m->n_latents; i++) {
        VlmcSym *s = m->latents[i];
        if (!s->dist || !s->dist->chain) continue;
        if (z) err_chain_twice(c, s->dist_loc, s, z);
        else z = s;
    }
    if (!z) return;
    for (int i = 0; i < m->n_latents; i++) {
        const VlmcSym *y = m->latents[i];
        if (y->dist && y != z && y->dist->discrete && !y->q_dist && !y->dist->chain)
            err_chain_with_enum(c, y->loc, y, z);
    }
    for (int i = 0; i < m->n_observed; i++)
        if (m->observed[i]->summed) err_chain_with_enum(c, m->observed[i]->loc, m->observed[i], z);
    char *memo = vlmc_arena_alloc(c->a, (size_t)m->n_lets + 1);
    const VlmcExpr **let_bad = vlmc_arena_alloc(c->a, ((size_t)m->n_lets + 1) * sizeof *let_bad);
    for (int i = 0; i < m->n_lets; i++) {
        const VlmcExpr *bad = NULL;
        bool r = m->lets[i]->expr && chain_walk(m->lets[i]->expr, z, memo, let_bad, &bad);
        memo[i] = !r ? CHAIN_NO : bad ? CHAIN_MIXED : CHAIN_STEPWISE;
        let_bad[i] = bad;
    }
    for (int i = 0; i < m->n_stmts; i++) {
        const VlmcSym *s = m->stmts[i].sym;
        if (!s || s == z || !s->dist || (s->kind != VLMC_SYM_LATENT && s->kind != VLMC_SYM_OBSERVED)) continue;
        if (!reads_var(s, z)) continue;
        if (s->kind == VLMC_SYM_LATENT) { err_chain_reader_latent(c, s->loc, s, z); continue; }
        const VlmcExpr *bad = NULL;
        for (int p = 0; p < s->dist->forms[s->param_form].n_params && !bad; p++)
            chain_walk(s->dist_args[p], z, memo, let_bad, &bad);
        /* the shape rules then make its first dimension the steps [T] */
        if (bad) err_chain_mixes_steps(c, bad->loc, s, z);
    }
}

static void choose_treatments(Ck *c)
{
    VlmcModel *m = c->m;
    m->treat = vlmc_arena_alloc(c->a, (size_t)(m->n_latents + 1) * sizeof *m->treat);
    double log2_total = 0;
    int n_enum = 0;
    for (int i = 0; i < m->n_observed; i++) {
        const VlmcSym *y = m->observed[i];
        if (!y->summed) continue;
        long numel = 1;
        for (int k = 0; k < y->shape.rank; k++) numel *= y->shape.dim[k].value > 0 ? y->shape.dim[k].value : 1;
        double l2 = (double)numel * log2((double)y->support);
        log2_total += l2;
        n_enum++;
        if (log2_total > log2((double)VLMC_MAX_ENUM) + 1e-9) {
            char count[64];
            format_count(count, sizeof count, y->support, numel, n_enum == 1 ? l2 : log2_total, n_enum == 1);
            err_too_many_summed(c, y->loc, y, count);
            log2_total -= l2;
            n_enum--;
        }
    }
    for (int i = 0; i < m->n_latents; i++) {
        VlmcSym *z = m->latents[i];
        if (!z->dist) continue;
        if (z->dist->chain) {
            m->treat[i] = VLMC_TREAT_MARKOV;
            continue;
        }
        if (z->q_dist) {
            m->treat[i] = z->dist->discrete || !z->q_dist->reparam ? VLMC_TREAT_SCORE : VLMC_TREAT_REPARAM;
        } else if (z->dist->discrete) {
            m->treat[i] = VLMC_TREAT_ENUMERATE;
            if (z->support == 0) { err_infinite_unguided(c, z->loc, z); continue; }
            long numel = 1;
            for (int k = 0; k < z->shape.rank; k++) numel *= z->shape.dim[k].value > 0 ? z->shape.dim[k].value : 1;
            double l2 = (double)numel * log2((double)z->support);
            log2_total += l2;
            n_enum++;
            if (log2_total > log2((double)VLMC_MAX_ENUM) + 1e-9) {
                char count[64];
                bool alone = n_enum == 1;
                format_count(count, sizeof count, z->support, numel, alone ? l2 : log2_total, alone);
                err_too_many_enum(c, z->loc, z, count, alone);
                log2_total -= l2;
                n_enum--;
            }
        } else {
            m->treat[i] = VLMC_TREAT_AUTO_GUIDE;
        }
    }
}

bool vlmc_check_model(VlmcArena *a, VlmcModel *m, VlmcDiag *d)
{
    Ck ck = {.a = a, .d = d, .m = m};
    Ck *c = &ck;
    int errors0 = d->n_errors;
    Entry **ents = vlmc_arena_alloc(a, (size_t)(m->n_stmts + 1) * sizeof *ents);
    for (int i = 0; i < m->n_stmts; i++) ents[i] = declare(c, m->stmts[i].sym, i);
    c->dep_mark = vlmc_arena_alloc(a, (size_t)(c->n_vars + 1) * sizeof *c->dep_mark);
    check_block(c, m->stmts, m->n_stmts, ents);
    if (m->n_observed == 0 && !d->too_many) err_no_observed(c);
    if (d->n_errors == errors0) mark_summed(c);   /* before the guide: it may give them a q */
    if (m->n_guides > 1) err_guide_twice(c, m->guide2_loc, m->guide_loc);
    if (m->n_gstmts && !d->too_many) {
        c->in_guide = true;
        Entry **gents = vlmc_arena_alloc(a, (size_t)(m->n_gstmts + 1) * sizeof *gents);
        for (int i = 0; i < m->n_gstmts; i++)
            gents[i] = m->gstmts[i].kind == VLMC_S_SAMPLE ? NULL : declare(c, m->gstmts[i].sym, i);
        check_block(c, m->gstmts, m->n_gstmts, gents);
        c->in_guide = false;
    }
    if (d->n_errors == errors0) check_chains(c);
    if (d->n_errors == errors0) choose_treatments(c);
    return d->n_errors == errors0;
}
