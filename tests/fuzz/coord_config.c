/*
 * coord_config.c — the coordinator's configuration table, for fuzz_config.
 *
 * The table (coord_sections, its keys, and add_participant, the callback of
 * [participants]) is static in coordinator/main.c, which cannot be linked
 * without its main().  The Makefile copies that part of main.c — from the
 * "---- configuration" comment to the end of coord_sections — into
 * build/fuzz/gen/coord_config.inc, included below: the real table, kept in
 * step with main.c by every build (the build fails if the markers move).
 * This file is its own translation unit because the coordinator's
 * part_conf and the participant's (participant/pconf.h) share a name.
 */
#include "coord.h"

#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_config.h"

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#include "coord_config.inc"
#pragma clang diagnostic pop

bool
fuzz_coord_config(const char *path, char *err, size_t errlen)
{
    coord_conf conf;
    memset(&conf, 0, sizeof(conf));
    bool ok = config_parse_file(coord_sections, &conf, &conf, path, err, errlen);
    if (ok) {
        if (conf.name == NULL || conf.tls_cert == NULL || conf.data_dir == NULL ||
            conf.listen_port < 1 || conf.listen_port > 65535)
            abort(); /* required keys, and the default's range */
        for (int i = 0; i < conf.nparts; i++) {
            if (conf.parts[i].name[0] == '\0' || conf.parts[i].host[0] == '\0' ||
                conf.parts[i].port == 0)
                abort();
        }
    }
    config_free(coord_sections, &conf);
    free(conf.parts);
    return ok;
}
