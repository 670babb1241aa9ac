/* A chunked /features, loaded whole (data.h): training draws rows in a random order, and
 * each row of a chunked, deflated dataset read alone decompresses its whole chunk (64 rows
 * or more for one), about 100 x slower than a mapped contiguous file. Reading the matrix
 * once, chunk band by chunk band, costs one pass over the file. */
#include <stdio.h>
#include <string.h>

#include "data_internal.h"

/* "shuffle+deflate level 4", "no filter" */
static void filter_names(hid_t dcpl, char *buf, size_t len)
{
    int n = H5Pget_nfilters(dcpl);
    size_t w = 0;
    buf[0] = 0;
    for (int i = 0; i < n && w < len; i++) {
        unsigned flags = 0, cd[8] = {0}, conf = 0;
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name, &conf);
        if (id == H5Z_FILTER_DEFLATE && ncd >= 1)
            snprintf(name, sizeof name, "deflate level %u", cd[0]);
        else if (!name[0] || id == H5Z_FILTER_SHUFFLE || id == H5Z_FILTER_FLETCHER32 || id == H5Z_FILTER_SZIP)
            snprintf(name, sizeof name, "%s", id == H5Z_FILTER_SHUFFLE ? "shuffle" : id == H5Z_FILTER_FLETCHER32
                     ? "fletcher32" : id == H5Z_FILTER_SZIP ? "szip" : "filter");
        /* a plugin filter (lzf, blosc) HDF5 cannot run here: say so, reads will fail */
        if (id >= 0 && H5Zfilter_avail(id) <= 0) snprintf(name + strlen(name), sizeof name - strlen(name),
                                                         " (id %d, not available to this HDF5)", (int)id);
        w += (size_t)snprintf(buf + w, len - w, "%s%s", i ? "+" : "", name);
    }
    if (!n) snprintf(buf, len, "no filter");
}

int cz_data_read_failure(hid_t dset, char *buf, size_t len)
{
    int code = CZ_EIO;
    buf[0] = 0;
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0) return code;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        char f[160];
        filter_names(dcpl, f, sizeof f);
        snprintf(buf, len, " (chunked, %s)", f);
        for (int i = 0, n = H5Pget_nfilters(dcpl); i < n; i++) {
            unsigned flags = 0, cd[8], conf = 0;
            size_t ncd = 8;
            H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, &conf);
            if (id >= 0 && H5Zfilter_avail(id) <= 0) code = CZ_EINVAL;
        }
    }
    H5Pclose(dcpl);
    return code;
}

void cz_data_get_layout(const cz_data *ds, cz_data_layout *lay)
{
    memset(lay, 0, sizeof *lay);
    lay->bytes = ds->info.n * ds->info.d * sizeof(float); /* N x d x 8 fits: checked at open */
    hid_t dcpl = H5Dget_create_plist(ds->feat);
    if (dcpl < 0) return;
    hsize_t c[2] = {0, 0};
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 2, c) == 2) {
        lay->chunked = 1;
        lay->chunk[0] = (size_t)c[0];
        lay->chunk[1] = (size_t)c[1];
        filter_names(dcpl, lay->filters, sizeof lay->filters);
    }
    H5Pclose(dcpl);
}

int cz_data_load_features(cz_data *ds, float *x, cz_error *err)
{
    cz_data_layout lay;
    cz_data_get_layout(ds, &lay);
    size_t n = ds->info.n, d = ds->info.d;
    /* a band of whole chunk rows at a time, at least 1 MB: every chunk of the band is
     * decompressed once, through HDF5's chunk cache, and converted as a hyperslab read is */
    size_t band = lay.chunked && lay.chunk[0] ? lay.chunk[0] : 1;
    while (band < n && band * d * sizeof(float) < ((size_t)1 << 20)) band += lay.chunked ? lay.chunk[0] : band;
    hid_t fsp = H5Dget_space(ds->feat);
    int rc = fsp < 0 ? cz_error_set(err, CZ_EIO, "%s: cannot read /features", ds->path) : 0;
    for (size_t r0 = 0; r0 < n && !rc; r0 += band) {
        hsize_t start[2] = {r0, 0}, count[2] = {n - r0 < band ? n - r0 : band, d};
        hid_t msp = H5Screate_simple(2, count, NULL);
        int bad = H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                  H5Dread(ds->feat, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, x + r0 * d) < 0;
        H5Sclose(msp);
        char why[200];
        if (bad)
            rc = cz_error_set(err, cz_data_read_failure(ds->feat, why, sizeof why), "%s: cannot read /features rows %zu..%zu (chunked, %s)", ds->path, r0,
                         r0 + (size_t)count[0] - 1, lay.filters[0] ? lay.filters : "no filter");
    }
    if (fsp >= 0) H5Sclose(fsp);
    return rc ? rc : cz_data_unchanged(ds, err);
}

void cz_data_attach_features(cz_data *ds, const float *x) { ds->mem = x; }
int cz_data_in_memory(const cz_data *ds) { return ds->mem != NULL; }
