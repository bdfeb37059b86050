/*
 * crc32c.c — CRC-32C for the write-ahead log.
 *
 * NOTES
 *  Two implementations compute the same function:
 *
 *  - crc32c_extend_sw(): table-driven "slicing-by-8" (Intel's algorithm, as
 *    in PostgreSQL's pg_crc32c_sb8.c): eight 256-entry tables let the loop
 *    consume eight input bytes per iteration with eight independent lookups.
 *    The tables are built once, on first use, under pthread_once.
 *
 *  - crc32c_extend_hw(): the SSE4.2 crc32 instruction, eight bytes at a time
 *    (_mm_crc32_u64), compiled with __attribute__((target("sse4.2"))) so the
 *    rest of the program needs no special flags.
 *
 *  crc32c_extend() picks one on first use with __builtin_cpu_supports(); the
 *  choice is kept in a function pointer.  The pointer starts at a resolver, so
 *  the first call from any thread resolves it; a race only makes two threads
 *  store the same value.
 *
 *  Both work on the inverted register internally (~crc in, ~crc out), which
 *  gives the zlib-style chaining described in crc32c.h.  Byte order: the
 *  algorithm is defined on a byte stream; the 8-byte loads below assume a
 *  little-endian host (x86-64, aarch64), which the WAL format also assumes
 *  for speed only — the format itself is defined in explicit little-endian.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#endif

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void
crc32c_build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc32c_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc32c_table[0][c & 0xff] ^ (c >> 8);
            crc32c_table[t][i] = c;
        }
    }
}

uint32_t
crc32c_extend_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;

    pthread_once(&crc32c_table_once, crc32c_build_tables);
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
            crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
            crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
            crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        len--;
    }
    return ~c;
}

#ifdef CRC32C_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t
crc32c_extend_hw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}
#endif

static uint32_t crc32c_resolve(uint32_t crc, const void *buf, size_t len);

static uint32_t (*crc32c_impl)(uint32_t, const void *, size_t) = crc32c_resolve;

bool
crc32c_hw_available(void)
{
#ifdef CRC32C_HAVE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
#else
    return false;
#endif
}

static uint32_t
crc32c_resolve(uint32_t crc, const void *buf, size_t len)
{
    uint32_t (*f)(uint32_t, const void *, size_t) = crc32c_extend_sw;
#ifdef CRC32C_HAVE_X86
    if (crc32c_hw_available())
        f = crc32c_extend_hw;
#endif
    __atomic_store_n(&crc32c_impl, f, __ATOMIC_RELEASE);
    return f(crc, buf, len);
}

uint32_t
crc32c_extend(uint32_t crc, const void *buf, size_t len)
{
    return __atomic_load_n(&crc32c_impl, __ATOMIC_ACQUIRE)(crc, buf, len);
}
