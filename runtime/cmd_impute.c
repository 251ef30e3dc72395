/* cmd_impute.c — `./model impute`: fills missing entries with
 * posterior-predictive means (or reconstructs every entry). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ impute */

int vlm_cmd_impute(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data || !o->out)
        return vlm_cli_fail("impute needs --data FILE and --out FILE");
    VlmData d;
    if (vlm_cli_read_data(m, o, o->data, &d))
        return 1;
    vlm_data_floats(&d);   /* values are rewritten below */
    size_t n = d.n, D = d.d;
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
        /* the first half of each item's values: the top rows of a
         * row-major image */
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < D / 2; k++)
                mask[i * D + k] = 0;
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
    int Bp = rows / SE;
    double *wrow = vlm_xmalloc((size_t)Bp * SE * sizeof *wrow);
    uint32_t *idx = vlm_xmalloc((size_t)Bp * sizeof *idx);
    int rc = 0;
    for (size_t i0 = 0; i0 < n && rc == 0; i0 += (size_t)Bp) {
        int nb = n - i0 < (size_t)Bp ? (int)(n - i0) : Bp;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        vlm_model_fill_batch(m, &d, idx, nb, S);
        if ((rc = vlm_infer_row_weights(m, wrow, &err)) != 0)
            break;
        for (int b = 0; b < nb; b++) {
            size_t it = i0 + b;
            long col = 0;
            for (int j = 0; j < m->n_observed; j++) {
                int v = m->n_latent + j;
                long nu = m->vars[v].numel;
                const float *mean = m->obs_mean[v];
                for (long k = 0; k < nu; k++) {
                    size_t e = it * D + col + k;
                    if (mask[e] != 0 && !o->reconstruct) {
                        imp[e] = d.x[e];
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
    if (rc != 0) {
        ret = vlm_cli_fail("%s", err.msg);
        goto done;
    }
    /* image shape of --out .png and --png: an explicit --shape, else the
     * data's own (IDX/NPY), else square (vlm_cli_image_shape) */
    bool own = o->shape_h <= 0 && d.rank == 2;
    int sh = own ? d.shape[0] : o->shape_h;
    int sw = own ? d.shape[1] : o->shape_w;
    if (vlm_cli_write_rows(m, o->out, n, (long)D, imp, sh, sw, &err) != 0) {
        ret = vlm_cli_fail("%s", err.msg);
        goto done;
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
        if (!vlm_cli_image_shape((long)D, sh, sw, &H, &W)) {
            ret = vlm_cli_fail("%s: %zu values per item are not an image", o->png, D);
            goto done;
        }
        int k = n < 10 ? (int)n : 10;
        float *g = vlm_xmalloc((size_t)3 * k * D * sizeof *g);
        for (int i = 0; i < k; i++)
            for (size_t e = 0; e < D; e++) {
                size_t at = (size_t)i * D + e;
                float t = truth[at];
                g[at] = mask[at] != 0 ? t : 0.5f;        // observed (grey)
                g[(size_t)k * D + at] = imp[at];
                g[(size_t)2 * k * D + at] = isnan(t) ? 0.5f : t;
            }
        if (vlm_png_grid(o->png, g, 3 * k, H, W, k, &err) != 0)
            ret = vlm_cli_fail("%s", err.msg);
        else
            printf("wrote %s (rows: observed, %s, true)\n", o->png,
                   o->reconstruct ? "reconstructed" : "imputed");
        free(g);
    }
done:
    free(truth);
    free(imp);
    free(wrow);
    free(idx);
    vlm_data_free(&d);
    return ret;
}
