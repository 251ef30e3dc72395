/* cmd_impute.c — `./model impute`: fills missing entries with
 * posterior-predictive means (or reconstructs every entry). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ impute */

/* The observed columns of n rows of D data columns (a copy; inputs left
 * out), for images. */
static float *observed_cols(const VlmModel *m, size_t n, long D, const float *x, long *Dobs)
{
    *Dobs = vlm_cli_total_numel(m);
    float *o = vlm_xmalloc(n * (size_t)*Dobs * sizeof *o + 1);
    for (size_t i = 0; i < n; i++) {
        long col = 0, oc = 0;
        for (int k = 0; k < m->n_data; k++) {
            int v = m->data_var[k];
            long nu = m->vars[v].numel;
            if (m->vars[v].kind == VLM_VAR_OBSERVED) {
                memcpy(o + i * *Dobs + oc, x + i * D + col, (size_t)nu * sizeof *o);
                oc += nu;
            }
            col += nu;
        }
    }
    return o;
}

/* A missing entry k of a discrete variable v summed out where missing:
 * the posterior probability of each value from the weights of item b's SE
 * rows (probs: support floats), and the most probable value. */
static float most_probable(const VlmModel *m, int v, long k, const double *wrow,
                           int b, int SE, float *probs)
{
    long K = m->vars[v].support, nu = m->vars[v].numel;
    for (long g = 0; g < K; g++)
        probs[g] = 0;
    for (int q = 0; q < SE; q++) {
        size_t r = (size_t)b * SE + q;
        long g = (long)m->lat[v][r * nu + k];
        if (g >= 0 && g < K)
            probs[g] += (float)wrow[r];
    }
    long best = 0;
    for (long g = 1; g < K; g++)
        if (probs[g] > probs[best])
            best = g;
    return (float)best;
}

/* Missing entries of the observed variables replaced by their
 * posterior-predictive means; inputs are given, never imputed, and are
 * written back as they were (the output has the data's columns). */
int vlm_cmd_impute(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data || !o->out)
        return vlm_cli_fail("impute needs --data FILE and --out FILE");
    if (m->markov_var >= 0)   /* rows weigh states, not steps */
        return vlm_cli_fail("impute does not support Markov chains yet (`%s`): use "
                            "posterior for p(z[t] | x)", m->vars[m->markov_var].name);
    VlmData d;
    if (vlm_cli_read_data(m, o, false, &d))
        return 1;
    if (d.bind) {   /* several files: one in the plain layout */
        VlmData plain;
        vlm_data_merge(m, &d, &plain);
        vlm_data_free(&d);
        d = plain;
    }
    vlm_data_floats(&d);   /* values are rewritten below */
    size_t n = d.n, D = d.d;
    /* which columns are observed (the rest are inputs) */
    char *is_obs = vlm_xcalloc(D + 1, 1);
    long n_obs_cols = 0;
    for (int k = 0, col = 0; k < m->n_data; k++) {
        int v = m->data_var[k];
        for (long e = 0; e < m->vars[v].numel; e++, col++)
            if (m->vars[v].kind == VLM_VAR_OBSERVED)
                is_obs[col] = 1, n_obs_cols++;
    }
    /* truth: the data as read (NaN where missing); mask: 1 = observed in
     * what the model sees (data mask x synthetic mask). */
    float *truth = vlm_xmalloc(n * D * sizeof *truth);
    for (size_t i = 0; i < n * D; i++)
        truth[i] = d.mask && d.mask[i] == 0 ? NAN : d.x[i];
    bool synthetic = o->mask && !strcmp(o->mask, "top-half");
    if (!d.mask)
        d.mask = vlm_xmalloc(n * D * sizeof *d.mask);
    float *mask = d.mask;
    for (size_t i = 0; i < n * D; i++)
        mask[i] = isnan(truth[i]) ? 0.0f : 1.0f;
    if (synthetic)
        /* the first half of each item's observed values: the top rows of
         * a row-major image */
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0, seen = 0; k < D && seen < (size_t)n_obs_cols / 2; k++)
                if (is_obs[k]) {
                    mask[i * D + k] = 0;
                    seen++;
                }
    for (size_t i = 0; i < n * D; i++)
        if (mask[i] == 0)
            d.x[i] = 0;
    int S, SE, rows = vlm_cli_draw_rows(m, o, &S, &SE);
    if (vlm_cli_load_trained(m, o, &d, rows)) {
        free(truth);
        vlm_data_free(&d);
        return 1;
    }
    m->want_mean = true;
    float *imp = vlm_xmalloc(n * D * sizeof *imp);
    long Kmax = 1;
    for (int v = m->n_latent; v < m->n_vars; v++)
        if (m->vars[v].support > Kmax)
            Kmax = m->vars[v].support;
    float *probs = vlm_xmalloc((size_t)Kmax * sizeof *probs);
    /* --probs: per item, p(value) of every discrete variable summed out
     * where missing (certainty of the given value elsewhere) */
    long pcol = 0;
    for (int v = m->n_latent; v < m->n_vars; v++)
        if (m->vars[v].treat == VLM_TREAT_ENUMERATE)
            pcol += m->vars[v].numel * m->vars[v].support;
    if (o->probs && pcol == 0) {
        free(imp);
        free(probs);
        free(truth);
        vlm_data_free(&d);
        return vlm_cli_fail("--probs: the model has no partly observed discrete variable");
    }
    float *pout = o->probs ? vlm_xcalloc(n * (size_t)pcol, sizeof *pout) : NULL;
    int Bp = rows / SE;
    double *wrow = vlm_xmalloc((size_t)Bp * SE * sizeof *wrow);
    uint32_t *idx = vlm_xmalloc((size_t)Bp * sizeof *idx);
    VlmItemStats *st = vlm_xmalloc(n * sizeof *st);
    int rc = 0;
    /* MPI: each rank its contiguous share of the items, gathered below */
    size_t lo, hi;
    vlm_shard_range(n, vlm_comm_world()->rank, vlm_comm_world()->size, &lo, &hi);
    for (size_t i0 = lo; i0 < hi && rc == 0; i0 += (size_t)Bp) {
        int nb = hi - i0 < (size_t)Bp ? (int)(hi - i0) : Bp;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        vlm_model_fill_batch(m, &d, idx, nb, S);
        if ((rc = vlm_infer_row_weights(m, wrow, st + i0, &err)) != 0)
            break;
        for (int b = 0; b < nb && pout; b++) {
            long pc = 0;
            for (int v = m->n_latent; v < m->n_vars; v++) {
                if (m->vars[v].treat != VLM_TREAT_ENUMERATE)
                    continue;
                for (long k = 0; k < m->vars[v].numel; k++) {
                    most_probable(m, v, k, wrow, b, SE, pout + (i0 + b) * (size_t)pcol + pc);
                    pc += m->vars[v].support;
                }
            }
        }
        for (int b = 0; b < nb; b++) {
            size_t it = i0 + b;
            long col = 0;
            for (int j = 0; j < m->n_data; j++) {
                int v = m->data_var[j];
                long nu = m->vars[v].numel;
                const float *mean = m->obs_mean[v];
                bool input = m->vars[v].kind == VLM_VAR_INPUT;
                bool summed = m->vars[v].treat == VLM_TREAT_ENUMERATE;
                for (long k = 0; k < nu; k++) {
                    size_t e = it * D + col + k;
                    if (input || (mask[e] != 0 && !o->reconstruct)) {
                        imp[e] = d.x[e];
                        continue;
                    }
                    if (summed) {   /* its most probable value, not a mean */
                        imp[e] = most_probable(m, v, k, wrow, b, SE, probs);
                        continue;
                    }
                    double s = 0;
                    for (int q = 0; q < SE; q++) {
                        size_t r = (size_t)b * SE + q;
                        s += wrow[r] * (mean ? mean[r * nu + k] : NAN);
                    }
                    imp[e] = (float)s;
                }
                col += nu;
            }
        }
    }
    int ret = 0;
    if (vlm_mpi_parallel()) {
        rc = vlm_mpi_agree(rc, &err);
        if (rc == 0) {
            vlm_mpi_gather_items(imp, D * sizeof *imp, n);
            vlm_mpi_gather_items(st, sizeof *st, n);
            if (pout)
                vlm_mpi_gather_items(pout, (size_t)pcol * sizeof *pout, n);
        }
        if (rc == 0 && vlm_comm_world()->rank > 0)
            goto done;   /* rank 0 alone writes */
    }
    if (rc != 0) {
        ret = vlm_cli_fail("%s", err.msg);
        goto done;
    }
    VlmEvidence ev;
    vlm_evidence_summarize(n, st, S, vlm_model_exact(m), m->local_width > 0,
                           &ev);
    vlm_evidence_line(stderr, &ev, "impute");
    /* image shape of --out .png and --png: an explicit --shape, else the
     * file's own (IDX/NPY) when it holds the observed values alone, else
     * square (vlm_cli_image_shape) */
    bool img_file = d.rank == 2 && (long)D == n_obs_cols;
    bool own = o->shape_h <= 0 && img_file;
    int sh = own ? d.shape[0] : o->shape_h, sw = own ? d.shape[1] : o->shape_w;
    if (vlm_cli_ends_with(o->out, ".png") && (long)D != n_obs_cols) {
        long Dobs;
        float *io = observed_cols(m, n, (long)D, imp, &Dobs);
        int wrc = vlm_cli_write_rows(m, o->out, n, Dobs, io, sh, sw, &err);
        free(io);
        if (wrc != 0) {
            ret = vlm_cli_fail("%s", err.msg);
            goto done;
        }
    } else if (vlm_cli_write_rows(m, o->out, n, (long)D, imp, sh, sw, &err) != 0) {
        ret = vlm_cli_fail("%s", err.msg);
        goto done;
    }
    if (pout) {
        char **names = vlm_xmalloc((size_t)pcol * sizeof *names);
        long c = 0;
        for (int v = m->n_latent; v < m->n_vars; v++)
            for (long k = 0; k < m->vars[v].numel && m->vars[v].treat == VLM_TREAT_ENUMERATE; k++)
                for (long g = 0; g < m->vars[v].support; g++) {
                    char buf[128];
                    if (m->vars[v].numel == 1)
                        snprintf(buf, sizeof buf, "p(%s=%ld)", m->vars[v].name, g);
                    else
                        snprintf(buf, sizeof buf, "p(%s[%ld]=%ld)", m->vars[v].name, k, g);
                    names[c++] = strdup(buf);
                }
        int prc = vlm_data_write_csv(o->probs, (const char *const *)names, n, (size_t)pcol, pout, &err);
        vlm_cli_free_names(names, pcol);
        if (prc != 0) {
            ret = vlm_cli_fail("%s", err.msg);
            goto done;
        }
        printf("wrote the probabilities of the discrete values to %s\n", o->probs);
    }
    size_t missing = 0;
    for (size_t i = 0; i < n * D; i++)
        missing += mask[i] == 0;
    if (o->reconstruct)
        printf("reconstructed %zu items (E[x | z], z from the posterior given "
               "the observed entries); wrote %s\n", n, o->out);
    else
        printf("imputed %zu missing values of %zu items; wrote %s\n", missing,
               n, o->out);
    if (synthetic) {
        /* MSE on the entries the mask hid but the data knows, against
         * filling each entry with its mean over the data's known values. */
        double se = 0, se_mean = 0;
        size_t cnt = 0;
        for (size_t k = 0; k < D; k++) {
            double mu = 0;
            size_t c = 0;
            for (size_t i = 0; i < n; i++)
                if (!isnan(truth[i * D + k]))
                    mu += truth[i * D + k], c++;
            mu = c ? mu / c : 0;
            for (size_t i = 0; i < n; i++) {
                size_t e = i * D + k;
                if (mask[e] == 0 && !isnan(truth[e])) {
                    se += (imp[e] - truth[e]) * (imp[e] - truth[e]);
                    se_mean += (mu - truth[e]) * (mu - truth[e]);
                    cnt++;
                }
            }
        }
        if (cnt)
            printf("hidden entries: %zu  MSE %.6f  (per-entry mean of the "
                   "data: MSE %.6f)\n", cnt, se / cnt, se_mean / cnt);
    }
    if (o->png) {
        int H, W;
        int k = n < 10 ? (int)n : 10;
        /* the observed columns of the first k items */
        long Dp;
        float *tr = observed_cols(m, (size_t)k, (long)D, truth, &Dp);
        float *mk = observed_cols(m, (size_t)k, (long)D, mask, &Dp);
        float *im = observed_cols(m, (size_t)k, (long)D, imp, &Dp);
        if (!vlm_cli_image_shape(Dp, sh, sw, &H, &W)) {
            free(tr);
            free(mk);
            free(im);
            ret = vlm_cli_fail("%s: %ld values per item are not an image", o->png, Dp);
            goto done;
        }
        float *g = vlm_xmalloc((size_t)3 * k * Dp * sizeof *g);
        for (int i = 0; i < k; i++)
            for (long e = 0; e < Dp; e++) {
                size_t at = (size_t)i * Dp + e;
                float t = tr[at];
                g[at] = mk[at] != 0 ? t : 0.5f;        // observed (grey)
                g[(size_t)k * Dp + at] = im[at];
                g[(size_t)2 * k * Dp + at] = isnan(t) ? 0.5f : t;
            }
        free(tr);
        free(mk);
        free(im);
        if (vlm_png_grid(o->png, g, 3 * k, H, W, k, &err) != 0)
            ret = vlm_cli_fail("%s", err.msg);
        else
            printf("wrote %s (rows: observed, %s, true)\n", o->png,
                   o->reconstruct ? "reconstructed" : "imputed");
        free(g);
    }
done:
    free(is_obs);
    free(truth);
    free(imp);
    free(st);
    free(probs);
    free(pout);
    free(wrow);
    free(idx);
    vlm_data_free(&d);
    return ret;
}
