/* The fast lane: relaying plain traffic in C while no rule is active.
 *
 * With no rule to apply, the proxy only has to forward bytes and keep count of the
 * replies each connection is owed, so that an injected reply can take its place later.
 * The asyncio path does that for the cost of a bare relay, but on a small machine each
 * trip through the event loop and the interpreter is a measurable share of a pipelined
 * request (docs/proxy.md, "Fast lane"). A Relay runs its own thread with its own epoll
 * set and never touches Python objects there.
 *
 * It handles only the plain case and hands everything else to the asyncio path
 * ("escapes" the connection pair, once and for all):
 *   - a client chunk that is not a run of complete canonical commands whose names are
 *     not in `specials` (MULTI, HELLO, SUBSCRIBE, ...: connection state; of CLIENT,
 *     only SETNAME and REPLY);
 *   - a server chunk that is not a run of complete replies owed to earlier commands
 *     (a partial or large reply, a push);
 *   - a write the peer's socket does not take at once (back-pressure);
 *   - end of stream or an error while replies are still owed.
 * An escaped pair carries what the relay held: the chunk it could not judge, bytes it
 * could not write, and the count of replies owed. With nothing owed, end of stream on
 * either side simply closes both sockets, as the asyncio path would end up doing.
 *
 *   Relay(specials: tuple[bytes, ...], window_us: int)  starts the thread; after
 *       traffic it polls without sleeping for window_us (0: never), like _spin.c.
 *   add(client_fd, upstream_fd)      the relay owns both sockets from now on.
 *   fileno()                          an eventfd, readable when pairs have escaped.
 *   take_escaped() -> [pair]          pairs that escaped, handed to the caller.
 *   release_all() -> [pair]           every pair, escaped or not (rules switch on).
 *       pair = (client_fd, upstream_fd, owed, from_client, from_server, to_client,
 *               to_server, resp3, hello); the caller owns the sockets and must deliver
 *               to_client and to_server first, then handle from_server and
 *               from_client. resp3: the connection speaks RESP3; hello (2 or 3): the
 *               first reply owed answers a HELLO asking for that protocol.
 *   stats() -> (pairs relayed now, commands relayed, escapes)
 *   close()                           stops the thread and closes what it still owns.
 *
 * Memory: a pair struct may still be named by events an epoll_wait already returned,
 * so a removed pair is freed by the relay thread only after it has handled the batch
 * of events that could still name it (the generation count in run() and reap()).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "_resp_scan.h"

#define READ_SIZE (256 * 1024)
#define MAX_EVENTS 64
#define MAX_SPECIALS 32
#define SPECIAL_LEN 16

enum { ACTIVE, ESCAPED, GONE };
enum { CLIENT = 0, UPSTREAM = 1 };
enum { FROM_CLIENT, FROM_SERVER, TO_CLIENT, TO_SERVER, HELD };

typedef struct Pair Pair;

typedef struct {
    Pair *pair;
    int side;
} End; /* what an epoll event names: one socket of a pair */

struct Pair {
    End ends[2];
    int fd[2];
    int state;
    long long owed; /* replies the server owes for commands relayed so far */
    int resp3;      /* HELLO 3 was taken by the server */
    int hello;      /* 2 or 3: a HELLO was relayed, its reply (the next one) is awaited */
    char *held[HELD];
    size_t held_len[HELD];
    unsigned long dead_gen; /* the generation in which the pair left the epoll set */
    Pair *prev, *next;
};

typedef struct {
    PyObject_HEAD
    pthread_mutex_t lock;
    pthread_t thread;
    int running;
    int stopping;
    int ep, notify_fd, wake_fd;
    long long window_ns;
    char specials[MAX_SPECIALS][SPECIAL_LEN]; /* upper case, NUL-terminated */
    int nspecials;
    int hello_seen; /* HELLOs accepted in the chunk being scanned, */
    int hello_proto; /* and the protocol the last one asks for */
    Pair *pairs; /* every pair not yet freed, whatever its state */
    unsigned long gen;
    int gone; /* pairs waiting to be freed */
    long live;
    unsigned long long commands, escapes;
    char *buf;
} Relay;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether `s` (len bytes) is `upper_word` in any case. */
static int same_word(const char *s, long long len, const char *upper_word)
{
    size_t n = strlen(upper_word);
    if ((size_t)len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (((c >= 'a' && c <= 'z') ? (char)(c - 32) : c) != upper_word[i])
            return 0;
    }
    return 1;
}

/* HELLO 2|3 without SETNAME (redis-py 8 opens every connection with HELLO 3): stays in
 * the lane, which then learns the protocol from its reply. Anything else: 0. */
static int plain_hello(Relay *r, long long argc, const char *rest, const char *end)
{
    long long len;
    const char *arg = resp_next_arg(&rest, end, &len);
    if (argc < 2 || arg == NULL || len != 1 || (arg[0] != '2' && arg[0] != '3'))
        return 0;
    int proto = arg[0] - '0';
    for (long long i = 2; i < argc; i++) {
        arg = resp_next_arg(&rest, end, &len);
        if (arg == NULL || same_word(arg, len, "SETNAME"))
            return 0;
    }
    r->hello_seen++;
    r->hello_proto = proto;
    return 2;
}

/* accept() for scan_commands: a command that is not one of the specials, in any case.
 * CLIENT is special only for SETNAME, REPLY and TRACKING (which change what the proxy
 * must know);
 * CLIENT SETINFO, sent by redis-py on every new connection, stays in the lane, as does
 * a plain HELLO (plain_hello). */
static int plain_command(void *ctx, const char *name, long long len, long long argc,
                         const char *rest, const char *end)
{
    Relay *r = ctx;
    if (len >= SPECIAL_LEN)
        return 1;
    if (same_word(name, len, "CLIENT")) {
        long long sub_len;
        const char *sub = resp_next_arg(&rest, end, &sub_len);
        if (argc < 2 || sub == NULL)
            return 0;
        if (same_word(sub, sub_len, "SETNAME") || same_word(sub, sub_len, "REPLY") ||
            same_word(sub, sub_len, "TRACKING"))
            return 0;
        return 2; /* judged for this command only: the next CLIENT may be SETNAME */
    }
    if (same_word(name, len, "HELLO"))
        return plain_hello(r, argc, rest, end);
    for (int i = 0; i < r->nspecials; i++) {
        char *word = r->specials[i];
        if (same_word(name, len, word))
            return 0;
    }
    return 1;
}

/* -- relay thread (holding r->lock while it handles events) ------------------------ */

static void unwatch(Relay *r, Pair *p)
{
    epoll_ctl(r->ep, EPOLL_CTL_DEL, p->fd[CLIENT], NULL);
    epoll_ctl(r->ep, EPOLL_CTL_DEL, p->fd[UPSTREAM], NULL);
    r->live--;
}

static void bury(Relay *r, Pair *p)
{
    p->state = GONE;
    p->dead_gen = r->gen;
    r->gone++;
}

static void hold(Pair *p, int kind, const char *data, size_t len)
{
    if (len == 0)
        return;
    p->held[kind] = malloc(len);
    if (p->held[kind] == NULL) /* cannot keep it: the pair is closed as broken */
        return;
    memcpy(p->held[kind], data, len);
    p->held_len[kind] = len;
}

/* The pair ends here: both sockets are closed (nothing in flight, or out of memory). */
static void finish(Relay *r, Pair *p)
{
    close(p->fd[CLIENT]);
    close(p->fd[UPSTREAM]);
    bury(r, p);
}

static void escape(Relay *r, Pair *p, int kind, const char *data, size_t len)
{
    unwatch(r, p);
    hold(p, kind, data, len);
    if (len && p->held[kind] == NULL) {
        finish(r, p);
        return;
    }
    p->state = ESCAPED;
    r->escapes++;
    uint64_t one = 1;
    if (write(r->notify_fd, &one, sizeof one) < 0) {
        /* the counter cannot overflow in practice; the caller also polls on rule switches */
    }
}

static void forward(Relay *r, Pair *p, int to, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(p->fd[to], data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break; /* full or failed: the asyncio path writes the rest and sees why */
    }
    if (off < len)
        escape(r, p, to == CLIENT ? TO_CLIENT : TO_SERVER, data + off, len - off);
}

static void handle(Relay *r, End *end)
{
    Pair *p = end->pair;
    if (p->state != ACTIVE)
        return;
    int side = end->side;
    ssize_t got = recv(p->fd[side], r->buf, READ_SIZE, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (got <= 0) {
        if (p->owed == 0) { /* nothing in flight: the pair ends here */
            unwatch(r, p);
            finish(r, p);
        } else {
            escape(r, p, FROM_CLIENT, NULL, 0); /* the asyncio path sees the end itself */
        }
        return;
    }
    const char *data = r->buf;
    if (side == CLIENT) {
        r->hello_seen = 0;
        long n = scan_commands(data, data + got, plain_command, r);
        /* A HELLO must come alone, with nothing owed: then its reply is the next one. */
        if (n < 0 || (r->hello_seen && (n != 1 || p->owed != 0 || p->hello))) {
            escape(r, p, FROM_CLIENT, data, (size_t)got);
            return;
        }
        if (r->hello_seen)
            p->hello = r->hello_proto;
        p->owed += n;
        r->commands += (unsigned long long)n;
        forward(r, p, UPSTREAM, data, (size_t)got);
    } else {
        long n = scan_replies(data, data + got);
        if (n < 0 || n > p->owed) {
            escape(r, p, FROM_SERVER, data, (size_t)got);
            return;
        }
        p->owed -= n;
        if (p->hello && n > 0) { /* HELLO's reply: an error or a null leaves the protocol */
            if (!(data[0] == '-' || data[0] == '!' || data[0] == '_' ||
                  (got >= 3 && memcmp(data, "*-1", 3) == 0)))
                p->resp3 = p->hello == 3;
            p->hello = 0;
        }
        forward(r, p, CLIENT, data, (size_t)got);
    }
}

static void free_pair(Pair *p)
{
    for (int k = 0; k < HELD; k++)
        free(p->held[k]);
    free(p);
}

static void unlink_pair(Relay *r, Pair *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        r->pairs = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* Free the pairs no event can name any more: removed before this batch ended. */
static void reap(Relay *r)
{
    Pair *p = r->pairs;
    while (p != NULL && r->gone > 0) {
        Pair *next = p->next;
        if (p->state == GONE && p->dead_gen <= r->gen) {
            unlink_pair(r, p);
            free_pair(p);
            r->gone--;
        }
        p = next;
    }
}

static void *run(void *arg)
{
    Relay *r = arg;
    struct epoll_event events[MAX_EVENTS];
    int traffic = 0; /* the last batch held socket events: poll before sleeping */
    for (;;) {
        pthread_mutex_lock(&r->lock);
        int stopping = r->stopping;
        r->gen++; /* pairs removed from now on may be named by the coming events */
        pthread_mutex_unlock(&r->lock);
        if (stopping)
            break;
        int n = 0;
        if (traffic && r->window_ns > 0) { /* right after traffic: poll without sleeping */
            long long deadline = now_ns() + r->window_ns;
            do {
                n = epoll_wait(r->ep, events, MAX_EVENTS, 0);
                if (n != 0)
                    break;
                sched_yield(); /* a runnable thread on this CPU goes first */
            } while (now_ns() < deadline);
        }
        if (n == 0)
            n = epoll_wait(r->ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pthread_mutex_lock(&r->lock);
        traffic = 0;
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) { /* close() woke us */
                uint64_t count;
                if (read(r->wake_fd, &count, sizeof count) < 0) {
                    /* already drained */
                }
                continue;
            }
            handle(r, events[i].data.ptr);
            traffic = 1;
        }
        if (r->gone > 0)
            reap(r);
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

/* -- Python side (holding the GIL; takes r->lock briefly) -------------------------- */

static PyObject *pair_tuple(Pair *p)
{
    PyObject *held[HELD];
    for (int k = 0; k < HELD; k++) {
        held[k] = PyBytes_FromStringAndSize(p->held[k] ? p->held[k] : "",
                                            (Py_ssize_t)p->held_len[k]);
        if (held[k] == NULL) {
            for (int j = 0; j < k; j++)
                Py_DECREF(held[j]);
            return NULL;
        }
    }
    return Py_BuildValue("(iiLNNNNii)", p->fd[CLIENT], p->fd[UPSTREAM], p->owed, held[0],
                         held[1], held[2], held[3], p->resp3, p->hello);
}

/* Hand over the escaped pairs (and the active ones when take_active) as tuples; they
 * become GONE (freed by the thread). On a Python error (memory) the pairs handed over
 * so far are closed rather than leaked. */
static PyObject *hand_over(Relay *r, int take_active)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    for (Pair *p = r->pairs; p != NULL; p = p->next) {
        if (!(p->state == ESCAPED || (take_active && p->state == ACTIVE)))
            continue;
        PyObject *t = pair_tuple(p);
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            pthread_mutex_unlock(&r->lock);
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(out); i++) {
                PyObject *done = PyList_GET_ITEM(out, i);
                close((int)PyLong_AsLong(PyTuple_GET_ITEM(done, 0)));
                close((int)PyLong_AsLong(PyTuple_GET_ITEM(done, 1)));
            }
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
        if (p->state == ACTIVE)
            unwatch(r, p);
        bury(r, p);
    }
    pthread_mutex_unlock(&r->lock);
    return out;
}

static PyObject *Relay_take_escaped(Relay *r, PyObject *unused)
{
    (void)unused;
    uint64_t count;
    if (read(r->notify_fd, &count, sizeof count) < 0) {
        /* nothing signalled: a poll for nothing */
    }
    return hand_over(r, 0);
}

static PyObject *Relay_release_all(Relay *r, PyObject *unused)
{
    (void)unused;
    return hand_over(r, 1);
}

static PyObject *Relay_add(Relay *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "add(client_fd, upstream_fd)");
        return NULL;
    }
    int fds[2] = {(int)PyLong_AsLong(args[0]), (int)PyLong_AsLong(args[1])};
    if (PyErr_Occurred())
        return NULL;
    if (!r->running) {
        PyErr_SetString(PyExc_RuntimeError, "the relay is closed");
        return NULL;
    }
    Pair *p = calloc(1, sizeof *p);
    if (p == NULL)
        return PyErr_NoMemory();
    for (int side = 0; side < 2; side++) {
        p->fd[side] = fds[side];
        p->ends[side].pair = p;
        p->ends[side].side = side;
    }
    pthread_mutex_lock(&r->lock);
    p->next = r->pairs;
    if (r->pairs)
        r->pairs->prev = p;
    r->pairs = p;
    r->live++;
    p->state = ACTIVE;
    for (int side = 0; side < 2; side++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->ends[side]};
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fds[side], &ev) < 0) {
            int saved = errno;
            if (side == 1)
                epoll_ctl(r->ep, EPOLL_CTL_DEL, fds[0], NULL);
            r->live--;
            /* An epoll_wait may already have returned an event for the first socket:
             * the thread frees the pair after that batch, as any removed pair (freeing
             * it here let the thread handle a freed, or reused, pair). */
            bury(r, p);
            pthread_mutex_unlock(&r->lock);
            errno = saved;
            return PyErr_SetFromErrno(PyExc_OSError); /* the caller keeps the sockets */
        }
    }
    pthread_mutex_unlock(&r->lock);
    Py_RETURN_NONE;
}

static PyObject *Relay_fileno(Relay *r, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(r->notify_fd);
}

static PyObject *Relay_stats(Relay *r, PyObject *unused)
{
    (void)unused;
    pthread_mutex_lock(&r->lock);
    PyObject *t = Py_BuildValue("(lKK)", r->live, r->commands, r->escapes);
    pthread_mutex_unlock(&r->lock);
    return t;
}

static void shut(Relay *r)
{
    if (r->running) {
        pthread_mutex_lock(&r->lock);
        r->stopping = 1;
        pthread_mutex_unlock(&r->lock);
        uint64_t one = 1;
        if (write(r->wake_fd, &one, sizeof one) < 0) {
            /* the thread is gone already */
        }
        Py_BEGIN_ALLOW_THREADS
        pthread_join(r->thread, NULL);
        Py_END_ALLOW_THREADS
        r->running = 0;
    }
    Pair *p = r->pairs;
    while (p != NULL) { /* the thread is gone: nothing names these any more */
        Pair *next = p->next;
        if (p->state != GONE) {
            close(p->fd[CLIENT]);
            close(p->fd[UPSTREAM]);
        }
        free_pair(p);
        p = next;
    }
    r->pairs = NULL;
    r->live = 0;
    r->gone = 0;
    int *fds[] = {&r->ep, &r->notify_fd, &r->wake_fd};
    for (int i = 0; i < 3; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    free(r->buf);
    r->buf = NULL;
}

static PyObject *Relay_close(Relay *r, PyObject *unused)
{
    (void)unused;
    shut(r);
    Py_RETURN_NONE;
}

static int Relay_init(Relay *r, PyObject *args, PyObject *kwds)
{
    PyObject *specials;
    long long window_us;
    static char *kwlist[] = {"specials", "window_us", NULL};
    if (r->running || r->buf != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Relay.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!L", kwlist, &PyTuple_Type, &specials,
                                     &window_us))
        return -1;
    Py_ssize_t count = PyTuple_GET_SIZE(specials);
    if (count > MAX_SPECIALS || window_us < 0) {
        PyErr_SetString(PyExc_ValueError, "too many specials or a negative window");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(specials, i);
        if (!PyBytes_Check(name) || PyBytes_GET_SIZE(name) >= SPECIAL_LEN) {
            PyErr_SetString(PyExc_ValueError, "specials: short bytes names expected");
            return -1;
        }
        const char *s = PyBytes_AS_STRING(name);
        size_t len = (size_t)PyBytes_GET_SIZE(name);
        for (size_t j = 0; j < len; j++)
            r->specials[i][j] = (s[j] >= 'a' && s[j] <= 'z') ? (char)(s[j] - 32) : s[j];
        r->specials[i][len] = '\0';
    }
    r->nspecials = (int)count;
    r->window_ns = window_us * 1000LL;
    r->buf = malloc(READ_SIZE);
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (r->buf == NULL || r->ep < 0 || r->notify_fd < 0 || r->wake_fd < 0 ||
        epoll_ctl(r->ep, EPOLL_CTL_ADD, r->wake_fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        shut(r);
        return -1;
    }
    int err = pthread_create(&r->thread, NULL, run, r);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        shut(r);
        return -1;
    }
    r->running = 1;
    return 0;
}

static PyObject *Relay_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    Relay *r = (Relay *)type->tp_alloc(type, 0);
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->ep = r->notify_fd = r->wake_fd = -1;
    return (PyObject *)r;
}

static void Relay_dealloc(Relay *r)
{
    shut(r);
    pthread_mutex_destroy(&r->lock);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef Relay_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Relay_add, METH_FASTCALL,
     "add(client_fd, upstream_fd): relay this pair of sockets (the relay owns them)"},
    {"fileno", (PyCFunction)Relay_fileno, METH_NOARGS,
     "an eventfd that is readable when pairs have escaped"},
    {"take_escaped", (PyCFunction)Relay_take_escaped, METH_NOARGS,
     "the pairs handed back since the last call"},
    {"release_all", (PyCFunction)Relay_release_all, METH_NOARGS,
     "hand back every pair (rules switch on)"},
    {"stats", (PyCFunction)Relay_stats, METH_NOARGS,
     "(pairs relayed now, commands relayed, escapes)"},
    {"close", (PyCFunction)Relay_close, METH_NOARGS,
     "stop the thread and close the sockets it still owns"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "redtest.proxy._relay.Relay",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Relays plain RESP traffic between socket pairs on its own thread.",
    .tp_new = Relay_new,
    .tp_init = (initproc)Relay_init,
    .tp_dealloc = (destructor)Relay_dealloc,
    .tp_methods = Relay_methods,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "redtest.proxy._relay",
    "The proxy's fast lane: plain RESP traffic relayed by C while no rule is active.", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__relay(void)
{
    if (PyType_Ready(&RelayType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RelayType);
    if (PyModule_AddObject(m, "Relay", (PyObject *)&RelayType) < 0) {
        Py_DECREF(&RelayType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
