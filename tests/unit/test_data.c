/* test_data.c — data readers (IDX, CSV, NPY), writers and the batcher:
 * round trips, the real Fashion-MNIST file, and hostile files (truncated,
 * lying headers, wrong magic, gibberish) that must fail with a message. */
#include "vlm.h"
#include "tmpdir.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static void put_text(const char *path, const char *s) { put_file(path, s, strlen(s)); }

static void put_gz(const char *path, const void *p, size_t n)
{
    gzFile g = gzopen(path, "wb");
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT(gzwrite(g, p, (unsigned)n) == (int)n);
    gzclose(g);
}

/* The call must fail with a message naming the path and containing want. */
static void expect_fail(int rc, const VlmErr *e, const char *path, const char *want)
{
    CU_ASSERT(rc == -1);
    CU_ASSERT(strstr(e->msg, path) != NULL);
    if (want && !strstr(e->msg, want)) {
        fprintf(stderr, "\n  expected '%s' in: %s\n", want, e->msg);
        CU_FAIL("error message");
    }
}

static int read_fail(const char *path, VlmFormat fmt, size_t max, const char *want)
{
    VlmData d;
    VlmErr e = {{0}};
    int rc = vlm_data_read(path, fmt, max, &d, &e);
    expect_fail(rc, &e, path, want);
    if (rc == 0)
        vlm_data_free(&d);
    return rc;
}

/* ------------------------------------------------------------ IDX */

static size_t make_idx(uint8_t *buf, int type, int rank, const uint32_t *dims,
                       const uint8_t *data, size_t n)
{
    size_t k = 0;
    buf[k++] = 0;
    buf[k++] = 0;
    buf[k++] = (uint8_t)type;
    buf[k++] = (uint8_t)rank;
    for (int i = 0; i < rank; i++) {
        buf[k++] = (uint8_t)(dims[i] >> 24);
        buf[k++] = (uint8_t)(dims[i] >> 16);
        buf[k++] = (uint8_t)(dims[i] >> 8);
        buf[k++] = (uint8_t)dims[i];
    }
    memcpy(buf + k, data, n);
    return k + n;
}

static void test_idx_roundtrip(void)
{
    uint8_t pix[3 * 2 * 3], lab[3] = {7, 0, 9}, buf[256];
    for (int i = 0; i < 18; i++)
        pix[i] = (uint8_t)(i * 15);
    uint32_t dims[3] = {3, 2, 3};
    size_t n = make_idx(buf, 0x08, 3, dims, pix, sizeof pix);
    put_file(tpath("img.idx"), buf, n);
    put_gz(tpath("img.idx.gz"), buf, n);
    uint32_t ldim = 3;
    size_t ln = make_idx(buf, 0x08, 1, &ldim, lab, 3);
    put_file(tpath("lab.idx"), buf, ln);
    put_gz(tpath("lab.idx.gz"), buf, ln);
    const char *img[2] = {tpath("img.idx"), tpath("img.idx.gz")};
    const char *labs[2] = {tpath("lab.idx"), tpath("lab.idx.gz")};
    for (int g = 0; g < 2; g++) {
        VlmData d;
        VlmErr e = {{0}};
        CU_ASSERT_FATAL(vlm_data_read(img[g], VLM_FMT_AUTO, 0, &d, &e) == 0);
        CU_ASSERT(d.n == 3 && d.d == 6 && d.rank == 2);
        CU_ASSERT(d.shape[0] == 2 && d.shape[1] == 3);
        CU_ASSERT(d.mask == NULL);
        CU_ASSERT_FATAL(d.x8 != NULL && d.x == NULL);   /* compact */
        float rows[18], part[2 * 4];
        vlm_data_rows(&d, 0, 3, 0, 6, rows);
        for (int i = 0; i < 18; i++)
            CU_ASSERT(rows[i] == pix[i] / 255.0f);
        vlm_data_rows(&d, 1, 2, 1, 4, part);   /* a window of rows and columns */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                CU_ASSERT(part[i * 4 + j] == pix[(1 + i) * 6 + 1 + j] / 255.0f);
        CU_ASSERT(vlm_data_read_labels(labs[g], &d, &e) == 0);
        CU_ASSERT(d.labels && d.labels[0] == 7 && d.labels[1] == 0 && d.labels[2] == 9);
        vlm_data_free(&d);
    }
    /* labels that do not match the data */
    VlmData d;
    VlmErr e = {{0}};
    CU_ASSERT_FATAL(vlm_data_read(img[0], VLM_FMT_IDX, 0, &d, &e) == 0);
    ldim = 4;
    uint8_t lab4[4] = {1, 2, 3, 4};
    ln = make_idx(buf, 0x08, 1, &ldim, lab4, 4);
    put_file(tpath("lab4.idx"), buf, ln);
    expect_fail(vlm_data_read_labels(tpath("lab4.idx"), &d, &e), &e, tpath("lab4.idx"),
                "4 labels for 3");
    expect_fail(vlm_data_read_labels(img[0], &d, &e), &e, img[0], "rank 3");
    ldim = 2;   /* fewer labels than items fails too */
    ln = make_idx(buf, 0x08, 1, &ldim, lab4, 2);
    put_file(tpath("lab2.idx"), buf, ln);
    expect_fail(vlm_data_read_labels(tpath("lab2.idx"), &d, &e), &e, tpath("lab2.idx"),
                "2 labels for 3 data items");
    CU_ASSERT(d.labels == NULL);
    vlm_data_free(&d);
}

static void test_idx_fashion(void)
{
    VlmData d;
    VlmErr e = {{0}};
    const char *p = FMNIST "train-images-idx3-ubyte.gz";
    if (vlm_data_read(p, VLM_FMT_AUTO, 0, &d, &e) != 0) {
        fprintf(stderr, "\n  %s\n", e.msg);
        CU_FAIL_FATAL("cannot read Fashion-MNIST");
    }
    CU_ASSERT(d.n == 60000 && d.d == 784 && d.rank == 2 && d.shape[0] == 28 &&
              d.shape[1] == 28);
    float lo = 1, hi = 0;
    double sum = 0;
    vlm_data_floats(&d);
    for (size_t i = 0; i < d.n * d.d; i++) {
        lo = fminf(lo, d.x[i]);
        hi = fmaxf(hi, d.x[i]);
        sum += d.x[i];
    }
    CU_ASSERT(lo == 0.0f && hi == 1.0f);
    CU_ASSERT(sum / (double)(d.n * d.d) > 0.2 && sum / (double)(d.n * d.d) < 0.4);
    CU_ASSERT_FATAL(vlm_data_read_labels(FMNIST "train-labels-idx1-ubyte.gz", &d, &e) == 0);
    int count[10] = {0};
    bool ok = true;
    for (size_t i = 0; i < d.n; i++) {
        ok &= d.labels[i] >= 0 && d.labels[i] <= 9;
        if (d.labels[i] >= 0 && d.labels[i] <= 9)
            count[d.labels[i]]++;
    }
    CU_ASSERT(ok);
    for (int k = 0; k < 10; k++)
        CU_ASSERT(count[k] == 6000);   /* Fashion-MNIST is balanced */
    vlm_data_free(&d);
}

static void test_idx_hostile(void)
{
    uint8_t pix[24] = {0}, buf[256];
    uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, 0x08, 3, dims, pix, sizeof pix);
    /* every truncation, plain and gzip */
    for (size_t len = 0; len < n; len++) {
        put_file(tpath("trunc.idx"), buf, len);
        read_fail(tpath("trunc.idx"), VLM_FMT_IDX, 0, NULL);
        put_gz(tpath("trunc.idx.gz"), buf, len);
        read_fail(tpath("trunc.idx.gz"), VLM_FMT_IDX, 0, NULL);
    }
    put_file(tpath("t.idx"), buf, n - 5);
    read_fail(tpath("t.idx"), VLM_FMT_IDX, 0, "truncated");
    /* a gzip stream cut short */
    put_gz(tpath("full.idx.gz"), buf, n);
    FILE *f = fopen(tpath("full.idx.gz"), "rb");
    uint8_t gz[512];
    size_t gn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    put_file(tpath("cut.idx.gz"), gz, gn - 10);
    read_fail(tpath("cut.idx.gz"), VLM_FMT_AUTO, 0, NULL);
    /* trailing data */
    uint8_t more[300];
    memcpy(more, buf, n);
    more[n] = 1;
    put_file(tpath("trail.idx"), more, n + 1);
    read_fail(tpath("trail.idx"), VLM_FMT_IDX, 0, "trailing data at byte offset 40");
    /* a header claiming 10^12 elements, plain and gzip, default cap and huge cap */
    uint32_t big[3] = {1000000, 1000, 1000};
    size_t bn = make_idx(buf, 0x08, 3, big, pix, sizeof pix);
    put_file(tpath("big.idx"), buf, bn);
    put_gz(tpath("big.idx.gz"), buf, bn);
    read_fail(tpath("big.idx"), VLM_FMT_IDX, 0, "over the limit");
    read_fail(tpath("big.idx.gz"), VLM_FMT_IDX, 0, "over the limit");
    read_fail(tpath("big.idx"), VLM_FMT_IDX, SIZE_MAX, "truncated");
    uint32_t big2[3] = {1000, 1000, 1000};   /* 10^9: under a huge cap */
    bn = make_idx(buf, 0x08, 3, big2, pix, sizeof pix);
    put_gz(tpath("big2.idx.gz"), buf, bn);
    read_fail(tpath("big2.idx.gz"), VLM_FMT_IDX, SIZE_MAX, "truncated");
    /* wrong magic, wrong type, gibberish */
    n = make_idx(buf, 0x08, 3, dims, pix, sizeof pix);
    buf[0] = 0x12;
    put_file(tpath("magic.idx"), buf, n);
    read_fail(tpath("magic.idx"), VLM_FMT_IDX, 0, "bad magic");
    buf[0] = 0;
    buf[2] = 0x0D;
    put_file(tpath("float.idx"), buf, n);
    read_fail(tpath("float.idx"), VLM_FMT_AUTO, 0, "float32");
    buf[2] = 0x08;
    buf[3] = 9;
    put_file(tpath("rank.idx"), buf, n);
    read_fail(tpath("rank.idx"), VLM_FMT_IDX, 0, "rank");
    /* rank 5, one past the largest: the header alone (no dimensions) */
    buf[3] = 5;
    put_file(tpath("rank5.idx"), buf, 4);
    read_fail(tpath("rank5.idx"), VLM_FMT_IDX, 0,
              "IDX rank 5 at byte offset 3 is not supported (1 to 4)");
    uint8_t junk[1000];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    put_file(tpath("junk.idx"), junk, sizeof junk);
    read_fail(tpath("junk.idx"), VLM_FMT_IDX, 0, NULL);
    put_file(tpath("junk.bin"), junk, sizeof junk);
    read_fail(tpath("junk.bin"), VLM_FMT_AUTO, 0, NULL);
    read_fail(tpath("does-not-exist.idx"), VLM_FMT_AUTO, 0, "cannot open");
    put_file(tpath("empty.idx"), "", 0);
    read_fail(tpath("empty.idx"), VLM_FMT_AUTO, 0, NULL);
}

/* ------------------------------------------------------------ CSV */

static int read_ok(const char *path, VlmFormat fmt, VlmData *d)
{
    VlmErr e = {{0}};
    int rc = vlm_data_read(path, fmt, 0, d, &e);
    if (rc)
        fprintf(stderr, "\n  %s\n", e.msg);
    return rc;
}

static void test_csv_good(void)
{
    VlmData d;
    put_text(tpath("h.csv"), "a,b, \"c\"\n1,2,3\n4.5,-5e-1,6\n");
    CU_ASSERT_FATAL(read_ok(tpath("h.csv"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 2 && d.d == 3 && d.mask == NULL);
    CU_ASSERT(d.colnames && !strcmp(d.colnames[0], "a") && !strcmp(d.colnames[2], "c"));
    CU_ASSERT(d.x[3] == 4.5f && d.x[4] == -0.5f && d.x[5] == 6.0f);
    vlm_data_free(&d);

    /* no header, CRLF, no trailing newline */
    put_text(tpath("n.csv"), "1,2\r\n3,4\r\n5,6");
    CU_ASSERT_FATAL(read_ok(tpath("n.csv"), VLM_FMT_CSV, &d) == 0);
    CU_ASSERT(d.n == 3 && d.d == 2 && d.colnames == NULL);
    CU_ASSERT(d.x[0] == 1 && d.x[5] == 6);
    vlm_data_free(&d);

    /* missing: empty, NA, NaN; blank lines and comments skipped */
    put_text(tpath("m.csv"), "# made by hand\nx,y,z\n1,,3\n\nNA,nan,6\r\n7,8,NaN\n");
    CU_ASSERT_FATAL(read_ok(tpath("m.csv"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT_FATAL(d.n == 3 && d.d == 3 && d.mask != NULL);
    float want_m[9] = {1, 0, 1, 0, 0, 1, 1, 1, 0};
    float want_x[9] = {1, 0, 3, 0, 0, 6, 7, 8, 0};
    for (int i = 0; i < 9; i++) {
        CU_ASSERT(d.mask[i] == want_m[i]);
        CU_ASSERT(d.x[i] == want_x[i]);
    }
    vlm_data_free(&d);

    /* gzip CSV, one column */
    const char *s = "v\n0.25\n0.5\n";
    put_gz(tpath("g.csv.gz"), s, strlen(s));
    CU_ASSERT_FATAL(read_ok(tpath("g.csv.gz"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 2 && d.d == 1 && d.x[1] == 0.5f);
    vlm_data_free(&d);
}

static void test_csv_bad(void)
{
    put_text(tpath("ragged.csv"), "1,2,3\n4,5,6\n7,8\n");
    read_fail(tpath("ragged.csv"), VLM_FMT_CSV, 0, "ragged.csv:3:4: row has 2 fields, expected 3");
    put_text(tpath("ragged2.csv"), "a,b\n1,2\n3,4,5\n");
    read_fail(tpath("ragged2.csv"), VLM_FMT_CSV, 0, "ragged2.csv:3:5: row has 3 fields, expected 2");
    put_text(tpath("word.csv"), "1,2\n3,abc\n");
    read_fail(tpath("word.csv"), VLM_FMT_CSV, 0, "word.csv:2:3: 'abc' is not a number");
    put_text(tpath("inf.csv"), "x,y\r\n1,2\r\n3, -inf\r\n");
    read_fail(tpath("inf.csv"), VLM_FMT_CSV, 0, "inf.csv:3:4: '-inf' is infinite");
    put_text(tpath("big.csv"), "1,2\n1e39,3\n");
    read_fail(tpath("big.csv"), VLM_FMT_CSV, 0, "big.csv:2:1: '1e39' is out of float range");
    put_text(tpath("hex.csv"), "1,0x1p3\n");
    read_fail(tpath("hex.csv"), VLM_FMT_CSV, 0, NULL);
    put_text(tpath("hdr.csv"), "a,b\n");
    read_fail(tpath("hdr.csv"), VLM_FMT_CSV, 0, "no data rows after the header");
    put_text(tpath("empty.csv"), "");
    read_fail(tpath("empty.csv"), VLM_FMT_AUTO, 0, "no data rows");
    put_text(tpath("cut.csv"), "1,2,3\n4,5,6\n7,");   /* truncated mid-row */
    read_fail(tpath("cut.csv"), VLM_FMT_CSV, 0, "cut.csv:3:");
    /* gibberish: binary noise read as CSV */
    uint8_t junk[600];
    uint32_t s = 99;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    put_file(tpath("junk.csv"), junk, sizeof junk);
    read_fail(tpath("junk.csv"), VLM_FMT_CSV, 0, "junk.csv:");
    /* too big for the cap */
    put_text(tpath("cap.csv"), "1,2,3\n4,5,6\n7,8,9\n");
    read_fail(tpath("cap.csv"), VLM_FMT_CSV, 16, "over the limit");
}

/* Numbers of any length parse; a first line of them is data, not a
 * header (a fixed 128-byte field buffer made it a header and dropped it). */
static void test_csv_long_numbers(void)
{
    char one[200], two[200], seven[200], csv[1024];
    snprintf(one, sizeof one, "1.%0150d", 0);          /* 1.000...0 */
    snprintf(two, sizeof two, "-2.5%0130d", 0);         /* -2.5000...0 */
    snprintf(seven, sizeof seven, "%0180d", 7);         /* 000...07 */
    snprintf(csv, sizeof csv, "%s,%s\n%s,4\n", one, two, seven);
    put_text(tpath("long.csv"), csv);
    VlmData d;
    CU_ASSERT_FATAL(read_ok(tpath("long.csv"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 2 && d.d == 2 && d.colnames == NULL);
    CU_ASSERT(d.x[0] == 1.0f && d.x[1] == -2.5f && d.x[2] == 7.0f && d.x[3] == 4.0f);
    vlm_data_free(&d);
    /* a long non-number is still one, quoted briefly */
    char word[300];
    memset(word, 'z', 299);
    word[299] = 0;
    snprintf(csv, sizeof csv, "1,2\n3,%s\n", word);
    put_text(tpath("longword.csv"), csv);
    read_fail(tpath("longword.csv"), VLM_FMT_CSV, 0, "longword.csv:2:3: 'zzzzzzzzzz");
    /* a header still is one */
    snprintf(csv, sizeof csv, "%s,b\n1,2\n", one);
    put_text(tpath("longhdr.csv"), csv);
    CU_ASSERT_FATAL(read_ok(tpath("longhdr.csv"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 1 && d.colnames != NULL);
    vlm_data_free(&d);
}

/* A label file of this text, read for the data d, must fail (expect_fail). */
static void labels_fail(VlmData *d, const char *name, const char *text, const char *want)
{
    VlmErr e = {{0}};
    put_text(tpath(name), text);
    expect_fail(vlm_data_read_labels(tpath(name), d, &e), &e, tpath(name), want);
}

/* Labels from a one-column CSV of integer class ids, a header allowed. */
static void test_labels_csv(void)
{
    VlmData d = {0};
    VlmErr e = {{0}};
    put_text(tpath("lab.csv"), "label\n3\n0\n\n# comment\n 7\r\n");
    CU_ASSERT_FATAL(vlm_data_read_labels(tpath("lab.csv"), &d, &e) == 0);
    CU_ASSERT(d.n == 3 && d.labels[0] == 3 && d.labels[1] == 0 && d.labels[2] == 7);
    vlm_data_free(&d);
    put_gz(tpath("lab.csv.gz"), "1\n2\n", 4);          /* no header, gzip */
    CU_ASSERT_FATAL(vlm_data_read_labels(tpath("lab.csv.gz"), &d, &e) == 0);
    CU_ASSERT(d.n == 2 && d.labels[1] == 2);
    vlm_data_free(&d);
    d.n = 5;   /* the count must match the data's */
    expect_fail(vlm_data_read_labels(tpath("lab.csv"), &d, &e), &e,
                tpath("lab.csv"), "3 labels for 5 data items");
    d.n = 0;
    labels_fail(&d, "neg.csv", "1\n-1\n",
                "neg.csv:2:1: '-1' is not a class id (an integer from 0 to 65535)");
    labels_fail(&d, "frac.csv", "y\n2.5\n", "frac.csv:2:1: '2.5' is not a class id");
    labels_fail(&d, "huge.csv", "70000\n", "is not a class id");
    labels_fail(&d, "over.csv", "0\n65536\n",
                "over.csv:2:1: '65536' is not a class id (an integer from 0 to 65535)");
    put_text(tpath("max.csv"), "65535\n0\n");   /* VLM_LABEL_MAX itself */
    CU_ASSERT_FATAL(vlm_data_read_labels(tpath("max.csv"), &d, &e) == 0);
    CU_ASSERT(d.n == 2 && d.labels[0] == 65535 && d.labels[1] == 0);
    vlm_data_free(&d);
    d = (VlmData){0};
    labels_fail(&d, "two.csv", "a,b\n1,2\n",
                "two.csv:1:1: the header has 2 fields; a label file has one column");
    labels_fail(&d, "nolab.csv", "label\n", "no labels");
    CU_ASSERT(d.labels == NULL);
}

/* ------------------------------------------------------------ NPY */

static size_t make_npy(uint8_t *buf, int major, const char *dict, const void *data,
                       size_t n)
{
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12;
    size_t hl = (pre + dl + 1 + 63) / 64 * 64 - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (uint8_t)hl;
        buf[9] = (uint8_t)(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            buf[8 + i] = (uint8_t)(hl >> (8 * i));
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hl - dl - 1);
    buf[pre + hl - 1] = '\n';
    memcpy(buf + pre + hl, data, n);
    return pre + hl + n;
}

static void test_npy_good(void)
{
    uint8_t buf[1024];
    VlmData d;
    float f4[6] = {1, 2, 3, 4, 5, 6};
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                        f4, sizeof f4);
    put_file(tpath("f4.npy"), buf, n);
    CU_ASSERT_FATAL(read_ok(tpath("f4.npy"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 2 && d.d == 3 && d.x[5] == 6 && !d.mask);
    vlm_data_free(&d);

    double f8[4] = {0.5, NAN, -2, 1e-3};
    n = make_npy(buf, 2, "{'shape': (4,), 'fortran_order': False, 'descr': '<f8'}", f8,
                 sizeof f8);
    put_file(tpath("f8.npy"), buf, n);
    CU_ASSERT_FATAL(read_ok(tpath("f8.npy"), VLM_FMT_NPY, &d) == 0);
    CU_ASSERT(d.n == 4 && d.d == 1);
    CU_ASSERT_FATAL(d.mask != NULL);
    CU_ASSERT(d.mask[0] == 1 && d.mask[1] == 0 && d.mask[2] == 1 && d.x[1] == 0);
    CU_ASSERT(d.x[3] == (float)1e-3);
    vlm_data_free(&d);

    uint8_t u1[2 * 2 * 3] = {0, 255, 51, 0, 0, 0, 1, 2, 3, 4, 5, 6};
    n = make_npy(buf, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }",
                 u1, sizeof u1);
    put_file(tpath("u1.npy"), buf, n);
    CU_ASSERT_FATAL(read_ok(tpath("u1.npy"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 2 && d.d == 6 && d.rank == 2 && d.shape[0] == 2 && d.shape[1] == 3);
    CU_ASSERT(d.x8 && !d.x);   /* compact until asked */
    vlm_data_floats(&d);
    CU_ASSERT(!d.x8 && d.x[1] == 1.0f && d.x[2] == 0.2f);
    vlm_data_free(&d);

    /* writer round trip, through AUTO */
    float w[6] = {0.1f, -3e7f, NAN, 1e-30f, 0, 42};
    VlmErr e = {{0}};
    CU_ASSERT_FATAL(vlm_data_write_npy(tpath("w.npy"), 3, 2, w, &e) == 0);
    CU_ASSERT_FATAL(read_ok(tpath("w.npy"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 3 && d.d == 2 && d.mask && d.mask[2] == 0);
    for (int i = 0; i < 6; i++)
        if (i != 2)
            CU_ASSERT(d.x[i] == w[i]);
    vlm_data_free(&d);
    FILE *f = fopen(tpath("w.npy"), "rb");
    CU_ASSERT(fread(buf, 1, 10, f) == 10);
    fclose(f);
    CU_ASSERT((10 + (buf[8] | buf[9] << 8)) % 64 == 0);
}

static void test_npy_bad(void)
{
    uint8_t buf[1024];
    float f4[6] = {1, 2, 3, 4, 5, 6};
    const char *hd = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t n = make_npy(buf, 1, hd, f4, sizeof f4);
    for (size_t len = 0; len < n; len++) {
        put_file(tpath("trunc.npy"), buf, len);
        read_fail(tpath("trunc.npy"), VLM_FMT_NPY, 0, NULL);
    }
    put_file(tpath("t.npy"), buf, n - 1);
    read_fail(tpath("t.npy"), VLM_FMT_NPY, 0, "truncated");
    buf[n] = 7;
    put_file(tpath("trail.npy"), buf, n + 1);
    char want[64];
    snprintf(want, sizeof want, "trailing data at byte offset %zu", n);
    read_fail(tpath("trail.npy"), VLM_FMT_NPY, 0, want);

    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4,
                 sizeof f4);
    put_file(tpath("fortran.npy"), buf, n);
    read_fail(tpath("fortran.npy"), VLM_FMT_NPY, 0, "Fortran order");
    n = make_npy(buf, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f4,
                 sizeof f4);
    put_file(tpath("be.npy"), buf, n);
    read_fail(tpath("be.npy"), VLM_FMT_NPY, 0, "'>f4' is not supported");
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", f4,
                 sizeof f4);
    put_file(tpath("hdr.npy"), buf, n);
    read_fail(tpath("hdr.npy"), VLM_FMT_NPY, 0, "bad NPY header at byte offset 10");
    n = make_npy(buf, 1, "[1, 2, 3]", f4, sizeof f4);
    put_file(tpath("hdr2.npy"), buf, n);
    read_fail(tpath("hdr2.npy"), VLM_FMT_NPY, 0, "bad NPY header");
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }",
                 f4, sizeof f4);
    put_file(tpath("big.npy"), buf, n);
    read_fail(tpath("big.npy"), VLM_FMT_NPY, 0, "over the limit");
    read_fail(tpath("big.npy"), VLM_FMT_NPY, SIZE_MAX, "truncated");
    /* the cap counts x and a mask: 64 bytes hold 8 elements, not 16 */
    float f9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }",
                 f9, sizeof f9);
    put_file(tpath("cap9.npy"), buf, n);
    read_fail(tpath("cap9.npy"), VLM_FMT_NPY, 64,
              "NPY header claims 9 elements, over the limit of 64 bytes");
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }",
                 f9, 8 * sizeof(float));
    put_file(tpath("cap8.npy"), buf, n);
    VlmData d;
    VlmErr e = {{0}};
    if (vlm_data_read(tpath("cap8.npy"), VLM_FMT_NPY, 64, &d, &e) != 0) {
        fprintf(stderr, "\n  %s\n", e.msg);
        CU_FAIL("8 elements under a 64-byte cap");
    } else {
        CU_ASSERT(d.n == 2 && d.d == 4 && d.x[7] == 8);
        vlm_data_free(&d);
    }
    /* six dimensions: refused while parsing the shape */
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }",
                 f9, sizeof(float));
    put_file(tpath("rank6.npy"), buf, n);
    read_fail(tpath("rank6.npy"), VLM_FMT_NPY, 0, "more than 5 dimensions");
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2), }",
                 f4, sizeof f4);
    put_file(tpath("huge.npy"), buf, n);
    read_fail(tpath("huge.npy"), VLM_FMT_NPY, 0, "bad NPY header");
    /* header length beyond the file */
    n = make_npy(buf, 1, hd, f4, sizeof f4);
    buf[8] = 0xff;
    buf[9] = 0x7f;
    put_file(tpath("hlen.npy"), buf, n);
    read_fail(tpath("hlen.npy"), VLM_FMT_NPY, 0, "header length");
    n = make_npy(buf, 2, hd, f4, sizeof f4);
    buf[11] = 0x40;
    put_file(tpath("hlen2.npy"), buf, n);
    read_fail(tpath("hlen2.npy"), VLM_FMT_NPY, 0, "header length");
    /* version, magic */
    n = make_npy(buf, 1, hd, f4, sizeof f4);
    buf[6] = 9;
    put_file(tpath("ver.npy"), buf, n);
    read_fail(tpath("ver.npy"), VLM_FMT_NPY, 0, "version 9");
    buf[6] = 1;
    buf[1] = 'X';
    put_file(tpath("magic.npy"), buf, n);
    read_fail(tpath("magic.npy"), VLM_FMT_NPY, 0, "bad magic");
    /* infinity in the data: error with its byte offset */
    float inf[6] = {1, 2, 3, 4, INFINITY, 6};
    n = make_npy(buf, 1, hd, inf, sizeof inf);
    put_file(tpath("inf.npy"), buf, n);
    snprintf(want, sizeof want, "infinite value at byte offset %zu (item 1, element 1)",
             n - sizeof inf + 4 * 4);
    read_fail(tpath("inf.npy"), VLM_FMT_NPY, 0, want);
    double big8[2] = {1, 1e300};
    n = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", big8,
                 sizeof big8);
    put_file(tpath("range.npy"), buf, n);
    read_fail(tpath("range.npy"), VLM_FMT_NPY, 0, "out of float range");
    uint8_t junk[500];
    uint32_t s = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    put_file(tpath("junk.npy"), junk, sizeof junk);
    read_fail(tpath("junk.npy"), VLM_FMT_AUTO, 0, NULL);
    memcpy(junk, "\x93NUMPY\x01\x00\x40\x00", 10);
    put_file(tpath("junk2.npy"), junk, sizeof junk);
    read_fail(tpath("junk2.npy"), VLM_FMT_AUTO, 0, NULL);
}

/* ------------------------------------------------------------ writers */

static void test_write_csv(void)
{
    float x[6] = {0.1f, NAN, -1e-7f, 3.4e38f, 0, 1.0f / 3};
    const char *cols[2] = {"u", "v"};
    VlmErr e = {{0}};
    CU_ASSERT_FATAL(vlm_data_write_csv(tpath("w.csv"), cols, 3, 2, x, &e) == 0);
    VlmData d;
    CU_ASSERT_FATAL(read_ok(tpath("w.csv"), VLM_FMT_AUTO, &d) == 0);
    CU_ASSERT(d.n == 3 && d.d == 2 && d.colnames && !strcmp(d.colnames[1], "v"));
    CU_ASSERT_FATAL(d.mask != NULL);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT(d.mask[i] == (i != 1));
        if (i != 1)
            CU_ASSERT(d.x[i] == x[i]);   /* bit-exact through text */
    }
    vlm_data_free(&d);
    /* without names; Inf refused and the old file kept */
    CU_ASSERT(vlm_data_write_csv(tpath("w2.csv"), NULL, 3, 2, x, &e) == 0);
    x[4] = INFINITY;
    expect_fail(vlm_data_write_csv(tpath("w2.csv"), NULL, 3, 2, x, &e), &e,
                tpath("w2.csv"), "row 3, column 1");
    CU_ASSERT(read_ok(tpath("w2.csv"), VLM_FMT_CSV, &d) == 0 && d.n == 3 && d.x[4] == 0);
    vlm_data_free(&d);
    expect_fail(vlm_data_write_npy(tpath("w2.npy"), 3, 2, x, &e), &e, tpath("w2.npy"),
                "infinite");
    x[4] = 0;
    expect_fail(vlm_data_write_csv("/nonexistent-dir/w.csv", NULL, 3, 2, x, &e), &e,
                "/nonexistent-dir/w.csv", "cannot create");
    expect_fail(vlm_data_write_npy("/proc/w.npy", 3, 2, x, &e), &e, "/proc/w.npy", NULL);
}

/* ------------------------------------------------------------ batcher */

static void test_batcher_epochs(void)
{
    VlmBatcher b;
    const size_t N = 103, B = 10;
    vlm_batcher_init(&b, N, B, 42, true);
    uint32_t first[103];
    for (int ep = 0; ep < 3; ep++) {
        int seen[103] = {0};
        size_t k, total = 0, batches = 0, last = 0;
        const uint32_t *idx;
        while ((k = vlm_batcher_next(&b, &idx)) > 0) {
            for (size_t i = 0; i < k; i++) {
                CU_ASSERT_FATAL(idx[i] < N);
                seen[idx[i]]++;
                if (ep == 0)
                    first[total + i] = idx[i];
            }
            total += k;
            batches++;
            last = k;
        }
        CU_ASSERT(total == N && batches == 11 && last == 3);
        bool once = true;
        for (size_t i = 0; i < N; i++)
            once &= seen[i] == 1;
        CU_ASSERT(once);
        CU_ASSERT(b.epoch == ep + 1 && b.pos == 0);
    }
    /* shuffled, and reshuffled per epoch */
    size_t fixed = 0;
    for (size_t i = 0; i < N; i++)
        fixed += first[i] == i;
    CU_ASSERT(fixed < 10);
    CU_ASSERT(memcmp(first, b.perm, sizeof first) != 0);
    vlm_batcher_free(&b);

    /* reproducible for a seed, different for another */
    VlmBatcher a, c, d2;
    vlm_batcher_init(&a, N, B, 7, true);
    vlm_batcher_init(&c, N, B, 7, true);
    vlm_batcher_init(&d2, N, B, 8, true);
    CU_ASSERT(memcmp(a.perm, c.perm, N * 4) == 0);
    CU_ASSERT(memcmp(a.perm, d2.perm, N * 4) != 0);
    vlm_batcher_free(&a);
    vlm_batcher_free(&c);
    vlm_batcher_free(&d2);

    /* no shuffle: identity order */
    vlm_batcher_init(&a, 5, 2, 1, false);
    const uint32_t *idx;
    CU_ASSERT(vlm_batcher_next(&a, &idx) == 2 && idx[0] == 0 && idx[1] == 1);
    CU_ASSERT(vlm_batcher_next(&a, &idx) == 2 && idx[0] == 2);
    CU_ASSERT(vlm_batcher_next(&a, &idx) == 1 && idx[0] == 4);
    CU_ASSERT(vlm_batcher_next(&a, &idx) == 0);
    vlm_batcher_free(&a);
}

static void test_batcher_resume(void)
{
    const size_t N = 57, B = 8;
    VlmBatcher a;
    vlm_batcher_init(&a, N, B, 2024, true);
    const uint32_t *idx;
    for (int i = 0; i < 11; i++)     /* into the second epoch */
        vlm_batcher_next(&a, &idx);
    /* the cursor as a checkpoint holds it */
    VlmBatcher r;
    vlm_batcher_init(&r, N, B, 999, true);
    r.pos = a.pos;
    r.epoch = a.epoch;
    r.rng = a.rng;
    memcpy(r.perm, a.perm, N * sizeof *r.perm);
    bool same = true;
    for (int i = 0; i < 40; i++) {
        const uint32_t *ia, *ir;
        size_t ka = vlm_batcher_next(&a, &ia), kr = vlm_batcher_next(&r, &ir);
        same &= ka == kr && (ka == 0 || !memcmp(ia, ir, ka * sizeof *ia));
    }
    CU_ASSERT(same);
    CU_ASSERT(a.epoch == r.epoch && a.epoch >= 4);
    vlm_batcher_free(&a);
    vlm_batcher_free(&r);
}


/* ------------------------------------------------------------ fuzz */

/* Every single-byte corruption of small valid files, each format: the
 * reader either rejects with a message or returns a well-formed data set
 * (run under ASan this is the memory-safety check). */
static void flip_all(const char *name, const uint8_t *good, size_t n, VlmFormat fmt)
{
    uint8_t *bad = malloc(n);
    const char *p = tpath(name);
    int bad_results = 0;
    static const uint8_t flips[4] = {0x01, 0x20, 0x80, 0xff};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            memcpy(bad, good, n);
            bad[i] ^= flips[k];
            put_file(p, bad, n);
            VlmData d;
            VlmErr e = {{0}};
            if (vlm_data_read(p, fmt, 1 << 20, &d, &e) == 0) {
                bad_results += !(d.n > 0 && d.d > 0 && (d.x || d.x8));
                vlm_data_floats(&d);
                for (size_t j = 0; j < d.n * d.d; j++)
                    bad_results += !isfinite(d.x[j]);
                vlm_data_free(&d);
            } else {
                bad_results += strstr(e.msg, p) == NULL;
            }
        }
    CU_ASSERT(bad_results == 0);
    free(bad);
}

static void test_fuzz_flips(void)
{
    uint8_t buf[512], pix[24];
    for (int i = 0; i < 24; i++)
        pix[i] = (uint8_t)(i * 10);
    uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(buf, 0x08, 3, dims, pix, sizeof pix);
    flip_all("f.idx", buf, n, VLM_FMT_AUTO);
    float f4[6] = {1, 2, 3, 4, 5, 6};
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4,
                 sizeof f4);
    flip_all("f.npy", buf, n, VLM_FMT_AUTO);
    const char *csv = "a,b,c\r\n1,2.5,NA\r\n-4e2,,6\r\n";
    flip_all("f.csv", (const uint8_t *)csv, strlen(csv), VLM_FMT_CSV);
}

/* ------------------------------------------------------------ suite */

static int suite_init(void) { return tmpdir_make("/tmp/vlm-data-XXXXXX"); }
static int suite_clean(void) { return tmpdir_remove(); }

void vlm_test_data(void)
{
    CU_pSuite s = CU_add_suite("data", suite_init, suite_clean);
    CU_add_test(s, "idx round trip (plain, gzip, labels)", test_idx_roundtrip);
    if (access(FMNIST "train-images-idx3-ubyte.gz", R_OK) == 0 &&
        access(FMNIST "train-labels-idx1-ubyte.gz", R_OK) == 0)
        CU_add_test(s, "idx Fashion-MNIST train set", test_idx_fashion);
    else
        fprintf(stderr, "data: SKIPPED 'idx Fashion-MNIST train set': "
                FMNIST "train-*.gz not installed (apt-get install dataset-fashion-mnist)\n");
    CU_add_test(s, "idx hostile files", test_idx_hostile);
    CU_add_test(s, "csv header, missing, CRLF", test_csv_good);
    CU_add_test(s, "csv errors with file:line:col", test_csv_bad);
    CU_add_test(s, "csv numbers of 128 characters and more", test_csv_long_numbers);
    CU_add_test(s, "labels from a one-column csv", test_labels_csv);
    CU_add_test(s, "npy dtypes and shapes", test_npy_good);
    CU_add_test(s, "npy hostile files", test_npy_bad);
    CU_add_test(s, "csv writer round trip", test_write_csv);
    CU_add_test(s, "every byte flip: reject or well-formed", test_fuzz_flips);
    CU_add_test(s, "batcher epochs", test_batcher_epochs);
    CU_add_test(s, "batcher resume from cursor", test_batcher_resume);
}
