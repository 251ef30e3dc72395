/* cmd_gradcheck.c — `./model gradcheck`: the generated backward passes
 * against central finite differences (vlm_gradcheck in gradcheck.c); a
 * developer's check of vlmc's output, not of the data. */
#include "cli.h"

void openblas_set_num_threads(int);

int vlm_cmd_gradcheck(VlmModel *m, const Opts *o)
{
    openblas_set_num_threads(1);
    return vlm_gradcheck(m->desc, o->seed, stdout);
}
