/* cmd_posterior.c — `./model posterior`: per-item posterior over the
 * latents: p(z|x) for enumerated latents, importance-weighted means and
 * scales for guided ones; purity and NMI against labels. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ posterior */

/* Cluster purity and normalised mutual information (arithmetic mean of
 * the entropies) between cluster ids c and labels y (0..VLM_LABEL_MAX,
 * renumbered densely first, so the table is K x the labels present). */
static void purity_nmi(size_t n, const int *c, const int32_t *y, int K,
                       double *purity, double *nmi)
{
    int *dense = vlm_xmalloc((VLM_LABEL_MAX + 1) * sizeof *dense);
    for (int l = 0; l <= VLM_LABEL_MAX; l++)
        dense[l] = -1;
    int L = 0;
    for (size_t i = 0; i < n; i++)
        if (dense[y[i]] < 0)
            dense[y[i]] = L++;
    double *t = vlm_xcalloc((size_t)K * L, sizeof *t);
    for (size_t i = 0; i < n; i++)
        t[(size_t)c[i] * L + dense[y[i]]] += 1;
    free(dense);
    double pur = 0, hc = 0, hy = 0, mi = 0;
    double *py = vlm_xcalloc((size_t)L, sizeof *py);
    for (int k = 0; k < K; k++) {
        double best = 0, pk = 0;
        for (int l = 0; l < L; l++) {
            best = fmax(best, t[(size_t)k * L + l]);
            pk += t[(size_t)k * L + l];
            py[l] += t[(size_t)k * L + l];
        }
        pur += best;
        if (pk > 0)
            hc -= pk / n * log(pk / n);
    }
    for (int l = 0; l < L; l++)
        if (py[l] > 0)
            hy -= py[l] / n * log(py[l] / n);
    for (int k = 0; k < K; k++) {
        double pk = 0;
        for (int l = 0; l < L; l++)
            pk += t[(size_t)k * L + l];
        for (int l = 0; l < L; l++) {
            double pkl = t[(size_t)k * L + l] / n;
            if (pkl > 0)
                mi += pkl * log(pkl / (pk / n * py[l] / n));
        }
    }
    *purity = pur / n;
    *nmi = hc + hy > 0 ? 2 * mi / (hc + hy) : 1;
    free(t);
    free(py);
}

/* Labels for the items of d, whose file held in_file items. The counts
 * must match; when --limit cut the data, a label file for the whole data
 * file is fine too (its first d->n labels are used). */
static int read_labels(const char *path, const char *data_path,
                       size_t in_file, VlmData *d, VlmErr *err)
{
    VlmData l = {0};
    if (vlm_data_read_labels(path, &l, err) != 0)
        return -1;
    if (l.n != d->n && l.n != in_file) {
        if (in_file > d->n)
            vlm_err_set(err, "%s: %zu labels, but %s has %zu items, of which "
                        "--limit uses %zu: give one label per item of the "
                        "file (%zu), or of those used (%zu)", path, l.n,
                        data_path, in_file, d->n, in_file, d->n);
        else
            vlm_err_set(err, "%s: %zu labels for the %zu items of %s: give "
                        "one label per item", path, l.n, d->n, data_path);
        vlm_data_free(&l);
        return -1;
    }
    free(d->labels);
    d->labels = l.labels;
    l.labels = NULL;
    vlm_data_free(&l);
    return 0;
}

/* The variables posterior reports: every latent, and every observed
 * variable summed out where missing (its probabilities where it was
 * missing, certainty of its value where it was given). */
static bool reported(const VlmModel *m, int j)
{
    return j < m->n_latent || m->vars[j].treat == VLM_TREAT_ENUMERATE;
}

/* Accuracy of the most probable class against the labels, over the items
 * where the class was missing in the data (the classifier's test) and
 * over all items. */
static void print_accuracy(const char *name, const char *by, const char *path,
                           size_t n, const int *cls, const bool *missing,
                           const int32_t *labels)
{
    size_t hit = 0, hit_miss = 0, n_miss = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = cls[i] == labels[i];
        hit += ok;
        if (missing[i]) {
            n_miss++;
            hit_miss += ok;
        }
    }
    printf("`%s` %s vs %s: accuracy %.4f on the %zu items where it was missing",
           name, by, path, n_miss ? (double)hit_miss / n_miss : NAN, n_miss);
    printf(" (%.4f on all %zu)\n", (double)hit / n, n);
}

/* A Markov chain's columns for item b: its per-step marginals p(z[t]=k)
 * and their argmax (forward-backward), or with map its Viterbi path. With
 * several samples (guided latents beside the chain) the marginals are
 * averaged with the samples' weights, and the path is the most probable
 * sample's. Work: gamma, acc (T*K doubles), path (T), back (T*K) ints. */
static long chain_columns(VlmModel *m, bool map, int b, const double *wrow, float *row,
                          double *gamma, double *acc, int *path, int *back)
{
    int T = (int)m->markov_T, K = (int)m->markov_K, S = m->S, E = (int)m->E;
    memset(acc, 0, sizeof(double) * (size_t)T * K);
    double best = -1;
    for (int s = 0; s < S; s++) {
        double ws = 0;
        for (int e = 0; e < E; e++)
            ws += wrow[((size_t)b * S + s) * E + e];
        bool top = ws > best;
        vlm_infer_markov_item(m, b * S + s, gamma, map && top ? path : NULL, back);
        if (top)
            best = ws;
        for (int i = 0; i < T * K; i++)
            acc[i] += ws * gamma[i];
    }
    if (map) {
        for (int t = 0; t < T; t++)
            row[t] = (float)path[t];
        return T;
    }
    for (int t = 0; t < T; t++) {
        int arg = 0;
        for (int k = 0; k < K; k++) {
            row[(size_t)t * (K + 1) + k] = (float)acc[(size_t)t * K + k];
            if (acc[(size_t)t * K + k] > acc[(size_t)t * K + arg])
                arg = k;
        }
        row[(size_t)t * (K + 1) + K] = (float)arg;
    }
    return (long)T * (K + 1);
}

int vlm_cmd_posterior(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data || !o->out)
        return vlm_cli_fail("posterior needs --data FILE and --out FILE.csv");
    int cl_var = -1;   /* a cluster id: the first enumerated scalar latent, */
    for (int j = 0; j < m->n_latent && cl_var < 0; j++)
        if (m->vars[j].treat == VLM_TREAT_ENUMERATE && m->vars[j].numel == 1)
            cl_var = j;
    int cls_var = -1;  /* a class: the first scalar observed summed variable */
    for (int j = m->n_latent; j < m->n_vars && cls_var < 0; j++)
        if (m->vars[j].treat == VLM_TREAT_ENUMERATE && m->vars[j].numel == 1)
            cls_var = j;
    if (o->map && m->markov_var < 0)
        return vlm_cli_fail("--map needs a Markov chain (its most probable path)");
    if (o->labels && cl_var < 0 && cls_var < 0)
        return vlm_cli_fail("--labels needs an enumerated scalar latent (a "
                            "cluster id) or a partly observed discrete "
                            "variable");
    VlmData d;
    size_t in_file;
    if (vlm_cli_read_data_counted(m, o, false, &d, &in_file))
        return 1;
    if (vlm_cli_want_mask(o))
        vlm_cli_mask_top_half(m, &d, 1);
    /* labels are checked before anything is computed or written */
    if (o->labels && read_labels(o->labels, o->data, in_file, &d, &err)) {
        vlm_data_free(&d);
        return vlm_cli_fail("%s", err.msg);
    }
    int S, SE, rows = vlm_cli_draw_rows(m, o, &S, &SE);
    if (vlm_cli_load_trained(m, o, &d, rows)) {
        vlm_data_free(&d);
        return 1;
    }
    /* Columns: enumerated latents: per element, p(z = k) for each k and
     * the argmax; guided latents with a Normal guide: loc and scale per
     * element; other guided latents: the importance-weighted mean. */
    long ncol = 0;
    for (int j = 0; j < m->n_vars; j++) {
        const VlmVarInfo *v = &m->vars[j];
        if (!reported(m, j))
            continue;
        if (v->treat == VLM_TREAT_MARKOV)
            ncol += o->map ? v->numel : v->numel * (v->support + 1);
        else if (v->treat == VLM_TREAT_ENUMERATE)
            ncol += v->numel * (v->support + 1);
        else if (m->q_loc[j])
            ncol += 2 * v->numel;
        else
            ncol += v->numel;
    }
    if (ncol == 0) {
        vlm_data_free(&d);
        return vlm_cli_fail("the model has no latent variables");
    }
    char **names = vlm_xmalloc((size_t)ncol * sizeof *names);
    long c = 0;
    for (int j = 0; j < m->n_vars; j++) {
        const VlmVarInfo *v = &m->vars[j];
        for (long i = 0; i < v->numel && reported(m, j); i++) {
            char el[80], buf[128];
            if (v->numel == 1)
                snprintf(el, sizeof el, "%s", v->name);
            else
                snprintf(el, sizeof el, "%s[%ld]", v->name, i);
            if (v->treat == VLM_TREAT_MARKOV && o->map) {
                snprintf(buf, sizeof buf, "%s.map", el);
                names[c++] = strdup(buf);
            } else if (v->treat == VLM_TREAT_ENUMERATE || v->treat == VLM_TREAT_MARKOV) {
                for (long k = 0; k < v->support; k++) {
                    snprintf(buf, sizeof buf, "p(%s=%ld)", el, k);
                    names[c++] = strdup(buf);
                }
                snprintf(buf, sizeof buf, "%s.argmax", el);
                names[c++] = strdup(buf);
            } else if (j < m->n_latent && m->q_loc[j]) {
                snprintf(buf, sizeof buf, "%s.mean", el);
                names[c++] = strdup(buf);
                snprintf(buf, sizeof buf, "%s.scale", el);
                names[c++] = strdup(buf);
            } else {
                snprintf(buf, sizeof buf, "%s.mean", el);
                names[c++] = strdup(buf);
            }
        }
    }
    float *out = vlm_xcalloc(d.n * (size_t)ncol, sizeof *out);
    int *cluster = vlm_xcalloc(d.n, sizeof *cluster);
    int *cls = vlm_xcalloc(d.n, sizeof *cls);
    bool *cls_missing = vlm_xcalloc(d.n, sizeof *cls_missing);
    int *qcls = vlm_xcalloc(d.n, sizeof *qcls);
    int Bp = rows / SE;
    double *wrow = vlm_xmalloc((size_t)Bp * SE * sizeof *wrow);
    uint32_t *idx = vlm_xmalloc((size_t)Bp * sizeof *idx);
    VlmItemStats *st = vlm_xmalloc(d.n * sizeof *st);
    size_t TK = m->markov_var >= 0 ? (size_t)m->markov_T * (size_t)m->markov_K : 1;
    double *gamma = vlm_xmalloc(2 * TK * sizeof *gamma), *acc = gamma + TK;
    int *path = vlm_xmalloc((TK + (size_t)(m->markov_var >= 0 ? m->markov_T : 1)) * sizeof *path);
    int *back = path + (m->markov_var >= 0 ? m->markov_T : 1);
    int rc = 0;
    /* MPI: each rank its contiguous share of the items, gathered below */
    size_t lo, hi;
    vlm_shard_range(d.n, vlm_comm_world()->rank, vlm_comm_world()->size, &lo, &hi);
    for (size_t i0 = lo; i0 < hi && rc == 0; i0 += (size_t)Bp) {
        int nb = hi - i0 < (size_t)Bp ? (int)(hi - i0) : Bp;
        for (int b = 0; b < nb; b++)
            idx[b] = (uint32_t)(i0 + b);
        vlm_model_fill_batch(m, &d, idx, nb, S);
        if ((rc = vlm_infer_row_weights(m, wrow, st + i0, &err)) != 0)
            break;
        for (int b = 0; b < nb; b++) {
            float *row = out + (i0 + b) * (size_t)ncol;
            long col = 0;
            for (int j = 0; j < m->n_vars; j++) {
                const VlmVarInfo *v = &m->vars[j];
                long nu = v->numel;
                if (!reported(m, j))
                    continue;
                if (v->treat == VLM_TREAT_MARKOV) {
                    col += chain_columns(m, o->map, b, wrow, row + col, gamma, acc, path, back);
                    continue;
                }
                const float *lat = m->lat[j];
                for (long i = 0; i < nu; i++) {
                    if (v->treat == VLM_TREAT_ENUMERATE) {
                        long K = v->support;
                        for (int k = 0; k < SE; k++) {
                            size_t r = (size_t)b * SE + k;
                            long z = (long)lat[r * nu + i];
                            if (z >= 0 && z < K)
                                row[col + z] += (float)wrow[r];
                        }
                        long best = 0;
                        for (long k = 1; k < K; k++)
                            if (row[col + k] > row[col + best])
                                best = k;
                        row[col + K] = (float)best;
                        if (j == cl_var)
                            cluster[i0 + b] = (int)best;
                        if (j == cls_var) {
                            cls[i0 + b] = (int)best;
                            if (m->logq_term[j]) {   /* the guide's classifier */
                                double bq = -INFINITY;
                                for (int q = 0; q < SE; q++) {
                                    size_t r = (size_t)b * SE + q;
                                    if (m->logq_term[j][r] > bq) {
                                        bq = m->logq_term[j][r];
                                        qcls[i0 + b] = (int)lat[r * nu + i];
                                    }
                                }
                            }
                            /* missing in the data: as the batch holds it
                             * (the item's first row), whichever file and
                             * column the variable was bound to */
                            size_t at = (size_t)b * SE * (size_t)nu + (size_t)i;
                            float given = m->obs[j][at];
                            cls_missing[i0 + b] = isnan(given) ||
                                (m->obs_mask[j] && m->obs_mask[j][at] == 0);
                        }
                        col += K + 1;
                    } else if (m->q_loc[j]) {
                        size_t r = (size_t)b * SE;
                        row[col++] = m->q_loc[j][r * nu + i];
                        row[col++] = m->q_scale[j][r * nu + i];
                    } else {
                        double s = 0;
                        for (int k = 0; k < SE; k++) {
                            size_t r = (size_t)b * SE + k;
                            s += wrow[r] * lat[r * nu + i];
                        }
                        row[col++] = (float)s;
                    }
                }
            }
        }
    }
    bool rank0 = true;
    if (vlm_mpi_parallel()) {
        rc = vlm_mpi_agree(rc, &err);
        if (rc == 0) {
            vlm_mpi_gather_items(out, (size_t)ncol * sizeof *out, d.n);
            vlm_mpi_gather_items(st, sizeof *st, d.n);
            vlm_mpi_gather_items(cluster, sizeof *cluster, d.n);
            vlm_mpi_gather_items(cls, sizeof *cls, d.n);
            vlm_mpi_gather_items(cls_missing, sizeof *cls_missing, d.n);
            vlm_mpi_gather_items(qcls, sizeof *qcls, d.n);
        }
        rank0 = vlm_comm_world()->rank == 0;   /* it alone writes */
    }
    if (rc == 0 && rank0)
        rc = vlm_data_write_csv(o->out, (const char *const *)names, d.n,
                                (size_t)ncol, out, &err);
    int ret = 0;
    if (rc != 0) {
        ret = vlm_cli_fail("%s", err.msg);
    } else if (rank0) {
        VlmEvidence ev;
        vlm_evidence_summarize(d.n, st, S, vlm_model_exact(m),
                               m->local_width > 0, &ev);
        vlm_evidence_line(stderr, &ev, "posterior");
        printf("wrote the posterior of %zu items to %s\n", d.n, o->out);
        if (o->labels) {
            if (cl_var >= 0) {
                double pur, nmi;
                purity_nmi(d.n, cluster, d.labels,
                           (int)m->vars[cl_var].support, &pur, &nmi);
                printf("clusters of `%s` vs %s: purity %.4f  NMI %.4f\n",
                       m->vars[cl_var].name, o->labels, pur, nmi);
            }
            if (cls_var >= 0)
            {
                print_accuracy(m->vars[cls_var].name, "by the model's posterior",
                               o->labels, d.n, cls, cls_missing, d.labels);
                if (m->logq_term[cls_var])
                    print_accuracy(m->vars[cls_var].name, "by the guide's q(y | x)",
                                   o->labels, d.n, qcls, cls_missing, d.labels);
            }
        }
    }
    vlm_cli_free_names(names, ncol);
    free(out);
    free(cls);
    free(cls_missing);
    free(qcls);
    free(cluster);
    free(st);
    free(gamma);
    free(path);
    free(wrow);
    free(idx);
    vlm_data_free(&d);
    return ret;
}
