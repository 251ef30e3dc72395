/* pipeline.c — the back half of vlmc: a checked model is lowered, given
 * its backward pass, written as C and (optionally) compiled and linked
 * into an executable in a private temporary directory. */
#include "vlmc.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* model name for the generated program: the file stem */
static void stem_of(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

int vlmc_generate(VlmcArena *a, VlmcModel *m, VlmcDiag *d, const VlmcGenOptions *o)
{
    VlmcProgram prog;
    if (!vlmc_lower(a, m, &prog, d))
        return 1;
    vlmc_autodiff(&prog);
    vlmc_plan_buffers(&prog);
    if (o->plan) {
        vlmc_print_plan(&prog, stdout);
        if (!o->emit_c && !o->out)
            return 0;
    }
    char name[256];
    stem_of(m->src->path, name, sizeof name);
    if (o->emit_c) {
        FILE *f = fopen(o->emit_c, "w");
        if (!f) {
            fprintf(d->out, "vlmc: error: cannot write %s: %s\n", o->emit_c, strerror(errno));
            return 1;
        }
        bool ok = vlmc_emit_c(&prog, name, f, o->line_directives);
        if (fclose(f) != 0 || !ok) {
            fprintf(d->out, "vlmc: error: cannot write %s\n", o->emit_c);
            return 1;
        }
        if (!o->out)
            return 0;
    }
    if (!o->out)
        return 0;
    char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vlmc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(d->out, "vlmc: error: cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    char cfile[8192], exe[8192];
    snprintf(cfile, sizeof cfile, "%s/%s.c", dir, name);
    snprintf(exe, sizeof exe, "%s/%s", dir, name);
    FILE *f = fopen(cfile, "w");
    int rc = 1;
    if (!f) {
        fprintf(d->out, "vlmc: error: cannot write %s: %s\n", cfile, strerror(errno));
        goto cleanup;
    }
    bool ok = vlmc_emit_c(&prog, name, f, o->line_directives);
    if (fclose(f) != 0 || !ok) {
        fprintf(d->out, "vlmc: error: cannot write %s\n", cfile);
        goto cleanup;
    }
    VlmcCcOptions cc = {.c_file = cfile, .out_file = exe, .debug = o->debug, .verbose = o->verbose};
    if (vlmc_cc(&cc, d->out) != 0)
        goto cleanup;
    /* move the executable into place: rename within a file system, else copy */
    if (rename(exe, o->out) != 0) {
        FILE *in = fopen(exe, "rb");
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", o->out);
        int fd = mkstemp(tmp);
        FILE *outf = fd >= 0 ? fdopen(fd, "wb") : NULL;
        bool copied = in && outf;
        char buf[1 << 16];
        size_t k;
        while (copied && (k = fread(buf, 1, sizeof buf, in)) > 0)
            copied = fwrite(buf, 1, k, outf) == k;
        if (in)
            fclose(in);
        if (outf && fclose(outf) != 0)
            copied = false;
        if (copied)
            copied = chmod(tmp, 0755) == 0 && rename(tmp, o->out) == 0;
        if (!copied) {
            if (fd >= 0)
                unlink(tmp);
            fprintf(d->out, "vlmc: error: cannot write %s: %s\n", o->out, strerror(errno));
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (o->keep_temps) {
        fprintf(d->out, "vlmc: kept %s\n", dir);
    } else {
        unlink(cfile);
        unlink(exe);
        rmdir(dir);
    }
    return rc;
}
