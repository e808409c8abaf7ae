/* Counting RESP frames in a chunk without building objects: the proxy's hot path.
 *
 * The proxy must know how many commands a client chunk holds and how many replies a
 * server chunk holds, to keep its reply FIFO in step. hiredis builds a Python object
 * per argument and reports no offsets; the pure-Python paths in resp.py / conn.py do
 * the same job more slowly and remain the fallback (and the reference the tests check
 * these functions against).
 *
 * Both functions look at one chunk that starts on a frame boundary and answer only the
 * plain case; for anything else they return -1 and the caller takes the general path:
 *
 *   count_commands(data, names) -> the number of commands when `data` is exactly a run
 *       of complete commands in the canonical encoding (*<argc>\r\n then argc bulk
 *       strings $<len>\r\n<bytes>\r\n, argc >= 1) and every command name (first
 *       argument, as sent) is in the set `names`; else -1.
 *   count_replies(data) -> the number of replies when `data` is exactly a run of
 *       complete replies (RESP2 and RESP3, nested aggregates included) with no push
 *       (>) or attribute (|) frame; else -1.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_DEPTH 64 /* deeper replies go to the general path */

/* Read a decimal number ending in \r\n at p (p < end), canonical: no '+', no leading
 * zero. On success *out holds it and the position after the \r\n is returned; NULL when
 * the bytes are not that (or run out). A leading '-' is accepted only when
 * allow_negative (for -1 nulls). */
static const char *read_number(const char *p, const char *end, int allow_negative,
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

static PyObject *count_commands(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyAnySet_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "count_commands(data: bytes, names: set)");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) /* other bytes-like objects: the general path */
        return PyLong_FromLong(-1);
    (void)module;
    PyObject *names = args[1];
    const char *p = PyBytes_AS_STRING(args[0]);
    const char *end = p + PyBytes_GET_SIZE(args[0]);
    long count = 0;
    const char *last_name = NULL; /* the last name found in `names` */
    long long last_len = -1;
    if (p == end)
        return PyLong_FromLong(-1);
    while (p < end) {
        long long argc, len;
        if (*p != '*')
            return PyLong_FromLong(-1);
        p = read_number(p + 1, end, 0, &argc);
        if (p == NULL || argc < 1)
            return PyLong_FromLong(-1);
        for (long long i = 0; i < argc; i++) {
            if (p >= end || *p != '$')
                return PyLong_FromLong(-1);
            p = read_number(p + 1, end, 0, &len);
            if (p == NULL || end - p < len + 2 || p[len] != '\r' || p[len + 1] != '\n')
                return PyLong_FromLong(-1);
            if (i == 0 && !(len == last_len && memcmp(p, last_name, (size_t)len) == 0)) {
                /* a pipeline mostly repeats one name: look up only a name that changed */
                PyObject *name = PyBytes_FromStringAndSize(p, (Py_ssize_t)len);
                if (name == NULL)
                    return NULL;
                int known = PySet_Contains(names, name);
                Py_DECREF(name);
                if (known < 0)
                    return NULL;
                if (!known)
                    return PyLong_FromLong(-1);
                last_name = p;
                last_len = len;
            }
            p += len + 2;
        }
        count++;
    }
    return PyLong_FromLong(count);
}

static PyObject *count_replies(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "count_replies(data: bytes)");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) /* other bytes-like objects: the general path */
        return PyLong_FromLong(-1);
    (void)module;
    const char *p = PyBytes_AS_STRING(args[0]);
    const char *end = p + PyBytes_GET_SIZE(args[0]);
    long long pending[MAX_DEPTH]; /* elements still owed by each open aggregate */
    int depth = 0;
    long count = 0;
    if (p == end)
        return PyLong_FromLong(-1);
    while (p < end) {
        long long n;
        char type = *p;
        switch (type) {
        case '+': case '-': case ':': case ',': case '#': case '(': case '_': {
            /* a line: whatever it holds ends at the first \r\n */
            const char *lf = memchr(p + 1, '\n', (size_t)(end - p - 1));
            if (lf == NULL || lf[-1] != '\r')
                return PyLong_FromLong(-1);
            p = lf + 1;
            break;
        }
        case '$': case '=': case '!':
            p = read_number(p + 1, end, 1, &n);
            if (p == NULL || n < -1)
                return PyLong_FromLong(-1);
            if (n >= 0) {
                if (end - p < n + 2 || p[n] != '\r' || p[n + 1] != '\n')
                    return PyLong_FromLong(-1);
                p += n + 2;
            }
            break;
        case '*': case '~': case '%':
            p = read_number(p + 1, end, 1, &n);
            if (p == NULL || n < -1)
                return PyLong_FromLong(-1);
            if (type == '%')
                n *= 2;
            if (n > 0) {
                if (depth == MAX_DEPTH)
                    return PyLong_FromLong(-1);
                pending[depth++] = n;
                continue; /* its elements follow */
            }
            break;
        default: /* push, attribute, streamed or unknown types: the general path */
            return PyLong_FromLong(-1);
        }
        /* one complete element: close every aggregate it completes */
        while (depth > 0 && --pending[depth - 1] == 0)
            depth--;
        if (depth == 0)
            count++;
    }
    if (depth != 0)
        return PyLong_FromLong(-1);
    return PyLong_FromLong(count);
}

static PyMethodDef methods[] = {
    {"count_commands", (PyCFunction)(void (*)(void))count_commands, METH_FASTCALL,
     "count_commands(data, names) -> commands in data, or -1 (see the module source)"},
    {"count_replies", (PyCFunction)(void (*)(void))count_replies, METH_FASTCALL,
     "count_replies(data) -> replies in data, or -1 (see the module source)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "redtest.proxy._scan",
    "Counting RESP commands and replies in a chunk (the proxy's hot path).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void)
{
    return PyModule_Create(&module_def);
}
