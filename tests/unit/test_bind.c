/* test_bind.c — CUnit suite "bind": the data binding of runtime/bind.c on
 * a hand-made variable table (a latent, an observed x[2], inputs u[3] and
 * c : category(3), data columns in the order u, x, c): the plain layout,
 * aligned files bound by name, raw bytes for integer variables and idx1
 * files, and every binding error (with the row and column for inputs). */
#include "vlm.h"
#include "tmpdir.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static long no_consts[1];
static const VlmModelDesc desc = {.name = "bind", .n_consts = 0, .const_values = no_consts};

/* vars: z (latent), x[2] (observed), u[3] and c (inputs) */
static void make_model(VlmModel *m)
{
    memset(m, 0, sizeof *m);
    m->desc = &desc;
    m->n_latent = 1;
    m->n_observed = 1;
    m->n_vars = 2;
    m->n_inputs = 2;
    m->vars[0] = (VlmVarInfo){"z", VLM_VAR_LATENT, VLM_TREAT_AUTO_GUIDE, "Normal", false, 1, 0, 0, {1}, false, false};
    m->vars[1] = (VlmVarInfo){"x", VLM_VAR_OBSERVED, VLM_TREAT_NONE, "Normal", false, 2, 0, 1, {2}, false, false};
    m->vars[2] = (VlmVarInfo){"u", VLM_VAR_INPUT, VLM_TREAT_NONE, NULL, false, 3, 0, 1, {3}, false, false};
    m->vars[3] = (VlmVarInfo){"c", VLM_VAR_INPUT, VLM_TREAT_NONE, NULL, true, 1, 3, 0, {1}, false, false};
    m->n_data = 3;
    m->data_var[0] = 2;
    m->data_var[1] = 1;
    m->data_var[2] = 3;
}

/* n items of d floats, value 10 * item + column (c's column: item % 3) */
static void make_floats(VlmData *f, size_t n, size_t d, long c_col)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->d = d;
    f->rank = 1;
    f->shape[0] = (int)d;
    f->x = vlm_xmalloc(n * d * sizeof *f->x);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            f->x[i * d + j] = (long)j == c_col ? (float)(i % 3) : (float)(10 * i + j);
}

/* n items of d bytes: 7 * item + column (mod 3 in the column c_col) */
static void make_bytes(VlmData *f, size_t n, size_t d, bool raw, long c_col)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->d = d;
    f->rank = 1;
    f->shape[0] = (int)d;
    f->raw = raw;
    f->x8 = vlm_xmalloc(n * d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            f->x8[i * d + j] = (uint8_t)((long)j == c_col ? i % 3 : 7 * i + j);
}

static void expect_err(int rc, const VlmErr *e, const char *want)
{
    CU_ASSERT(rc == -1);
    if (!strstr(e->msg, want)) {
        fprintf(stderr, "\n  expected '%s' in: %s\n", want, e->msg);
        CU_FAIL("error message");
    }
}

static void test_plain_layout(void)
{
    VlmModel m;
    make_model(&m);
    VlmData f, d;
    VlmErr e = {{0}};
    make_floats(&f, 4, 6, 5);
    const char *names[1] = {NULL}, *paths[1] = {"all.csv"};
    CU_ASSERT_FATAL(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e) == 0);
    CU_ASSERT(d.bind == NULL && d.n_parts == 0 && d.x != NULL);   /* as read */
    VlmBind bu = vlm_data_bind_of(&m, &d, 2), bx = vlm_data_bind_of(&m, &d, 1),
            bc = vlm_data_bind_of(&m, &d, 3);
    CU_ASSERT(bu.data == &d && bu.column == 0 && !bu.raw);
    CU_ASSERT(bx.column == 3 && !bx.raw);
    CU_ASSERT(bc.column == 5 && bc.raw);   /* a category reads integers */
    CU_ASSERT(vlm_var_integer(&m, 3) && !vlm_var_integer(&m, 2) && !vlm_var_integer(&m, 1));
    vlm_data_free(&d);
    /* the wrong width: the message names the observed and input variables */
    make_floats(&f, 4, 5, 4);
    expect_err(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e), &e,
               "observed and input variables take 6 (`u`: 3; `x`: 2; `c`: 1)");
}

static void test_inputs_checked(void)
{
    VlmModel m;
    make_model(&m);
    VlmData f, d;
    VlmErr e = {{0}};
    const char *names[1] = {NULL}, *paths[1] = {"all.csv"};
    make_floats(&f, 4, 6, 5);
    f.x[1 * 6 + 1] = NAN;   /* u, row 2, column 2 */
    expect_err(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e), &e,
               "all.csv: input `u` is missing (NaN) at row 2, column 2");
    make_floats(&f, 4, 6, 5);
    f.mask = vlm_xmalloc(4 * 6 * sizeof *f.mask);
    for (int i = 0; i < 24; i++)
        f.mask[i] = 1;
    f.mask[2 * 6 + 0] = 0;   /* a missing marker in u, row 3, column 1 */
    expect_err(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e), &e, "at row 3, column 1");
    make_floats(&f, 4, 6, 5);
    f.mask = vlm_xmalloc(4 * 6 * sizeof *f.mask);
    for (int i = 0; i < 24; i++)
        f.mask[i] = 1;
    f.mask[3 * 6 + 4] = 0;   /* missing in x: allowed (marginalized) */
    f.x[3 * 6 + 4] = 0;
    CU_ASSERT(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e) == 0);
    vlm_data_free(&d);
    make_floats(&f, 4, 6, 5);
    f.x[3 * 6 + 5] = 3;   /* c = 3, out of 0..2 */
    expect_err(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e), &e,
               "input `c` is a category(3): an integer in 0..2, but row 4, column 6 holds 3");
    make_floats(&f, 4, 6, 5);
    f.x[0 * 6 + 5] = 0.5f;
    expect_err(vlm_data_bind(&m, &f, names, paths, 1, false, &d, &e), &e,
               "row 1, column 6 holds 0.5");
}

static void test_named_files(void)
{
    VlmModel m;
    make_model(&m);
    VlmData f[3], d;
    VlmErr e = {{0}};
    /* x from bytes (scaled), c from an idx1-like raw file, u unnamed */
    make_bytes(&f[0], 5, 2, false, -1);
    make_bytes(&f[1], 5, 1, true, 0);
    make_floats(&f[2], 5, 3, -1);
    const char *names[3] = {"x", "c", NULL}, *paths[3] = {"x.idx", "c.idx1", "u.csv"};
    CU_ASSERT_FATAL(vlm_data_bind(&m, f, names, paths, 3, false, &d, &e) == 0);
    CU_ASSERT_FATAL(d.bind != NULL && d.n_parts == 3 && d.n == 5);
    CU_ASSERT(d.bind[1].data == &d.parts[0] && d.bind[1].column == 0 && !d.bind[1].raw);
    CU_ASSERT(d.bind[3].data == &d.parts[1] && d.bind[3].raw);
    CU_ASSERT(d.bind[2].data == &d.parts[2] && d.bind[2].column == 0);
    /* merged: u, x, c in declaration order, bytes as each binding reads them */
    VlmData p;
    vlm_data_merge(&m, &d, &p);
    CU_ASSERT_FATAL(p.n == 5 && p.d == 6 && p.bind == NULL);
    for (size_t i = 0; i < 5; i++) {
        for (int j = 0; j < 3; j++)
            CU_ASSERT(p.x[i * 6 + j] == (float)(10 * i + j));
        for (int j = 0; j < 2; j++)
            CU_ASSERT(p.x[i * 6 + 3 + j] == (float)(7 * i + j) / 255.0f);
        CU_ASSERT(p.x[i * 6 + 5] == (float)(i % 3));
    }
    vlm_data_free(&p);
    vlm_data_limit(&d, 2);
    CU_ASSERT(d.n == 2 && d.parts[0].n == 2 && d.parts[2].n == 2);
    vlm_data_free(&d);

    /* a category bound to scaled bytes still reads integers */
    make_bytes(&f[0], 5, 2, false, -1);
    make_bytes(&f[1], 5, 1, false, 0);
    make_floats(&f[2], 5, 3, -1);
    CU_ASSERT_FATAL(vlm_data_bind(&m, f, names, paths, 3, false, &d, &e) == 0);
    CU_ASSERT(d.bind[3].raw);
    vlm_data_free(&d);
}

static void test_bind_errors(void)
{
    VlmModel m;
    make_model(&m);
    VlmData f[3], d;
    VlmErr e = {{0}};
    const char *paths[3] = {"a", "b", "c"};
    /* row counts differ: both files and both counts */
    make_floats(&f[0], 5, 2, -1);
    make_floats(&f[1], 4, 3, -1);
    make_floats(&f[2], 5, 1, 0);
    const char *n1[3] = {"x", "u", "c"};
    expect_err(vlm_data_bind(&m, f, n1, paths, 3, false, &d, &e), &e,
               "a has 5 items but b has 4");
    /* an unknown name lists the data variables */
    make_floats(&f[0], 5, 2, -1);
    make_floats(&f[1], 5, 3, -1);
    make_floats(&f[2], 5, 1, 0);
    const char *n2[3] = {"x", "w", "c"};
    expect_err(vlm_data_bind(&m, f, n2, paths, 3, false, &d, &e), &e,
               "no observed or input variable `w` (its data: `u` (3), `x` (2) and `c` (1))");
    /* a latent is not data */
    make_floats(&f[0], 5, 1, -1);
    const char *n3[1] = {"z"};
    expect_err(vlm_data_bind(&m, f, n3, paths, 1, false, &d, &e), &e, "variable `z`");
    /* twice */
    make_floats(&f[0], 5, 2, -1);
    make_floats(&f[1], 5, 2, -1);
    const char *n4[2] = {"x", "x"};
    expect_err(vlm_data_bind(&m, f, n4, paths, 2, false, &d, &e), &e,
               "`x` is bound to two files, a and b");
    /* the width of a named file */
    make_floats(&f[0], 5, 3, -1);
    const char *n5[1] = {"x"};
    expect_err(vlm_data_bind(&m, f, n5, paths, 1, false, &d, &e), &e,
               "a: `x` takes 2 values per item, but the file's items have 3");
    /* a variable without a file */
    make_floats(&f[0], 5, 2, -1);
    make_floats(&f[1], 5, 3, -1);
    const char *n6[2] = {"x", "u"};
    expect_err(vlm_data_bind(&m, f, n6, paths, 2, false, &d, &e), &e,
               "input `c` has no data: give --data c=FILE");
    /* two unnamed files */
    make_floats(&f[0], 5, 2, -1);
    make_floats(&f[1], 5, 3, -1);
    const char *n7[2] = {NULL, NULL};
    expect_err(vlm_data_bind(&m, f, n7, paths, 2, false, &d, &e), &e,
               "at most one data file without NAME=");
    /* the unnamed file holds the rest: u and c here, width 4 */
    make_floats(&f[0], 5, 2, -1);
    make_floats(&f[1], 5, 3, -1);
    const char *n8[2] = {"x", NULL};
    expect_err(vlm_data_bind(&m, f, n8, paths, 2, false, &d, &e), &e,
               "b: items have 3 values but the variables it holds, `u` (3) and `c` (1), take 4");
}

static void test_inputs_only(void)
{
    VlmModel m;
    make_model(&m);
    VlmData f, d;
    VlmErr e = {{0}};
    const char *names[1] = {NULL}, *paths[1] = {"in.csv"};
    /* sampling: the inputs alone, u then c */
    make_floats(&f, 3, 4, 3);
    CU_ASSERT_FATAL(vlm_data_bind(&m, &f, names, paths, 1, true, &d, &e) == 0);
    CU_ASSERT_FATAL(d.bind != NULL);
    CU_ASSERT(d.bind[2].column == 0 && d.bind[3].column == 3 && d.bind[1].data == NULL);
    vlm_data_free(&d);
    /* ... or every data column (the observed ones unused) */
    make_floats(&f, 3, 6, 5);
    CU_ASSERT_FATAL(vlm_data_bind(&m, &f, names, paths, 1, true, &d, &e) == 0);
    CU_ASSERT(d.bind == NULL);
    vlm_data_free(&d);
    /* an observed variable cannot be given */
    make_floats(&f, 3, 2, -1);
    const char *nx[1] = {"x"};
    expect_err(vlm_data_bind(&m, &f, nx, paths, 1, true, &d, &e), &e, "inputs only");
}

static void test_raw_bytes(void)
{
    /* an idx1 file holds labels: read as the integers themselves */
    VlmData f;
    make_bytes(&f, 4, 1, true, 0);
    float v[4];
    vlm_data_rows(&f, 0, 4, 0, 1, v);
    CU_ASSERT(v[0] == 0 && v[1] == 1 && v[2] == 2 && v[3] == 0);
    CU_ASSERT(vlm_data_unit(&f) == 1.0);
    f.raw = false;
    vlm_data_rows(&f, 0, 4, 0, 1, v);
    CU_ASSERT(v[1] == 1 / 255.0f);
    vlm_data_free(&f);
    /* the IDX reader marks idx1 files raw, idx3 files not */
    uint8_t buf[64] = {0, 0, 8, 1, 0, 0, 0, 3, 4, 0, 9};
    put_file(tpath("l.idx1"), buf, 11);
    VlmErr e = {{0}};
    CU_ASSERT_FATAL(vlm_data_read(tpath("l.idx1"), VLM_FMT_AUTO, 0, &f, &e) == 0);
    CU_ASSERT(f.raw && f.n == 3 && f.d == 1);
    vlm_data_rows(&f, 0, 3, 0, 1, v);
    CU_ASSERT(v[0] == 4 && v[1] == 0 && v[2] == 9);
    vlm_data_free(&f);
    uint8_t img[32] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 255, 51};
    put_file(tpath("i.idx3"), img, 18);
    CU_ASSERT_FATAL(vlm_data_read(tpath("i.idx3"), VLM_FMT_AUTO, 0, &f, &e) == 0);
    CU_ASSERT(!f.raw);
    vlm_data_rows(&f, 0, 1, 0, 2, v);
    CU_ASSERT(v[0] == 1.0f && v[1] == 0.2f);
    vlm_data_free(&f);
}

static int suite_init(void) { return tmpdir_make("/tmp/vlm-bind-XXXXXX"); }
static int suite_clean(void) { return tmpdir_remove(); }

void vlm_test_bind(void)
{
    CU_pSuite s = CU_add_suite("bind", suite_init, suite_clean);
    CU_add_test(s, "plain layout: consecutive columns, declaration order", test_plain_layout);
    CU_add_test(s, "inputs: NaN and category range, row and column", test_inputs_checked);
    CU_add_test(s, "aligned files bound by name, merged, limited", test_named_files);
    CU_add_test(s, "binding errors", test_bind_errors);
    CU_add_test(s, "sampling binds the inputs only", test_inputs_only);
    CU_add_test(s, "raw bytes: idx1 labels and integer variables", test_raw_bytes);
}
