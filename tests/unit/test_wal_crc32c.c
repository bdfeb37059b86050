/*
 * test_wal_crc32c.c — CRC-32C against known vectors, and the hardware and
 * software implementations against each other.
 */
#include "crc32c.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_crc32c_vectors)
{
    /* RFC 3720 appendix B.4 and the usual check value. */
    uint8_t buf[48];
    ck_assert_uint_eq(crc32c_extend(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_extend_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c_extend(0, "", 0), 0u);
    memset(buf, 0, 32);
    ck_assert_uint_eq(crc32c_extend(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    ck_assert_uint_eq(crc32c_extend(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ck_assert_uint_eq(crc32c_extend(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(crc32c_extend(0, buf, 32), 0x113FDB5Cu);
    ck_assert_uint_eq(crc32c_extend_sw(0, buf, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_crc32c_chaining_and_alignment)
{
    uint8_t *buf = malloc(4096 + 16);
    ck_assert_ptr_nonnull(buf);
    uint32_t x = 12345;
    for (int i = 0; i < 4096 + 16; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t start = 0; start < 9; start++) {
        for (size_t len = 0; len < 600; len += 7) {
            uint32_t sw = crc32c_extend_sw(0, buf + start, len);
            ck_assert_uint_eq(crc32c_extend(0, buf + start, len), sw);
            for (size_t cut = 0; cut <= len; cut += 13) {
                uint32_t c = crc32c_extend(0, buf + start, cut);
                ck_assert_uint_eq(crc32c_extend(c, buf + start + cut, len - cut), sw);
            }
        }
    }
    /* A seed changes the value (the WAL's per-segment salt relies on it). */
    ck_assert_uint_ne(crc32c_extend(1, buf, 100), crc32c_extend(0, buf, 100));
    ck_assert_uint_eq(crc32c_extend(0xDEADBEEF, buf, 100), crc32c_extend_sw(0xDEADBEEF, buf, 100));
    free(buf);
}
END_TEST

static Suite *
crc32c_suite(void)
{
    Suite *s = suite_create("wal_crc32c");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_crc32c_vectors);
    tcase_add_test(tc, test_crc32c_chaining_and_alignment);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(crc32c_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
