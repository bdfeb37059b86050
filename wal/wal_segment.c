/*
 * wal_segment.c — segment files: names, listing, creation, reading.
 *
 * NOTES
 *  A segment file is "<16 upper-case hex digits>.seg".  It comes into being
 *  in four durable steps, so that a crash at any moment leaves either no file
 *  of that name or a complete, zero-filled one:
 *
 *    1. create "<segno>.seg.tmp" and write segment-size zero bytes into it
 *       (real zeros, not fallocate: writing into unwritten extents later would
 *       make every fdatasync journal an extent conversion);
 *    2. fsync the file;
 *    3. rename it to "<segno>.seg";
 *    4. fsync the directory.
 *
 *  A leftover ".seg.tmp" (crash between 1 and 3) is removed at the next
 *  wal_open.  The header is not written here: the writer writes it together
 *  with the segment's first record (see wal.c), so a zero header means "not
 *  used yet".
 *
 *  Failure rule: a failed fsync is a PANIC (the kernel may have dropped the
 *  dirty pages; retrying could report success for data that is gone).  A
 *  failed write while creating (ENOSPC) is returned to the caller: the
 *  background preparer only warns, and the writer, which needs the segment
 *  to make progress, PANICs.
 */
#include "wal_int.h"
#include "failpoint.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_ZERO_CHUNK (256u << 10)

void
wal_seg_name(char out[WAL_SEG_NAME_LEN], uint64_t segno)
{
    snprintf(out, WAL_SEG_NAME_LEN, "%016" PRIX64 ".seg", segno);
}

static bool
wal_parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

static int
wal_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool
wal_seg_list(int dirfd, uint64_t **segnos, size_t *n, char *err, size_t errlen)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;

    if (d == NULL) {
        snprintf(err, errlen, "could not read log directory: %m");
        if (fd >= 0)
            close(fd);
        return false;
    }
    rewinddir(d);
    for (struct dirent *de; (errno = 0, de = readdir(d)) != NULL;) {
        uint64_t segno;
        if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".seg") != 0 ||
            !wal_parse_hex16(de->d_name, &segno))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            v = nv;
        }
        v[cnt++] = segno;
    }
    if (errno != 0) {
        snprintf(err, errlen, "could not read log directory: %m");
        goto fail;
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), wal_cmp_u64);
    *segnos = v;
    *n = cnt;
    return true;
fail:
    closedir(d);
    free(v);
    return false;
}

void
wal_dir_fsync(int dirfd, const char *dir)
{
    if (fsync(dirfd) != 0)
        log_panic("could not fsync directory \"%s\": %m", dir);
}

/* Write zero bytes over [off, end) of fd.  False (errno set) on failure. */
static bool
wal_write_zeros(int fd, uint64_t off, uint64_t end)
{
    static const uint8_t zeros[WAL_ZERO_CHUNK];
    while (off < end) {
        size_t n = end - off < WAL_ZERO_CHUNK ? (size_t)(end - off) : WAL_ZERO_CHUNK;
        ssize_t w = pwrite(fd, zeros, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return false;
        }
        off += (uint64_t)w;
    }
    return true;
}

bool
wal_seg_create(int dirfd, const char *dir, uint64_t segno, uint32_t segsize, char *err,
               size_t errlen)
{
    char name[WAL_SEG_NAME_LEN], tmp[WAL_SEG_NAME_LEN + 8];
    wal_seg_name(name, segno);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);

    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "could not create file \"%s/%s\": %m", dir, tmp);
        return false;
    }
    bool ok = wal_write_zeros(fd, 0, segsize);
    if (ok && FAILPOINT("wal-segment-create") == FP_ERROR) {
        errno = ENOSPC;
        ok = false;
    }
    if (!ok) {
        int saved = errno;
        snprintf(err, errlen, "could not write file \"%s/%s\": %m", dir, tmp);
        close(fd);
        unlinkat(dirfd, tmp, 0);
        errno = saved;
        return false;
    }
    if (fsync(fd) != 0)
        log_panic("could not fsync file \"%s/%s\": %m", dir, tmp);
    close(fd);
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        int saved = errno;
        snprintf(err, errlen, "could not rename file \"%s/%s\" to \"%s\": %m", dir, tmp, name);
        unlinkat(dirfd, tmp, 0);
        errno = saved;
        return false;
    }
    wal_dir_fsync(dirfd, dir);
    return true;
}

bool
wal_seg_zero(int dirfd, const char *dir, uint64_t segno, uint64_t from, uint64_t to, char *err,
             size_t errlen)
{
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, segno);
    int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "could not open file \"%s/%s\": %m", dir, name);
        return false;
    }
    if (!wal_write_zeros(fd, from, to))
        log_panic("could not write to file \"%s/%s\": %m", dir, name);
    if (fsync(fd) != 0)
        log_panic("could not fsync file \"%s/%s\": %m", dir, name);
    close(fd);
    return true;
}

bool
wal_seg_remove_outside(int dirfd, const char *dir, uint64_t lo, uint64_t hi, char *err,
                       size_t errlen)
{
    uint64_t *segs = NULL;
    size_t n = 0;
    char name[WAL_SEG_NAME_LEN];
    if (!wal_seg_list(dirfd, &segs, &n, err, errlen))
        return false;
    bool removed = false;
    for (size_t i = n; i-- > 0;) {
        if (segs[i] >= lo && segs[i] <= hi)
            continue;
        wal_seg_name(name, segs[i]);
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            log_panic("could not remove file \"%s/%s\": %m", dir, name);
        removed = true;
    }
    free(segs);
    if (removed)
        wal_dir_fsync(dirfd, dir);
    return true;
}

bool
wal_seg_read(int dirfd, uint64_t segno, uint8_t *buf, size_t len, size_t *got, bool *missing,
             char *err, size_t errlen)
{
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, segno);
    *got = 0;
    *missing = false;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return true;
        }
        snprintf(err, errlen, "could not open segment file \"%s\": %m", name);
        return false;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t r = pread(fd, buf + off, len - off, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "could not read segment file \"%s\": %m", name);
            close(fd);
            return false;
        }
        if (r == 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    *got = off;
    return true;
}

int
wal_remove_tmp_files(int dirfd, char *err, size_t errlen)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    int removed = 0;

    if (d == NULL) {
        snprintf(err, errlen, "could not read log directory: %m");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        uint64_t segno;
        if (strlen(de->d_name) != 24 || strcmp(de->d_name + 16, ".seg.tmp") != 0 ||
            !wal_parse_hex16(de->d_name, &segno))
            continue;
        if (unlinkat(dirfd, de->d_name, 0) != 0) {
            snprintf(err, errlen, "could not remove file \"%s\": %m", de->d_name);
            closedir(d);
            return -1;
        }
        log_log("removed leftover temporary segment file \"%s\"", de->d_name);
        removed++;
    }
    closedir(d);
    return removed;
}
