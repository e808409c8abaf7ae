/* Counting RESP frames in a chunk without building objects: the proxy's hot path.
 *
 * The proxy must know how many commands a client chunk holds and how many replies a
 * server chunk holds, to keep its reply FIFO in step. hiredis builds a Python object
 * per argument and reports no offsets; the pure-Python paths in resp.py / conn.py do
 * the same job more slowly and remain the fallback (and the reference the tests check
 * these functions against).
 *
 * Both functions look at one chunk that starts on a frame boundary and answer only the
 * plain case; for anything else they return -1 and the caller takes the general path
 * (the scanning itself is in _resp_scan.h, shared with the fast lane, _relay.c):
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

#include "_resp_scan.h"

/* accept() for scan_commands: the name is in the Python set `ctx`. */
static int name_in_set(void *ctx, const char *name, long long len, long long argc,
                       const char *rest, const char *end)
{
    (void)argc;
    (void)rest;
    (void)end;
    PyObject *key = PyBytes_FromStringAndSize(name, (Py_ssize_t)len);
    if (key == NULL)
        return -1;
    int known = PySet_Contains((PyObject *)ctx, key);
    Py_DECREF(key);
    return known;
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
    const char *p = PyBytes_AS_STRING(args[0]);
    long n = scan_commands(p, p + PyBytes_GET_SIZE(args[0]), name_in_set, args[1]);
    if (n == -2)
        return NULL;
    return PyLong_FromLong(n);
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
    return PyLong_FromLong(scan_replies(p, p + PyBytes_GET_SIZE(args[0])));
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
