/* blas_core.c — no silent slow OpenBLAS. Debian's OpenBLAS (DYNAMIC_ARCH)
 * picks its kernels by CPU model and falls back to a generic core
 * (Prescott, Core2, Nehalem, ...) on a CPU it does not know, such as a
 * Sapphire Rapids Xeon under 0.3.21: 2.6x the time of its Haswell kernels
 * for EM and every BLAS call left. At start-up vlm_main re-executes the
 * program (execv of /proc/self/exe, no shell) with OPENBLAS_CORETYPE set
 * to the best core the CPU's features allow, when OpenBLAS chose a generic
 * one and OPENBLAS_CORETYPE is unset. An OPENBLAS_CORETYPE already set is
 * never changed; VLM_OPENBLAS_REEXEC=0 keeps OpenBLAS's own choice. */
#include "vlm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

char *openblas_get_corename(void);

/* OpenBLAS's pre-AVX x86 cores (its names, as openblas_get_corename()
 * prints them) */
static bool generic_core(const char *core)
{
    static const char *const old[] = {
        "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
        "Katmai", "Coppermine", "Northwood", "Banias", "Opteron",
        "Opteron_SSE3", "Barcelona", "Nano", "Unknown",
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (!strcasecmp(core, old[i]))
            return true;
    return false;
}

const char *vlm_blas_core_remedy(const char *core, bool avx2_fma, bool avx512)
{
    if (!core || !generic_core(core) || !avx2_fma)
        return NULL;
    return avx512 ? "SkylakeX" : "Haswell";
}

/* the core OpenBLAS chose; VLM_TEST_OPENBLAS_CORE stands in for it in
 * tests (this machine's OpenBLAS may know its CPU) */
static const char *chosen_core(void)
{
    const char *t = getenv("VLM_TEST_OPENBLAS_CORE");
    if (t && *t)
        return t;
    const char *c = openblas_get_corename();
    return c ? c : "Unknown";
}

void vlm_blas_core_check(char **argv)
{
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set)
        return;
    const char *core = chosen_core();
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    bool avx2_fma = false, avx512 = false;
#endif
    const char *want = vlm_blas_core_remedy(core, avx2_fma, avx512);
    if (!want)
        return;
    const char *re = getenv("VLM_OPENBLAS_REEXEC");
    if (re && !strcmp(re, "0")) {
        fprintf(stderr, "note: OpenBLAS runs its generic %s kernels on this CPU, which has "
                "%s (VLM_OPENBLAS_REEXEC=0 keeps them; unset it, or set "
                "OPENBLAS_CORETYPE=%s)\n", core, avx512 ? "AVX-512" : "AVX2 and FMA", want);
        return;
    }
    if (setenv("VLM_OPENBLAS_CHOSE", core, 1) != 0 || setenv("OPENBLAS_CORETYPE", want, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* not fatal: the run goes on with the generic kernels, loudly */
    fprintf(stderr, "warning: could not re-execute with OPENBLAS_CORETYPE=%s (%s); OpenBLAS "
            "keeps its generic %s kernels\n", want, strerror(errno), core);
    unsetenv("OPENBLAS_CORETYPE");
}

const char *vlm_blas_core_origin(char *buf, size_t n)
{
    const char *set = getenv("OPENBLAS_CORETYPE"), *chose = getenv("VLM_OPENBLAS_CHOSE");
    if (set && *set && chose && *chose)
        snprintf(buf, n, "OPENBLAS_CORETYPE=%s set by vlm: OpenBLAS chose its generic %s "
                 "kernels for this CPU", set, chose);
    else if (set && *set)
        snprintf(buf, n, "OPENBLAS_CORETYPE=%s from the environment", set);
    else
        snprintf(buf, n, "chosen by OpenBLAS");
    return buf;
}
