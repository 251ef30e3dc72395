/* io.c — the file layer under every writer: checked open/write/fsync/
 * rename wrappers with a failure-injection countdown (for tests), the
 * atomic temp-file-then-rename writer (and the removal of temporaries its
 * killed predecessors left), the up-front writability check and the
 * advisory lock of an output path. It does not format anything. */
#include "vlm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* Base name of path (after the last '/'; "" when path ends in one). */
static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "DIR/.BASE.tmp.PID.XXXXXX", the writer's temporary (a mkstemp template).
 * The pid and the flock each writer holds on its temporary make a
 * leftover provably stale (remove_stale_temps). */
static char *temp_template(const char *path)
{
    const char *base = base_of(path);
    int dlen = (int)(base - path);
    size_t n = (size_t)dlen + strlen(base) + 48;
    char *t = vlm_xmalloc(n);
    snprintf(t, n, "%.*s.%s.tmp.%ld.XXXXXX", dlen, path, base,
             (long)getpid());
    return t;
}

/* Is name "." base ".tmp." PID "." and six mkstemp characters? */
static bool stale_name(const char *name, const char *base, long *pid)
{
    size_t bl = strlen(base);
    if (name[0] != '.' || strncmp(name + 1, base, bl) ||
        strncmp(name + 1 + bl, ".tmp.", 5))
        return false;
    const char *p = name + 1 + bl + 5;
    char *end;
    if (*p < '1' || *p > '9')
        return false;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || v <= 0 || *end != '.' || strlen(end + 1) != 6)
        return false;
    for (const char *c = end + 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9')))
            return false;
    *pid = v;
    return true;
}

/* A writer killed during a save (SIGKILL, OOM killer) leaves its
 * temporary behind, as big as the file. Before a new save to the same
 * path, remove those that are provably such leftovers: the name is this
 * target's temporary pattern with a pid, no process of that pid exists,
 * the file is a regular file of this user, and nobody holds the flock
 * every writer keeps on its temporary until it is closed (which also
 * covers a live writer on another machine sharing the directory). Any
 * doubt leaves the file alone. Not counted as I/O operations. */
static void remove_stale_temps(const char *path)
{
    char *dir = dir_of(path);
    const char *base = base_of(path);
    DIR *d = *base ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        return;
    }
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        if (!stale_name(e->d_name, base, &pid) || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;   /* alive, or not ours to ask about */
        int fd = openat(dfd, e->d_name,
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st, now;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid() && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dfd, e->d_name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            now.st_dev == st.st_dev && now.st_ino == st.st_ino)
            unlinkat(dfd, e->d_name, 0);
        close(fd);
    }
    closedir(d);
    free(dir);
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
    /* ".name.tmp.PID.XXXXXX" next to the target, so rename stays in one
     * file system and a crash leaves only a hidden, recognisable leftover,
     * which the next save to this path removes. */
    f->tmp = temp_template(path);
    if (!*base_of(path)) {
        errno = EISDIR;
        atomic_fail(f, "write (no file name)");
    } else {
        remove_stale_temps(path);
        f->fd = io_mkstemp(f->tmp);
        if (f->fd < 0)
            atomic_fail(f, "create a temporary file");
        else {
            f->created = true;
            fchmod(f->fd, 0644);  /* mkstemp's 0600 is wrong for outputs */
            /* held until close: the mark of a live writer; a file system
             * without flock only loses that second proof */
            flock(f->fd, LOCK_EX | LOCK_NB);
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

/* ------------------------------------------------------------ before a run */

int vlm_io_check_writable(const char *path, bool append, VlmErr *err)
{
    const char *base = base_of(path);
    if (!*base) {
        vlm_err_set(err, "%s: is a directory, not a file name", path);
        return -1;
    }
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        vlm_err_set(err, "%s: is a directory, not a file name", path);
        return -1;
    }
    char *dir = dir_of(path);
    int rc = -1;
    struct stat ds;
    if (stat(dir, &ds) < 0) {
        vlm_err_set(err, "%s: cannot write: directory %s: %s", path, dir,
                    strerror(errno));
        goto done;
    }
    if (!S_ISDIR(ds.st_mode)) {
        vlm_err_set(err, "%s: cannot write: %s is not a directory", path, dir);
        goto done;
    }
    /* The real test, as the writer will do it (access(2) is wrong for
     * root, ACLs and read-only mounts): create a temporary, remove it. */
    char *tmp = temp_template(path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        vlm_err_set(err, "%s: cannot write in directory %s: %s", path, dir,
                    strerror(errno));
        free(tmp);
        goto done;
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    if (append && exists && S_ISREG(st.st_mode)) {
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) {
            vlm_err_set(err, "%s: cannot append to it: %s", path,
                        strerror(errno));
            goto done;
        }
        close(fd);
    }
    rc = 0;
done:
    free(dir);
    return rc;
}

/* DIR/.BASE.lock */
static char *lock_name(const char *path)
{
    const char *base = base_of(path);
    int dlen = (int)(base - path);
    size_t n = (size_t)dlen + strlen(base) + 8;
    char *t = vlm_xmalloc(n);
    snprintf(t, n, "%.*s.%s.lock", dlen, path, base);
    return t;
}

int vlm_io_lock(VlmLock *l, const char *path, VlmErr *err)
{
    l->fd = -1;
    l->path = lock_name(path);
    /* The lock file may be unlinked by its holder as it finishes, between
     * our open and our flock: then the lock we got is on a dead name, and
     * we try again on the new file. */
    bool told = false;
    for (int tries = 0; tries < 100 && !told; tries++) {
        int fd = open(l->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                      0644);
        if (fd < 0) {
            vlm_err_set(err, "%s: cannot create the lock file %s: %s", path,
                        l->path, strerror(errno));
            told = true;
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                char buf[32] = "";
                ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
                buf[k > 0 ? k : 0] = 0;
                long pid = strtol(buf, NULL, 10);
                char who[48] = "another process";
                if (pid > 0)
                    snprintf(who, sizeof who, "another process (pid %ld)",
                             pid);
                vlm_err_set(err, "%s is in use: %s is writing it and holds "
                            "the lock %s; wait for it to finish or choose "
                            "another file", path, who, l->path);
                close(fd);
                told = true;
                break;
            }
            /* no flock here (some network file systems): unlocked, as
             * before locks existed */
            close(fd);
            free(l->path);
            l->path = NULL;
            return 0;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(l->path, &b) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
                { /* the pid is only for the message */ }
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
    if (!told)
        vlm_err_set(err, "%s: cannot lock %s", path, l->path);
    free(l->path);
    l->path = NULL;
    return -1;
}

void vlm_io_unlock(VlmLock *l)
{
    if (l->fd >= 0) {
        unlink(l->path);   /* while held: nobody else has it yet */
        close(l->fd);
    }
    l->fd = -1;
    free(l->path);
    l->path = NULL;
}
