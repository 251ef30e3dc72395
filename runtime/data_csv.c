/* data_csv.c — numeric CSV (plain or gzip), read in two passes: the first
 * validates every field and counts rows, the second fills the matrix, so
 * nothing is allocated before the size is known. Commas separate fields;
 * a first line with a non-numeric field is a header; empty, NA and NaN
 * fields are missing; blank lines and lines starting with '#' are skipped.
 * Errors read "file:line:col: message". */
#include "vlm.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct LineReader {
    VlmReader r;
    char *buf;               /* raw bytes read ahead */
    size_t cap, len, pos;
    bool eof;
    char *line;              /* current line, NUL terminated, no EOL */
    size_t line_cap;
    long lineno;
    size_t max_line;
} LineReader;

/* Next line into lr->line; returns 1, 0 at end of file, -1 on error. */
static int next_line(LineReader *lr, VlmErr *err)
{
    size_t n = 0;
    for (;;) {
        if (lr->pos == lr->len) {
            if (lr->eof)
                break;
            long k = vlm_reader_read_some(&lr->r, lr->buf, lr->cap, err);
            if (k < 0)
                return -1;
            lr->len = (size_t)k;
            lr->pos = 0;
            if (k == 0) {
                lr->eof = true;
                break;
            }
        }
        char *start = lr->buf + lr->pos;
        char *nl = memchr(start, '\n', lr->len - lr->pos);
        size_t take = nl ? (size_t)(nl - start) : lr->len - lr->pos;
        if (n + take + 1 > lr->max_line) {
            vlm_err_set(err, "%s:%ld:1: line longer than %zu bytes", lr->r.path,
                        lr->lineno + 1, lr->max_line);
            return -1;
        }
        if (n + take + 1 > lr->line_cap) {
            lr->line_cap = (n + take + 1) * 2;
            lr->line = vlm_xrealloc(lr->line, lr->line_cap);
        }
        memcpy(lr->line + n, start, take);
        n += take;
        lr->pos += take + (nl != NULL);
        if (nl) {
            lr->line[n] = 0;
            goto got;
        }
    }
    if (n == 0 && lr->eof)
        return 0;
got:
    if (!lr->line)
        lr->line = vlm_xmalloc(lr->line_cap = 64);
    lr->line[n] = 0;
    if (n > 0 && lr->line[n - 1] == '\r')
        lr->line[--n] = 0;
    if (memchr(lr->line, 0, n)) {
        vlm_err_set(err, "%s:%ld:%zu: NUL byte in a text file", lr->r.path,
                    lr->lineno + 1, (size_t)((char *)memchr(lr->line, 0, n) - lr->line) + 1);
        return -1;
    }
    lr->lineno++;
    return 1;
}

static bool blank_or_comment(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == 0 || *s == '#';
}

/* One field [b, e) trimmed of blanks and one pair of double quotes. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
    if (*e - *b >= 2 && **b == '"' && (*e)[-1] == '"') {
        (*b)++;
        (*e)--;
    }
}

static bool is_missing(const char *b, const char *e)
{
    size_t n = (size_t)(e - b);
    return n == 0 || (n == 2 && !strncasecmp(b, "NA", 2)) ||
           (n == 3 && !strncasecmp(b, "NaN", 3));
}

enum { F_OK, F_MISSING, F_NOTNUM, F_INF, F_RANGE };

/* Parse one field as a float. strtod alone is too lenient (it accepts
 * "inf", "nan(x)", hex), so the field must be consumed entirely. Fields
 * of any length: a number written with many digits is still a number
 * (and a first line of them is data, not a header). */
static int parse_field(const char *b, const char *e, float *v)
{
    if (is_missing(b, e))
        return F_MISSING;
    char small[128];
    size_t n = (size_t)(e - b);
    const char *p = b;
    while (p < e && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
                     *p == '.' || *p == 'e' || *p == 'E'))
        p++;
    if (p < e) {
        const char *w = b + (*b == '+' || *b == '-');
        size_t k = (size_t)(e - w);
        if ((k == 3 && !strncasecmp(w, "inf", 3)) ||
            (k == 8 && !strncasecmp(w, "infinity", 8)))
            return F_INF;
        return F_NOTNUM;   /* no hex floats, no "nan(...)" */
    }
    char *tmp = n < sizeof small ? small : vlm_xmalloc(n + 1);
    memcpy(tmp, b, n);
    tmp[n] = 0;
    char *end;
    double d = strtod(tmp, &end);
    bool whole = end != tmp && !*end;
    if (tmp != small)
        free(tmp);
    if (!whole)
        return F_NOTNUM;
    if (isnan(d))
        return F_MISSING;
    if (isinf(d) || fabs(d) > 3.4028234663852886e38)
        return F_RANGE;
    *v = (float)d;
    return F_OK;
}

static size_t count_fields(const char *line)
{
    size_t n = 1;
    for (; *line; line++)
        n += *line == ',';
    return n;
}

/* Walk the fields of a line. row == NULL: validate only. Returns the
 * number of fields, or -1 with err set. */
static long split_line(const char *path, long lineno, const char *line,
                       size_t expect, float *row, float *mask, size_t *n_missing,
                       VlmErr *err)
{
    const char *p = line;
    size_t k = 0;
    for (;;) {
        const char *b = p;
        const char *e = strchr(p, ',');
        bool last = e == NULL;
        if (last)
            e = p + strlen(p);
        if (expect && k >= expect) {
            vlm_err_set(err, "%s:%ld:%ld: row has %zu fields, expected %zu",
                        path, lineno, (long)(b - line) + 1, count_fields(line),
                        expect);
            return -1;
        }
        const char *tb = b, *te = e;
        trim(&tb, &te);
        float v = 0;
        int st = parse_field(tb, te, &v);
        long col = (long)(tb - line) + 1;
        if (st == F_NOTNUM || st == F_INF || st == F_RANGE) {
            int w = (int)(te - tb) > 40 ? 40 : (int)(te - tb);
            const char *why = st == F_NOTNUM ? "is not a number"
                              : st == F_INF ? "is infinite (only finite numbers, or NA/NaN/empty for missing)"
                                            : "is out of float range";
            vlm_err_set(err, "%s:%ld:%ld: '%.*s%s' %s", path, lineno, col, w, tb,
                        (te - tb) > 40 ? "..." : "", why);
            return -1;
        }
        if (st == F_MISSING)
            (*n_missing)++;
        if (row) {
            row[k] = st == F_OK ? v : 0.0f;
            if (mask)
                mask[k] = st == F_OK;
        }
        k++;
        if (last)
            break;
        p = e + 1;
    }
    if (expect && k != expect) {
        vlm_err_set(err, "%s:%ld:%zu: row has %zu fields, expected %zu", path,
                    lineno, strlen(line) + 1, k, expect);
        return -1;
    }
    return (long)k;
}

/* A header is a first line with at least one field that is neither a
 * number nor a missing marker. */
static bool looks_like_header(const char *line)
{
    const char *p = line;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        const char *b = p;
        trim(&b, &end);
        float v;
        if (parse_field(b, end, &v) == F_NOTNUM)
            return true;
        if (!e)
            return false;
        p = e + 1;
    }
}

static char **header_names(const char *line, size_t d)
{
    char **names = vlm_xcalloc(d, sizeof *names);
    const char *p = line;
    for (size_t j = 0; j < d; j++) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        const char *b = p;
        trim(&b, &end);
        names[j] = vlm_xmalloc((size_t)(end - b) + 1);
        memcpy(names[j], b, (size_t)(end - b));
        names[j][end - b] = 0;
        p = e ? e + 1 : end;
    }
    return names;
}

int vlm_data_read_csv(const char *path, size_t max_bytes, VlmData *out,
                      VlmErr *err)
{
    memset(out, 0, sizeof *out);
    if (max_bytes == 0)
        max_bytes = VLM_DATA_DEFAULT_MAX_BYTES;
    LineReader lr = {0};
    lr.cap = 1 << 16;
    lr.buf = vlm_xmalloc(lr.cap);
    lr.max_line = max_bytes < ((size_t)1 << 28) ? max_bytes : ((size_t)1 << 28);
    if (vlm_reader_open(&lr.r, path, err) < 0) {
        free(lr.buf);
        return -1;
    }
    int rc = -1;
    size_t d = 0, n = 0, n_missing = 0;
    bool header = false;
    long header_line = 0;

    /* Pass 1: shape and validity. */
    int got;
    while ((got = next_line(&lr, err)) > 0) {
        char *line = lr.line;
        if (lr.lineno == 1 && !memcmp(line, "\xEF\xBB\xBF", 3))
            memmove(line, line + 3, strlen(line + 3) + 1);  /* UTF-8 BOM */
        if (blank_or_comment(line))
            continue;
        if (d == 0) {
            d = count_fields(line);
            if (looks_like_header(line)) {
                header = true;
                header_line = lr.lineno;
                out->colnames = header_names(line, d);
                continue;
            }
        }
        if (split_line(path, lr.lineno, line, d, NULL, NULL, &n_missing, err) < 0)
            goto done;
        n++;
    }
    if (got < 0)
        goto done;
    if (n == 0) {
        vlm_err_set(err, "%s:%ld:1: no data rows%s", path, lr.lineno + 1,
                    header ? " after the header line" : "");
        goto done;
    }
    if (n > max_bytes / sizeof(float) / d / (n_missing ? 2 : 1)) {
        vlm_err_set(err, "%s: %zu rows of %zu columns is over the limit of %zu bytes",
                    path, n, d, max_bytes);
        goto done;
    }

    /* Pass 2: fill. The file was validated, so errors here mean it
     * changed underneath us. */
    out->n = n;
    out->d = d;
    out->rank = 1;
    out->shape[0] = (int)(d < INT32_MAX ? d : INT32_MAX);
    out->x = vlm_xmalloc(n * d * sizeof(float));
    if (n_missing)
        out->mask = vlm_xmalloc(n * d * sizeof(float));
    if (vlm_reader_rewind(&lr.r, err) < 0)
        goto done;
    lr.pos = lr.len = 0;
    lr.eof = false;
    lr.lineno = 0;
    size_t i = 0, miss2 = 0;
    while ((got = next_line(&lr, err)) > 0) {
        char *line = lr.line;
        if (lr.lineno == 1 && !memcmp(line, "\xEF\xBB\xBF", 3))
            memmove(line, line + 3, strlen(line + 3) + 1);
        if (blank_or_comment(line) || (header && lr.lineno == header_line))
            continue;
        if (i == n) {
            vlm_err_set(err, "%s:%ld:1: file changed while being read", path, lr.lineno);
            goto done;
        }
        if (split_line(path, lr.lineno, line, d, out->x + i * d,
                       out->mask ? out->mask + i * d : NULL, &miss2, err) < 0)
            goto done;
        i++;
    }
    if (got < 0)
        goto done;
    if (i != n || miss2 != n_missing) {
        vlm_err_set(err, "%s: file changed while being read", path);
        goto done;
    }
    rc = 0;
done:
    vlm_reader_close(&lr.r);
    free(lr.buf);
    free(lr.line);
    if (rc < 0) {
        if (!out->d)
            out->d = d;   /* so vlm_data_free frees every column name */
        vlm_data_free(out);
    }
    return rc;
}

/* Class labels: one integer id per line, 0..VLM_LABEL_MAX, a header line
 * allowed (a first line that is not a number); blank and '#' lines are
 * skipped as in data files. One pass, the array growing with the rows. */
int vlm_data_read_labels_csv(const char *path, VlmData *data, VlmErr *err)
{
    LineReader lr = {0};
    lr.cap = 1 << 16;
    lr.buf = vlm_xmalloc(lr.cap);
    lr.max_line = 1 << 20;
    if (vlm_reader_open(&lr.r, path, err) < 0) {
        free(lr.buf);
        return -1;
    }
    int rc = -1, got;
    size_t n = 0, cap = 0;
    int32_t *lab = NULL;
    bool first = true;
    while ((got = next_line(&lr, err)) > 0) {
        char *line = lr.line;
        if (lr.lineno == 1 && !memcmp(line, "\xEF\xBB\xBF", 3))
            memmove(line, line + 3, strlen(line + 3) + 1);
        if (blank_or_comment(line))
            continue;
        bool header = first && looks_like_header(line);
        first = false;
        size_t nf = count_fields(line);
        if (nf != 1) {
            vlm_err_set(err, "%s:%ld:1: %s has %zu fields; a label file has "
                        "one column (an integer class id per line)", path,
                        lr.lineno, header ? "the header" : "row", nf);
            goto done;
        }
        if (header)
            continue;
        const char *b = line, *e = line + strlen(line);
        trim(&b, &e);
        long v = -1;
        size_t len = (size_t)(e - b);
        size_t digits = strspn(b, "0123456789");
        if (len > 0 && len <= 9 && digits >= len)
            v = strtol(b, NULL, 10);
        if (v < 0 || v > VLM_LABEL_MAX) {
            int w = len > 40 ? 40 : (int)len;
            vlm_err_set(err, "%s:%ld:%ld: '%.*s%s' is not a class id (an "
                        "integer from 0 to %d)", path, lr.lineno,
                        (long)(b - line) + 1, w, b, len > 40 ? "..." : "",
                        VLM_LABEL_MAX);
            goto done;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            lab = vlm_xrealloc(lab, cap * sizeof *lab);
        }
        lab[n++] = (int32_t)v;
    }
    if (got < 0)
        goto done;
    if (n == 0) {
        vlm_err_set(err, "%s: no labels", path);
        goto done;
    }
    if (data->n && n != data->n) {
        vlm_err_set(err, "%s: %zu labels for %zu data items", path, n,
                    data->n);
        goto done;
    }
    free(data->labels);
    data->labels = lab;
    lab = NULL;
    if (!data->n)
        data->n = n;   /* labels read on their own */
    rc = 0;
done:
    free(lab);
    vlm_reader_close(&lr.r);
    free(lr.buf);
    free(lr.line);
    return rc;
}
