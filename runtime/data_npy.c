/* data_npy.c — NumPy .npy files (format v1, v2 and v3): little-endian
 * float32/float64 and uint8 (scaled to [0,1]), C order only. Axis 0 is
 * the item axis; the rest is the per-item shape, flattened into d. NaN is
 * a missing value (mask), an infinity is an error with its byte offset. */
#include "vlm.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20)   /* numpy itself writes a few hundred bytes */

typedef struct NpyHeader {
    char descr[16];
    bool fortran;
    int rank;
    uint64_t dims[5];
    size_t item;          /* bytes per element */
} NpyHeader;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Parse the header dict, a Python literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * Keys may come in any order; all three are required. */
static const char *parse_dict(const char *s, NpyHeader *h)
{
    bool have_descr = false, have_fortran = false, have_shape = false;
    const char *p = skip_ws(s);
    if (*p++ != '{')
        return "header is not a dict";
    for (;;) {
        p = skip_ws(p);
        if (*p == '}')
            break;
        char q = *p;
        if (q != '\'' && q != '"')
            return "expected a quoted key";
        const char *k = ++p;
        while (*p && *p != q)
            p++;
        if (!*p)
            return "unterminated key";
        size_t klen = (size_t)(p - k);
        p = skip_ws(p + 1);
        if (*p++ != ':')
            return "expected ':' after a key";
        p = skip_ws(p);
        if (klen == 5 && !strncmp(k, "descr", 5)) {
            char dq = *p;
            if (dq != '\'' && dq != '"')
                return "descr is not a string (structured dtypes are not supported)";
            const char *v = ++p;
            while (*p && *p != dq)
                p++;
            if (!*p || (size_t)(p - v) >= sizeof h->descr)
                return "bad descr";
            memcpy(h->descr, v, (size_t)(p - v));
            h->descr[p - v] = 0;
            p++;
            have_descr = true;
        } else if (klen == 13 && !strncmp(k, "fortran_order", 13)) {
            if (!strncmp(p, "False", 5)) {
                h->fortran = false;
                p += 5;
            } else if (!strncmp(p, "True", 4)) {
                h->fortran = true;
                p += 4;
            } else {
                return "fortran_order is not True or False";
            }
            have_fortran = true;
        } else if (klen == 5 && !strncmp(k, "shape", 5)) {
            if (*p++ != '(')
                return "shape is not a tuple";
            h->rank = 0;
            for (;;) {
                p = skip_ws(p);
                if (*p == ')') {
                    p++;
                    break;
                }
                if (!isdigit((unsigned char)*p))
                    return "shape holds a non-integer";
                if (h->rank == 5)
                    return "more than 5 dimensions";
                uint64_t v = 0;
                while (isdigit((unsigned char)*p)) {
                    if (v > (UINT64_MAX - 9) / 10)
                        return "dimension too large";
                    v = v * 10 + (uint64_t)(*p++ - '0');
                }
                h->dims[h->rank++] = v;
                p = skip_ws(p);
                if (*p == ',')
                    p++;
                else if (*p != ')')
                    return "expected ',' or ')' in shape";
            }
            have_shape = true;
        } else {
            return "unknown key";
        }
        p = skip_ws(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return "expected ',' or '}'";
    }
    if (!have_descr || !have_fortran || !have_shape)
        return "missing descr, fortran_order or shape";
    return NULL;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

int vlm_data_read_npy(const char *path, size_t max_bytes, VlmData *out,
                      VlmErr *err)
{
    memset(out, 0, sizeof *out);
    if (max_bytes == 0)
        max_bytes = VLM_DATA_DEFAULT_MAX_BYTES;
    VlmReader r;
    if (vlm_reader_open(&r, path, err) < 0)
        return -1;
    uint8_t *raw = NULL;
    char *hdr = NULL;
    unsigned char pre[12];
    if (vlm_reader_read(&r, pre, 8, err) < 0)
        goto fail;
    if (memcmp(pre, "\x93NUMPY", 6)) {
        vlm_err_set(err, "%s: not an NPY file (bad magic at byte offset 0)", path);
        goto fail;
    }
    int major = pre[6];
    uint32_t hlen;
    if (major == 1) {
        if (vlm_reader_read(&r, pre + 8, 2, err) < 0)
            goto fail;
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (vlm_reader_read(&r, pre + 8, 4, err) < 0)
            goto fail;
        hlen = le32(pre + 8);
    } else {
        vlm_err_set(err, "%s: NPY format version %d.%d at byte offset 6 is not supported (1, 2 or 3)",
                    path, pre[6], pre[7]);
        goto fail;
    }
    uint64_t hstart = r.offset;
    if (hlen > NPY_MAX_HEADER ||
        (!r.compressed && (uint64_t)hlen > r.file_size - hstart)) {
        vlm_err_set(err, "%s: NPY header length %u at byte offset 8 is larger than %s",
                    path, hlen, hlen > NPY_MAX_HEADER ? "1 MiB" : "the file");
        goto fail;
    }
    hdr = vlm_xmalloc((size_t)hlen + 1);
    if (vlm_reader_read(&r, hdr, hlen, err) < 0)
        goto fail;
    hdr[hlen] = 0;
    if (strlen(hdr) != hlen) {
        vlm_err_set(err, "%s: NUL byte in the NPY header at byte offset %llu",
                    path, (unsigned long long)(hstart + strlen(hdr)));
        goto fail;
    }
    NpyHeader h = {0};
    const char *why = parse_dict(hdr, &h);
    if (why) {
        vlm_err_set(err, "%s: bad NPY header at byte offset %llu: %s", path,
                    (unsigned long long)hstart, why);
        goto fail;
    }
    if (!strcmp(h.descr, "<f4"))
        h.item = 4;
    else if (!strcmp(h.descr, "<f8"))
        h.item = 8;
    else if (!strcmp(h.descr, "|u1") || !strcmp(h.descr, "<u1") || !strcmp(h.descr, "u1"))
        h.item = 1;
    else {
        vlm_err_set(err, "%s: NPY dtype '%s' is not supported (use '<f4', '<f8' or '|u1')",
                    path, h.descr);
        goto fail;
    }
    if (h.fortran) {
        vlm_err_set(err, "%s: NPY array is in Fortran order; save it in C order (numpy.ascontiguousarray)",
                    path);
        goto fail;
    }
    if (h.rank < 1 || h.rank > 4) {
        vlm_err_set(err, "%s: NPY array has %d dimensions; expected (n,), (n,d), (n,h,w) or (n,c,h,w)",
                    path, h.rank);
        goto fail;
    }
    uint64_t count = 1;
    for (int i = 0; i < h.rank; i++) {
        if (h.dims[i] && count > UINT64_MAX / 8 / h.dims[i]) {
            vlm_err_set(err, "%s: NPY shape overflows", path);
            goto fail;
        }
        count *= h.dims[i];
    }
    if (h.dims[0] == 0 || count == 0) {
        vlm_err_set(err, "%s: NPY array is empty", path);
        goto fail;
    }
    for (int i = 1; i < h.rank; i++)
        if (h.dims[i] > INT32_MAX) {
            vlm_err_set(err, "%s: NPY dimension %d is too large", path, i);
            goto fail;
        }
    if (count > max_bytes / sizeof(float) / 2) {   /* x and perhaps mask */
        vlm_err_set(err, "%s: NPY header claims %llu elements, over the limit of %zu bytes",
                    path, (unsigned long long)count, max_bytes);
        goto fail;
    }
    uint64_t data_off = r.offset;
    size_t nbytes = (size_t)(count * h.item);
    if (vlm_reader_read_alloc(&r, nbytes, &raw, err) < 0 ||
        vlm_reader_expect_eof(&r, err) < 0)
        goto fail;
    vlm_reader_close(&r);

    out->n = (size_t)h.dims[0];
    out->d = (size_t)(count / h.dims[0]);
    out->rank = h.rank == 1 ? 1 : h.rank - 1;
    for (int i = 0; i < 3; i++)
        out->shape[i] = i + 1 < h.rank ? (int)h.dims[i + 1] : (h.rank == 1 && i == 0);
    if (h.item == 1) {   /* uint8: compact, nothing can be missing */
        out->x8 = raw;
        free(hdr);
        return 0;
    }
    out->x = vlm_xmalloc((size_t)count * sizeof(float));
    size_t n_missing = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *b = raw + i * h.item;
        float v;
        if (h.item == 1) {
            v = b[0] / 255.0f;
        } else if (h.item == 4) {
            uint32_t u = le32(b);
            memcpy(&v, &u, 4);
        } else {
            uint64_t u = (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
            double dv;
            memcpy(&dv, &u, 8);
            if (isfinite(dv) && fabs(dv) > 3.4028234663852886e38) {
                vlm_err_set(err, "%s: value %g at byte offset %llu (item %zu, element %zu) is out of float range",
                            path, dv, (unsigned long long)(data_off + i * h.item),
                            i / out->d, i % out->d);
                goto fail_x;
            }
            v = (float)dv;
        }
        if (isinf(v)) {
            vlm_err_set(err, "%s: infinite value at byte offset %llu (item %zu, element %zu); NaN marks missing values, Inf is not allowed",
                        path, (unsigned long long)(data_off + i * h.item),
                        i / out->d, i % out->d);
            goto fail_x;
        }
        n_missing += isnan(v) != 0;
        out->x[i] = v;
    }
    if (n_missing) {
        out->mask = vlm_xmalloc((size_t)count * sizeof(float));
        for (size_t i = 0; i < count; i++) {
            bool miss = isnan(out->x[i]);
            out->mask[i] = !miss;
            if (miss)
                out->x[i] = 0;
        }
    }
    free(raw);
    free(hdr);
    return 0;
fail_x:
    vlm_data_free(out);
fail:
    free(raw);
    free(hdr);
    vlm_reader_close(&r);
    return -1;
}
