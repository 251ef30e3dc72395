/* cmd_eval.c — `./model eval`: bounds and log-likelihood estimates on data
 * (ELBO, IWAE_K, importance-sampled log p(x)). */
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
    double elbo = 0, iwae = 0, se2 = 0, ess = 0, ess_min = INFINITY;
    double sq = 0;
    for (size_t i = 0; i < d.n; i++) {
        elbo += st[i].elbo;
        iwae += st[i].iwae;
        sq += st[i].iwae * st[i].iwae;
        se2 += st[i].se * st[i].se;
        ess += st[i].ess;
        ess_min = fmin(ess_min, st[i].ess);
    }
    double n = (double)d.n;
    elbo /= n;
    iwae /= n;
    double sd_items = d.n > 1 ? sqrt(fmax(sq / n - iwae * iwae, 0)) : 0;
    char files[512];
    printf("eval: %zu items of %s\n", d.n, vlm_cli_data_name(o, false, files, sizeof files));
    if (vlm_model_exact(m)) {
        printf("  log p(x)        %.6f  (exact: every latent is summed out; "
               "per item, sd over items %.4f)\n", iwae, sd_items);
    } else {
        printf("  ELBO            %.6f\n", elbo);
        printf("  IWAE_%-10d %.6f\n", K, iwae);
        printf("  log p(x) (IS)   %.6f +- %.6f  (Monte Carlo standard error "
               "of the mean, delta method; sd over items %.4f)\n", iwae,
               sqrt(se2) / n, sd_items);
        printf("  ESS             %.2f of %d  (mean per item; min %.2f)\n",
               ess / n, K, ess_min);
    }
    free(st);
    vlm_data_free(&d);
    return 0;
}
