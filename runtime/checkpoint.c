/* checkpoint.c — save and load model state. Layout (little-endian):
 *   "VLMCKPT\0"  u32 version  u64 model_hash  u32 n_tensors
 *   n_tensors x { u16 name_len, name bytes, u32 rank, i64 dims[rank],
 *                 f32 data[prod(dims)] }
 *   u64 meta_len  meta bytes  u32 crc32(everything before it)
 * Saving is atomic (io.c); loading checks structure and CRC before it
 * allocates anything for the caller. */
#include "vlm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CKPT_MAGIC "VLMCKPT"      /* 8 bytes with the NUL */
#define CKPT_VERSION 1u

/* ------------------------------------------------------------ CRC32 */

/* The zlib/PNG polynomial 0xEDB88320, reflected; crc32("123456789")
 * = 0xCBF43926. Table built on first use. */
static uint32_t crc_table[256];
static bool crc_ready;

uint32_t vlm_crc32(uint32_t crc, const void *p, size_t n)
{
    if (!crc_ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
        crc_ready = true;
    }
    const uint8_t *b = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------------ save */

typedef struct Sink {
    VlmAtomicFile *f;
    uint32_t crc;
} Sink;

static void put(Sink *s, const void *p, size_t n)
{
    s->crc = vlm_crc32(s->crc, p, n);
    vlm_atomic_write(s->f, p, n);
}

static void put_le(Sink *s, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(s, b, (size_t)bytes);
}

static size_t tensor_count(const VlmCkptTensor *t)
{
    size_t c = 1;
    for (int i = 0; i < t->rank; i++)
        c *= (size_t)t->dims[i];
    return c;
}

int vlm_ckpt_save(const char *path, const VlmCkpt *c, VlmErr *err)
{
    if (c->n_tensors < 0 || c->n_tensors > VLM_CKPT_MAX_TENSORS) {
        vlm_err_set(err, "%s: %d tensors (at most %d)", path, c->n_tensors,
                    VLM_CKPT_MAX_TENSORS);
        return -1;
    }
    for (int i = 0; i < c->n_tensors; i++) {
        const VlmCkptTensor *t = &c->t[i];
        size_t len = strnlen(t->name, sizeof t->name);
        if (len == 0 || len == sizeof t->name || t->rank < 0 || t->rank > 4) {
            vlm_err_set(err, "%s: tensor %d has a bad name or rank", path, i);
            return -1;
        }
        for (int k = 0; k < t->rank; k++)
            if (t->dims[k] < 0) {
                vlm_err_set(err, "%s: tensor '%s' has a negative dimension", path, t->name);
                return -1;
            }
        if (tensor_count(t) != t->count) {
            vlm_err_set(err, "%s: tensor '%s': count %zu does not match its shape",
                        path, t->name, t->count);
            return -1;
        }
    }
    VlmAtomicFile *f = vlm_xmalloc(sizeof *f);
    if (vlm_atomic_open(f, path, err) < 0) {
        free(f);
        return -1;
    }
    Sink s = {f, 0};
    put(&s, CKPT_MAGIC, 8);
    put_le(&s, CKPT_VERSION, 4);
    put_le(&s, c->model_hash, 8);
    put_le(&s, (uint64_t)c->n_tensors, 4);
    for (int i = 0; i < c->n_tensors; i++) {
        const VlmCkptTensor *t = &c->t[i];
        size_t len = strlen(t->name);
        put_le(&s, len, 2);
        put(&s, t->name, len);
        put_le(&s, (uint64_t)t->rank, 4);
        for (int k = 0; k < t->rank; k++)
            put_le(&s, (uint64_t)t->dims[k], 8);
        uint8_t buf[4096];
        size_t fill = 0;
        for (size_t j = 0; j < t->count; j++) {
            uint32_t u;
            memcpy(&u, &t->data[j], 4);
            for (int b = 0; b < 4; b++)
                buf[fill++] = (uint8_t)(u >> (8 * b));
            if (fill == sizeof buf) {
                put(&s, buf, fill);
                fill = 0;
            }
        }
        put(&s, buf, fill);
    }
    put_le(&s, c->meta_len, 8);
    if (c->meta_len)
        put(&s, c->meta, c->meta_len);
    uint32_t crc = s.crc;
    put_le(&s, crc, 4);
    int rc = vlm_atomic_commit(f, err);
    free(f);
    return rc;
}

/* ------------------------------------------------------------ load */

typedef struct Src {
    const uint8_t *p;
    size_t len, off;
} Src;

static bool take(Src *s, size_t n, const uint8_t **out)
{
    if (n > s->len - s->off)
        return false;
    *out = s->p + s->off;
    s->off += n;
    return true;
}

static bool get_le(Src *s, int bytes, uint64_t *v)
{
    const uint8_t *b;
    if (!take(s, (size_t)bytes, &b))
        return false;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return true;
}

/* Walk the structure of buf (everything but the trailing CRC). With
 * c == NULL it only validates; with c it also fills in the tensors.
 * Returns NULL or a description of the problem, with *at its offset. */
static const char *walk(Src *s, VlmCkpt *c, size_t *at)
{
    uint64_t v, n_tensors;
    s->off = 12;   /* past magic and version, checked by the caller */
    *at = s->off;
    if (!get_le(s, 8, &v))
        return "truncated model hash";
    if (c)
        c->model_hash = v;
    *at = s->off;
    if (!get_le(s, 4, &n_tensors))
        return "truncated tensor count";
    if (n_tensors > VLM_CKPT_MAX_TENSORS)
        return "too many tensors";
    if (c)
        c->n_tensors = (int)n_tensors;
    for (uint64_t i = 0; i < n_tensors; i++) {
        VlmCkptTensor *t = c ? &c->t[i] : NULL;
        const uint8_t *name;
        uint64_t len, rank;
        *at = s->off;
        if (!get_le(s, 2, &len))
            return "truncated tensor name length";
        if (len == 0 || len >= sizeof t->name)
            return "bad tensor name length";
        if (!take(s, len, &name))
            return "truncated tensor name";
        if (memchr(name, 0, len))
            return "NUL byte in a tensor name";
        *at = s->off;
        if (!get_le(s, 4, &rank))
            return "truncated tensor rank";
        if (rank > 4)
            return "tensor rank over 4";
        uint64_t count = 1;
        int64_t dims[4];
        for (uint64_t k = 0; k < rank; k++) {
            *at = s->off;
            if (!get_le(s, 8, &v))
                return "truncated tensor dimension";
            if (v > (uint64_t)INT64_MAX)
                return "negative tensor dimension";
            dims[k] = (int64_t)v;
            /* bounded by the bytes left, so the product cannot overflow */
            if (v && count > (s->len - s->off) / 4 / v + 1)
                return "tensor larger than the file";
            count *= v;
        }
        const uint8_t *data;
        *at = s->off;
        if (count > (s->len - s->off) / 4 || !take(s, (size_t)count * 4, &data))
            return "tensor data runs past the end of the file";
        if (t) {
            memcpy(t->name, name, len);
            t->name[len] = 0;
            t->rank = (int)rank;
            memcpy(t->dims, dims, sizeof(int64_t) * rank);
            t->count = (size_t)count;
            t->data = vlm_xmalloc((size_t)count * 4 + 1);
            for (size_t j = 0; j < count; j++) {
                uint32_t u = (uint32_t)data[4 * j] | (uint32_t)data[4 * j + 1] << 8 |
                             (uint32_t)data[4 * j + 2] << 16 |
                             (uint32_t)data[4 * j + 3] << 24;
                memcpy(&t->data[j], &u, 4);
            }
        }
    }
    uint64_t meta_len;
    const uint8_t *meta;
    *at = s->off;
    if (!get_le(s, 8, &meta_len))
        return "truncated metadata length";
    if (meta_len > s->len - s->off || !take(s, (size_t)meta_len, &meta))
        return "metadata runs past the end of the file";
    if (c && meta_len) {
        c->meta = vlm_xmalloc((size_t)meta_len);
        memcpy(c->meta, meta, (size_t)meta_len);
        c->meta_len = (size_t)meta_len;
    }
    *at = s->off;
    if (s->off != s->len)
        return "trailing data after the metadata";
    return NULL;
}

int vlm_ckpt_load(const char *path, uint64_t expected_hash, VlmCkpt *c,
                  VlmErr *err)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) {
        vlm_err_set(err, "%s: cannot open checkpoint: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        vlm_err_set(err, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = vlm_xmalloc(size ? size : 1);
    size_t got = fread(buf, 1, size, f);
    int extra = fgetc(f);
    fclose(f);
    int rc = -1;
    if (got != size || extra != EOF) {
        vlm_err_set(err, "%s: checkpoint changed while being read", path);
        goto done;
    }
    if (size < 8 || memcmp(buf, CKPT_MAGIC, 8)) {
        vlm_err_set(err, "%s: not a vlm checkpoint (bad magic at byte offset 0)", path);
        goto done;
    }
    uint32_t version = size >= 12 ? (uint32_t)buf[8] | (uint32_t)buf[9] << 8 |
                                    (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24
                                  : 0;
    if (size < 12 + 4) {
        vlm_err_set(err, "%s: checkpoint truncated (%zu bytes)", path, size);
        goto done;
    }
    if (version != CKPT_VERSION) {
        vlm_err_set(err, "%s: checkpoint format version %u at byte offset 8 is not supported (this build reads version %u)",
                    path, version, CKPT_VERSION);
        goto done;
    }
    Src s = {buf, size - 4, 0};
    size_t at;
    const char *why = walk(&s, NULL, &at);
    if (why) {
        vlm_err_set(err, "%s: corrupt checkpoint at byte offset %zu: %s", path, at, why);
        goto done;
    }
    uint32_t want = (uint32_t)buf[size - 4] | (uint32_t)buf[size - 3] << 8 |
                    (uint32_t)buf[size - 2] << 16 | (uint32_t)buf[size - 1] << 24;
    uint32_t have = vlm_crc32(0, buf, size - 4);
    if (want != have) {
        vlm_err_set(err, "%s: corrupt checkpoint: CRC32 mismatch (stored %08x, computed %08x)",
                    path, want, have);
        goto done;
    }
    uint64_t hash = 0;
    for (int i = 0; i < 8; i++)
        hash |= (uint64_t)buf[12 + i] << (8 * i);
    if (expected_hash != 0 && hash != expected_hash) {
        vlm_err_set(err, "%s: checkpoint is for a different model (hash %016llx, expected %016llx)",
                    path, (unsigned long long)hash, (unsigned long long)expected_hash);
        goto done;
    }
    walk(&s, c, &at);
    rc = 0;
done:
    free(buf);
    return rc;
}

void vlm_ckpt_free(VlmCkpt *c)
{
    for (int i = 0; i < c->n_tensors && i < VLM_CKPT_MAX_TENSORS; i++) {
        free(c->t[i].data);
        c->t[i].data = NULL;
    }
    free(c->meta);
    c->meta = NULL;
    c->meta_len = 0;
    c->n_tensors = 0;
}
