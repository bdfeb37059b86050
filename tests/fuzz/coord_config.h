/*
 * coord_config.h — the coordinator's configuration table, parsed for
 * fuzz_config (coord_config.c).
 */
#ifndef DTX_FUZZ_COORD_CONFIG_H
#define DTX_FUZZ_COORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Parse the file at path with coordinator/main.c's table, check what a
 * successful parse promises (aborting otherwise), free it all.  The result
 * of config_parse_file, err its message. */
bool fuzz_coord_config(const char *path, char *err, size_t errlen);

#endif
