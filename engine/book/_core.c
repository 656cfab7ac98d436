/* Compiled book core: the writer's full-depth sides (sorted C arrays) and the
 * seqlocked shared-memory mirror of their top N, plus the seqlock copy for
 * readers. Same semantics as the pure-Python reference in writer.py and
 * reader.py (tests/book/test_core_differential.py drives both); byte layout
 * from layout.py. Never releases the GIL inside a book update: every call is
 * atomic to other Python threads, so no stripe lock is needed around it.
 *
 * Seqlock (x86-64 TSO, see layout.py): version odd (relaxed store + release
 * fence), levels and header body, version even (release store). Readers:
 * acquire load, copy, acquire fence, re-load, compare.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BOOK_HEADER_SIZE 64
#define COUNT_OFFSET 40
#define STACK_LEVELS 256 /* levels converted on the C stack; larger inputs malloc */

enum { ST_EMPTY = 0, ST_SYNCED = 1, ST_RESYNCING = 2 };

typedef struct {
    double px, sz;
} Lv;

/* One side, stored best LAST: key ascending, key = price for bids and
 * -price for asks. Most changes are near the top, so an insert or delete
 * moves the few levels above it, not the long tail below it. */
typedef struct {
    double *key;
    double *sz;
    Py_ssize_t n, cap;
} Side;

typedef struct {
    Side side[2]; /* 0: bids (key = -price), 1: asks (key = price) */
    uint64_t version, updates;
    int64_t state, mirrored[2];
} CBook;

typedef struct {
    PyObject_HEAD
    char *base; /* the segment's mapping; NULL once detached */
    Py_ssize_t size, books_offset, record_size, depth, capacity;
    CBook **books;
    Py_ssize_t nbooks;
    unsigned long long crossed;
    PyObject *data_error; /* BookDataError */
} Core;

static const double SIGN[2] = {1.0, -1.0}; /* key = SIGN[side] * price, and back */

/* ------------------------------------------------------------ sides */

static int side_reserve(Side *s, Py_ssize_t need) {
    if (need <= s->cap)
        return 0;
    Py_ssize_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap *= 2;
    double *k = PyMem_Realloc(s->key, (size_t)cap * sizeof(double));
    if (!k) {
        PyErr_NoMemory();
        return -1;
    }
    s->key = k;
    double *z = PyMem_Realloc(s->sz, (size_t)cap * sizeof(double));
    if (!z) {
        PyErr_NoMemory();
        return -1;
    }
    s->sz = z;
    s->cap = cap;
    return 0;
}

static inline Py_ssize_t lower_bound(const double *a, Py_ssize_t n, double k) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) >> 1;
        if (a[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static inline int level_ok(double px, double sz) {
    return 0.0 < px && px < INFINITY && 0.0 <= sz && sz < INFINITY;
}

static void bad_level(Core *self, double px, double sz) {
    char *p = PyOS_double_to_string(px, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    char *s = PyOS_double_to_string(sz, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    PyErr_Format(self->data_error, "bad level price=%s size=%s", p ? p : "?", s ? s : "?");
    PyMem_Free(p);
    PyMem_Free(s);
}

/* Apply absolute sizes to one side; *dirty = first top-N slot (counted from
 * the best) that changed. Returns 0, -1 on a memory error, or 1 + index of the
 * first bad level (the levels before it stay applied, as in the reference). */
static Py_ssize_t side_apply(Side *s, const Lv *lv, Py_ssize_t n, double sign, Py_ssize_t depth,
                             Py_ssize_t *dirty) {
    for (Py_ssize_t j = 0; j < n; j++) {
        double px = lv[j].px, sz = lv[j].sz;
        if (!level_ok(px, sz))
            return j + 1;
        double k = sign * px;
        Py_ssize_t i = lower_bound(s->key, s->n, k);
        int found = i < s->n && s->key[i] == k;
        Py_ssize_t rank; /* from the best, after the change */
        if (sz == 0.0) {
            if (!found)
                continue; /* deleting an unknown level is normal */
            rank = s->n - 1 - i;
            memmove(s->key + i, s->key + i + 1, (size_t)(s->n - i - 1) * sizeof(double));
            memmove(s->sz + i, s->sz + i + 1, (size_t)(s->n - i - 1) * sizeof(double));
            s->n--;
        } else if (found) {
            s->sz[i] = sz;
            rank = s->n - 1 - i;
        } else {
            if (side_reserve(s, s->n + 1) < 0)
                return -1;
            memmove(s->key + i + 1, s->key + i, (size_t)(s->n - i) * sizeof(double));
            memmove(s->sz + i + 1, s->sz + i, (size_t)(s->n - i) * sizeof(double));
            s->key[i] = k;
            s->sz[i] = sz;
            s->n++;
            rank = s->n - 1 - i;
        }
        if (rank < *dirty && rank < depth)
            *dirty = rank;
    }
    return 0;
}

/* ------------------------------------------------------------ mirror */

static inline char *record(Core *self, Py_ssize_t index) {
    return self->base + self->books_offset + index * self->record_size;
}

/* Rewrite mirror slots [dirty[s], min(n, depth)) of each side, clear the
 * slots a side left, write the header body, close the seqlock. */
static void publish(Core *self, CBook *b, Py_ssize_t index, const Py_ssize_t dirty[2], int64_t seq,
                    int64_t exch_ns, int64_t recv_ns) {
    char *rec = record(self, index);
    uint64_t *ver = (uint64_t *)rec;
    Py_ssize_t depth = self->depth;
    uint64_t v = b->version + 1; /* odd: write in progress */
    __atomic_store_n(ver, v, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (int s = 0; s < 2; s++) {
        Side *sd = &b->side[s];
        double *px = (double *)(rec + BOOK_HEADER_SIZE) + (Py_ssize_t)s * 2 * depth;
        double *sz = px + depth;
        Py_ssize_t count = sd->n < depth ? sd->n : depth;
        double sign = SIGN[s];
        for (Py_ssize_t j = dirty[s]; j < count; j++) { /* slot j: the level j from the best */
            px[j] = sign * sd->key[sd->n - 1 - j];
            sz[j] = sd->sz[sd->n - 1 - j];
        }
        Py_ssize_t old = (Py_ssize_t)b->mirrored[s];
        if (old > count) {
            memset(px + count, 0, (size_t)(old - count) * sizeof(double));
            memset(sz + count, 0, (size_t)(old - count) * sizeof(double));
        }
        b->mirrored[s] = count;
    }
    b->updates++;
    int64_t *body = (int64_t *)(rec + 8);
    body[0] = seq;
    body[1] = exch_ns;
    body[2] = recv_ns;
    body[3] = b->state;
    body[4] = b->mirrored[0];
    body[5] = b->mirrored[1];
    ((uint64_t *)body)[6] = b->updates;
    b->version = v + 1;
    __atomic_store_n(ver, v + 1, __ATOMIC_RELEASE); /* even: consistent */
}

static void publish_all(Core *self, CBook *b, Py_ssize_t index, int64_t seq, int64_t exch_ns,
                        int64_t recv_ns) {
    static const Py_ssize_t zero[2] = {0, 0};
    b->mirrored[0] = b->mirrored[1] = self->depth; /* clear every unused slot */
    publish(self, b, index, zero, seq, exch_ns, recv_ns);
}

static inline int crossed(CBook *b) {
    Side *bs = &b->side[0], *as = &b->side[1];
    return bs->n && as->n && bs->key[bs->n - 1] >= -as->key[as->n - 1];
}

/* ------------------------------------------------------------ input */

static inline int as_double(PyObject *o, double *out) {
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* Levels converted to C before a book is touched: conversion may run Python
 * code (and switch threads), the update after it never does. */
typedef struct {
    Lv *lv;
    Py_ssize_t n;
    Lv *owned;      /* a PyMem block when the stack buffer was too small */
    Py_buffer view; /* a float64 (n, 2) buffer read in place (view.obj set) */
} Input;

static void input_release(Input *in) {
    PyMem_Free(in->owned);
    in->owned = NULL;
    if (in->view.obj)
        PyBuffer_Release(&in->view);
}

/* A C-contiguous float64 buffer of (price, size) pairs: engine.venues._levels.Levels
 * (JSON decoded in C) or an (n, 2) numpy array. 1: taken, 0: not such a buffer. */
static int load_buffer(PyObject *levels, Input *in) {
    if (PyList_CheckExact(levels) || PyTuple_CheckExact(levels) || !PyObject_CheckBuffer(levels))
        return 0;
    Py_buffer *v = &in->view;
    if (PyObject_GetBuffer(levels, v, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    int pairs = v->ndim == 2 ? v->shape[1] == 2 : v->ndim == 1 && v->len % (Py_ssize_t)sizeof(Lv) == 0;
    if (strcmp(f, "d") != 0 || v->itemsize != sizeof(double) || !pairs) {
        PyBuffer_Release(v);
        v->obj = NULL;
        return 0;
    }
    in->lv = v->buf;
    in->n = v->len / (Py_ssize_t)sizeof(Lv);
    return 1;
}

/* Any iterable of (price, size) pairs; numbers as float() takes them. */
static int load_levels(PyObject *levels, Lv *buf, Input *in) {
    in->lv = buf;
    in->n = 0;
    in->owned = NULL;
    in->view.obj = NULL;
    if (levels == Py_None || load_buffer(levels, in))
        return 0;
    PyObject *seq = PySequence_Fast(levels, "levels must be an iterable of (price, size)");
    if (!seq)
        return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    Lv *dst = buf;
    if (len > STACK_LEVELS) {
        dst = in->owned = PyMem_Malloc((size_t)len * sizeof(Lv));
        if (!dst) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *it = items[i];
        PyObject *p, *q;
        if (PyTuple_CheckExact(it) && PyTuple_GET_SIZE(it) == 2) {
            p = PyTuple_GET_ITEM(it, 0);
            q = PyTuple_GET_ITEM(it, 1);
        } else if (PyList_CheckExact(it) && PyList_GET_SIZE(it) == 2) {
            p = PyList_GET_ITEM(it, 0);
            q = PyList_GET_ITEM(it, 1);
        } else {
            PyObject *pair = PySequence_Fast(it, "a level must be a (price, size) pair");
            if (!pair)
                goto fail;
            if (PySequence_Fast_GET_SIZE(pair) != 2) {
                PyErr_Format(PyExc_ValueError, "a level must be a (price, size) pair, got %zd items",
                             PySequence_Fast_GET_SIZE(pair));
                Py_DECREF(pair);
                goto fail;
            }
            int bad = as_double(PySequence_Fast_GET_ITEM(pair, 0), &dst[i].px) < 0 ||
                      as_double(PySequence_Fast_GET_ITEM(pair, 1), &dst[i].sz) < 0;
            Py_DECREF(pair);
            if (bad)
                goto fail;
            continue;
        }
        if (as_double(p, &dst[i].px) < 0 || as_double(q, &dst[i].sz) < 0)
            goto fail;
    }
    Py_DECREF(seq);
    in->lv = dst;
    in->n = len;
    return 0;
fail:
    Py_DECREF(seq);
    input_release(in);
    return -1;
}

/* ------------------------------------------------------------ books */

static CBook *get_book(Core *self, Py_ssize_t index) {
    if (!self->base) {
        PyErr_SetString(PyExc_RuntimeError, "book store is closed");
        return NULL;
    }
    uint64_t count = __atomic_load_n((uint64_t *)(self->base + COUNT_OFFSET), __ATOMIC_ACQUIRE);
    if (index < 0 || (uint64_t)index >= count || index >= self->capacity) {
        PyErr_Format(PyExc_IndexError, "book index %zd is not registered", index);
        return NULL;
    }
    if (index >= self->nbooks) {
        Py_ssize_t n = self->nbooks ? self->nbooks : 16;
        while (n <= index)
            n *= 2;
        CBook **books = PyMem_Realloc(self->books, (size_t)n * sizeof(CBook *));
        if (!books) {
            PyErr_NoMemory();
            return NULL;
        }
        memset(books + self->nbooks, 0, (size_t)(n - self->nbooks) * sizeof(CBook *));
        self->books = books;
        self->nbooks = n;
    }
    CBook *b = self->books[index];
    if (!b) {
        b = PyMem_Calloc(1, sizeof(CBook));
        if (!b) {
            PyErr_NoMemory();
            return NULL;
        }
        b->state = ST_EMPTY;
        /* A fresh registration is all zeros in the segment: version 0, no levels. */
        self->books[index] = b;
    }
    return b;
}

/* Arguments (index, bids, asks, seq=0, exch_ns=0, recv_ns=0), positional or keyword. */
static const char *UPDATE_KW[] = {"index", "bids", "asks", "seq", "exch_ns", "recv_ns"};

static int update_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fn,
                       Py_ssize_t *index, PyObject **bids, PyObject **asks, int64_t ints[3]) {
    PyObject *slot[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (nargs > 6) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 6 arguments (%zd given)", fn, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        slot[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nk; k++) {
            const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
            int j = 0;
            while (name && j < 6 && strcmp(name, UPDATE_KW[j]) != 0)
                j++;
            if (!name || j == 6 || slot[j]) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument %R",
                             fn, PyTuple_GET_ITEM(kwnames, k));
                return -1;
            }
            slot[j] = args[nargs + k];
        }
    }
    if (!slot[0] || !slot[1] || !slot[2]) {
        PyErr_Format(PyExc_TypeError, "%s() needs index, bids and asks", fn);
        return -1;
    }
    *index = PyLong_AsSsize_t(slot[0]);
    if (*index == -1 && PyErr_Occurred())
        return -1;
    *bids = slot[1];
    *asks = slot[2];
    for (int j = 0; j < 3; j++) {
        ints[j] = 0;
        if (slot[3 + j]) {
            ints[j] = PyLong_AsLongLong(slot[3 + j]);
            if (ints[j] == -1 && PyErr_Occurred())
                return -1;
        }
    }
    return 0;
}

/* delta(index, bids, asks, seq=0, exch_ns=0, recv_ns=0) -> bool: see BookWriter.apply_delta. */
static PyObject *Core_delta(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    Py_ssize_t index;
    PyObject *bids, *asks;
    int64_t t[3];
    if (update_args(args, nargs, kwnames, "apply_delta", &index, &bids, &asks, t) < 0)
        return NULL;
    Lv bbuf[STACK_LEVELS], abuf[STACK_LEVELS];
    Input bi, ai;
    if (load_levels(bids, bbuf, &bi) < 0)
        return NULL;
    if (load_levels(asks, abuf, &ai) < 0) {
        input_release(&bi);
        return NULL;
    }
    const Lv *bl = bi.lv, *al = ai.lv;
    Py_ssize_t nb = bi.n, na = ai.n;
    PyObject *result = NULL;
    CBook *b = get_book(self, index);
    if (!b)
        goto done;
    Py_ssize_t dirty[2] = {self->depth, self->depth};
    Py_ssize_t bad = side_apply(&b->side[0], bl, nb, SIGN[0], self->depth, &dirty[0]);
    const Lv *bad_lv = bad > 0 ? &bl[bad - 1] : NULL;
    if (bad == 0) {
        bad = side_apply(&b->side[1], al, na, SIGN[1], self->depth, &dirty[1]);
        bad_lv = bad > 0 ? &al[bad - 1] : NULL;
    }
    if (bad != 0) { /* publish what was applied, flagged; a resync replaces it */
        b->state = ST_RESYNCING;
        publish(self, b, index, dirty, t[0], t[1], t[2]);
        if (bad > 0)
            bad_level(self, bad_lv->px, bad_lv->sz);
        goto done;
    }
    int ok = !crossed(b);
    if (!ok) {
        self->crossed++;
        b->state = ST_RESYNCING;
    }
    publish(self, b, index, dirty, t[0], t[1], t[2]);
    result = ok ? Py_True : Py_False;
    Py_INCREF(result);
done:
    input_release(&bi);
    input_release(&ai);
    return result;
}

typedef struct {
    double key, sz;
    Py_ssize_t order;
} Entry;

static int entry_cmp(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Sorted, de-duplicated (the last listing of a price wins), zero sizes left out. */
static Py_ssize_t build_side(const Lv *lv, Py_ssize_t n, double sign, Entry **out) {
    Entry *e = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
    if (!e) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t m = 0;
    int sorted = 1;
    for (Py_ssize_t j = 0; j < n; j++) {
        if (lv[j].sz > 0.0) {
            e[m].key = sign * lv[j].px;
            e[m].sz = lv[j].sz;
            e[m].order = j;
            if (m && !(e[m - 1].key < e[m].key))
                sorted = 0;
            m++;
        }
    }
    if (!sorted)
        qsort(e, (size_t)m, sizeof(Entry), entry_cmp);
    Py_ssize_t w = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        if (w && e[w - 1].key == e[j].key)
            e[w - 1] = e[j]; /* the later listing wins */
        else
            e[w++] = e[j];
    }
    *out = e;
    return w;
}

/* snapshot(index, bids, asks, seq=0, exch_ns=0, recv_ns=0) -> bool: see BookWriter.apply_snapshot. */
static PyObject *Core_snapshot(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    Py_ssize_t index;
    PyObject *bids, *asks;
    int64_t t[3];
    if (update_args(args, nargs, kwnames, "apply_snapshot", &index, &bids, &asks, t) < 0)
        return NULL;
    Lv bbuf[STACK_LEVELS], abuf[STACK_LEVELS];
    Input in[2];
    in[1].owned = NULL;
    in[1].view.obj = NULL;
    Entry *e[2] = {NULL, NULL};
    PyObject *result = NULL;
    if (load_levels(bids, bbuf, &in[0]) < 0)
        return NULL;
    if (load_levels(asks, abuf, &in[1]) < 0)
        goto done;
    const Lv *lv[2] = {in[0].lv, in[1].lv};
    Py_ssize_t n[2] = {in[0].n, in[1].n};
    for (int s = 0; s < 2; s++) /* bad levels raise before anything changes */
        for (Py_ssize_t j = 0; j < n[s]; j++)
            if (!level_ok(lv[s][j].px, lv[s][j].sz)) {
                bad_level(self, lv[s][j].px, lv[s][j].sz);
                goto done;
            }
    CBook *b = get_book(self, index);
    if (!b)
        goto done;
    Py_ssize_t m[2];
    for (int s = 0; s < 2; s++) {
        m[s] = build_side(lv[s], n[s], SIGN[s], &e[s]);
        if (m[s] < 0 || side_reserve(&b->side[s], m[s]) < 0)
            goto done;
    }
    for (int s = 0; s < 2; s++) {
        Side *sd = &b->side[s];
        for (Py_ssize_t j = 0; j < m[s]; j++) {
            sd->key[j] = e[s][j].key;
            sd->sz[j] = e[s][j].sz;
        }
        sd->n = m[s];
    }
    int ok = !crossed(b);
    if (!ok)
        self->crossed++;
    b->state = ok ? ST_SYNCED : ST_RESYNCING;
    publish_all(self, b, index, t[0], t[1], t[2]);
    result = ok ? Py_True : Py_False;
    Py_INCREF(result);
done:
    for (int s = 0; s < 2; s++) {
        PyMem_Free(e[s]);
        input_release(&in[s]);
    }
    return result;
}

static int index_state(PyObject *args, Py_ssize_t *index, long *state, long dflt) {
    *state = dflt;
    if (!PyArg_ParseTuple(args, "n|l", index, state))
        return -1;
    if (*state < 0 || *state > ST_RESYNCING) {
        PyErr_Format(PyExc_ValueError, "unknown book state %ld", *state);
        return -1;
    }
    return 0;
}

/* set_state(index, state): levels and seq/timestamps stay as published. */
static PyObject *Core_set_state(Core *self, PyObject *args) {
    Py_ssize_t index;
    long state;
    if (index_state(args, &index, &state, -1) < 0)
        return NULL;
    CBook *b = get_book(self, index);
    if (!b)
        return NULL;
    b->state = state;
    int64_t *body = (int64_t *)(record(self, index) + 8);
    publish_all(self, b, index, body[0], body[1], body[2]);
    Py_RETURN_NONE;
}

/* clear(index, state=RESYNCING): empty both sides. */
static PyObject *Core_clear(Core *self, PyObject *args) {
    Py_ssize_t index;
    long state;
    if (index_state(args, &index, &state, ST_RESYNCING) < 0)
        return NULL;
    CBook *b = get_book(self, index);
    if (!b)
        return NULL;
    b->side[0].n = b->side[1].n = 0;
    b->state = state;
    publish_all(self, b, index, 0, 0, 0);
    Py_RETURN_NONE;
}

static PyObject *Core_state(Core *self, PyObject *arg) {
    Py_ssize_t index = PyLong_AsSsize_t(arg);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    if (index < 0 || index >= self->nbooks || !self->books[index])
        return PyLong_FromLong(ST_EMPTY);
    return PyLong_FromLongLong(self->books[index]->state);
}

/* levels(index, depth=-1) -> ([(price, size)], [(price, size)]) best first; -1: all. */
static PyObject *Core_levels(Core *self, PyObject *args) {
    Py_ssize_t index, depth = -1;
    if (!PyArg_ParseTuple(args, "n|n", &index, &depth))
        return NULL;
    CBook *b = get_book(self, index);
    if (!b)
        return NULL;
    PyObject *out = PyTuple_New(2);
    if (!out)
        return NULL;
    for (int s = 0; s < 2; s++) {
        Side *sd = &b->side[s];
        Py_ssize_t n = depth < 0 || depth > sd->n ? sd->n : depth;
        PyObject *lst = PyList_New(n);
        if (!lst) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, s, lst);
        for (Py_ssize_t j = 0; j < n; j++) {
            Py_ssize_t at = sd->n - 1 - j;
            PyObject *lv = Py_BuildValue("(dd)", SIGN[s] * sd->key[at], sd->sz[at]);
            if (!lv) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(lst, j, lv);
        }
    }
    return out;
}

/* attach(buffer): the owner's writable segment; its mapping must outlive the
 * core, so BookStore.close() calls detach() first (CompiledBookWriter registers it). */
static PyObject *Core_attach(Core *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    Py_ssize_t need = self->books_offset + self->capacity * self->record_size;
    if (view.len < need) {
        PyErr_Format(PyExc_ValueError, "segment of %zd bytes is smaller than the layout's %zd",
                     view.len, need);
        PyBuffer_Release(&view);
        return NULL;
    }
    self->base = view.buf;
    self->size = view.len;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *Core_detach(Core *self, PyObject *Py_UNUSED(ignored)) {
    self->base = NULL;
    Py_RETURN_NONE;
}

static PyObject *Core_crossed_count(Core *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(self->crossed);
}

static int Core_init(Core *self, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"books_offset", "record_size", "depth", "capacity", "data_error", NULL};
    PyObject *err;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnnnO", kw, &self->books_offset,
                                     &self->record_size, &self->depth, &self->capacity, &err))
        return -1;
    if (self->depth < 1 || self->capacity < 1 ||
        self->record_size != BOOK_HEADER_SIZE + 32 * self->depth) {
        PyErr_SetString(PyExc_ValueError, "record_size must be 64 + 32 * depth, depth and capacity >= 1");
        return -1;
    }
    Py_INCREF(err);
    Py_XSETREF(self->data_error, err);
    return 0;
}

static void Core_dealloc(Core *self) {
    for (Py_ssize_t i = 0; i < self->nbooks; i++) {
        CBook *b = self->books[i];
        if (b) {
            for (int s = 0; s < 2; s++) {
                PyMem_Free(b->side[s].key);
                PyMem_Free(b->side[s].sz);
            }
            PyMem_Free(b);
        }
    }
    PyMem_Free(self->books);
    Py_XDECREF(self->data_error);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Core_methods[] = {
    {"delta", (PyCFunction)(void (*)(void))Core_delta, METH_FASTCALL | METH_KEYWORDS,
     "delta(index, bids, asks, seq=0, exch_ns=0, recv_ns=0) -> bool (False: crossed)"},
    {"snapshot", (PyCFunction)(void (*)(void))Core_snapshot, METH_FASTCALL | METH_KEYWORDS,
     "snapshot(index, bids, asks, seq=0, exch_ns=0, recv_ns=0) -> bool (False: crossed)"},
    {"set_state", (PyCFunction)Core_set_state, METH_VARARGS, "set_state(index, state)"},
    {"clear", (PyCFunction)Core_clear, METH_VARARGS, "clear(index, state=2)"},
    {"state", (PyCFunction)Core_state, METH_O, "state(index) -> int"},
    {"levels", (PyCFunction)Core_levels, METH_VARARGS, "levels(index, depth=-1)"},
    {"attach", (PyCFunction)Core_attach, METH_O, "attach(writable segment buffer)"},
    {"detach", (PyCFunction)Core_detach, METH_NOARGS, "forget the mapping (store closing)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Core_getset[] = {
    {"crossed_count", (getter)Core_crossed_count, NULL, "updates refused as crossed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine.book._core.Core",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Full-depth books and their seqlocked shared-memory mirror (writer side).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
};

/* ------------------------------------------------------------ reader */

typedef struct {
    PyObject_HEAD
    Py_ssize_t books_offset, record_size;
    unsigned long long retries;
} RecordReader;

/* read(buffer, index, tries) -> bytes | None | False: a consistent copy of the
 * record, None if every try saw a write in progress (the caller yields), False
 * if the index is not registered. */
static PyObject *RecordReader_read(RecordReader *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "read(buffer, index, tries)");
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    long tries = PyLong_AsLong(args[2]);
    if (tries == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = NULL;
    const char *base = view.buf;
    Py_ssize_t off = self->books_offset + index * self->record_size;
    uint64_t count = view.len >= COUNT_OFFSET + 8
                         ? __atomic_load_n((const uint64_t *)(base + COUNT_OFFSET), __ATOMIC_ACQUIRE)
                         : 0;
    if (index < 0 || (uint64_t)index >= count || off + self->record_size > view.len) {
        out = Py_False; /* not registered: the caller raises UnknownBook */
        Py_INCREF(out);
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, self->record_size);
    if (!out)
        goto done;
    char *dst = PyBytes_AS_STRING(out);
    const uint64_t *ver = (const uint64_t *)(base + off);
    for (long t = 0; t < tries; t++) {
        uint64_t v1 = __atomic_load_n(ver, __ATOMIC_ACQUIRE);
        if (!(v1 & 1)) {
            memcpy(dst, base + off, (size_t)self->record_size);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(ver, __ATOMIC_RELAXED) == v1) {
                ((uint64_t *)dst)[0] = v1;
                goto done;
            }
        }
        self->retries++;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    Py_CLEAR(out);
    out = Py_None;
    Py_INCREF(out);
done:
    PyBuffer_Release(&view);
    return out;
}

static PyObject *RecordReader_retries(RecordReader *self, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(self->retries);
}

static int RecordReader_init(RecordReader *self, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"books_offset", "record_size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nn", kw, &self->books_offset, &self->record_size))
        return -1;
    if (self->record_size < BOOK_HEADER_SIZE || self->books_offset < 0) {
        PyErr_SetString(PyExc_ValueError, "bad record layout");
        return -1;
    }
    return 0;
}

static PyMethodDef RecordReader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))RecordReader_read, METH_FASTCALL,
     "read(buffer, index, tries) -> bytes | None"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef RecordReader_getset[] = {
    {"retries", (getter)RecordReader_retries, NULL, "copies that had to be taken again", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RecordReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine.book._core.RecordReader",
    .tp_basicsize = sizeof(RecordReader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Seqlocked copies of book records (reader side, any process).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RecordReader_init,
    .tp_methods = RecordReader_methods,
    .tp_getset = RecordReader_getset,
};

/* ------------------------------------------------------------ module */

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "engine.book._core",
    "Compiled book core (see writer.py and reader.py for the reference semantics).", -1, NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&CoreType) < 0 || PyType_Ready(&RecordReaderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    Py_INCREF(&CoreType);
    Py_INCREF(&RecordReaderType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0 ||
        PyModule_AddObject(m, "RecordReader", (PyObject *)&RecordReaderType) < 0 ||
        PyModule_AddIntConstant(m, "LAYOUT_HEADER_SIZE", BOOK_HEADER_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
