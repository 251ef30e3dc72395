/* data_idx.c — IDX files (the MNIST format), plain or gzip: unsigned-byte
 * tensors of any rank as data (scaled to [0,1]; an idx1 file holds labels,
 * read raw as the integers 0..255) and idx1 label files.
 * Header: 0, 0, type code, rank, then rank big-endian u32 dims. */
#include "vlm.h"

#include <stdlib.h>
#include <string.h>

#define IDX_UBYTE 0x08

typedef struct IdxHeader {
    int rank;
    uint32_t dims[4];
    uint64_t count;          /* product of dims */
} IdxHeader;

static const char *idx_type_name(int t)
{
    switch (t) {
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
    }
}

static int idx_header(VlmReader *r, IdxHeader *h, VlmErr *err)
{
    unsigned char m[4];
    if (vlm_reader_read(r, m, 4, err) < 0)
        return -1;
    if (m[0] != 0 || m[1] != 0) {
        vlm_err_set(err, "%s: not an IDX file (bad magic %02x %02x at byte offset 0)",
                    r->path, m[0], m[1]);
        return -1;
    }
    if (m[2] != IDX_UBYTE) {
        vlm_err_set(err, "%s: IDX element type 0x%02X (%s) at byte offset 2 is not supported (only unsigned byte, 0x08)",
                    r->path, m[2], idx_type_name(m[2]));
        return -1;
    }
    if (m[3] < 1 || m[3] > 4) {
        vlm_err_set(err, "%s: IDX rank %d at byte offset 3 is not supported (1 to 4)",
                    r->path, m[3]);
        return -1;
    }
    h->rank = m[3];
    h->count = 1;
    for (int i = 0; i < h->rank; i++) {
        unsigned char b[4];
        if (vlm_reader_read(r, b, 4, err) < 0)
            return -1;
        h->dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                     (uint32_t)b[2] << 8 | b[3];
        /* dims are < 2^32 and rank <= 4, but the product can overflow */
        if (h->dims[i] && h->count > UINT64_MAX / h->dims[i]) {
            vlm_err_set(err, "%s: IDX dimensions overflow (byte offset %d)",
                        r->path, 4 + 4 * i);
            return -1;
        }
        h->count *= h->dims[i];
    }
    return 0;
}

int vlm_data_read_idx(const char *path, size_t max_bytes, VlmData *out,
                      VlmErr *err)
{
    memset(out, 0, sizeof *out);
    if (max_bytes == 0)
        max_bytes = VLM_DATA_DEFAULT_MAX_BYTES;
    VlmReader r;
    if (vlm_reader_open(&r, path, err) < 0)
        return -1;
    IdxHeader h;
    uint8_t *raw = NULL;
    if (idx_header(&r, &h, err) < 0)
        goto fail;
    if (h.dims[0] == 0) {
        vlm_err_set(err, "%s: IDX file holds no items", path);
        goto fail;
    }
    if (h.count > max_bytes / sizeof(float)) {
        vlm_err_set(err, "%s: IDX header claims %llu elements (%llu bytes as float), over the limit of %zu bytes",
                    path, (unsigned long long)h.count,
                    (unsigned long long)h.count * 4, max_bytes);
        goto fail;
    }
    if (vlm_reader_read_alloc(&r, (size_t)h.count, &raw, err) < 0 ||
        vlm_reader_expect_eof(&r, err) < 0)
        goto fail;
    vlm_reader_close(&r);

    out->n = h.dims[0];
    out->d = (size_t)(h.count / h.dims[0]);
    out->rank = h.rank > 1 ? h.rank - 1 : 1;
    for (int i = 0; i < 3; i++)
        out->shape[i] = i < h.rank - 1 ? (int)h.dims[i + 1] : (h.rank == 1 && i == 0);
    out->x8 = raw;   /* compact: the bytes are the data (vlm_data_rows) */
    out->raw = h.rank == 1;   /* idx1: labels (class ids), not intensities */
    return 0;
fail:
    free(raw);
    vlm_reader_close(&r);
    return -1;
}

int vlm_data_read_labels_idx(const char *path, VlmData *data, VlmErr *err)
{
    VlmReader r;
    if (vlm_reader_open(&r, path, err) < 0)
        return -1;
    IdxHeader h;
    uint8_t *raw = NULL;
    if (idx_header(&r, &h, err) < 0)
        goto fail;
    if (h.rank != 1) {
        vlm_err_set(err, "%s: a label file must be a 1-D IDX file (idx1), this one has rank %d",
                    path, h.rank);
        goto fail;
    }
    if (data->n && h.dims[0] != data->n) {
        vlm_err_set(err, "%s: %u labels for %zu data items", path, h.dims[0], data->n);
        goto fail;
    }
    if (vlm_reader_read_alloc(&r, h.dims[0], &raw, err) < 0 ||
        vlm_reader_expect_eof(&r, err) < 0)
        goto fail;
    vlm_reader_close(&r);
    free(data->labels);
    data->labels = vlm_xmalloc((size_t)h.dims[0] * sizeof(int32_t) + 1);
    for (uint32_t i = 0; i < h.dims[0]; i++)
        data->labels[i] = raw[i];
    if (!data->n)
        data->n = h.dims[0];   /* labels read on their own */
    free(raw);
    return 0;
fail:
    free(raw);
    vlm_reader_close(&r);
    return -1;
}
