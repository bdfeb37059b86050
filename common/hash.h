/*
 * hash.h — FNV-1a, 64 bits, of a NUL-terminated string: the hash of the
 * in-memory tables keyed by text (the coordinator's gids, the participant's
 * statement cache).  Not for anything on disk or on the wire.
 */
#ifndef DTX_HASH_H
#define DTX_HASH_H

#include <stdint.h>

static inline uint64_t
hash_str(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

#endif
