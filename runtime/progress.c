/* progress.c — training progress. On a terminal: one bar redrawn in place
 * (\r) at most 10 times a second. Otherwise (logs, pipes): a plain line at
 * most every 5 seconds, then a final summary line. Counts are items. */
#include "vlm.h"

#include <time.h>
#include <unistd.h>

#define TTY_PERIOD 0.1
#define LOG_PERIOD 5.0

double vlm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vlm_progress_start(VlmProgress *p, FILE *out, const char *label,
                        long total)
{
    p->out = out;
    p->tty = out && isatty(fileno(out));
    p->label = label ? label : "";
    p->total = total;
    p->done = 0;
    p->t_start = p->t_last = vlm_now();
    p->running = 0;
}

/* "1:02:03" or "2:03" */
static void fmt_duration(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 359999)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void draw(VlmProgress *p, double now)
{
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32];
    double left = p->total > p->done ? (double)(p->total - p->done) : 0;
    fmt_duration(eta, sizeof eta, left == 0 ? 0 : rate > 0 ? left / rate : -1);
    int pct = p->total > 0 ? (int)(100.0 * (double)p->done / (double)p->total) : 0;
    if (p->tty) {
        enum { W = 24 };
        char bar[W + 1];
        int fill = p->total > 0 ? (int)((double)W * (double)p->done / (double)p->total) : 0;
        for (int i = 0; i < W; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[W] = 0;
        /* \033[K clears what a longer previous line left behind */
        fprintf(p->out, "\r%s [%s] %3d%% %ld/%ld  %.0f items/s  obj %.4g  ETA %s\033[K",
                p->label, bar, pct, p->done, p->total, rate, p->running, eta);
    } else {
        fprintf(p->out, "%s: %ld/%ld (%d%%) %.0f items/s obj %.6g ETA %s\n",
                p->label, p->done, p->total, pct, rate, p->running, eta);
    }
    fflush(p->out);
    p->t_last = now;
}

void vlm_progress_update(VlmProgress *p, long done, double objective)
{
    p->done = done;
    p->running = objective;
    if (!p->out)
        return;
    double now = vlm_now();
    if (now - p->t_last >= (p->tty ? TTY_PERIOD : LOG_PERIOD))
        draw(p, now);
}

void vlm_progress_finish(VlmProgress *p, const char *summary)
{
    if (!p->out)
        return;
    double el = vlm_now() - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    if (p->tty)
        fprintf(p->out, "\r\033[K");
    fprintf(p->out, "%s: %ld items in %.2fs (%.0f items/s) obj %.6g%s%s\n",
            p->label, p->done, el, rate, p->running, summary ? "  " : "",
            summary ? summary : "");
    fflush(p->out);
}
