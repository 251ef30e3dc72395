/* rng.c — Philox4x32-10 counter-based generator and the variate samplers
 * built on it (uniform, normal, Bernoulli, categorical, gamma, beta,
 * Poisson, bounded integers, shuffles). No distribution log-densities here.
 *
 * Word stream: block b of a generator is Philox(counter words
 * {b lo, b hi, stream lo, stream hi}, key {seed lo, seed hi}); the words of
 * block 0, then block 1, ... are read in order. Every sampler consumes whole
 * words from that stream, so (seed, stream, counter, buf, pos) is the state. */
#include "vlm.h"

#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* One Philox4x32-10 block (Random123's philox4x32 with R = 10). */
static inline void philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                          uint32_t k0, uint32_t k1, uint32_t out[4])
{
    for (int round = 0; round < 10; round++) {
        if (round) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* PHILOX_LANES consecutive blocks at once, written as lane loops of fixed
 * length so the compiler can vectorize them (the widening 32x32 multiply
 * maps to pmuludq); same words as PHILOX_LANES calls of philox(). */
#define PHILOX_LANES 8
static void philox_lanes(uint64_t ctr, uint64_t stream, uint64_t seed,
                         uint32_t *out)
{
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES],
        c3[PHILOX_LANES];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int j = 0; j < PHILOX_LANES; j++) {
        c0[j] = (uint32_t)(ctr + (uint64_t)j);
        c1[j] = (uint32_t)((ctr + (uint64_t)j) >> 32);
        c2[j] = (uint32_t)stream;
        c3[j] = (uint32_t)(stream >> 32);
    }
    for (int round = 0; round < 10; round++) {
        for (int j = 0; j < PHILOX_LANES; j++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2[j];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c0[j] = n0;
            c1[j] = (uint32_t)p1;
            c2[j] = n2;
            c3[j] = (uint32_t)p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int j = 0; j < PHILOX_LANES; j++) {
        out[4 * j] = c0[j];
        out[4 * j + 1] = c1[j];
        out[4 * j + 2] = c2[j];
        out[4 * j + 3] = c3[j];
    }
}

static inline void rng_block(const VlmRng *r, uint64_t ctr, uint32_t out[4])
{
    philox((uint32_t)ctr, (uint32_t)(ctr >> 32), (uint32_t)r->stream,
           (uint32_t)(r->stream >> 32), (uint32_t)r->seed,
           (uint32_t)(r->seed >> 32), out);
}

void vlm_rng_init(VlmRng *r, uint64_t seed, uint64_t stream)
{
    memset(r, 0, sizeof *r);
    r->seed = seed;
    r->stream = stream;
    r->counter = 0;
    r->pos = 4;
}

uint64_t vlm_rng_tell(const VlmRng *r)
{
    return r->counter * 4 - (r->pos < 4 ? 4 - r->pos : 0);
}

void vlm_rng_seek(VlmRng *r, uint64_t word)
{
    r->counter = word / 4;
    r->pos = 4;
    if (word % 4) {
        rng_block(r, r->counter++, r->buf);
        r->pos = (uint32_t)(word % 4);
    }
}

uint32_t vlm_rng_u32(VlmRng *r)
{
    if (r->shard)   /* a draw a shard cannot place */
        r->shard->missed = true;
    if (r->pos >= 4) {
        rng_block(r, r->counter++, r->buf);
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

static inline uint64_t rng_u64(VlmRng *r)
{
    uint64_t lo = vlm_rng_u32(r);
    return lo | (uint64_t)vlm_rng_u32(r) << 32;
}

/* n words of the stream, exactly as n calls of vlm_rng_u32 would give them,
 * but whole blocks go straight to w. */
static void rng_words(VlmRng *r, uint32_t *w, size_t n)
{
    size_t i = 0;
    while (i < n && r->pos < 4)
        w[i++] = r->buf[r->pos++];
    size_t first = i;
    for (; i + 4 * PHILOX_LANES <= n; i += 4 * PHILOX_LANES) {
        philox_lanes(r->counter, r->stream, r->seed, w + i);
        r->counter += PHILOX_LANES;
    }
    for (; i + 4 <= n; i += 4)
        rng_block(r, r->counter++, w + i);
    if (i == n && i > first) /* keep buf as vlm_rng_u32 would leave it */
        memcpy(r->buf, w + n - 4, sizeof r->buf);
    if (i < n) {
        rng_block(r, r->counter++, r->buf);
        r->pos = 0;
        while (i < n)
            w[i++] = r->buf[r->pos++];
    }
}

/* 52 random bits, centred in their cell: in [2^-53, 1 - 2^-53]. */
double vlm_rng_uniform(VlmRng *r)
{
    return ((double)(rng_u64(r) >> 12) + 0.5) * 0x1p-52;
}

/* float uniform from one word: 23 bits, centred: in [2^-24, 1 - 2^-24],
 * both representable, so never 0 or 1 after rounding. */
static inline float u32_to_unit_float(uint32_t w)
{
    return ((float)(w >> 9) + 0.5f) * 0x1p-23f;
}

#define FILL_CHUNK 512

/* A shard's slice of a bulk draw (VlmRngShard): uniforms take one word
 * each; normals take a word pair per two values (value k: the pair at
 * words 2 floor(k/2), its cosine for even k, its sine for odd k), and a
 * draw of V values V + (V odd) words. The values are those one process
 * draws for the same items, bit for bit. */
static void shard_fill(VlmRng *r, float *out, size_t n, bool normal)
{
    VlmRngShard *s = r->shard;
    r->shard = NULL;
    if (s->b == 0 || n % s->b) {   /* not per item: cannot be placed */
        s->missed = true;
        if (normal)
            vlm_rng_normal_fill(r, out, n);
        else
            vlm_rng_uniform_fill(r, out, n);
        r->shard = s;
        return;
    }
    uint64_t per = n / s->b, a = s->lo * per, V = s->B * per;
    uint64_t w0 = vlm_rng_tell(r);
    if (normal) {
        vlm_rng_seek(r, w0 + (a & ~(uint64_t)1));
        if ((a & 1) && n) {   /* the sine of the pair that starts before */
            float t[2];
            vlm_rng_normal_fill(r, t, 2);
            out[0] = t[1];
            out++;
            n--;
        }
        vlm_rng_normal_fill(r, out, n);
        vlm_rng_seek(r, w0 + V + (V & 1));
    } else {
        vlm_rng_seek(r, w0 + a);
        vlm_rng_uniform_fill(r, out, n);
        vlm_rng_seek(r, w0 + V);
    }
    r->shard = s;
}

void vlm_rng_uniform_fill(VlmRng *r, float *out, size_t n)
{
    if (r->shard) {
        shard_fill(r, out, n, false);
        return;
    }
    uint32_t w[FILL_CHUNK];
    while (n) {
        size_t m = n < FILL_CHUNK ? n : FILL_CHUNK;
        rng_words(r, w, m);
        for (size_t i = 0; i < m; i++)
            out[i] = u32_to_unit_float(w[i]);
        out += m;
        n -= m;
    }
}

/* Box-Muller on one uniform pair, double precision: returns r cos(theta). */
double vlm_rng_normal(VlmRng *r)
{
    double u1 = vlm_rng_uniform(r);
    double u2 = vlm_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Box-Muller in float over chunks: words (2j, 2j+1) give outputs 2j and
 * 2j+1 (r cos, r sin). An odd tail uses one more pair and drops the sine.
 * The radius uses a 24-bit uniform in (0, 1), so |z| <= 5.9. */
void vlm_rng_normal_fill(VlmRng *r, float *out, size_t n)
{
    if (r->shard) {
        shard_fill(r, out, n, true);
        return;
    }
    uint32_t w[FILL_CHUNK];
    const float two_pi = 6.28318530717958647692f;
    while (n) {
        size_t m = n < FILL_CHUNK ? n : FILL_CHUNK;
        size_t pairs = (m + 1) / 2;
        rng_words(r, w, 2 * pairs);
        for (size_t j = 0; j < pairs; j++) {
            float u1 = ((float)(w[2 * j] >> 8) + 0.5f) * 0x1p-24f;
            float u2 = (float)(w[2 * j + 1] >> 8) * 0x1p-24f;
            float rad = sqrtf(-2.0f * logf(u1));
            float s, c;
            sincosf(two_pi * u2, &s, &c);
            out[2 * j] = rad * c;
            if (2 * j + 1 < m)
                out[2 * j + 1] = rad * s;
        }
        out += m;
        n -= m;
    }
}

int vlm_rng_bernoulli(VlmRng *r, double p)
{
    return vlm_rng_uniform(r) < p;
}

/* Inversion by linear scan. Rounding may leave the cumulative sum short of
 * u; then the last category with positive probability is returned. */
int vlm_rng_categorical(VlmRng *r, const float *probs, int k)
{
    double u = vlm_rng_uniform(r), c = 0.0;
    int last = 0;
    for (int i = 0; i < k; i++) {
        if (probs[i] > 0) {
            c += probs[i];
            last = i;
            if (u < c)
                return i;
        }
    }
    return last;
}

/* Marsaglia-Tsang for shape >= 1: log of a Gamma(shape, 1) draw. */
static double gamma_mt(VlmRng *r, double shape)
{
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = vlm_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = vlm_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

/* log of a Gamma(shape, 1) draw. shape < 1 uses the boost
 * G(a) = G(a + 1) U^(1/a), kept in logs so tiny shapes do not underflow. */
static double log_gamma_draw(VlmRng *r, double shape)
{
    if (shape >= 1.0)
        return log(gamma_mt(r, shape));
    double g = gamma_mt(r, shape + 1.0);
    return log(g) + log(vlm_rng_uniform(r)) / shape;
}

double vlm_rng_gamma(VlmRng *r, double shape)
{
    if (!(shape > 0))
        return NAN;
    if (shape >= 1.0)
        return gamma_mt(r, shape);
    return exp(log_gamma_draw(r, shape));
}

/* X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b), computed as
 * 1 / (1 + exp(log Y - log X)) so small shapes keep their precision. */
double vlm_rng_beta(VlmRng *r, double a, double b)
{
    if (!(a > 0) || !(b > 0))
        return NAN;
    double lx = log_gamma_draw(r, a), ly = log_gamma_draw(r, b);
    return 1.0 / (1.0 + exp(ly - lx));
}

/* Poisson: sequential inversion for rate < 10; Hormann's PTRS (transformed
 * rejection with squeeze, 1993) above; a rounded normal beyond 1e15 where
 * the draw no longer fits the integer grid. rate <= 0 or NaN gives 0. */
long vlm_rng_poisson(VlmRng *r, double rate)
{
    if (!(rate > 0))
        return 0;
    if (rate < 10.0) {
        double u = vlm_rng_uniform(r), p = exp(-rate), c = p;
        long k = 0;
        while (u > c && k < 1000) {
            k++;
            p *= rate / (double)k;
            c += p;
        }
        return k;
    }
    if (rate > 1e15) {
        double x = rate + sqrt(rate) * vlm_rng_normal(r);
        return x >= 9.2e18 ? (long)9.2e18 : (long)(x + 0.5);
    }
    double slam = sqrt(rate), loglam = log(rate);
    double b = 0.931 + 2.53 * slam;
    double a = -0.059 + 0.02483 * b;
    double invalpha = 1.1239 + 1.1328 / (b - 3.4);
    double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        double u = vlm_rng_uniform(r) - 0.5;
        double v = vlm_rng_uniform(r);
        double us = 0.5 - fabs(u);
        double k = floor((2.0 * a / us + b) * u + rate + 0.43);
        if (us >= 0.07 && v <= vr)
            return (long)k;
        if (k < 0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + log(invalpha) - log(a / (us * us) + b) <=
            -rate + k * loglam - lgamma(k + 1.0))
            return (long)k;
    }
}

/* Unbiased: reject the first (2^w mod n) values of the w-bit word, so the
 * rest splits into equal residue classes. 32-bit words when n fits. */
uint64_t vlm_rng_below(VlmRng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    if (n <= UINT32_MAX) {
        uint32_t m = (uint32_t)n, thresh = (uint32_t)(-m) % m;
        for (;;) {
            uint32_t x = vlm_rng_u32(r);
            if (x >= thresh)
                return x % m;
        }
    }
    uint64_t thresh = (-n) % n;
    for (;;) {
        uint64_t x = rng_u64(r);
        if (x >= thresh)
            return x % n;
    }
}

/* Fisher-Yates over an existing array (the caller fills it). */
void vlm_rng_shuffle(VlmRng *r, uint32_t *perm, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)vlm_rng_below(r, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
