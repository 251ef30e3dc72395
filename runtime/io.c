/* io.c — the file layer under every writer: checked open/write/fsync/
 * rename wrappers with a failure-injection countdown (for tests), and the
 * atomic temp-file-then-rename writer. It does not format anything. */
#include "vlm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long fail_countdown = -1;
static long ops_done;

void vlm_io_fail_after(long n_ops) { fail_countdown = n_ops; }
long vlm_io_ops(void) { return ops_done; }

/* Every counted operation goes through here first: true = fail it now. */
static bool inject(int err_no)
{
    ops_done++;
    if (fail_countdown < 0)
        return false;
    if (fail_countdown == 0) {
        fail_countdown = -1;
        errno = err_no;
        return true;
    }
    fail_countdown--;
    return false;
}

static int io_mkstemp(char *tmpl)
{
    if (inject(ENOSPC))
        return -1;
    return mkstemp(tmpl);
}

static int io_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        if (inject(ENOSPC))
            return -1;
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int io_fsync(int fd)
{
    if (inject(EIO))
        return -1;
    return fsync(fd);
}

static int io_close(int fd)
{
    if (inject(EIO)) {
        close(fd);
        errno = EIO;
        return -1;
    }
    return close(fd);
}

static int io_rename(const char *from, const char *to)
{
    if (inject(EIO))
        return -1;
    return rename(from, to);
}

/* Make the rename durable. Some file systems cannot fsync a directory
 * (EINVAL); that is not a failure of ours. */
static int io_fsync_dir(const char *dir)
{
    if (inject(EIO))
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc < 0 && (e == EINVAL || e == EROFS))
        return 0;
    errno = e;
    return rc;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = vlm_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

/* Directory part of path ("." when there is none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dup_str(".");
    if (slash == path)
        return dup_str("/");
    size_t n = (size_t)(slash - path);
    char *d = vlm_xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

static void atomic_fail(VlmAtomicFile *f, const char *what)
{
    if (f->failed)
        return;
    f->failed = true;
    vlm_err_set(&f->err, "%s: cannot %s: %s", f->path, what, strerror(errno));
}

int vlm_atomic_open(VlmAtomicFile *f, const char *path, VlmErr *err)
{
    f->path = dup_str(path);
    f->fd = -1;
    f->created = f->failed = false;
    f->len = 0;
    f->err.msg[0] = 0;
    /* ".name.tmp.XXXXXX" next to the target, so rename stays in one file
     * system and a crash leaves only a hidden, recognisable leftover. */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dlen;
    size_t n = dlen + 1 + strlen(base) + sizeof ".tmp.XXXXXX";
    f->tmp = vlm_xmalloc(n);
    snprintf(f->tmp, n, "%.*s.%s.tmp.XXXXXX", (int)dlen, path, base);
    if (!*base) {
        errno = EISDIR;
        atomic_fail(f, "write (no file name)");
    } else {
        f->fd = io_mkstemp(f->tmp);
        if (f->fd < 0)
            atomic_fail(f, "create a temporary file");
        else {
            f->created = true;
            fchmod(f->fd, 0644);  /* mkstemp's 0600 is wrong for outputs */
        }
    }
    if (f->failed) {
        vlm_err_set(err, "%s", f->err.msg);
        vlm_atomic_abort(f);
        return -1;
    }
    return 0;
}

static void atomic_flush(VlmAtomicFile *f)
{
    if (!f->failed && f->len && io_write_all(f->fd, f->buf, f->len) < 0)
        atomic_fail(f, "write");
    f->len = 0;
}

int vlm_atomic_write(VlmAtomicFile *f, const void *p, size_t n)
{
    if (f->failed)
        return -1;
    if (f->len + n > sizeof f->buf) {
        atomic_flush(f);
        if (n >= sizeof f->buf) {
            if (!f->failed && io_write_all(f->fd, p, n) < 0)
                atomic_fail(f, "write");
            return f->failed ? -1 : 0;
        }
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return f->failed ? -1 : 0;
}

int vlm_atomic_printf(VlmAtomicFile *f, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        errno = EINVAL;
        atomic_fail(f, "format output");
        return -1;
    }
    if ((size_t)n < sizeof small)
        return vlm_atomic_write(f, small, (size_t)n);
    char *big = vlm_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = vlm_atomic_write(f, big, (size_t)n);
    free(big);
    return rc;
}

void vlm_atomic_abort(VlmAtomicFile *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->created)
        unlink(f->tmp);
    f->created = false;
    free(f->tmp);
    free(f->path);
    f->tmp = f->path = NULL;
}

int vlm_atomic_commit(VlmAtomicFile *f, VlmErr *err)
{
    atomic_flush(f);
    if (!f->failed && io_fsync(f->fd) < 0)
        atomic_fail(f, "sync");
    if (!f->failed) {
        int fd = f->fd;
        f->fd = -1;
        if (io_close(fd) < 0)
            atomic_fail(f, "close");
    }
    if (!f->failed && io_rename(f->tmp, f->path) < 0)
        atomic_fail(f, "rename the temporary file over");
    if (f->failed) {
        vlm_err_set(err, "%s", f->err.msg);
        vlm_atomic_abort(f);
        return -1;
    }
    /* Renamed: the new file is in place. A failed directory sync means it
     * may not survive a power cut, which the caller should hear about. */
    char *dir = dir_of(f->path);
    int rc = 0;
    if (io_fsync_dir(dir) < 0) {
        vlm_err_set(err, "%s: written, but cannot sync directory %s: %s",
                    f->path, dir, strerror(errno));
        rc = -1;
    }
    free(dir);
    free(f->tmp);
    free(f->path);
    f->tmp = f->path = NULL;
    return rc;
}

int vlm_atomic_write_file(const char *path, const void *p, size_t n,
                          VlmErr *err)
{
    VlmAtomicFile *f = vlm_xmalloc(sizeof *f);
    int rc = vlm_atomic_open(f, path, err);
    if (rc == 0) {
        vlm_atomic_write(f, p, n);
        rc = vlm_atomic_commit(f, err);
    }
    free(f);
    return rc;
}
