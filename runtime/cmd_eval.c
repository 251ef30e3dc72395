/* cmd_eval.c — `./model eval`: bounds and log-likelihood estimates on data
 * (ELBO, IWAE_K, importance-sampled log p(x) with its standard error,
 * ESS and k-hat: the report is vlm_evidence_print's, evidence.c). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ eval */

int vlm_cmd_eval(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data)
        return vlm_cli_fail("eval needs --data FILE");
    VlmData d;
    if (vlm_cli_read_data(m, o, false, &d))
        return 1;
    if (vlm_cli_want_mask(o))
        vlm_cli_mask_top_half(m, &d, 1);
    int K = vlm_model_exact(m) ? 1 : o->iw;
    int rows = vlm_cli_eval_rows(m, o->batch > 0 ? o->batch : 64, K);
    if (vlm_cli_load_trained(m, o, &d, rows)) {
        vlm_data_free(&d);
        return 1;
    }
    VlmItemStats *st = vlm_xmalloc(d.n * sizeof *st);
    if (vlm_infer_eval_data(m, &d, K, st, &err) != 0) {
        free(st);
        vlm_data_free(&d);
        return vlm_cli_fail("%s", err.msg);
    }
    if (vlm_comm_world()->rank > 0) {   /* rank 0 holds every item's */
        free(st);
        vlm_data_free(&d);
        return 0;
    }
    VlmEvidence ev;
    vlm_evidence_summarize(d.n, st, K, vlm_model_exact(m), m->local_width > 0,
                           &ev);
    ev.global = vlm_model_has_global(m);
    ev.priors = m->n_priors > 0;
    char files[512];
    vlm_evidence_print(stdout, &ev, vlm_cli_data_name(o, false, files, sizeof files));
    free(st);
    vlm_data_free(&d);
    return 0;
}
