/* parser.y — the vlm grammar: a pure bison parser that builds the AST
 * (statements with unresolved names) into the arena. It does no name
 * resolution or shape checking (compiler/check.c does). */
%require "3.8"
%define api.pure full
%define api.location.type {VlmcLoc}
%locations
%define parse.error custom
%define parse.lac full
%expect 0
%param {yyscan_t scanner} {VlmcParseCtx *ctx}

%code requires {
#include "vlmc.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

typedef struct { VlmcArg *v; int n, cap; } VlmcArgVec;
typedef struct { VlmcExpr **v; int n, cap; } VlmcExprVec;

/* Everything the scanner and the parser share: no globals. */
typedef struct VlmcParseCtx {
    VlmcArena *arena;
    VlmcDiag *diag;
    VlmcModel *model;
    int cap_stmts, cap_gstmts;
    bool in_guide;            /* statements go to model->gstmts */
    bool deep_reported;       /* "nested too deeply" said once */
    /* scanner position (1-based) */
    int line, col;
    VlmcLoc comment_loc;      /* start of an open block comment */
    /* the last two tokens, for friendly syntax errors */
    int cur_tok, prev_tok;
    VlmcLoc cur_loc, prev_loc;
    char cur_text[64], prev_text[64];
    VlmcLoc brace_loc;        /* the last `{` */
    const char **non_ascii;   /* non-ASCII names already reported (once each) */
    int n_non_ascii, cap_non_ascii;
} VlmcParseCtx;
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner, VlmcParseCtx *ctx);
}

%code {
#include <string.h>

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                       \
    do {                                                                  \
        if (N) {                                                          \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                           \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                             \
            (Cur).end_line = YYRHSLOC(Rhs, N).end_line;                   \
            (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                     \
        } else {                                                          \
            (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line;      \
            (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;         \
        }                                                                 \
    } while (0)

static void yyerror(YYLTYPE *loc, yyscan_t scanner, VlmcParseCtx *ctx,
                    const char *msg);
static VlmcExpr *mk(VlmcParseCtx *c, VlmcExprKind k, VlmcLoc loc,
                    VlmcExpr *a, VlmcExpr *b);
static VlmcExpr *mk_call(VlmcParseCtx *c, const char *name, VlmcLoc loc,
                         VlmcArgVec *args);
static VlmcSym *mk_sym(VlmcParseCtx *c, VlmcSymKind k, const char *name,
                       VlmcLoc loc);
static void add_stmt(VlmcParseCtx *c, VlmcSym *s, VlmcLoc loc);
static void add_sample(VlmcParseCtx *c, const char *name, VlmcLoc nloc,
                       VlmcExpr *call, VlmcLoc loc);
static void begin_guide(VlmcParseCtx *c, VlmcLoc loc, bool local);
static VlmcArgVec *arg_push(VlmcParseCtx *c, VlmcArgVec *v, VlmcArg a);
static VlmcExprVec *expr_push(VlmcParseCtx *c, VlmcExprVec *v, VlmcExpr *e);
}

%union {
    double num;
    const char *str;
    VlmcExpr *expr;
    VlmcArgVec *args;
    VlmcExprVec *exprs;
    VlmcSym *sym;
    VlmcArg arg;
}

%token END 0 "end of file"
%token CONST "const" PARAM "param" NET "net" LET "let" LATENT "latent"
       OBSERVED "observed" INPUT "input" GUIDE "guide" LOCAL "local"
       GLOBAL "global"
%token <str> IDENT "identifier"
%token <num> NUM "number"

%type <expr> expr primary dist_call init_opt
%type <args> args_opt arg_list
%type <arg> arg con_opt
%type <exprs> dims_opt dim_list
%type <sym> decl gdecl const_decl param_decl net_decl let_decl latent_decl
            observed_decl input_decl

%left '+' '-'
%left '*' '/'
%left '@'
%precedence NEG

%%

program:
    %empty
  | program item
  ;

item:
    decl ';'                    { add_stmt(ctx, $1, @$); }
  | guide_block
  | guide_block ';'
        {
            vlmc_error(ctx->diag, @2, "a guide block is not followed by `;`: drop the `;` after its `}`");
        }
  | error ';'                   { yyerrok; }
  ;

decl: const_decl | param_decl | net_decl | let_decl | latent_decl | observed_decl
    | input_decl
    /* `global latent w ~ ...`: one value for the whole data set; on any
     * other declaration the checker explains why it does not apply */
    | "global" decl             { $$ = $2; $$->global = true; $$->global_loc = @1; }
    ;

/* guide { ... } or guide local { ... }: the variational family */
guide_block:
    guide_head '{' gitems '}'       { ctx->in_guide = false; }
  | guide_head '{' gitems error '}' { ctx->in_guide = false; yyerrok; }
  ;

guide_head:
    "guide"                     { begin_guide(ctx, @1, false); }
  | "guide" "local"             { begin_guide(ctx, @$, true); }
  ;

gitems:
    %empty
  | gitems gitem
  ;

gitem:
    gdecl ';'                   { add_stmt(ctx, $1, @$); }
  | IDENT '~' dist_call ';'     { add_sample(ctx, $1, @1, $3, @$); }
  | error ';'                   { yyerrok; }
  ;

/* input_decl: only to say that inputs belong to the model (check.c) */
gdecl: param_decl | net_decl | let_decl | input_decl ;

/* const K = 10;  const KD = K * D; */
const_decl:
    "const" IDENT '=' expr      { $$ = mk_sym(ctx, VLMC_SYM_CONST, $2, @2); $$->expr = $4; }
  ;

/* param mu[K, D] : positive = normal(0, 1); */
param_decl:
    "param" IDENT dims_opt con_opt init_opt
        {
            $$ = mk_sym(ctx, VLMC_SYM_PARAM, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
            $$->init_expr = $5;
            $$->con_name = $4.key;
            $$->con_loc = $4.key_loc;
        }
  /* param w[D] ~ Normal(0, 1);  a prior: MAP, its log density counted
   * once per data set */
  | "param" IDENT dims_opt con_opt '~' dist_call
        {
            $$ = mk_sym(ctx, VLMC_SYM_PARAM, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
            $$->dist_call = $6;
            $$->con_name = $4.key;
            $$->con_loc = $4.key_loc;
        }
  ;

con_opt:
    %empty                      { $$ = (VlmcArg){0}; }
  | ':' IDENT                   { $$ = (VlmcArg){$2, @2, NULL}; }
  ;

init_opt:
    %empty                      { $$ = NULL; }
  | '=' expr                    { $$ = $2; }
  ;

/* net decoder = mlp(Z, H, D, act = relu); */
net_decl:
    "net" IDENT '=' IDENT '(' args_opt ')'
        {
            $$ = mk_sym(ctx, VLMC_SYM_NET, $2, @2);
            VlmcLoc l = @4; l.end_line = @7.end_line; l.end_col = @7.end_col;
            $$->net_call = mk_call(ctx, $4, l, $6);
        }
  ;

let_decl:
    "let" IDENT '=' expr        { $$ = mk_sym(ctx, VLMC_SYM_LET, $2, @2); $$->expr = $4; }
  ;

latent_decl:
    "latent" IDENT dims_opt '~' dist_call
        {
            $$ = mk_sym(ctx, VLMC_SYM_LATENT, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
            $$->dist_call = $5;
        }
  ;

observed_decl:
    "observed" IDENT dims_opt '~' dist_call
        {
            $$ = mk_sym(ctx, VLMC_SYM_OBSERVED, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
            $$->dist_call = $5;
        }
  ;

/* input u[C];  input c : category(K);  A distribution after an input
 * (`input u ~ Normal(0, 1)`) parses, for the checker to explain. */
input_decl:
    "input" IDENT dims_opt
        {
            $$ = mk_sym(ctx, VLMC_SYM_INPUT, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
        }
  | "input" IDENT dims_opt ':' primary
        {
            $$ = mk_sym(ctx, VLMC_SYM_INPUT, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
            $$->input_type = $5;
        }
  | "input" IDENT dims_opt '~' dist_call
        {
            $$ = mk_sym(ctx, VLMC_SYM_INPUT, $2, @2);
            if ($3) { $$->dims = $3->v; $$->n_dims = $3->n; }
            $$->dist_call = $5;
        }
  ;

dist_call:
    IDENT '(' args_opt ')'      { $$ = mk_call(ctx, $1, @$, $3); }
  ;

dims_opt:
    %empty                      { $$ = NULL; }
  | '[' dim_list ']'            { $$ = $2; }
  ;

dim_list:
    expr                        { $$ = expr_push(ctx, NULL, $1); }
  | dim_list ',' expr           { $$ = expr_push(ctx, $1, $3); }
  ;

/* Precedence: unary minus > @ > * / > + -, all left-associative. */
expr:
    expr '+' expr               { $$ = mk(ctx, VLMC_E_BIN, @$, $1, $3); $$->op = '+'; }
  | expr '-' expr               { $$ = mk(ctx, VLMC_E_BIN, @$, $1, $3); $$->op = '-'; }
  | expr '*' expr               { $$ = mk(ctx, VLMC_E_BIN, @$, $1, $3); $$->op = '*'; }
  | expr '/' expr               { $$ = mk(ctx, VLMC_E_BIN, @$, $1, $3); $$->op = '/'; }
  | expr '@' expr               { $$ = mk(ctx, VLMC_E_BIN, @$, $1, $3); $$->op = '@'; }
  | '-' expr %prec NEG          { $$ = mk(ctx, VLMC_E_NEG, @$, $2, NULL); }
  | primary
  ;

primary:
    NUM                         { $$ = mk(ctx, VLMC_E_NUM, @$, NULL, NULL); $$->num = $1; }
  | IDENT                       { $$ = mk(ctx, VLMC_E_NAME, @$, NULL, NULL); $$->name = $1; }
  | IDENT '(' args_opt ')'      { $$ = mk_call(ctx, $1, @$, $3); }
  | IDENT '[' expr ']'
        {
            VlmcExpr *base = mk(ctx, VLMC_E_NAME, @1, NULL, NULL);
            base->name = $1;
            $$ = mk(ctx, VLMC_E_INDEX, @$, base, $3);
        }
  | '(' expr ')'                { $$ = $2; $$->loc = @$; }
  ;

args_opt:
    %empty                      { $$ = NULL; }
  | arg_list
  ;

arg_list:
    arg                         { $$ = arg_push(ctx, NULL, $1); }
  | arg_list ',' arg            { $$ = arg_push(ctx, $1, $3); }
  ;

arg:
    expr                        { $$ = (VlmcArg){NULL, @1, $1}; }
  | IDENT '=' expr              { $$ = (VlmcArg){$1, @1, $3}; }
  ;

%%

/* ------------------------------------------------------------ builders */

static VlmcExpr *mk(VlmcParseCtx *c, VlmcExprKind k, VlmcLoc loc,
                    VlmcExpr *a, VlmcExpr *b)
{
    VlmcExpr *e = vlmc_arena_alloc(c->arena, sizeof *e);
    e->kind = k;
    e->loc = loc;
    e->a[0] = a;
    e->a[1] = b;
    int d = 0;
    if (a && a->depth > d) d = a->depth;
    if (b && b->depth > d) d = b->depth;
    e->depth = d + 1;
    if (e->depth > VLMC_MAX_EXPR_DEPTH && !c->deep_reported) {
        c->deep_reported = true;
        vlmc_error(c->diag, loc, "expression nested too deeply (limit %d levels)",
                   VLMC_MAX_EXPR_DEPTH);
    }
    return e;
}

static VlmcExpr *mk_call(VlmcParseCtx *c, const char *name, VlmcLoc loc,
                         VlmcArgVec *args)
{
    VlmcExpr *e = mk(c, VLMC_E_CALL, loc, NULL, NULL);
    e->name = name;
    if (args) {
        e->args = args->v;
        e->n_args = args->n;
        int d = 0;
        for (int i = 0; i < args->n; i++)
            if (args->v[i].value->depth > d) d = args->v[i].value->depth;
        e->depth = d + 1;
        if (e->depth > VLMC_MAX_EXPR_DEPTH && !c->deep_reported) {
            c->deep_reported = true;
            vlmc_error(c->diag, loc, "expression nested too deeply (limit %d levels)",
                       VLMC_MAX_EXPR_DEPTH);
        }
    }
    return e;
}

static VlmcArgVec *arg_push(VlmcParseCtx *c, VlmcArgVec *v, VlmcArg a)
{
    if (!v) v = vlmc_arena_alloc(c->arena, sizeof *v);
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 4;
        VlmcArg *nv = vlmc_arena_alloc(c->arena, (size_t)cap * sizeof *nv);
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = a;
    return v;
}

static VlmcExprVec *expr_push(VlmcParseCtx *c, VlmcExprVec *v, VlmcExpr *e)
{
    if (!v) v = vlmc_arena_alloc(c->arena, sizeof *v);
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 4;
        VlmcExpr **nv = vlmc_arena_alloc(c->arena, (size_t)cap * sizeof *nv);
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = e;
    return v;
}

static VlmcSym *mk_sym(VlmcParseCtx *c, VlmcSymKind k, const char *name,
                       VlmcLoc loc)
{
    VlmcSym *s = vlmc_arena_alloc(c->arena, sizeof *s);
    s->kind = k;
    s->name = name;
    s->loc = loc;
    s->in_guide = c->in_guide;
    s->local = c->in_guide && c->model->guide == VLMC_GUIDE_LOCAL
               && c->model->n_guides == 1 && k == VLMC_SYM_PARAM;
    s->support_dim.cst = -1;
    return s;
}

static VlmcStmt *new_stmt(VlmcParseCtx *c)
{
    VlmcModel *m = c->model;
    VlmcStmt **v = c->in_guide ? &m->gstmts : &m->stmts;
    int *n = c->in_guide ? &m->n_gstmts : &m->n_stmts;
    int *cap = c->in_guide ? &c->cap_gstmts : &c->cap_stmts;
    if (*n == *cap) {
        int ncap = *cap ? 2 * *cap : 16;
        VlmcStmt *nv = vlmc_arena_alloc(c->arena, (size_t)ncap * sizeof *nv);
        if (*n) memcpy(nv, *v, (size_t)*n * sizeof *nv);
        *v = nv;
        *cap = ncap;
    }
    VlmcStmt *s = &(*v)[(*n)++];
    memset(s, 0, sizeof *s);
    return s;
}

static void add_stmt(VlmcParseCtx *c, VlmcSym *sym, VlmcLoc loc)
{
    static const VlmcStmtKind kinds[] = {
        [VLMC_SYM_CONST] = VLMC_S_CONST, [VLMC_SYM_PARAM] = VLMC_S_PARAM,
        [VLMC_SYM_NET] = VLMC_S_NET, [VLMC_SYM_LET] = VLMC_S_LET,
        [VLMC_SYM_LATENT] = VLMC_S_LATENT, [VLMC_SYM_OBSERVED] = VLMC_S_OBSERVED,
        [VLMC_SYM_INPUT] = VLMC_S_INPUT};
    VlmcStmt *s = new_stmt(c);
    s->kind = kinds[sym->kind];
    s->loc = loc;
    s->sym = sym;
}

static void add_sample(VlmcParseCtx *c, const char *name, VlmcLoc nloc,
                       VlmcExpr *call, VlmcLoc loc)
{
    VlmcStmt *s = new_stmt(c);
    s->kind = VLMC_S_SAMPLE;
    s->loc = loc;
    s->target = name;
    s->target_loc = nloc;
    s->call = call;
}

static void begin_guide(VlmcParseCtx *c, VlmcLoc loc, bool local)
{
    VlmcModel *m = c->model;
    if (m->n_guides++ == 0) {
        m->guide = local ? VLMC_GUIDE_LOCAL : VLMC_GUIDE_AMORTIZED;
        m->guide_loc = loc;
    } else if (m->n_guides == 2) {
        m->guide2_loc = loc;
    }
    c->in_guide = true;
}

/* ------------------------------------------------------ syntax errors */

/* How a token is shown in a message: `;`, `const`, identifier `foo`. */
static void tok_desc(char *buf, size_t n, yysymbol_kind_t k, const char *text)
{
    const char *name = yysymbol_name(k);
    if (k == YYSYMBOL_YYEOF) snprintf(buf, n, "end of file");
    else if (k == YYSYMBOL_IDENT && text && *text) snprintf(buf, n, "identifier `%s`", text);
    else if (k == YYSYMBOL_NUM && text && *text) snprintf(buf, n, "number `%s`", text);
    else if (k == YYSYMBOL_IDENT) snprintf(buf, n, "an identifier");
    else if (k == YYSYMBOL_NUM) snprintf(buf, n, "a number");
    else if (k >= YYSYMBOL_CONST && k <= YYSYMBOL_LOCAL)
        snprintf(buf, n, "keyword `%s`", name);
    else if (name[0] == '"' || name[0] == '\'') {
        size_t len = strlen(name);
        snprintf(buf, n, "`%.*s`", (int)(len - 2), name + 1);
    } else snprintf(buf, n, "`%s`", name);
}

static bool is_sym(yysymbol_kind_t k, const char *lit)
{
    return !strcmp(yysymbol_name(k), lit);
}

static bool starts_decl(yysymbol_kind_t k)
{
    return k == YYSYMBOL_CONST || k == YYSYMBOL_PARAM || k == YYSYMBOL_NET
        || k == YYSYMBOL_LET || k == YYSYMBOL_LATENT || k == YYSYMBOL_OBSERVED
        || k == YYSYMBOL_INPUT || k == YYSYMBOL_GUIDE || k == YYSYMBOL_GLOBAL || k == YYSYMBOL_YYEOF || is_sym(k, "'}'");
}

static const char *const keywords[] = {"const", "param", "net", "let", "latent",
                                       "observed", "input", "guide", "local", "global"};
#define N_KEYWORDS ((int)(sizeof keywords / sizeof keywords[0]))

static VlmcLoc end_of(VlmcLoc l)
{
    return (VlmcLoc){l.end_line, l.end_col, l.end_line, l.end_col};
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner,
                                 VlmcParseCtx *ctx)
{
    (void)scanner;
    VlmcDiag *d = ctx->diag;
    if (d->too_many) return 0;
    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS);
    if (n < 0) n = 0;
    yysymbol_kind_t tok = yypcontext_token(yyctx);
    VlmcLoc loc = *yypcontext_location(yyctx);
    bool want_semi = false, want_ident = false, want_expr = false;
    bool want_brace = false, want_decl = false;
    for (int i = 0; i < n; i++) {
        if (is_sym(exp[i], "';'")) want_semi = true;
        if (exp[i] == YYSYMBOL_IDENT) want_ident = true;
        if (exp[i] == YYSYMBOL_NUM) want_expr = true;
        if (is_sym(exp[i], "'}'")) want_brace = true;
        if (exp[i] == YYSYMBOL_CONST || exp[i] == YYSYMBOL_LET) want_decl = true;
    }
    char got[128];
    tok_desc(got, sizeof got, tok, ctx->cur_text);
    const char *prev = ctx->prev_text;
    int ptok = ctx->prev_tok;

    if (is_sym(tok, "':'") && ptok == IDENT) {
        for (int i = 0; i < n; i++)
            if (is_sym(exp[i], "'='")) {
                vlmc_error(d, loc, "keyword arguments use `=`, not `:` (e.g. `%s = ...`)", prev);
                return 0;
            }
    }
    if (is_sym(tok, "'}'") && want_decl && !ctx->in_guide) {
        vlmc_error(d, loc, "unmatched `}`");
        return 0;
    }
    /* `latnet z ~ ...`: a misspelled keyword */
    if (tok == YYSYMBOL_IDENT && want_decl) {
        const char *kw = vlmc_suggest(ctx->cur_text, keywords, N_KEYWORDS);
        if (kw) {
            vlmc_error(d, loc, "unknown keyword `%s`; did you mean `%s`?", ctx->cur_text, kw);
            return 0;
        }
    }
    if (tok == YYSYMBOL_IDENT && ptok == IDENT && !want_semi && ctx->in_guide) {
        const char *kw = vlmc_suggest(prev, keywords, N_KEYWORDS);
        if (kw) {
            vlmc_error(d, ctx->prev_loc, "unknown keyword `%s`; did you mean `%s`?", prev, kw);
            return 0;
        }
    }
    if (want_semi && (starts_decl(tok) || loc.line > ctx->prev_loc.end_line)) {
        vlmc_error(d, end_of(ctx->prev_loc), "expected `;` after declaration");
        return 0;
    }
    if (ptok == '~' && want_ident) {
        vlmc_error(d, loc, "expected a distribution after `~` (e.g. `Normal(0, 1)`), got %s", got);
        return 0;
    }
    if (tok == YYSYMBOL_YYEOF && want_brace) {
        vlmc_error(d, loc, "expected `}` at end of input");
        vlmc_note(d, ctx->brace_loc, "to match this `{`");
        return 0;
    }
    if (want_decl && !want_semi) {
        vlmc_error(d, loc, "expected a declaration (`const`, `param`, `net`, `let`, "
                   "`latent`, `observed`, `input` or `guide`), got %s", got);
        return 0;
    }
    bool want_rparen = false, want_comma = false, want_rbracket = false;
    for (int i = 0; i < n; i++) {
        if (is_sym(exp[i], "')'")) want_rparen = true;
        if (is_sym(exp[i], "','")) want_comma = true;
        if (is_sym(exp[i], "']'")) want_rbracket = true;
    }
    if ((want_rparen || want_rbracket) && n > 4) {
        vlmc_error(d, loc, "expected %s`%s`, got %s", want_comma ? "`,` or " : "",
                   want_rparen ? ")" : "]", got);
        return 0;
    }
    if (want_expr && n > 5) {
        vlmc_error(d, loc, "expected an expression, got %s", got);
        return 0;
    }
    if (n >= 1 && n <= 4) {
        char list[256] = "";
        size_t len = 0;
        for (int i = 0; i < n; i++) {
            char one[64];
            tok_desc(one, sizeof one, exp[i], NULL);
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                    i == 0 ? "" : i == n - 1 ? " or " : ", ", one);
            if (len >= sizeof list) break;
        }
        if (ptok == IDENT && prev[0] && !strcmp(list, "`~`"))
            vlmc_error(d, loc, "expected `~` after `%s`, got %s", prev, got);
        else
            vlmc_error(d, loc, "expected %s, got %s", list, got);
        return 0;
    }
    vlmc_error(d, loc, "unexpected %s", got);
    return 0;
}

static void yyerror(YYLTYPE *loc, yyscan_t scanner, VlmcParseCtx *ctx,
                    const char *msg)
{
    (void)scanner;
    if (!strcmp(msg, "memory exhausted"))
        vlmc_error(ctx->diag, *loc, "expression nested too deeply");
    else
        vlmc_error(ctx->diag, *loc, "%s", msg);
}
