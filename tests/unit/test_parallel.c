/* test_parallel.c — the fork-join pool: every index is visited exactly
 * once for any thread count and chunk size, and a threaded optimizer step
 * equals the single-threaded one bit for bit. */
#include "vlm.h"

#include <CUnit/CUnit.h>
#include <string.h>

static void count_slice(void *ctx, size_t lo, size_t hi)
{
    int *hits = ctx;
    for (size_t i = lo; i < hi; i++)
        hits[i]++;
}

static void test_cover(void)
{
    static int hits[10007];
    const size_t ns[] = {0, 1, 2, 7, 100, 10007};
    const size_t chunks[] = {1, 16, 5000};
    for (int t = 1; t <= 3; t++) {
        vlm_parallel_set_threads(t);
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
                memset(hits, 0, sizeof hits);
                vlm_parallel_for(ns[a], chunks[c], count_slice, hits);
                int bad = 0;
                for (size_t i = 0; i < ns[a]; i++)
                    bad += hits[i] != 1;
                CU_ASSERT_EQUAL(bad, 0);
            }
    }
    vlm_parallel_set_threads(1);
    CU_ASSERT_EQUAL(vlm_parallel_threads(), 1);
}

static void test_adam_threads_identical(void)
{
    enum { N = 200003 };
    static float p1[N], p2[N], g[N], m1[N], m2[N], v1[N], v2[N];
    VlmRng r;
    vlm_rng_init(&r, 5, 1);
    vlm_rng_normal_fill(&r, p1, N);
    vlm_rng_normal_fill(&r, g, N);
    memcpy(p2, p1, sizeof p1);
    memset(m1, 0, sizeof m1); memset(m2, 0, sizeof m2);
    memset(v1, 0, sizeof v1); memset(v2, 0, sizeof v2);
    VlmOptim o1, o2;
    vlm_optim_defaults(&o1, VLM_OPT_ADAM, 1e-3f);
    o2 = o1;
    for (int step = 0; step < 3; step++) {
        vlm_parallel_set_threads(1);
        vlm_optim_begin_step(&o1);
        vlm_optim_update(&o1, p1, g, m1, v1, N);
        vlm_parallel_set_threads(2);
        vlm_optim_begin_step(&o2);
        vlm_optim_update(&o2, p2, g, m2, v2, N);
    }
    vlm_parallel_set_threads(1);
    CU_ASSERT(memcmp(p1, p2, sizeof p1) == 0);
    CU_ASSERT(memcmp(v1, v2, sizeof v1) == 0);
}

void vlm_test_parallel(void)
{
    CU_pSuite s = CU_add_suite("parallel", NULL, NULL);
    CU_add_test(s, "every index once, any threads and chunk", test_cover);
    CU_add_test(s, "threaded Adam step equals single-threaded", test_adam_threads_identical);
}
