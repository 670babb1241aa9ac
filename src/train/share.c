/* Chunked inputs loaded once per node into shared memory (share.h). */
#include "share.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "chainz/budget.h"

/* data.h5 -> data-contiguous.h5, beside it */
static void contiguous_name(const char *path, char *out, size_t len)
{
    size_t n = strlen(path);
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash)) n = (size_t)(dot - path);
    snprintf(out, len, "%.*s-contiguous%s", (int)n, path, dot && (!slash || dot > slash) ? dot : ".h5");
}

int cz_share_features(const cz_dist *d, cz_data *ds, size_t run_bytes, size_t mem_limit, const char *mem_source,
                      cz_share *s, cz_error *err)
{
    cz_data_layout lay;
    cz_data_get_layout(ds, &lay);
    if (!lay.chunked) return 0; /* every rank opened the same file: all return here or none */
    int local = 1, rc = cz_dist_local_size(d, &local, err);
    if (rc) return cz_dist_agree(d, rc, err);
    const char *path = cz_data_path(ds);
    char what[320], need_s[32], avail_s[32], run_s[32], mat_s[32], lim_s[32];
    snprintf(what, sizeof what, "/features is chunked (chunk %zux%zu, %s)", lay.chunk[0], lay.chunk[1],
             lay.filters);
    /* the same file again (--val naming the --data file, by any path): its copy is shared,
     * when every rank sees it so (the load below is collective) */
    struct stat st;
    int same = -1, have_st = stat(path, &st) == 0;
    for (int i = 0; have_st && i < s->n; i++)
        if (s->dev[i] == st.st_dev && s->ino[i] == st.st_ino) same = i;
    int differs = same < 0;
    if ((rc = cz_dist_max_int(d, &differs, 1, err))) return cz_dist_agree(d, rc, err);
    if (!differs) {
        cz_data_attach_features(ds, s->base[same]);
        if (d->rank == 0) {
            printf("chainz: %s: %s: the same file as the one loaded above: its shared copy serves both\n", path,
                   what);
            fflush(stdout);
        }
        return 0;
    }
    /* the budget is per rank; the matrix is held once per node, so compare per node */
    size_t need = 0, avail = 0;
    int over = cz_size_mul(run_bytes, (size_t)local, &need) || cz_size_add(need, s->node_bytes, &need) ||
               cz_size_add(need, lay.bytes, &need);
    cz_size_mul(mem_limit, (size_t)local, &avail);
    if (over || (mem_limit && need > avail)) {
        char fixed[4200];
        contiguous_name(path, fixed, sizeof fixed);
        cz_mem_format(need, need_s, sizeof need_s);
        cz_mem_format(avail, avail_s, sizeof avail_s);
        cz_mem_format(run_bytes, run_s, sizeof run_s);
        cz_mem_format(lay.bytes, mat_s, sizeof mat_s);
        cz_mem_format(mem_limit, lim_s, sizeof lim_s);
        rc = cz_error_set(err, CZ_EINVAL,
                          "%s: %s: rows read in random order would each decompress a whole chunk (about 100x "
                          "slower), and loading the matrix once per node does not fit: it needs %s per node (%d "
                          "rank%s x %s for the run%s + %s for /features) but %s is available (%s per rank from "
                          "%s, x %d); rewrite the file contiguous and train on the copy: h5repack -l "
                          "/features:CONTI %s %s (Debian package hdf5-tools; rows are then mapped from the file)",
                          path, what, need_s, local, local > 1 ? "s" : "", run_s,
                          s->node_bytes ? " + the validation set already loaded" : "", mat_s, avail_s, lim_s,
                          mem_source, local, path, fixed);
        return cz_dist_agree(d, rc, err);
    }
    rc = cz_dist_agree(d, 0, err);
    if (rc) return rc;
    void *base = NULL;
    int leader = 0;
    cz_dist_shared *sh = NULL;
    double t0 = cz_dist_time();
    if ((rc = cz_dist_node_shared_alloc(d, lay.bytes, &sh, &base, &leader, err))) return rc;
    s->sh[s->n] = sh; /* freed by cz_share_free whatever happens next */
    s->base[s->n] = base;
    s->dev[s->n] = have_st ? st.st_dev : 0;
    s->ino[s->n] = have_st ? st.st_ino : 0;
    s->n++;
    /* one reader per node, chunk band after chunk band; the others wait at the barrier */
    int lrc = leader ? cz_data_load_features(ds, base, err) : 0;
    int prc = cz_dist_node_shared_publish(sh, err);
    rc = cz_dist_agree(d, lrc ? lrc : prc, err);
    if (rc) return rc;
    cz_data_attach_features(ds, base);
    s->node_bytes += lay.bytes;
    if (d->rank == 0) {
        cz_mem_format(lay.bytes, mat_s, sizeof mat_s);
        printf("chainz: %s: %s: loaded once per node into shared memory, %s (%d rank%s on this node), %.2f s\n",
               path, what, mat_s, local, local > 1 ? "s" : "", cz_dist_time() - t0);
        fflush(stdout);
    }
    return 0;
}

void cz_share_free(cz_share *s)
{
    for (int i = 0; i < s->n; i++) cz_dist_node_shared_free(s->sh[i]);
    s->n = 0;
}
