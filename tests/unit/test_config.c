/*
 * test_config.c — unit tests of common/config.c.
 *
 * One small table (a [main] section with one key of every type, a [limits]
 * section with required and ranged keys, and a free-form [peers] section)
 * is parsed from strings; each test checks either the values stored or the
 * exact error message, "t.ini:LINE: ..." prefix included.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct test_conf {
    char *name;
    char *greeting;
    int workers;
    bool verbose;
    bool fsync;
    int64_t timeout_ms;
    int64_t idle_ms; /* bare number in seconds */
    int64_t buffer;  /* bytes */
    int64_t cache;   /* bare number in kB */
    int mode;
    int port;       /* [limits], required, 1..65535 */
    int64_t lag_ms; /* [limits], 10ms..1h */
} test_conf;

static const char *const mode_choices[] = {"off", "local", "remote", NULL};

static const config_key main_keys[] = {
    {.name = "name", .type = CONFIG_STRING, .offset = offsetof(test_conf, name)},
    {.name = "greeting",
     .type = CONFIG_STRING,
     .offset = offsetof(test_conf, greeting),
     .default_value = "hello"},
    {.name = "workers",
     .type = CONFIG_INT,
     .offset = offsetof(test_conf, workers),
     .default_value = "4",
     .min = 1,
     .max = 64},
    {.name = "verbose", .type = CONFIG_BOOL, .offset = offsetof(test_conf, verbose)},
    {.name = "fsync",
     .type = CONFIG_BOOL,
     .offset = offsetof(test_conf, fsync),
     .default_value = "on"},
    {.name = "timeout",
     .type = CONFIG_DURATION,
     .offset = offsetof(test_conf, timeout_ms),
     .default_value = "30s"},
    {.name = "idle",
     .type = CONFIG_DURATION,
     .offset = offsetof(test_conf, idle_ms),
     .unit = "s",
     .default_value = "60"},
    {.name = "buffer",
     .type = CONFIG_SIZE,
     .offset = offsetof(test_conf, buffer),
     .default_value = "64kB"},
    {.name = "cache", .type = CONFIG_SIZE, .offset = offsetof(test_conf, cache), .unit = "kB"},
    {.name = "mode",
     .type = CONFIG_ENUM,
     .offset = offsetof(test_conf, mode),
     .choices = mode_choices,
     .default_value = "local"},
    {0},
};

static const config_key limit_keys[] = {
    {.name = "port",
     .type = CONFIG_INT,
     .offset = offsetof(test_conf, port),
     .required = true,
     .min = 1,
     .max = 65535},
    {.name = "lag",
     .type = CONFIG_DURATION,
     .offset = offsetof(test_conf, lag_ms),
     .min = 10,
     .max = 3600 * 1000},
    {0},
};

/* Collects the entries of [peers]; refuses the value "bad". */
typedef struct peers {
    int n;
    char keys[8][32];
    char values[8][64];
} peers;

static bool
on_peer(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
    peers *p = ctx;
    if (strcmp(value, "bad") == 0) {
        snprintf(err, errlen, "peer \"%s\": bad address", key);
        return false;
    }
    if (p->n < 8) {
        snprintf(p->keys[p->n], sizeof(p->keys[0]), "%s", key);
        snprintf(p->values[p->n], sizeof(p->values[0]), "%s", value);
        p->n++;
    }
    return true;
}

static bool
on_silent_refusal(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
    (void)ctx, (void)key, (void)value, (void)err, (void)errlen;
    return false;
}

static const config_section table[] = {
    {.name = "main", .keys = main_keys},
    {.name = "limits", .keys = limit_keys, .required = true},
    {.name = "peers", .on_entry = on_peer},
    {0},
};

/* The same without the required section: for tests of syntax alone. */
static const config_section loose_table[] = {
    {.name = "main", .keys = main_keys},
    {.name = "peers", .on_entry = on_peer},
    {.name = "quiet", .on_entry = on_silent_refusal},
    {0},
};

static test_conf conf;
static peers peer_list;
static char err[1024];

/* Also used inside tests between two parses: frees what the last one kept. */
static void
setup(void)
{
    config_free(table, &conf);
    memset(&conf, 0, sizeof(conf));
    memset(&peer_list, 0, sizeof(peer_list));
    err[0] = '\0';
}

static void
teardown(void)
{
    config_free(table, &conf);
}

static bool
parse(const char *text)
{
    return config_parse_string(table, &conf, &peer_list, "t.ini", text, err, sizeof(err));
}

static bool
parse_loose(const char *text)
{
    return config_parse_string(loose_table, &conf, &peer_list, "t.ini", text, err, sizeof(err));
}

/* Parse text, which must fail with exactly msg. */
#define ck_parse_error(text, msg)                                                                  \
    do {                                                                                           \
        ck_assert_msg(!parse(text), "parse unexpectedly succeeded");                               \
        ck_assert_str_eq(err, msg);                                                                \
    } while (0)

#define ck_loose_error(text, msg)                                                                  \
    do {                                                                                           \
        ck_assert_msg(!parse_loose(text), "parse unexpectedly succeeded");                         \
        ck_assert_str_eq(err, msg);                                                                \
    } while (0)

/* ------------------------------------------------------------------------ */

START_TEST(test_defaults)
{
    ck_assert_msg(parse("[limits]\nport = 80\n"), "%s", err);
    ck_assert_ptr_null(conf.name);
    ck_assert_str_eq(conf.greeting, "hello");
    ck_assert_int_eq(conf.workers, 4);
    ck_assert(!conf.verbose);
    ck_assert(conf.fsync);
    ck_assert_int_eq(conf.timeout_ms, 30000);
    ck_assert_int_eq(conf.idle_ms, 60000);
    ck_assert_int_eq(conf.buffer, 65536);
    ck_assert_int_eq(conf.cache, 0);
    ck_assert_int_eq(conf.mode, 1);
    ck_assert_int_eq(conf.port, 80);
    ck_assert_int_eq(conf.lag_ms, 0);
}
END_TEST

START_TEST(test_all_types)
{
    const char *text = "[main]\n"
                       "name = coord-1\n"
                       "greeting = good morning, world\n"
                       "workers = 64\n"
                       "verbose = yes\n"
                       "fsync = off\n"
                       "timeout = 500ms\n"
                       "idle = 5min\n"
                       "buffer = 1GB\n"
                       "cache = 3\n"
                       "mode = Remote\n"
                       "[limits]\n"
                       "port = 65535\n"
                       "lag = 1h\n";
    ck_assert_msg(parse(text), "%s", err);
    ck_assert_str_eq(conf.name, "coord-1");
    ck_assert_str_eq(conf.greeting, "good morning, world");
    ck_assert_int_eq(conf.workers, 64);
    ck_assert(conf.verbose);
    ck_assert(!conf.fsync);
    ck_assert_int_eq(conf.timeout_ms, 500);
    ck_assert_int_eq(conf.idle_ms, 5 * 60 * 1000);
    ck_assert_int_eq(conf.buffer, INT64_C(1) << 30);
    ck_assert_int_eq(conf.cache, 3 * 1024);
    ck_assert_int_eq(conf.mode, 2);
    ck_assert_int_eq(conf.port, 65535);
    ck_assert_int_eq(conf.lag_ms, 3600 * 1000);
}
END_TEST

START_TEST(test_duration_units)
{
    static const struct {
        const char *text;
        const char *unit;
        int64_t ms;
    } cases[] = {
        {"0", NULL, 0},        {"250", NULL, 250},      {"250ms", "s", 250},
        {"10s", NULL, 10000},  {"10 s", NULL, 10000},   {"5min", NULL, 300000},
        {"1h", NULL, 3600000}, {"2d", NULL, 172800000}, {"7", "s", 7000},
        {"7", "min", 420000},  {"3", "h", 10800000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        ck_assert_msg(config_parse_duration(cases[i].text, cases[i].unit, &ms, err, sizeof(err)),
                      "%s: %s", cases[i].text, err);
        ck_assert_int_eq(ms, cases[i].ms);
    }
    int64_t ms;
    ck_assert(!config_parse_duration("10sec", NULL, &ms, err, sizeof(err)));
    ck_assert_str_eq(err, "unknown unit \"sec\" (valid units: ms, s, min, h, d)");
    ck_assert(!config_parse_duration("-1s", NULL, &ms, err, sizeof(err)));
    ck_assert_str_eq(err, "expected a duration such as 500ms, 10s or 5min");
    ck_assert(!config_parse_duration("", NULL, &ms, err, sizeof(err)));
    ck_assert(!config_parse_duration("1.5s", NULL, &ms, err, sizeof(err)));
    ck_assert(!config_parse_duration("9223372036854775807d", NULL, &ms, err, sizeof(err)));
    ck_assert_str_eq(err, "a duration is too large");
    ck_assert(!config_parse_duration("99999999999999999999", NULL, &ms, err, sizeof(err)));
    ck_assert_str_eq(err, "number is out of range");
}
END_TEST

START_TEST(test_size_units)
{
    static const struct {
        const char *text;
        const char *unit;
        int64_t bytes;
    } cases[] = {
        {"512", NULL, 512},
        {"512B", NULL, 512},
        {"64kB", NULL, 65536},
        {"64MB", NULL, 64 << 20},
        {"1GB", NULL, INT64_C(1) << 30},
        {"2TB", NULL, INT64_C(2) << 40},
        {"8", "kB", 8192},
        {"8", "MB", 8 << 20},
        {"8 B", "MB", 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t b = -1;
        ck_assert_msg(config_parse_size(cases[i].text, cases[i].unit, &b, err, sizeof(err)),
                      "%s: %s", cases[i].text, err);
        ck_assert_int_eq(b, cases[i].bytes);
    }
    int64_t b;
    ck_assert(!config_parse_size("64kb", NULL, &b, err, sizeof(err)));
    ck_assert_str_eq(err, "unknown unit \"kb\" (valid units: B, kB, MB, GB, TB)");
    ck_assert(!config_parse_size("MB", NULL, &b, err, sizeof(err)));
    ck_assert_str_eq(err, "expected a size such as 512, 64kB, 64MB or 1GB");
}
END_TEST

START_TEST(test_bools)
{
    static const char *const yes[] = {"on", "ON", "true", "True", "yes", "1"};
    static const char *const no[] = {"off", "Off", "false", "FALSE", "no", "0"};
    for (size_t i = 0; i < 6; i++) {
        bool b = false;
        ck_assert(config_parse_bool(yes[i], &b));
        ck_assert_msg(b, "%s", yes[i]);
        ck_assert(config_parse_bool(no[i], &b));
        ck_assert_msg(!b, "%s", no[i]);
    }
    bool b;
    ck_assert(!config_parse_bool("y", &b));
    ck_assert(!config_parse_bool("2", &b));
    ck_assert(!config_parse_bool("", &b));
    ck_assert(!config_parse_bool("onn", &b));
}
END_TEST

START_TEST(test_comments_and_blanks)
{
    const char *text = "# full-line comment\n"
                       "; another one\n"
                       "\n"
                       "   \t\n"
                       "  [main]   # trailing comment after a header\n"
                       "  name = alpha   # trailing comment\n"
                       "greeting=a#b;c ; a comment after whitespace\n"
                       "workers = 8;not a comment? yes: no blank before it\n";
    ck_assert(!parse_loose(text));
    ck_assert_str_eq(err, "t.ini:8: invalid value \"8;not a comment? yes: no blank before it\" "
                          "for key \"workers\" in section [main]: expected an integer");
    setup();
    text = "# full-line comment\n"
           "; another one\n"
           "\n"
           "   \t\n"
           "  [main]   # trailing comment after a header\n"
           "  name = alpha   # trailing comment\n"
           "greeting=a#b;c ; a comment after whitespace\n"
           "workers = 8\t;tab before the comment\n"
           "verbose = on#\n"
           "fsync = # empty value, then a comment\n";
    ck_assert(!parse_loose(text));
    ck_assert_str_eq(err, "t.ini:9: invalid value \"on#\" for key \"verbose\" in section [main]: "
                          "expected a boolean (on/off, true/false, yes/no, 1/0)");
    setup();
    text = "# full-line comment\n"
           "; another one\n"
           "\n"
           "   \t\n"
           "  [main]   # trailing comment after a header\n"
           "  name = alpha   # trailing comment\n"
           "greeting=a#b;c ; a comment after whitespace\n"
           "workers = 8\t;tab before the comment\r\n"
           "# last line without newline";
    ck_assert_msg(parse_loose(text), "%s", err);
    ck_assert_str_eq(conf.name, "alpha");
    ck_assert_str_eq(conf.greeting, "a#b;c");
    ck_assert_int_eq(conf.workers, 8);
}
END_TEST

START_TEST(test_quotes)
{
    const char *text = "[main]\n"
                       "name = \"  padded # not a comment ; nor this  \"  # a comment\n"
                       "greeting = \"say \\\"hi\\\" \\\\ c:\\temp\"\n"
                       "verbose = \"yes\"\n";
    ck_assert_msg(parse_loose(text), "%s", err);
    ck_assert_str_eq(conf.name, "  padded # not a comment ; nor this  ");
    ck_assert_str_eq(conf.greeting, "say \"hi\" \\ c:\\temp");
    ck_assert(conf.verbose);

    setup();
    ck_assert_msg(parse_loose("[main]\nname = \"\"\n"), "%s", err);
    ck_assert_str_eq(conf.name, "");

    setup();
    ck_loose_error("[main]\nname = \"open\n", "t.ini:2: unterminated quoted value");
    setup();
    ck_loose_error("[main]\n\nname = \"a\" b\n", "t.ini:3: unexpected text after quoted value");
}
END_TEST

START_TEST(test_empty_file)
{
    ck_assert_msg(parse_loose(""), "%s", err);
    ck_assert_str_eq(conf.greeting, "hello");
    ck_assert_int_eq(conf.workers, 4);
    ck_assert_int_eq(peer_list.n, 0);

    setup();
    ck_assert_msg(parse_loose("\n\n# nothing\n"), "%s", err);
    ck_assert_str_eq(conf.greeting, "hello");

    setup();
    ck_parse_error("", "t.ini: missing required section [limits]");
    /* A failed parse leaves no strings behind (defaults included). */
    ck_assert_ptr_null(conf.greeting);
}
END_TEST

START_TEST(test_required_missing)
{
    ck_parse_error("[main]\nname = x\n\n[limits]\nlag = 1s\n",
                   "t.ini:4: missing required key \"port\" in section [limits]");
    ck_assert_ptr_null(conf.name);
    ck_assert_ptr_null(conf.greeting);
}
END_TEST

START_TEST(test_unknown_key_and_section)
{
    ck_parse_error("[limits]\nport = 1\n[main]\nnmae = x\n",
                   "t.ini:4: unknown key \"nmae\" in section [main] (did you mean \"name\"?)");
    setup();
    ck_parse_error("[limits]\nport = 1\n[main]\ncolour = blue\n",
                   "t.ini:4: unknown key \"colour\" in section [main]");
    setup();
    ck_parse_error("# x\n[mian]\n", "t.ini:2: unknown section [mian] (did you mean \"main\"?)");
    setup();
    ck_parse_error("[database]\n", "t.ini:1: unknown section [database]");
    setup();
    ck_parse_error("name = x\n", "t.ini:1: key \"name\" appears before any [section]");
    setup();
    ck_parse_error("[main\n", "t.ini:1: missing \"]\" in section header");
    setup();
    ck_parse_error("[main] x\n", "t.ini:1: unexpected text after section header");
    setup();
    ck_parse_error("[]\n", "t.ini:1: invalid section name \"\"");
    setup();
    ck_parse_error("[main]\njust words\n",
                   "t.ini:2: syntax error: expected \"key = value\" or \"[section]\"");
    setup();
    ck_parse_error("[main]\n = 3\n", "t.ini:2: invalid key name \"\"");
    setup();
    ck_parse_error("[main]\nmy key = 3\n", "t.ini:2: invalid key name \"my key\"");
    /* Names are case-sensitive. */
    setup();
    ck_parse_error("[limits]\nPort = 1\n",
                   "t.ini:2: unknown key \"Port\" in section [limits] (did you mean \"port\"?)");
}
END_TEST

START_TEST(test_bad_values)
{
    ck_parse_error("[limits]\nport = 80\n[main]\nworkers = many\n",
                   "t.ini:4: invalid value \"many\" for key \"workers\" in section [main]: "
                   "expected an integer");
    setup();
    ck_parse_error("[limits]\nport = 80\n[main]\nworkers = 65\n",
                   "t.ini:4: invalid value \"65\" for key \"workers\" in section [main]: "
                   "must be between 1 and 64");
    setup();
    ck_parse_error("[limits]\nport = 0\n", "t.ini:2: invalid value \"0\" for key \"port\" in "
                                           "section [limits]: must be between 1 and 65535");
    setup();
    ck_parse_error("[limits]\nport = 99999999999\n",
                   "t.ini:2: invalid value \"99999999999\" for key \"port\" in section [limits]: "
                   "number is out of range");
    setup();
    ck_parse_error("[limits]\nport = 8 0\n", "t.ini:2: invalid value \"8 0\" for key \"port\" in "
                                             "section [limits]: expected an integer");
    setup();
    ck_parse_error("[limits]\nport = 80\nlag = 5ms\n",
                   "t.ini:3: invalid value \"5ms\" for key \"lag\" in section [limits]: "
                   "must be between 10ms and 1h");
    setup();
    ck_parse_error("[limits]\nport = 80\nlag = 2h\n",
                   "t.ini:3: invalid value \"2h\" for key \"lag\" in section [limits]: "
                   "must be between 10ms and 1h");
    setup();
    ck_parse_error("[limits]\nport = 80\n[main]\ntimeout = 3 weeks\n",
                   "t.ini:4: invalid value \"3 weeks\" for key \"timeout\" in section [main]: "
                   "unknown unit \"weeks\" (valid units: ms, s, min, h, d)");
    setup();
    ck_parse_error("[limits]\nport = 80\n[main]\nbuffer = lots\n",
                   "t.ini:4: invalid value \"lots\" for key \"buffer\" in section [main]: "
                   "expected a size such as 512, 64kB, 64MB or 1GB");
    setup();
    ck_parse_error("[limits]\nport = 80\n[main]\nverbose = maybe\n",
                   "t.ini:4: invalid value \"maybe\" for key \"verbose\" in section [main]: "
                   "expected a boolean (on/off, true/false, yes/no, 1/0)");
    setup();
    ck_parse_error("[limits]\nport = 80\n[main]\nmode = both\n",
                   "t.ini:4: invalid value \"both\" for key \"mode\" in section [main]: "
                   "expected one of: off, local, remote");
    setup();
    ck_parse_error("[limits]\nport = 80\n[main]\nworkers =\n",
                   "t.ini:4: invalid value \"\" for key \"workers\" in section [main]: "
                   "expected an integer");
    setup();
    ck_assert_msg(parse("[limits]\nport = -0\n") == false, "range must refuse 0");
}
END_TEST

START_TEST(test_duplicates)
{
    ck_parse_error("[limits]\nport = 1\n\nport = 2\n",
                   "t.ini:4: duplicate key \"port\" in section [limits] (first set on line 2)");
    setup();
    ck_parse_error("[limits]\nport = 1\n[main]\n[limits]\n",
                   "t.ini:4: duplicate section [limits] (first on line 1)");
    setup();
    ck_parse_error("[limits]\nport = 1\n[peers]\na = 1\nb = 2\na = 3\n",
                   "t.ini:6: duplicate key \"a\" in section [peers] (first set on line 4)");
    /* A default is not a setting: setting a defaulted key once is fine. */
    setup();
    ck_assert_msg(parse("[limits]\nport = 1\n[main]\ngreeting = hi\n"), "%s", err);
    ck_assert_str_eq(conf.greeting, "hi");
}
END_TEST

START_TEST(test_long_lines)
{
    /* Exactly CONFIG_LINE_MAX bytes is accepted; one more is an error. */
    static char text[2 * CONFIG_LINE_MAX];
    const char *head = "[main]\nname = ";
    size_t room = CONFIG_LINE_MAX - strlen("name = ");
    snprintf(text, sizeof(text), "%s", head);
    memset(text + strlen(head), 'x', room);
    strcpy(text + strlen(head) + room, "\n");
    ck_assert_msg(parse_loose(text), "%s", err);
    ck_assert_uint_eq(strlen(conf.name), room);

    setup();
    snprintf(text, sizeof(text), "%s", head);
    memset(text + strlen(head), 'x', room + 1);
    strcpy(text + strlen(head) + room + 1, "\n[main]\n");
    ck_loose_error(text, "t.ini:2: line is longer than 4096 bytes");
    ck_assert_ptr_null(conf.name);

    /* A long comment line is refused too: nothing is silently cut. */
    setup();
    memset(text, '#', CONFIG_LINE_MAX + 10);
    text[CONFIG_LINE_MAX + 10] = '\0';
    ck_loose_error(text, "t.ini:1: line is longer than 4096 bytes");
}
END_TEST

START_TEST(test_free_form_section)
{
    const char *text = "[limits]\nport = 1\n"
                       "[peers]\n"
                       "pg-a = db1.example.com:5432\n"
                       "pg-b = \"[::1]:6000\"  # quoted, with a comment\n"
                       "pg.c=10.0.0.3:5433\n";
    ck_assert_msg(parse(text), "%s", err);
    ck_assert_int_eq(peer_list.n, 3);
    ck_assert_str_eq(peer_list.keys[0], "pg-a");
    ck_assert_str_eq(peer_list.values[0], "db1.example.com:5432");
    ck_assert_str_eq(peer_list.keys[1], "pg-b");
    ck_assert_str_eq(peer_list.values[1], "[::1]:6000");
    ck_assert_str_eq(peer_list.keys[2], "pg.c");
    ck_assert_str_eq(peer_list.values[2], "10.0.0.3:5433");

    setup();
    ck_parse_error("[limits]\nport = 1\n[peers]\npg-a = 1\npg-b = bad\n",
                   "t.ini:5: peer \"pg-b\": bad address");
    setup();
    ck_loose_error("[quiet]\nk = v\n", "t.ini:2: invalid entry \"k\" in section [quiet]");
}
END_TEST

START_TEST(test_parse_file)
{
    char dir[] = "/tmp/test_config.XXXXXX";
    char path[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/coordinator.ini", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[limits]\nport = 6543\n[main]\nname = from-file\nlisten_prot = 1\n", f);
    fclose(f);

    bool ok = config_parse_file(table, &conf, &peer_list, path, err, sizeof(err));
    char expect[512];
    snprintf(expect, sizeof(expect), "%s:5: unknown key \"listen_prot\" in section [main]", path);
    char err1[1024];
    snprintf(err1, sizeof(err1), "%s", err);

    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[limits]\nport = 6543\n[main]\nname = from-file\n", f);
    fclose(f);
    setup();
    bool ok2 = config_parse_file(table, &conf, &peer_list, path, err, sizeof(err));
    char err2[1024];
    snprintf(err2, sizeof(err2), "%s", err);

    test_conf other = {0};
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nope.ini", dir);
    bool ok3 = config_parse_file(table, &other, NULL, missing, err, sizeof(err));
    bool ok4 = config_parse_file(table, &other, NULL, dir, err + 512, sizeof(err) - 512);

    unlink(path);
    rmdir(dir);

    ck_assert(!ok);
    ck_assert_str_eq(err1, expect);
    ck_assert_msg(ok2, "%s", err2);
    ck_assert_str_eq(conf.name, "from-file");
    ck_assert_int_eq(conf.port, 6543);
    ck_assert(!ok3);
    ck_assert_msg(strstr(err, "could not open configuration file") != NULL &&
                      strstr(err, "No such file or directory") != NULL,
                  "%s", err);
    ck_assert(!ok4);
    ck_assert_msg(strstr(err + 512, "is a directory") != NULL, "%s", err + 512);
}
END_TEST

START_TEST(test_bad_table)
{
    static const config_key bad_keys[] = {
        {.name = "t", .type = CONFIG_DURATION, .offset = 0, .unit = "fortnight"},
        {0},
    };
    static const config_section bad_table[] = {{.name = "s", .keys = bad_keys}, {0}};
    int64_t v = 0;
    ck_assert(!config_parse_string(bad_table, &v, NULL, "b.ini", "", err, sizeof(err)));
    ck_assert_str_eq(err, "b.ini: bad configuration table: key \"t\" in section [s]: unknown "
                          "default unit \"fortnight\" (valid units: ms, s, min, h, d)");

    static const config_key bad_default[] = {
        {.name = "n", .type = CONFIG_INT, .offset = 0, .default_value = "0", .min = 1, .max = 2},
        {0},
    };
    static const config_section bad_table2[] = {{.name = "s", .keys = bad_default}, {0}};
    int n = 0;
    ck_assert(!config_parse_string(bad_table2, &n, NULL, "b.ini", "", err, sizeof(err)));
    ck_assert_str_eq(err, "b.ini: bad configuration table: invalid default value \"0\" for key "
                          "\"n\" in section [s]: must be between 1 and 2");
}
END_TEST

START_TEST(test_hostport)
{
    char host[64];
    uint16_t port = 0;
    ck_assert(config_parse_hostport("db.example.com:5432", 0, host, sizeof(host), &port, err,
                                    sizeof(err)));
    ck_assert_str_eq(host, "db.example.com");
    ck_assert_uint_eq(port, 5432);
    ck_assert(config_parse_hostport("127.0.0.1:1", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 1);
    ck_assert(config_parse_hostport("[::1]:65535", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 65535);
    ck_assert(
        config_parse_hostport("[fe80::1]", 6543, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(host, "fe80::1");
    ck_assert_uint_eq(port, 6543);
    ck_assert(
        config_parse_hostport("localhost", 6543, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(host, "localhost");
    ck_assert_uint_eq(port, 6543);

    ck_assert(!config_parse_hostport("localhost", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "missing port in address \"localhost\"");
    ck_assert(!config_parse_hostport("::1", 5432, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "IPv6 address \"::1\" must be written in brackets, as in [::1]:6543");
    ck_assert(!config_parse_hostport("h:0", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "invalid port \"0\" in address \"h:0\" (expected 1..65535)");
    ck_assert(!config_parse_hostport("h:65536", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert(!config_parse_hostport("h:", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert(!config_parse_hostport("h:80x", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert(!config_parse_hostport(":80", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "missing host in address \":80\"");
    ck_assert(!config_parse_hostport("[::1", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "missing \"]\" in address \"[::1\"");
    ck_assert(!config_parse_hostport("[::1]x", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert(!config_parse_hostport("[nothex]:1", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "invalid IPv6 address \"nothex\"");
    ck_assert(!config_parse_hostport("bad host:1", 0, host, sizeof(host), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "invalid character in host name \"bad host\"");
    char tiny[4];
    ck_assert(!config_parse_hostport("abcd:1", 0, tiny, sizeof(tiny), &port, err, sizeof(err)));
    ck_assert_str_eq(err, "host name in address \"abcd:1\" is too long");
}
END_TEST

/* Certificate-name lists: one parser for both daemons' allow-lists. */
START_TEST(test_split_names)
{
    char **v;
    size_t n;
    char why[200];
    ck_assert(config_split_names("app", &v, &n, why, sizeof(why)));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "app");
    config_free_names(v, n);
    ck_assert(config_split_names(" a, b c\t,d ", &v, &n, why, sizeof(why)));
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b");
    ck_assert_str_eq(v[2], "c");
    ck_assert_str_eq(v[3], "d");
    config_free_names(v, n);
    ck_assert(config_split_names("*", &v, &n, why, sizeof(why)));
    ck_assert_str_eq(v[0], "*");
    config_free_names(v, n);
    static const char *const bad[] = {"", "  ", "a,,b", "a,", ",a", "a, ,b", "a\"b", "a\x01"};
    static const char *const want[] = {
        "names no",          "names no",         "empty", "empty", "empty", "empty",
        "invalid character", "invalid character"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = (char **)1;
        ck_assert_msg(!config_split_names(bad[i], &v, &n, why, sizeof(why)), "accepted \"%s\"",
                      bad[i]);
        ck_assert_msg(strstr(why, want[i]) != NULL, "\"%s\": %s", bad[i], why);
        ck_assert_ptr_null(v);
        ck_assert_uint_eq(n, 0);
    }
}
END_TEST

START_TEST(test_small_error_buffer)
{
    char small[16];
    ck_assert(
        !config_parse_string(table, &conf, &peer_list, "t.ini", "[nope]\n", small, sizeof(small)));
    ck_assert_str_eq(small, "t.ini:1: unknow");
}
END_TEST

/* Reload: keys not listed as live keep the value in force; live ones take
 * the new one; each kept key is reported once. */
static char changed_keys[256];

static void
note_changed(void *arg, const char *section, const char *key)
{
    (void)arg;
    size_t n = strlen(changed_keys);
    snprintf(changed_keys + n, sizeof(changed_keys) - n, "%s%s.%s", n ? " " : "", section, key);
}

START_TEST(test_keep_restart_keys)
{
    ck_assert_msg(parse("[main]\nname = a\nworkers = 2\n[limits]\nport = 80\n"), "%s", err);
    test_conf old = conf;
    memset(&conf, 0, sizeof(conf));
    ck_assert_msg(parse("[main]\nname = b\nworkers = 3\ngreeting = hi\n[limits]\nport = 81\n"),
                  "%s", err);
    static const char *const live[] = {"workers", "greeting", NULL};
    changed_keys[0] = '\0';
    int n = config_keep_restart_keys(table, &conf, &old, live, note_changed, NULL);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(changed_keys, "main.name limits.port");
    ck_assert_str_eq(conf.name, "a"); /* kept */
    ck_assert_int_eq(conf.port, 80);
    ck_assert_int_eq(conf.workers, 3); /* live */
    ck_assert_str_eq(conf.greeting, "hi");
    ck_assert_str_eq(old.name, "b"); /* the new value goes with the old config */
    config_free(table, &old);
    /* nothing changed: nothing reported */
    test_conf again;
    memset(&again, 0, sizeof(again));
    ck_assert(config_parse_string(table, &again, &peer_list, "t.ini",
                                  "[main]\nname = a\nworkers = 3\ngreeting = hi\n[limits]\n"
                                  "port = 80\n",
                                  err, sizeof(err)));
    ck_assert_int_eq(config_keep_restart_keys(table, &again, &conf, NULL, NULL, NULL), 0);
    config_free(table, &again);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_all_types);
    tcase_add_test(tc, test_duration_units);
    tcase_add_test(tc, test_size_units);
    tcase_add_test(tc, test_bools);
    tcase_add_test(tc, test_comments_and_blanks);
    tcase_add_test(tc, test_quotes);
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_required_missing);
    tcase_add_test(tc, test_unknown_key_and_section);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_long_lines);
    tcase_add_test(tc, test_free_form_section);
    tcase_add_test(tc, test_parse_file);
    tcase_add_test(tc, test_bad_table);
    tcase_add_test(tc, test_hostport);
    tcase_add_test(tc, test_small_error_buffer);
    tcase_add_test(tc, test_split_names);
    tcase_add_test(tc, test_keep_restart_keys);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
