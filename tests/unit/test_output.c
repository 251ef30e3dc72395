/* test_output.c — what a run writes besides checkpoints: progress lines
 * (non-tty form), the metrics CSV and PNG image grids (read back with
 * libpng), plus the atomic writer's own guarantees. */
#include "vlm.h"
#include "tmpdir.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <png.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = calloc(1, (size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n)
        b[0] = 0;
    fclose(f);
    return b;
}

/* ------------------------------------------------------------ progress */

static void test_progress_plain(void)
{
    FILE *f = tmpfile();
    CU_ASSERT_FATAL(f != NULL);
    VlmProgress p;
    vlm_progress_start(&p, f, "epoch 2/5", 1000);
    CU_ASSERT(p.tty == false);
    for (long i = 1; i <= 500; i++)
        vlm_progress_update(&p, i, -100.0 - (double)i / 100);
    /* pretend time passed: exactly one periodic line is due */
    p.t_last -= 10;
    p.t_start -= 10;
    vlm_progress_update(&p, 600, -106.5);
    for (long i = 601; i <= 1000; i++)
        vlm_progress_update(&p, i, -107.25);
    vlm_progress_finish(&p, "elbo -107.25");
    rewind(f);
    char line[512];
    int n = 0;
    bool ok = true;
    while (fgets(line, sizeof line, f)) {
        n++;
        ok &= strchr(line, '\r') == NULL && strchr(line, '\033') == NULL;
        ok &= line[strlen(line) - 1] == '\n';
        if (n == 1) {
            long done, total;
            int pct;
            double rate, obj;
            char eta[16];
            int k = sscanf(line, "epoch 2/5: %ld/%ld (%d%%) %lf items/s obj %lf ETA %15s",
                           &done, &total, &pct, &rate, &obj, eta);
            CU_ASSERT(k == 6);
            CU_ASSERT(done == 600 && total == 1000 && pct == 60 && obj == -106.5);
            CU_ASSERT(rate > 50 && rate < 61);   /* 600 items in ~10 s */
            CU_ASSERT(!strcmp(eta, "0:06") || !strcmp(eta, "0:07"));
        } else if (n == 2) {
            long done;
            double secs, rate, obj;
            int k = sscanf(line, "epoch 2/5: %ld items in %lfs (%lf items/s) obj %lf",
                           &done, &secs, &rate, &obj);
            CU_ASSERT(k == 4);
            CU_ASSERT(done == 1000 && secs >= 10 && obj == -107.25);
            CU_ASSERT(strstr(line, "  elbo -107.25\n") != NULL);
        }
    }
    CU_ASSERT(n == 2);
    CU_ASSERT(ok);
    fclose(f);

    double t0 = vlm_now();
    usleep(2000);
    CU_ASSERT(vlm_now() - t0 >= 0.002 && vlm_now() - t0 < 1);
    /* the terminal form: one line redrawn in place */
    f = tmpfile();
    vlm_progress_start(&p, f, "train", 200);
    p.tty = true;
    p.t_last -= 1;
    vlm_progress_update(&p, 50, -3.5);
    p.t_last -= 1;
    vlm_progress_update(&p, 100, -3.25);
    vlm_progress_update(&p, 101, -3.0);    /* within 0.1 s: not drawn */
    vlm_progress_finish(&p, NULL);
    rewind(f);
    char all[1024] = {0};
    size_t got = fread(all, 1, sizeof all - 1, f);
    CU_ASSERT(got > 0);
    CU_ASSERT(!strncmp(all, "\rtrain [######..................]  25% 50/200", 45));
    CU_ASSERT(strstr(all, "\rtrain [############............]  50% 100/200") != NULL);
    CU_ASSERT(strstr(all, "101/200") == NULL);
    CU_ASSERT(strstr(all, "obj -3.25  ETA ") != NULL);
    CU_ASSERT(strstr(all, "\r\033[Ktrain: 101 items in ") != NULL);
    CU_ASSERT(strchr(all, '\n') == all + strlen(all) - 1);
    fclose(f);
    /* no output stream: silent, no crash */
    vlm_progress_start(&p, NULL, "quiet", 10);
    vlm_progress_update(&p, 5, 1);
    vlm_progress_finish(&p, NULL);
}

/* ------------------------------------------------------------ metrics */

static void test_metrics(void)
{
    const char *cols[3] = {"epoch", "elbo", "seconds"};
    VlmMetrics m;
    VlmErr e = {{0}};
    const char *p = tpath("metrics.csv");
    CU_ASSERT_FATAL(vlm_metrics_open(&m, p, cols, 3, &e) == 0);
    double r1[3] = {1, -120.5, 3.25}, r2[3] = {2, -110.125, 6.5};
    vlm_metrics_row(&m, r1);
    vlm_metrics_row(&m, r2);
    char *s = slurp_text(p);   /* rows are flushed as they are written */
    CU_ASSERT(s && !strcmp(s, "epoch,elbo,seconds\n1,-120.5,3.25\n2,-110.125,6.5\n"));
    free(s);
    vlm_metrics_close(&m);
    /* reopening with the same columns appends (a resumed run) */
    CU_ASSERT_FATAL(vlm_metrics_open(&m, p, cols, 3, &e) == 0);
    double r3[3] = {3, -105, 9};
    vlm_metrics_row(&m, r3);
    vlm_metrics_close(&m);
    s = slurp_text(p);
    CU_ASSERT(s && !strcmp(s, "epoch,elbo,seconds\n1,-120.5,3.25\n2,-110.125,6.5\n3,-105,9\n"));
    free(s);
    /* the file reads back as data with a header */
    VlmData d;
    CU_ASSERT(vlm_data_read(p, VLM_FMT_AUTO, 0, &d, &e) == 0);
    CU_ASSERT(d.n == 3 && d.d == 3 && d.colnames && !strcmp(d.colnames[1], "elbo"));
    vlm_data_free(&d);
    /* different columns: refuse to clobber the old log */
    CU_ASSERT(vlm_metrics_open(&m, p, cols, 2, &e) == -1);
    CU_ASSERT(strstr(e.msg, "different columns") != NULL);
    s = slurp_text(p);
    CU_ASSERT(s && strlen(s) == strlen("epoch,elbo,seconds\n1,-120.5,3.25\n2,-110.125,6.5\n3,-105,9\n"));
    free(s);
    CU_ASSERT(vlm_metrics_open(&m, "/nonexistent-vlm-dir/m.csv", cols, 3, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/nonexistent-vlm-dir/m.csv") != NULL);
}

/* ------------------------------------------------------------ png */

static uint8_t *read_png(const char *path, unsigned *w, unsigned *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return NULL;
    img.format = PNG_FORMAT_GRAY;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        return NULL;
    }
    *w = img.width;
    *h = img.height;
    return buf;
}

static void test_png(void)
{
    enum { N = 5, H = 3, W = 4 };
    float imgs[N * H * W];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < H * W; i++)
            imgs[k * H * W + i] = (float)(k * H * W + i) / (N * H * W);
    imgs[0] = -1;           /* clamped to 0 */
    imgs[1] = 7;            /* clamped to 1 */
    VlmErr e = {{0}};
    const char *p = tpath("grid.png");
    CU_ASSERT_FATAL(vlm_png_grid(p, imgs, N, H, W, 3, &e) == 0);
    unsigned w, h;
    uint8_t *px = read_png(p, &w, &h);
    CU_ASSERT_FATAL(px != NULL);
    /* 3 columns, 2 rows, 2-px gaps */
    CU_ASSERT(w == 3 * W + 2 * 2 && h == 2 * H + 2);
    CU_ASSERT(px[0] == 0 && px[1] == 255);
    CU_ASSERT(px[3] == 13);   /* 3/60 * 255 = 12.75 */
    /* image 4 (row 1, col 1) pixel (2,3) */
    int k = 4, y = 2, x = 3;
    uint8_t want = (uint8_t)((double)(k * H * W + y * W + x) / (N * H * W) * 255 + 0.5);
    CU_ASSERT(px[(1 * (H + 2) + y) * w + 1 * (W + 2) + x] == want);
    CU_ASSERT(px[0 * w + W] == 255 && px[0 * w + W + 1] == 255);   /* gap */
    CU_ASSERT(px[H * w] == 255);                                   /* gap row */
    CU_ASSERT(px[(h - 1) * w + (w - 1)] == 255);                    /* empty tile */
    free(px);
    /* default columns, single image */
    CU_ASSERT(vlm_png_grid(p, imgs, 1, H, W, 0, &e) == 0);
    px = read_png(p, &w, &h);
    CU_ASSERT(px && w == W && h == H);
    free(px);
    /* unwritable destination, bad arguments: errors, and the old file stays */
    CU_ASSERT(vlm_png_grid("/nonexistent-vlm-dir/g.png", imgs, N, H, W, 3, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/nonexistent-vlm-dir/g.png") != NULL);
    CU_ASSERT(vlm_png_grid("/proc/g.png", imgs, N, H, W, 3, &e) == -1);
    CU_ASSERT(vlm_png_grid(p, imgs, 0, H, W, 3, &e) == -1);
    vlm_io_fail_after(1);      /* the first write fails */
    CU_ASSERT(vlm_png_grid(p, imgs, N, H, W, 3, &e) == -1);
    vlm_io_fail_after(-1);
    CU_ASSERT(strstr(e.msg, "cannot write") != NULL);
    px = read_png(p, &w, &h);
    CU_ASSERT(px && w == W && h == H);
    free(px);
}

/* ------------------------------------------------------------ atomic */

static void test_atomic(void)
{
    VlmErr e = {{0}};
    const char *p = tpath("a.txt");
    CU_ASSERT(vlm_atomic_write_file(p, "old\n", 4, &e) == 0);
    VlmAtomicFile *f = malloc(sizeof *f);
    CU_ASSERT_FATAL(vlm_atomic_open(f, p, &e) == 0);
    char *big = malloc(200000);
    memset(big, 'x', 200000);
    vlm_atomic_printf(f, "%s %d\n", "new", 1);
    vlm_atomic_write(f, big, 200000);
    vlm_atomic_abort(f);       /* abandoned: old content stays */
    char *s = slurp_text(p);
    CU_ASSERT(s && !strcmp(s, "old\n"));
    free(s);
    CU_ASSERT_FATAL(vlm_atomic_open(f, p, &e) == 0);
    vlm_atomic_printf(f, "%s %d\n", "new", 1);
    vlm_atomic_printf(f, "%.*s", 1000, big);   /* longer than printf's buffer */
    CU_ASSERT(vlm_atomic_commit(f, &e) == 0);
    s = slurp_text(p);
    CU_ASSERT(s && strlen(s) == 6 + 1000 && !strncmp(s, "new 1\nxxx", 9));
    free(s);
    /* a relative path works (the directory is ".") */
    char cwd[512];
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    CU_ASSERT_FATAL(chdir(dir) == 0);
    CU_ASSERT(vlm_atomic_write_file("rel.txt", "r", 1, &e) == 0);
    CU_ASSERT(chdir(cwd) == 0);
    s = slurp_text(tpath("rel.txt"));
    CU_ASSERT(s && !strcmp(s, "r"));
    free(s);
    free(big);
    free(f);
}

/* Names in dir starting with prefix. */
static int count_prefix(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A writer SIGKILLed in the middle of a save leaves its temporary; the
 * next save to that path removes it, and only what is provably such a
 * leftover: not a live writer's (by pid, or by the flock it holds), not
 * other files. */
static void test_stale_temps(void)
{
    VlmErr e = {{0}};
    char p[256];   /* tpath's buffers rotate */
    snprintf(p, sizeof p, "%s", tpath("k.ckpt"));
    pid_t kid = fork();
    CU_ASSERT_FATAL(kid >= 0);
    if (kid == 0) {
        VlmAtomicFile f;
        if (vlm_atomic_open(&f, p, &e) == 0) {
            char big[100000] = {0};
            vlm_atomic_write(&f, big, sizeof big);
            vlm_atomic_write(&f, big, sizeof big);
        }
        raise(SIGKILL);
    }
    int st;
    waitpid(kid, &st, 0);
    CU_ASSERT(WIFSIGNALED(st));
    char pre[64];
    snprintf(pre, sizeof pre, ".k.ckpt.tmp.%ld.", (long)kid);
    CU_ASSERT_FATAL(count_prefix(pre) == 1);   /* the leftover */
    /* decoys: an old-style name, another target's, a live process's
     * (ours), a wrong suffix, and one named after the dead pid whose
     * flock a live process holds */
    char live[64], other[64], suffix[64], flocked[64];
    snprintf(live, sizeof live, ".k.ckpt.tmp.%ld.AbC123", (long)getpid());
    snprintf(other, sizeof other, ".j.ckpt.tmp.%ld.AbC123", (long)kid);
    snprintf(suffix, sizeof suffix, ".k.ckpt.tmp.%ld.AbC123.bak", (long)kid);
    snprintf(flocked, sizeof flocked, ".k.ckpt.tmp.%ld.ZzZ999", (long)kid);
    const char *decoys[] = {".k.ckpt.tmp.AbC123", live, other, suffix, flocked};
    for (int i = 0; i < 5; i++)
        put_file(tpath(decoys[i]), "d", 1);
    int pipefd[2];
    CU_ASSERT_FATAL(pipe(pipefd) == 0);
    pid_t holder = fork();
    CU_ASSERT_FATAL(holder >= 0);
    if (holder == 0) {
        int fd = open(tpath(flocked), O_RDONLY);
        flock(fd, LOCK_EX);
        char c = 1;
        if (write(pipefd[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    CU_ASSERT(read(pipefd[0], &c, 1) == 1);   /* the flock is held */
    CU_ASSERT(vlm_atomic_write_file(p, "new", 3, &e) == 0);
    CU_ASSERT(count_prefix(pre) == 2);        /* the flocked and .bak decoys */
    CU_ASSERT(exists(tpath(flocked)));
    for (int i = 0; i < 5; i++)
        CU_ASSERT(exists(tpath(decoys[i])));
    kill(holder, SIGKILL);
    waitpid(holder, &st, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    /* its holder gone, the flocked one is a leftover too */
    CU_ASSERT(vlm_atomic_write_file(p, "newer", 5, &e) == 0);
    CU_ASSERT(!exists(tpath(flocked)));
    CU_ASSERT(count_prefix(pre) == 1);        /* the .bak decoy */
    char *s = slurp_text(p);
    CU_ASSERT(s && !strcmp(s, "newer"));
    free(s);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(exists(tpath(decoys[i])));
        unlink(tpath(decoys[i]));
    }
}

static void test_check_writable(void)
{
    VlmErr e = {{0}};
    CU_ASSERT(vlm_io_check_writable(tpath("w.ckpt"), false, &e) == 0);
    CU_ASSERT(!exists(tpath("w.ckpt")));
    CU_ASSERT(count_prefix(".w.ckpt") == 0);  /* the probe is gone */
    CU_ASSERT(vlm_io_check_writable("/nonexistent-vlm-dir/w.ckpt", false, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/nonexistent-vlm-dir") != NULL);
    CU_ASSERT(vlm_io_check_writable(dir, false, &e) == -1);
    CU_ASSERT(strstr(e.msg, "is a directory") != NULL);
    put_file(tpath("plain"), "x", 1);
    CU_ASSERT(vlm_io_check_writable(tpath("plain/w.ckpt"), false, &e) == -1);
    CU_ASSERT(strstr(e.msg, "not a directory") != NULL);
    CU_ASSERT(vlm_io_check_writable(tpath("plain"), true, &e) == 0);
    unlink(tpath("plain"));
}

/* One holder at a time; a dead holder's lock file does not block. */
static void test_lock(void)
{
    VlmErr e = {{0}};
    char p[256];
    snprintf(p, sizeof p, "%s", tpath("l.ckpt"));
    VlmLock a, b;
    CU_ASSERT_FATAL(vlm_io_lock(&a, p, &e) == 0);
    CU_ASSERT(exists(tpath(".l.ckpt.lock")));
    CU_ASSERT(vlm_io_lock(&b, p, &e) == -1);
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    CU_ASSERT(strstr(e.msg, "in use") && strstr(e.msg, pid));
    vlm_io_unlock(&a);
    CU_ASSERT(!exists(tpath(".l.ckpt.lock")));
    pid_t kid = fork();
    CU_ASSERT_FATAL(kid >= 0);
    if (kid == 0) {
        VlmLock k;
        _exit(vlm_io_lock(&k, p, &e) == 0 ? 0 : 1);   /* never unlocked */
    }
    int st;
    waitpid(kid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(exists(tpath(".l.ckpt.lock")));          /* stale */
    CU_ASSERT(vlm_io_lock(&b, p, &e) == 0);
    vlm_io_unlock(&b);
}

static int suite_init(void) { return tmpdir_make("/tmp/vlm-out-XXXXXX"); }
static int suite_clean(void) { return tmpdir_remove(); }

void vlm_test_output(void)
{
    CU_pSuite s = CU_add_suite("output", suite_init, suite_clean);
    CU_add_test(s, "progress lines when not a tty", test_progress_plain);
    CU_add_test(s, "metrics csv", test_metrics);
    CU_add_test(s, "png grid read back", test_png);
    CU_add_test(s, "atomic writer", test_atomic);
    CU_add_test(s, "a killed writer's temporary is removed by the next save",
                test_stale_temps);
    CU_add_test(s, "output paths checked for writability", test_check_writable);
    CU_add_test(s, "advisory lock of an output path", test_lock);
}
