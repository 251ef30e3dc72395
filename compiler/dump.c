/* dump.c — the checked model as stable text (`vlmc --dump`), golden-tested:
 * consts with values, params and nets with shapes, variables with their
 * conditionals, dependencies and treatments, then the guide. Expressions
 * print as minimally parenthesised source text. */
#include "vlmc.h"

#include <stdlib.h>

static int prec(const VlmcExpr *e)
{
    if (e->kind == VLMC_E_BIN)
        return e->op == '+' || e->op == '-' ? 1 : e->op == '@' ? 3 : 2;
    if (e->kind == VLMC_E_NEG) return 4;
    return 5;
}

static void print_num(double v, FILE *out)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    fputs(buf, out);
}

static void print_sub(const VlmcExpr *e, bool paren, FILE *out)
{
    if (paren) fputc('(', out);
    vlmc_print_expr(e, out);
    if (paren) fputc(')', out);
}

void vlmc_print_expr(const VlmcExpr *e, FILE *out)
{
    switch (e->kind) {
    case VLMC_E_NUM: print_num(e->num, out); break;
    case VLMC_E_NAME: fputs(e->name, out); break;
    case VLMC_E_NEG:
        fputc('-', out);
        print_sub(e->a[0], prec(e->a[0]) < 4 || e->a[0]->kind == VLMC_E_NEG, out);
        break;
    case VLMC_E_BIN:
        print_sub(e->a[0], prec(e->a[0]) < prec(e), out);
        fprintf(out, " %c ", e->op);
        print_sub(e->a[1], prec(e->a[1]) <= prec(e), out);
        break;
    case VLMC_E_CALL:
        fprintf(out, "%s(", e->name);
        for (int i = 0; i < e->n_args; i++) {
            if (i) fputs(", ", out);
            if (e->args[i].key) fprintf(out, "%s = ", e->args[i].key);
            vlmc_print_expr(e->args[i].value, out);
        }
        fputc(')', out);
        break;
    case VLMC_E_INDEX:
        vlmc_print_expr(e->a[0], out);
        fputc('[', out);
        vlmc_print_expr(e->a[1], out);
        fputc(']', out);
        break;
    }
}

/* snprintf into buf[*len..n), advancing *len by what it needed */
static void put(char *buf, size_t n, size_t *len, const char *f, const char *s, long v)
{
    int k = s ? snprintf(*len < n ? buf + *len : NULL, *len < n ? n - *len : 0, f, s)
              : snprintf(*len < n ? buf + *len : NULL, *len < n ? n - *len : 0, f, v);
    if (k > 0) *len += (size_t)k;
}

size_t vlmc_dim_text(const VlmcModel *m, VlmcDim d, bool c_expr, char *buf, size_t n)
{
    size_t len = 0;
    if (n) buf[0] = 0;
    if (d.cst >= 0 && d.cst < m->n_consts) {
        put(buf, n, &len, c_expr ? "c_%s" : "%s", m->consts[d.cst]->name, 0);
    } else if (d.cst <= VLMC_DIM_SUM(0) && VLMC_DIM_SUM(d.cst) < m->n_dim_sums) {
        const VlmcDimSum *s = &m->dim_sums[VLMC_DIM_SUM(d.cst)];
        if (c_expr) put(buf, n, &len, "(", "", 0);
        for (int i = 0; i < s->n; i++)
            put(buf, n, &len, c_expr ? (i ? "+c_%s" : "c_%s") : (i ? " + %s" : "%s"),
                m->consts[s->cst[i]]->name, 0);
        if (s->lit) put(buf, n, &len, c_expr ? "+%ldL" : " + %ld", NULL, s->lit);
        if (c_expr) put(buf, n, &len, ")", "", 0);
    } else {
        put(buf, n, &len, c_expr ? "%ldL" : "%ld", NULL, d.value);
    }
    return len;
}

static void print_dim(const VlmcModel *m, VlmcDim d, FILE *out)
{
    size_t len = vlmc_dim_text(m, d, false, NULL, 0);
    char *buf = malloc(len + 1);
    if (!buf) { fputs("?", out); return; }
    vlmc_dim_text(m, d, false, buf, len + 1);
    fputs(buf, out);
    free(buf);
}

static void print_shape_m(const VlmcModel *m, const VlmcShape *s, FILE *out)
{
    fputc('[', out);
    for (int i = 0; i < s->rank; i++) {
        if (i) fputs(", ", out);
        print_dim(m, s->dim[i], out);
    }
    fputc(']', out);
}

void vlmc_print_shape(const VlmcModel *m, const VlmcShape *s, FILE *out)
{
    print_shape_m(m, s, out);
}

static void print_dist(const VlmcDist *d, int form, VlmcExpr *const *args, FILE *out)
{
    const VlmcDistForm *f = &d->forms[form];
    fprintf(out, "%s(", d->name);
    for (int i = 0; i < f->n_params; i++) {
        fprintf(out, "%s%s = ", i ? ", " : "", f->names[i]);
        if (args && args[i]) vlmc_print_expr(args[i], out);
    }
    fprintf(out, ") form %s", f->runtime);
}

static const char *con_name(VlmcConstraint c)
{
    static const char *const names[] = {"", " positive", " unit", " simplex"};
    return (unsigned)c < 4 ? names[c] : "";
}

static void print_init(const VlmcSym *s, FILE *out)
{
    fputs(" init ", out);
    switch (s->init) {
    case VLMC_INIT_DEFAULT: fputs("default", out); break;
    case VLMC_INIT_CONST: print_num(s->init_a, out); break;
    case VLMC_INIT_NORMAL: case VLMC_INIT_UNIFORM:
        fputs(s->init == VLMC_INIT_NORMAL ? "normal(" : "uniform(", out);
        print_num(s->init_a, out);
        fputs(", ", out);
        print_num(s->init_b, out);
        fputc(')', out);
        break;
    }
}

static void dump_sym(const VlmcModel *m, const VlmcSym *s, FILE *out)
{
    switch (s->kind) {
    case VLMC_SYM_CONST:
        fprintf(out, "const %s = %ld\n", s->name, s->value);
        break;
    case VLMC_SYM_PARAM:
        fprintf(out, "param %s ", s->name);
        print_shape_m(m, &s->shape, out);
        fprintf(out, "%s%s", con_name(s->constraint), s->local ? " local" : "");
        print_init(s, out);
        if (s->dist) {
            fputs(" prior ", out);
            print_dist(s->dist, s->param_form, s->dist_args, out);
        }
        fputc('\n', out);
        break;
    case VLMC_SYM_NET:
        fprintf(out, "net %s %s(", s->name, s->net.is_mlp ? "mlp" : "linear");
        for (int i = 0; i < s->net.n_sizes; i++) {
            if (i) fputs(", ", out);
            print_dim(m, s->net.sizes[i], out);
        }
        fputc(')', out);
        if (s->net.is_mlp) fprintf(out, " act %s", vlmc_act_name(s->net.act));
        fprintf(out, " out %s\n", vlmc_act_name(s->net.out_act));
        break;
    case VLMC_SYM_LET:
        fprintf(out, "let %s ", s->name);
        print_shape_m(m, &s->shape, out);
        fprintf(out, " %s%s = ", s->type == VLMC_T_INT ? "int" : "real",
                s->expr->batched ? " batched" : "");
        vlmc_print_expr(s->expr, out);
        fputc('\n', out);
        break;
    case VLMC_SYM_LATENT: case VLMC_SYM_OBSERVED:
        fprintf(out, "%s%s %s ", s->global ? "global " : "", vlmc_sym_kind_name(s->kind), s->name);
        print_shape_m(m, &s->shape, out);
        fprintf(out, " %s ~ ", s->type == VLMC_T_INT ? "int" : "real");
        print_dist(s->dist, s->param_form, s->dist_args, out);
        if (s->dist->discrete) {
            fputs(" support ", out);
            if (s->support) print_dim(m, s->support_dim, out);
            else fputs("infinite", out);
        }
        fputs(" deps (", out);
        for (int i = 0; i < s->n_deps; i++) fprintf(out, "%s%s", i ? ", " : "", s->deps[i]->name);
        fputc(')', out);
        if (s->kind == VLMC_SYM_LATENT && m->treat)
            fprintf(out, " treat %s", vlmc_treat_name(m->treat[s->index]));
        fputc('\n', out);
        break;
    case VLMC_SYM_INPUT:
        fprintf(out, "input %s ", s->name);
        print_shape_m(m, &s->shape, out);
        fprintf(out, " %s", s->type == VLMC_T_INT ? "int" : "real");
        if (s->support) {
            fputs(" category ", out);
            print_dim(m, s->support_dim, out);
        }
        fputc('\n', out);
        break;
    }
}

void vlmc_dump_model(const VlmcModel *m, FILE *out)
{
    fprintf(out, "model %s\n", m->src && m->src->path ? m->src->path : "?");
    for (int i = 0; i < m->n_stmts; i++) dump_sym(m, m->stmts[i].sym, out);
    if (m->guide != VLMC_GUIDE_NONE) {
        fprintf(out, "guide %s\n", m->guide == VLMC_GUIDE_LOCAL ? "local" : "amortized");
        for (int i = 0; i < m->n_gstmts; i++) {
            const VlmcStmt *st = &m->gstmts[i];
            fputs("  ", out);
            if (st->kind != VLMC_S_SAMPLE) { dump_sym(m, st->sym, out); continue; }
            fprintf(out, "sample %s ", st->sym->name);
            print_shape_m(m, &st->sym->shape, out);
            fputs(" ~ ", out);
            print_dist(st->sym->q_dist, st->sym->q_param_form, st->sym->q_args, out);
            fputc('\n', out);
        }
    }
}
