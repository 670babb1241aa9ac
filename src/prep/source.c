/* Input sources of the streamed readers: a file read through zlib (gzip recognised by its
 * magic bytes, anything else read as it is) or a caller's buffer (tests, fuzzing). */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cz_src_open(cz_src *s, const char *path, cz_error *err)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return cz_error_set(err, CZ_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return cz_error_set(err, CZ_EIO, "%s: is a folder, not a file", path);
    s->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    errno = 0;
    s->g = gzopen(path, "rb");
    if (!s->g)
        return cz_error_set(err, CZ_EIO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "out of memory");
    if (gzbuffer(s->g, 1u << 18) != 0) { /* fewer, larger reads; must precede the first read */
        gzclose_r(s->g);
        s->g = NULL;
        return cz_error_set(err, CZ_EIO, "%s: cannot set the read buffer", path);
    }
    return 0;
}

void cz_src_open_mem(cz_src *s, const char *name, const void *buf, size_t len)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->mem = buf;
    s->mem_len = len;
    s->size = len;
}

long cz_src_read(cz_src *s, void *buf, size_t cap, cz_error *err)
{
    if (cap > (size_t)INT_MAX) cap = (size_t)INT_MAX;
    if (!s->g) {
        size_t n = s->mem_len - s->mem_pos;
        if (n > cap) n = cap;
        if (n) memcpy(buf, s->mem + s->mem_pos, n);
        s->mem_pos += n;
        s->read += n;
        return (long)n;
    }
    int r = gzread(s->g, buf, (unsigned)cap);
    if (r < 0) {
        int zerr = 0;
        const char *m = gzerror(s->g, &zerr);
        return cz_error_set(err, CZ_EIO, "%s: read failed after %llu bytes: %s", s->name,
                            (unsigned long long)s->read, zerr == Z_ERRNO ? strerror(errno) : m);
    }
    if (r == 0) { /* the end, or a gzip stream cut short (zlib then reports Z_BUF_ERROR) */
        int zerr = 0;
        gzerror(s->g, &zerr);
        if (zerr == Z_BUF_ERROR)
            return cz_error_set(err, CZ_EIO, "%s: the gzip stream is truncated (after %llu bytes)",
                                s->name, (unsigned long long)s->read);
    }
    s->read += (uint64_t)r;
    return r;
}

uint64_t cz_src_offset(const cz_src *s)
{
    if (!s->g) return s->mem_pos;
    z_off_t o = gzoffset(s->g);
    return o < 0 ? 0 : (uint64_t)o;
}

int cz_src_close(cz_src *s, cz_error *err)
{
    int rc = 0;
    if (s->g) {
        int zc = gzclose_r(s->g);
        if (zc != Z_OK)
            rc = cz_error_set(err, CZ_EIO, "%s: %s", s->name,
                              zc == Z_BUF_ERROR ? "the gzip stream is truncated" : "read failed");
    }
    s->g = NULL;
    s->mem = NULL;
    return rc;
}
