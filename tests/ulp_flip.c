/* ulp_flip: the smallest possible change to one stored number, to prove that a bitwise
 * comparison notices it (ctest bitwise_tests_catch_one_ulp, CHAINZ_TEST_ULP_FLIP in
 * tests/lib/bitwise.sh).
 *
 *   ulp_flip FILE DATASET [INDEX]
 *   ulp_flip --offset FILE DATASET     prints the file offset of DATASET's data (contiguous
 *                                      storage only), for a raw "bit rot" test outside HDF5
 *
 * Element INDEX (default 0, row-major) of DATASET becomes the next representable value
 * towards +infinity: one ulp for float32/float64 (nextafter), +1 for an integer. Nothing
 * else in the file changes (the dataset is rewritten in place with its own type), so any
 * checksum attribute is left stale on purpose. Prints "old -> new"; exit 0, or 2 on error. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

static int print_offset(const char *file, const char *name)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    haddr_t a = d >= 0 ? H5Dget_offset(d) : HADDR_UNDEF;
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    if (a == HADDR_UNDEF) {
        fprintf(stderr, "ulp_flip: %s: no contiguous dataset %s\n", file, name);
        return 2;
    }
    printf("%llu\n", (unsigned long long)a);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--offset")) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        return print_offset(argv[2], argv[3]);
    }
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: ulp_flip FILE DATASET [INDEX]\n");
        return 2;
    }
    char *end;
    unsigned long long index = argc == 4 ? strtoull(argv[3], &end, 10) : 0;
    if (argc == 4 && (*end || argv[3][0] == '-')) {
        fprintf(stderr, "ulp_flip: INDEX '%s' is not a count\n", argv[3]);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "ulp_flip: %s: cannot open for writing as HDF5\n", argv[1]);
        return 2;
    }
    int rc = 2;
    hid_t d = H5Dopen2(f, argv[2], H5P_DEFAULT);
    hid_t type = d >= 0 ? H5Dget_type(d) : -1, space = d >= 0 ? H5Dget_space(d) : -1;
    if (d < 0 || type < 0 || space < 0) {
        fprintf(stderr, "ulp_flip: %s: no dataset %s\n", argv[1], argv[2]);
        goto out;
    }
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n <= 0 || index >= (unsigned long long)n) {
        fprintf(stderr, "ulp_flip: %s%s has %lld elements, no index %llu\n", argv[1], argv[2], (long long)n, index);
        goto out;
    }
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    void *buf = malloc((size_t)n * size);
    if (!buf || H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "ulp_flip: %s%s: read failed\n", argv[1], argv[2]);
        free(buf);
        goto out;
    }
    /* the file's types here are little-endian IEEE and two's complement (x86 and HDF5's
     * defaults for chainz's files); a big-endian file is refused rather than mangled */
    if (H5Tget_order(type) != H5T_ORDER_LE && size > 1) {
        fprintf(stderr, "ulp_flip: %s%s: not little-endian\n", argv[1], argv[2]);
        free(buf);
        goto out;
    }
    unsigned char *e = (unsigned char *)buf + index * size;
    if (cls == H5T_FLOAT && size == 4) {
        float v;
        memcpy(&v, e, 4);
        float w = nextafterf(v, INFINITY);
        memcpy(e, &w, 4);
        printf("ulp_flip: %s%s[%llu]: %.9g -> %.9g\n", argv[1], argv[2], index, v, w);
    } else if (cls == H5T_FLOAT && size == 8) {
        double v;
        memcpy(&v, e, 8);
        double w = nextafter(v, INFINITY);
        memcpy(e, &w, 8);
        printf("ulp_flip: %s%s[%llu]: %.17g -> %.17g\n", argv[1], argv[2], index, v, w);
    } else if (cls == H5T_INTEGER) {
        /* +1 on the little-endian bytes, with carry (wraps at the type's maximum) */
        for (size_t k = 0; k < size; k++)
            if (++e[k] != 0) break;
        printf("ulp_flip: %s%s[%llu]: integer of %zu bytes +1\n", argv[1], argv[2], index, size);
    } else {
        fprintf(stderr, "ulp_flip: %s%s: neither a float32/float64 nor an integer dataset\n", argv[1], argv[2]);
        free(buf);
        goto out;
    }
    if (H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "ulp_flip: %s%s: write failed\n", argv[1], argv[2]);
        free(buf);
        goto out;
    }
    free(buf);
    rc = 0;
out:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (d >= 0) H5Dclose(d);
    if (H5Fclose(f) < 0) rc = 2;
    return rc;
}
