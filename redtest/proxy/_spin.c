/* Busy polling for the proxy's event loop (see docs/proxy.md, "Busy polling").
 *
 * On a virtual machine, a CPU that goes idle halts, and waking it for the next
 * packet costs an inter-processor interrupt and a trip through the hypervisor. A
 * proxy pays that twice per request (client -> server, server -> client), so right
 * after traffic the proxy's loop thread keeps its CPU awake for a short window
 * instead of sleeping in the poller, like haproxy's `busy-polling` option.
 *
 *   spin(fd, window_us) -> True as soon as `fd` (the event loop's epoll descriptor)
 *       is readable, i.e. the loop has events to handle; False when `window_us`
 *       microseconds pass without that. The GIL is released while it waits, so other
 *       threads of the process (the runner's steps) run meanwhile, and it yields the
 *       CPU between polls: spinning must not delay redis-server or the client when
 *       they are runnable on the same CPU.
 *
 * It only asks poll(2) about the epoll descriptor; the events themselves stay for the
 * event loop to collect.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static PyObject *spin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "spin(fd, window_us) takes 2 arguments");
        return NULL;
    }
    int fd = PyLong_AsLong(args[0]);
    long long window_us = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    int ready = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    long long deadline = now_ns() + window_us * 1000LL;
    for (;;) {
        int n = poll(&pfd, 1, 0);
        if (n > 0) {
            if (pfd.revents & POLLNVAL) { /* the loop closed its poller */
                errno = EBADF;
                failed = 1;
            } else
                ready = 1;
            break;
        }
        if (n < 0 && errno != EINTR) {
            failed = 1;
            break;
        }
        if (now_ns() >= deadline)
            break;
        sched_yield(); /* a runnable thread on this CPU goes first */
    }
    Py_END_ALLOW_THREADS
    if (failed)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyBool_FromLong(ready);
}

static PyMethodDef methods[] = {
    {"spin", (PyCFunction)(void (*)(void))spin, METH_FASTCALL,
     "spin(fd, window_us) -> True when fd becomes readable within the window"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "redtest.proxy._spin",
    "Busy polling an event loop's poller without the GIL (the proxy on virtual machines).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__spin(void)
{
    return PyModule_Create(&module_def);
}
