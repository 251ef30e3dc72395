/* infer.c — the estimators, written once for every model: log weights over
 * the R = B*S*E rows, the ELBO / IWAE objectives and the coefficients that
 * turn the generated backward passes into their gradients (enumeration,
 * reparameterization, score function with baselines), and the per-item
 * statistics of eval. It sees models only through VlmModel. */
#include "vlm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void vlm_infer_init(VlmInfer *st, VlmObjective obj)
{
    memset(st, 0, sizeof *st);
    st->objective = obj;
    st->decay = 0.9;
    st->kl_weight = 1;
}

static bool is_guided(VlmTreat t)
{
    return t == VLM_TREAT_REPARAM || t == VLM_TREAT_SCORE ||
           t == VLM_TREAT_AUTO_GUIDE;
}

/* Scratch of one forward: lq (R) = sum of the guided log q terms per row,
 * lp (R) = sum of log p terms per row minus lq, L (B*S) = logsumexp_e lp,
 * logw = L. The guide's rows of one (b, s) are equal unless the guide
 * reads a variable summed out where missing (then each enumerated value
 * e has its own sample z_e ~ q(z | x, e), and sum_e p(x, e, z_e) /
 * q(z_e | x, e) is an unbiased estimate of p(x) all the same). */
typedef struct Fwd {
    double *lp, *L, *lq, *logw;
} Fwd;

/* The scratch lives in m->scratch (allocated with the rows): nothing to
 * free, and no allocation per batch. */
static void fwd_free(Fwd *f) { (void)f; }

static size_t item_of(const VlmModel *m, int b)
{
    return m->row_item[(size_t)b * m->S * m->E];
}

/* Whether latent v's KL(q || p) is taken in closed form in this pass. */
static bool uses_kl(const VlmModel *m, int v)
{
    return m->use_kl && v < m->n_latent && m->kl_term[v] != NULL;
}

/* Find the term that made item b's log weight non-finite and say so. */
static void blame(const VlmModel *m, const Fwd *f, int bs, VlmErr *err)
{
    int E = (int)m->E;
    int b = bs / m->S;
    size_t item = item_of(m, b);
    /* a chain's emissions: their per-step terms */
    for (int q = 0; q < m->n_markov_emit; q++) {
        int v = m->markov_emit[q];
        for (long t = 0; t < m->markov_T; t++)
            for (int e = 0; e < E; e++) {
                double x = m->logp_step[v][(size_t)t * m->R + (size_t)bs * E + e];
                if (isnan(x) || x == INFINITY) {
                    vlm_err_set(err, "log p(%s) term of variable `%s` is %s at item %zu, "
                                "step %ld", m->vars[v].name, m->vars[v].name,
                                isnan(x) ? "NaN" : "+Inf", item, t);
                    return;
                }
            }
    }
    /* NaN or +inf anywhere in the (b, s) rows first, then -inf. */
    for (int pass = 0; pass < 2; pass++) {
        for (int v = 0; v < m->n_vars; v++) {
            const double *t = m->logp_term[v];
            if (!t || uses_kl(m, v))   /* not computed in this pass */
                continue;
            for (int e = 0; e < E; e++) {
                double x = t[(size_t)bs * E + e];
                if (pass == 0 ? (isnan(x) || x == INFINITY) : false) {
                    vlm_err_set(err, "log p(%s) term of variable `%s` is %s "
                                "at item %zu", m->vars[v].name,
                                m->vars[v].name, isnan(x) ? "NaN" : "+Inf",
                                item);
                    return;
                }
            }
        }
        for (int j = 0; j < m->n_latent; j++) {
            bool kl = uses_kl(m, j);
            const double *t = kl ? m->kl_term[j] : m->logq_term[j];
            if (!t || !is_guided(m->vars[j].treat))
                continue;
            double x = t[(size_t)bs * E];
            if (pass == 0 ? (isnan(x) || isinf(x)) : false) {
                vlm_err_set(err, "%s(%s) term of latent `%s` (the guide) "
                            "is %s at item %zu", kl ? "KL(q || p) " : "log q",
                            m->vars[j].name, m->vars[j].name,
                            isnan(x) ? "NaN" : "Inf", item);
                return;
            }
        }
        if (pass == 1)
            break;
        /* -inf: every enumeration row has some -inf term; name the first
         * variable of the first row that does. */
        for (int v = 0; v < m->n_vars; v++) {
            const double *t = m->logp_term[v];
            if (t && !uses_kl(m, v) && t[(size_t)bs * E] == -INFINITY) {
                vlm_err_set(err, "log p(%s) term of variable `%s` is -Inf at "
                            "item %zu (a value outside the distribution's "
                            "support?)", m->vars[v].name, m->vars[v].name,
                            item);
                return;
            }
        }
    }
    vlm_err_set(err, "log weight is %s at item %zu", isnan(f->logw[bs]) ? "NaN"
                : "infinite", item);
}

/* The term table's coefficients: a term counted once per data set (a
 * global latent's log p and log q, a param's prior) weighs 1/N in each
 * item's objective, so that the mean over any B items is unbiased for
 * ELBO / N (and N times it is the data set's ELBO); none under
 * `predictive`, where w is drawn from q(w) and not weighed. */
static double once_scale(const VlmModel *m)
{
    return m->predictive ? 0 : 1.0 / (double)(m->n_items ? m->n_items : 1);
}

double vlm_infer_term_scale(const VlmModel *m, int v)
{
    return v < m->n_latent && m->vars[v].global ? once_scale(m) : 1;
}

/* Run guide and model forward and reduce the rows to log weights; the
 * guided latents' terms (log p(z) - log q(z), or KL) weigh beta (1: the
 * true log weights). */
static int forward(VlmModel *m, Fwd *f, double beta, VlmErr *err)
{
    int R = m->R, E = (int)m->E, BS = m->B * m->S;
    if (m->desc->guide_fwd)
        m->desc->guide_fwd(m);
    m->desc->model_fwd(m);
    f->lp = m->scratch;
    f->L = f->lp + m->Rmax;
    f->lq = f->L + m->Rmax;
    f->logw = f->lq + m->Rmax;
    memset(f->lp, 0, (size_t)R * sizeof(double));
    memset(f->lq, 0, (size_t)R * sizeof(double));
    double once = 0;   /* the once-per-data-set terms, unweighted */
    for (int v = 0; v < m->n_vars; v++) {
        const double *t = m->logp_term[v];
        double w = v < m->n_latent && is_guided(m->vars[v].treat) ? beta : 1;
        w *= vlm_infer_term_scale(m, v);
        if (t && !uses_kl(m, v)) {
            for (int r = 0; r < R; r++)
                f->lp[r] += w * t[r];
            if (v < m->n_latent && m->vars[v].global)
                once += t[0];
        }
    }
    for (int j = 0; j < m->n_latent; j++) {
        /* with the closed-form KL, KL(q || p) stands for log q - log p */
        const double *t = uses_kl(m, j) ? m->kl_term[j] : m->logq_term[j];
        double w = beta * vlm_infer_term_scale(m, j);
        if (t && is_guided(m->vars[j].treat)) {
            for (int r = 0; r < R; r++)
                f->lq[r] += w * t[r];
            if (m->vars[j].global)
                once -= t[0];
        }
    }
    for (int k = 0; k < m->n_priors; k++) {
        const double *t = m->prior_term[k];
        double w = once_scale(m);
        for (int r = 0; r < R; r++)
            f->lp[r] += w * t[r];
        once += t[0];
        if (!isfinite(t[0])) {
            vlm_err_set(err, "log prior of param `%s` is %s", m->params[m->prior_param[k]].name,
                        isnan(t[0]) ? "NaN" : "infinite");
            return -1;
        }
    }
    m->global_term = once;
    for (int r = 0; r < R; r++)
        f->lp[r] -= f->lq[r];
    if (m->markov_var >= 0)   /* a chain: the forward algorithm */
        vlm_infer_markov_reduce(m, f->lp, f->L);
    else
        vlm_logsumexp(BS, E, f->lp, f->L, NULL);
    for (int bs = 0; bs < BS; bs++) {
        f->logw[bs] = f->L[bs];
        if (!isfinite(f->logw[bs])) {
            blame(m, f, bs, err);
            return -1;
        }
    }
    return 0;
}

/* Per-item objective from its S log weights. */
static double item_objective(VlmObjective obj, int S, const double *logw)
{
    if (obj == VLM_OBJ_ELBO || S == 1) {
        double s = 0;
        for (int k = 0; k < S; k++)
            s += logw[k];
        return s / S;
    }
    double l;
    vlm_logsumexp(1, S, logw, &l, NULL);
    return l - log((double)S);
}

int vlm_infer_guided_summed(const VlmModel *m)
{
    for (int j = m->n_latent; j < m->n_vars; j++)
        if (m->vars[j].treat == VLM_TREAT_ENUMERATE && m->logq_term[j])
            return j;
    return -1;
}

/* Whether (b, s) row block bs has the value of summed variable y given. */
static bool given_at(const VlmModel *m, int y, int bs)
{
    size_t r = (size_t)bs * m->E;   /* numel 1 (the checker's rule) */
    float x = m->obs[y][r];
    return !isnan(x) && (!m->obs_mask[y] || m->obs_mask[y][r] != 0);
}

/* M2's bound for a row block whose y is missing (Kingma et al. 2014, eq.
 * 7): with pi_g = q(y = g | x) and L_g = logsumexp of log p - log q over
 * the block's rows whose y is g,
 *   U = sum_g pi_g (L_g - log pi_g).
 * Lg and lpi (K each) are work space. Returns U. */
static double m2_value(const VlmModel *m, int y, const double *a, int bs,
                       double *Lg, double *lpi)
{
    int E = (int)m->E;
    long K = m->vars[y].support;
    for (long g = 0; g < K; g++)
        Lg[g] = -INFINITY;
    for (int e = 0; e < E; e++) {
        size_t r = (size_t)bs * E + e;
        long g = (long)m->lat[y][r];
        double hi = fmax(Lg[g], a[r]), lo = fmin(Lg[g], a[r]);
        Lg[g] = hi == -INFINITY ? hi : hi + log1p(exp(lo - hi));
        lpi[g] = m->logq_term[y][r];
    }
    double u = 0;
    for (long g = 0; g < K; g++)
        if (Lg[g] > -INFINITY && lpi[g] > -INFINITY)
            u += exp(lpi[g]) * (Lg[g] - lpi[g]);
    return u;
}

/* Its gradient, for the block's coefficient cb: per row r (value g)
 * d U / d a_r = pi_g softmax_{rows of g}(a)_r (into cr and dlogp, the
 * weights of every log p and log q row), and d U / d log pi_g =
 * pi_g (L_g - log pi_g - 1) on the first row of g (into dlogq[y]). */
static void m2_grad(VlmModel *m, int y, const double *a, int bs, double cb,
                    double *cr, const double *Lg, const double *lpi)
{
    int E = (int)m->E;
    long K = m->vars[y].support;
    float *dq = m->dlogq[y];
    for (int e = 0; e < E; e++) {
        size_t r = (size_t)bs * E + e;
        long g = (long)m->lat[y][r];
        double pi = exp(lpi[g]);
        cr[r] = Lg[g] > -INFINITY ? cb * pi * exp(a[r] - Lg[g]) : 0;
        m->dlogp[r] = (float)-cr[r];
        dq[r] = 0;
    }
    for (long g = 0; g < K; g++) {
        for (int e = 0; e < E; e++) {
            size_t r = (size_t)bs * E + e;
            if ((long)m->lat[y][r] != g)
                continue;
            if (Lg[g] > -INFINITY)
                dq[r] = (float)(-cb * exp(lpi[g]) * (Lg[g] - lpi[g] - 1));
            break;
        }
    }
}

int vlm_infer_forward(VlmModel *m, double *logw, double *obj_sum,
                      VlmObjective obj, VlmErr *err)
{
    Fwd f = {0};
    m->use_kl = false;   /* estimates need the true importance weights */
    int rc = forward(m, &f, 1, err);
    if (rc == 0) {
        double sum = 0;
        for (int b = 0; b < m->B; b++)
            sum += item_objective(obj, m->S, f.logw + (size_t)b * m->S);
        if (obj_sum)
            *obj_sum = sum;
        if (logw)
            memcpy(logw, f.logw, (size_t)m->B * m->S * sizeof *logw);
    }
    fwd_free(&f);
    return rc;
}

/* Gradient of loss = -(1/B) sum_b objective_b with respect to every log
 * term, per (b, s) with weight c_bs:
 *   ELBO: c_bs = 1/(B S);   IWAE: c_bs = softmax_s(logw_b)_s / B.
 * With rho_r = softmax_e(log p_r - log q_r) (the enumerated variables are
 * summed out exactly, so each row's gradient is weighted by its posterior
 * responsibility; rows clamped to -inf by given data weigh 0):
 * log p rows: d loss / d lp_r = -c_bs rho_r.
 * log q, pathwise (REPARAM, AUTO_GUIDE): the direct dependence of the
 * loss on log q_r: +c_bs rho_r (the path through z is carried by dlat).
 * log q, score function (SCORE): the surrogate c_bs (1 - (f_bs - b_bs))
 * log q, with f = logw the learning signal, since
 *   d ELBO/d phi = E_q[(f - b) d log q] - E_q[d log q]   (b independent
 * of the own sample). b_bs: the mean of f over the item's other samples
 * when S > 1 (leave-one-out), else the moving average of f over earlier
 * batches (on the first batch: the mean over the batch's other items). */
int vlm_infer_grad(VlmModel *m, VlmInfer *st, double *obj_sum, VlmErr *err)
{
    int B = m->B, S = m->S, E = (int)m->E, R = m->R, BS = B * S;
    bool has_score = false;
    for (int j = 0; j < m->n_latent; j++)
        if (m->vars[j].treat == VLM_TREAT_SCORE)
            has_score = true;
    if (has_score && st->objective == VLM_OBJ_IWAE) {
        for (int j = 0; j < m->n_latent; j++)
            if (m->vars[j].treat == VLM_TREAT_SCORE) {
                vlm_err_set(err, "--objective iwae needs reparameterized or "
                            "enumerated latents; latent `%s` uses the "
                            "score-function estimator (use --objective elbo)",
                            m->vars[j].name);
                break;
            }
        return -1;
    }
    /* the ELBO's KL terms in closed form where the model allows it */
    m->use_kl = st->objective == VLM_OBJ_ELBO;
    Fwd f = {0};
    double beta = st->kl_weight;
    if (forward(m, &f, beta, err) != 0) {
        fwd_free(&f);
        return -1;
    }
    double *c = m->scratch + 4 * (size_t)m->Rmax;   /* after forward's four */
    /* M2: where y is missing, its guide weighs the values of y */
    int gy = vlm_infer_guided_summed(m);
    double *Lg = m->scratch + 6 * (size_t)m->Rmax, *lpi = Lg + m->Rmax;
    if (gy >= 0 && st->objective == VLM_OBJ_IWAE && S > 1) {
        vlm_err_set(err, "--objective iwae is not defined with a guide for `%s` "
                    "(the semi-supervised bound): use --objective elbo",
                    m->vars[gy].name);
        return -1;
    }
    for (int bs = 0; gy >= 0 && bs < BS; bs++)
        if (!given_at(m, gy, bs))
            f.logw[bs] = m2_value(m, gy, f.lp, bs, Lg, lpi);
    double sum = 0;
    for (int b = 0; b < B; b++) {
        const double *lw = f.logw + (size_t)b * S;
        sum += item_objective(st->objective, S, lw);
        if (st->objective == VLM_OBJ_IWAE && S > 1) {
            double l;
            vlm_logsumexp(1, S, lw, &l, c + (size_t)b * S);
            for (int s = 0; s < S; s++)
                c[(size_t)b * S + s] /= B;
        } else {
            for (int s = 0; s < S; s++)
                c[(size_t)b * S + s] = 1.0 / ((double)B * S);
        }
    }
    if (obj_sum)
        *obj_sum = sum;

    /* c[bs] becomes c_bs rho_r per row (after the item's c are read) */
    double *cr = c + (size_t)BS;
    /* with a chain, the rows of a (b, s) hold equal terms (the chain's
     * are per step, weighed by its marginals): one row carries them */
    for (int bs = 0; bs < BS; bs++)
        for (int e = 0; e < E; e++) {
            size_t r = (size_t)bs * E + e;
            cr[r] = m->markov_var >= 0 ? (e == 0 ? c[bs] : 0) : c[bs] * exp(f.lp[r] - f.L[bs]);
            m->dlogp[r] = (float)-cr[r];
        }
    if (m->markov_var >= 0)
        vlm_infer_markov_grad(m, c);
    for (int bs = 0; gy >= 0 && bs < BS; bs++) {
        if (!given_at(m, gy, bs)) {
            m2_value(m, gy, f.lp, bs, Lg, lpi);
            m2_grad(m, gy, f.lp, bs, c[bs], cr, Lg, lpi);
        } else {
            /* labelled: + alpha log q(y | x) at the given value (eq. 9) */
            for (int e = 0; e < E; e++) {
                size_t r = (size_t)bs * E + e;
                m->dlogq[gy][r] = (float)(-st->aux_weight * cr[r]);
            }
        }
    }

    if (has_score) {
        double mean_f = 0;
        for (int bs = 0; bs < BS; bs++)
            mean_f += f.logw[bs];
        mean_f /= BS;
        for (int j = 0; j < m->n_latent; j++) {
            if (m->vars[j].treat != VLM_TREAT_SCORE)
                continue;
            float *d = m->dlogq[j];
            memset(d, 0, (size_t)R * sizeof *d);
            for (int b = 0; b < B; b++) {
                double tot = 0;
                for (int s = 0; s < S; s++)
                    tot += f.logw[(size_t)b * S + s];
                for (int s = 0; s < S; s++) {
                    int bs = b * S + s;
                    double base;
                    for (int e = 1; e < E; e++)   /* direct part, rows e > 0 */
                        d[(size_t)bs * E + e] = (float)(beta * cr[(size_t)bs * E + e]);
                    if (S > 1)
                        base = (tot - f.logw[bs]) / (S - 1);
                    else if (st->baseline_set)
                        base = st->baseline;
                    else if (BS > 1)
                        base = (mean_f * BS - f.logw[bs]) / (BS - 1);
                    else
                        base = 0;
                    d[(size_t)bs * E] =
                        (float)(beta * cr[(size_t)bs * E] - c[bs] * (f.logw[bs] - base));
                }
            }
        }
        if (!st->baseline_set) {
            st->baseline = mean_f;
            st->baseline_set = true;
        } else {
            st->baseline = st->decay * st->baseline + (1 - st->decay) * mean_f;
        }
    }
    for (int j = 0; j < m->n_latent; j++) {
        VlmTreat t = m->vars[j].treat;
        if (t != VLM_TREAT_REPARAM && t != VLM_TREAT_AUTO_GUIDE)
            continue;
        float *d = m->dlogq[j];
        memset(d, 0, (size_t)R * sizeof *d);
        if (uses_kl(m, j)) {
            /* loss = ... + c KL: the generated code skips this latent's
             * log p and log q gradients and takes dkl instead */
            d = m->dkl[j];
            memset(d, 0, (size_t)R * sizeof *d);
        }
        double w = beta * vlm_infer_term_scale(m, j);
        for (int r = 0; r < R; r++)
            d[r] = (float)(w * cr[r]);
    }
    /* the guided latents' log p(z) terms weigh beta too (and a global
     * latent's 1/N, as the priors of params) */
    for (int j = 0; j < m->n_latent; j++)
        if (is_guided(m->vars[j].treat) && m->dlogp_lat[j]) {
            double w = beta * vlm_infer_term_scale(m, j);
            for (int r = 0; r < R; r++)
                m->dlogp_lat[j][r] = (float)(w * m->dlogp[r]);
        }
    if (m->n_priors)
        for (int r = 0; r < R; r++)
            m->dprior[r] = (float)(once_scale(m) * m->dlogp[r]);
    fwd_free(&f);

    if (!m->dw_zero)
        memset(m->dw, 0, (m->n_w ? m->n_w : 1) * sizeof *m->dw);
    m->dw_zero = false;
    if (m->dloc)
        for (int b = 0; b < B; b++)
            memset(m->dloc + (size_t)item_of(m, b) * m->local_width, 0,
                   m->local_width * sizeof *m->dloc);
    m->desc->model_bwd(m);
    if (m->desc->guide_bwd)
        m->desc->guide_bwd(m);
    return 0;
}

/* w_k = exp(logw_k - max): ELBO = mean logw, IWAE_K = log mean w + max,
 * SE(IWAE_K) ~ sd(w) / (mean(w) sqrt(K)) (delta method on log of the
 * mean; NaN for K = 1: one sample has no spread to measure), ESS =
 * (sum w)^2 / sum w^2, k-hat = the Pareto shape of the largest weights
 * (psis.c; NaN when not available). */
void vlm_infer_stats(int K, const double *logw, double *work,
                     VlmItemStats *out)
{
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) {
        s += logw[k];
        if (logw[k] > mx)
            mx = logw[k];
    }
    out->elbo = s / K;
    out->khat = NAN;
    if (!isfinite(mx)) {
        out->iwae = mx;
        out->se = NAN;
        out->ess = 0;
        return;
    }
    double sw = 0, sw2 = 0;
    for (int k = 0; k < K; k++) {
        double w = exp(logw[k] - mx);
        sw += w;
        sw2 += w * w;
    }
    double mean = sw / K;
    out->iwae = mx + log(mean);
    out->ess = sw * sw / sw2;
    if (K > 1) {
        double var = (sw2 - K * mean * mean) / (K - 1);
        out->se = sqrt(var > 0 ? var : 0) / mean / sqrt((double)K);
    } else {
        out->se = NAN;
    }
    if (vlm_psis_tail_len(K) >= 5) {
        double *w = work ? work
                         : vlm_xmalloc(vlm_psis_work(K) * sizeof *w);
        out->khat = vlm_psis_khat(K, logw, w);
        if (!work)
            free(w);
    }
}

int vlm_infer_eval_data(VlmModel *m, const VlmData *d, int K,
                        VlmItemStats *stats, VlmErr *err)
{
    int E = (int)m->E_max;
    bool exact = vlm_model_exact(m);
    if (exact)
        K = 1;
    if (K < 1)
        K = 1;
    int per = m->Rmax / E;            /* (b, s) pairs per forward */
    if (per < 1) {
        vlm_err_set(err, "internal: %d rows cannot hold E = %d", m->Rmax, E);
        return -1;
    }
    int Sc = K < per ? K : per;       /* samples per pass */
    /* a global latent: one draw of w per pass, so each item's K samples
     * hold K independent draws of w (its SE stays the SE) */
    bool global = vlm_model_has_global(m);
    if (global)
        Sc = 1;
    int Bp = Sc == K ? per / K : (global ? per : 1);   /* items per pass */
    double *logw = vlm_xmalloc((size_t)Bp * K * sizeof *logw);
    double *lw = vlm_xmalloc((size_t)Bp * Sc * sizeof *lw);
    double *work = vlm_xmalloc(vlm_psis_work(K) * sizeof *work);
    uint32_t *idx = vlm_xmalloc((size_t)Bp * sizeof *idx);
    int rc = 0;
    /* the posterior predictive p(x | data) ~ E_q(w) p(x | w): log weights
     * without the once-per-data-set terms, whose mean (over the passes)
     * adds its 1/N share to the ELBO below */
    double once_sum = 0;
    long once_n = 0;
    /* a param's prior is left out of log p(x | w) too (its share goes to
     * the ELBO like the global latents') */
    bool once_terms = global || m->n_priors > 0;
    m->predictive = once_terms;
    /* MPI: each rank its contiguous share of the items */
    const VlmComm *cw = vlm_comm_world();
    size_t lo, hi;
    vlm_shard_range(d->n, cw->rank, cw->size, &lo, &hi);
    for (size_t i0 = lo; i0 < hi && rc == 0; i0 += (size_t)Bp) {
        int nb = hi - i0 < (size_t)Bp ? (int)(hi - i0) : Bp;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        for (int k0 = 0; k0 < K && rc == 0; k0 += Sc) {
            int S = K - k0 < Sc ? K - k0 : Sc;
            vlm_model_fill_batch(m, d, idx, nb, S);
            rc = vlm_infer_forward(m, lw, NULL, VLM_OBJ_ELBO, err);
            once_sum += m->global_term;
            once_n++;
            for (int b = 0; b < nb && rc == 0; b++)
                memcpy(logw + (size_t)b * K + k0, lw + (size_t)b * S,
                       (size_t)S * sizeof *lw);
        }
        for (int b = 0; b < nb && rc == 0; b++) {
            VlmItemStats *st = &stats[i0 + b];
            vlm_infer_stats(K, logw + (size_t)b * K, work, st);
            if (exact)
                st->se = 0;     /* log p(x) itself, no sampling */
        }
    }
    m->predictive = false;
    if (cw->size > 1) {   /* every rank's share, gathered in rank 0 */
        rc = vlm_mpi_agree(rc, err);
        double once[2] = {once_sum, (double)once_n};
        vlm_mpi_sum_d(once, 2);
        once_sum = once[0];
        once_n = (long)once[1];
        if (rc == 0)
            vlm_mpi_gather_items(stats, sizeof *stats, d->n);
    }
    if (cw->rank == 0)   /* it holds them all now */
        lo = 0, hi = d->n;
    for (size_t i = lo; i < hi && rc == 0 && once_terms; i++)
        stats[i].elbo += once_sum / (double)once_n / (double)d->n;
    free(work);
    free(logw);
    free(lw);
    free(idx);
    return rc;
}

int vlm_infer_row_weights(VlmModel *m, double *wrow, VlmItemStats *stats,
                          VlmErr *err)
{
    Fwd f = {0};
    /* the true importance weights: a refinement before (ELBO gradients)
     * leaves use_kl set, which would weigh rows by p(x | z) alone */
    m->use_kl = false;
    int rc = forward(m, &f, 1, err);
    if (rc == 0) {
        int S = m->S, SE = S * (int)m->E;
        double *tmp = vlm_xmalloc((size_t)SE * sizeof *tmp);
        double *work = stats ? vlm_xmalloc(vlm_psis_work(S) * sizeof *work)
                             : NULL;
        for (int b = 0; b < m->B; b++) {
            double *lw = wrow + (size_t)b * SE, l;
            for (int k = 0; k < SE; k++)   /* log p - log q of the row */
                lw[k] = m->markov_var >= 0 ? f.L[b * S + k / (int)m->E] - log((double)m->E)
                                           : f.lp[b * SE + k];
            memcpy(tmp, lw, (size_t)SE * sizeof *tmp);
            vlm_logsumexp(1, SE, tmp, &l, lw);
            if (stats)
                vlm_infer_stats(S, f.logw + (size_t)b * S, work, &stats[b]);
        }
        free(work);
        free(tmp);
    }
    fwd_free(&f);
    return rc;
}
