/*
 * waldump_main.c — dtx-waldump: print and verify a write-ahead log directory.
 *
 * NOTES
 *  The tool runs the same scan as recovery (wal_scan) with callbacks that
 *  print each segment header and each record as it is verified, so the
 *  output shows everything valid up to the point where a problem is found.
 *  It never modifies the directory and takes no lock: on a log being written
 *  it may report the unfinished last write as a torn tail.
 *
 *  Exit status: 0 the log is valid (a torn tail, which recovery discards,
 *  is reported but is not an error); 1 the log is corrupt (recovery would
 *  refuse it) or could not be read; 2 bad usage.
 */
#include "wal_int.h"
#include "log.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct dump_state {
    bool quiet;
    bool payload;
    uint64_t start;
    uint32_t segsize;
    uint64_t segments;
    uint64_t records;
} dump_state;

static void
usage(FILE *out)
{
    fprintf(out, "dtx-waldump prints and verifies a dtx write-ahead log directory.\n"
                 "\n"
                 "Usage:\n"
                 "  dtx-waldump [OPTION]... DIR\n"
                 "\n"
                 "Options:\n"
                 "  -q, --quiet         verify only: print the summary, not the records\n"
                 "  -p, --payload       print the first 32 payload bytes of each record in hex\n"
                 "  -s, --start=LSN     print only records whose LSN is greater than LSN\n"
                 "                      (HI/LO in hex, as printed, or a decimal byte position)\n"
                 "  -h, --help          show this help, then exit\n"
                 "\n"
                 "Each record line shows its LSN (the position just past its end), where it\n"
                 "starts, its segment file and offset, its type and payload length.\n"
                 "\n"
                 "Exit status: 0 if the log is valid (a torn tail, which recovery would\n"
                 "discard, is reported but is not an error), 1 if it is corrupt or cannot be\n"
                 "read, 2 on bad usage.\n");
}

static bool
parse_lsn(const char *s, uint64_t *out)
{
    char *end;
    const char *slash = strchr(s, '/');
    if (slash != NULL) {
        unsigned long long hi = strtoull(s, &end, 16);
        if (end != slash || hi > 0xFFFFFFFFull)
            return false;
        unsigned long long lo = strtoull(slash + 1, &end, 16);
        if (*end != '\0' || end == slash + 1 || lo > 0xFFFFFFFFull)
            return false;
        *out = ((uint64_t)hi << 32) | lo;
        return true;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

static void
print_segment(void *arg, const wal_seg_header *h)
{
    dump_state *st = arg;
    st->segsize = h->segment_size;
    st->segments++;
    if (!st->quiet)
        printf("segment %016" PRIX64 ": epoch %" PRIu64 ", salt %08X, size %u\n", h->segno,
               h->epoch, h->salt, h->segment_size);
}

static void
print_record(void *arg, uint64_t segno, const wal_rec_view *rec)
{
    dump_state *st = arg;
    char a[32], b[32];
    if (rec->type == WAL_TYPE_SWITCH) {
        if (!st->quiet)
            printf("lsn %s  switch to segment %016" PRIX64 " (salt %08X)\n",
                   wal_lsn_str(rec->lsn, a, sizeof(a)), segno + 1, wal_get_u32(rec->payload));
        return;
    }
    st->records++;
    if (st->quiet || rec->lsn <= st->start)
        return;
    printf("lsn %s  start %s  seg %016" PRIX64 "  off %u  type %u  len %u",
           wal_lsn_str(rec->lsn, a, sizeof(a)), wal_lsn_str(rec->lsn - rec->size, b, sizeof(b)),
           segno, rec->offset, rec->type, rec->len);
    if (st->payload && rec->len > 0) {
        printf("  payload ");
        for (uint32_t i = 0; i < rec->len && i < 32; i++)
            printf("%02x", rec->payload[i]);
        if (rec->len > 32)
            printf("...");
    }
    printf("\n");
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"payload", no_argument, NULL, 'p'},
        {"start", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dump_state st = {0};
    int c;

    log_init("dtx-waldump");
    while ((c = getopt_long(argc, argv, "qps:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            st.quiet = true;
            break;
        case 'p':
            st.payload = true;
            break;
        case 's':
            if (!parse_lsn(optarg, &st.start)) {
                fprintf(stderr, "dtx-waldump: invalid LSN \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "Try \"dtx-waldump --help\" for more information.\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dtx-waldump: %s\n",
                optind >= argc ? "no log directory given" : "too many arguments");
        fprintf(stderr, "Try \"dtx-waldump --help\" for more information.\n");
        return 2;
    }
    const char *dir = argv[optind];
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(stderr, "dtx-waldump: error: could not open directory \"%s\": %m\n", dir);
        return 1;
    }

    wal_scan_cb cb = {.segment = print_segment, .record = print_record, .arg = &st};
    wal_scan_result res;
    char err[1024], a[32];
    bool ok = wal_scan(dirfd, WAL_DEFAULT_SEGMENT_SIZE, &cb, &res, err, sizeof(err));
    close(dirfd);
    fflush(stdout);
    if (!ok) {
        fprintf(stderr, "dtx-waldump: error: %s\n", err);
        if (res.corrupt)
            fprintf(stderr,
                    "dtx-waldump: hint: %" PRIu64 " valid records precede the damage; recovery "
                    "refuses a log that is damaged in the middle.\n",
                    st.records);
        wal_scan_result_free(&res);
        return 1;
    }
    char name[WAL_SEG_NAME_LEN];
    wal_seg_name(name, res.end_segno);
    printf("%" PRIu64 " records in %" PRIu64 " segments; end of log at %s (offset %u of "
           "segment %s)\n",
           res.records, st.segments, wal_lsn_str(res.end_lsn, a, sizeof(a)),
           res.end_header_valid ? res.end_offset : WAL_SEG_HDR_SIZE, name);
    if (res.torn_bytes > 0)
        printf("torn tail: %" PRIu64 " bytes at offset %u of segment %s (%s); recovery "
               "discards them\n",
               res.torn_bytes, res.end_offset, name, res.end_reason);
    if (res.nbeyond > 0)
        printf("%zu unused or stale segment files past the end; recovery removes them\n",
               res.nbeyond);
    printf("log is valid\n");
    wal_scan_result_free(&res);
    return 0;
}
