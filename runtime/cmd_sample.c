/* cmd_sample.c — `./model sample`: draws from the model (raw samples or E[x
 * | z]) to .csv, .npy or .png. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ sample */

/* The inputs' names, "`u` and `c`", for messages. */
static void input_names(const VlmModel *m, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < m->n_inputs; i++) {
        size_t u = strlen(buf);
        snprintf(buf + u, n - u, "%s`%s`", i ? (i + 1 == m->n_inputs ? " and " : ", ") : "",
                 m->vars[m->n_vars + i].name);
    }
}

/* --latents: the latents of each draw, n rows of nlat values (every
 * latent's elements in declaration order, named `z` or `z[i]`). */
static int write_latents(const VlmModel *m, const char *path, size_t n, long nlat,
                         const float *x, VlmErr *err)
{
    if (vlm_cli_ends_with(path, ".npy"))
        return vlm_data_write_npy(path, n, (size_t)nlat, x, err);
    char **names = vlm_xmalloc((size_t)nlat * sizeof *names);
    long c = 0;
    for (int j = 0; j < m->n_latent; j++)
        for (long i = 0; i < m->vars[j].numel; i++) {
            char buf[160];
            if (m->vars[j].numel == 1)
                snprintf(buf, sizeof buf, "%s", m->vars[j].name);
            else
                snprintf(buf, sizeof buf, "%s[%ld]", m->vars[j].name, i);
            names[c++] = strdup(buf);
        }
    int rc = vlm_data_write_csv(path, (const char *const *)names, n, (size_t)nlat, x, err);
    vlm_cli_free_names(names, nlat);
    return rc;
}

/* Ancestral sampling, -n draws; a model with inputs draws once per row of
 * --data, conditioned on that row's inputs. The rows written hold every
 * data column in declaration order (the inputs as given), so a .csv/.npy
 * output is a data file for the same model; a .png shows the observed
 * values only. */
int vlm_cmd_sample(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->out)
        return vlm_cli_fail("sample needs --out FILE.csv|FILE.png");
    if (!m->desc->sample)
        return vlm_cli_fail("this model has no sampler");
    char names[256];
    input_names(m, names, sizeof names);
    if (m->n_inputs && !o->data)
        return vlm_cli_fail("the model has inputs (%s): sample needs --data FILE with "
                            "their values, one draw per row", names);
    if (!m->n_inputs && o->data)
        return vlm_cli_fail("the model has no inputs: sample takes no --data (use -n N)");
    if (o->data && o->has_n)
        return vlm_cli_fail("sample draws once per row of --data: give --limit N "
                            "instead of -n to draw fewer");
    VlmData d;
    bool have_data = false;
    if (o->data) {
        if (vlm_cli_read_data(m, o, false, &d))
            return 1;
        have_data = true;
    }
    bool png = vlm_cli_ends_with(o->out, ".png");
    /* the columns written: every data variable, or the observed (png) */
    long D = png ? vlm_cli_total_numel(m) : vlm_cli_data_numel(m);
    size_t n = have_data ? d.n : (size_t)o->n;
    int chunk = n < 4096 ? (int)n : 4096;
    if (vlm_cli_load_trained(m, o, NULL, chunk)) {
        if (have_data)
            vlm_data_free(&d);
        return 1;
    }
    float *all = vlm_xmalloc(n * (size_t)D * sizeof *all);
    float *os[VLM_MAX_VARS] = {0};
    uint32_t *idx = vlm_xmalloc((size_t)chunk * sizeof *idx);
    for (int j = 0; j < m->n_observed; j++)
        os[m->n_latent + j] = vlm_xmalloc(
            (size_t)chunk * (size_t)m->vars[m->n_latent + j].numel *
            sizeof(float));
    m->want_mean = o->mean;
    int ret = 0;
    long nlat = 0;
    for (int j = 0; j < m->n_latent; j++)
        nlat += m->vars[j].numel;
    if (o->latents && nlat == 0)
        ret = vlm_cli_fail("--latents: the model has no latent variables");
    float *lat_all = o->latents && nlat ? vlm_xmalloc(n * (size_t)nlat * sizeof *lat_all) : NULL;
    for (size_t i0 = 0; i0 < n && ret == 0; i0 += (size_t)chunk) {
        int R = n - i0 < (size_t)chunk ? (int)(n - i0) : chunk;
        if (have_data) {
            for (int b = 0; b < R; b++)
                idx[b] = (uint32_t)(i0 + b);
            vlm_model_fill_inputs(m, &d, idx, R);
        } else {
            m->R = m->B = R;
            m->S = 1;
        }
        m->desc->sample(m, os);
        for (int r = 0, c = 0; lat_all && r < R; r++, c = 0)
            for (int j = 0; j < m->n_latent; j++) {
                long nu = m->vars[j].numel;
                memcpy(lat_all + (i0 + r) * nlat + c, m->lat[j] + (size_t)r * nu,
                       (size_t)nu * sizeof *lat_all);
                c += nu;
            }
        long col = 0;
        for (int k = 0; k < m->n_data; k++) {
            int v = m->data_var[k];
            long nu = m->vars[v].numel;
            bool input = m->vars[v].kind == VLM_VAR_INPUT;
            if (input && png)
                continue;
            const float *src = input ? m->obs[v] : o->mean ? m->obs_mean[v] : os[v];
            if (!src) {
                ret = vlm_cli_fail("the model computes no mean for `%s`", m->vars[v].name);
                break;
            }
            for (int r = 0; r < R; r++)
                memcpy(all + (i0 + r) * D + col, src + (size_t)r * nu,
                       (size_t)nu * sizeof *all);
            col += nu;
        }
    }
    if (ret == 0 &&
        vlm_cli_write_rows(m, o->out, n, D, all, o->shape_h, o->shape_w, &err) != 0)
        ret = vlm_cli_fail("%s", err.msg);
    if (ret == 0 && lat_all && write_latents(m, o->latents, n, nlat, lat_all, &err) != 0)
        ret = vlm_cli_fail("%s", err.msg);
    if (ret == 0) {
        if (have_data)
            printf("wrote %zu %s to %s, one per row of the data, conditioned on "
                   "its inputs %s\n", n, o->mean ? "means" : "samples", o->out, names);
        else
            printf("wrote %zu %s to %s\n", n, o->mean ? "means" : "samples", o->out);
    }
    for (int j = 0; j < VLM_MAX_VARS; j++)
        free(os[j]);
    free(lat_all);
    free(all);
    free(idx);
    if (have_data)
        vlm_data_free(&d);
    return ret;
}
