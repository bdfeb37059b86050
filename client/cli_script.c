/*
 * cli_script.c — statement lists of `dtx exec`, and the script format.
 *
 * NOTES
 *  Script format (docs/client.md, dtx(1) SCRIPT FORMAT), line by line:
 *
 *      # a comment: the first non-blank character is '#'
 *      participant: SQL statement
 *          a line that starts with a space or tab continues the statement
 *          above (joined with a newline)
 *
 *  Blank lines are ignored and end nothing.  A participant name is made of
 *  letters, digits, '_', '-' and '.', and ends at the first ':'; the SQL is
 *  the rest of the line without leading blanks and may not be empty.  Each
 *  entry is one statement sent as is; the tool does not split SQL on ';'.
 *  Scripts carry no parameters (use -P with --param for those).
 *
 *  Errors name the file and line ("dtx exec: t.sql:3: ...") and stop the
 *  command before anything is sent.  Nothing is limited except by memory and
 *  by the protocol's 65535 statements per transaction, checked by the
 *  caller.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool
cli_stmts_add(cli_stmts *l, const char *participant, const char *sql, const char *origin)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        cli_stmt *v = realloc(l->v, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return false;
        l->v = v;
        l->cap = cap;
    }
    cli_stmt *s = &l->v[l->n];
    memset(s, 0, sizeof(*s));
    s->participant = strdup(participant);
    s->sql = strdup(sql);
    s->origin = strdup(origin);
    if (!s->participant || !s->sql || !s->origin) {
        free(s->participant);
        free(s->sql);
        free(s->origin);
        return false;
    }
    l->n++;
    return true;
}

bool
cli_stmts_add_param(cli_stmts *l, const char *value)
{
    cli_stmt *s = &l->v[l->n - 1];
    char **p = realloc(s->params, (size_t)(s->nparams + 1) * sizeof(*p));
    if (p == NULL)
        return false;
    s->params = p;
    s->params[s->nparams] = NULL;
    if (value && (s->params[s->nparams] = strdup(value)) == NULL)
        return false;
    s->nparams++;
    return true;
}

void
cli_stmts_free(cli_stmts *l)
{
    for (int i = 0; i < l->n; i++) {
        cli_stmt *s = &l->v[i];
        for (int j = 0; j < s->nparams; j++)
            free(s->params[j]);
        free(s->params);
        free(s->participant);
        free(s->sql);
        free(s->origin);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static bool
name_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.';
}

/* Append "\n" and text to the SQL of the last statement. */
static bool
continue_sql(cli_stmts *l, const char *text)
{
    cli_stmt *s = &l->v[l->n - 1];
    size_t a = strlen(s->sql), b = strlen(text);
    char *p = realloc(s->sql, a + b + 2);
    if (p == NULL)
        return false;
    p[a] = '\n';
    memcpy(p + a + 1, text, b + 1);
    s->sql = p;
    return true;
}

/* One line (without its newline).  False with *why set on a syntax error. */
static bool
script_line(cli_stmts *l, char *line, const char *origin, int first_stmt, const char **why)
{
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return true;
    if (p != line) {
        if (l->n <= first_stmt) {
            *why = "continuation line before any statement";
            return false;
        }
        if (!continue_sql(l, p)) {
            *why = "out of memory";
            return false;
        }
        return true;
    }
    const char *name_end = p;
    while (name_char(*name_end))
        name_end++;
    if (name_end == p || *name_end != ':') {
        *why = "expected \"participant: SQL\"";
        return false;
    }
    const char *sql = name_end + 1;
    while (*sql == ' ' || *sql == '\t')
        sql++;
    if (*sql == '\0') {
        *why = "empty SQL statement";
        return false;
    }
    char *name = strndup(p, (size_t)(name_end - p));
    bool ok = name && cli_stmts_add(l, name, sql, origin);
    free(name);
    if (!ok)
        *why = "out of memory";
    return ok;
}

bool
cli_script_read(const char *path, cli_stmts *l)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *shown = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "dtx exec: could not open script \"%s\": %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, first = l->n;
    bool ok = true;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%d", shown, lineno);
        const char *why = NULL;
        if (!script_line(l, line, origin, first, &why)) {
            fprintf(stderr, "dtx exec: %s: %s\n", origin, why);
            ok = false;
            break;
        }
    }
    if (ok && ferror(f)) {
        fprintf(stderr, "dtx exec: could not read script \"%s\": %s\n", shown, strerror(errno));
        ok = false;
    }
    if (ok && l->n == first) {
        fprintf(stderr, "dtx exec: script \"%s\" contains no statements\n", shown);
        ok = false;
    }
    free(line);
    if (!is_stdin)
        fclose(f);
    return ok;
}
