/* cmd_gradvar.c — `./model gradvar`: variance of the score-function
 * gradient with and without baselines. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ gradvar */

/* Trace of the covariance of the guide's gradient over n draws of the
 * training gradient on one fixed minibatch (items 0..B-1), with S samples
 * per item; `none` fixes the baseline at 0, otherwise the estimator runs
 * as in training (moving average at S = 1 after 20 warm-up draws,
 * leave-one-out at S > 1). Also returns the squared norm of the mean. */
static int grad_trace(VlmModel *m, const VlmData *d, int B, int S, long n,
                      bool none, double *trace, double *mean_sq, VlmErr *err)
{
    size_t nw = m->n_w;
    double *s1 = vlm_xcalloc(nw ? nw : 1, sizeof *s1);
    double *s2 = vlm_xcalloc(nw ? nw : 1, sizeof *s2);
    uint32_t *idx = vlm_xmalloc((size_t)B * sizeof *idx);
    for (int b = 0; b < B; b++)
        idx[b] = (uint32_t)b;
    VlmInfer st;
    vlm_infer_init(&st, VLM_OBJ_ELBO);
    if (none) {          /* baseline 0, never updated (decay 1) */
        st.baseline = 0;
        st.baseline_set = true;
        st.decay = 1;
    }
    int warm = none || S > 1 ? 0 : 20;
    int rc = 0;
    for (long t = 0; t < warm + n && rc == 0; t++) {
        vlm_model_fill_batch(m, d, idx, B, S);
        double obj;
        if ((rc = vlm_infer_grad(m, &st, &obj, err)) != 0 || t < warm)
            continue;
        for (int i = 0; i < m->n_params; i++) {
            const VlmParamInfo *p = &m->params[i];
            if (!p->guide || p->local)
                continue;
            for (size_t k = p->offset; k < p->offset + p->count; k++) {
                s1[k] += m->dw[k];
                s2[k] += (double)m->dw[k] * m->dw[k];
            }
        }
    }
    double tr = 0, ms = 0;
    for (size_t k = 0; k < nw; k++) {
        double mu = s1[k] / n;
        tr += (s2[k] - n * mu * mu) / (n - 1);
        ms += mu * mu;
    }
    *trace = tr;
    *mean_sq = ms;
    free(s1);
    free(s2);
    free(idx);
    return rc;
}

int vlm_cmd_gradvar(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data)
        return vlm_cli_fail("gradvar needs --data FILE");
    int score = -1;
    for (int j = 0; j < m->n_latent && score < 0; j++)
        if (m->vars[j].treat == VLM_TREAT_SCORE)
            score = j;
    if (score < 0)
        return vlm_cli_fail("the model has no latent with a score-function gradient "
                    "(see vlmc --plan): nothing to measure");
    VlmData d;
    if (vlm_cli_read_data(m, o, false, &d))
        return 1;
    if (vlm_cli_want_mask(o))
        vlm_cli_mask_top_half(m, &d, 1);
    int B = o->batch < (int)d.n ? o->batch : (int)d.n;
    long n = o->n > 1 ? o->n : 2;
    int S = o->has_samples ? o->samples : 1;
    if (vlm_cli_load_trained(m, o, NULL, B * S * (int)m->E_max)) {
        vlm_data_free(&d);
        return 1;
    }
    vlm_rng_init(&m->rng, o->seed, VLM_STREAM_NOISE);
    double t0, m0, t1, m1, t2 = 0, m2 = 0;
    int rc = grad_trace(m, &d, B, 1, n, true, &t0, &m0, &err);
    if (rc == 0)
        rc = grad_trace(m, &d, B, 1, n, false, &t1, &m1, &err);
    if (rc == 0 && S > 1)
        rc = grad_trace(m, &d, B, S, n, false, &t2, &m2, &err);
    vlm_data_free(&d);
    if (rc != 0)
        return vlm_cli_fail("%s", err.msg);
    printf("gradvar: guide (phi) gradient of the ELBO on %d items, %ld draws "
           "each; variance = trace of the covariance\n", B, n);
    printf("  no baseline (b = 0)          variance %.6g  |mean|^2 %.6g\n",
           t0, m0);
    printf("  moving-average baseline      variance %.6g  |mean|^2 %.6g\n",
           t1, m1);
    printf("  ratio none / moving average  %.2f\n", t0 / t1);
    if (S > 1) {
        printf("  leave-one-out, %d samples    variance %.6g  |mean|^2 %.6g\n",
               S, t2, m2);
        /* K samples cost K gradient evaluations: per evaluation, the
         * reduction is the ratio divided by K */
        printf("  ratio none / leave-one-out   %.2f  (at equal cost: "
               "%.2f / %d samples = %.2f)\n", t0 / t2, t0 / t2, S,
               t0 / (t2 * S));
    }
    return 0;
}
