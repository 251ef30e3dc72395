/* unit_main.c — runs every CUnit suite (registered by the generated
 * suites.c) and prints a machine-readable count line for run_tests.sh.
 * Usage: unit_tests [suite-name-substring] */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

void vlm_test_register_all(void);

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: unit_tests [SUITE]\n  runs all CUnit suites, or the one named SUITE\n");
        return 0;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "unit_tests: cannot initialise CUnit\n");
        return 1;
    }
    vlm_test_register_all();
    CU_basic_set_mode(CU_BRM_NORMAL);
    if (argc > 1) {
        CU_pSuite s = CU_get_suite(argv[1]);
        if (!s) {
            fprintf(stderr, "unit_tests: no suite named '%s'\n", argv[1]);
            CU_cleanup_registry();
            return 1;
        }
        CU_basic_run_suite(s);
    } else {
        CU_basic_run_tests();
    }
    unsigned run = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_tests_failed();
    printf("\nUNIT-COUNTS passed=%u failed=%u\n", run - failed, failed);
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
