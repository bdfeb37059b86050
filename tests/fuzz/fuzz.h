/*
 * fuzz.h — what the libFuzzer targets of tests/fuzz/ share (header only:
 * every fuzz_<name>.c is its own program).
 *
 * A target is a function LLVMFuzzerTestOneInput(data, size) that hands the
 * bytes to one of dtx's decoders the way the daemon or the library gets
 * them from outside, and checks what must hold whatever the bytes are.  A
 * failed check aborts (FUZZ_CHECK), and so does every AddressSanitizer or
 * UndefinedBehaviorSanitizer report: libFuzzer then keeps the input as a
 * crash.  docs/testing.md, "Fuzzing", lists the targets.
 *
 * Inputs that carry several pieces (segment files, chunks, configuration
 * and environment) separate them with FUZZ_SPLIT, which every dictionary
 * lists, so that mutations keep the pieces apart.
 *
 * The self-test: with DTX_FUZZ_SELFTEST=1 in the environment, an input that
 * starts with FUZZ_SELFTEST_INPUT aborts, so that tests/integration/fuzz.sh
 * can prove that a crash fails it.
 */
#ifndef DTX_FUZZ_H
#define DTX_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_SPLIT          "#dtxsep#"
#define FUZZ_SPLIT_LEN      (sizeof(FUZZ_SPLIT) - 1)
#define FUZZ_SELFTEST_INPUT "DTX-FUZZ-SELFTEST"

#define FUZZ_UNUSED static __attribute__((unused))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A fresh directory for a target's files, dtx-fuzz-TAG.XXXXXX under
 * /dev/shm (TMPDIR, or /tmp, when /dev/shm cannot be written), into out. */
FUZZ_UNUSED void
fuzz_tmpdir(char *out, size_t outlen, const char *tag)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(out, outlen, "%s/dtx-fuzz-%s.XXXXXX", tmp ? tmp : "/tmp", tag);
    FUZZ_CHECK(mkdtemp(out) != NULL);
}

/* Abort on the self-test input when DTX_FUZZ_SELFTEST=1. */
FUZZ_UNUSED void
fuzz_selftest(const uint8_t *data, size_t size)
{
    static int armed = -1;
    if (armed < 0) {
        const char *v = getenv("DTX_FUZZ_SELFTEST");
        armed = v != NULL && strcmp(v, "1") == 0;
    }
    if (armed && size >= strlen(FUZZ_SELFTEST_INPUT) &&
        memcmp(data, FUZZ_SELFTEST_INPUT, strlen(FUZZ_SELFTEST_INPUT)) == 0) {
        fprintf(stderr, "fuzz self-test: aborting on purpose\n");
        abort();
    }
}

/* One piece of an input cut at FUZZ_SPLIT. */
typedef struct fuzz_piece {
    const uint8_t *p;
    size_t len;
} fuzz_piece;

/* Is FUZZ_SPLIT at p?  (A loop, not memcmp: libFuzzer traces every memcmp,
 * which would cost more than the target itself.) */
FUZZ_UNUSED bool
fuzz_split_at(const uint8_t *p)
{
    for (size_t k = 0; k < FUZZ_SPLIT_LEN; k++)
        if (p[k] != (uint8_t)FUZZ_SPLIT[k])
            return false;
    return true;
}

/* Cut data at every FUZZ_SPLIT into at most max pieces (the last one takes
 * the rest); returns the number of pieces (at least 1). */
FUZZ_UNUSED size_t
fuzz_split(const uint8_t *data, size_t size, fuzz_piece *out, size_t max)
{
    size_t n = 0, start = 0, i = 0;
    while (n + 1 < max && i + FUZZ_SPLIT_LEN <= size) {
        const uint8_t *q = memchr(data + i, FUZZ_SPLIT[0], size - i);
        if (q == NULL)
            break;
        i = (size_t)(q - data);
        if (i + FUZZ_SPLIT_LEN > size)
            break;
        if (!fuzz_split_at(data + i)) {
            i++;
            continue;
        }
        out[n].p = data + start;
        out[n].len = i - start;
        n++;
        i += FUZZ_SPLIT_LEN;
        start = i;
    }
    out[n].p = data + start;
    out[n].len = size - start;
    return n + 1;
}

/* A NUL-terminated copy of p[0..len) (a NUL inside ends the string early).
 * Caller frees. */
FUZZ_UNUSED char *
fuzz_strndup(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    FUZZ_CHECK(s != NULL);
    if (len)
        memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* A copy of p[0..len) in an allocation of exactly len bytes (one byte for
 * an empty one), so that AddressSanitizer sees a read past its end.  Caller
 * frees. */
FUZZ_UNUSED uint8_t *
fuzz_memdup(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    FUZZ_CHECK(c != NULL);
    if (len)
        memcpy(c, p, len);
    return c;
}

#endif
