/* Compiled level decoding for the drivers' hot path: a JSON array of
 * [price, size] pairs (quoted or bare numbers, as venues send them) straight
 * to C doubles, with no Python object per level. The result, Levels, is an
 * immutable sequence of (price, size) float tuples for every other consumer
 * (recorder, tests) and exports its doubles through the buffer protocol
 * (format "d", shape (n, 2)), which the book core reads without copying.
 *
 * Accepts a strict subset of what wire.decode_levels (msgspec, lax) accepts,
 * with the same doubles (correctly rounded either way); anything else raises
 * ValueError and the caller falls back to msgspec (wire.fast_levels).
 */
#include "_levels.h"

#define STACK_PAIRS 256
#define MAX_NUMBER 48 /* longer number texts fall back to msgspec */

typedef struct {
    PyObject_VAR_HEAD
    Py_ssize_t exports;
    double v[1]; /* 2 * ob_size doubles: price, size, price, size, ... */
} Levels;

static PyTypeObject LevelsType;

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path for a checked number text without exponent: digits
 * m < 2^53 and at most 22 decimals make m / 10^d one correctly rounded
 * division, the double strtod would return. 0: use the slow path. */
static int fast_decimal(const char *s, const char *q, double *out) {
    int neg = *s == '-';
    uint64_t m = 0;
    int digits = 0, decimals = -1;
    for (const char *c = s + neg; c < q; c++) {
        if (*c == '.') {
            decimals = 0;
            continue;
        }
        if (*c < '0' || *c > '9') /* an exponent */
            return 0;
        if (++digits > 18)
            return 0;
        m = m * 10 + (uint64_t)(*c - '0');
        if (decimals >= 0)
            decimals++;
    }
    if (decimals < 0)
        decimals = 0;
    if (m > (1ULL << 53) || decimals > 22)
        return 0;
    double v = (double)m / POW10[decimals];
    *out = neg ? -v : v;
    return 1;
}

/* A JSON number (RFC 8259 grammar), optionally inside double quotes. */
const char *lv_number(const char *p, const char *end, double *out) {
    int quoted = p < end && *p == '"';
    const char *s = p + quoted, *q = s;
    if (q < end && *q == '-')
        q++;
    if (q < end && *q == '0')
        q++;
    else if (q < end && *q >= '1' && *q <= '9')
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    else
        return NULL;
    if (q < end && *q == '.') {
        const char *d = ++q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == d)
            return NULL;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        const char *d = q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == d)
            return NULL;
    }
    double v;
    if (!fast_decimal(s, q, &v)) {
        if (q - s >= MAX_NUMBER)
            return NULL;
        char text[MAX_NUMBER];
        memcpy(text, s, (size_t)(q - s));
        text[q - s] = '\0';
        char *stop;
        v = PyOS_string_to_double(text, &stop, NULL);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        if (*stop != '\0' || isinf(v)) /* overflow: msgspec refuses it too */
            return NULL;
    }
    if (quoted) {
        if (q >= end || *q != '"')
            return NULL;
        q++;
    }
    *out = v == 0.0 ? 0.0 : v; /* "-0" -> 0.0, as msgspec */
    return q;
}

/* The JSON array of [price, size] pairs at p (leading whitespace skipped) as
 * a new Levels in *out; ``extra`` more scalar items per level are read and
 * dropped (OKX sends [price, size, "0", orders]); returns the position after its ']'. NULL with *out
 * NULL: refused (no exception set) or out of memory (exception set). */
const char *lv_array(const char *p, const char *end, PyObject **out, int extra) {
    double stack[2 * STACK_PAIRS], *buf = stack;
    Py_ssize_t n = 0, cap = STACK_PAIRS;
    const char *ret = NULL;
    *out = NULL;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '[')
        goto done;
    p = skip_ws(p, end);
    if (p < end && *p == ']') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p++ != '[')
                goto done;
            if (n == cap) {
                cap *= 2;
                double *grown = buf == stack ? PyMem_Malloc((size_t)cap * 2 * sizeof(double))
                                             : PyMem_Realloc(buf, (size_t)cap * 2 * sizeof(double));
                if (!grown) {
                    PyErr_NoMemory();
                    goto done;
                }
                if (buf == stack)
                    memcpy(grown, stack, sizeof(stack));
                buf = grown;
            }
            p = skip_ws(p, end);
            if (!(p = lv_number(p, end, &buf[2 * n])))
                goto done;
            p = skip_ws(p, end);
            if (p >= end || *p++ != ',')
                goto done;
            p = skip_ws(p, end);
            if (!(p = lv_number(p, end, &buf[2 * n + 1])))
                goto done;
            for (int k = 0; k < extra; k++) {
                p = skip_ws(p, end);
                if (p >= end || *p++ != ',' || !(p = lv_skip_scalar(skip_ws(p, end), end)))
                    goto done;
            }
            p = skip_ws(p, end);
            if (p >= end || *p++ != ']')
                goto done;
            n++;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == ']') {
                p++;
                break;
            }
            goto done;
        }
    }
    Levels *lv = PyObject_NewVar(Levels, &LevelsType, n);
    if (!lv)
        goto done;
    lv->exports = 0;
    memcpy(lv->v, buf, (size_t)n * 2 * sizeof(double));
    *out = (PyObject *)lv;
    ret = p;
done:
    if (buf != stack)
        PyMem_Free(buf);
    return ret;
}

/* parse_levels(buffer, width=2) -> Levels; ValueError if the text is not a
 * plain array of levels of exactly ``width`` items (price, size, scalars). */
static PyObject *parse_levels(PyObject *Py_UNUSED(module), PyObject *const *args,
                              Py_ssize_t nargs) {
    long width = 2;
    if (nargs < 1 || nargs > 2 ||
        (nargs == 2 && ((width = PyLong_AsLong(args[1])) < 2 || width > 16))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "parse_levels(json, width=2), 2 <= width <= 16");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *end = (const char *)view.buf + view.len;
    PyObject *out = NULL;
    const char *p = lv_array(view.buf, end, &out, (int)width - 2);
    if (p && skip_ws(p, end) != end)
        Py_CLEAR(out);
    if (!out && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "not a plain JSON array of [price, size] number pairs");
    PyBuffer_Release(&view);
    return out;
}

/* ------------------------------------------------------------ Levels */

static Py_ssize_t Levels_len(Levels *self) {
    return Py_SIZE(self);
}

static PyObject *Levels_item(Levels *self, Py_ssize_t i) {
    if (i < 0 || i >= Py_SIZE(self)) {
        PyErr_SetString(PyExc_IndexError, "level index out of range");
        return NULL;
    }
    return Py_BuildValue("(dd)", self->v[2 * i], self->v[2 * i + 1]);
}

static PyObject *Levels_tolist(Levels *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *list = PyList_New(Py_SIZE(self));
    if (!list)
        return NULL;
    for (Py_ssize_t i = 0; i < Py_SIZE(self); i++) {
        PyObject *t = Levels_item(self, i);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

static PyObject *Levels_subscript(Levels *self, PyObject *key) {
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += Py_SIZE(self);
        return Levels_item(self, i);
    }
    PyObject *list = Levels_tolist(self, NULL); /* slices: as a list would give */
    if (!list)
        return NULL;
    PyObject *out = PyObject_GetItem(list, key);
    Py_DECREF(list);
    return out;
}

/* As the list of tuples would compare (Python passes the Levels first, reflecting op). */
static PyObject *Levels_richcompare(PyObject *a, PyObject *b, int op) {
    if (!Py_IS_TYPE(b, &LevelsType) && !PyList_Check(b) && !PyTuple_Check(b))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *left = Levels_tolist((Levels *)a, NULL);
    if (!left)
        return NULL;
    PyObject *right = Py_IS_TYPE(b, &LevelsType) ? Levels_tolist((Levels *)b, NULL)
                                                 : PySequence_List(b);
    if (!right) {
        Py_DECREF(left);
        return NULL;
    }
    PyObject *out = PyObject_RichCompare(left, right, op);
    Py_DECREF(left);
    Py_DECREF(right);
    return out;
}

/* levels + sequence (either side a Levels) -> list, as with the list it equals. */
static PyObject *Levels_add(PyObject *a, PyObject *b) {
    if (!PySequence_Check(a) || !PySequence_Check(b) || PyUnicode_Check(a) || PyUnicode_Check(b) ||
        PyBytes_Check(a) || PyBytes_Check(b))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *left = Py_IS_TYPE(a, &LevelsType) ? Levels_tolist((Levels *)a, NULL)
                                                : PySequence_List(a);
    if (!left)
        return NULL;
    PyObject *right = Py_IS_TYPE(b, &LevelsType) ? Levels_tolist((Levels *)b, NULL)
                                                 : PySequence_List(b);
    if (!right) {
        Py_DECREF(left);
        return NULL;
    }
    PyObject *out = PySequence_Concat(left, right);
    Py_DECREF(left);
    Py_DECREF(right);
    return out;
}

static PyNumberMethods Levels_as_number = {
    .nb_add = Levels_add,
};

static PyObject *Levels_repr(Levels *self) {
    PyObject *list = Levels_tolist(self, NULL);
    if (!list)
        return NULL;
    PyObject *out = PyObject_Repr(list);
    Py_DECREF(list);
    return out;
}

static int Levels_getbuffer(Levels *self, Py_buffer *view, int flags) {
    static Py_ssize_t strides[2] = {2 * sizeof(double), sizeof(double)};
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "Levels are read-only");
        view->obj = NULL;
        return -1;
    }
    view->buf = self->v;
    view->obj = (PyObject *)self;
    Py_INCREF(self);
    view->len = Py_SIZE(self) * 2 * (Py_ssize_t)sizeof(double);
    view->readonly = 1;
    view->itemsize = sizeof(double);
    view->format = (flags & PyBUF_FORMAT) ? "d" : NULL;
    view->ndim = 2;
    view->shape = NULL;
    view->strides = NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    if (flags & PyBUF_ND) {
        /* shape lives in the view's internal slot: two Py_ssize_t per export */
        Py_ssize_t *shape = PyMem_Malloc(2 * sizeof(Py_ssize_t));
        if (!shape) {
            Py_DECREF(self);
            view->obj = NULL;
            PyErr_NoMemory();
            return -1;
        }
        shape[0] = Py_SIZE(self);
        shape[1] = 2;
        view->shape = shape;
        view->internal = shape;
        if ((flags & PyBUF_STRIDES) == PyBUF_STRIDES)
            view->strides = strides;
    } else {
        view->ndim = 1; /* a flat run of doubles */
    }
    self->exports++;
    return 0;
}

static void Levels_releasebuffer(Levels *self, Py_buffer *view) {
    PyMem_Free(view->internal);
    self->exports--;
}

static PyBufferProcs Levels_as_buffer = {
    (getbufferproc)Levels_getbuffer,
    (releasebufferproc)Levels_releasebuffer,
};

static PySequenceMethods Levels_as_sequence = {
    .sq_length = (lenfunc)Levels_len,
    .sq_item = (ssizeargfunc)Levels_item,
};

static PyMappingMethods Levels_as_mapping = {
    .mp_length = (lenfunc)Levels_len,
    .mp_subscript = (binaryfunc)Levels_subscript,
};

static PyMethodDef Levels_methods[] = {
    {"tolist", (PyCFunction)Levels_tolist, METH_NOARGS, "[(price, size), ...]"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LevelsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine.venues._levels.Levels",
    .tp_basicsize = offsetof(Levels, v),
    .tp_itemsize = 2 * sizeof(double),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "Immutable (price, size) levels decoded in C; a sequence of float tuples and a "
              "(n, 2) float64 buffer.",
    .tp_as_sequence = &Levels_as_sequence,
    .tp_as_number = &Levels_as_number,
    .tp_as_mapping = &Levels_as_mapping,
    .tp_as_buffer = &Levels_as_buffer,
    .tp_richcompare = Levels_richcompare,
    .tp_repr = (reprfunc)Levels_repr,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_methods = Levels_methods,
};

static PyMethodDef module_methods[] = {
    {"parse_levels", (PyCFunction)(void (*)(void))parse_levels, METH_FASTCALL,
     "parse_levels(json_bytes, width=2) -> Levels; ValueError if not a plain array of "
     "[price, size, <width - 2 scalars>] levels"},
    {"binance_depth", (PyCFunction)(void (*)(void))lv_binance_depth, METH_FASTCALL,
     "binance_depth(frame, delta_maker, pair_of, venue, market, recv_ns) -> BookDelta, or "
     "None if not a plain depthUpdate frame of a symbol in pair_of"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef levels_module = {
    PyModuleDef_HEAD_INIT, "engine.venues._levels",
    "Compiled JSON level decoding (see wire.fast_levels).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__levels(void) {
    if (PyType_Ready(&LevelsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&levels_module);
    if (!m)
        return NULL;
    Py_INCREF(&LevelsType);
    if (PyModule_AddObject(m, "Levels", (PyObject *)&LevelsType) < 0 || lv_frames_init(m) < 0 ||
        lv_checksum_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
