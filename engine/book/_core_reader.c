/* The reader half of the compiled book core: RecordReader, a seqlocked copy
 * of one book record from any process (engine/book/reader.py wraps it). */
#include "_core.h"


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

int add_reader_type(PyObject *module) {
    if (PyType_Ready(&RecordReaderType) < 0)
        return -1;
    Py_INCREF(&RecordReaderType);
    return PyModule_AddObject(module, "RecordReader", (PyObject *)&RecordReaderType);
}
