/* allreduce_bench.c — the time of one MPI_Allreduce (sum, in place) of n
 * floats, as the trainer sums a gradient: the median over reps, printed
 * by rank 0 in ms. Built and run by bench/mpi_scaling.sh:
 *   mpicc -O2 bench/allreduce_bench.c -o allreduce_bench
 *   mpirun -np 2 ./allreduce_bench 652824 50 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long n = argc > 1 ? atol(argv[1]) : 652824;
    int reps = argc > 2 ? atoi(argv[2]) : 50;
    if (n < 1 || reps < 1)
        MPI_Abort(MPI_COMM_WORLD, 2);
    float *x = malloc((size_t)n * sizeof *x);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!x || !t)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < n; i++)
        x[i] = 1e-3f;
    for (int r = -3; r < reps; r++) {   /* 3 warm-up rounds */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (r >= 0)
            t[r] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    if (rank == 0)
        printf("allreduce %ld floats: median %.3f ms, min %.3f ms\n", n,
               1e3 * t[reps / 2], 1e3 * t[0]);
    free(x);
    free(t);
    MPI_Finalize();
    return 0;
}
