/*
 * cli_print.c — how the dtx tool shows results and errors.
 *
 * NOTES
 *  Tables follow psql's aligned format: headers centred, a rule of '-' and
 *  '+', cells separated by " | ", numeric columns (by type OID) aligned
 *  right, SQL NULL shown as nothing, then "(N rows)" and a blank line.
 *  Column widths are display widths: UTF-8 is decoded and each character
 *  counts wcwidth() columns in a UTF-8 locale (so CJK takes two), one
 *  otherwise; invalid bytes count one each.  Values are printed as they
 *  came; a value with a newline breaks the alignment of its row.
 *
 *  Errors go to stderr in PostgreSQL's style, one field per line:
 *
 *      ERROR:  duplicate key value violates unique constraint "t_pkey"
 *      DETAIL:  Key (id)=(1) already exists.
 *      HINT:  ...
 *      SQLSTATE:  23505
 *      PARTICIPANT:  b
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Display width of a UTF-8 string. */
static int
display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int w = 0;
    while (*p) {
        unsigned cp;
        int n;
        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if ((*p & 0xe0) == 0xc0) {
            cp = *p & 0x1f;
            n = 2;
        } else if ((*p & 0xf0) == 0xe0) {
            cp = *p & 0x0f;
            n = 3;
        } else if ((*p & 0xf8) == 0xf0) {
            cp = *p & 0x07;
            n = 4;
        } else {
            w++;
            p++;
            continue;
        }
        int i;
        for (i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                break;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (i < n) { /* truncated sequence: one column per byte */
            w++;
            p++;
            continue;
        }
        int cw = wcwidth((wchar_t)cp);
        w += cw >= 0 ? cw : 1;
        p += n;
    }
    return w;
}

static void
pad(FILE *out, int n)
{
    for (int i = 0; i < n; i++)
        fputc(' ', out);
}

void
cli_print_table(FILE *out, int ncols, int nrows, const char *const *headers, const bool *right,
                const char *const *cells)
{
    int *width = calloc((size_t)(ncols ? ncols : 1), sizeof(int));
    if (width == NULL)
        return;
    for (int c = 0; c < ncols; c++)
        width[c] = display_width(headers[c]);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            const char *v = cells[(size_t)r * ncols + c];
            int w = v ? display_width(v) : 0;
            if (w > width[c])
                width[c] = w;
        }

    for (int c = 0; c < ncols; c++) {
        int w = display_width(headers[c]), left = (width[c] - w) / 2;
        fputs(c ? "|" : "", out);
        pad(out, 1 + left);
        fputs(headers[c], out);
        if (c < ncols - 1)
            pad(out, width[c] - w - left + 1);
    }
    fputc('\n', out);
    for (int c = 0; c < ncols; c++) {
        fputs(c ? "+" : "", out);
        for (int i = 0; i < width[c] + 2; i++)
            fputc('-', out);
    }
    fputc('\n', out);
    for (int r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            const char *v = cells[(size_t)r * ncols + c];
            if (v == NULL)
                v = "";
            int w = display_width(v);
            fputs(c ? "| " : " ", out);
            if (right && right[c])
                pad(out, width[c] - w);
            fputs(v, out);
            if (c < ncols - 1)
                pad(out, (right && right[c] ? 0 : width[c] - w) + 1);
        }
        fputc('\n', out);
    }
    fprintf(out, "(%d row%s)\n\n", nrows, nrows == 1 ? "" : "s");
    free(width);
}

/* PostgreSQL type OIDs shown right-aligned, as psql does for numbers. */
static bool
numeric_type(unsigned int oid)
{
    switch (oid) {
    case 20:   /* int8 */
    case 21:   /* int2 */
    case 23:   /* int4 */
    case 26:   /* oid */
    case 28:   /* xid */
    case 700:  /* float4 */
    case 701:  /* float8 */
    case 790:  /* money */
    case 1700: /* numeric */
    case 5069: /* xid8 */
        return true;
    default:
        return false;
    }
}

void
cli_print_result(FILE *out, const dtx_result *res)
{
    int ncols = dtx_nfields(res);
    if (ncols == 0) {
        fprintf(out, "%s\n", dtx_cmd_status(res));
        return;
    }
    int nrows = dtx_ntuples(res);
    const char **headers = calloc((size_t)ncols, sizeof(char *));
    bool *right = calloc((size_t)ncols, sizeof(bool));
    const char **cells = calloc((size_t)nrows * ncols + 1, sizeof(char *));
    if (headers && right && cells) {
        for (int c = 0; c < ncols; c++) {
            headers[c] = dtx_fname(res, c);
            right[c] = numeric_type(dtx_ftype(res, c));
        }
        for (int r = 0; r < nrows; r++)
            for (int c = 0; c < ncols; c++)
                cells[(size_t)r * ncols + c] =
                    dtx_getisnull(res, r, c) ? NULL : dtx_getvalue(res, r, c);
        cli_print_table(out, ncols, nrows, headers, right, cells);
    } else {
        fprintf(stderr, "dtx: out of memory\n");
    }
    free(headers);
    free(right);
    free(cells);
}

void
cli_print_error(FILE *out, const char *sqlstate, const char *message, const char *detail,
                const char *hint, const char *participant)
{
    fprintf(out, "ERROR:  %s\n", message ? message : "(no message)");
    if (detail)
        fprintf(out, "DETAIL:  %s\n", detail);
    if (hint)
        fprintf(out, "HINT:  %s\n", hint);
    if (sqlstate)
        fprintf(out, "SQLSTATE:  %s\n", sqlstate);
    if (participant)
        fprintf(out, "PARTICIPANT:  %s\n", participant);
}

void
cli_print_result_error(FILE *out, const dtx_result *res)
{
    cli_print_error(out, dtx_result_error_field(res, DTX_DIAG_SQLSTATE),
                    dtx_result_error_field(res, DTX_DIAG_MESSAGE),
                    dtx_result_error_field(res, DTX_DIAG_DETAIL),
                    dtx_result_error_field(res, DTX_DIAG_HINT),
                    dtx_result_error_field(res, DTX_DIAG_PARTICIPANT));
}

void
cli_print_conn_error(FILE *out, const dtx_conn *conn)
{
    const char *msg = dtx_error_field(conn, DTX_DIAG_MESSAGE);
    if (msg) {
        cli_print_error(out, dtx_error_field(conn, DTX_DIAG_SQLSTATE), msg,
                        dtx_error_field(conn, DTX_DIAG_DETAIL),
                        dtx_error_field(conn, DTX_DIAG_HINT),
                        dtx_error_field(conn, DTX_DIAG_PARTICIPANT));
        return;
    }
    const char *m = dtx_error_message(conn);
    if (m && m[0])
        fprintf(out, "ERROR:  %s", m);
}
