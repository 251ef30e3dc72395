/* test_infer.c — CUnit suite "infer": the generic estimators against exact
 * answers. Three small models are written by hand exactly as vlmc's
 * generated code implements VlmModelDesc (so they double as the reference
 * for the generator): a mixture of Gaussians with its latent enumerated
 * (shared with the driver fixture through tests/fixtures/mog_model.h), a
 * linear-Gaussian model (PPCA) with a reparameterized Normal guide, and
 * three binary latents under a score-function guide. Tolerances come from
 * the Monte Carlo standard error; seeds are fixed. */
#include "vlm.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const float k_zero = 0.0f, k_one = 1.0f;

/* model 1, the mixture, and the helpers the other models use */
#define MOG_MU_INIT_SD 1
#define MOG_LOG_SIGMA_INIT 0
#include "../fixtures/mog_model.h"

static const VlmModelDesc mog_desc = {
    .name = "mog", .source = "(hand-written)", .plan = "z: enumerate (3)\n",
    .n_consts = 2, .const_names = mog_const_names, .const_values = mog_consts,
    .configure = mog_configure, .alloc = mog_alloc, .release = mog_release,
    .guide_fwd = nothing, .model_fwd = mog_model_fwd,
    .model_bwd = mog_model_bwd, .guide_bwd = nothing, .sample = mog_sample,
};

/* log p(x) of the mixture, directly, in double (w as doubles). */
static double mog_logpx(const double *w, const float *x)
{
    int K = mg.K, D = mg.D;
    double mx = -INFINITY, lp[16];
    double lz = -INFINITY;
    for (int k = 0; k < K; k++)
        lz = fmax(lz, w[k]);
    double s = 0;
    for (int k = 0; k < K; k++)
        s += exp(w[k] - lz);
    lz += log(s);
    for (int k = 0; k < K; k++) {
        lp[k] = w[k] - lz;
        for (int d = 0; d < D; d++) {
            double mu = w[K + k * D + d], ls = w[K + K * D + k * D + d];
            double u = (x[d] - mu) / exp(ls);
            lp[k] += -0.5 * u * u - ls - 0.5 * log(2 * M_PI);
        }
        mx = fmax(mx, lp[k]);
    }
    s = 0;
    for (int k = 0; k < K; k++)
        s += exp(lp[k] - mx);
    return mx + log(s);
}

static void make_data(VlmData *d, size_t n, size_t dim, const float *x)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->d = dim;
    d->rank = 1;
    d->shape[0] = (int)dim;
    d->x = vlm_xmalloc(n * dim * sizeof(float));
    memcpy(d->x, x, n * dim * sizeof(float));
}

static void test_mog_exact(void)
{
    VlmModel m;
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(&m, &mog_desc, &err) == 0);
    vlm_model_alloc_rows(&m, 64 * 3);
    vlm_model_init_params(&m, 7);
    for (int k = 0; k < 3; k++) {       // distinct clusters, unequal weights
        m.w[k] = 0.3f * k - 0.2f;
        for (int d = 0; d < 2; d++)
            m.w[3 + 9 + k * 2 + d] = 0.2f * (k - d) - 0.3f;
    }
    float x[7 * 2];
    for (int i = 0; i < 14; i++)
        x[i] = (float)(sin(1.7 * i + 0.3) * 2.0);
    VlmData data;
    make_data(&data, 7, 2, x);
    CU_ASSERT(vlm_model_exact(&m));

    VlmItemStats st[7];
    CU_ASSERT_FATAL(vlm_infer_eval_data(&m, &data, 100, st, &err) == 0);
    double w[15];
    for (int i = 0; i < 15; i++)
        w[i] = m.w[i];
    double worst = 0;
    for (int i = 0; i < 7; i++) {
        double ref = mog_logpx(w, x + 2 * i);
        worst = fmax(worst, fabs(st[i].iwae - ref));
        CU_ASSERT(fabs(st[i].iwae - ref) < 1e-5 * (1 + fabs(ref)));
        CU_ASSERT(st[i].elbo == st[i].iwae && st[i].se == 0);
    }
    printf("\n  mog exact log p(x): max |driver - direct| = %.2e\n", worst);

    /* Gradient of loss = -mean_i log p(x_i) vs central differences. */
    uint32_t idx[7] = {0, 1, 2, 3, 4, 5, 6};
    VlmInfer inf;
    vlm_infer_init(&inf, VLM_OBJ_ELBO);
    vlm_model_fill_batch(&m, &data, idx, 7, 1);
    double obj;
    CU_ASSERT_FATAL(vlm_infer_grad(&m, &inf, &obj, &err) == 0);
    double ref_obj = 0;
    for (int i = 0; i < 7; i++)
        ref_obj += mog_logpx(w, x + 2 * i);
    CU_ASSERT(fabs(obj - ref_obj) < 1e-4);
    double maxerr = 0;
    for (int j = 0; j < 15; j++) {
        double h = 1e-4, wp[15], wm[15], fp = 0, fm = 0;
        memcpy(wp, w, sizeof w);
        memcpy(wm, w, sizeof w);
        wp[j] += h;
        wm[j] -= h;
        for (int i = 0; i < 7; i++) {
            fp -= mog_logpx(wp, x + 2 * i) / 7;
            fm -= mog_logpx(wm, x + 2 * i) / 7;
        }
        double fd = (fp - fm) / (2 * h);
        double e = fabs(m.dw[j] - fd) / (1e-3 + fabs(fd));
        maxerr = fmax(maxerr, e);
        if (e > 1e-3)
            printf("\n  mog grad %d: driver %.6g fd %.6g\n", j, m.dw[j], fd);
        CU_ASSERT(e < 1e-3);
    }
    printf("  mog gradient vs FD: max rel err %.2e\n", maxerr);

    /* obs_mask: a missing entry drops out of log p(x) exactly. */
    float mk[14];
    for (int i = 0; i < 14; i++)
        mk[i] = i == 3 ? 0.0f : 1.0f;
    data.mask = mk;
    CU_ASSERT_FATAL(vlm_infer_eval_data(&m, &data, 1, st, &err) == 0);
    {
        /* item 1 with x[1][1] missing: marginal over the first coordinate */
        double lz = -INFINITY, lp[3], mx = -INFINITY, s = 0;
        for (int k = 0; k < 3; k++) lz = fmax(lz, w[k]);
        for (int k = 0; k < 3; k++) s += exp(w[k] - lz);
        lz += log(s);
        for (int k = 0; k < 3; k++) {
            double mu = w[3 + k * 2], ls = w[9 + k * 2];
            double u = (x[2] - mu) / exp(ls);
            lp[k] = w[k] - lz - 0.5 * u * u - ls - 0.5 * log(2 * M_PI);
            mx = fmax(mx, lp[k]);
        }
        s = 0;
        for (int k = 0; k < 3; k++) s += exp(lp[k] - mx);
        CU_ASSERT(fabs(st[1].iwae - (mx + log(s))) < 1e-5);
    }
    data.mask = NULL;
    vlm_data_free(&data);
    vlm_model_free(&m);
}

/* ================================================================ model 2
 * latent z[2] ~ Normal(0, 1);
 * param W[3, 2]; param b[3]; param log_sigma;
 * observed x[3] ~ Normal(W @ z + b, exp(log_sigma));
 * guide { param qm[2]; param qls[2]; z ~ Normal(qm, exp(qls)); }
 * w = W (6) | b (3) | log_sigma (1) | qm (2) | qls (2) */
static struct {
    float *eps, *z, *dz, *dzt, *xm, *xm2, *dxm, *qloc, *qscale;
    float qs[2], dqs[2], sig, dsig;
    double *lpz, *lpx, *lqz;
    /* the local variant: guide local { param qm[2]; param qls[2]; ... } */
    bool local;
    float *qrow, *dqrow, *qsr, *dqsr;   // (R,4) gathered rows, (R,2) scales
} pp;

static int ppca_configure(VlmModel *m, VlmErr *err)
{
    (void)err;
    m->n_params = 5;
    set_param(&m->params[0], "W", 2, 3, 2, 0, VLM_INIT_FAN_IN, 3, 0, false);
    set_param(&m->params[1], "b", 1, 3, 0, 6, VLM_INIT_CONST, 0, 0, false);
    set_param(&m->params[2], "log_sigma", 0, 1, 0, 9, VLM_INIT_CONST, 0, 0,
              false);
    set_param(&m->params[3], "qm", 1, 2, 0, 10, VLM_INIT_CONST, 0, 0, true);
    set_param(&m->params[4], "qls", 1, 2, 0, 12, VLM_INIT_CONST, 0, 0, true);
    m->n_vars = 2;
    m->n_latent = m->n_observed = 1;
    set_var(&m->vars[0], "z", VLM_VAR_LATENT, VLM_TREAT_REPARAM, "Normal",
            false, 2, 0);
    set_var(&m->vars[1], "x", VLM_VAR_OBSERVED, VLM_TREAT_NONE, "Normal",
            false, 3, 0);
    m->n_w = 14;
    m->E = 1;
    m->hash = 0x70706361ull;
    if (pp.local) {     // qm, qls: one row of loc per item, w keeps 10
        m->params[3].local = m->params[4].local = true;
        m->params[3].offset = 0;
        m->params[4].offset = 2;
        m->params[3].init = m->params[4].init = VLM_INIT_NORMAL;
        m->params[3].b = m->params[4].b = 0.1f;
        m->n_w = 10;
        m->local_width = 4;
        m->hash ^= 1;
    }
    return 0;
}

static void ppca_alloc(VlmModel *m, int Rmax)
{
    size_t R = (size_t)Rmax;
    pp.eps = vlm_xcalloc(R * 2, sizeof(float));
    pp.z = vlm_xcalloc(R * 2, sizeof(float));
    pp.dz = vlm_xcalloc(R * 2, sizeof(float));
    pp.dzt = vlm_xcalloc(R * 2, sizeof(float));
    pp.qloc = vlm_xcalloc(R * 2, sizeof(float));
    pp.qscale = vlm_xcalloc(R * 2, sizeof(float));
    pp.xm = vlm_xcalloc(R * 3, sizeof(float));
    pp.xm2 = vlm_xcalloc(R * 3, sizeof(float));
    pp.dxm = vlm_xcalloc(R * 3, sizeof(float));
    pp.lpz = vlm_xcalloc(R, sizeof(double));
    pp.lpx = vlm_xcalloc(R, sizeof(double));
    pp.lqz = vlm_xcalloc(R, sizeof(double));
    pp.qrow = vlm_xcalloc(R * 4, sizeof(float));
    pp.dqrow = vlm_xcalloc(R * 4, sizeof(float));
    pp.qsr = vlm_xcalloc(R * 2, sizeof(float));
    pp.dqsr = vlm_xcalloc(R * 2, sizeof(float));
    m->lat[0] = pp.z;
    m->dlat[0] = pp.dz;
    m->logp_term[0] = pp.lpz;
    m->logp_term[1] = pp.lpx;
    m->logq_term[0] = pp.lqz;
    m->q_loc[0] = pp.qloc;
    m->q_scale[0] = pp.qscale;
    m->obs_mean[1] = pp.xm2;
}

static void ppca_release(VlmModel *m)
{
    free(pp.eps); free(pp.z); free(pp.dz); free(pp.dzt); free(pp.qloc);
    free(pp.qscale); free(pp.xm); free(pp.xm2); free(pp.dxm);
    free(pp.lpz); free(pp.lpx); free(pp.lqz);
    free(pp.qrow); free(pp.dqrow); free(pp.qsr); free(pp.dqsr);
    memset(m->lat, 0, sizeof m->lat);
    memset(m->dlat, 0, sizeof m->dlat);
}

/* The rows' item indices as the gather kernels take them (floats) */
static float *row_items(const VlmModel *m)
{
    float *f = vlm_xmalloc((size_t)m->R * sizeof *f);
    for (int r = 0; r < m->R; r++)
        f[r] = (float)m->row_item[r];
    return f;
}

static void ppca_guide_fwd(VlmModel *m)
{
    int R = m->R, G = R / (int)m->E;
    vlm_dist_normal_noise(&m->rng, (size_t)G * 2, pp.eps);
    vlm_rows_repeat(G, (int)m->E, 2, pp.eps);
    VlmIn th[2] = {vin(m->w + 10, 0, 1), vin(pp.qs, 0, 1)};
    if (pp.local) {
        float *item = row_items(m);
        vlm_gather_fwd(R, 4, m->loc, item, pp.qrow);  // loc[item] (R,4)
        free(item);
        vlm_ew_copy_fwd(R, 2, vin(pp.qrow + 2, 4, 1), pp.dqsr);
        vlm_ew_fn_fwd(VLM_FN_EXP, (size_t)R * 2, pp.dqsr, pp.qsr);
        th[0] = vin(pp.qrow, 4, 1);
        th[1] = vin(pp.qsr, 2, 1);
    } else {
        vlm_ew_fn_fwd(VLM_FN_EXP, 2, m->w + 12, pp.qs);
    }
    vlm_dist_normal_rsample(R, 2, th, pp.eps, pp.z);
    vlm_dist_normal_logp(R, 2, 1, vin(pp.z, 2, 1), th, vin(NULL, 0, 0),
                         pp.lqz);
    vlm_ew_copy_fwd(R, 2, th[0], pp.qloc);
    vlm_ew_copy_fwd(R, 2, th[1], pp.qscale);
}

static void ppca_model_fwd(VlmModel *m)
{
    int R = m->R;
    VlmIn thz[2] = {vin(&k_zero, 0, 0), vin(&k_one, 0, 0)};
    vlm_dist_normal_logp(R, 2, 1, vin(pp.z, 2, 1), thz, vin(NULL, 0, 0),
                         pp.lpz);
    vlm_nn_matvec_fwd(R, 3, 2, m->w, pp.z, pp.xm);          // W @ z (R,3)
    vlm_ew_add_fwd(R, 3, vin(pp.xm, 3, 1), vin(m->w + 6, 0, 1), pp.xm2);
    vlm_ew_fn_fwd(VLM_FN_EXP, 1, m->w + 9, &pp.sig);
    VlmIn thx[2] = {vin(pp.xm2, 3, 1), vin(&pp.sig, 0, 0)};
    vlm_dist_normal_logp(R, 3, 1, vin(m->obs[1], 3, 1), thx,
                         vin(m->obs_mask[1], 3, 1), pp.lpx);
}

static void ppca_model_bwd(VlmModel *m)
{
    int R = m->R;
    memset(pp.dz, 0, (size_t)R * 2 * sizeof(float));
    VlmIn thz[2] = {vin(&k_zero, 0, 0), vin(&k_one, 0, 0)};
    vlm_dist_normal_logp_bwd(R, 2, 1, vin(pp.z, 2, 1), thz, vin(NULL, 0, 0),
                             m->dlogp, vout(pp.dz, 2, 1), NULL);
    memset(pp.dxm, 0, (size_t)R * 3 * sizeof(float));
    pp.dsig = 0;
    VlmIn thx[2] = {vin(pp.xm2, 3, 1), vin(&pp.sig, 0, 0)};
    VlmOut dthx[2] = {vout(pp.dxm, 3, 1), vout(&pp.dsig, 0, 0)};
    vlm_dist_normal_logp_bwd(R, 3, 1, vin(m->obs[1], 3, 1), thx,
                             vin(m->obs_mask[1], 3, 1), m->dlogp,
                             vout(NULL, 0, 0), dthx);
    vlm_ew_fn_bwd(VLM_FN_EXP, 1, NULL, &pp.sig, &pp.dsig, m->dw + 9);
    vlm_ew_add_bwd(R, 3, pp.dxm, vout(NULL, 0, 0), vout(m->dw + 6, 0, 1));
    vlm_nn_matvec_bwd(R, 3, 2, m->w, pp.z, pp.dxm, m->dw, pp.dz);
}

static void ppca_guide_bwd(VlmModel *m)
{
    int R = m->R;
    memcpy(pp.dzt, pp.dz, (size_t)R * 2 * sizeof(float));
    pp.dqs[0] = pp.dqs[1] = 0;
    VlmIn th[2] = {vin(m->w + 10, 0, 1), vin(pp.qs, 0, 1)};
    VlmOut dth[2] = {vout(m->dw + 10, 0, 1), vout(pp.dqs, 0, 1)};
    if (pp.local) {
        memset(pp.dqrow, 0, (size_t)R * 4 * sizeof(float));
        memset(pp.dqsr, 0, (size_t)R * 2 * sizeof(float));
        th[0] = vin(pp.qrow, 4, 1);
        th[1] = vin(pp.qsr, 2, 1);
        dth[0] = vout(pp.dqrow, 4, 1);
        dth[1] = vout(pp.dqsr, 2, 1);
    }
    vlm_dist_normal_logp_bwd(R, 2, 1, vin(pp.z, 2, 1), th, vin(NULL, 0, 0),
                             m->dlogq[0], vout(pp.dzt, 2, 1), dth);
    vlm_dist_normal_rsample_bwd(R, 2, th, pp.eps, pp.z, pp.dzt, dth);
    if (pp.local) {
        /* d qls = d scale * scale, into columns 2..3 of the gathered rows,
         * then scatter-add into the batch's rows of dloc */
        for (int r = 0; r < R; r++)
            for (int i = 0; i < 2; i++)
                pp.dqrow[r * 4 + 2 + i] +=
                    pp.dqsr[r * 2 + i] * pp.qsr[r * 2 + i];
        float *item = row_items(m);
        vlm_gather_bwd(R, 4, item, pp.dqrow, m->dloc);
        free(item);
    } else {
        vlm_ew_fn_bwd(VLM_FN_EXP, 2, NULL, pp.qs, pp.dqs, m->dw + 12);
    }
}

static const VlmModelDesc ppca_desc = {
    .name = "ppca", .source = "(hand-written)", .plan = "z: reparam\n",
    .configure = ppca_configure, .alloc = ppca_alloc,
    .release = ppca_release, .guide_fwd = ppca_guide_fwd,
    .model_fwd = ppca_model_fwd, .model_bwd = ppca_model_bwd,
    .guide_bwd = ppca_guide_bwd,
};

/* Closed forms for PPCA: log N(x; b, W W^T + s^2 I) and the posterior
 * N(mu_p, C_p) with C_p = (I + W^T W / s^2)^-1, mu_p = C_p W^T (x-b) / s^2. */
static double ppca_logpx(const double W[6], const double b[3], double s2,
                         const double x[3])
{
    double C[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            C[i][j] = W[i * 2] * W[j * 2] + W[i * 2 + 1] * W[j * 2 + 1] +
                      (i == j ? s2 : 0);
    double det = C[0][0] * (C[1][1] * C[2][2] - C[1][2] * C[2][1]) -
                 C[0][1] * (C[1][0] * C[2][2] - C[1][2] * C[2][0]) +
                 C[0][2] * (C[1][0] * C[2][1] - C[1][1] * C[2][0]);
    double inv[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int a = (j + 1) % 3, bb = (j + 2) % 3, c = (i + 1) % 3,
                d = (i + 2) % 3;
            inv[i][j] = (C[a][c] * C[bb][d] - C[a][d] * C[bb][c]) / det;
        }
    double r[3] = {x[0] - b[0], x[1] - b[1], x[2] - b[2]}, q = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            q += r[i] * inv[i][j] * r[j];
    return -0.5 * q - 0.5 * log(det) - 1.5 * log(2 * M_PI);
}

static void ppca_posterior(const double W[6], const double b[3], double s2,
                           const double x[3], double mu[2], double C[2][2])
{
    double L[2][2] = {{1, 0}, {0, 1}};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                L[i][j] += W[k * 2 + i] * W[k * 2 + j] / s2;
    double det = L[0][0] * L[1][1] - L[0][1] * L[1][0];
    C[0][0] = L[1][1] / det;
    C[1][1] = L[0][0] / det;
    C[0][1] = C[1][0] = -L[0][1] / det;
    double v[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++)
            v[i] += W[k * 2 + i] * (x[k] - b[k]) / s2;
    mu[0] = C[0][0] * v[0] + C[0][1] * v[1];
    mu[1] = C[1][0] * v[0] + C[1][1] * v[1];
}

/* KL(N(mq, diag(sq^2)) || N(mp, Cp)) */
static double kl_gauss2(const double mq[2], const double sq[2],
                        const double mp[2], const double Cp[2][2])
{
    double det = Cp[0][0] * Cp[1][1] - Cp[0][1] * Cp[1][0];
    double P[2][2] = {{Cp[1][1] / det, -Cp[0][1] / det},
                      {-Cp[1][0] / det, Cp[0][0] / det}};
    double tr = P[0][0] * sq[0] * sq[0] + P[1][1] * sq[1] * sq[1];
    double d[2] = {mp[0] - mq[0], mp[1] - mq[1]};
    double quad = d[0] * (P[0][0] * d[0] + P[0][1] * d[1]) +
                  d[1] * (P[1][0] * d[0] + P[1][1] * d[1]);
    return 0.5 * (tr + quad - 2 + log(det) - log(sq[0] * sq[0] * sq[1] * sq[1]));
}

/* Mean and standard error of the per-item objective at S = k over reps
 * independent replicates (reps items of the same x, rows per forward
 * <= m->Rmax). Also the mean of the per-item delta-method SE. */
static void ppca_estimate(VlmModel *m, const VlmData *d, int k, int reps,
                          VlmObjective obj, double *mean, double *se,
                          double *dm_se)
{
    int per = m->Rmax / k;
    if (per > (int)d->n)
        per = (int)d->n;
    uint32_t *idx = vlm_xmalloc((size_t)per * sizeof *idx);
    double *lw = vlm_xmalloc((size_t)per * k * sizeof *lw);
    for (int i = 0; i < per; i++)
        idx[i] = (uint32_t)i;
    double s = 0, s2 = 0, sse = 0;
    int done = 0;
    VlmErr err;
    while (done < reps) {
        int B = reps - done < per ? reps - done : per;
        vlm_model_fill_batch(m, d, idx, B, k);
        CU_ASSERT_FATAL(vlm_infer_forward(m, lw, NULL, obj, &err) == 0);
        for (int b = 0; b < B; b++) {
            VlmItemStats st;
            vlm_infer_stats(k, lw + (size_t)b * k, NULL, &st);
            double v = obj == VLM_OBJ_ELBO ? st.elbo : st.iwae;
            s += v;
            s2 += v * v;
            sse += st.se;
        }
        done += B;
    }
    *mean = s / reps;
    *se = sqrt(fmax(s2 / reps - *mean * *mean, 0) / (reps - 1));
    if (dm_se)
        *dm_se = sse / reps;
    free(idx);
    free(lw);
}

static void ppca_setup(VlmModel *m, VlmData *data, double Wd[6], double bd[3],
                       double *s2, double xd[3], double mq[2], double sq[2])
{
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(m, &ppca_desc, &err) == 0);
    vlm_model_alloc_rows(m, 20000);
    vlm_model_init_params(m, 3);
    const float W[6] = {1.0f, 0.5f, -0.3f, 0.8f, 0.6f, -1.0f};
    const float b[3] = {0.1f, -0.2f, 0.3f};
    const float x[3] = {1.0f, -0.5f, 0.8f};
    float sig = 0.5f;
    memcpy(m->w, W, sizeof W);
    memcpy(m->w + 6, b, sizeof b);
    m->w[9] = logf(sig);
    for (int i = 0; i < 6; i++) Wd[i] = W[i];
    for (int i = 0; i < 3; i++) bd[i] = b[i], xd[i] = x[i];
    *s2 = exp(2.0 * (double)m->w[9]);
    double mp[2], Cp[2][2];
    ppca_posterior(Wd, bd, *s2, xd, mp, Cp);
    /* q: shifted mean and wider than the posterior in every direction
     * (scale 1.3 sqrt(largest eigenvalue)), so the importance weights
     * have finite variance. */
    double tr = Cp[0][0] + Cp[1][1], dt = Cp[0][0] * Cp[1][1] - Cp[0][1] * Cp[1][0];
    double lmax = 0.5 * tr + sqrt(0.25 * tr * tr - dt);
    float fm[2] = {(float)(mp[0] + 0.3), (float)(mp[1] - 0.2)};
    float fls = (float)log(1.3 * sqrt(lmax));
    m->w[10] = fm[0];
    m->w[11] = fm[1];
    m->w[12] = m->w[13] = fls;
    mq[0] = fm[0];
    mq[1] = fm[1];
    sq[0] = sq[1] = exp((double)fls);
    float rep[600 * 3];
    for (int i = 0; i < 600; i++)
        memcpy(rep + 3 * i, x, sizeof x);
    make_data(data, 600, 3, rep);
}

static void test_ppca_bounds(void)
{
    VlmModel m;
    VlmData data;
    double W[6], b[3], s2, x[3], mq[2], sq[2], mp[2], Cp[2][2];
    ppca_setup(&m, &data, W, b, &s2, x, mq, sq);
    vlm_rng_init(&m.rng, 2024, VLM_STREAM_NOISE);
    double logpx = ppca_logpx(W, b, s2, x);
    ppca_posterior(W, b, s2, x, mp, Cp);
    double kl = kl_gauss2(mq, sq, mp, Cp);

    double elbo, elbo_se, i5, i5_se, i50, i50_se, i50_dm;
    ppca_estimate(&m, &data, 1, 40000, VLM_OBJ_ELBO, &elbo, &elbo_se, NULL);
    ppca_estimate(&m, &data, 5, 6000, VLM_OBJ_IWAE, &i5, &i5_se, NULL);
    ppca_estimate(&m, &data, 50, 3000, VLM_OBJ_IWAE, &i50, &i50_se, &i50_dm);
    printf("\n  ppca: log p(x) %.5f  ELBO %.5f (se %.5f)  IWAE_5 %.5f (se %.5f)"
           "  IWAE_50 %.5f (se %.5f)\n", logpx, elbo, elbo_se, i5, i5_se, i50,
           i50_se);
    printf("  ppca: log p(x) - ELBO %.5f vs KL(q||p(z|x)) %.5f (%.1f se)\n",
           logpx - elbo, kl, fabs(logpx - elbo - kl) / elbo_se);
    CU_ASSERT(elbo <= i5 + 3 * hypot(elbo_se, i5_se));
    CU_ASSERT(i5 <= i50 + 3 * hypot(i5_se, i50_se));
    CU_ASSERT(i50 <= logpx + 3 * i50_se);
    /* not vacuous: the gaps are resolved */
    CU_ASSERT(i50 - elbo > 10 * hypot(elbo_se, i50_se));
    CU_ASSERT(kl > 10 * elbo_se);
    CU_ASSERT(fabs(logpx - elbo - kl) < 3 * elbo_se + 1e-4);

    /* IS estimate of p(x) is unbiased: mean of w / p(x) = 1. */
    {
        int n = 40000, per = 600;
        double s = 0, sq2 = 0, lw[600];
        uint32_t idx[600];
        for (int i = 0; i < per; i++) idx[i] = (uint32_t)i;
        VlmErr err;
        for (int done = 0; done < n; done += per) {
            vlm_model_fill_batch(&m, &data, idx, per, 1);
            CU_ASSERT_FATAL(vlm_infer_forward(&m, lw, NULL, VLM_OBJ_ELBO,
                                              &err) == 0);
            for (int i = 0; i < per; i++) {
                double r = exp(lw[i] - logpx);
                s += r;
                sq2 += r * r;
            }
        }
        double mean = s / n, se = sqrt((sq2 / n - mean * mean) / (n - 1));
        printf("  ppca: E[p_hat(x) / p(x)] = %.4f (se %.4f)\n", mean, se);
        CU_ASSERT(fabs(mean - 1) < 3 * se);
        CU_ASSERT(se < 0.05);
    }
    /* The delta-method SE of one IWAE_50 estimate matches the spread of
     * the estimates (within 25%). */
    printf("  ppca: IWAE_50 delta-method se %.4f vs empirical sd %.4f\n",
           i50_dm, i50_se * sqrt(3000.0));
    CU_ASSERT(fabs(i50_dm / (i50_se * sqrt(3000.0)) - 1) < 0.25);
    vlm_data_free(&data);
    vlm_model_free(&m);
}

/* Reparameterized gradients: with the noise fixed (the RNG state saved),
 * the driver's gradient is the exact derivative of the Monte Carlo
 * objective, checked against central differences, for ELBO and IWAE. */
static void test_ppca_grad(void)
{
    VlmModel m;
    VlmData data;
    double W[6], b[3], s2, x[3], mq[2], sq[2];
    ppca_setup(&m, &data, W, b, &s2, x, mq, sq);
    for (int i = 0; i < 4 * 3; i++)             // four different items
        data.x[i] = (float)(cos(0.9 * i) * 1.5);
    uint32_t idx[4] = {0, 1, 2, 3};
    VlmErr err;
    for (int o = 0; o < 2; o++) {
        VlmObjective obj = o ? VLM_OBJ_IWAE : VLM_OBJ_ELBO;
        VlmInfer inf;
        vlm_infer_init(&inf, obj);
        vlm_rng_init(&m.rng, 99, VLM_STREAM_NOISE);
        VlmRng saved = m.rng;
        vlm_model_fill_batch(&m, &data, idx, 4, 3);
        double f0;
        CU_ASSERT_FATAL(vlm_infer_grad(&m, &inf, &f0, &err) == 0);
        float g[14];
        memcpy(g, m.dw, sizeof g);
        double maxerr = 0;
        for (int j = 0; j < 14; j++) {
            float keep = m.w[j];
            double h = 2e-3, fp, fm;
            m.w[j] = keep + (float)h;
            double hp = (double)m.w[j] - keep;
            m.rng = saved;
            vlm_infer_forward(&m, NULL, &fp, obj, &err);
            m.w[j] = keep - (float)h;
            double hm = keep - (double)m.w[j];
            m.rng = saved;
            vlm_infer_forward(&m, NULL, &fm, obj, &err);
            m.w[j] = keep;
            double fd = -(fp - fm) / 4 / (hp + hm);
            double e = fabs(g[j] - fd) / (2e-3 + fabs(fd));
            maxerr = fmax(maxerr, e);
            if (e > 1e-2)
                printf("\n  ppca %s grad %d: driver %.6g fd %.6g\n",
                       o ? "iwae" : "elbo", j, g[j], fd);
            CU_ASSERT(e < 1e-2);
        }
        printf("\n  ppca %s reparam gradient vs FD: max rel err %.2e",
               o ? "IWAE" : "ELBO", maxerr);
    }
    printf("\n");
    vlm_data_free(&data);
    vlm_model_free(&m);
}

/* The ppca model with its per-item (local) guide, rows for `rows` */
static void ppca_local_open(VlmModel *m, int rows)
{
    VlmErr err;
    pp.local = true;
    CU_ASSERT_FATAL(vlm_model_init(m, &ppca_desc, &err) == 0);
    vlm_model_alloc_rows(m, rows);
}

static void ppca_local_close(VlmModel *m)
{
    vlm_model_free(m);
    pp.local = false;
}

/* The local guide: gradients with respect to the batch's rows of the
 * local table vs central differences (noise fixed), and refinement with
 * theta frozen raises the ELBO to within the diagonal-Gaussian gap. */
static void test_ppca_local(void)
{
    VlmModel m;
    VlmErr err;
    ppca_local_open(&m, 4000);
    CU_ASSERT(m.local_width == 4 && m.n_w == 10);
    float x[6 * 3];
    for (int i = 0; i < 18; i++)
        x[i] = (float)(cos(0.7 * i + 0.2) * 1.5);
    VlmData data;
    make_data(&data, 6, 3, x);
    vlm_model_alloc_local(&m, data.n);
    vlm_model_init_params(&m, 5);
    const float W[6] = {1.0f, 0.5f, -0.3f, 0.8f, 0.6f, -1.0f};
    memcpy(m.w, W, sizeof W);
    m.w[9] = logf(0.5f);
    uint32_t idx[3] = {4, 1, 3};        // a batch of three of six items
    VlmInfer inf;
    vlm_infer_init(&inf, VLM_OBJ_ELBO);
    vlm_rng_init(&m.rng, 5, VLM_STREAM_NOISE);
    VlmRng saved = m.rng;
    vlm_model_fill_batch(&m, &data, idx, 3, 2);
    double f0;
    CU_ASSERT_FATAL(vlm_infer_grad(&m, &inf, &f0, &err) == 0);
    double maxerr = 0;
    for (int item = 0; item < 6; item++)
        for (int k = 0; k < 4; k++) {
            float *p = &m.loc[item * 4 + k], keep = *p;
            double g = m.dloc[item * 4 + k], fp, fm;
            bool in_batch = item == 4 || item == 1 || item == 3;
            if (!in_batch)
                continue;       // rows outside the batch are not touched
            *p = keep + 2e-3f;
            double hp = (double)*p - keep;
            m.rng = saved;
            vlm_infer_forward(&m, NULL, &fp, VLM_OBJ_ELBO, &err);
            *p = keep - 2e-3f;
            double hm = keep - (double)*p;
            m.rng = saved;
            vlm_infer_forward(&m, NULL, &fm, VLM_OBJ_ELBO, &err);
            *p = keep;
            double fd = -(fp - fm) / 3 / (hp + hm);
            double e = fabs(g - fd) / (2e-3 + fabs(fd));
            maxerr = fmax(maxerr, e);
            CU_ASSERT(e < 1e-2);
        }
    printf("\n  ppca local guide: d loss / d loc vs FD: max rel err %.2e\n",
           maxerr);

    /* refinement: ELBO (S = 200 per item) before and after */
    VlmItemStats st[6];
    double before = 0, after = 0, logpx = 0, gap = 0;
    CU_ASSERT_FATAL(vlm_infer_eval_data(&m, &data, 200, st, &err) == 0);
    for (int i = 0; i < 6; i++)
        before += st[i].elbo / 6;
    VlmRefineOpts ro;
    vlm_refine_defaults(&ro);
    ro.max_steps = 300;
    ro.tol = 0;                 /* all 300 steps */
    ro.batch = 6;
    ro.lr = 0.05f;
    ro.progress = NULL;
    VlmRefineResult rr;
    CU_ASSERT_FATAL(vlm_train_refine(&m, &data, &ro, &rr, &err) == 0);
    CU_ASSERT(rr.steps <= 300 && rr.elbo_end > rr.elbo_start);
    CU_ASSERT_FATAL(vlm_infer_eval_data(&m, &data, 200, st, &err) == 0);
    double Wd[6], bd[3] = {0, 0, 0}, s2 = 0.25;
    for (int i = 0; i < 6; i++)
        Wd[i] = W[i];
    for (int i = 0; i < 6; i++) {
        double xd[3] = {x[3 * i], x[3 * i + 1], x[3 * i + 2]}, mp[2], Cp[2][2];
        after += st[i].elbo / 6;
        logpx += ppca_logpx(Wd, bd, s2, xd) / 6;
        /* the best diagonal Gaussian: mean mp, variances 1 / diag(Cp^-1) */
        ppca_posterior(Wd, bd, s2, xd, mp, Cp);
        double det = Cp[0][0] * Cp[1][1] - Cp[0][1] * Cp[1][0];
        double sq[2] = {sqrt(det / Cp[1][1]), sqrt(det / Cp[0][0])};
        gap += kl_gauss2(mp, sq, mp, Cp) / 6;
    }
    printf("  ppca local refine: ELBO %.4f -> %.4f; log p(x) %.4f, best "
           "diagonal-Gaussian ELBO %.4f\n", before, after, logpx, logpx - gap);
    CU_ASSERT(after > before);
    /* SGD noise at a constant step size keeps it a little below */
    CU_ASSERT(fabs(after - (logpx - gap)) < 0.1);
    vlm_data_free(&data);
    ppca_local_close(&m);
}

/* Each row's item index is exact past 2^24 items (a float index rounded
 * 16,777,217 to 16,777,216: per-data-point parameters of one item were
 * read and written as another's). The data are zero bytes, never read
 * past the three items. */
static void test_row_item_exact(void)
{
    VlmModel m;
    ppca_local_open(&m, 64);
    VlmData d;
    memset(&d, 0, sizeof d);
    d.n = ((size_t)1 << 24) + 4;
    d.d = 3;
    d.rank = 1;
    d.shape[0] = 3;
    d.x8 = vlm_xcalloc(d.n * d.d, 1);
    uint32_t idx[3] = {(1u << 24) + 1, (1u << 24) + 3, 5};
    vlm_model_fill_training_batch(&m, &d, idx, 3, 2);
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < 2 * (int)m.E; k++)
            CU_ASSERT((double)m.row_item[(size_t)b * 2 * m.E + k] == (double)idx[b]);
    vlm_data_free(&d);
    ppca_local_close(&m);
}

/* Refinement with its defaults stops on its own and reaches posterior
 * means far from the start (the failure: 200 Adam steps at 1e-2
 * cannot move a location by more than about 2), and the importance-sampled
 * log p(x) is then within 3 SE of the exact one. */
static void test_ppca_refine_converges(void)
{
    VlmModel m;
    VlmErr err;
    ppca_local_open(&m, 8000);
    enum { N = 8 };
    const float W[6] = {1.0f, 0.5f, -0.3f, 0.8f, 0.6f, -1.0f};
    double Wd[6], bd[3] = {0, 0, 0}, s2 = 0.25;
    for (int i = 0; i < 6; i++)
        Wd[i] = W[i];
    /* x = W mu: posterior means out to about 3.4 */
    const double mus[N][2] = {{4.0, -3.0}, {-3.9, 0.5}, {0.2, 3.8},
                              {-1.2, -4.0}, {2.4, 2.4}, {0.0, 0.0},
                              {-3.1, 3.4}, {1.3, -0.8}};
    float x[N * 3];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 3; k++)
            x[3 * i + k] = (float)(W[2 * k] * mus[i][0] + W[2 * k + 1] * mus[i][1]);
    VlmData data;
    make_data(&data, N, 3, x);
    double mp[N][2], logpx = 0;
    for (int i = 0; i < N; i++) {
        double xd[3] = {x[3 * i], x[3 * i + 1], x[3 * i + 2]}, Cp[2][2];
        ppca_posterior(Wd, bd, s2, xd, mp[i], Cp);
        logpx += ppca_logpx(Wd, bd, s2, xd) / N;
    }
    double far = 0;
    for (int i = 0; i < N; i++)
        far = fmax(far, fmax(fabs(mp[i][0]), fabs(mp[i][1])));
    CU_ASSERT(far > 3);

    VlmRefineOpts ro;
    VlmRefineResult rr;
    for (int pass = 0; pass < 2; pass++) {
        vlm_model_alloc_local(&m, data.n);
        vlm_model_init_params(&m, 5);
        memcpy(m.w, W, sizeof W);
        m.w[6] = m.w[7] = m.w[8] = 0;
        m.w[9] = logf(0.5f);
        for (size_t i = 0; i < data.n * 4; i++)   /* start at loc 0, scale 1 */
            m.loc[i] = 0;
        vlm_rng_init(&m.rng, 9, VLM_STREAM_SAMPLE);
        vlm_refine_defaults(&ro);
        ro.progress = NULL;
        if (pass == 0) {        /* the old fixed refinement */
            ro.max_steps = 200;
            ro.lr = 1e-2f;
            ro.tol = 0;
            ro.lr_levels = 1;
        }
        CU_ASSERT_FATAL(vlm_train_refine(&m, &data, &ro, &rr, &err) == 0);
        double worst = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 2; k++)
                worst = fmax(worst, fabs(m.loc[4 * i + k] - mp[i][k]));
        VlmItemStats st[N];
        CU_ASSERT_FATAL(vlm_infer_eval_data(&m, &data, 1000, st, &err) == 0);
        double est = 0, se2 = 0;
        for (int i = 0; i < N; i++) {
            est += st[i].iwae / N;
            se2 += st[i].se * st[i].se;
        }
        double se = sqrt(se2) / N;
        printf("\n  ppca refine (%s): %d steps, ELBO %.4f -> %.4f, worst "
               "|loc - posterior mean| %.3f; IS %.5f +- %.5f vs exact %.5f",
               pass ? "defaults" : "200 steps at 1e-2", rr.steps,
               rr.elbo_start, rr.elbo_end, worst, est, se, logpx);
        if (pass == 0) {
            CU_ASSERT(worst > 1);
            CU_ASSERT(rr.steps == 200 && !rr.converged);
        } else {
            CU_ASSERT(rr.converged && rr.steps < ro.max_steps);
            CU_ASSERT(worst < 0.1);
            CU_ASSERT(se > 0 && se < 0.05 && fabs(est - logpx) <= 3 * se);
        }
    }
    printf("\n");
    vlm_data_free(&data);
    ppca_local_close(&m);
}

/* ================================================================ model 3
 * param a[3]; param v[3];
 * latent z[3] ~ Bernoulli(logits = a);
 * observed x ~ Normal(v . z, 1);
 * guide { param phi[3]; z ~ Bernoulli(logits = phi); }   // score function
 * w = a (3) | v (3) | phi (3) */
static struct {
    float *z, *xm, *dxm;
    double *lpz, *lpx, *lqz;
} sb;

static int sbn_configure(VlmModel *m, VlmErr *err)
{
    (void)err;
    m->n_params = 3;
    set_param(&m->params[0], "a", 1, 3, 0, 0, VLM_INIT_CONST, 0, 0, false);
    set_param(&m->params[1], "v", 1, 3, 0, 3, VLM_INIT_CONST, 0, 0, false);
    set_param(&m->params[2], "phi", 1, 3, 0, 6, VLM_INIT_CONST, 0, 0, true);
    m->n_vars = 2;
    m->n_latent = m->n_observed = 1;
    set_var(&m->vars[0], "z", VLM_VAR_LATENT, VLM_TREAT_SCORE, "Bernoulli",
            true, 3, 2);
    set_var(&m->vars[1], "x", VLM_VAR_OBSERVED, VLM_TREAT_NONE, "Normal",
            false, 1, 0);
    m->n_w = 9;
    m->E = 1;
    m->hash = 0x73626eull;
    return 0;
}

static void sbn_alloc(VlmModel *m, int Rmax)
{
    size_t R = (size_t)Rmax;
    sb.z = vlm_xcalloc(R * 3, sizeof(float));
    sb.xm = vlm_xcalloc(R, sizeof(float));
    sb.dxm = vlm_xcalloc(R, sizeof(float));
    sb.lpz = vlm_xcalloc(R, sizeof(double));
    sb.lpx = vlm_xcalloc(R, sizeof(double));
    sb.lqz = vlm_xcalloc(R, sizeof(double));
    m->lat[0] = sb.z;
    m->logp_term[0] = sb.lpz;
    m->logp_term[1] = sb.lpx;
    m->logq_term[0] = sb.lqz;
}

static void sbn_release(VlmModel *m)
{
    (void)m;
    free(sb.z); free(sb.xm); free(sb.dxm);
    free(sb.lpz); free(sb.lpx); free(sb.lqz);
}

static void sbn_guide_fwd(VlmModel *m)
{
    int R = m->R, G = R / (int)m->E;
    VlmIn th[1] = {vin(m->w + 6, 0, 1)};
    vlm_dist_bernoulli_logits_sample(&m->rng, G, 3, 1, th, sb.z);
    vlm_rows_repeat(G, (int)m->E, 3, sb.z);
    vlm_dist_bernoulli_logits_logp(R, 3, 1, vin(sb.z, 3, 1), th,
                                   vin(NULL, 0, 0), sb.lqz);
}

static void sbn_model_fwd(VlmModel *m)
{
    int R = m->R;
    VlmIn th[1] = {vin(m->w, 0, 1)};
    vlm_dist_bernoulli_logits_logp(R, 3, 1, vin(sb.z, 3, 1), th,
                                   vin(NULL, 0, 0), sb.lpz);
    vlm_nn_matvec_fwd(R, 1, 3, m->w + 3, sb.z, sb.xm);     // v . z (R,1)
    VlmIn thx[2] = {vin(sb.xm, 1, 1), vin(&k_one, 0, 0)};
    vlm_dist_normal_logp(R, 1, 1, vin(m->obs[1], 1, 1), thx,
                         vin(m->obs_mask[1], 1, 1), sb.lpx);
}

static void sbn_model_bwd(VlmModel *m)
{
    int R = m->R;
    VlmIn th[1] = {vin(m->w, 0, 1)};
    VlmOut dth[1] = {vout(m->dw, 0, 1)};
    vlm_dist_bernoulli_logits_logp_bwd(R, 3, 1, vin(sb.z, 3, 1), th,
                                       vin(NULL, 0, 0), m->dlogp,
                                       vout(NULL, 0, 0), dth);
    memset(sb.dxm, 0, (size_t)R * sizeof(float));
    VlmIn thx[2] = {vin(sb.xm, 1, 1), vin(&k_one, 0, 0)};
    VlmOut dthx[2] = {vout(sb.dxm, 1, 1), vout(NULL, 0, 0)};
    vlm_dist_normal_logp_bwd(R, 1, 1, vin(m->obs[1], 1, 1), thx,
                             vin(m->obs_mask[1], 1, 1), m->dlogp,
                             vout(NULL, 0, 0), dthx);
    vlm_nn_matvec_bwd(R, 1, 3, m->w + 3, sb.z, sb.dxm, m->dw + 3, NULL);
}

static void sbn_guide_bwd(VlmModel *m)
{
    int R = m->R;
    VlmIn th[1] = {vin(m->w + 6, 0, 1)};
    VlmOut dth[1] = {vout(m->dw + 6, 0, 1)};
    vlm_dist_bernoulli_logits_logp_bwd(R, 3, 1, vin(sb.z, 3, 1), th,
                                       vin(NULL, 0, 0), m->dlogq[0],
                                       vout(NULL, 0, 0), dth);
}

static const VlmModelDesc sbn_desc = {
    .name = "sbn3", .source = "(hand-written)", .plan = "z: score\n",
    .configure = sbn_configure, .alloc = sbn_alloc, .release = sbn_release,
    .guide_fwd = sbn_guide_fwd, .model_fwd = sbn_model_fwd,
    .model_bwd = sbn_model_bwd, .guide_bwd = sbn_guide_bwd,
};

static double sigm(double t) { return 1 / (1 + exp(-t)); }

/* Exact gradient of the loss -mean_i ELBO_i by enumerating z in {0,1}^3:
 * d/dphi = sum_z q(z) f(z) (z - sigmoid(phi)), d/dtheta = sum_z q(z)
 * d log p(x, z)/dtheta. */
static void sbn_exact_grad(const float *w, const float *x, int n, double g[9])
{
    memset(g, 0, 9 * sizeof *g);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 8; c++) {
            double z[3], lq = 0, lpz = 0, mean = 0;
            for (int k = 0; k < 3; k++) {
                z[k] = (c >> k) & 1;
                lq += z[k] ? log(sigm(w[6 + k])) : log(1 - sigm(w[6 + k]));
                lpz += z[k] ? log(sigm(w[k])) : log(1 - sigm(w[k]));
                mean += w[3 + k] * z[k];
            }
            double u = x[i] - mean;
            double lpx = -0.5 * u * u - 0.5 * log(2 * M_PI);
            double q = exp(lq), f = lpz + lpx - lq;
            for (int k = 0; k < 3; k++) {
                g[k] -= q * (z[k] - sigm(w[k])) / n;
                g[3 + k] -= q * u * z[k] / n;
                g[6 + k] -= q * f * (z[k] - sigm(w[6 + k])) / n;
            }
        }
}

static void sbn_check(int S, int T)
{
    VlmModel m;
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(&m, &sbn_desc, &err) == 0);
    vlm_model_alloc_rows(&m, 4 * S);
    const float w[9] = {0.5f, -1.0f, 0.2f, 1.5f, -2.0f, 0.7f,
                        -0.3f, 0.8f, 0.1f};
    memcpy(m.w, w, sizeof w);
    const float x[4] = {0.5f, 2.0f, -1.0f, 1.5f};
    VlmData data;
    make_data(&data, 4, 1, x);
    vlm_rng_init(&m.rng, 11 + S, VLM_STREAM_NOISE);
    double exact[9];
    sbn_exact_grad(w, x, 4, exact);
    VlmInfer inf;
    vlm_infer_init(&inf, VLM_OBJ_ELBO);
    uint32_t idx[4] = {0, 1, 2, 3};
    double s[9] = {0}, s2[9] = {0};
    for (int t = 0; t < T; t++) {
        vlm_model_fill_batch(&m, &data, idx, 4, S);
        double f;
        CU_ASSERT_FATAL(vlm_infer_grad(&m, &inf, &f, &err) == 0);
        for (int j = 0; j < 9; j++) {
            s[j] += m.dw[j];
            s2[j] += (double)m.dw[j] * m.dw[j];
        }
    }
    double worst = 0, maxg = 0, se_at_max = 0;
    for (int j = 0; j < 9; j++) {
        double mean = s[j] / T;
        double se = sqrt(fmax(s2[j] / T - mean * mean, 0) / (T - 1));
        double z = fabs(mean - exact[j]) / se;
        worst = fmax(worst, z);
        if (j >= 6 && fabs(exact[j]) > maxg) {
            maxg = fabs(exact[j]);
            se_at_max = se;
        }
        if (z > 4)
            printf("\n  sbn S=%d grad %d: mean %.5f exact %.5f se %.5f\n", S, j,
                   mean, exact[j], se);
        CU_ASSERT(z < 4);
    }
    printf("\n  score-function S=%d: worst |mean - exact| = %.2f se over 9 "
           "components; phi: largest |exact| %.4f, se %.4f\n", S, worst, maxg,
           se_at_max);
    CU_ASSERT(se_at_max < maxg / 5);    // resolved, not vacuous
    /* IWAE is refused with SCORE latents. */
    vlm_infer_init(&inf, VLM_OBJ_IWAE);
    CU_ASSERT(vlm_infer_grad(&m, &inf, NULL, &err) == -1);
    CU_ASSERT(strstr(err.msg, "`z`") != NULL);
    vlm_data_free(&data);
    vlm_model_free(&m);
}

/* The score-function surrogate term by term on one batch, deterministic:
 * dlogq of every (b, s) is c (1 - (f - base)) with c = 1/(B S), f its log
 * weight (log p(x, z) - log q(z), read back from the model's terms) and
 * base the baseline the estimator promises (docs/inference.md,
 * "Gradients"): the moving average when one is set (S = 1); on the first
 * batch the mean of f over the batch's other items; with S > 1 the mean
 * over the item's other samples. The guide's gradient is then
 * sum_bs dlogq_bs (z - sigmoid(phi)), and the average moves to
 * decay avg + (1 - decay) mean(f) (the first batch sets it to mean(f)). */
static void test_score_baseline_exact(void)
{
    VlmModel m;
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(&m, &sbn_desc, &err) == 0);
    vlm_model_alloc_rows(&m, 4 * 3);
    const float w[9] = {0.5f, -1.0f, 0.2f, 1.5f, -2.0f, 0.7f,
                        -0.3f, 0.8f, 0.1f};
    memcpy(m.w, w, sizeof w);
    const float x[4] = {0.5f, 2.0f, -1.0f, 1.5f};
    VlmData data;
    make_data(&data, 4, 1, x);
    vlm_rng_init(&m.rng, 5, VLM_STREAM_NOISE);
    uint32_t idx[4] = {0, 1, 2, 3};
    const char *what[3] = {"moving average", "first batch", "leave-one-out"};
    for (int mode = 0; mode < 3; mode++) {
        int S = mode == 2 ? 3 : 1, BS = 4 * S;
        VlmInfer inf;
        vlm_infer_init(&inf, VLM_OBJ_ELBO);
        if (mode == 0) {
            inf.baseline = -2.5;
            inf.baseline_set = true;
        }
        const double avg0 = inf.baseline, decay = inf.decay;
        vlm_model_fill_batch(&m, &data, idx, 4, S);
        double obj;
        CU_ASSERT_FATAL(vlm_infer_grad(&m, &inf, &obj, &err) == 0);
        double f[12], mean = 0, c = 1.0 / BS, worst = 0, base_sum = 0;
        for (int bs = 0; bs < BS; bs++) {
            f[bs] = sb.lpz[bs] + sb.lpx[bs] - sb.lqz[bs];
            mean += f[bs] / BS;
        }
        double g[3] = {0, 0, 0};
        for (int bs = 0; bs < BS; bs++) {
            double base;
            if (mode == 0)
                base = avg0;
            else if (mode == 1)
                base = (mean * BS - f[bs]) / (BS - 1);
            else {
                int b = bs / S;
                double t = 0;
                for (int k = 0; k < S; k++)
                    t += k == bs % S ? 0 : f[b * S + k];
                base = t / (S - 1);
            }
            base_sum += base;
            double want = c - c * (f[bs] - base);
            worst = fmax(worst, fabs(m.dlogq[0][bs] - want) / fmax(1, fabs(want)));
            for (int k = 0; k < 3; k++)
                g[k] += m.dlogq[0][bs] * (sb.z[bs * 3 + k] - sigm(w[6 + k]));
        }
        double gworst = 0;
        for (int k = 0; k < 3; k++)
            gworst = fmax(gworst, fabs(m.dw[6 + k] - g[k]) / fmax(1, fabs(g[k])));
        double avg1 = mode == 0 ? decay * avg0 + (1 - decay) * mean : mean;
        printf("\n  score baseline (%s): mean f %.4f, mean baseline %.4f; "
               "dlogq max rel err %.1e, phi grad %.1e", what[mode], mean,
               base_sum / BS, worst, gworst);
        CU_ASSERT(worst < 1e-6);
        CU_ASSERT(gworst < 1e-5);
        if (mode < 2)
            CU_ASSERT(fabs(inf.baseline - avg1) < 1e-9 * fmax(1, fabs(avg1)));
        /* not vacuous: a baseline of 0 would give other terms */
        CU_ASSERT(fabs(base_sum / BS) > 0.5);
    }
    printf("\n");
    vlm_data_free(&data);
    vlm_model_free(&m);
}

/* One training run of the score-function model (noise, baseline, Adam):
 * epochs in total, resumed from `load` when given; the weights after it
 * into w_out (9 floats), the checkpoint to `save`. */
static void sbn_train(const char *save, const char *load, long epochs,
                      float *w_out)
{
    VlmModel m;
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(&m, &sbn_desc, &err) == 0);
    float x[40];
    for (int i = 0; i < 40; i++)
        x[i] = (float)(i % 7) * 0.5f - 1.0f;
    VlmData data;
    make_data(&data, 40, 1, x);
    VlmTrainOpts o = {.epochs = epochs, .batch = 8, .samples = 1,
                      .lr = 0.05f, .optimizer = VLM_OPT_ADAM,
                      .objective = VLM_OBJ_ELBO, .seed = 3,
                      .save = save, .load = load};
    int rc = vlm_train(&m, &data, NULL, &o, &err);
    if (rc != 0)
        printf("\n  train: %s\n", err.msg);
    CU_ASSERT_FATAL(rc == 0);
    memcpy(w_out, m.w, 9 * sizeof *w_out);
    vlm_data_free(&data);
    vlm_model_free(&m);
}

static bool same_file(const char *a, const char *b)
{
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    bool same = f && g;
    while (same) {
        int x = fgetc(f), y = fgetc(g);
        same = x == y;
        if (x == EOF)
            break;
    }
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    return same;
}

/* Resuming continues exactly: 2 epochs straight and 1 + 1 (the second
 * from the first's checkpoint) give the same weights and byte-identical
 * checkpoints, so the noise stream's position (Philox counter and
 * buffered words), the batcher, the baseline and Adam's state are all
 * restored (a counter reset would redraw epoch 1's noise). Training is
 * not a no-op: the weights move in the second epoch. */
static void test_resume_exact(void)
{
    char d[] = "/tmp/vlm-resume-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(d) != NULL);
    char a[64], h[64], c[64];
    snprintf(a, sizeof a, "%s/straight.ckpt", d);
    snprintf(h, sizeof h, "%s/half.ckpt", d);
    snprintf(c, sizeof c, "%s/resumed.ckpt", d);
    float wa[9], wh[9], wc[9];
    sbn_train(a, NULL, 2, wa);
    sbn_train(h, NULL, 1, wh);
    sbn_train(c, h, 2, wc);
    CU_ASSERT(memcmp(wa, wc, sizeof wa) == 0);
    CU_ASSERT(same_file(a, c));
    CU_ASSERT(memcmp(wa, wh, sizeof wa) != 0);
    remove(a);
    remove(h);
    remove(c);
    rmdir(d);
}

static void test_score_s1(void) { sbn_check(1, 20000); }
static void test_score_s4(void) { sbn_check(4, 8000); }

/* A NaN term is named: variable and item. */
static void test_nan_blame(void)
{
    VlmModel m;
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(&m, &mog_desc, &err) == 0);
    vlm_model_alloc_rows(&m, 30);
    vlm_model_init_params(&m, 1);
    float x[6] = {0, 1, 2, 3, 4, 5};
    VlmData data;
    make_data(&data, 3, 2, x);
    VlmItemStats st[3];
    m.w[3 + 6 + 1] = NAN;               // log_sigma[0][1]
    CU_ASSERT(vlm_infer_eval_data(&m, &data, 1, st, &err) == -1);
    CU_ASSERT(strstr(err.msg, "variable `x` is NaN at item 0") != NULL);
    printf("\n  message: %s\n", err.msg);
    vlm_data_free(&data);
    vlm_model_free(&m);
}

/* Bytes (uint8 files) and floats give bit-identical batches: the same
 * items, repeated over samples, through vlm_model_fill_batch. */
static void test_compact_batch(void)
{
    VlmModel m;
    VlmErr err;
    CU_ASSERT_FATAL(vlm_model_init(&m, &mog_desc, &err) == 0);
    vlm_model_alloc_rows(&m, 64);
    VlmData c = {.n = 9, .d = 2, .rank = 1, .shape = {2}};
    c.x8 = vlm_xmalloc(18);
    for (int i = 0; i < 18; i++)
        c.x8[i] = (uint8_t)(i * 37 % 256);
    VlmData f = c;
    f.x8 = vlm_xmalloc(18);
    memcpy(f.x8, c.x8, 18);
    CU_ASSERT_FATAL(vlm_data_floats(&f) != NULL && f.x8 == NULL);
    uint32_t idx[5] = {8, 0, 3, 3, 7};
    int vi = m.n_latent, n = (int)m.vars[vi].numel;
    for (int S = 1; S <= 3; S++) {
        vlm_model_fill_batch(&m, &c, idx, 5, S);
        int R = m.R;
        float *a = vlm_xmalloc((size_t)R * n * sizeof *a);
        memcpy(a, m.obs[vi], (size_t)R * n * sizeof *a);
        vlm_model_fill_batch(&m, &f, idx, 5, S);
        CU_ASSERT(m.R == R && memcmp(a, m.obs[vi], (size_t)R * n * sizeof *a) == 0);
        for (int r = 0; r < R; r++)   /* and they are the bytes / 255 */
            for (int j = 0; j < n; j++)
                CU_ASSERT(a[r * n + j] == c.x8[idx[r / (R / 5)] * 2 + j] / 255.0f);
        free(a);
    }
    vlm_data_free(&c);
    vlm_data_free(&f);
    vlm_model_free(&m);
}

/* The row-level operations of the generated code: repeat_copy is the
 * in-place repeat into another buffer, pick takes each group's first row
 * back, and the segmented sum is the adjoint of the repeat:
 * <repeat(a), b> = <a, sum(b)> in double for random a, b. */
static void test_rows_levels(void)
{
    enum { G = 5, F = 3, n = 4 };
    float a[G * n], b[G * F * n], rep[G * F * n], back[G * n], s[G * n];
    double d[G * F];
    VlmRng rng;
    vlm_rng_init(&rng, 7, VLM_STREAM_INIT);
    for (int i = 0; i < G * n; i++)
        a[i] = (float)vlm_rng_normal(&rng);
    for (int i = 0; i < G * F * n; i++)
        b[i] = (float)vlm_rng_normal(&rng);
    vlm_rows_repeat_copy(G, F, n, a, rep);
    int ok = 1;
    for (int r = 0; r < G * F; r++)
        for (int i = 0; i < n; i++)
            ok &= rep[r * n + i] == a[(r / F) * n + i];
    CU_ASSERT(ok);
    vlm_rows_pick(G, F, n, rep, back);
    CU_ASSERT(memcmp(back, a, sizeof a) == 0);
    for (int i = 0; i < G * n; i++)
        s[i] = 1.0f;          /* the sum accumulates (+=) */
    vlm_rows_sum(G, F, n, b, s);
    double lhs = 0, rhs = 0;
    for (int i = 0; i < G * F * n; i++)
        lhs += (double)rep[i] * b[i];
    for (int i = 0; i < G * n; i++)
        rhs += (double)a[i] * (s[i] - 1.0);
    CU_ASSERT_DOUBLE_EQUAL(lhs, rhs, 1e-5 * (1 + fabs(lhs)));
    for (int g = 0; g < G; g++)
        d[g] = g - 0.5;
    vlm_rows_repeat_f64(G, F, 1, d);
    ok = 1;
    for (int r = 0; r < G * F; r++)
        ok &= d[r] == r / F - 0.5;
    CU_ASSERT(ok);
}

static void test_rows_repeat(void)
{
    float buf[4 * 3 * 2];
    for (int i = 0; i < 8; i++)
        buf[i] = (float)i;
    vlm_rows_repeat(4, 3, 2, buf);
    int ok = 1;
    for (int r = 0; r < 12; r++)
        for (int i = 0; i < 2; i++)
            ok &= buf[r * 2 + i] == (float)((r / 3) * 2 + i);
    CU_ASSERT(ok);
}

void vlm_test_infer(void)
{
    CU_pSuite s = CU_add_suite("infer", NULL, NULL);
    CU_add_test(s, "rows_repeat expands in place", test_rows_repeat);
    CU_add_test(s, "row levels: repeat, its segmented sum, pick", test_rows_levels);
    CU_add_test(s, "uint8 and float data give identical batches",
                test_compact_batch);
    CU_add_test(s, "mixture: exact log p(x), gradient vs FD, masks",
                test_mog_exact);
    CU_add_test(s, "ppca: ELBO <= IWAE_5 <= IWAE_50 <= log p(x), KL, IS",
                test_ppca_bounds);
    CU_add_test(s, "ppca: reparam ELBO/IWAE gradients vs FD", test_ppca_grad);
    CU_add_test(s, "ppca local guide: dloc vs FD, refinement", test_ppca_local);
    CU_add_test(s, "row item indices exact past 2^24 items", test_row_item_exact);
    CU_add_test(s, "score function surrogate and baselines, term by term",
                test_score_baseline_exact);
    CU_add_test(s, "ppca local guide: refinement stops on its own, far means",
                test_ppca_refine_converges);
    CU_add_test(s, "score function unbiased, S=1 moving-average baseline",
                test_score_s1);
    CU_add_test(s, "score function unbiased, S=4 leave-one-out baseline",
                test_score_s4);
    CU_add_test(s, "NaN term named by variable and item", test_nan_blame);
    CU_add_test(s, "resume is exact (noise stream, baseline, optimizer)",
                test_resume_exact);
}
