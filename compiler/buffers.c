/* buffers.c — buffer planning: assigns every intermediate of a graph (its
 * value, its gradient, the noise of a reparameterized sample) to a slot of
 * the graph's activation memory, so that buffers whose lifetimes do not
 * overlap share one. Slot sizes stay symbolic (the largest member, taken
 * when the program starts, since consts may change); this file only
 * decides who shares with whom. */
#include "vlmc.h"

#include <stdlib.h>

bool vlmc_node_owns_value(const VlmcNode *x)
{
    switch (x->op) {
    case VLMC_OP_LATENT: case VLMC_OP_RSAMPLE: case VLMC_OP_SAMPLE: case VLMC_OP_OBS:
        /* VlmModel.lat and .obs hold FULL rows: a value of a lower level
         * is computed (or picked from there) in a buffer of its own rows */
        return x->live && x->level < VLMC_LEVEL_FULL;
    case VLMC_OP_PARAM: case VLMC_OP_ENUM:
    case VLMC_OP_LOGP: case VLMC_OP_MEAN: case VLMC_OP_KL:
    case VLMC_OP_MARKOV:   /* writes M->markov_init/trans */
        return false;
    default:
        return x->live;
    }
}

bool vlmc_node_owns_grad(const VlmcNode *x)
{
    return x->live && x->dep && x->op != VLMC_OP_PARAM && x->op != VLMC_OP_LATENT &&
           x->op != VLMC_OP_LOGP && x->op != VLMC_OP_KL && x->op != VLMC_OP_MARKOV;
}

bool vlmc_node_in_slot(const VlmcNode *x, int k)
{
    return (x->vslot == k && vlmc_node_owns_value(x)) || (x->gslot == k && vlmc_node_owns_grad(x)) ||
           (x->eslot == k && x->live && x->op == VLMC_OP_RSAMPLE);
}

typedef struct Interval {
    int start, end;       /* inclusive steps of the timeline */
    int *slot;            /* where to write the assignment */
} Interval;

static int by_start(const void *a, const void *b)
{
    const Interval *x = a, *y = b;
    return x->start != y->start ? (x->start > y->start) - (x->start < y->start)
                                : (x->end > y->end) - (x->end < y->end);
}

/* Whether node j's backward pass runs (and reads its inputs' values). */
static bool has_bwd(const VlmcNode *x) { return x->live && x->dep; }

/* Timeline of a graph with n nodes: forward step of node i is i, its
 * backward step is 2n-1-i (backward runs in reverse order). */
static void plan_graph(VlmcGraph *g)
{
    int n = g->n;
    int *last_fwd = malloc(sizeof(int) * (size_t)(n + 1));
    int *last_bwd = malloc(sizeof(int) * (size_t)(n + 1));   /* latest step reading the value */
    int *first_grad = malloc(sizeof(int) * (size_t)(n + 1)); /* first backward write */
    Interval *iv = malloc(sizeof(Interval) * (size_t)(3 * n + 1));
    if (!last_fwd || !last_bwd || !first_grad || !iv) {
        fprintf(stderr, "vlmc: out of memory planning buffers\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        last_fwd[i] = i;
        last_bwd[i] = -1;
        first_grad[i] = 2 * n - 1 - i;
        g->nodes[i].vslot = g->nodes[i].gslot = g->nodes[i].eslot = -1;
    }
    for (int j = 0; j < n; j++) {
        const VlmcNode *x = &g->nodes[j];
        if (!x->live)
            continue;
        for (int k = 0; k < x->n_in; k++) {
            int i = x->in[k];
            if (j > last_fwd[i])
                last_fwd[i] = j;
            if (has_bwd(x)) {
                int step = 2 * n - 1 - j;
                if (step > last_bwd[i])
                    last_bwd[i] = step;
                if (g->nodes[i].dep && step < first_grad[i])
                    first_grad[i] = step;
            }
        }
    }
    /* the last step reading each value */
    int *vend = malloc(sizeof(int) * (size_t)(n + 1));
    if (!vend) {
        fprintf(stderr, "vlmc: out of memory planning buffers\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        const VlmcNode *x = &g->nodes[i];
        vend[i] = last_fwd[i] > last_bwd[i] ? last_fwd[i] : last_bwd[i];
        if (has_bwd(x) && 2 * n - 1 - i > vend[i])
            vend[i] = 2 * n - 1 - i;          /* its own backward reads it */
    }
    /* a repeat with one copy per row is a view of its input (emit_c.c):
     * the input's buffer lives as long as the repeat's readers (from the
     * back, so that chains of repeats pass it on) */
    for (int j = n - 1; j >= 0; j--) {
        const VlmcNode *x = &g->nodes[j];
        if (x->live && x->op == VLMC_OP_REPEAT && vend[j] > vend[x->in[0]])
            vend[x->in[0]] = vend[j];
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        VlmcNode *x = &g->nodes[i];
        if (vlmc_node_owns_value(x))
            iv[m++] = (Interval){i, vend[i], &x->vslot};
        if (vlmc_node_owns_grad(x)) {
            iv[m++] = (Interval){first_grad[i], 2 * n - 1 - i, &x->gslot};
            x->gfirst = 2 * n - 1 - first_grad[i];
        }
        if (x->live && x->op == VLMC_OP_RSAMPLE)
            iv[m++] = (Interval){i, 2 * n - 1 - i, &x->eslot};
    }
    /* greedy by start: optimal for interval graphs */
    qsort(iv, (size_t)m, sizeof *iv, by_start);
    int *slot_end = malloc(sizeof(int) * (size_t)(m + 1));
    int n_slots = 0;
    for (int a = 0; a < m; a++) {
        int s = -1;
        for (int k = 0; k < n_slots && s < 0; k++)
            if (slot_end[k] < iv[a].start)
                s = k;
        if (s < 0)
            s = n_slots++;
        slot_end[s] = iv[a].end;
        *iv[a].slot = s;
    }
    g->n_slots = n_slots;
    free(slot_end);
    free(vend);
    free(iv);
    free(first_grad);
    free(last_bwd);
    free(last_fwd);
}

void vlmc_plan_buffers(VlmcProgram *p)
{
    plan_graph(&p->model_g);
    plan_graph(&p->guide_g);
    plan_graph(&p->sample_g);
}
