/* Counting RESP frames in a chunk without building objects, shared by _scan.c (called
 * from the proxy's Python hot path) and _relay.c (the fast lane's own thread).
 *
 * Both scanners look at one chunk that starts on a frame boundary and answer only the
 * plain case; for anything else they return -1 and the caller takes the general path:
 *
 *   scan_commands(p, end, accept, ctx) -> the number of commands when the chunk is
 *       exactly a run of complete commands in the canonical encoding (*<argc>\r\n then
 *       argc bulk strings $<len>\r\n<bytes>\r\n, argc >= 1) and accept() says yes for
 *       every command; -1 otherwise; -2 when accept failed (a Python error is set).
 *       accept(ctx, name, len, argc, rest, end) sees the command name (first argument,
 *       as sent), the argument count and the bytes after the name (`rest`, up to the
 *       chunk's `end`, not checked yet); it answers 1 (yes, and for every following
 *       command of the same name), 2 (yes, for this command only), 0 (no) or -1
 *       (failed).
 *   scan_replies(p, end) -> the number of replies when the chunk is exactly a run of
 *       complete replies (RESP2 and RESP3, nested aggregates included) with no push (>)
 *       or attribute (|) frame; else -1.
 */
#ifndef REDTEST_RESP_SCAN_H
#define REDTEST_RESP_SCAN_H

#include <string.h>

#define RESP_MAX_DEPTH 64 /* deeper replies go to the general path */

/* Read a decimal number ending in \r\n at p (p < end), canonical: no '+', no leading
 * zero. On success *out holds it and the position after the \r\n is returned; NULL when
 * the bytes are not that (or run out). A leading '-' is accepted only when
 * allow_negative (for -1 nulls). */
static const char *resp_read_number(const char *p, const char *end, int allow_negative,
                                    long long *out)
{
    int negative = 0;
    long long value = 0;
    int digits = 0;
    if (p < end && *p == '-') {
        if (!allow_negative)
            return NULL;
        negative = 1;
        p++;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 12) /* far beyond any real length: not ours to judge */
            return NULL;
        value = value * 10 + (*p - '0');
        p++;
    }
    if (digits == 0 || end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return NULL;
    if (digits > 1 && p[-digits] == '0') /* "007": Redis itself refuses such a length */
        return NULL;
    *out = negative ? -value : value;
    return p + 2;
}

/* The next bulk string argument at *p, for an accept() callback (the scanner has not
 * checked it yet): its bytes and length, and *p moved past it; NULL when it is not there
 * whole. */
static const char *resp_next_arg(const char **p, const char *end, long long *len)
{
    if (*p >= end || **p != '$')
        return NULL;
    const char *arg = resp_read_number(*p + 1, end, 0, len);
    if (arg == NULL || end - arg < *len + 2)
        return NULL;
    *p = arg + *len + 2;
    return arg;
}

typedef int (*resp_accept_command)(void *ctx, const char *name, long long len,
                                   long long argc, const char *rest, const char *end);

static long scan_commands(const char *p, const char *end, resp_accept_command accept, void *ctx)
{
    long count = 0;
    const char *last_name = NULL; /* the last name accepted */
    long long last_len = -1;
    if (p == end)
        return -1;
    while (p < end) {
        long long argc, len;
        if (*p != '*')
            return -1;
        p = resp_read_number(p + 1, end, 0, &argc);
        if (p == NULL || argc < 1)
            return -1;
        for (long long i = 0; i < argc; i++) {
            if (p >= end || *p != '$')
                return -1;
            p = resp_read_number(p + 1, end, 0, &len);
            if (p == NULL || end - p < len + 2 || p[len] != '\r' || p[len + 1] != '\n')
                return -1;
            if (i == 0 && !(len == last_len && memcmp(p, last_name, (size_t)len) == 0)) {
                /* a pipeline mostly repeats one name: judge only a name that changed */
                int ok = accept(ctx, p, len, argc, p + len + 2, end);
                if (ok < 0)
                    return -2;
                if (!ok)
                    return -1;
                if (ok == 1) {
                    last_name = p;
                    last_len = len;
                }
            }
            p += len + 2;
        }
        count++;
    }
    return count;
}

static long scan_replies(const char *p, const char *end)
{
    long long pending[RESP_MAX_DEPTH]; /* elements still owed by each open aggregate */
    int depth = 0;
    long count = 0;
    if (p == end)
        return -1;
    while (p < end) {
        long long n;
        char type = *p;
        switch (type) {
        case '+': case '-': case ':': case ',': case '#': case '(': case '_': {
            /* a line: whatever it holds ends at the first \r\n */
            const char *lf = memchr(p + 1, '\n', (size_t)(end - p - 1));
            if (lf == NULL || lf[-1] != '\r')
                return -1;
            p = lf + 1;
            break;
        }
        case '$': case '=': case '!':
            p = resp_read_number(p + 1, end, 1, &n);
            if (p == NULL || n < -1)
                return -1;
            if (n >= 0) {
                if (end - p < n + 2 || p[n] != '\r' || p[n + 1] != '\n')
                    return -1;
                p += n + 2;
            }
            break;
        case '*': case '~': case '%':
            p = resp_read_number(p + 1, end, 1, &n);
            if (p == NULL || n < -1)
                return -1;
            if (type == '%')
                n *= 2;
            if (n > 0) {
                if (depth == RESP_MAX_DEPTH)
                    return -1;
                pending[depth++] = n;
                continue; /* its elements follow */
            }
            break;
        default: /* push, attribute, streamed or unknown types: the general path */
            return -1;
        }
        /* one complete element: close every aggregate it completes */
        while (depth > 0 && --pending[depth - 1] == 0)
            depth--;
        if (depth == 0)
            count++;
    }
    if (depth != 0)
        return -1;
    return count;
}

#endif
