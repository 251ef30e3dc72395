/* metrics.c — a CSV log of per-epoch numbers. A new file is created
 * (atomically) with the header; an existing file with the same header is
 * appended to, so a resumed run continues its log; one with a different
 * header is an error rather than being overwritten. Rows are flushed. */
#include "vlm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vlm_metrics_open(VlmMetrics *m, const char *path,
                     const char *const *cols, int n_cols, VlmErr *err)
{
    m->f = NULL;
    m->n_cols = n_cols;
    size_t hlen = 1;
    for (int j = 0; j < n_cols; j++)
        hlen += strlen(cols[j]) + 1;
    char *header = vlm_xmalloc(hlen + 1);
    header[0] = 0;
    for (int j = 0; j < n_cols; j++) {
        if (j)
            strcat(header, ",");
        strcat(header, cols[j]);
    }
    strcat(header, "\n");

    int rc = -1;
    FILE *old = fopen(path, "rb");
    if (old && fgetc(old) == EOF) {   /* empty: as if new */
        fclose(old);
        old = NULL;
    }
    if (old) {
        rewind(old);
        char *line = NULL;
        size_t cap = 0;
        ssize_t k = getline(&line, &cap, old);
        bool ends_nl = true;
        if (fseek(old, -1, SEEK_END) == 0)
            ends_nl = fgetc(old) == '\n';
        fclose(old);
        bool same = k > 0 && !strcmp(line, header);
        free(line);
        if (!same) {
            vlm_err_set(err, "%s: exists with different columns; not overwriting it (remove it or pick another name)",
                        path);
            goto done;
        }
        m->f = fopen(path, "ab");
        if (m->f && !ends_nl)
            fputc('\n', m->f);   /* a row cut short by a crash */
    } else {
        if (vlm_atomic_write_file(path, header, strlen(header), err) < 0)
            goto done;
        m->f = fopen(path, "ab");
    }
    if (!m->f) {
        vlm_err_set(err, "%s: cannot open for appending: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(header);
    return rc;
}

void vlm_metrics_row(VlmMetrics *m, const double *vals)
{
    if (!m->f)
        return;
    for (int j = 0; j < m->n_cols; j++)
        fprintf(m->f, "%s%.10g", j ? "," : "", vals[j]);
    fputc('\n', m->f);
    fflush(m->f);
}

void vlm_metrics_close(VlmMetrics *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
}
