/* infer_markov.c — a model's Markov chain in the estimators: after the
 * generated model_fwd has written the emissions' per-step log densities
 * at each state (logp_step, the chain's K rows per (item, sample)) and
 * the chain's init and trans, each (b, s) gets log Z by the forward
 * algorithm, and its gradient goes back as per-step coefficients (the
 * posterior marginals) and d/d init, d/d trans (expected counts). The
 * kernels are markov.c's; this file only walks the batch. */
#include "vlm.h"

#include <math.h>
#include <string.h>

/* The work space of one item, in doubles: li K | lA K*K | dPi K | dPA K*K
 * | em, alpha, beta, gamma T*K each | tmp K. */
typedef struct Work {
    double *li, *lA, *dPi, *dPA, *em, *alpha, *beta, *gamma, *tmp;
} Work;

size_t vlm_markov_work_size(const VlmModel *m)
{
    size_t T = (size_t)m->markov_T, K = (size_t)m->markov_K;
    return 3 * K + 2 * K * K + 4 * T * K;
}

static Work work_of(const VlmModel *m)
{
    size_t T = (size_t)m->markov_T, K = (size_t)m->markov_K;
    Work w;
    w.li = m->markov_work;
    w.lA = w.li + K;
    w.dPi = w.lA + K * K;
    w.dPA = w.dPi + K;
    w.em = w.dPA + K * K;
    w.alpha = w.em + T * K;
    w.beta = w.alpha + T * K;
    w.gamma = w.beta + T * K;
    w.tmp = w.gamma + T * K;
    return w;
}

/* em (T,K) of (b, s) block bs: the sum of the emissions' step terms in
 * its row of state k (the chain is the only enumerated variable: E = K). */
static void item_emissions(const VlmModel *m, int bs, double *em)
{
    int T = (int)m->markov_T, K = (int)m->markov_K;
    size_t R = (size_t)m->R;
    memset(em, 0, sizeof(double) * (size_t)T * K);
    for (int q = 0; q < m->n_markov_emit; q++) {
        const double *lp = m->logp_step[m->markov_emit[q]];
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                em[(size_t)t * K + k] += lp[(size_t)t * R + (size_t)bs * K + k];
    }
}

static void batch_params(VlmModel *m, Work *w)
{
    vlm_markov_log_params((int)m->markov_K, m->markov_logits, m->markov_init,
                          m->markov_trans, w->li, w->lA);
}

void vlm_infer_markov_reduce(VlmModel *m, const double *lp, double *L)
{
    Work w = work_of(m);
    int T = (int)m->markov_T, K = (int)m->markov_K;
    batch_params(m, &w);
    for (int bs = 0; bs < m->B * m->S; bs++) {
        item_emissions(m, bs, w.em);
        /* the other terms do not read the chain: equal in the K rows */
        L[bs] = lp[(size_t)bs * m->E] +
                vlm_markov_forward(T, K, w.li, w.lA, w.em, w.alpha);
    }
}

void vlm_infer_markov_grad(VlmModel *m, const double *c)
{
    Work w = work_of(m);
    int T = (int)m->markov_T, K = (int)m->markov_K;
    size_t R = (size_t)m->R;
    batch_params(m, &w);
    memset(w.dPi, 0, sizeof(double) * (size_t)K);
    memset(w.dPA, 0, sizeof(double) * (size_t)K * K);
    for (int bs = 0; bs < m->B * m->S; bs++) {
        item_emissions(m, bs, w.em);
        double lz = vlm_markov_forward(T, K, w.li, w.lA, w.em, w.alpha);
        vlm_markov_backward(T, K, w.lA, w.em, w.beta, w.tmp);
        /* loss = -sum c_bs log Z_bs */
        vlm_markov_grad(T, K, w.em, w.alpha, w.beta, lz, -c[bs], w.gamma, w.dPi, w.dPA);
        for (int q = 0; q < m->n_markov_emit; q++) {
            float *d = m->dlogp_step[m->markov_emit[q]];
            for (int t = 0; t < T; t++)
                for (int k = 0; k < K; k++)
                    d[(size_t)t * R + (size_t)bs * K + k] =
                        (float)(-c[bs] * w.gamma[(size_t)t * K + k]);
        }
    }
    memset(m->dmarkov_init, 0, sizeof(float) * (size_t)K);
    memset(m->dmarkov_trans, 0, sizeof(float) * (size_t)K * K);
    vlm_markov_params_bwd(K, m->markov_logits, w.li, w.lA, w.dPi, w.dPA,
                          m->dmarkov_init, m->dmarkov_trans);
}

double vlm_infer_markov_item(VlmModel *m, int bs, double *gamma, int *path,
                             int *back)
{
    Work w = work_of(m);
    int T = (int)m->markov_T, K = (int)m->markov_K;
    batch_params(m, &w);
    item_emissions(m, bs, w.em);
    double lz = vlm_markov_forward(T, K, w.li, w.lA, w.em, w.alpha);
    vlm_markov_backward(T, K, w.lA, w.em, w.beta, w.tmp);
    vlm_markov_grad(T, K, w.em, w.alpha, w.beta, lz, 0, gamma, NULL, NULL);
    if (path)   /* delta in alpha's place: alpha is not needed any more */
        vlm_markov_viterbi(T, K, w.li, w.lA, w.em, w.alpha, back, path);
    return lz;
}
