/* mpi.c — the communicator layer: joining MPI when a launcher started the
 * process, rank and size, the sums, gathers and broadcasts the drivers use,
 * and the startup check that every rank runs the same model. Which items a
 * rank computes is shard.c's; what is reduced is the drivers' business. */
#include "vlm.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static VlmComm world = {0, 1, false};
static MPI_Request pending[VLM_MPI_MAX_PENDING];
static int n_pending;

const VlmComm *vlm_comm_world(void)
{
    return &world;
}

/* Started by mpirun (OpenMPI sets OMPI_COMM_WORLD_SIZE, PMIx PMIX_RANK;
 * MPICH's hydra PMI_RANK): only then is MPI joined. Run alone, the trainer
 * links MPI but never initialises it, so it behaves exactly as without. */
static bool launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") ||
           getenv("PMI_RANK");
}

int vlm_mpi_init(VlmErr *err)
{
    if (world.active || !launched())
        return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        vlm_err_set(err, "MPI_Init failed");
        return -1;
    }
    world.active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    /* errors abort the job (the default, said explicitly): a rank that
     * lost its peer must not wait forever */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    return 0;
}

int vlm_mpi_finalize(int rc)
{
    if (!world.active)
        return rc;
    if (rc != 0 && world.size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    world.active = false;
    return rc;
}

void vlm_mpi_go_alone(void)
{
    world.size = 1;
    world.rank = 0;
}

/* MPI counts are int: larger arrays go in chunks. */
#define CHUNK ((size_t)1 << 30)

static void sum_chunks(void *x, size_t n, size_t elem, MPI_Datatype type)
{
    if (world.size < 2)
        return;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + i * elem, (int)k, type, MPI_SUM, MPI_COMM_WORLD);
    }
}

void vlm_mpi_sum_d(double *x, size_t n)
{
    sum_chunks(x, n, sizeof *x, MPI_DOUBLE);
}

void vlm_mpi_sum_f(float *x, size_t n)
{
    sum_chunks(x, n, sizeof *x, MPI_FLOAT);
}

void vlm_mpi_isum_f(float *x, size_t n)
{
    if (world.size < 2)
        return;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        if (n_pending == VLM_MPI_MAX_PENDING)
            vlm_mpi_wait_all();
        MPI_Iallreduce(MPI_IN_PLACE, x + i, (int)k, MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD, &pending[n_pending++]);
    }
}

double vlm_mpi_wait_all(void)
{
    if (!n_pending)
        return 0;
    double t0 = vlm_now();
    MPI_Waitall(n_pending, pending, MPI_STATUSES_IGNORE);
    n_pending = 0;
    return vlm_now() - t0;
}

void vlm_mpi_bcast(void *p, size_t bytes, int root)
{
    if (world.size < 2)
        return;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        size_t k = bytes - i < CHUNK ? bytes - i : CHUNK;
        MPI_Bcast((char *)p + i, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
    }
}

/* Point to point (rank r sends its block to 0), so no count is limited to
 * an int's displacement. */
void vlm_mpi_gather_blocks(void *x, size_t elem, const size_t *off,
                           const size_t *cnt)
{
    if (world.size < 2)
        return;
    char *b = x;
    if (world.rank == 0) {
        for (int r = 1; r < world.size; r++) {
            size_t n = cnt[r] * elem;
            for (size_t i = 0; i < n; i += CHUNK) {
                size_t k = n - i < CHUNK ? n - i : CHUNK;
                MPI_Recv(b + off[r] * elem + i, (int)k, MPI_BYTE, r, 7,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            }
        }
    } else {
        int r = world.rank;
        size_t n = cnt[r] * elem;
        for (size_t i = 0; i < n; i += CHUNK) {
            size_t k = n - i < CHUNK ? n - i : CHUNK;
            MPI_Send(b + off[r] * elem + i, (int)k, MPI_BYTE, 0, 7, MPI_COMM_WORLD);
        }
    }
}

void vlm_mpi_gather_items(void *x, size_t item_bytes, size_t n)
{
    if (world.size < 2)
        return;
    size_t *off = vlm_xcalloc(2 * (size_t)world.size, sizeof *off);
    size_t *cnt = off + world.size;
    for (int r = 0; r < world.size; r++) {
        size_t lo, hi;
        vlm_shard_range(n, r, world.size, &lo, &hi);
        off[r] = lo;
        cnt[r] = hi - lo;
    }
    vlm_mpi_gather_blocks(x, item_bytes, off, cnt);
    free(off);
}

uint64_t vlm_mpi_max_u64(uint64_t v)
{
    if (world.size < 2)
        return v;
    unsigned long long mine = v, max = 0;
    MPI_Allreduce(&mine, &max, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    return max;
}

int vlm_mpi_any(int flag)
{
    if (world.size < 2)
        return flag != 0;
    int v = flag != 0, any = 0;
    MPI_Allreduce(&v, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

int vlm_mpi_agree(int rc, VlmErr *err)
{
    if (!vlm_mpi_any(rc))
        return 0;
    if (rc == 0)
        vlm_err_set(err, "another rank stopped (its message names the cause)");
    return -1;
}

int vlm_mpi_check_same(uint64_t v, const char *what, VlmErr *err)
{
    if (world.size < 2)
        return 0;
    unsigned long long *all = vlm_xcalloc((size_t)world.size, sizeof *all);
    unsigned long long mine = v;
    MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1,
                  MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    char ranks[256] = "";
    size_t at = 0;
    int bad = 0;
    for (int r = 1; r < world.size; r++)
        if (all[r] != all[0]) {
            if (at < sizeof ranks - 16)
                at += (size_t)snprintf(ranks + at, sizeof ranks - at,
                                       "%s%d", bad ? ", " : "", r);
            bad++;
        }
    free(all);
    if (!bad)
        return 0;
    vlm_err_set(err, "the ranks run different %s: rank%s %s differ%s from "
                "rank 0 (every rank must run the same trainer with the same "
                "--set values and command)", what, bad > 1 ? "s" : "", ranks,
                bad > 1 ? "" : "s");
    return -1;
}
