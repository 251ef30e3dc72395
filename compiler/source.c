/* source.c — reading a .vlm file whole into the arena. It refuses
 * directories and files over 256 MB; it does not interpret the bytes
 * (NULs are the scanner's business). */
#include "vlmc.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SOURCE ((size_t)256 << 20)

bool vlmc_read_source(VlmcArena *a, const char *path, VlmcSource *src,
                      FILE *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "%s: error: cannot open: %s\n", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fprintf(err, "%s: error: cannot stat: %s\n", path, strerror(errno));
        fclose(f);
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(err, "%s: error: is a directory, not a .vlm file\n", path);
        fclose(f);
        return false;
    }
    /* st_size is only a hint (pipes, /proc): read until EOF */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > MAX_SOURCE + 1) cap = MAX_SOURCE + 1;
    size_t len = 0;
    char *buf = vlmc_arena_alloc(a, cap + 1);
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
        if (len == cap) {
            if (len > MAX_SOURCE) {
                fprintf(err, "%s: error: file too large (limit %zu MB)\n",
                        path, MAX_SOURCE >> 20);
                fclose(f);
                return false;
            }
            char *nbuf = vlmc_arena_alloc(a, 2 * cap + 1);
            memcpy(nbuf, buf, len);
            buf = nbuf;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        fprintf(err, "%s: error: cannot read: %s\n", path, strerror(errno));
        fclose(f);
        return false;
    }
    fclose(f);
    buf[len] = 0;
    src->path = path;
    src->text = buf;
    src->len = len;
    return true;
}
