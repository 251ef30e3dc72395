/* test_checkpoint.c — checkpoints: bit-exact round trip, every byte flip
 * and every truncation rejected, appended garbage and a wrong model hash
 * rejected, and a failure injected at every step of a save leaves the
 * previous checkpoint intact with no temp files behind. */
#include "vlm.h"
#include "tmpdir.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH 0x0123456789abcdefULL

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* A small checkpoint with awkward values: -0, a denormal, NaN with a
 * payload, a scalar and an empty tensor. */
typedef struct Fixture {
    VlmCkpt c;
    float w[12], b[4], s[1], big[50000];
    uint8_t meta[37];
} Fixture;

static Fixture *fixture(bool with_big, float shift)
{
    Fixture *f = calloc(1, sizeof *f);
    for (int i = 0; i < 12; i++)
        f->w[i] = (float)i * 0.37f - 2 + shift;
    f->w[3] = -0.0f;
    f->w[4] = 1e-42f;
    uint32_t nanbits = 0x7fc01234u;
    memcpy(&f->w[5], &nanbits, 4);
    for (int i = 0; i < 4; i++)
        f->b[i] = 1.0f / (float)(i + 3) + shift;
    f->s[0] = 3.25f;
    for (size_t i = 0; i < 50000; i++)
        f->big[i] = sinf((float)i) + shift;
    for (int i = 0; i < 37; i++)
        f->meta[i] = (uint8_t)(i * 7 + (int)shift);
    VlmCkpt *c = &f->c;
    c->model_hash = HASH;
    c->t[0] = (VlmCkptTensor){"enc.W", 2, {3, 4}, f->w, 12};
    c->t[1] = (VlmCkptTensor){"enc.b", 1, {4}, f->b, 4};
    c->t[2] = (VlmCkptTensor){"temperature", 0, {0}, f->s, 1};
    c->t[3] = (VlmCkptTensor){"empty", 1, {0}, f->s, 0};
    c->n_tensors = 4;
    if (with_big)
        c->t[c->n_tensors++] = (VlmCkptTensor){"dec.W", 3, {10, 50, 100}, f->big, 50000};
    c->meta = f->meta;
    c->meta_len = sizeof f->meta;
    return f;
}

static bool same_ckpt(const VlmCkpt *a, const VlmCkpt *b)
{
    if (a->model_hash != b->model_hash || a->n_tensors != b->n_tensors ||
        a->meta_len != b->meta_len || memcmp(a->meta, b->meta, a->meta_len))
        return false;
    for (int i = 0; i < a->n_tensors; i++) {
        const VlmCkptTensor *x = &a->t[i], *y = &b->t[i];
        if (strcmp(x->name, y->name) || x->rank != y->rank || x->count != y->count ||
            memcmp(x->dims, y->dims, sizeof(int64_t) * (size_t)x->rank) ||
            memcmp(x->data, y->data, x->count * sizeof(float)))
            return false;
    }
    return true;
}

static void test_crc(void)
{
    CU_ASSERT(vlm_crc32(0, "123456789", 9) == 0xCBF43926u);
    CU_ASSERT(vlm_crc32(vlm_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
}

static void test_roundtrip(void)
{
    Fixture *f = fixture(true, 0);
    VlmErr e = {{0}};
    CU_ASSERT_FATAL(vlm_ckpt_save(tpath("rt.ckpt"), &f->c, &e) == 0);
    VlmCkpt *l = malloc(sizeof *l);
    if (vlm_ckpt_load(tpath("rt.ckpt"), HASH, l, &e) != 0)
        fprintf(stderr, "\n  %s\n", e.msg);
    CU_ASSERT(same_ckpt(&f->c, l));
    CU_ASSERT(l->t[1].dims[0] == 4 && l->t[4].dims[2] == 100);
    vlm_ckpt_free(l);
    /* no metadata, no tensors */
    f->c.n_tensors = 0;
    f->c.meta_len = 0;
    CU_ASSERT_FATAL(vlm_ckpt_save(tpath("empty.ckpt"), &f->c, &e) == 0);
    CU_ASSERT(vlm_ckpt_load(tpath("empty.ckpt"), HASH, l, &e) == 0);
    CU_ASSERT(l->n_tensors == 0 && l->meta_len == 0 && l->meta == NULL);
    vlm_ckpt_free(l);
    free(l);
    free(f);
}

static void expect_reject(const char *path, const char *want, uint64_t hash)
{
    VlmCkpt *l = malloc(sizeof *l);
    VlmErr e = {{0}};
    int rc = vlm_ckpt_load(path, hash, l, &e);
    CU_ASSERT(rc == -1);
    CU_ASSERT(strstr(e.msg, path) != NULL);
    if (want && !strstr(e.msg, want)) {
        fprintf(stderr, "\n  expected '%s' in: %s\n", want, e.msg);
        CU_FAIL("error message");
    }
    if (rc == 0)
        vlm_ckpt_free(l);
    free(l);
}

/* Store the CRC32 of buf[0, n - 4) in its last 4 bytes, so a structural
 * edit is judged by the walk and not caught by the checksum. */
static void fix_crc(uint8_t *buf, size_t n)
{
    uint32_t crc = vlm_crc32(0, buf, n - 4);
    for (int i = 0; i < 4; i++)
        buf[n - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
}

static void test_corruption(void)
{
    Fixture *f = fixture(false, 0);
    VlmErr e = {{0}};
    CU_ASSERT_FATAL(vlm_ckpt_save(tpath("small.ckpt"), &f->c, &e) == 0);
    size_t n = 0;
    uint8_t *good = slurp(tpath("small.ckpt"), &n);
    CU_ASSERT_FATAL(good != NULL);
    uint8_t *bad = malloc(2 * n + 16);
    const char *p = tpath("bad.ckpt");
    /* every single-byte flip, three ways per byte */
    static const uint8_t flips[3] = {0x01, 0x80, 0xff};
    int accepted = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            memcpy(bad, good, n);
            bad[i] ^= flips[k];
            put_file(p, bad, n);
            VlmCkpt *l = malloc(sizeof *l);
            if (vlm_ckpt_load(p, HASH, l, &e) == 0) {
                accepted++;
                vlm_ckpt_free(l);
            } else if (!strstr(e.msg, p)) {
                accepted++;
            }
            free(l);
        }
    CU_ASSERT(accepted == 0);
    /* every truncation */
    accepted = 0;
    for (size_t len = 0; len < n; len++) {
        put_file(p, good, len);
        VlmCkpt *l = malloc(sizeof *l);
        if (vlm_ckpt_load(p, HASH, l, &e) == 0) {
            accepted++;
            vlm_ckpt_free(l);
        }
        free(l);
    }
    CU_ASSERT(accepted == 0);
    /* appended garbage: one byte, a few, a second copy */
    memcpy(bad, good, n);
    bad[n] = 0;
    put_file(p, bad, n + 1);
    expect_reject(p, "trailing data", HASH);
    memcpy(bad + n, "garbage!", 8);
    put_file(p, bad, n + 8);
    expect_reject(p, NULL, HASH);
    memcpy(bad + n, good, n);
    put_file(p, bad, 2 * n);
    expect_reject(p, NULL, HASH);
    /* named failures */
    memcpy(bad, good, n);
    bad[0] = 'X';
    put_file(p, bad, n);
    expect_reject(p, "bad magic", HASH);
    memcpy(bad, good, n);
    bad[8] = 2;
    put_file(p, bad, n);
    expect_reject(p, "version 2", HASH);
    memcpy(bad, good, n);
    bad[n - 20] ^= 0x10;   /* inside the metadata */
    put_file(p, bad, n);
    expect_reject(p, "CRC32 mismatch", HASH);
    memcpy(bad, good, n);
    bad[24] = 0xff;        /* first tensor's name length */
    put_file(p, bad, n);
    expect_reject(p, "byte offset 24", HASH);
    put_file(p, "", 0);
    expect_reject(p, "bad magic", HASH);
    expect_reject(tpath("missing.ckpt"), "cannot open", HASH);
    /* a lying tensor shape (10^12 elements) with a valid CRC */
    memcpy(bad, good, n);
    size_t dim_off = 8 + 4 + 8 + 4 + 2 + 5 + 4;   /* enc.W dims[0] */
    uint64_t lie = 1000000000000ULL;
    for (int i = 0; i < 8; i++)
        bad[dim_off + (size_t)i] = (uint8_t)(lie >> (8 * i));
    uint32_t crc = vlm_crc32(0, bad, n - 4);
    for (int i = 0; i < 4; i++)
        bad[n - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    put_file(p, bad, n);
    expect_reject(p, "larger than the file", HASH);
    /* a name length of exactly 64 (the name buffer holds 63 and a NUL),
     * bytes 24-25 little-endian, with a valid CRC */
    memcpy(bad, good, n);
    bad[24] = 64;
    bad[25] = 0;
    fix_crc(bad, n);
    put_file(p, bad, n);
    expect_reject(p, "corrupt checkpoint at byte offset 24: bad tensor name length", HASH);
    /* rank 5 (enc.W's rank field, after its 5-byte name), valid CRC */
    memcpy(bad, good, n);
    size_t rank_off = 8 + 4 + 8 + 4 + 2 + 5;
    CU_ASSERT(bad[rank_off] == 2);
    bad[rank_off] = 5;
    fix_crc(bad, n);
    put_file(p, bad, n);
    expect_reject(p, "corrupt checkpoint at byte offset 31: tensor rank over 4", HASH);
    /* wrong model */
    expect_reject(tpath("small.ckpt"),
                  "checkpoint is for a different model (hash 0123456789abcdef, expected 00000000deadbeef)",
                  0xdeadbeefULL);
    free(bad);
    free(good);
    free(f);
}

/* A checkpoint file written by hand: one tensor named by name_len bytes
 * of 'a', of shape dims[0, rank), with count zero floats, no metadata. */
static size_t craft(uint8_t *buf, size_t name_len, int rank, const uint64_t *dims,
                    size_t count)
{
    size_t k = 0;
    memcpy(buf, "VLMCKPT", 8);
    k = 8;
#define LE(v, bytes)                                        \
    for (int i_ = 0; i_ < (bytes); i_++)                    \
        buf[k++] = (uint8_t)((uint64_t)(v) >> (8 * i_));
    LE(1, 4);          /* version */
    LE(HASH, 8);
    LE(1, 4);          /* one tensor */
    LE(name_len, 2);
    memset(buf + k, 'a', name_len);
    k += name_len;
    LE(rank, 4);
    for (int d = 0; d < rank; d++)
        LE(dims[d], 8);
    memset(buf + k, 0, 4 * count);
    k += 4 * count;
    LE(0, 8);          /* metadata length */
#undef LE
    k += 4;
    fix_crc(buf, k);
    return k;
}

/* Bounds of the format: the longest name (63 bytes), one byte more, an
 * empty tensor whose first dimension alone exceeds the file. */
static void test_bounds(void)
{
    Fixture *f = fixture(false, 0);
    VlmErr e = {{0}};
    VlmCkpt *l = malloc(sizeof *l);
    const char *p = tpath("bounds.ckpt");
    /* a 63-character name round-trips; a 64-character one is refused */
    memset(f->c.t[1].name, 'n', 63);
    f->c.t[1].name[63] = 0;
    CU_ASSERT_FATAL(vlm_ckpt_save(p, &f->c, &e) == 0);
    CU_ASSERT_FATAL(vlm_ckpt_load(p, HASH, l, &e) == 0);
    CU_ASSERT(same_ckpt(&f->c, l));
    CU_ASSERT(strlen(l->t[1].name) == 63);
    vlm_ckpt_free(l);
    memset(f->c.t[1].name, 'n', 64);
    CU_ASSERT(vlm_ckpt_save(tpath("long.ckpt"), &f->c, &e) == -1);
    CU_ASSERT(strstr(e.msg, "tensor 1 has a bad name or rank") != NULL);
    /* by hand: a 63-byte name loads, a 64-byte one is a bad length */
    uint8_t buf[256];
    uint64_t two = 2;
    size_t n = craft(buf, 63, 1, &two, 2);
    put_file(p, buf, n);
    if (vlm_ckpt_load(p, HASH, l, &e) != 0) {
        fprintf(stderr, "\n  %s\n", e.msg);
        CU_FAIL("63-byte name");
    } else {
        CU_ASSERT(strlen(l->t[0].name) == 63 && l->t[0].count == 2);
        vlm_ckpt_free(l);
    }
    n = craft(buf, 64, 1, &two, 2);
    put_file(p, buf, n);
    expect_reject(p, "corrupt checkpoint at byte offset 24: bad tensor name length", HASH);
    /* an empty [100000, 0] tensor: 4 * 100000 bytes exceed the file, but it
     * holds no elements */
    f->c.t[1] = (VlmCkptTensor){"void", 2, {100000, 0}, f->s, 0};
    CU_ASSERT_FATAL(vlm_ckpt_save(p, &f->c, &e) == 0);
    if (vlm_ckpt_load(p, HASH, l, &e) != 0) {
        fprintf(stderr, "\n  %s\n", e.msg);
        CU_FAIL("empty [100000, 0] tensor");
    } else {
        CU_ASSERT(same_ckpt(&f->c, l));
        CU_ASSERT(l->t[1].rank == 2 && l->t[1].dims[0] == 100000 &&
                  l->t[1].dims[1] == 0 && l->t[1].count == 0);
        vlm_ckpt_free(l);
    }
    free(l);
    free(f);
}

/* Entries of dir other than keep. */
static int stray_files(const char *keep)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, keep)) {
            fprintf(stderr, "\n  stray file: %s\n", de->d_name);
            n++;
        }
    closedir(d);
    return n;
}

static void test_fail_injection(void)
{
    /* a fresh directory so stray files are easy to see */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", dir);
    CU_ASSERT_FATAL(system(cmd) == 0);
    Fixture *a = fixture(true, 0), *b = fixture(true, 1);
    VlmErr e = {{0}};
    const char *p = tpath("model.ckpt");
    CU_ASSERT_FATAL(vlm_ckpt_save(p, &a->c, &e) == 0);
    long before = vlm_io_ops();
    CU_ASSERT_FATAL(vlm_ckpt_save(tpath("count.ckpt"), &b->c, &e) == 0);
    long n_ops = vlm_io_ops() - before;
    unlink(tpath("count.ckpt"));
    CU_ASSERT(n_ops >= 7);   /* create, >= 3 writes, fsync, close, rename, dir */
    VlmCkpt *l = malloc(sizeof *l);
    int kept = 0, synced_late = 0;
    long k;
    for (k = 0; k <= n_ops; k++) {
        vlm_io_fail_after(k);
        int rc = vlm_ckpt_save(p, &b->c, &e);
        vlm_io_fail_after(-1);
        if (rc == 0)
            break;
        CU_ASSERT(strstr(e.msg, p) != NULL);
        bool late = strstr(e.msg, "written, but") != NULL;
        CU_ASSERT(stray_files("model.ckpt") == 0);
        CU_ASSERT_FATAL(vlm_ckpt_load(p, HASH, l, &e) == 0);
        if (late) {
            /* only the directory sync after the rename failed: the new
             * checkpoint is complete; put the old one back */
            CU_ASSERT(k == n_ops - 1);
            CU_ASSERT(same_ckpt(&b->c, l));
            synced_late++;
            CU_ASSERT_FATAL(vlm_ckpt_save(p, &a->c, &e) == 0);
        } else {
            CU_ASSERT(same_ckpt(&a->c, l));
            kept++;
        }
        vlm_ckpt_free(l);
    }
    CU_ASSERT(k == n_ops);     /* every step failed once, then it succeeded */
    CU_ASSERT(kept == n_ops - 1 && synced_late == 1);
    CU_ASSERT_FATAL(vlm_ckpt_load(p, HASH, l, &e) == 0);
    CU_ASSERT(same_ckpt(&b->c, l));
    vlm_ckpt_free(l);
    CU_ASSERT(stray_files("model.ckpt") == 0);
    free(l);
    free(a);
    free(b);
}

static void test_unwritable(void)
{
    Fixture *f = fixture(false, 0);
    VlmErr e = {{0}};
    CU_ASSERT(vlm_ckpt_save("/proc/vlm-test.ckpt", &f->c, &e) == -1);
    CU_ASSERT(strstr(e.msg, "/proc/vlm-test.ckpt: cannot create a temporary file") != NULL);
    CU_ASSERT(vlm_ckpt_save("/nonexistent-vlm-dir/x.ckpt", &f->c, &e) == -1);
    CU_ASSERT(strstr(e.msg, "No such file") != NULL);
    put_file(tpath("afile"), "x", 1);
    char p[300];
    snprintf(p, sizeof p, "%s/x.ckpt", tpath("afile"));
    CU_ASSERT(vlm_ckpt_save(p, &f->c, &e) == -1);
    CU_ASSERT(vlm_ckpt_save(dir, &f->c, &e) == -1);   /* a directory as target */
    if (geteuid() != 0) {
        const char *ro = tpath("ro");
        mkdir(ro, 0555);
        snprintf(p, sizeof p, "%s/x.ckpt", ro);
        CU_ASSERT(vlm_ckpt_save(p, &f->c, &e) == -1);
        CU_ASSERT(strstr(e.msg, "Permission denied") != NULL);
        chmod(ro, 0755);
    }
    free(f);
}

static int suite_init(void) { return tmpdir_make("/tmp/vlm-ckpt-XXXXXX"); }
static int suite_clean(void) { return tmpdir_remove(); }

void vlm_test_checkpoint(void)
{
    CU_pSuite s = CU_add_suite("checkpoint", suite_init, suite_clean);
    CU_add_test(s, "crc32 check value", test_crc);
    CU_add_test(s, "round trip bit-exact", test_roundtrip);
    CU_add_test(s, "flips, truncations, garbage, wrong hash", test_corruption);
    CU_add_test(s, "name length 63/64, empty tensor past the file size", test_bounds);
    CU_add_test(s, "failure at every save step keeps the old file", test_fail_injection);
    CU_add_test(s, "unwritable destinations", test_unwritable);
}
