/* bind.c — the data binding: which file and which columns each data
 * variable (observed or input) of a model reads. One file holds them all
 * in consecutive columns in declaration order (the plain case), or several
 * aligned files hold one variable each (`--data x=images --data y=labels`).
 * The checks are made once, when the data are bound: names, widths, item
 * counts, inputs without NaN, category inputs in 0..K-1, given values of
 * summed observed variables among their values. No file is read
 * here (data*.c) and no batch is filled (model.c). */
#include "vlm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool vlm_var_integer(const VlmModel *m, int v)
{
    const VlmVarInfo *x = &m->vars[v];
    if (x->kind == VLM_VAR_INPUT)
        return x->support > 0;
    /* an observed Bernoulli is real-valued: grey pixels are relaxed targets */
    return x->kind == VLM_VAR_OBSERVED && x->discrete && x->dist &&
           strcmp(x->dist, "Bernoulli") != 0;
}

VlmBind vlm_data_bind_of(const VlmModel *m, const VlmData *d, int v)
{
    if (d->bind)
        return d->bind[v];
    VlmBind b = {d, 0, d->raw || vlm_var_integer(m, v)};
    for (int k = 0; k < m->n_data && m->data_var[k] != v; k++)
        b.column += (size_t)m->vars[m->data_var[k]].numel;
    return b;
}

void vlm_data_limit(VlmData *d, size_t n)
{
    if (n >= d->n)
        return;
    d->n = n;   /* the arrays keep their size */
    for (int k = 0; k < d->n_parts; k++)
        if (d->parts[k].n > n)
            d->parts[k].n = n;
}

/* "`x` (784) and `y` (1)" for the variables vs[0..n). */
static void list_vars(const VlmModel *m, const int *vs, int n, char *buf,
                      size_t len, long *total)
{
    buf[0] = 0;
    *total = 0;
    for (int j = 0; j < n; j++) {
        const VlmVarInfo *v = &m->vars[vs[j]];
        size_t u = strlen(buf);
        snprintf(buf + u, len - u, "%s`%s` (%ld)",
                 j ? (j + 1 == n ? " and " : ", ") : "", v->name, v->numel);
        *total += v->numel;
    }
}

/* Values per item of every data variable together. */
static long data_width(const VlmModel *m)
{
    long w = 0;
    for (int k = 0; k < m->n_data; k++)
        w += m->vars[m->data_var[k]].numel;
    return w;
}

static int find_data_var(const VlmModel *m, const char *name)
{
    for (int k = 0; k < m->n_data; k++)
        if (!strcmp(m->vars[m->data_var[k]].name, name))
            return m->data_var[k];
    return -1;
}

/* The values of data variable v that must hold when the data load: an
 * input is given in every item (an input cannot be marginalized) and a
 * category input is an integer 0..K-1; the given values of an observed
 * variable summed out where missing are among its values (an out-of-range
 * label would clamp every row of its item to -inf), NaN for missing. */
static int check_var(const VlmModel *m, const VlmData *d, int v,
                     const char *const *paths, VlmErr *err)
{
    const VlmVarInfo *vi = &m->vars[v];
    bool input = vi->kind == VLM_VAR_INPUT;
    if (!input && (vi->kind != VLM_VAR_OBSERVED || vi->treat != VLM_TREAT_ENUMERATE))
        return 0;
    VlmBind b = vlm_data_bind_of(m, d, v);
    if (!b.data)
        return 0;
    const VlmData *f = b.data;
    const char *path = paths[d->bind ? (int)(f - d->parts) : 0];
    size_t nu = (size_t)vi->numel;
    float *row = vlm_xmalloc(nu * sizeof *row);
    int rc = 0;
    for (size_t r = 0; r < d->n && rc == 0; r++) {
        if (b.raw)
            vlm_data_rows_raw(f, r, 1, b.column, nu, row);
        else
            vlm_data_rows(f, r, 1, b.column, nu, row);
        for (size_t k = 0; k < nu && rc == 0; k++) {
            float x = row[k];
            size_t col = b.column + k + 1;
            bool missing = isnan(x) || (f->mask && f->mask[r * f->d + b.column + k] == 0);
            bool outside = vi->support > 0 && (x != floorf(x) || x < 0 || x >= (float)vi->support);
            if (input && missing) {
                vlm_err_set(err, "%s: input `%s` is missing (NaN) at row %zu, "
                            "column %zu: an input must be given for every "
                            "item", path, vi->name, r + 1, col);
                rc = -1;
            } else if (input && outside) {
                vlm_err_set(err, "%s: input `%s` is a category(%ld): an "
                            "integer in 0..%ld, but row %zu, column %zu "
                            "holds %g", path, vi->name, vi->support,
                            vi->support - 1, r + 1, col, (double)x);
                rc = -1;
            } else if (!input && !missing && outside) {
                vlm_err_set(err, "%s: item %zu, column %zu: `%s` = %g "
                            "is not one of its %ld values (0 to "
                            "%ld; NaN where it is missing)", path,
                            r + 1, col, vi->name, (double)x,
                            vi->support, vi->support - 1);
                rc = -1;
            }
        }
    }
    free(row);
    return rc;
}

int vlm_data_check_values(const VlmModel *m, const VlmData *d,
                          const char *const *paths, VlmErr *err)
{
    for (int i = 0; i < m->n_inputs; i++)   /* inputs first, then the rest */
        if (check_var(m, d, m->n_vars + i, paths, err) != 0)
            return -1;
    for (int j = 0; j < m->n_data; j++)
        if (m->vars[m->data_var[j]].kind != VLM_VAR_INPUT &&
            check_var(m, d, m->data_var[j], paths, err) != 0)
            return -1;
    return 0;
}

static void free_files(VlmData *files, int n)
{
    for (int k = 0; k < n; k++)
        vlm_data_free(&files[k]);
}

int vlm_data_bind(const VlmModel *m, VlmData *files, const char *const *names,
                  const char *const *paths, int n, bool inputs_only,
                  VlmData *out, VlmErr *err)
{
    memset(out, 0, sizeof *out);
    int file_of[VLM_MAX_VARS];
    for (int v = 0; v < VLM_MAX_VARS; v++)
        file_of[v] = -1;
    char list[512];
    long total;
    int unnamed = -1;
    if (n < 1 || n > VLM_MAX_VARS) {
        vlm_err_set(err, "%d data files: give 1 to %d", n, VLM_MAX_VARS);
        goto fail;
    }
    /* the variables to bind: every data variable, or the inputs */
    int want[VLM_MAX_VARS], n_want = 0;
    for (int k = 0; k < m->n_data; k++)
        if (!inputs_only || m->vars[m->data_var[k]].kind == VLM_VAR_INPUT)
            want[n_want++] = m->data_var[k];
    for (int k = 0; k < n; k++) {
        if (!names[k]) {
            if (unnamed >= 0) {
                vlm_err_set(err, "%s and %s: at most one data file without "
                            "NAME= (it holds the variables not named, in "
                            "declaration order)", paths[unnamed], paths[k]);
                goto fail;
            }
            unnamed = k;
            continue;
        }
        int v = find_data_var(m, names[k]);
        if (v < 0) {
            list_vars(m, m->data_var, m->n_data, list, sizeof list, &total);
            vlm_err_set(err, "%s=%s: the model has no observed or input "
                        "variable `%s` (its data: %s)", names[k], paths[k],
                        names[k], list);
            goto fail;
        }
        if (inputs_only && m->vars[v].kind != VLM_VAR_INPUT) {
            vlm_err_set(err, "%s=%s: `%s` is observed and drawn by the model; "
                        "the data of `sample` give its inputs only", names[k],
                        paths[k], names[k]);
            goto fail;
        }
        if (file_of[v] >= 0) {
            vlm_err_set(err, "`%s` is bound to two files, %s and %s", names[k],
                        paths[file_of[v]], paths[k]);
            goto fail;
        }
        file_of[v] = k;
        if ((long)files[k].d != m->vars[v].numel) {
            vlm_err_set(err, "%s: `%s` takes %ld value%s per item, but the "
                        "file's items have %zu", paths[k], names[k],
                        m->vars[v].numel, m->vars[v].numel == 1 ? "" : "s",
                        files[k].d);
            goto fail;
        }
    }
    for (int k = 1; k < n; k++)
        if (files[k].n != files[0].n) {
            vlm_err_set(err, "%s has %zu items but %s has %zu: the data files "
                        "must hold the same items, one row each", paths[0],
                        files[0].n, paths[k], files[k].n);
            goto fail;
        }
    /* The plain case: one file holding every data variable. */
    if (n == 1 && unnamed == 0 &&
        (!inputs_only || (long)files[0].d == data_width(m))) {
        /* the width, inputs given, summed variables in range */
        if (vlm_model_check_data(m, &files[0], paths[0], err) != 0)
            goto fail;
        *out = files[0];
        memset(&files[0], 0, sizeof files[0]);
        return 0;
    }
    out->bind = vlm_xcalloc(VLM_MAX_VARS, sizeof *out->bind);
    /* the unnamed file: the variables not named, consecutive columns */
    if (unnamed >= 0) {
        int rest[VLM_MAX_VARS] = {0}, n_rest = 0;
        for (int j = 0; j < n_want; j++)
            if (file_of[want[j]] < 0)
                rest[n_rest++] = want[j];
        list_vars(m, rest, n_rest, list, sizeof list, &total);
        if (n_rest == 0 || (long)files[unnamed].d != total) {
            if (n_rest == 0)
                vlm_err_set(err, "%s: every %s variable is bound to its own "
                            "file, so this one has nothing to hold",
                            paths[unnamed], inputs_only ? "input" : "data");
            else
                vlm_err_set(err, "%s: items have %zu values but the %s it "
                            "holds, %s, take %ld", paths[unnamed],
                            files[unnamed].d, n_rest == 1 ? "variable"
                            : "variables", list, total);
            goto fail_bind;
        }
        size_t col = 0;
        for (int j = 0; j < n_rest; j++) {
            file_of[rest[j]] = unnamed;
            out->bind[rest[j]].column = col;
            col += (size_t)m->vars[rest[j]].numel;
        }
    }
    for (int j = 0; j < n_want; j++)
        if (file_of[want[j]] < 0) {
            const char *nm = m->vars[want[j]].name;
            vlm_err_set(err, "%s `%s` has no data: give --data %s=FILE",
                        m->vars[want[j]].kind == VLM_VAR_INPUT ? "input"
                        : "observed variable", nm, nm);
            goto fail_bind;
        }
    out->parts = vlm_xcalloc((size_t)n, sizeof *out->parts);
    out->n_parts = n;
    for (int k = 0; k < n; k++) {
        out->parts[k] = files[k];
        memset(&files[k], 0, sizeof files[k]);
    }
    out->n = out->parts[0].n;
    for (int j = 0; j < n_want; j++) {
        int v = want[j];
        VlmBind *b = &out->bind[v];
        b->data = &out->parts[file_of[v]];
        b->raw = b->data->raw || vlm_var_integer(m, v);
    }
    /* a data set keeps the per-item shape of a lone file, for images */
    out->rank = 1;
    out->shape[0] = 0;
    if (vlm_data_check_values(m, out, paths, err) != 0) {
        vlm_data_free(out);
        return -1;
    }
    return 0;
fail_bind:
    free(out->bind);
    out->bind = NULL;
fail:
    free_files(files, n);
    return -1;
}

void vlm_data_merge(const VlmModel *m, const VlmData *d, VlmData *out)
{
    memset(out, 0, sizeof *out);
    size_t width = 0;
    bool masked = false;
    for (int k = 0; k < m->n_data; k++) {
        int v = m->data_var[k];
        VlmBind b = vlm_data_bind_of(m, d, v);
        width += (size_t)m->vars[v].numel;
        masked |= b.data && b.data->mask && m->vars[v].kind == VLM_VAR_OBSERVED;
    }
    out->n = d->n;
    out->d = width;
    out->rank = 1;
    out->shape[0] = (int)width;
    out->x = vlm_xcalloc((d->n ? d->n : 1) * (width ? width : 1), sizeof *out->x);
    if (masked)
        out->mask = vlm_xmalloc((d->n ? d->n : 1) * (width ? width : 1) * sizeof *out->mask);
    size_t col = 0;
    for (int k = 0; k < m->n_data; k++) {
        int v = m->data_var[k];
        size_t nu = (size_t)m->vars[v].numel;
        VlmBind b = vlm_data_bind_of(m, d, v);
        for (size_t i = 0; i < d->n; i++) {
            float *o = out->x + i * width + col;
            if (b.raw)
                vlm_data_rows_raw(b.data, i, 1, b.column, nu, o);
            else
                vlm_data_rows(b.data, i, 1, b.column, nu, o);
            if (!masked)
                continue;
            float *mo = out->mask + i * width + col;
            const float *ms = b.data->mask && m->vars[v].kind == VLM_VAR_OBSERVED
                ? b.data->mask + i * b.data->d + b.column : NULL;
            for (size_t e = 0; e < nu; e++)
                mo[e] = ms ? ms[e] : 1.0f;
        }
        col += nu;
    }
}
