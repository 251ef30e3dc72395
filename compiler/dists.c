/* dists.c — the one table of distributions, shared by the checker and the
 * code generator, and the names of functions, activations and treatments.
 * Densities themselves live in the runtime (vlm_dist_<stem>_logp). */
#include "vlmc.h"

#include <string.h>

#define R VLMC_SUP_REAL
#define P VLMC_SUP_POSITIVE
#define U VLMC_SUP_UNIT
#define UC VLMC_SUP_UNIT_CLOSED

/* Positional arguments follow forms[0]'s order; a keyword picks the form. */
const VlmcDist vlmc_dists[] = {
    {"Normal", 1, {{2, {"loc", "scale"}, {R, P}, "normal"}},
     VLMC_SUP_REAL, false, true, false, false},
    {"Bernoulli", 2, {{1, {"probs"}, {UC}, "bernoulli_probs"},
                      {1, {"logits"}, {R}, "bernoulli_logits"}},
     VLMC_SUP_BINARY, true, false, false, false},
    {"Categorical", 2, {{1, {"probs"}, {VLMC_SUP_SIMPLEX}, "categorical_probs"},
                        {1, {"logits"}, {VLMC_SUP_LOGITS}, "categorical_logits"}},
     VLMC_SUP_CATEGORY, true, false, true, false},
    {"Laplace", 1, {{2, {"loc", "scale"}, {R, P}, "laplace"}},
     VLMC_SUP_REAL, false, true, false, false},
    {"LogNormal", 1, {{2, {"loc", "scale"}, {R, P}, "lognormal"}},
     VLMC_SUP_POSITIVE, false, true, false, false},
    {"Exponential", 1, {{1, {"rate"}, {P}, "exponential"}},
     VLMC_SUP_NONNEG, false, true, false, false},
    {"Gamma", 1, {{2, {"concentration", "rate"}, {P, P}, "gamma"}},
     VLMC_SUP_POSITIVE, false, false, false, false},
    {"Beta", 1, {{2, {"alpha", "beta"}, {P, P}, "beta"}},
     VLMC_SUP_UNIT, false, false, false, false},
    {"Uniform", 1, {{2, {"low", "high"}, {R, R}, "uniform"}},
     VLMC_SUP_INTERVAL, false, true, false, false},
    {"Poisson", 1, {{1, {"rate"}, {P}, "poisson"}},
     VLMC_SUP_COUNT, true, false, false, false},
    {"ContinuousBernoulli", 2, {{1, {"probs"}, {U}, "continuous_bernoulli_probs"},
                                {1, {"logits"}, {R}, "continuous_bernoulli_logits"}},
     VLMC_SUP_UNIT_CLOSED, false, false, false, false},
    /* a chain z[T] over K states: p(z) = init[z_0] prod_t trans[z_t-1, z_t] */
    {"Markov", 2, {{2, {"init", "trans"}, {VLMC_SUP_SIMPLEX, VLMC_SUP_SIMPLEX}, "markov_probs"},
                   {2, {"init_logits", "trans_logits"}, {VLMC_SUP_LOGITS, VLMC_SUP_LOGITS},
                    "markov_logits"}},
     VLMC_SUP_CATEGORY, true, false, false, true},
};
const int vlmc_n_dists = (int)(sizeof vlmc_dists / sizeof vlmc_dists[0]);

const VlmcDist *vlmc_dist_lookup(const char *name)
{
    for (int i = 0; i < vlmc_n_dists; i++)
        if (!strcmp(vlmc_dists[i].name, name)) return &vlmc_dists[i];
    return NULL;
}

static const char *const fn_names[VLMC_FN_COUNT] = {
    [VLMC_FN_NONE] = "?", [VLMC_FN_EXP] = "exp", [VLMC_FN_LOG] = "log",
    [VLMC_FN_LOG1P] = "log1p", [VLMC_FN_SQRT] = "sqrt",
    [VLMC_FN_SIGMOID] = "sigmoid", [VLMC_FN_SOFTPLUS] = "softplus",
    [VLMC_FN_TANH] = "tanh", [VLMC_FN_RELU] = "relu", [VLMC_FN_ABS] = "abs",
    [VLMC_FN_ELU] = "elu", [VLMC_FN_SUM] = "sum",
    [VLMC_FN_ONE_HOT] = "one_hot", [VLMC_FN_SOFTMAX] = "softmax",
    [VLMC_FN_CONCAT] = "concat", [VLMC_FN_SQUARE] = "square", [VLMC_FN_POW] = "pow",
};

const char *vlmc_fn_name(VlmcFn fn)
{
    return fn > VLMC_FN_NONE && fn < VLMC_FN_COUNT ? fn_names[fn] : "?";
}

VlmcFn vlmc_fn_lookup(const char *name)
{
    for (int f = VLMC_FN_NONE + 1; f < VLMC_FN_COUNT; f++)
        if (!strcmp(fn_names[f], name)) return (VlmcFn)f;
    return VLMC_FN_NONE;
}

const char *vlmc_act_name(VlmcAct act)
{
    static const char *const names[] = {"identity", "relu", "tanh", "sigmoid",
                                        "softplus", "elu"};
    return (unsigned)act < 6 ? names[act] : "?";
}

const char *vlmc_treat_name(VlmcTreatment t)
{
    static const char *const names[] = {"enumerate", "reparam", "score",
                                        "auto_guide", "markov"};
    return (unsigned)t < 5 ? names[t] : "?";
}

const char *vlmc_support_name(VlmcSupport s)
{
    static const char *const names[] = {
        "real", "positive", "nonnegative", "unit interval (0, 1)",
        "[0, 1]", "binary {0, 1}", "category {0..K-1}", "count {0, 1, 2, ...}",
        "interval (low, high)", "logits", "simplex"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

const char *vlmc_sym_kind_name(VlmcSymKind k)
{
    static const char *const names[] = {"const", "param", "net", "let",
                                        "latent", "observed", "input"};
    return (unsigned)k < 7 ? names[k] : "?";
}

const char *vlmc_sym_kind_noun(VlmcSymKind k)
{
    /* with the article that fits: never "a observed" */
    static const char *const nouns[] = {"a const", "a param", "a net", "a let",
                                        "a latent variable", "an observed variable",
                                        "an input variable"};
    return (unsigned)k < sizeof nouns / sizeof nouns[0] ? nouns[k] : "a name";
}
