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
 *       argument, as sent) is in the set `names`; else -1. `names` may also be a
 *       connection's dict of decision plans: a name whose plan is True counts, and one
 *       whose plan is (slice, match) counts when match() finds none of its keys.
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

/* accept() for scan_commands with a dict of plans (conn.ClientConnection.plans): True
 * forwards; (slice, match) forwards unless match(key) holds for a key argument at the
 * slice's positions (the argv of Python); anything else, or no plan, does not. */
static int planned(void *ctx, const char *name, long long len, long long argc,
                   const char *rest, const char *end)
{
    PyObject *key = PyBytes_FromStringAndSize(name, (Py_ssize_t)len);
    if (key == NULL)
        return -1;
    PyObject *plan = PyDict_GetItemWithError((PyObject *)ctx, key); /* borrowed */
    Py_DECREF(key);
    if (plan == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (plan == Py_True)
        return 1;
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 2 ||
        !PySlice_Check(PyTuple_GET_ITEM(plan, 0)))
        return 0;
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(PyTuple_GET_ITEM(plan, 0), &start, &stop, &step) < 0)
        return -1;
    Py_ssize_t left = PySlice_AdjustIndices((Py_ssize_t)argc, &start, &stop, step);
    if (step < 1 || start < 1) /* not how key positions look: decide in Python */
        return left == 0 ? 2 : 0;
    PyObject *match = PyTuple_GET_ITEM(plan, 1);
    Py_ssize_t want = start;
    for (Py_ssize_t i = 1; i < (Py_ssize_t)argc && left > 0; i++) {
        long long arg_len;
        const char *arg = resp_next_arg(&rest, end, &arg_len);
        if (arg == NULL)
            return 0;
        if (i != want)
            continue;
        PyObject *arg_obj = PyBytes_FromStringAndSize(arg, (Py_ssize_t)arg_len);
        if (arg_obj == NULL)
            return -1;
        PyObject *found = PyObject_CallOneArg(match, arg_obj);
        Py_DECREF(arg_obj);
        if (found == NULL)
            return -1;
        int hit = found != Py_None;
        Py_DECREF(found);
        if (hit) /* a key rule may match: the general path decides */
            return 0;
        want += step;
        left--;
    }
    return 2; /* judged for this command's keys only */
}

static PyObject *count_commands(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !(PyAnySet_Check(args[1]) || PyDict_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "count_commands(data: bytes, names: set | dict)");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) /* other bytes-like objects: the general path */
        return PyLong_FromLong(-1);
    (void)module;
    const char *p = PyBytes_AS_STRING(args[0]);
    resp_accept_command accept = PyDict_Check(args[1]) ? planned : name_in_set;
    long n = scan_commands(p, p + PyBytes_GET_SIZE(args[0]), accept, args[1]);
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
