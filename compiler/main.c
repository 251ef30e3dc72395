/* main.c — the `vlmc` command line: parse options into a struct, then
 * dispatch on the requested action. Front-end actions only so far
 * (--check, --dump); code generation actions plug into the same dispatch. */
#include "vlmc.h"

#include <stdlib.h>
#include <string.h>

#define VLMC_VERSION "0.1.0"

typedef enum {
    ACT_NONE, ACT_CHECK, ACT_DUMP, ACT_HELP, ACT_VERSION,
} Action;

typedef struct Options {
    Action action;
    const char *input;      /* the .vlm file */
    /* room for: const char *out; const char *emit_c; bool plan; int opt; bool keep_temps; */
} Options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: vlmc [OPTIONS] FILE.vlm\n"
        "\n"
        "  --check FILE   parse and check the model; exit 0 if it is valid\n"
        "  --dump FILE    check, then print the checked model as text\n"
        "  --help         show this help\n"
        "  --version      show the version\n"
        "\n"
        "exit status: 0 valid, 1 errors in the model, 2 bad command line\n");
}

/* Returns 0 on success, or the exit status for a bad command line. */
static int parse_options(int argc, char **argv, Options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        Action act = ACT_NONE;
        if (!strcmp(a, "--check")) act = ACT_CHECK;
        else if (!strcmp(a, "--dump")) act = ACT_DUMP;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) act = ACT_HELP;
        else if (!strcmp(a, "--version")) act = ACT_VERSION;
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
    if (o->action == ACT_NONE) {
        fprintf(stderr, "vlmc: error: no action given (code generation is not built yet); try --check FILE\n"
                        "vlmc: run `vlmc --help` for usage\n");
        return 2;
    }
    if (!o->input) {
        fprintf(stderr, "vlmc: error: no input file\nvlmc: run `vlmc --help` for usage\n");
        return 2;
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
    if (m && o.action == ACT_DUMP) vlmc_dump_model(m, stdout);
    vlmc_arena_free(a);
    return rc;
}
