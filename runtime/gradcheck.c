/* gradcheck.c — checks a compiled model's generated backward passes
 * against central finite differences of its generated forward passes
 * (`./model gradcheck`). It does not train; it is the compiler's test. */
#include "vlm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool summed(const VlmVarInfo *v)
{
    return v->kind == VLM_VAR_OBSERVED && v->treat == VLM_TREAT_ENUMERATE;
}

static bool chain_emission(const VlmModel *m, int v)
{
    for (int q = 0; q < m->n_markov_emit; q++)
        if (m->markov_emit[q] == v)
            return true;
    return false;
}

/* Synthetic data inside each observed variable's support (inputs: in
 * (0.05, 0.95), or integers below K for a category), in the plain layout:
 * every data variable in consecutive columns, declaration order; a
 * variable summed out where missing is missing (NaN) in every other item,
 * so that both its given (clamped) and its summed rows are checked; the
 * emissions of a Markov chain miss their last step in every other item
 * (a mask: the padding of a shorter sequence). */
static void make_data(const VlmModel *m, VlmRng *rng, size_t n, VlmData *d)
{
    size_t width = 0;
    for (int k = 0; k < m->n_data; k++)
        width += (size_t)m->vars[m->data_var[k]].numel;
    memset(d, 0, sizeof *d);
    d->n = n;
    d->d = width;
    d->rank = 1;
    d->shape[0] = (int)width;
    d->x = vlm_xcalloc(n * width, sizeof(float));
    if (m->markov_var >= 0) {
        d->mask = vlm_xmalloc(n * width * sizeof(float));
        for (size_t i = 0; i < n * width; i++)
            d->mask[i] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t col = 0;
        for (int j = 0; j < m->n_data; j++) {
            const VlmVarInfo *v = &m->vars[m->data_var[j]];
            for (long k = 0; k < v->numel; k++) {
                float x = (float)(0.05 + 0.9 * vlm_rng_uniform(rng));
                if (v->discrete)
                    x = (float)vlm_rng_below(rng, v->support > 0 ? (uint64_t)v->support : 5);
                if (summed(v) && i % 2 == 1)
                    x = NAN;
                if (chain_emission(m, m->data_var[j]) && i % 2 == 1 &&
                    k >= v->numel - v->numel / m->markov_T) {
                    x = 0;
                    d->mask[i * width + col + (size_t)k] = 0;
                }
                d->x[i * width + col + (size_t)k] = x;
            }
            col += (size_t)v->numel;
        }
    }
}

/* A model with a Markov chain: the coefficients of its emissions' per-step
 * terms (T x R each) and of the values of its init and trans, whose
 * gradients the driver hands to the generated backward pass. */
typedef struct ChainCoef {
    float *step[VLM_MAX_VARS];
    float *init;            /* K + K*K: init, then trans */
} ChainCoef;

/* The chain's part of F: sum_t,r step_tr log p(x_t | row r) + the
 * coefficients times init and trans. */
static double chain_objective(const VlmModel *m, const ChainCoef *ch)
{
    if (m->markov_var < 0)
        return 0;
    double f = 0;
    size_t n = (size_t)m->markov_T * (size_t)m->R, K = (size_t)m->markov_K;
    for (int q = 0; q < m->n_markov_emit; q++) {
        int v = m->markov_emit[q];
        for (size_t i = 0; i < n; i++)
            f += ch->step[v][i] * m->logp_step[v][i];
    }
    for (size_t i = 0; i < K + K * K; i++)   /* init and trans are adjacent */
        f += ch->init[i] * (double)m->markov_init[i];
    return f;
}

/* F = sum_r a_r log p(row r) + sum_j sum_r b_jr log q_j(row r) (+ the
 * chain's part), with the guide's noise fixed by restarting its
 * generator. */
static double objective(VlmModel *m, const VlmRng *noise, const float *a, float *const *b,
                        const ChainCoef *ch)
{
    m->rng = *noise;
    m->desc->guide_fwd(m);
    m->desc->model_fwd(m);
    double f = 0;
    for (int r = 0; r < m->R; r++) {
        for (int v = 0; v < m->n_vars; v++)
            if (!(m->use_kl && v < m->n_latent && m->kl_term[v]) && a[r] != 0)
                f += a[r] * m->logp_term[v][r];
        for (int j = 0; j < m->n_vars; j++) {
            /* with the closed-form KL the latent's log q and log p terms
             * are replaced by KL(q || p) */
            const double *t = m->use_kl && m->kl_term[j] ? m->kl_term[j] : m->logq_term[j];
            if (t)
                f += b[j][r] * t[r];
        }
    }
    return f + chain_objective(m, ch);
}

/* The backward passes for the coefficients a (every log p row) and b_j
 * (latent j's log q rows, or its KL with use_kl), from zeroed gradients,
 * after the forward passes of objective(). */
static void backward(VlmModel *m, const float *a, float *const *b, const ChainCoef *ch)
{
    size_t R = (size_t)m->R;
    if (m->markov_var >= 0) {
        size_t K = (size_t)m->markov_K;
        for (int q = 0; q < m->n_markov_emit; q++) {
            int v = m->markov_emit[q];
            memcpy(m->dlogp_step[v], ch->step[v], sizeof(float) * R * (size_t)m->markov_T);
        }
        memcpy(m->dmarkov_init, ch->init, sizeof(float) * K);
        memcpy(m->dmarkov_trans, ch->init + K, sizeof(float) * K * K);
    }
    memcpy(m->dlogp, a, sizeof(float) * R);
    for (int j = 0; j < m->n_latent; j++)
        memcpy(m->dlogp_lat[j], a, sizeof(float) * R);
    for (int j = 0; j < m->n_vars; j++) {
        if (m->dlogq[j] && b[j])
            memcpy(m->dlogq[j], b[j], sizeof(float) * R);
        else if (m->dlogq[j])
            memset(m->dlogq[j], 0, sizeof(float) * R);
        if (m->use_kl && m->kl_term[j]) {
            memset(m->dlogq[j], 0, sizeof(float) * R);
            memcpy(m->dkl[j], b[j], sizeof(float) * R);
        }
    }
    memset(m->dw, 0, sizeof(float) * m->n_w);
    if (m->dloc)
        memset(m->dloc, 0, sizeof(float) * m->local_rows * m->local_width);
    m->desc->model_bwd(m);
    m->desc->guide_bwd(m);
}

/* The training objective's gradient as the driver assembles it (infer.c:
 * responsibilities of enumerated rows, log q per row, M2's weights, the
 * KL weight) against central differences of that objective, with the
 * guide's noise fixed: ELBO (closed-form KL where the model has it) at KL
 * weight 1 and 0.3, and IWAE over the two samples. dw = -(1/B) d obj_sum.
 * Score-function latents make the objective a step function of the
 * parameters through their draws: such models are skipped (said). */
static int check_estimator(VlmModel *m, const VlmData *d, uint64_t seed, FILE *out)
{
    for (int j = 0; j < m->n_latent; j++)
        if (m->vars[j].treat == VLM_TREAT_SCORE) {
            fprintf(out, "gradcheck: estimator check skipped: latent `%s` has a "
                    "score-function gradient\n", m->vars[j].name);
            return 0;
        }
    static const struct { VlmObjective obj; double beta; const char *name; } runs[4] = {
        {VLM_OBJ_ELBO, 1.0, "ELBO"}, {VLM_OBJ_ELBO, 0.3, "ELBO, KL weight 0.3"},
        {VLM_OBJ_IWAE, 1.0, "IWAE"}, {VLM_OBJ_IWAE, 0.3, "IWAE terms, KL weight 0.3"}};
    /* M2's bound has no IWAE form (the driver refuses it) */
    int n_runs = vlm_infer_guided_summed(m) >= 0 ? 2 : 4;
    uint32_t idx[3] = {0, 1, 2};
    int B = 3, bad = 0, checks = 0, kinks = 0;
    double worst = 0;
    float *g = vlm_xmalloc((m->n_w + 1) * sizeof *g);
    VlmRng pick;
    vlm_rng_init(&pick, seed, VLM_STREAM_INIT);
    VlmErr err;
    for (int run = 0; run < n_runs; run++) {
        VlmRng noise;
        vlm_rng_init(&noise, seed + 17, VLM_STREAM_NOISE);
        VlmInfer st;
        vlm_infer_init(&st, runs[run].obj);
        st.kl_weight = runs[run].beta;
        double f0, f[2];
        vlm_model_fill_batch(m, d, idx, B, 2);
        m->rng = noise;
        if (vlm_infer_grad(m, &st, &f0, &err) != 0) {
            fprintf(out, "gradcheck: estimator (%s): %s\n", runs[run].name, err.msg);
            bad++;
            continue;
        }
        memcpy(g, m->dw, m->n_w * sizeof *g);
        for (int i = 0; i < m->n_params; i++) {
            const VlmParamInfo *q = &m->params[i];
            if (q->local)
                continue;
            for (int k = 0; k < 3 && (size_t)k < q->count; k++) {
                size_t at = q->offset + (k == 0 ? 0 : (size_t)vlm_rng_below(&pick, q->count));
                float w0 = m->w[at];
                double est[2], side[2] = {0, 0};
                for (int t = 0; t < 2; t++) {
                    double h = (t ? 1e-3 : 3e-3) * fmax(1.0, fabs(w0));
                    for (int sgn = 0; sgn < 2; sgn++) {
                        m->w[at] = w0 + (float)(sgn ? -h : h);
                        m->rng = noise;
                        if (vlm_infer_grad(m, &st, &f[sgn], &err) != 0)
                            f[sgn] = NAN;
                    }
                    est[t] = -(f[0] - f[1]) / (2 * h * B);
                    /* one-sided at the small step: forward and backward */
                    side[0] = -(f[0] - f0) / (h * B);
                    side[1] = -(f0 - f[1]) / (h * B);
                }
                m->w[at] = w0;
                /* the objective is summed from float32 terms: differences
                 * of it carry about 1e-4 of absolute noise at these steps */
                double an = g[at], scale = 1e-4 * fabs(an) + 2e-4;
                checks++;
                /* a relu kink between the steps makes the central
                 * differences disagree; one right at the point (closer
                 * than both steps) leaves them agreeing, off by half the
                 * change of slope, but splits the one-sided ones by all
                 * of it (at a smooth point they differ by h f'') */
                if (!isfinite(est[0]) || !isfinite(est[1]) ||
                    fabs(est[0] - est[1]) > 3e-2 * (fabs(est[0]) + fabs(est[1])) + scale ||
                    fabs(side[0] - side[1]) > 3e-2 * (fabs(side[0]) + fabs(side[1])) + 2 * scale) {
                    kinks++;   /* a relu kink between or at the steps */
                    continue;
                }
                /* the two steps' estimates differ by their rounding noise
                 * (up to the kink test's 3%): a driver's gradient between
                 * them is as close as the differences can tell; else its
                 * distance to the nearer one counts. (The GEMM backends
                 * round differently: a gradient of 1e-3 has central
                 * differences 0.00088 and 0.00113 around it on one and
                 * 0.00098, 0.00101 on the other.) */
                double fd = fabs(est[0] - an) < fabs(est[1] - an) ? est[0] : est[1];
                bool between = (an - est[0]) * (an - est[1]) <= 0;
                double e = between ? 0 : fabs(fd - an) / (fabs(an) + fabs(fd) + scale);
                worst = fmax(worst, e);
                if (e > 2.5e-2) {
                    bad++;
                    fprintf(out, "gradcheck: estimator (%s): %s: driver's gradient %.6g, finite "
                            "difference %.6g\n", runs[run].name, q->name, an, fd);
                }
            }
        }
    }
    free(g);
    if (kinks * 4 > checks) {
        fprintf(out, "gradcheck: estimator: %d of %d directions non-smooth: too few checked\n", kinks, checks);
        bad++;
    }
    fprintf(out, "gradcheck: estimator (ELBO%s, at KL weights 1 and 0.3): %d directions, worst "
                 "relative error %.2g: %s\n", n_runs == 4 ? " and IWAE" : "", checks - kinks, worst,
            bad ? "FAIL" : "ok");
    return bad;
}

/* The ready protocol of the backward passes (VlmModel.param_ready, where
 * the training loop steps each tensor): every global parameter reported
 * once, its gradient final when reported, and its value not read after
 * it. The value is poisoned with NaN at the report; every gradient must
 * come out bit for bit as in the plain pass (gw, gl). */
typedef struct ReadyCheck {
    int *count;             /* reports per parameter */
    float *snap;            /* n_w: each gradient as it was at its report */
} ReadyCheck;

static void ready_probe(VlmModel *m, int i)
{
    ReadyCheck *c = m->ready_ctx;
    const VlmParamInfo *q = &m->params[i];
    c->count[i]++;
    memcpy(c->snap + q->offset, m->dw + q->offset, q->count * sizeof(float));
    for (size_t e = 0; e < q->count; e++)
        m->w[q->offset + e] = NAN;
}

static int check_ready(VlmModel *m, const VlmRng *noise, const float *a, float *const *b,
                       const ChainCoef *ch, const float *gw, const float *gl, FILE *out)
{
    ReadyCheck c = {vlm_xcalloc((size_t)m->n_params, sizeof(int)),
                    vlm_xcalloc(m->n_w + 1, sizeof(float))};
    float *w0 = vlm_xmalloc((m->n_w + 1) * sizeof(float));
    memcpy(w0, m->w, m->n_w * sizeof(float));
    size_t nl = m->local_rows * m->local_width;
    objective(m, noise, a, b, ch);   /* the backward passes reuse forward buffers */
    m->param_ready = ready_probe;
    m->ready_ctx = &c;
    backward(m, a, b, ch);
    m->param_ready = NULL;
    m->ready_ctx = NULL;
    memcpy(m->w, w0, m->n_w * sizeof(float));
    int bad = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *q = &m->params[i];
        if (q->local)
            continue;
        if (c.count[i] != 1) {
            fprintf(out, "gradcheck: %s reported ready %d times by the backward passes (want 1)\n",
                    q->name, c.count[i]);
            bad++;
        } else if (memcmp(c.snap + q->offset, m->dw + q->offset, q->count * sizeof(float)) != 0) {
            fprintf(out, "gradcheck: the gradient of %s changed after it was reported ready\n", q->name);
            bad++;
        }
    }
    if (memcmp(m->dw, gw, m->n_w * sizeof(float)) != 0 || (nl && memcmp(m->dloc, gl, nl * sizeof(float)) != 0)) {
        fprintf(out, "gradcheck: a parameter's value is read after it was reported ready (the gradients "
                     "change when it is poisoned there)\n");
        bad++;
    }
    free(c.count);
    free(c.snap);
    free(w0);
    return bad;
}

int vlm_gradcheck(const VlmModelDesc *desc, uint64_t seed, FILE *out)
{
    VlmModel m;
    VlmErr err;
    if (vlm_model_init(&m, desc, &err) != 0) {
        fprintf(out, "gradcheck: %s\n", err.msg);
        return 1;
    }
    const int B = 3, S = 2;
    vlm_model_alloc_rows(&m, (int)(B * S * m.E_max));
    vlm_model_alloc_local(&m, (size_t)B);
    vlm_model_init_params(&m, seed);
    vlm_model_init_local(&m, seed);
    VlmRng rng;
    vlm_rng_init(&rng, seed, VLM_STREAM_SAMPLE);
    /* move off the initial values (zero biases sit on relu kinks), by half
     * of each tensor's own scale so activations stay as in training */
    for (int i = 0; i < m.n_params; i++) {
        const VlmParamInfo *q = &m.params[i];
        size_t rows = q->local ? m.local_rows : 1;
        for (size_t r = 0; r < rows; r++) {
            float *p = q->local ? m.loc + r * m.local_width + q->offset : m.w + q->offset;
            double ss = 0;
            for (size_t e = 0; e < q->count; e++)
                ss += (double)p[e] * p[e];
            double sd = 0.5 * fmax(sqrt(ss / (double)q->count), 0.1);
            for (size_t e = 0; e < q->count; e++)
                p[e] += (float)(sd * vlm_rng_normal(&rng));
        }
    }
    VlmData data;
    make_data(&m, &rng, (size_t)B, &data);
    uint32_t idx[3] = {0, 1, 2};
    vlm_model_fill_batch(&m, &data, idx, B, S);
    int R = m.R;
    float *a = vlm_xcalloc((size_t)R, sizeof(float));
    float *b[VLM_MAX_VARS] = {0};
    for (int r = 0; r < R; r++)
        a[r] = (float)vlm_rng_normal(&rng);
    for (int j = 0; j < m.n_vars; j++) {
        if (j >= m.n_latent && !m.logq_term[j])
            continue;   /* no log q: no coefficient (and no draws) */
        b[j] = vlm_xcalloc((size_t)R, sizeof(float));
        for (int r = 0; r < R; r++)
            b[j][r] = (float)vlm_rng_normal(&rng);
    }
    ChainCoef ch = {0};
    if (m.markov_var >= 0) {
        size_t n = (size_t)m.markov_T * (size_t)R, K = (size_t)m.markov_K;
        for (int q = 0; q < m.n_markov_emit; q++) {
            float *c = ch.step[m.markov_emit[q]] = vlm_xmalloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++)
                c[i] = (float)vlm_rng_normal(&rng);
        }
        ch.init = vlm_xmalloc((K + K * K) * sizeof(float));
        for (size_t i = 0; i < K + K * K; i++)
            ch.init[i] = (float)vlm_rng_normal(&rng);
    }
    VlmRng noise;
    vlm_rng_init(&noise, seed, VLM_STREAM_NOISE);
    /* Rows clamped out by a given value of a summed variable (log p =
     * -inf whatever the parameters) weigh 0 in training: here too, and
     * their -inf stays out of F. */
    objective(&m, &noise, a, b, &ch);
    for (int r = 0; r < R; r++)
        for (int v = m.n_latent; v < m.n_vars; v++)
            if (summed(&m.vars[v]) && m.logp_term[v][r] == -INFINITY)
                a[r] = 0;

    /* Two passes when some latent has a closed-form KL: Monte Carlo terms,
     * then the KL replacing them (as in ELBO training). */
    bool any_kl = false;
    for (int j = 0; j < m.n_latent; j++)
        any_kl |= m.kl_term[j] != NULL;
    int bad = 0, kinks = 0, checks = 0;
    double worst = 0;
    const char *worst_name = "";
    float *gw = vlm_xcalloc(m.n_w + 1, sizeof(float));
    size_t nl = m.local_rows * m.local_width;
    float *gl = vlm_xcalloc(nl + 1, sizeof(float));
    for (int pass = 0; pass < (any_kl ? 2 : 1); pass++) {
    m.use_kl = pass == 1;
    /* analytic gradient */
    double f0 = objective(&m, &noise, a, b, &ch);
    /* score-function latents: the gradient is taken at a fixed sample. The
     * forward is repeated under replay: drawing those samples advanced the
     * noise stream, so a later reparameterized sample of the guide would
     * otherwise see other noise here than in the finite differences. */
    m.replay = true;
    f0 = objective(&m, &noise, a, b, &ch);
    backward(&m, a, b, &ch);
    memcpy(gw, m.dw, sizeof(float) * m.n_w);
    if (nl)
        memcpy(gl, m.dloc, sizeof(float) * nl);
    bad += check_ready(&m, &noise, a, b, &ch, gw, gl, out);

    /* Up to six coordinates of every tensor (of every item's row for a
     * local tensor): (F(theta + h e) - F(theta - h e)) / 2h must equal the
     * generated gradient. One coordinate moves few units, so a step rarely
     * crosses a relu kink. */
    static const float steps[3] = {1e-2f, 3e-3f, 1e-3f};
    for (int i = 0; i < m.n_params; i++) {
        const VlmParamInfo *q = &m.params[i];
        size_t rows = q->local ? m.local_rows : 1, n = q->count * rows;
        float *base = vlm_xmalloc(n * sizeof(float)), *v = vlm_xmalloc(n * sizeof(float));
        float *ptr0 = q->local ? m.loc + q->offset : m.w + q->offset;
        const float *g0 = q->local ? gl + q->offset : gw + q->offset;
        size_t stride = q->local ? m.local_width : 0;
        for (size_t r = 0; r < rows; r++)
            memcpy(base + r * q->count, ptr0 + r * stride, q->count * sizeof(float));
        for (int dir = 0; dir < 6 && (size_t)dir < n; dir++) {
            /* one coordinate (a random one; the first element first) */
            size_t pick = dir == 0 ? 0 : (size_t)vlm_rng_below(&rng, n);
            for (size_t e = 0; e < n; e++)
                v[e] = e == pick ? 1.0f : 0.0f;
            double an = g0[(pick / q->count) * stride + pick % q->count];
            double est[3];
            for (int t = 0; t < 3; t++) {
                double h = steps[t] * fmax(1.0, fabs((double)base[pick]));
                double f[2];
                for (int sgn = 0; sgn < 2; sgn++) {
                    for (size_t e = 0; e < n; e++)
                        ptr0[(e / q->count) * stride + e % q->count] =
                            base[e] + (float)((sgn ? -h : h) * v[e]);
                    f[sgn] = objective(&m, &noise, a, b, &ch);
                }
                est[t] = (f[0] - f[1]) / (2 * h);
            }
            for (size_t e = 0; e < n; e++)
                ptr0[(e / q->count) * stride + e % q->count] = base[e];
            if (getenv("VLM_GRADCHECK_DEBUG"))
                fprintf(out, "  %s: analytic %.6g, differences %.6g %.6g %.6g\n", q->name, an, est[0], est[1],
                        est[2]);
            /* the three step sizes must agree first: where they do not, a
             * step crossed a relu kink or flipped a discrete sample (a
             * non-smooth point, skipped and counted) */
            double scale = 1e-4 * fabs(an) + 1e-6;
            double fd = est[2];
            for (int t = 0; t < 2; t++)
                if (fabs(est[t] - est[2]) > 3e-2 * (fabs(est[t]) + fabs(est[2])) + scale)
                    fd = NAN;
            /* consistent: float32 rounding decides which step is best */
            for (int t = 0; t < 2 && !isnan(fd); t++)
                if (fabs(est[t] - an) < fabs(fd - an))
                    fd = est[t];
            checks++;
            if (isnan(fd)) {
                kinks++;
                continue;
            }
            double errv = fabs(fd - an) / (fabs(an) + fabs(fd) + scale);
            if (errv > worst) {
                worst = errv;
                worst_name = m.use_kl ? "closed-form KL pass" : q->name;
            }
            if (errv > 2.5e-2) {
                bad++;
                fprintf(out, "gradcheck%s: %s: analytic %.6g, finite difference %.6g (rel. error %.2g)\n",
                        m.use_kl ? " (closed-form KL)" : "", q->name, an, fd, errv);
            }
        }
        free(base);
        free(v);
    }
    (void)f0;
    }
    if (kinks * 4 > checks) {
        fprintf(out, "gradcheck: %d of %d directions cross non-smooth points: too few checked\n", kinks, checks);
        bad++;
    }
    fprintf(out, "gradcheck: %d directions over %d tensors (%d non-smooth, skipped), worst relative error "
                 "%.2g (%s): %s\n",
            checks - kinks, m.n_params, kinks, worst, worst_name, bad ? "FAIL" : "ok");
    bad += check_estimator(&m, &data, seed, out);
    free(a);
    for (int j = 0; j < m.n_vars; j++) {
        free(b[j]);
        free(ch.step[j]);
    }
    free(ch.init);
    free(gw);
    free(gl);
    vlm_data_free(&data);
    vlm_model_free(&m);
    return bad ? 1 : 0;
}
