/* cc.c — compiles and links a generated trainer with the system C compiler
 * ($CC, default cc) through posix_spawnp: no shell, arguments passed as a
 * vector. The compiler's output is captured and shown only on failure. */
#include "vlmc.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef VLM_DEFAULT_INCLUDE
#define VLM_DEFAULT_INCLUDE "runtime"
#endif
#ifndef VLM_DEFAULT_LIB
#define VLM_DEFAULT_LIB "lib/libvlm.a"
#endif
#ifndef VLM_DEFAULT_CFLAGS
#define VLM_DEFAULT_CFLAGS ""
#endif
#ifndef VLM_DEFAULT_LIBS
#define VLM_DEFAULT_LIBS "-lopenblas -lpng16 -lz -lm -lpthread"
#endif

#define MAX_ARGS 128

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Split a flags string on spaces into argv slots; the copy the slots
 * point into is kept in copies[] and freed by the caller. */
static int split(const char *s, char **argv, int n, int max, char **copies, int *n_copies)
{
    char *copy = strdup(s);
    if (!copy)
        return n;
    copies[(*n_copies)++] = copy;
    for (char *tok = strtok(copy, " \t"); tok && n < max; tok = strtok(NULL, " \t"))
        argv[n++] = tok;
    return n;
}

static int run_cc(const VlmcCcOptions *o, FILE *err, char **copies, int *n_copies)
{
    char *argv[MAX_ARGS];
    int n = 0;
    const char *cc = env_or("CC", "cc");
    char inc[4096];
    snprintf(inc, sizeof inc, "-I%s", env_or("VLM_INCLUDE", VLM_DEFAULT_INCLUDE));
    n = split(cc, argv, n, MAX_ARGS - 40, copies, n_copies);
    argv[n++] = "-std=c11";
    argv[n++] = o->debug ? "-O0" : "-O2";
    if (o->debug)
        argv[n++] = "-g";
    argv[n++] = "-Wall";
    argv[n++] = "-Wextra";
    argv[n++] = "-Werror";
    argv[n++] = "-D_GNU_SOURCE";
    argv[n++] = inc;
    n = split(env_or("VLM_CFLAGS", VLM_DEFAULT_CFLAGS), argv, n, MAX_ARGS - 20, copies, n_copies);
    argv[n++] = (char *)o->c_file;
    argv[n++] = "-o";
    argv[n++] = (char *)o->out_file;
    argv[n++] = (char *)env_or("VLM_LIB", VLM_DEFAULT_LIB);
    n = split(env_or("VLM_LIBS", VLM_DEFAULT_LIBS), argv, n, MAX_ARGS - 1, copies, n_copies);
    argv[n] = NULL;
    if (o->verbose) {
        for (int i = 0; i < n; i++)
            fprintf(err, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', err);
    }

    char log_path[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(log_path, sizeof log_path, "%s/vlmc-cc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int log_fd = mkstemp(log_path);
    if (log_fd < 0) {
        fprintf(err, "vlmc: error: cannot create a temporary file: %s\n", strerror(errno));
        return 1;
    }
    unlink(log_path);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, log_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, log_fd, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(err, "vlmc: error: cannot run the C compiler `%s`: %s (set $CC)\n", argv[0], strerror(rc));
        close(log_fd);
        return 1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        fprintf(err, "vlmc: internal error: the generated C failed to compile; this is a bug in vlmc.\n"
                     "vlmc: compiler output follows (rerun with --keep-temps to inspect %s):\n", o->c_file);
        lseek(log_fd, 0, SEEK_SET);
        char buf[4096];
        ssize_t k;
        while ((k = read(log_fd, buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)k, err);
    }
    close(log_fd);
    return ok ? 0 : 1;
}

int vlmc_cc(const VlmcCcOptions *o, FILE *err)
{
    char *copies[4];
    int n_copies = 0;
    int rc = run_cc(o, err, copies, &n_copies);
    for (int i = 0; i < n_copies; i++)
        free(copies[i]);
    return rc;
}
