/* diag.c — diagnostics in the C compiler format: `file:line:col: error: msg`,
 * the source line and a caret/tilde span under it; name suggestions by edit
 * distance. It knows nothing about the language. */
#include "vlmc.h"

#include <stdarg.h>
#include <string.h>

/* Start of 1-based line `line` in src, or NULL. Scans from the start; only
 * called for printed diagnostics (at most ~40 per run), so no index. */
static const char *line_start(const VlmcSource *src, int line, size_t *len)
{
    if (!src || !src->text || line < 1) return NULL;
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

/* Display width of a byte at display column `col` (0-based): tabs go to the
 * next multiple of 8, UTF-8 continuation bytes take no column. */
static int byte_width(unsigned char c, int col)
{
    if (c == '\t') return 8 - col % 8;
    if (c >= 0x80 && c < 0xC0) return 0;
    return 1;
}

#define SHOW_MAX 120  /* longest excerpt of a source line shown */

static void show_span(VlmcDiag *d, VlmcLoc loc)
{
    size_t len;
    const char *s = line_start(d->src, loc.line, &len);
    if (!s || len == 0) return;
    size_t c0 = loc.col > 0 ? (size_t)loc.col - 1 : 0;
    if (c0 > len) c0 = len;
    size_t c1 = (loc.end_line == loc.line && loc.end_col > loc.col)
                    ? (size_t)loc.end_col - 1 : (loc.end_line > loc.line ? len : c0 + 1);
    if (c1 > len) c1 = len;
    if (c1 <= c0) c1 = c0 + 1;
    /* a window of the line around the span, for very long lines */
    size_t from = 0, to = len;
    if (len > SHOW_MAX) {
        from = c0 > 40 ? c0 - 40 : 0;
        to = from + SHOW_MAX < len ? from + SHOW_MAX : len;
        if (c1 > to) c1 = to > c0 ? to : c0 + 1;
    }
    FILE *o = d->out;
    fprintf(o, "%5d | %s", loc.line, from > 0 ? "..." : "");
    int col = 0;
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)s[i];
        int w = byte_width(c, col);
        if (c == '\t') fprintf(o, "%*s", w, "");
        else if (c < 0x20 || c == 0x7f) fputc('?', o);
        else fputc(c, o);
        col += w;
    }
    fprintf(o, "%s\n%5s | %s", to < len ? "..." : "", "", from > 0 ? "   " : "");
    col = 0;
    for (size_t i = from; i < c1 && i <= len; i++) {
        int w = i < len ? byte_width((unsigned char)s[i], col) : 1;
        char mark = i < c0 ? ' ' : i == c0 ? '^' : '~';
        if (i == c0 && w == 0) w = 1;
        for (int k = 0; k < w; k++) fputc(k == 0 ? mark : (i < c0 ? ' ' : '~'), o);
        col += w;
    }
    fputc('\n', o);
}

static void report(VlmcDiag *d, VlmcLoc loc, const char *kind,
                   const char *fmt, va_list ap)
{
    const char *path = d->src && d->src->path ? d->src->path : "vlmc";
    fprintf(d->out, "%s:%d:%d: %s: ", path, loc.line, loc.col, kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    show_span(d, loc);
}

void vlmc_error(VlmcDiag *d, VlmcLoc loc, const char *fmt, ...)
{
    if (d->too_many) return;
    if (d->n_errors >= VLMC_MAX_ERRORS) {
        d->too_many = true;
        fprintf(d->out, "%s: error: too many errors; stopping\n",
                d->src && d->src->path ? d->src->path : "vlmc");
        return;
    }
    d->n_errors++;
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "error", fmt, ap);
    va_end(ap);
}

void vlmc_warning(VlmcDiag *d, VlmcLoc loc, const char *fmt, ...)
{
    if (d->too_many) return;
    d->n_warnings++;
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "warning", fmt, ap);
    va_end(ap);
}

void vlmc_note(VlmcDiag *d, VlmcLoc loc, const char *fmt, ...)
{
    if (d->too_many) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "note", fmt, ap);
    va_end(ap);
}

/* Optimal string alignment distance (Levenshtein plus transpositions),
 * capped: names longer than 64 are never suggested. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 1000;
    int dp[65][65];
    for (size_t i = 0; i <= n; i++) dp[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) dp[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = dp[i - 1][j] + 1;
            if (dp[i][j - 1] + 1 < v) v = dp[i][j - 1] + 1;
            if (dp[i - 1][j - 1] + cost < v) v = dp[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && dp[i - 2][j - 2] + 1 < v)
                v = dp[i - 2][j - 2] + 1;
            dp[i][j] = v;
        }
    return dp[n][m];
}

const char *vlmc_suggest(const char *name, const char *const *cands, int n)
{
    size_t len = strlen(name);
    int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        if (!cands[i] || !strcmp(cands[i], name)) continue;
        int dist = edit_distance(name, cands[i]);
        size_t lc = strlen(cands[i]);
        if (dist < best_d && (size_t)dist < (lc > len ? lc : len)) {
            best_d = dist;
            best = cands[i];
        }
    }
    return best;
}
