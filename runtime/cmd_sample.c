/* cmd_sample.c — `./model sample`: draws from the model (raw samples or E[x
 * | z]) to .csv, .npy or .png. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ sample */

int vlm_cmd_sample(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->out)
        return vlm_cli_fail("sample needs --out FILE.csv|FILE.png");
    if (!m->desc->sample)
        return vlm_cli_fail("this model has no sampler");
    long D = vlm_cli_total_numel(m);
    size_t n = (size_t)o->n;
    int chunk = n < 4096 ? (int)n : 4096;
    if (vlm_cli_load_trained(m, o, NULL, chunk))
        return 1;
    float *all = vlm_xmalloc(n * (size_t)D * sizeof *all);
    float *os[VLM_MAX_VARS] = {0};
    for (int j = 0; j < m->n_observed; j++)
        os[m->n_latent + j] = vlm_xmalloc(
            (size_t)chunk * (size_t)m->vars[m->n_latent + j].numel *
            sizeof(float));
    m->want_mean = o->mean;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)chunk) {
        int R = n - i0 < (size_t)chunk ? (int)(n - i0) : chunk;
        m->R = m->B = R;
        m->S = 1;
        m->desc->sample(m, os);
        long col = 0;
        for (int j = 0; j < m->n_observed; j++) {
            int v = m->n_latent + j;
            long k = m->vars[v].numel;
            const float *src = o->mean ? m->obs_mean[v] : os[v];
            if (!src) {
                free(all);
                return vlm_cli_fail("the model computes no mean for `%s`",
                            m->vars[v].name);
            }
            for (int r = 0; r < R; r++)
                memcpy(all + (i0 + r) * D + col, src + (size_t)r * k,
                       (size_t)k * sizeof *all);
            col += k;
        }
    }
    int rc = vlm_cli_write_rows(m, o->out, n, D, all, o->shape_h, o->shape_w, &err);
    for (int j = 0; j < VLM_MAX_VARS; j++)
        free(os[j]);
    free(all);
    if (rc != 0)
        return vlm_cli_fail("%s", err.msg);
    printf("wrote %zu %s to %s\n", n, o->mean ? "means" : "samples", o->out);
    return 0;
}
