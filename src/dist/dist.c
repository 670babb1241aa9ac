#include "chainz/dist.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>

/* Every MPI call is checked; the failing call and MPI's own message go into err. */
#define MPI_CHECK(call, err)                                                          \
    do {                                                                              \
        int rc_ = (call);                                                             \
        if (rc_ != MPI_SUCCESS) {                                                     \
            char s_[MPI_MAX_ERROR_STRING];                                            \
            int l_ = 0;                                                               \
            MPI_Error_string(rc_, s_, &l_);                                           \
            return cz_error_set(err, CZ_ERUNTIME, "%s:%d: %s failed: %s", __FILE__,  \
                                __LINE__, #call, s_);                                 \
        }                                                                             \
    } while (0)

static MPI_Datatype fixed_type = MPI_DATATYPE_NULL;
static MPI_Op fixed_sum = MPI_OP_NULL;

/* 128-bit integer addition: associative and commutative, so any reduction tree gives
 * the same bits. memcpy because MPI's buffers need not be 16-byte aligned. */
static void add_fixed(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    (void)dt;
    unsigned char *a = in, *b = inout;
    for (int i = 0; i < *len; i++) {
        cz_fixed x, y;
        memcpy(&x, a + 16 * (size_t)i, 16);
        memcpy(&y, b + 16 * (size_t)i, 16);
        y += x;
        memcpy(b + 16 * (size_t)i, &y, 16);
    }
}

int cz_dist_init(int *argc, char ***argv, cz_dist *d, cz_error *err)
{
    MPI_CHECK(MPI_Init(argc, argv), err);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank), err);
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &d->size), err);
    MPI_CHECK(MPI_Type_contiguous(16, MPI_BYTE, &fixed_type), err);
    MPI_CHECK(MPI_Type_commit(&fixed_type), err);
    MPI_CHECK(MPI_Op_create(add_fixed, 1, &fixed_sum), err);
    return 0;
}

void cz_dist_finalize(void)
{
    if (fixed_sum != MPI_OP_NULL) MPI_Op_free(&fixed_sum);
    if (fixed_type != MPI_DATATYPE_NULL) MPI_Type_free(&fixed_type);
    MPI_Finalize();
}

void cz_dist_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

double cz_dist_time(void) { return MPI_Wtime(); }

int cz_dist_agree(const cz_dist *d, int status, cz_error *err)
{
    /* (failed, rank) pairs: MINLOC picks the lowest failing rank */
    struct {
        int failed, rank;
    } in = {status != 0 ? 0 : 1, d->rank}, out;
    MPI_CHECK(MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD), err);
    if (out.failed) return 0;
    struct {
        int code;
        char msg[sizeof err->msg];
    } m;
    memset(&m, 0, sizeof m);
    if (d->rank == out.rank) {
        m.code = status;
        snprintf(m.msg, sizeof m.msg, "%s", err->msg);
    }
    MPI_CHECK(MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, out.rank, MPI_COMM_WORLD), err);
    if (d->size > 1)
        return cz_error_set(err, m.code, "rank %d: %s", out.rank, m.msg);
    return cz_error_set(err, m.code, "%s", m.msg);
}

int cz_dist_sum_fixed(const cz_dist *d, cz_fixed_acc *a, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, a->v, (int)a->n, fixed_type, fixed_sum, MPI_COMM_WORLD), err);
    long bad = a->bad;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD), err);
    a->bad = bad;
    return 0;
}

int cz_dist_sum_float(const cz_dist *d, float *x, size_t n, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_sum_double(const cz_dist *d, double *x, size_t n, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_sum_u64(const cz_dist *d, uint64_t *x, size_t n, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_max_double(const cz_dist *d, double *x, size_t n, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_max_int(const cz_dist *d, int *x, size_t n, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_INT, MPI_MAX, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_bcast(const cz_dist *d, void *buf, size_t bytes, int root, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_check_replicas(const cz_dist *d, uint64_t checksum, cz_error *err)
{
    uint64_t lo = checksum, hi = checksum;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD), err);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), err);
    if (lo == hi) return 0;
    return cz_error_set(err, CZ_ERUNTIME,
                        "parameter replicas drifted apart (rank %d checksum %016llx, range "
                        "%016llx..%016llx): ranks no longer train the same model",
                        d->rank, (unsigned long long)checksum, (unsigned long long)lo,
                        (unsigned long long)hi);
}
