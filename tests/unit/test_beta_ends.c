/* test_beta_ends.c — CUnit suite "beta ends": a Beta sample stays strictly
 * inside (0, 1) as a float, so its log-density is finite even where the
 * density has a pole (a or b < 1). Found by gradchecking generated models
 * (tests/fuzz/generate.awk): a Beta(1, 0.5) guide drew 1.0f. */
#include "vlm.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>

static void check_ends(float a, float b)
{
    enum { N = 1000000 };
    float *x = vlm_xmalloc(N * sizeof *x);
    double *lp = vlm_xmalloc(N * sizeof *lp);
    VlmRng r;
    vlm_rng_init(&r, 1, VLM_STREAM_NOISE);
    VlmIn th[2] = {{&a, 0, 0}, {&b, 0, 0}};
    vlm_dist_beta_sample(&r, N, 1, 1, th, x);
    vlm_dist_beta_logp(N, 1, 1, (VlmIn){x, 1, 0}, th, (VlmIn){NULL, 0, 0}, lp);
    int outside = 0, infinite = 0;
    for (int i = 0; i < N; i++) {
        outside += !(x[i] > 0.0f && x[i] < 1.0f);
        infinite += !isfinite(lp[i]);
    }
    CU_ASSERT_EQUAL(outside, 0);
    CU_ASSERT_EQUAL(infinite, 0);
    free(x);
    free(lp);
}

static void test_beta_pole_at_one(void) { check_ends(1.0f, 0.5f); }
static void test_beta_pole_at_zero(void) { check_ends(0.05f, 1.0f); }

void vlm_test_beta_ends(void)
{
    CU_pSuite s = CU_add_suite("beta ends", NULL, NULL);
    CU_add_test(s, "Beta(1, 0.5) never draws 1.0f", test_beta_pole_at_one);
    CU_add_test(s, "Beta(0.05, 1) never draws 0.0f", test_beta_pole_at_zero);
}
