#include "chainz/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
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

/* 128-bit integer addition modulo 2^128: associative and commutative, so any reduction
 * tree gives the same bits. memcpy because MPI's buffers need not be 16-byte aligned. */
static void add_fixed(void *in, void *inout, int *len, MPI_Datatype *dt)
{
    (void)dt;
    unsigned char *a = in, *b = inout;
    for (int i = 0; i < *len; i++) {
        cz_fixed x, y;
        memcpy(&x, a + 16 * (size_t)i, 16);
        memcpy(&y, b + 16 * (size_t)i, 16);
        y = cz_fixed_add(x, y);
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
    /* prefix the rank once (a message can pass through several agreements) */
    if (d->size > 1 && strncmp(m.msg, "rank ", 5) != 0)
        return cz_error_set(err, m.code, "rank %d: %s", out.rank, m.msg);
    return cz_error_set(err, m.code, "%s", m.msg);
}

/* In-place allreduce of n elements in blocks: MPI counts are int, buffers need not be. */
static int allreduce(void *buf, size_t n, MPI_Datatype type, size_t elem, MPI_Op op, cz_error *err)
{
    const size_t block = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += block) {
        size_t k = n - off < block ? n - off : block;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)k, type, op, MPI_COMM_WORLD), err);
    }
    return 0;
}

/* an MPI_Request in the opaque cz_dist_req (an int or a pointer, whatever the MPI) */
_Static_assert(sizeof(MPI_Request) <= sizeof(cz_dist_req), "MPI_Request does not fit cz_dist_req");

static void req_store(cz_dist_req *req, MPI_Request r)
{
    memset(req, 0, sizeof *req);
    memcpy(req, &r, sizeof r);
}

int cz_dist_isum_u64(const cz_dist *d, uint64_t *x, size_t n, cz_dist_req *req, cz_error *err)
{
    (void)d;
    MPI_Request r;
    if (n > (size_t)INT_MAX) return cz_error_set(err, CZ_EINVAL, "a bucket of %zu values is too large for MPI", n);
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD, &r), err);
    req_store(req, r);
    return 0;
}

int cz_dist_iexchange_float(const cz_dist *d, const float *send, const int *scounts, const int *sdispls, float *recv,
                            const int *rcounts, const int *rdispls, cz_dist_req *req, cz_error *err)
{
    (void)d;
    MPI_Request r;
    MPI_CHECK(MPI_Ialltoallv(send, scounts, sdispls, MPI_FLOAT, recv, rcounts, rdispls, MPI_FLOAT, MPI_COMM_WORLD,
                             &r), err);
    req_store(req, r);
    return 0;
}

int cz_dist_igather_all_float(const cz_dist *d, float *x, const int *counts, const int *displs, cz_dist_req *req,
                              cz_error *err)
{
    (void)d;
    MPI_Request r;
    MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, counts, displs, MPI_FLOAT, MPI_COMM_WORLD, &r),
              err);
    req_store(req, r);
    return 0;
}

int cz_dist_gather_all_double(const cz_dist *d, const double *send, int n, double *recv, const int *counts,
                              const int *displs, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Allgatherv(send, n, MPI_DOUBLE, recv, counts, displs, MPI_DOUBLE, MPI_COMM_WORLD), err);
    return 0;
}

void cz_dist_req_clear(cz_dist_req *reqs, size_t n)
{
    MPI_Request r = MPI_REQUEST_NULL;
    for (size_t i = 0; i < n; i++) {
        memset(&reqs[i], 0, sizeof reqs[i]);
        memcpy(&reqs[i], &r, sizeof r);
    }
}

void cz_dist_progress(cz_dist_req *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        MPI_Request r;
        int done = 0;
        memcpy(&r, &reqs[i], sizeof r);
        if (r == MPI_REQUEST_NULL) continue;
        MPI_Test(&r, &done, MPI_STATUS_IGNORE);
        memcpy(&reqs[i], &r, sizeof r);
    }
}

int cz_dist_wait(cz_dist_req *reqs, size_t n, cz_error *err)
{
    for (size_t i = 0; i < n; i++) {
        MPI_Request r;
        memcpy(&r, &reqs[i], sizeof r);
        MPI_CHECK(MPI_Wait(&r, MPI_STATUS_IGNORE), err);
        memcpy(&reqs[i], &r, sizeof r);
    }
    return 0;
}

int cz_dist_sum_fixed(const cz_dist *d, cz_fixed_acc *a, cz_error *err)
{
    (void)d;
    int rc = allreduce(a->v, a->n, fixed_type, sizeof(cz_fixed), fixed_sum, err);
    if (rc) return rc;
    long bad = a->bad;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD), err);
    a->bad = bad;
    return 0;
}

int cz_dist_sum_float(const cz_dist *d, float *x, size_t n, cz_error *err)
{
    (void)d;
    return allreduce(x, n, MPI_FLOAT, sizeof *x, MPI_SUM, err);
}

int cz_dist_sum_double(const cz_dist *d, double *x, size_t n, cz_error *err)
{
    (void)d;
    return allreduce(x, n, MPI_DOUBLE, sizeof *x, MPI_SUM, err);
}

int cz_dist_sum_u64(const cz_dist *d, uint64_t *x, size_t n, cz_error *err)
{
    (void)d;
    return allreduce(x, n, MPI_UINT64_T, sizeof *x, MPI_SUM, err);
}

int cz_dist_max_double(const cz_dist *d, double *x, size_t n, cz_error *err)
{
    (void)d;
    return allreduce(x, n, MPI_DOUBLE, sizeof *x, MPI_MAX, err);
}

int cz_dist_max_int(const cz_dist *d, int *x, size_t n, cz_error *err)
{
    (void)d;
    return allreduce(x, n, MPI_INT, sizeof *x, MPI_MAX, err);
}

int cz_dist_bcast(const cz_dist *d, void *buf, size_t bytes, int root, cz_error *err)
{
    (void)d;
    MPI_CHECK(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD), err);
    return 0;
}

int cz_dist_gather(const cz_dist *d, const void *send, size_t n, size_t elem_bytes, void *recv, size_t cap,
                   size_t *total, cz_error *err)
{
    /* everyone learns every count first, so that all ranks refuse a bad size together */
    uint64_t mine = n, *counts = malloc((size_t)d->size * sizeof *counts);
    int *cnt = malloc((size_t)d->size * sizeof *cnt), *displ = malloc((size_t)d->size * sizeof *displ);
    int ok = counts && cnt && displ, all_ok = 0;
    MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), err);
    if (!all_ok) {
        free(counts), free(cnt), free(displ);
        return cz_error_set(err, CZ_ENOMEM, "out of memory for the gather");
    }
    int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, counts, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    uint64_t sum = 0;
    int too_big = 0;
    for (int r = 0; rc == MPI_SUCCESS && r < d->size; r++) {
        too_big |= counts[r] > INT_MAX || sum > INT_MAX;
        cnt[r] = too_big ? 0 : (int)counts[r];
        displ[r] = too_big ? 0 : (int)sum;
        sum += counts[r];
    }
    too_big |= sum > cap || sum > INT_MAX || elem_bytes == 0 || elem_bytes > INT_MAX;
    MPI_Datatype rec = MPI_DATATYPE_NULL;
    if (rc == MPI_SUCCESS && !too_big) rc = MPI_Type_contiguous((int)elem_bytes, MPI_BYTE, &rec);
    if (rc == MPI_SUCCESS && !too_big) rc = MPI_Type_commit(&rec);
    if (rc == MPI_SUCCESS && !too_big)
        rc = MPI_Gatherv(send, (int)n, rec, recv, cnt, displ, rec, 0, MPI_COMM_WORLD);
    if (rec != MPI_DATATYPE_NULL) MPI_Type_free(&rec);
    free(counts), free(cnt), free(displ);
    *total = (size_t)sum;
    if (rc != MPI_SUCCESS) {
        char s[MPI_MAX_ERROR_STRING];
        int l = 0;
        MPI_Error_string(rc, s, &l);
        return cz_error_set(err, CZ_ERUNTIME, "%s:%d: gathering to rank 0 failed: %s", __FILE__, __LINE__, s);
    }
    if (too_big)
        return cz_error_set(err, CZ_EINVAL, "cannot gather %llu records of %zu bytes to rank 0 (room for %zu)",
                            (unsigned long long)sum, elem_bytes, cap);
    return 0;
}

int cz_dist_local_size(const cz_dist *d, int *local, cz_error *err)
{
    (void)d;
    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), err);
    int rc = MPI_Comm_size(node, local);
    MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS) return cz_error_set(err, CZ_ERUNTIME, "cannot count the ranks of this node");
    return 0;
}

int cz_dist_check_replicas(const cz_dist *d, uint64_t checksum, cz_error *err)
{
    /* every rank learns whether any allocation failed before the collective that needs
     * the buffer: a rank without it must not leave the others blocked in MPI_Allgather */
    uint64_t *all = malloc((size_t)d->size * sizeof *all);
    int rc = cz_dist_agree(d, all ? 0 : cz_error_set(err, CZ_ENOMEM, "out of memory for the replica check"), err);
    if (rc) {
        free(all);
        return rc;
    }
    rc = MPI_Allgather(&checksum, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        free(all);
        return cz_error_set(err, CZ_ERUNTIME, "replica check: MPI_Allgather failed");
    }
    /* every rank builds the same message: the ranks that differ from rank 0 */
    char list[512] = "";
    size_t w = 0;
    int n_bad = 0;
    for (int r = 1; r < d->size; r++)
        if (all[r] != all[0]) {
            n_bad++;
            if (w < sizeof list - 32)
                w += (size_t)snprintf(list + w, sizeof list - w, "%s%d (%016llx)", n_bad > 1 ? ", " : "",
                                      r, (unsigned long long)all[r]);
        }
    uint64_t ref = all[0];
    free(all);
    if (!n_bad) return 0;
    return cz_error_set(err, CZ_ERUNTIME,
                        "parameter replicas drifted apart: rank%s %s differ%s from rank 0 (%016llx); "
                        "the ranks no longer train the same model", n_bad > 1 ? "s" : "", list,
                        n_bad > 1 ? "" : "s", (unsigned long long)ref);
}

struct cz_dist_shared {
    MPI_Comm node;
    MPI_Win win;
    int locked;
};

int cz_dist_node_shared_alloc(const cz_dist *d, size_t bytes, cz_dist_shared **sh, void **base, int *leader,
                              cz_error *err)
{
    *sh = NULL;
    *base = NULL;
    *leader = 0;
    cz_dist_shared *s = calloc(1, sizeof *s);
    int rc = cz_dist_agree(d, s ? 0 : cz_error_set(err, CZ_ENOMEM, "out of memory"), err);
    if (rc) {
        free(s);
        return rc;
    }
    s->node = MPI_COMM_NULL;
    s->win = MPI_WIN_NULL;
    int lrank = 0, ok = 1;
    char why[MPI_MAX_ERROR_STRING] = "";
    int mrc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &s->node);
    if (mrc == MPI_SUCCESS) {
        /* an allocation the node cannot hold must come back as an error, not abort the job */
        MPI_Comm_set_errhandler(s->node, MPI_ERRORS_RETURN);
        MPI_Comm_rank(s->node, &lrank);
        void *mine = NULL;
        /* only the node's first rank allocates: the others reach its bytes by MPI_Win_shared_query */
        mrc = MPI_Win_allocate_shared(lrank == 0 ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL, s->node, &mine, &s->win);
    }
    if (mrc == MPI_SUCCESS) {
        MPI_Win_set_errhandler(s->win, MPI_ERRORS_RETURN);
        MPI_Aint size = 0;
        int unit = 0;
        mrc = MPI_Win_shared_query(s->win, 0, &size, &unit, base);
        if (mrc == MPI_SUCCESS && (size_t)size < bytes) ok = 0;
    }
    if (mrc != MPI_SUCCESS) {
        int l = 0;
        MPI_Error_string(mrc, why, &l);
        ok = 0;
    }
    rc = cz_dist_agree(d, ok ? 0 : cz_error_set(err, CZ_ENOMEM, "cannot allocate %zu bytes of node shared memory "
                                                "(MPI_Win_allocate_shared: %s)", bytes, why[0] ? why : "short window"),
                       err);
    if (rc) {
        cz_dist_node_shared_free(s);
        *base = NULL;
        return rc;
    }
    /* passive-target epoch for the window's lifetime: MPI_Win_sync then orders the leader's
     * stores before the barrier and the others' loads after it */
    s->locked = MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win) == MPI_SUCCESS;
    rc = cz_dist_agree(d, s->locked ? 0 : cz_error_set(err, CZ_ERUNTIME, "MPI_Win_lock_all on the node shared "
                                                       "window failed"), err);
    if (rc) {
        cz_dist_node_shared_free(s);
        *base = NULL;
        return rc;
    }
    *leader = lrank == 0;
    *sh = s;
    return 0;
}

int cz_dist_node_shared_publish(cz_dist_shared *sh, cz_error *err)
{
    MPI_CHECK(MPI_Win_sync(sh->win), err);
    MPI_CHECK(MPI_Barrier(sh->node), err);
    MPI_CHECK(MPI_Win_sync(sh->win), err);
    return 0;
}

void cz_dist_node_shared_free(cz_dist_shared *sh)
{
    if (!sh) return;
    if (sh->win != MPI_WIN_NULL) {
        if (sh->locked) MPI_Win_unlock_all(sh->win);
        MPI_Win_free(&sh->win);
    }
    if (sh->node != MPI_COMM_NULL) MPI_Comm_free(&sh->node);
    free(sh);
}
