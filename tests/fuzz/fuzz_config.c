/*
 * fuzz_config.c — the configuration parser (common/config.c), with the
 * daemons' real tables.
 *
 * The first byte of the input picks what parses the rest (modulo 4):
 *
 *   0  the participant's table (participant/pconf.c, included below for
 *      its static part_sections), then the checks pconf_load runs on the
 *      values that need no system: the allow-list (pconf_split_allowed)
 *      and the conninfo (pconf_check_conninfo, libpq's parser).  The listen
 *      address (getaddrinfo) and the TLS files are left out: they ask the
 *      system, not the bytes;
 *   1  the coordinator's table (coordinator/main.c's, see coord_config.c),
 *      with its [participants] callback and host:port parser;
 *   2  a table of every value type (string, int, bool, duration, size,
 *      enum; required and optional keys and sections; units and ranges)
 *      and a free-form section whose callback refuses some entries;
 *   3  the value parsers alone, on each line: config_parse_bool,
 *      config_parse_duration, config_parse_size (with and without a
 *      default unit) and config_parse_hostport (with and without a default
 *      port, and with a host buffer too small for most hosts).
 *
 * Modes 0-2 read the text as a file (config_parse_file, through a memfd),
 * so that NUL bytes and the reading loop are in play.  Checks: a failure
 * leaves an error message that starts with the file name and no string
 * behind in the caller's struct; a success fills the required keys; values
 * lie within their ranges.
 */
#include "fuzz.h"

#include "coord_config.h"

#include "../../participant/pconf.c"

#include <sys/mman.h>

static int memfd = -1;
static char memfd_path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LVL_FATAL);
    memfd = memfd_create("dtx-fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(memfd >= 0);
    snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    return 0;
}

/* The text as the content of the file at memfd_path. */
static void
put_file(const uint8_t *p, size_t len)
{
    FUZZ_CHECK(ftruncate(memfd, 0) == 0);
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(memfd, p + done, len - done, (off_t)done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
}

static void
check_err(bool ok, const char *err)
{
    if (!ok)
        FUZZ_CHECK(strncmp(err, memfd_path, strlen(memfd_path)) == 0);
}

/* ---- 0: the participant ---------------------------------------------------- */

static void
participant(void)
{
    part_conf c;
    char err[1024] = "";
    memset(&c, 0, sizeof(c));
    bool ok = config_parse_file(part_sections, &c, NULL, memfd_path, err, sizeof(err));
    check_err(ok, err);
    if (!ok) {
        FUZZ_CHECK(c.tls_cert == NULL && c.conninfo == NULL && c.listen_addr == NULL);
        return;
    }
    FUZZ_CHECK(c.tls_cert != NULL && c.tls_key != NULL && c.tls_ca != NULL &&
               c.allowed_coordinators != NULL && c.conninfo != NULL && c.listen_addr != NULL);
    FUZZ_CHECK(c.listen_port >= 1 && c.listen_port <= 65535);
    FUZZ_CHECK(c.pool_size >= 1 && c.pool_size <= 1000);
    FUZZ_CHECK(c.max_frame >= 64 * 1024 && c.max_frame <= INT64_C(1) << 30);
    FUZZ_CHECK(c.log_level >= 0 && c.log_level <= 4);
    c.path = strdup(memfd_path);
    FUZZ_CHECK(c.path != NULL);
    if (pconf_split_allowed(&c, err, sizeof(err))) {
        FUZZ_CHECK(c.n_allowed >= 1);
        for (size_t i = 0; i < c.n_allowed; i++) {
            /* config_split_names: a name, without separators or quotes */
            FUZZ_CHECK(c.allowed[i][0] != '\0');
            FUZZ_CHECK(strpbrk(c.allowed[i], ", \t\"") == NULL);
        }
        (void)pconf_check_conninfo(&c, err, sizeof(err));
    }
    pconf_free(&c);
    FUZZ_CHECK(c.tls_cert == NULL && c.allowed == NULL && c.path == NULL);
}

/* ---- 1: the coordinator ---------------------------------------------------- */

static void
coordinator(void)
{
    char err[1024] = "";
    check_err(fuzz_coord_config(memfd_path, err, sizeof(err)), err);
}

/* ---- 2: every value type --------------------------------------------------- */

typedef struct all_conf {
    char *name;
    char *comment;
    int count;
    bool flag;
    int64_t timeout_ms;
    int64_t wait_ms;
    int64_t buffer;
    int64_t limit;
    int level;
    int port;
    int nextra;
} all_conf;

static const char *const level_words[] = {"low", "medium", "high", NULL};

#define ALL(f) offsetof(all_conf, f)
static const config_key all_keys[] = {
    {.name = "name", .type = CONFIG_STRING, .offset = ALL(name), .required = true},
    {.name = "comment", .type = CONFIG_STRING, .offset = ALL(comment), .default_value = "none"},
    {.name = "count", .type = CONFIG_INT, .offset = ALL(count), .min = -5, .max = 1000},
    {.name = "flag", .type = CONFIG_BOOL, .offset = ALL(flag), .default_value = "off"},
    {.name = "timeout",
     .type = CONFIG_DURATION,
     .offset = ALL(timeout_ms),
     .unit = "s",
     .default_value = "10s",
     .min = 0,
     .max = 86400000},
    {.name = "wait", .type = CONFIG_DURATION, .offset = ALL(wait_ms)},
    {.name = "buffer",
     .type = CONFIG_SIZE,
     .offset = ALL(buffer),
     .unit = "kB",
     .default_value = "64kB",
     .min = 1024,
     .max = INT64_C(1) << 30},
    {.name = "limit", .type = CONFIG_SIZE, .offset = ALL(limit)},
    {.name = "level",
     .type = CONFIG_ENUM,
     .offset = ALL(level),
     .default_value = "medium",
     .choices = level_words},
    {0},
};
static const config_key more_keys[] = {
    {.name = "port",
     .type = CONFIG_INT,
     .offset = ALL(port),
     .required = true,
     .min = 1,
     .max = 65535},
    {0},
};

static bool
extra_entry(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
    all_conf *a = ctx;
    FUZZ_CHECK(key[0] != '\0' && value != NULL);
    if (strncmp(key, "bad", 3) == 0) {
        snprintf(err, errlen, "entry \"%s\" is refused", key);
        return false;
    }
    if (strcmp(key, "silent") == 0)
        return false; /* no message: the parser makes one */
    a->nextra++;
    return true;
}

static const config_section all_sections[] = {
    {.name = "main", .keys = all_keys, .required = true},
    {.name = "more", .keys = more_keys},
    {.name = "extra", .on_entry = extra_entry},
    {0},
};

static void
every_type(void)
{
    all_conf a;
    char err[1024] = "";
    memset(&a, 0, sizeof(a));
    bool ok = config_parse_file(all_sections, &a, &a, memfd_path, err, sizeof(err));
    check_err(ok, err);
    if (ok) {
        FUZZ_CHECK(a.name != NULL && a.comment != NULL);
        FUZZ_CHECK(a.count >= -5 && a.count <= 1000);
        FUZZ_CHECK(a.timeout_ms >= 0 && a.timeout_ms <= 86400000);
        FUZZ_CHECK(a.wait_ms >= 0 && a.limit >= 0);
        FUZZ_CHECK(a.buffer >= 1024 && a.buffer <= INT64_C(1) << 30);
        FUZZ_CHECK(a.level >= 0 && a.level <= 2);
        FUZZ_CHECK(a.port == 0 || (a.port >= 1 && a.port <= 65535));
    } else {
        FUZZ_CHECK(a.name == NULL && a.comment == NULL);
    }
    config_free(all_sections, &a);
}

/* ---- 3: the value parsers -------------------------------------------------- */

static void
one_value(const char *v)
{
    static const char *const dunits[] = {NULL, "s", "min", "d"};
    static const char *const sunits[] = {NULL, "kB", "MB", "TB"};
    char err[512], host[256], small[8];
    int64_t x;
    bool b;
    uint16_t port;
    (void)config_parse_bool(v, &b);
    for (size_t i = 0; i < 4; i++) {
        if (config_parse_duration(v, dunits[i], &x, err, sizeof(err)))
            FUZZ_CHECK(x >= 0);
        if (config_parse_size(v, sunits[i], &x, err, sizeof(err)))
            FUZZ_CHECK(x >= 0);
    }
    if (config_parse_hostport(v, 0, host, sizeof(host), &port, err, sizeof(err)))
        FUZZ_CHECK(host[0] != '\0' && strlen(host) < sizeof(host) && port >= 1);
    if (config_parse_hostport(v, 6543, host, sizeof(host), &port, err, sizeof(err)))
        FUZZ_CHECK(host[0] != '\0' && port >= 1);
    if (config_parse_hostport(v, 6543, small, sizeof(small), &port, err, sizeof(err)))
        FUZZ_CHECK(strlen(small) < sizeof(small));
}

static void
values(const uint8_t *p, size_t len)
{
    char *text = fuzz_strndup(p, len);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        one_value(line);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_selftest(data, size);
    if (size == 0)
        return 0;
    if (data[0] % 4 == 3) {
        values(data + 1, size - 1);
        return 0;
    }
    put_file(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        participant();
        break;
    case 1:
        coordinator();
        break;
    default:
        every_type();
        break;
    }
    return 0;
}
