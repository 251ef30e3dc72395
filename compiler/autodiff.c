/* autodiff.c — reverse-mode differentiation of the IR at compile time.
 * Marks which nodes are live (feed an output) and which carry a gradient
 * (depend on a trainable parameter or on a reparameterized latent); the
 * emitter then writes the backward pass as the live, gradient-carrying
 * nodes in reverse order, each as its kernel's _bwd call. */
#include "vlmc.h"

#include <stdlib.h>

static bool is_output(const VlmcNode *x)
{
    return x->op == VLMC_OP_LOGP || x->op == VLMC_OP_RSAMPLE || x->op == VLMC_OP_SAMPLE ||
           x->op == VLMC_OP_MEAN || x->op == VLMC_OP_KL || x->op == VLMC_OP_MARKOV;
}

static void mark(VlmcGraph *g, const VlmcProgram *p, bool model_graph)
{
    for (int i = g->n - 1; i >= 0; i--) {
        VlmcNode *x = &g->nodes[i];
        if (is_output(x))
            x->live = true;
        if (x->live)
            for (int k = 0; k < x->n_in; k++)
                g->nodes[x->in[k]].live = true;
    }
    for (int i = 0; i < g->n; i++) {
        VlmcNode *x = &g->nodes[i];
        switch (x->op) {
        case VLMC_OP_PARAM:
        case VLMC_OP_LOCAL:
            x->dep = true;
            break;
        case VLMC_OP_LATENT:
            /* the model graph hands d log p / dz to the guide's sampler */
            x->dep = model_graph && !p->vars[x->var].sym->dist->discrete;
            break;
        case VLMC_OP_RSAMPLE:
            x->dep = true;
            break;
        case VLMC_OP_NUM: case VLMC_OP_OBS: case VLMC_OP_ENUM: case VLMC_OP_SAMPLE:
        case VLMC_OP_MEAN:
        case VLMC_OP_ONE_HOT:   /* of a discrete value: no gradient flows */
            x->dep = false;
            break;
        default:
            x->dep = false;
            for (int k = 0; k < x->n_in; k++)
                x->dep |= g->nodes[x->in[k]].dep;
        }
    }
    /* gradients flow only from the log-density terms (and, in the guide,
     * from the model into reparameterized samples): a value that only
     * feeds E[x | z] or a sampler needs none */
    bool *loss = calloc((size_t)g->n + 1, 1);
    for (int i = g->n - 1; i >= 0; i--) {
        VlmcNode *x = &g->nodes[i];
        if (x->op == VLMC_OP_LOGP || x->op == VLMC_OP_RSAMPLE || x->op == VLMC_OP_KL ||
            x->op == VLMC_OP_MARKOV)
            loss[i] = true;
        if (loss[i] && x->op != VLMC_OP_SAMPLE)
            for (int k = 0; k < x->n_in; k++)
                loss[x->in[k]] = true;
        if (!loss[i])
            x->dep = false;
    }
    free(loss);
}

void vlmc_autodiff(VlmcProgram *p)
{
    mark(&p->model_g, p, true);
    mark(&p->guide_g, p, false);
    mark(&p->sample_g, p, false);
    for (int i = 0; i < p->sample_g.n; i++)
        p->sample_g.nodes[i].dep = false;   /* sampling has no backward */
}
