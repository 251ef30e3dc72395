/* data.c — data set files: format dispatch, the plain-or-gzip reader the
 * format readers share, and the CSV/NPY writers (atomic through io.c).
 * The formats themselves are parsed in data_idx.c, data_csv.c, data_npy.c. */
#include "vlm.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

/* ------------------------------------------------------------ reader */

int vlm_reader_open(VlmReader *r, const char *path, VlmErr *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    struct stat st;
    if (stat(path, &st) < 0) {
        vlm_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        vlm_err_set(err, "%s: not a regular file", path);
        return -1;
    }
    r->file_size = (uint64_t)st.st_size;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        vlm_err_set(err, "%s: cannot open: %s", path,
                    errno ? strerror(errno) : "out of memory");
        return -1;
    }
    gzbuffer(gz, 1 << 17);
    r->gz = gz;
    /* gzdirect is only meaningful after the first read looked at the
     * header; a 0-byte read does not trigger it, so peek one byte. */
    int c = gzgetc(gz);
    if (c >= 0)
        gzungetc(c, gz);
    r->compressed = !gzdirect(gz);
    return 0;
}

long vlm_reader_read_some(VlmReader *r, void *buf, size_t n, VlmErr *err)
{
    size_t got = 0;
    char *p = buf;
    while (got < n) {
        size_t want = n - got;
        if (want > (1u << 30))
            want = 1u << 30;
        int k = gzread((gzFile)r->gz, p + got, (unsigned)want);
        if (k < 0) {
            int zerr;
            const char *m = gzerror((gzFile)r->gz, &zerr);
            vlm_err_set(err, "%s: read error at byte offset %llu: %s", r->path,
                        (unsigned long long)(r->offset + got),
                        zerr == Z_ERRNO ? strerror(errno) : m);
            return -1;
        }
        if (k == 0) {
            /* A truncated gzip stream reads as a short stream plus an
             * error flag; it is corruption, not an ordinary end. */
            int zerr;
            const char *m = gzerror((gzFile)r->gz, &zerr);
            if (zerr != Z_OK) {
                vlm_err_set(err, "%s: corrupt compressed data near byte offset %llu: %s",
                            r->path, (unsigned long long)(r->offset + got), m);
                return -1;
            }
            break;
        }
        got += (size_t)k;
    }
    r->offset += got;
    return (long)got;
}

int vlm_reader_read(VlmReader *r, void *buf, size_t n, VlmErr *err)
{
    uint64_t at = r->offset;
    long got = vlm_reader_read_some(r, buf, n, err);
    if (got < 0)
        return -1;
    if ((size_t)got < n) {
        vlm_err_set(err, "%s: truncated at byte offset %llu (wanted %zu more bytes, file has %ld)",
                    r->path, (unsigned long long)at, n, got);
        return -1;
    }
    return 0;
}

int vlm_reader_read_alloc(VlmReader *r, size_t n, uint8_t **out, VlmErr *err)
{
    *out = NULL;
    if (!r->compressed) {
        uint64_t left = r->file_size > r->offset ? r->file_size - r->offset : 0;
        if ((uint64_t)n > left) {
            vlm_err_set(err, "%s: truncated: the header promises %zu bytes of data at byte offset %llu, the file has %llu",
                        r->path, n, (unsigned long long)r->offset,
                        (unsigned long long)left);
            return -1;
        }
        uint8_t *buf = vlm_xmalloc(n);
        if (vlm_reader_read(r, buf, n, err) < 0) {
            free(buf);
            return -1;
        }
        *out = buf;
        return 0;
    }
    /* Compressed: grow with what actually arrives. */
    uint64_t start = r->offset;
    size_t cap = n < ((size_t)1 << 20) ? n : ((size_t)1 << 20);
    size_t have = 0;
    uint8_t *buf = vlm_xmalloc(cap);
    while (have < n) {
        if (have == cap) {
            cap = cap > n / 2 ? n : cap * 2;
            buf = vlm_xrealloc(buf, cap);
        }
        long k = vlm_reader_read_some(r, buf + have, cap - have, err);
        if (k < 0) {
            free(buf);
            return -1;
        }
        if (k == 0) {
            vlm_err_set(err, "%s: truncated: the header promises %zu bytes of data at byte offset %llu, the file has %zu",
                        r->path, n, (unsigned long long)start, have);
            free(buf);
            return -1;
        }
        have += (size_t)k;
    }
    *out = buf;
    return 0;
}

int vlm_reader_expect_eof(VlmReader *r, VlmErr *err)
{
    char c;
    uint64_t at = r->offset;
    long k = vlm_reader_read_some(r, &c, 1, err);
    if (k < 0)
        return -1;
    if (k > 0) {
        vlm_err_set(err, "%s: trailing data at byte offset %llu after the end of the data",
                    r->path, (unsigned long long)at);
        return -1;
    }
    return 0;
}

int vlm_reader_rewind(VlmReader *r, VlmErr *err)
{
    if (gzrewind((gzFile)r->gz) < 0) {
        vlm_err_set(err, "%s: cannot rewind", r->path);
        return -1;
    }
    r->offset = 0;
    return 0;
}

void vlm_reader_close(VlmReader *r)
{
    if (r->gz)
        gzclose((gzFile)r->gz);
    r->gz = NULL;
}

/* ------------------------------------------------------------ dispatch */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* Decide by the (decompressed) leading bytes first, the name second. */
static VlmFormat sniff(const char *path, VlmErr *err)
{
    VlmReader r;
    if (vlm_reader_open(&r, path, err) < 0)
        return VLM_FMT_AUTO;
    unsigned char head[8] = {0};
    long k = vlm_reader_read_some(&r, head, sizeof head, err);
    vlm_reader_close(&r);
    if (k < 0)
        return VLM_FMT_AUTO;
    if (k >= 6 && !memcmp(head, "\x93NUMPY", 6))
        return VLM_FMT_NPY;
    if (k >= 4 && head[0] == 0 && head[1] == 0 && head[2] >= 0x08 && head[2] <= 0x0E)
        return VLM_FMT_IDX;
    char name[4096];
    snprintf(name, sizeof name, "%s", path);
    if (ends_with(name, ".gz"))
        name[strlen(name) - 3] = 0;
    if (ends_with(name, ".npy"))
        return VLM_FMT_NPY;
    if (ends_with(name, ".idx") || ends_with(name, "-ubyte") ||
        ends_with(name, ".idx3") || ends_with(name, ".idx1"))
        return VLM_FMT_IDX;
    if (ends_with(name, ".csv") || ends_with(name, ".txt"))
        return VLM_FMT_CSV;
    /* Text that starts like a number or a header: CSV. */
    bool text = k > 0;
    for (long i = 0; i < k; i++)
        if (head[i] < 0x20 && head[i] != '\n' && head[i] != '\r' && head[i] != '\t')
            text = false;
    if (text)
        return VLM_FMT_CSV;
    vlm_err_set(err, "%s: cannot tell the data format (not IDX, NPY or CSV); name it with a .idx, .npy or .csv extension",
                path);
    return VLM_FMT_AUTO;
}

int vlm_data_read(const char *path, VlmFormat fmt, size_t max_bytes,
                  VlmData *out, VlmErr *err)
{
    memset(out, 0, sizeof *out);
    if (max_bytes == 0)
        max_bytes = VLM_DATA_DEFAULT_MAX_BYTES;
    if (fmt == VLM_FMT_AUTO)
        fmt = sniff(path, err);
    switch (fmt) {
    case VLM_FMT_IDX: return vlm_data_read_idx(path, max_bytes, out, err);
    case VLM_FMT_CSV: return vlm_data_read_csv(path, max_bytes, out, err);
    case VLM_FMT_NPY: return vlm_data_read_npy(path, max_bytes, out, err);
    case VLM_FMT_AUTO: break;
    }
    return -1;
}

int vlm_data_read_labels(const char *path, VlmData *data, VlmErr *err)
{
    VlmErr why;
    switch (sniff(path, &why)) {
    case VLM_FMT_IDX: return vlm_data_read_labels_idx(path, data, err);
    case VLM_FMT_CSV: return vlm_data_read_labels_csv(path, data, err);
    case VLM_FMT_NPY:
        vlm_err_set(err, "%s: labels are read from an idx1 file or a "
                    "one-column CSV, not from NPY", path);
        return -1;
    case VLM_FMT_AUTO: break;
    }
    vlm_err_set(err, "%s", why.msg);
    return -1;
}

void vlm_data_rows(const VlmData *d, size_t i0, size_t n, size_t col0,
                   size_t ncols, float *out)
{
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * ncols;
        if (d->x8 && d->raw) {
            const uint8_t *s = d->x8 + (i0 + i) * d->d + col0;
            for (size_t j = 0; j < ncols; j++)
                o[j] = s[j];
        } else if (d->x8) {
            const uint8_t *s = d->x8 + (i0 + i) * d->d + col0;
            for (size_t j = 0; j < ncols; j++)
                o[j] = s[j] / 255.0f;
        } else {
            memcpy(o, d->x + (i0 + i) * d->d + col0, ncols * sizeof *o);
        }
    }
}

void vlm_data_rows_raw(const VlmData *d, size_t i0, size_t n, size_t col0,
                       size_t ncols, float *out)
{
    if (!d->x8) {
        vlm_data_rows(d, i0, n, col0, ncols, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = d->x8 + (i0 + i) * d->d + col0;
        float *o = out + i * ncols;
        for (size_t j = 0; j < ncols; j++)
            o[j] = s[j];
    }
}

double vlm_data_unit(const VlmData *d) { return d->x8 && !d->raw ? 1.0 / 255.0 : 1.0; }

float *vlm_data_floats(VlmData *d)
{
    if (d->x8) {
        size_t count = d->n * d->d;
        d->x = vlm_xmalloc((count ? count : 1) * sizeof *d->x);
        vlm_data_rows(d, 0, d->n, 0, d->d, d->x);
        free(d->x8);
        d->x8 = NULL;
    }
    return d->x;
}

void vlm_data_free(VlmData *d)
{
    free(d->x);
    free(d->x8);
    free(d->mask);
    free(d->labels);
    if (d->colnames) {
        for (size_t j = 0; j < d->d; j++)
            free(d->colnames[j]);
        free(d->colnames);
    }
    for (int k = 0; k < d->n_parts; k++)
        vlm_data_free(&d->parts[k]);
    free(d->parts);
    free(d->bind);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------ writers */

/* Position of the first infinity, if any (the NaN/Inf policy: NaN is
 * "missing" and round-trips, Inf is never data). */
static bool find_inf(size_t n, size_t d, const float *x, size_t *row,
                     size_t *col)
{
    for (size_t i = 0; i < n * d; i++)
        if (isinf(x[i])) {
            *row = i / d;
            *col = i % d;
            return true;
        }
    return false;
}

int vlm_data_write_csv(const char *path, const char *const *colnames,
                       size_t n, size_t d, const float *x, VlmErr *err)
{
    size_t r, c;
    if (find_inf(n, d, x, &r, &c)) {
        vlm_err_set(err, "%s: cannot write an infinite value (row %zu, column %zu)",
                    path, r + 1, c + 1);
        return -1;
    }
    VlmAtomicFile *f = vlm_xmalloc(sizeof *f);
    if (vlm_atomic_open(f, path, err) < 0) {
        free(f);
        return -1;
    }
    if (colnames) {
        for (size_t j = 0; j < d; j++)
            vlm_atomic_printf(f, "%s%s", j ? "," : "", colnames[j]);
        vlm_atomic_write(f, "\n", 1);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++) {
            float v = x[i * d + j];
            if (j)
                vlm_atomic_write(f, ",", 1);
            if (isnan(v))
                vlm_atomic_write(f, "NaN", 3);
            else
                vlm_atomic_printf(f, "%.9g", (double)v);  /* exact float round trip */
        }
        vlm_atomic_write(f, "\n", 1);
    }
    int rc = vlm_atomic_commit(f, err);
    free(f);
    return rc;
}

int vlm_data_write_npy(const char *path, size_t n, size_t d, const float *x,
                       VlmErr *err)
{
    size_t r, c;
    if (find_inf(n, d, x, &r, &c)) {
        vlm_err_set(err, "%s: cannot write an infinite value (row %zu, column %zu)",
                    path, r + 1, c + 1);
        return -1;
    }
    /* NPY v1: magic, version 1.0, u16 header length, the dict padded with
     * spaces and a newline so the data starts at a multiple of 64. */
    char dict[256];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                       n, d);
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    memset(dict + len, ' ', hlen - 1 - (size_t)len);
    dict[hlen - 1] = '\n';

    VlmAtomicFile *f = vlm_xmalloc(sizeof *f);
    if (vlm_atomic_open(f, path, err) < 0) {
        free(f);
        return -1;
    }
    vlm_atomic_write(f, pre, sizeof pre);
    vlm_atomic_write(f, dict, hlen);
    unsigned char le[4096];
    size_t fill = 0;
    for (size_t i = 0; i < n * d; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int b = 0; b < 4; b++)
            le[fill++] = (unsigned char)(u >> (8 * b));
        if (fill == sizeof le) {
            vlm_atomic_write(f, le, fill);
            fill = 0;
        }
    }
    vlm_atomic_write(f, le, fill);
    int rc = vlm_atomic_commit(f, err);
    free(f);
    return rc;
}
