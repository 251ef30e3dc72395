/* main.c — the `vlmc` command line: parse options into a struct, then
 * dispatch on the requested action: check, dump, plan, emit C, or compile
 * to an executable (the default). */
#include "vlmc.h"

#include <stdlib.h>
#include <string.h>

#define VLMC_VERSION "0.1.0"

typedef enum {
    ACT_NONE, ACT_CHECK, ACT_DUMP, ACT_HELP, ACT_VERSION, ACT_PLAN, ACT_BUILD,
} Action;

typedef struct Options {
    Action action;
    const char *input;      /* the .vlm file */
    VlmcGenOptions gen;     /* -o, --emit-c, --plan, -O0, --keep-temps */
} Options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: vlmc [OPTIONS] FILE.vlm\n"
        "\n"
        "Compiles a latent variable model into a native trainer/evaluator:\n"
        "  vlmc model.vlm -o model       check, generate C, compile and link ./model\n"
        "\n"
        "  -o FILE        the executable to write (default: the model's file stem)\n"
        "  --emit-c FILE  write the generated C to FILE (and stop, unless -o is given)\n"
        "  --plan         print the inference plan (estimator per latent, each layer and\n"
        "                 density with its row level, memory) and stop\n"
        "  -O0            compile the generated C without optimisation, with -g\n"
        "  --keep-temps   keep the temporary directory with the generated C\n"
        "  --no-line      no #line directives pointing back to the .vlm\n"
        "  -v             show the C compiler command\n"
        "  --check FILE   parse and check the model only; exit 0 if it is valid\n"
        "  --dump FILE    check, then print the checked model as text\n"
        "  --help         show this help\n"
        "  --version      show the version\n"
        "\n"
        "environment: CC (C compiler, default cc), VLM_INCLUDE, VLM_LIB, VLM_CFLAGS, VLM_LIBS\n"
        "exit status: 0 success, 1 errors in the model or failed compile, 2 bad command line\n");
}

/* Returns 0 on success, or the exit status for a bad command line. */
static int parse_options(int argc, char **argv, Options *o)
{
    o->gen.line_directives = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        Action act = ACT_NONE;
        if (!strcmp(a, "--check")) act = ACT_CHECK;
        else if (!strcmp(a, "--dump")) act = ACT_DUMP;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) act = ACT_HELP;
        else if (!strcmp(a, "--version")) act = ACT_VERSION;
        else if (!strcmp(a, "--plan")) { o->gen.plan = true; continue; }
        else if (!strcmp(a, "-O0")) { o->gen.debug = true; continue; }
        else if (!strcmp(a, "--keep-temps")) { o->gen.keep_temps = true; continue; }
        else if (!strcmp(a, "--no-line")) { o->gen.line_directives = false; continue; }
        else if (!strcmp(a, "-v")) { o->gen.verbose = true; continue; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--emit-c")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "vlmc: error: `%s` needs a file name\nvlmc: run `vlmc --help` for usage\n", a);
                return 2;
            }
            if (a[1] == 'o') o->gen.out = argv[++i];
            else o->gen.emit_c = argv[++i];
            continue;
        }
        else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "vlmc: error: unknown option `%s`\n"
                            "vlmc: run `vlmc --help` for usage\n", a);
            return 2;
        } else {
            if (o->input) {
                fprintf(stderr, "vlmc: error: more than one input file (`%s` and `%s`)\n", o->input, a);
                return 2;
            }
            o->input = a;
            continue;
        }
        if (o->action != ACT_NONE && o->action != act) {
            fprintf(stderr, "vlmc: error: `%s` cannot be combined with another action\n", a);
            return 2;
        }
        o->action = act;
    }
    if (o->action == ACT_HELP || o->action == ACT_VERSION) return 0;
    if (o->action == ACT_NONE)
        o->action = o->gen.plan && !o->gen.out && !o->gen.emit_c ? ACT_PLAN : ACT_BUILD;
    else if (o->gen.out || o->gen.emit_c || o->gen.plan) {
        fprintf(stderr, "vlmc: error: --check/--dump cannot be combined with -o, --emit-c or --plan\n");
        return 2;
    }
    if (!o->input) {
        fprintf(stderr, "vlmc: error: no input file\nvlmc: run `vlmc --help` for usage\n");
        return 2;
    }
    if (o->action == ACT_BUILD && !o->gen.out && !o->gen.emit_c) {
        /* default executable: the file stem, in the current directory */
        static char stem[4096];
        const char *b = strrchr(o->input, '/');
        snprintf(stem, sizeof stem, "./%s", b ? b + 1 : o->input);
        char *dot = strrchr(stem, '.');
        if (dot && dot > stem + 2)
            *dot = 0;
        if (!strcmp(stem + 2, b ? b + 1 : o->input)) {
            fprintf(stderr, "vlmc: error: cannot derive an output name from `%s`; use -o FILE\n", o->input);
            return 2;
        }
        o->gen.out = stem;
    }
    return 0;
}

/* Read, parse and check o->input. Returns the checked model or NULL. */
static VlmcModel *front_end(VlmcArena *a, const Options *o, VlmcSource *src, VlmcDiag *d)
{
    if (!vlmc_read_source(a, o->input, src, stderr)) return NULL;
    d->src = src;
    d->out = stderr;
    VlmcModel *m = vlmc_parse(a, src, d);
    if (!m || d->n_errors) return NULL;
    if (!vlmc_check_model(a, m, d)) return NULL;
    vlmc_warn_model(a, m, d);
    return m;
}

int main(int argc, char **argv)
{
    Options o = {0};
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc;
    switch (o.action) {
    case ACT_HELP: usage(stdout); return 0;
    case ACT_VERSION: printf("vlmc %s\n", VLMC_VERSION); return 0;
    default: break;
    }
    VlmcArena *a = vlmc_arena_new();
    VlmcSource src = {0};
    VlmcDiag d = {0};
    d.out = stderr;
    VlmcModel *m = front_end(a, &o, &src, &d);
    rc = m ? 0 : 1;
    /* --check and --dump also lower the model, so that a model they accept
     * compiles: code generation's own limits are reported here too */
    VlmcProgram prog;
    if (m && (o.action == ACT_CHECK || o.action == ACT_DUMP) && !vlmc_lower(a, m, &prog, &d)) {
        m = NULL;
        rc = 1;
    }
    if (m && o.action == ACT_DUMP) vlmc_dump_model(m, stdout);
    if (m && (o.action == ACT_PLAN || o.action == ACT_BUILD)) rc = vlmc_generate(a, m, &d, &o.gen);
    vlmc_arena_free(a);
    return rc;
}
