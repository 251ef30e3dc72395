/* cmd_train.c — `./model train`: fits the model to data through vlm_train
 * (SGD on the ELBO/IWAE, or EM for conjugate mixtures). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ train */

/* The run itself, under the locks of --save and --log. */
static int train_locked(VlmModel *m, const Opts *o)
{
    VlmErr err;
    VlmData data, test;
    if (vlm_cli_read_data(m, o, false, &data))
        return 1;
    bool have_test = false;
    if (o->test) {
        if (vlm_cli_read_data(m, o, true, &test)) {
            vlm_data_free(&data);
            return 1;
        }
        have_test = true;
    }
    if (vlm_cli_want_mask(o)) {
        vlm_cli_mask_top_half(m, &data, o->mask_frac);
        if (have_test)
            vlm_cli_mask_top_half(m, &test, 1);
    }
    VlmTrainOpts t = {
        .data_path = o->data, .test_path = o->test, .save = o->save,
        .load = o->load, .log = o->log, .epochs = o->epochs,
        .every = o->every, .batch = o->batch, .samples = o->samples,
        .lr = o->lr, .clip = o->clip, .optimizer = o->optimizer,
        .sched = o->sched, .objective = o->objective, .seed = o->seed,
        .has_batch = o->has_batch, .has_lr = o->has_lr,
        .has_optimizer = o->has_optimizer, .has_samples = o->has_samples,
        .has_objective = o->has_objective, .has_clip = o->has_clip,
        .has_sched = o->has_sched, .has_epochs = o->has_epochs,
        .tol = o->tol, .reg_covar = o->reg_covar,
        .kmeans_iters = (int)o->kmeans_iters,
        .has_aux_weight = o->has_aux_weight, .aux_weight = o->aux_weight,
        .has_kl_weight = o->has_kl_weight, .kl_weight = o->kl_weight,
        .kl_warmup = o->kl_warmup,
    };
    int rc = vlm_train(m, &data, have_test ? &test : NULL, &t, &err);
    vlm_data_free(&data);
    if (have_test)
        vlm_data_free(&test);
    if (rc != 0)
        return vlm_cli_fail_load(o, err.msg);   /* --load's, or another */
    if (o->save)
        printf("saved %s\n", o->save);
    return 0;
}

int vlm_cmd_train(VlmModel *m, const Opts *o)
{
    VlmErr err;
    if (!o->data)
        return vlm_cli_fail("train needs --data FILE");
    if (o->objective == VLM_OBJ_IWAE && o->samples < 2)
        fprintf(stderr, "%s: note: --objective iwae with --samples 1 is the "
                "ELBO\n", vlm_cli_prog);
    /* Two trainers on one --save or --log would interleave rows and
     * overwrite each other's checkpoints: the second is refused. The
     * locks are held for the whole run. */
    VlmLock lk_save = {-1, NULL}, lk_log = {-1, NULL};
    /* under MPI rank 0 alone writes them, so it alone locks them */
    bool writer = vlm_comm_world()->rank == 0;
    if (writer && ((o->save && vlm_io_lock(&lk_save, o->save, &err) != 0) ||
        (o->log && vlm_io_lock(&lk_log, o->log, &err) != 0))) {
        vlm_io_unlock(&lk_save);
        return vlm_cli_fail("%s", err.msg);
    }
    int rc = train_locked(m, o);
    vlm_io_unlock(&lk_log);
    vlm_io_unlock(&lk_save);
    return rc;
}
