/* tmpdir.h — a scratch directory per file-writing suite (checkpoint, data,
 * output): made by the suite's init, removed with its contents by its
 * cleanup, and paths and files in it. Header-only (static inline) because
 * the Makefile compiles only tests/unit/test_*.c. */
#ifndef VLM_TMPDIR_H
#define VLM_TMPDIR_H

#include "vlm.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

static char dir[64];

/* dir/name in one of 8 rotating buffers: a few may be live at once. */
static inline const char *tpath(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static inline void put_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* A fresh dir from a mkdtemp pattern ("/tmp/vlm-x-XXXXXX"); 0 or -1, as a
 * CUnit suite init returns. */
static inline int tmpdir_make(const char *pattern)
{
    snprintf(dir, sizeof dir, "%s", pattern);
    return mkdtemp(dir) ? 0 : -1;
}

/* Turns off any injected I/O failure and removes dir. */
static inline int tmpdir_remove(void)
{
    vlm_io_fail_after(-1);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
