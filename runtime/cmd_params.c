/* cmd_params.c — `./model params`: the global parameters as stored, one CSV
 * line per row. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ params */

/* The global parameters as stored, one CSV line per row (tests and
 * scripts read fitted values with it, e.g. a mixture's means). */
int vlm_cmd_params(VlmModel *m, const Opts *o)
{
    VlmErr err;
    vlm_model_init_params(m, o->seed);
    if (o->load && vlm_model_load(m, o->load, NULL, &err) != 0)
        return vlm_cli_fail_load(o, err.msg);
    for (int i = 0; i < m->n_params; i++) {
        const VlmParamInfo *p = &m->params[i];
        if (p->local)
            continue;
        size_t rows = p->rank >= 2 ? (size_t)p->dims[0] : 1;
        size_t w = p->count / (rows ? rows : 1);
        const float *x = m->w + p->offset;
        for (size_t r = 0; r < rows; r++) {
            printf("%s,%zu", p->name, r);
            for (size_t j = 0; j < w; j++) {
                double v = x[r * w + j];
                printf(",%.9g", v);
            }
            printf("\n");
        }
    }
    return 0;
}
