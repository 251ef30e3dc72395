/* cmd_info.c — `./model info`: the model, its plan, parameters and memory.
 * */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ info */

/* What the products run on: the GEMM backend, oneDNN's ISA and the
 * implementation it picks (fp32, bf16), OpenBLAS's core and where it
 * came from. */
static void print_compute(void)
{
    VlmGemmInfo gi;
    char origin[160];
    vlm_gemm_info(&gi);
    printf("\n-- compute\n");
    printf("  gemm backend: %s (--gemm or $VLM_GEMM; default %s)\n",
           vlm_gemm_backend_name(vlm_gemm_backend()), vlm_gemm_backend_name(VLM_GEMM_DEFAULT));
    printf("  onednn: %s, ISA %s, matmul fp32 %s, bf16 %s\n", gi.onednn_version, gi.onednn_isa,
           gi.impl_f32, gi.impl_bf16);
    printf("  bf16 training: %s\n", gi.bf16_ok ? "available (--precision bf16)"
           : "unavailable (needs AVX512-BF16 or AMX-BF16)");
    printf("  openblas core: %s (%s)\n", gi.openblas_core,
           vlm_blas_core_origin(origin, sizeof origin));
    printf("  openblas config: %s\n", gi.openblas_config);
    printf("  threads: %d (vlm's pool; every product single-threaded in its slices)\n",
           vlm_parallel_threads());
}

int vlm_cmd_info(VlmModel *m, const Opts *o)
{
    (void)o;
    const VlmModelDesc *d = m->desc;
    printf("model %s\n", d->name);
    if (d->n_consts) {
        printf("consts:");
        for (int i = 0; i < d->n_consts; i++)
            printf(" %s=%ld", d->const_names[i], d->const_values[i]);
        printf("\n");
    }
    printf("\n-- source\n%s", d->source ? d->source : "");
    if (d->source && d->source[0] && d->source[strlen(d->source) - 1] != '\n')
        printf("\n");
    printf("\n-- plan\n%s", d->plan ? d->plan : "");
    if (d->plan && d->plan[0] && d->plan[strlen(d->plan) - 1] != '\n')
        printf("\n");
    printf("\n-- variables\n");
    for (int j = 0; j < m->n_vars; j++) {
        static const char *tr[] = {"enumerate", "reparameterized",
                                   "score function", "automatic guide", ""};
        const VlmVarInfo *v = &m->vars[j];
        printf("  %-8s %-12s %-12s %6ld elements  %s\n",
               v->kind == VLM_VAR_LATENT ? "latent" : "observed", v->name,
               v->dist ? v->dist : "", v->numel, tr[v->treat]);
    }
    for (int j = 0; j < m->n_inputs; j++) {
        const VlmVarInfo *v = &m->vars[m->n_vars + j];
        char type[48] = "real";
        if (v->support > 0)
            snprintf(type, sizeof type, "category(%ld)", v->support);
        printf("  %-8s %-12s %-12s %6ld elements  given by the data\n", "input",
               v->name, type, v->numel);
    }
    if (m->n_inputs) {
        printf("  data columns, in order:");
        for (int k = 0; k < m->n_data; k++)
            printf(" %s", m->vars[m->data_var[k]].name);
        printf("\n");
    }
    printf("\n-- parameters\n");
    size_t theta = 0, phi = 0, loc = 0;
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        char shape[64] = "";
        for (int k = 0; k < p->rank; k++) {
            size_t u = strlen(shape);
            snprintf(shape + u, sizeof shape - u, "%s%ld", k ? "x" : "",
                     p->dims[k]);
        }
        printf("  %-24s %-12s %10zu  %s%s\n", p->name, p->rank ? shape : "scalar",
               p->count, p->guide ? "guide" : "model",
               p->local ? ", per item" : "");
        if (p->local)
            loc += p->count;
        else if (p->guide)
            phi += p->count;
        else
            theta += p->count;
    }
    printf("  total: %zu model + %zu guide parameters", theta, phi);
    if (loc)
        printf(" + %zu per item", loc);
    printf("\n\n-- memory\n");
    printf("  parameters, gradients, Adam moments: %.2f MB\n",
           4.0 * 4 * m->n_w / 1e6);
    printf("  activations: %zu bytes per row + %zu fixed; rows = batch x "
           "samples x %ld (enumeration)\n", m->bytes_per_row, m->bytes_fixed,
           m->E_max);
    printf("  e.g. --batch 64: %.2f MB\n",
           (m->bytes_fixed + (double)m->bytes_per_row * 64 * m->E_max) / 1e6);
    if (m->local_width)
        printf("  local parameters: %zu floats x 4 per item\n",
               m->local_width);
    print_compute();
    return 0;
}
