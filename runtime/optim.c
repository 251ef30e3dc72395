/* optim.c — first-order optimizers over contiguous parameter blocks:
 * Adam (bias-corrected, optional decoupled weight decay as in AdamW), SGD
 * with momentum, global-norm clipping, learning-rate schedules and lazy
 * row-wise updates for per-data-point parameters. Buffers are the
 * caller's (one block each for p, g, m, v); nothing is allocated here. */
/* The Makefile builds at -O2, where GCC's "very cheap" vectorizer skips
 * any loop that needs a runtime alias check or a remainder loop, i.e.
 * every loop here; O3 for this file turns them into SIMD loops. No
 * trapping math / errno: nothing reads FP exception flags or errno, and
 * without them selects (x > 0 ? a : b) and sqrtf stay branch-free. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include "vlm.h"

#include <stdatomic.h>
#include <string.h>

#include <math.h>

void vlm_optim_defaults(VlmOptim *o, VlmOptKind kind, float lr)
{
    *o = (VlmOptim){
        .kind = kind,
        .lr = lr,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
        .weight_decay = 0.0f,
        .momentum = 0.0f,
        .clip_norm = 0.0f,
        .sched = VLM_SCHED_CONST,
        .total_steps = 0,
        .step_every = 0,
        .step_gamma = 0.1f,
        .t = 0,
    };
}

/* k = t - 1 steps already taken.
 * cosine: lr * (1 + cos(pi * min(k, T) / T)) / 2   (T = total_steps)
 * step:   lr * gamma^floor(k / step_every) */
float vlm_optim_lr(const VlmOptim *o, long t)
{
    long k = t > 1 ? t - 1 : 0;
    switch (o->sched) {
    case VLM_SCHED_CONST:
        break;
    case VLM_SCHED_COSINE:
        if (o->total_steps > 0) {
            double f = k < o->total_steps ? (double)k / o->total_steps : 1.0;
            return (float)(o->lr * 0.5 * (1.0 + cos(M_PI * f)));
        }
        break;
    case VLM_SCHED_STEP:
        if (o->step_every > 0)
            return (float)(o->lr * pow(o->step_gamma, (double)(k / o->step_every)));
        break;
    }
    return o->lr;
}

// g (n) -> ||g||_2, and g *= clip / ||g|| when ||g|| > clip > 0
double vlm_optim_clip(float *g, size_t n, float clip_norm)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    double norm = sqrt(s);
    /* A non-finite norm is returned untouched: scaling would only turn
     * the gradient into NaN/0 and hide the problem from the caller. */
    if (clip_norm > 0 && isfinite(norm) && norm > clip_norm) {
        float scale = (float)(clip_norm / norm);
        for (size_t i = 0; i < n; i++)
            g[i] *= scale;
    }
    return norm;
}

void vlm_optim_begin_step(VlmOptim *o) { o->t++; }

/* The per-step constants shared by every element of one step. */
typedef struct Step {
    float lr, decay;      /* decay = 1 - lr * weight_decay */
    float a1, bc2_isqrt;  /* Adam: lr / (1 - beta1^t), 1 / sqrt(1 - beta2^t) */
} Step;

static Step step_consts(const VlmOptim *o)
{
    long t = o->t > 0 ? o->t : 1;
    Step s;
    s.lr = vlm_optim_lr(o, t);
    s.decay = 1.0f - s.lr * o->weight_decay;
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    s.a1 = (float)(s.lr / bc1);
    s.bc2_isqrt = (float)(1.0 / sqrt(bc2));   /* a product, not a division, per element */
    return s;
}

/* Adam with bias correction, weight decay decoupled from the gradient:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p = p (1 - lr wd) - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
static void adam_span(const VlmOptim *o, const Step *s, float *p,
                      const float *g, float *m, float *v, size_t n)
{
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * s->decay - s->a1 * mi / (sqrtf(vi) * s->bc2_isqrt + eps);
    }
}

/* SGD with (heavy-ball) momentum, as torch.optim.SGD with dampening 0:
 *   m = mu m + g;  p = p (1 - lr wd) - lr m   (no m: p -= lr g) */
static void sgd_span(const VlmOptim *o, const Step *s, float *p,
                     const float *g, float *m, size_t n)
{
    if (m && o->momentum != 0.0f) {
        float mu = o->momentum;
        for (size_t i = 0; i < n; i++) {
            m[i] = mu * m[i] + g[i];
            p[i] = p[i] * s->decay - s->lr * m[i];
        }
    } else {
        for (size_t i = 0; i < n; i++)
            p[i] = p[i] * s->decay - s->lr * g[i];
    }
}

// p, g, m, v (n): one optimizer step at step o->t
typedef struct UpdateJob {
    const VlmOptim *o;
    const Step *s;
    float *p, *m, *v;
    const float *g;
} UpdateJob;

static void update_slice(void *ctx, size_t lo, size_t hi)
{
    const UpdateJob *j = ctx;
    if (j->o->kind == VLM_OPT_ADAM)
        adam_span(j->o, j->s, j->p + lo, j->g + lo, j->m + lo, j->v + lo, hi - lo);
    else
        sgd_span(j->o, j->s, j->p + lo, j->g + lo, j->m ? j->m + lo : NULL, hi - lo);
}

void vlm_optim_update(const VlmOptim *o, float *p, const float *g, float *m,
                      float *v, size_t n)
{
    Step s = step_consts(o);
    UpdateJob j = {o, &s, p, m, v, g};
    vlm_parallel_for(n, 1 << 15, update_slice, &j);
}

/* The training loop's step: per block of 8192 elements, check the
 * gradient is finite, update, and zero the gradient while the block is in
 * cache (one pass over g instead of a scan, an update and a memset). A
 * block with a non-finite gradient is left untouched and reported. */
typedef struct ConsumeJob {
    UpdateJob u;
    atomic_int bad;
} ConsumeJob;

static void consume_slice(void *ctx, size_t lo, size_t hi)
{
    ConsumeJob *j = ctx;
    float *g = (float *)j->u.g;
    for (size_t b = lo; b < hi; b += 8192) {
        size_t e = hi - b < 8192 ? hi : b + 8192;
        const uint32_t *bits = (const uint32_t *)(const void *)(g + b);
        uint32_t mx = 0;
        for (size_t k = 0; k < e - b; k++) {
            uint32_t x = bits[k] & 0x7f800000u;   /* exponent: all ones = Inf/NaN */
            mx = x > mx ? x : mx;
        }
        if (mx == 0x7f800000u) {
            atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
            continue;
        }
        update_slice(&j->u, b, e);
        memset(g + b, 0, (e - b) * sizeof *g);
    }
}

int vlm_optim_update_consume(const VlmOptim *o, float *p, float *g, float *m,
                             float *v, size_t n)
{
    Step s = step_consts(o);
    ConsumeJob j = {{o, &s, p, m, v, g}, 0};
    vlm_parallel_for(n, 1 << 15, consume_slice, &j);
    return atomic_load(&j.bad) ? -1 : 0;
}

int vlm_optim_consume_span(const VlmOptim *o, float *p, float *g, float *m, float *v, size_t n)
{
    Step s = step_consts(o);
    ConsumeJob j = {{o, &s, p, m, v, g}, 0};
    consume_slice(&j, 0, n);
    return atomic_load(&j.bad) ? -1 : 0;
}

// p, m, v (rows,width), g (count,width): step rows idx[0..count) only
void vlm_optim_update_rows(const VlmOptim *o, float *p, const float *g,
                           float *m, float *v, size_t width,
                           const uint32_t *idx, size_t count)
{
    Step s = step_consts(o);
    for (size_t j = 0; j < count; j++) {
        size_t off = (size_t)idx[j] * width;
        const float *gj = g + j * width;
        if (o->kind == VLM_OPT_ADAM)
            adam_span(o, &s, p + off, gj, m + off, v + off, width);
        else
            sgd_span(o, &s, p + off, gj, m ? m + off : NULL, width);
    }
}
