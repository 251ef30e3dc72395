/* gemm_onednn.c — the oneDNN backend of the GEMM boundary: a cache of
 * matmul primitives, one per shape (dimensions, strides, transposes, data
 * type, bias, activation, alpha, beta), each created the first time its
 * shape is seen and kept for the process. Operands are the runtime's own
 * memory (memory objects get the pointers at each call, no copies).
 * Primitives are single-threaded: gemm.c runs them in vlm's pool slices,
 * so oneDNN's OpenMP team never starts (each thread that creates or runs
 * one first sets its OpenMP thread count to 1; VLM_ONEDNN_THREADS=omp, an
 * experiment, gives them the pool's size instead). Scratchpads are the
 * caller's, one per slot, so slices may run one primitive concurrently. */
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libgomp, which oneDNN is built on (dnnl_config.h: DNNL_RUNTIME_OMP) */
void omp_set_num_threads(int n);

#define SLOTS 64          /* = the pool's maximum of threads */

typedef struct Key {
    int M, N, K, lda, ldb, ldc, team;
    float alpha, beta;
    unsigned char ta, tb, bf16, bias, act;
} Key;

struct VlmDnnPrim {
    Key key;
    dnnl_primitive_t p;
    char impl[64];
    bool fused_act;
    size_t scratch_bytes;
    dnnl_memory_desc_t md[5];            /* src, weights, dst, bias, scratchpad */
    dnnl_memory_t mem[SLOTS][5];
};

static struct {
    bool ready;
    dnnl_engine_t eng;
    dnnl_stream_t stream[SLOTS];
    VlmDnnPrim **prim;
    int n, cap, last;
    void *scratch[SLOTS];
    size_t scratch_n[SLOTS];
} dnn;

/* OpenMP threads of the primitives created and run from now on: 1 (the
 * pool's slices), or the pool's size under VLM_ONEDNN_THREADS=omp (the
 * measured alternative, docs/performance.md) */
static int team = 1;
static _Thread_local int omp_team;   /* this thread's setting; 0: not set yet */

static void set_team(void)
{
    if (omp_team != team) {
        omp_set_num_threads(team);
        omp_team = team;
    }
}

void vlm_dnn_set_team(int n) { team = n < 1 ? 1 : n; }

static void fatal(const char *what, dnnl_status_t s)
{
    fprintf(stderr, "vlm: oneDNN: %s failed (status %d)\n", what, (int)s);
    exit(1);
}

#define DNN(call, what)                                                      \
    do {                                                                     \
        dnnl_status_t s_ = (call);                                           \
        if (s_ != dnnl_success)                                              \
            fatal(what, s_);                                                 \
    } while (0)

static void init(void)
{
    if (dnn.ready)
        return;
    set_team();
    DNN(dnnl_engine_create(&dnn.eng, dnnl_cpu, 0), "creating the CPU engine");
    dnn.ready = true;
}

/* 2-D descriptor of a (rows, cols) view with row stride ld, or its
 * transpose stored (cols, rows) when t */
static void view_md(dnnl_memory_desc_t *md, int rows, int cols, int ld, bool t,
                    dnnl_data_type_t dt)
{
    dnnl_dims_t d = {rows, cols};
    dnnl_dims_t s = {t ? 1 : ld, t ? ld : 1};
    DNN(dnnl_memory_desc_init_by_strides(md, 2, d, dt, s), "a memory descriptor");
}

static dnnl_alg_kind_t act_alg(VlmAct a)
{
    switch (a) {
    case VLM_ACT_RELU: return dnnl_eltwise_relu;
    case VLM_ACT_TANH: return dnnl_eltwise_tanh;
    case VLM_ACT_SIGMOID: return dnnl_eltwise_logistic;
    case VLM_ACT_ELU: return dnnl_eltwise_elu;
    /* softplus: vlm's stable form runs after the product (gemm.c) */
    case VLM_ACT_SOFTPLUS: case VLM_ACT_IDENTITY: break;
    }
    return dnnl_alg_kind_undef;
}

static VlmDnnPrim *create(const Key *k)
{
    VlmDnnPrim *e = vlm_xcalloc(1, sizeof *e);
    e->key = *k;
    dnnl_data_type_t in = k->bf16 ? dnnl_bf16 : dnnl_f32;
    view_md(&e->md[0], k->M, k->K, k->lda, k->ta, in);
    view_md(&e->md[1], k->K, k->N, k->ldb, k->tb, in);
    view_md(&e->md[2], k->M, k->N, k->ldc, false, dnnl_f32);
    if (k->bias)
        view_md(&e->md[3], 1, k->N, k->N, false, dnnl_f32);
    dnnl_matmul_desc_t d;
    DNN(dnnl_matmul_desc_init(&d, &e->md[0], &e->md[1], k->bias ? &e->md[3] : NULL,
                              &e->md[2]), "describing a matmul");
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    DNN(dnnl_primitive_attr_create(&attr), "creating attributes");
    DNN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
        "setting the scratchpad mode");
    if (k->alpha != 1.0f)
        DNN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha), "scaling the output");
    DNN(dnnl_post_ops_create(&po), "creating post-ops");
    if (k->beta != 0.0f)
        DNN(dnnl_post_ops_append_sum(po, k->beta), "a sum post-op");
    dnnl_alg_kind_t alg = act_alg((VlmAct)k->act);
    if (alg != dnnl_alg_kind_undef) {
        DNN(dnnl_post_ops_append_eltwise(po, 1.0f, alg, alg == dnnl_eltwise_elu ? 1.0f : 0.0f, 0.0f),
            "an activation post-op");
        e->fused_act = true;
    }
    DNN(dnnl_primitive_attr_set_post_ops(attr, po), "setting post-ops");
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, &d, attr, dnn.eng, NULL);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) {
        fprintf(stderr, "vlm: oneDNN has no matmul for %s %dx%d @ %dx%d (status %d)\n",
                k->bf16 ? "bf16" : "fp32", k->M, k->K, k->K, k->N, (int)s);
        exit(1);
    }
    const char *impl = NULL;
    DNN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl), "querying the implementation");
    snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->md[4] = *sp;
    e->scratch_bytes = dnnl_memory_desc_get_size(sp);
    DNN(dnnl_primitive_create(&e->p, pd), "creating a matmul primitive");
    /* the primitive keeps what it needs */
    dnnl_primitive_desc_destroy(pd);
    return e;
}

static VlmDnnPrim *find(const Key *k)
{
    if (dnn.last < dnn.n && !memcmp(&dnn.prim[dnn.last]->key, k, sizeof *k))
        return dnn.prim[dnn.last];
    for (int i = 0; i < dnn.n; i++)
        if (!memcmp(&dnn.prim[i]->key, k, sizeof *k)) {
            dnn.last = i;
            return dnn.prim[i];
        }
    if (dnn.n == dnn.cap) {
        dnn.cap = dnn.cap ? 2 * dnn.cap : 32;
        dnn.prim = vlm_xrealloc(dnn.prim, (size_t)dnn.cap * sizeof *dnn.prim);
    }
    dnn.last = dnn.n;
    return dnn.prim[dnn.n++] = create(k);
}

VlmDnnPrim *vlm_dnn_prepare(const VlmGemm *g, int slot, bool *fused_act)
{
    init();
    set_team();
    Key k;
    memset(&k, 0, sizeof k);   /* padding compared by memcmp */
    k.team = team;
    k.M = g->M; k.N = g->N; k.K = g->K;
    k.lda = g->lda; k.ldb = g->ldb; k.ldc = g->ldc;
    k.alpha = g->alpha; k.beta = g->beta;
    k.ta = g->ta; k.tb = g->tb; k.bf16 = g->bf16;
    k.bias = g->bias != NULL;
    k.act = (unsigned char)g->act;
    VlmDnnPrim *e = find(&k);
    if (!e->mem[slot][0]) {
        for (int i = 0; i < 5; i++)
            if (i != 3 || k.bias)
                DNN(dnnl_memory_create(&e->mem[slot][i], &e->md[i], dnn.eng, DNNL_MEMORY_NONE),
                    "creating a memory object");
    }
    if (!dnn.stream[slot])
        DNN(dnnl_stream_create(&dnn.stream[slot], dnn.eng, dnnl_stream_default_flags),
            "creating a stream");
    if (dnn.scratch_n[slot] < e->scratch_bytes) {
        free(dnn.scratch[slot]);
        /* 64-byte aligned, as oneDNN's own scratchpads */
        size_t n = (e->scratch_bytes + 63) & ~(size_t)63;
        if (posix_memalign(&dnn.scratch[slot], 64, n) != 0) {
            fprintf(stderr, "vlm: out of memory for a oneDNN scratchpad of %zu bytes\n", n);
            exit(1);
        }
        dnn.scratch_n[slot] = n;
    }
    if (fused_act)
        *fused_act = e->fused_act;
    return e;
}

void vlm_dnn_exec(VlmDnnPrim *e, int slot, const VlmGemm *g)
{
    set_team();
    dnnl_memory_t *m = e->mem[slot];
    void *ptr[5] = {(void *)g->A, (void *)g->B, g->C, (void *)g->bias, dnn.scratch[slot]};
    static const int arg[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS,
                               DNNL_ARG_SCRATCHPAD};
    dnnl_exec_arg_t args[5];
    int n = 0;
    for (int i = 0; i < 5; i++) {
        if (!m[i])
            continue;
        DNN(dnnl_memory_set_data_handle_v2(m[i], ptr[i], dnn.stream[slot]), "setting a memory handle");
        args[n].arg = arg[i];
        args[n].memory = m[i];
        n++;
    }
    DNN(dnnl_primitive_execute(e->p, dnn.stream[slot], n, args), "running a matmul");
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

/* bf16 products need avx512_core_bf16 (AVX512-BF16) or AMX: the ISA
 * masks of oneDNN 2.x nest, so both contain avx512_core_bf16's bits. */
bool vlm_dnn_bf16_ok(char *isa, size_t n)
{
    dnnl_cpu_isa_t i = dnnl_get_effective_cpu_isa();
    if (isa)
        snprintf(isa, n, "%s", isa_name(i));
    return ((unsigned)i & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

void vlm_dnn_info(VlmGemmInfo *info)
{
    const dnnl_version_t *v = dnnl_version();
    snprintf(info->onednn_version, sizeof info->onednn_version, "%d.%d.%d", v->major, v->minor,
             v->patch);
    info->bf16_ok = vlm_dnn_bf16_ok(info->onednn_isa, sizeof info->onednn_isa);
    /* the VAE's first layer: 128 rows of 784 @ 784x400 */
    VlmGemm g = {.M = 128, .N = 400, .K = 784, .lda = 784, .ldb = 400, .ldc = 400,
                 .alpha = 1.0f};
    snprintf(info->impl_f32, sizeof info->impl_f32, "%s", vlm_dnn_prepare(&g, 0, NULL)->impl);
    if (info->bf16_ok) {
        g.bf16 = true;
        snprintf(info->impl_bf16, sizeof info->impl_bf16, "%s", vlm_dnn_prepare(&g, 0, NULL)->impl);
    } else {
        snprintf(info->impl_bf16, sizeof info->impl_bf16, "unavailable");
    }
}

void vlm_dnn_release(void)
{
    if (!dnn.ready)
        return;
    for (int i = 0; i < dnn.n; i++) {
        VlmDnnPrim *e = dnn.prim[i];
        for (int s = 0; s < SLOTS; s++)
            for (int j = 0; j < 5; j++)
                if (e->mem[s][j])
                    dnnl_memory_destroy(e->mem[s][j]);
        dnnl_primitive_destroy(e->p);
        free(e);
    }
    free(dnn.prim);
    for (int s = 0; s < SLOTS; s++) {
        if (dnn.stream[s])
            dnnl_stream_destroy(dnn.stream[s]);
        free(dnn.scratch[s]);
    }
    dnnl_engine_destroy(dnn.eng);
    memset(&dnn, 0, sizeof dnn);
}
