/* test_frontend.c — CUnit suite "frontend": the parser, checker, shapes,
 * treatments, diagnostics format and suggestions, on in-memory sources
 * (diagnostics go to a memory stream). Golden files cover the messages. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "vlmc.h"

typedef struct Run {
    VlmcArena *a;
    VlmcSource src;
    VlmcDiag d;
    VlmcModel *m;
    char *diag_text;
    size_t diag_len;
    bool ok;
} Run;

/* Parse and check `text`; diagnostics are captured in r->diag_text. */
static void run(Run *r, const char *text)
{
    memset(r, 0, sizeof *r);
    r->a = vlmc_arena_new();
    r->src.path = "t.vlm";
    r->src.len = strlen(text);
    r->src.text = vlmc_arena_strndup(r->a, text, r->src.len);
    r->d.src = &r->src;
    r->d.out = open_memstream(&r->diag_text, &r->diag_len);
    r->m = vlmc_parse(r->a, &r->src, &r->d);
    r->ok = r->m && r->d.n_errors == 0 && vlmc_check_model(r->a, r->m, &r->d);
    fflush(r->d.out);
}

static void done(Run *r)
{
    fclose(r->d.out);
    free(r->diag_text);
    vlmc_arena_free(r->a);
}

static bool has(const Run *r, const char *s)
{
    return r->diag_text && strstr(r->diag_text, s) != NULL;
}

static VlmcSym *find(const VlmcModel *m, VlmcSym **arr, int n, const char *name)
{
    (void)m;
    for (int i = 0; i < n; i++)
        if (!strcmp(arr[i]->name, name)) return arr[i];
    return NULL;
}

static void test_mog(void)
{
    Run r;
    run(&r, "const K = 10; const D = 784;\n"
            "param logits[K]; param mu[K, D]; param log_sigma[K, D];\n"
            "latent z ~ Categorical(logits = logits);\n"
            "observed x[D] ~ Normal(mu[z], exp(log_sigma[z]));\n");
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.m->n_consts, 2);
    CU_ASSERT_EQUAL(r.m->n_params, 3);
    CU_ASSERT_EQUAL(r.m->n_latents, 1);
    VlmcSym *z = r.m->latents[0];
    CU_ASSERT_STRING_EQUAL(z->dist->name, "Categorical");
    CU_ASSERT_EQUAL(z->param_form, 1);
    CU_ASSERT_STRING_EQUAL(z->dist->forms[z->param_form].runtime, "categorical_logits");
    CU_ASSERT_EQUAL(z->support, 10);
    CU_ASSERT_EQUAL(z->support_dim.cst, 0);
    CU_ASSERT_EQUAL(z->type, VLMC_T_INT);
    CU_ASSERT_EQUAL(r.m->treat[0], VLMC_TREAT_ENUMERATE);
    VlmcSym *x = r.m->observed[0];
    CU_ASSERT_EQUAL(x->n_deps, 1);
    CU_ASSERT_PTR_EQUAL(x->deps[0], z);
    VlmcExpr *loc = x->dist_args[0];
    CU_ASSERT_EQUAL(loc->kind, VLMC_E_INDEX);
    CU_ASSERT_EQUAL(loc->shape.rank, 1);
    CU_ASSERT_EQUAL(loc->shape.dim[0].cst, 1);
    CU_ASSERT_TRUE(loc->batched);
    done(&r);
}

static void test_vae_treatments(void)
{
    Run r;
    run(&r, "const D = 4; const Z = 2;\n"
            "latent z[Z] ~ Normal(0, 1);\n"
            "net dec = mlp(Z, 8, D, act = tanh);\n"
            "observed x[D] ~ Bernoulli(logits = dec(z));\n"
            "guide { net enc = mlp(D, 8, out = relu); net m = linear(8, Z);\n"
            "  let h = enc(x); z ~ Normal(m(h), exp(0.5 * m(h))); }\n");
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.m->guide, VLMC_GUIDE_AMORTIZED);
    CU_ASSERT_EQUAL(r.m->treat[0], VLMC_TREAT_REPARAM);
    VlmcSym *z = r.m->latents[0];
    CU_ASSERT_PTR_NOT_NULL(z->q_dist);
    CU_ASSERT_PTR_NOT_NULL(z->q_args[0]);
    CU_ASSERT_EQUAL(z->q_args[0]->shape.rank, 1);
    VlmcSym *dec = find(r.m, r.m->nets, r.m->n_nets, "dec");
    CU_ASSERT_TRUE(dec->net.is_mlp);
    CU_ASSERT_EQUAL(dec->net.n_sizes, 3);
    CU_ASSERT_EQUAL(dec->net.act, VLMC_ACT_TANH);
    VlmcSym *enc = find(r.m, r.m->nets, r.m->n_nets, "enc");
    CU_ASSERT_TRUE(enc->in_guide);
    CU_ASSERT_EQUAL(enc->net.out_act, VLMC_ACT_RELU);
    CU_ASSERT_EQUAL(r.m->n_gstmts, 4);
    CU_ASSERT_EQUAL(r.m->gstmts[3].kind, VLMC_S_SAMPLE);
    CU_ASSERT_PTR_EQUAL(r.m->gstmts[3].sym, z);
    /* observed Bernoulli data may be relaxed to [0, 1]: real-typed */
    CU_ASSERT_EQUAL(r.m->observed[0]->type, VLMC_T_REAL);
    done(&r);
}

static void test_guide_local(void)
{
    Run r;
    run(&r, "const Z = 3;\nlatent z[Z] ~ Normal(0, 1);\nobserved x[Z] ~ Normal(z, 1);\n"
            "guide local { param m[Z]; param s[Z] = -2; z ~ Normal(m, exp(s)); }\n");
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.m->guide, VLMC_GUIDE_LOCAL);
    VlmcSym *m = find(r.m, r.m->params, r.m->n_params, "m");
    CU_ASSERT_TRUE(m->local);
    CU_ASSERT_TRUE(m->in_guide);
    CU_ASSERT_EQUAL(m->init, VLMC_INIT_DEFAULT);
    VlmcSym *s = find(r.m, r.m->params, r.m->n_params, "s");
    CU_ASSERT_EQUAL(s->init, VLMC_INIT_CONST);
    CU_ASSERT_DOUBLE_EQUAL(s->init_a, -2.0, 1e-12);
    CU_ASSERT_TRUE(r.m->latents[0]->q_args[0]->batched);
    done(&r);
}

static void test_auto_guide_and_score(void)
{
    Run r;
    run(&r, "latent z[2] ~ Normal(0, 1);\nparam A[2, 2];\n"
            "latent b[30] ~ Bernoulli(probs = 0.5);\nparam W[2, 30];\n"
            "observed x[2] ~ Normal(A @ z + W @ b, 1);\n"
            "guide { param l[30]; b ~ Bernoulli(logits = l); }\n");
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.m->treat[0], VLMC_TREAT_AUTO_GUIDE);
    CU_ASSERT_EQUAL(r.m->treat[1], VLMC_TREAT_SCORE);
    done(&r);
}

static void test_shapes(void)
{
    Run r;
    run(&r, "const M = 3; const N = 4; const P = 2;\n"
            "param W[M, N]; param V[N, P]; param u[M];\n"
            "let a = W @ V; let b = u @ W; let c = 2 * u - u / 3;\n"
            "observed x[M, P] ~ Normal(a, 1);\nobserved y[N] ~ Normal(b, 1);\n"
            "observed s ~ Normal(sum(c), 1);\n");
    CU_ASSERT_TRUE(r.ok);
    VlmcSym *a = find(r.m, r.m->lets, r.m->n_lets, "a");
    CU_ASSERT_EQUAL(a->shape.rank, 2);
    CU_ASSERT_EQUAL(a->shape.dim[0].cst, 0);
    CU_ASSERT_EQUAL(a->shape.dim[1].cst, 2);
    CU_ASSERT_FALSE(a->expr->batched);
    VlmcSym *b = find(r.m, r.m->lets, r.m->n_lets, "b");
    CU_ASSERT_EQUAL(b->shape.rank, 1);
    CU_ASSERT_EQUAL(b->shape.dim[0].cst, 1);
    done(&r);
}

static void test_const_exprs(void)
{
    Run r;
    run(&r, "const A = 4; const B = (A + 1) * 3 - 2;\nobserved x[B] ~ Normal(0, 1);\n");
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.m->consts[1]->value, 13);
    CU_ASSERT_EQUAL(r.m->observed[0]->shape.dim[0].value, 13);
    done(&r);
    run(&r, "const A = 2147483647 + 1;\nobserved x[A] ~ Normal(0, 1);\n");
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_TRUE(has(&r, "too large"));
    done(&r);
}

static void test_symbolic_dims(void)
{
    Run r;
    run(&r, "const D = 784;\nparam mu[784];\nobserved x[D] ~ Normal(mu, 1);\n");
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_TRUE(has(&r, "compared by name"));
    CU_ASSERT_TRUE(has(&r, "--set"));
    done(&r);
}

static void test_diag_format(void)
{
    Run r;
    run(&r, "const D = 2;\nconst H = 400 const Z = 20;\nobserved x[D] ~ Normal(0, 1);\n");
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_STRING_EQUAL(r.diag_text,
        "t.vlm:2:14: error: expected `;` after declaration\n"
        "    2 | const H = 400 const Z = 20;\n"
        "      |              ^\n");
    done(&r);
    run(&r, "observed x ~ Normal(mux, 1);\n");
    CU_ASSERT_TRUE(has(&r, "t.vlm:1:21: error: undefined name `mux`\n"));
    CU_ASSERT_TRUE(has(&r, "      |                     ^~~\n"));
    done(&r);
}

static void test_error_recovery_and_cap(void)
{
    Run r;
    run(&r, "latent z ~ Normal(0 1);\nobserved x ~ Normal(z 1);\nobserved y ~ Normal(0, 1);\n");
    CU_ASSERT_EQUAL(r.d.n_errors, 2);
    done(&r);
    char buf[4096] = "";
    for (int i = 0; i < 40; i++) strcat(buf, "observed x ~ $;\n");
    run(&r, buf);
    CU_ASSERT_EQUAL(r.d.n_errors, VLMC_MAX_ERRORS);
    CU_ASSERT_TRUE(r.d.too_many);
    CU_ASSERT_TRUE(has(&r, "too many errors"));
    done(&r);
}

static void test_lexer_errors(void)
{
    Run r;
    static const char nul[] = "observed x ~ Normal(0, 1);\0\n";
    memset(&r, 0, sizeof r);
    r.a = vlmc_arena_new();
    r.src.path = "t.vlm";
    r.src.len = sizeof nul - 1;
    r.src.text = nul;
    r.d.src = &r.src;
    r.d.out = open_memstream(&r.diag_text, &r.diag_len);
    r.m = vlmc_parse(r.a, &r.src, &r.d);
    fflush(r.d.out);
    CU_ASSERT_EQUAL(r.d.n_errors, 1);
    CU_ASSERT_TRUE(has(&r, "stray NUL byte"));
    done(&r);
    run(&r, "observed x ~ Normal(0, 1); /* open");
    CU_ASSERT_TRUE(has(&r, "unterminated comment"));
    done(&r);
}

static void test_suggest(void)
{
    const char *c[] = {"decoder", "encoder", "mu"};
    CU_ASSERT_STRING_EQUAL(vlmc_suggest("decodr", c, 3), "decoder");
    CU_ASSERT_STRING_EQUAL(vlmc_suggest("mux", c, 3), "mu");
    CU_ASSERT_PTR_NULL(vlmc_suggest("zzzzzz", c, 3));
    CU_ASSERT_PTR_NULL(vlmc_suggest("mu", c, 3));
}

static void test_dist_table(void)
{
    const VlmcDist *n = vlmc_dist_lookup("Normal");
    CU_ASSERT_PTR_NOT_NULL(n);
    CU_ASSERT_TRUE(n->reparam);
    CU_ASSERT_FALSE(n->discrete);
    const VlmcDist *b = vlmc_dist_lookup("Bernoulli");
    CU_ASSERT_EQUAL(b->n_forms, 2);
    CU_ASSERT_STRING_EQUAL(b->forms[1].names[0], "logits");
    CU_ASSERT_TRUE(vlmc_dist_lookup("Categorical")->event_last_dim);
    CU_ASSERT_TRUE(vlmc_dist_lookup("Poisson")->discrete);
    CU_ASSERT_PTR_NULL(vlmc_dist_lookup("normal"));
    CU_ASSERT_EQUAL(vlmc_fn_lookup("softplus"), VLMC_FN_SOFTPLUS);
    CU_ASSERT_STRING_EQUAL(vlmc_fn_name(VLMC_FN_LOG1P), "log1p");
    CU_ASSERT_EQUAL(vlmc_fn_lookup("one_hot"), VLMC_FN_ONE_HOT);
    CU_ASSERT_EQUAL(vlmc_fn_lookup("concat"), VLMC_FN_CONCAT);
    CU_ASSERT_STRING_EQUAL(vlmc_fn_name(VLMC_FN_POW), "pow");
    CU_ASSERT_STRING_EQUAL(vlmc_treat_name(VLMC_TREAT_AUTO_GUIDE), "auto_guide");
}

static void test_print_expr(void)
{
    Run r;
    run(&r, "param A[2, 2]; param b[2];\nlatent z[2] ~ Normal(0, 1);\n"
            "observed x[2] ~ Normal(-(A @ z) * (b + 1) - -b, exp(0.5 * b));\n");
    CU_ASSERT_TRUE(r.ok);
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    vlmc_print_expr(r.m->observed[0]->dist_args[0], f);
    fputc('|', f);
    vlmc_print_expr(r.m->observed[0]->dist_args[1], f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(s, "-(A @ z) * (b + 1) - -b|exp(0.5 * b)");
    free(s);
    done(&r);
}

static void test_enum_limit(void)
{
    Run r;
    run(&r, "latent z[12] ~ Bernoulli(probs = 0.5);\nparam W[3, 12];\nobserved x[3] ~ Normal(W @ z, 1);\n");
    CU_ASSERT_TRUE(r.ok);   /* 2^12 = 4096 = VLMC_MAX_ENUM */
    CU_ASSERT_EQUAL(r.m->treat[0], VLMC_TREAT_ENUMERATE);
    done(&r);
    run(&r, "latent z[13] ~ Bernoulli(probs = 0.5);\nparam W[3, 13];\nobserved x[3] ~ Normal(W @ z, 1);\n");
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_TRUE(has(&r, "2^13 joint values"));
    done(&r);
}

/* The number of joint values of the enumerated latents (VlmcProgram.E, the
 * rows per item of every batched buffer), as the plan prints it: the
 * product over enumerated latents of support^elements, at the consts'
 * defaults. The batch of 128 in the memory line has 128 E rows. */
static double plan_enum(const char *text, double *rows)
{
    Run r;
    run(&r, text);
    CU_ASSERT_TRUE_FATAL(r.ok);
    VlmcProgram prog;
    memset(&prog, 0, sizeof prog);
    CU_ASSERT_TRUE_FATAL(vlmc_lower(r.a, r.m, &prog, &r.d));
    vlmc_autodiff(&prog);
    vlmc_plan_buffers(&prog);
    char *txt = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&txt, &len);
    vlmc_print_plan(&prog, f);
    fclose(f);
    double E = 1;   /* no line: nothing enumerated */
    const char *e = strstr(txt, "enumeration: ");
    if (e && sscanf(e, "enumeration: %lf joint values", &E) != 1)
        E = -1;
    const char *b = strstr(txt, "memory: batch 128 (");
    *rows = b ? strtod(b + strlen("memory: batch 128 ("), NULL) : -1;
    free(txt);
    done(&r);
    return E;
}

static void test_enum_count(void)
{
    static const struct { const char *src; double E; } cases[] = {
        {"param l[3]; param mu[3];\nlatent c ~ Categorical(logits = l);\n"
         "observed x ~ Normal(mu[c], 1);\n", 3},
        {"const K = 5; param l[K]; param mu[K];\nlatent c ~ Categorical(logits = l);\n"
         "observed x ~ Normal(mu[c], 1);\n", 5},
        {"latent z[3] ~ Bernoulli(probs = 0.5);\nparam W[2, 3];\n"
         "observed x[2] ~ Normal(W @ z, 1);\n", 8},
        {"const K = 3; param a[2]; param l[K]; param mu[K];\n"
         "latent b[2] ~ Bernoulli(logits = a);\nlatent c ~ Categorical(logits = l);\n"
         "observed x ~ Normal(mu[c] + sum(b), 1);\n", 12},
        {"const K = 5; const J = 2; param l[K]; param mu[K];\n"
         "latent c ~ Categorical(logits = l);\nlatent b[J, 2] ~ Bernoulli(probs = 0.5);\n"
         "observed x ~ Normal(mu[c] + sum(b), 1);\n", 80},
        {"const K = 4; param l[K]; param mu[K];\nlatent c ~ Categorical(logits = l);\n"
         "latent d ~ Categorical(logits = l);\nobserved x ~ Normal(mu[c] + mu[d], 1);\n", 16},
        /* a size that is a sum: 2^(K + 1) */
        {"const K = 3;\nlatent b[K + 1] ~ Bernoulli(probs = 0.5);\n"
         "observed x ~ Normal(sum(b), 1);\n", 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double rows, E = plan_enum(cases[i].src, &rows);
        if (E != cases[i].E || rows != 128 * cases[i].E)
            printf("\n  enumeration case %zu: plan says %g joint values, %g rows; "
                   "expected %g, %g\n", i, E, rows, cases[i].E, 128 * cases[i].E);
        CU_ASSERT_EQUAL(E, cases[i].E);
        CU_ASSERT_EQUAL(rows, 128 * cases[i].E);
    }
}

/* The shapes of the builtins: one_hot appends K (2 for a Bernoulli), concat
 * sums the last dimension (a scalar is [1]), softmax/square/pow keep it. */
static void test_builtin_shapes(void)
{
    Run r;
    run(&r, "const K = 3; const Z = 2;\nparam L[K]; param M[4, Z];\n"
            "latent y ~ Categorical(logits = L);\nlatent ys[4] ~ Categorical(logits = L);\n"
            "latent b ~ Bernoulli(probs = 0.5);\nlatent z[Z] ~ Normal(0, 1);\nlatent s ~ Normal(0, 1);\n"
            "let a = one_hot(y); let c = one_hot(ys); let d = one_hot(b);\n"
            "let e = concat(z, a, s); let f = concat(M, c); let g = softmax(M);\n"
            "let h = pow(z, -0.5) + square(z);\n"
            "observed x ~ Normal(sum(e) + sum(f) + sum(g) + sum(h) + sum(d), 1);\n");
    CU_ASSERT_TRUE(r.ok);
    VlmcSym *a = find(r.m, r.m->lets, r.m->n_lets, "a");
    CU_ASSERT_EQUAL(a->shape.rank, 1);
    CU_ASSERT_EQUAL(a->shape.dim[0].cst, 0);           /* K */
    CU_ASSERT_EQUAL(a->type, VLMC_T_REAL);
    CU_ASSERT_TRUE(a->expr->batched);
    VlmcSym *c = find(r.m, r.m->lets, r.m->n_lets, "c");
    CU_ASSERT_EQUAL(c->shape.rank, 2);
    CU_ASSERT_EQUAL(c->shape.dim[0].value, 4);
    CU_ASSERT_EQUAL(c->shape.dim[1].cst, 0);
    VlmcSym *d = find(r.m, r.m->lets, r.m->n_lets, "d");
    CU_ASSERT_TRUE(d->shape.rank == 1 && d->shape.dim[0].cst == -1 && d->shape.dim[0].value == 2);
    VlmcSym *e = find(r.m, r.m->lets, r.m->n_lets, "e");
    CU_ASSERT_EQUAL(e->shape.rank, 1);
    CU_ASSERT_EQUAL(e->shape.dim[0].value, 6);          /* Z + K + 1 */
    char buf[64];
    vlmc_dim_text(r.m, e->shape.dim[0], false, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "K + Z + 1");
    vlmc_dim_text(r.m, e->shape.dim[0], true, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "(c_K+c_Z+1L)");
    VlmcSym *f = find(r.m, r.m->lets, r.m->n_lets, "f");
    CU_ASSERT_EQUAL(f->shape.rank, 2);
    CU_ASSERT_EQUAL(f->shape.dim[0].value, 4);
    CU_ASSERT_EQUAL(f->shape.dim[1].value, 5);          /* Z + K */
    VlmcSym *g = find(r.m, r.m->lets, r.m->n_lets, "g");
    CU_ASSERT_FALSE(g->expr->batched);
    CU_ASSERT_EQUAL(g->shape.rank, 2);
    VlmcSym *h = find(r.m, r.m->lets, r.m->n_lets, "h");
    CU_ASSERT_EQUAL(h->shape.dim[0].cst, 1);            /* Z */
    CU_ASSERT_EQUAL(h->expr->a[0]->power, -0.5);
    done(&r);
}

/* Sums of sizes are canonical and interned: Z + K is K + Z, literals fold,
 * a lone const stays a const, and a sum is not a const defined as it. */
static void test_size_sums(void)
{
    Run r;
    run(&r, "const K = 3; const Z = 2; const ZK = Z + K;\nparam L[K];\n"
            "param a[Z + K]; param b[K + Z]; param c[K + 1 + 1]; param d[2 + 3]; param e[K + K];\n"
            "latent y ~ Categorical(logits = L);\nlatent z[Z] ~ Normal(0, 1);\nnet f = mlp(Z + K, 4, 1);\n"
            "observed x[1] ~ Normal(f(concat(z, one_hot(y))) + sum(a + b) + sum(c) + sum(d) + sum(e), 1);\n");
    CU_ASSERT_TRUE(r.ok);
    VlmcSym *a = find(r.m, r.m->params, r.m->n_params, "a"), *b = find(r.m, r.m->params, r.m->n_params, "b");
    CU_ASSERT_TRUE(a->shape.dim[0].cst <= -2 && a->shape.dim[0].cst == b->shape.dim[0].cst);
    VlmcSym *c = find(r.m, r.m->params, r.m->n_params, "c"), *d = find(r.m, r.m->params, r.m->n_params, "d");
    char buf[64];
    vlmc_dim_text(r.m, c->shape.dim[0], false, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "K + 2");
    CU_ASSERT_TRUE(d->shape.dim[0].cst == -1 && d->shape.dim[0].value == 5);
    VlmcSym *e = find(r.m, r.m->params, r.m->n_params, "e");
    vlmc_dim_text(r.m, e->shape.dim[0], false, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "K + K");
    CU_ASSERT_EQUAL(e->shape.dim[0].value, 6);
    CU_ASSERT_EQUAL(r.m->n_dim_sums, 4);   /* K + Z, K + 1 (on the way), K + 2, K + K */
    /* truncation follows snprintf: the needed length is returned */
    CU_ASSERT_EQUAL(vlmc_dim_text(r.m, a->shape.dim[0], false, buf, 3), 5);
    CU_ASSERT_STRING_EQUAL(buf, "K ");
    done(&r);
    run(&r, "const K = 3; const Z = 2; const ZK = Z + K;\nparam a[ZK];\nparam b[Z + K];\n"
            "observed x[ZK] ~ Normal(a + b, 1);\n");
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_TRUE(has(&r, "left is [ZK], right is [K + Z]"));
    CU_ASSERT_TRUE(has(&r, "compared by name"));
    done(&r);
}

void vlm_test_frontend(void)
{
    CU_pSuite s = CU_add_suite("frontend", NULL, NULL);
    CU_add_test(s, "mixture of Gaussians", test_mog);
    CU_add_test(s, "VAE treatments", test_vae_treatments);
    CU_add_test(s, "guide local", test_guide_local);
    CU_add_test(s, "auto guide and score", test_auto_guide_and_score);
    CU_add_test(s, "shapes", test_shapes);
    CU_add_test(s, "const expressions", test_const_exprs);
    CU_add_test(s, "symbolic dims", test_symbolic_dims);
    CU_add_test(s, "diagnostic format", test_diag_format);
    CU_add_test(s, "error recovery and cap", test_error_recovery_and_cap);
    CU_add_test(s, "lexer errors", test_lexer_errors);
    CU_add_test(s, "suggestions", test_suggest);
    CU_add_test(s, "distribution table", test_dist_table);
    CU_add_test(s, "expression printing", test_print_expr);
    CU_add_test(s, "enumeration limit", test_enum_limit);
    CU_add_test(s, "enumeration count (joint values, rows)", test_enum_count);
    CU_add_test(s, "builtin shapes", test_builtin_shapes);
    CU_add_test(s, "sums of sizes", test_size_sums);
}
