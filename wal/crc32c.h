/*
 * crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * The same checksum as iSCSI, ext4 metadata and PostgreSQL's WAL.  The
 * running value follows zlib's crc32() convention: start from 0, and
 * crc32c_extend(crc32c_extend(0, a), b) == crc32c_extend(0, a || b).
 * crc32c_extend(0, "123456789", 9) == 0xE3069283.
 *
 * A non-zero start value is an ordinary "seed": the WAL seeds every record's
 * checksum with a per-segment salt so that a record copied from another
 * segment (or another incarnation of the same segment) does not verify.
 */
#ifndef DTX_CRC32C_H
#define DTX_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over len more bytes; uses SSE4.2 when the CPU has it. */
uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t len);
/* The portable table-driven (slicing-by-8) implementation, for tests. */
uint32_t crc32c_extend_sw(uint32_t crc, const void *buf, size_t len);
/* True when crc32c_extend() uses the SSE4.2 crc32 instruction. */
bool crc32c_hw_available(void);

#endif
