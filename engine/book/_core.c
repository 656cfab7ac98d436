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
#include "_core.h"

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
            bad_level(self->data_error, bad_lv->px, bad_lv->sz);
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
                bad_level(self->data_error, lv[s][j].px, lv[s][j].sz);
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

/* ------------------------------------------------------------ module */

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "engine.book._core",
    "Compiled book core (see writer.py and reader.py for the reference semantics).", -1, NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0 ||
        add_reader_type(m) < 0 ||
        PyModule_AddIntConstant(m, "LAYOUT_HEADER_SIZE", BOOK_HEADER_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
