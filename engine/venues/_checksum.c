/* The OKX checksum shadow book in C (CrcBook): the book as the venue's wire
 * strings, sorted best first, and the signed CRC32 of its top 25 levels
 * interleaved ("bid1px:bid1sz:ask1px:ask1sz:..."; CoinEx's recipe, all bids
 * then all asks, with interleave=False). Same interface and results as
 * okx._PyShadow and coinex's _Side, the references it replaces on the hot path
 * (tests/venues/test_checksum_c.py drives both with the same levels).
 *
 * Levels are the wire text itself (any buffer, e.g. msgspec.Raw: plain
 * strings are read here, anything else through orjson.loads first), or
 * sequences whose items 0 and 1 are the price and size as sent
 * (str, or any number for float()); a price is read as float() reads it (a
 * plain decimal in C, anything else by float() itself), and a level float()
 * refuses raises its error, as the reference does. A NaN price (no order rests
 * there; the book writer refuses it too) leaves checksum() None from then on,
 * which matches no venue checksum: the rule resyncs the book.
 */
#include "_levels.h"

#define CHECKSUM_LEVELS 25

/* Each side ascending by key = price for bids, -price for asks: best LAST, so
 * a change near the top moves only the few levels above it. */
typedef struct {
    double key;
    PyObject *px, *sz;
} Entry;

typedef struct {
    Entry *e;
    Py_ssize_t n, cap;
} Book;

typedef struct {
    PyObject_HEAD
    Book side[2]; /* 0 bids, 1 asks */
    Py_ssize_t depth; /* levels per side in the checksum */
    int interleave;   /* OKX: bid1, ask1, bid2, ...; else all bids, then all asks */
    int broken;       /* a NaN price was applied: no checksum can match */
} CrcBook;

/* The checksum text is built in a buffer and handed to zlib.crc32 (the
 * interpreter's own zlib, so no zlib headers are needed to build). */
static PyObject *zlib_crc32;

typedef struct {
    char *p;
    Py_ssize_t n, cap;
    char stack[4096];
} Text;

static int text_put(Text *t, const char *s, Py_ssize_t n) {
    if (t->n + n > t->cap) {
        Py_ssize_t cap = 2 * (t->n + n);
        char *grown = t->p == t->stack ? PyMem_Malloc((size_t)cap) : PyMem_Realloc(t->p, (size_t)cap);
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        if (t->p == t->stack)
            memcpy(grown, t->stack, (size_t)t->n);
        t->p = grown;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, (size_t)n);
    t->n += n;
    return 0;
}

/* float(obj), fast for a plain decimal str. -1 with an exception on failure. */
static int as_double(PyObject *obj, double *out) {
    if (PyUnicode_Check(obj)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
        if (!s)
            PyErr_Clear(); /* lone surrogates: float() gives its own error */
        else if (n > 0 && *s != '"' && lv_number(s, s + n, out) == s + n)
            return 0;
    }
    PyObject *f = PyNumber_Float(obj); /* exactly float()'s reading, and its errors */
    if (!f)
        return -1;
    *out = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    return 0;
}

/* First index whose key is >= key. */
static Py_ssize_t lower_bound(const Book *b, double key) {
    Py_ssize_t lo = 0, hi = b->n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (b->e[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static PyObject *json_loads; /* orjson.loads: wire text this file does not read itself */

/* One level read from wire text: its key parts and where its strings are. */
typedef struct {
    double price, size;
    const char *ps, *ss;
    Py_ssize_t pn, sn;
} Wire;

/* Wire text [["px","sz", <scalars>...], ...] (plain strings, plain decimals) into
 * a malloc'd array; NULL and *n = -1 if refused (no exception), or on memory error. */
static Wire *read_wire(const char *p, const char *end, Py_ssize_t *n) {
    Py_ssize_t count = 0, cap = 64;
    Wire *w = PyMem_Malloc((size_t)cap * sizeof(Wire));
    *n = -1;
    if (!w) {
        PyErr_NoMemory();
        return NULL;
    }
    p = skip_ws(p, end);
    if (p >= end || *p++ != '[')
        goto refuse;
    p = skip_ws(p, end);
    if (p < end && *p == ']') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p++ != '[')
                goto refuse;
            if (count == cap) {
                Wire *grown = PyMem_Realloc(w, (size_t)(cap *= 2) * sizeof(Wire));
                if (!grown) {
                    PyMem_Free(w);
                    PyErr_NoMemory();
                    return NULL;
                }
                w = grown;
            }
            Wire *lv = &w[count];
            const char *s, *e;
            if (!(p = lv_plain_string(skip_ws(p, end), end, &s, &e)) || s == e ||
                lv_number(s, e, &lv->price) != e)
                goto refuse;
            lv->ps = s;
            lv->pn = e - s;
            p = skip_ws(p, end);
            if (p >= end || *p++ != ',')
                goto refuse;
            if (!(p = lv_plain_string(skip_ws(p, end), end, &s, &e)) || s == e ||
                lv_number(s, e, &lv->size) != e)
                goto refuse;
            lv->ss = s;
            lv->sn = e - s;
            p = skip_ws(p, end);
            while (p < end && *p == ',') {
                if (!(p = lv_skip_scalar(skip_ws(p + 1, end), end)))
                    goto refuse;
                p = skip_ws(p, end);
            }
            if (p >= end || *p++ != ']')
                goto refuse;
            count++;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == ']') {
                p++;
                break;
            }
            goto refuse;
        }
    }
    if (skip_ws(p, end) != end)
        goto refuse;
    *n = count;
    return w;
refuse:
    PyMem_Free(w);
    return NULL;
}

static int apply_side(Book *b, PyObject *levels, double sign, int *broken);
static int grow(Book *b);

/* Wire text straight into the side, no object per deleted level; text this
 * does not read goes through json_loads and the sequence path. */
static int apply_wire(Book *b, PyObject *buffer, double sign, int *broken) {
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE) < 0)
        return -1;
    Py_ssize_t n;
    Wire *w = read_wire(view.buf, (const char *)view.buf + view.len, &n);
    if (!w) {
        PyBuffer_Release(&view);
        if (PyErr_Occurred())
            return -1;
        PyObject *bytes = PyMemoryView_FromObject(buffer); /* orjson takes no msgspec.Raw */
        PyObject *levels = bytes ? PyObject_CallOneArg(json_loads, bytes) : NULL;
        Py_XDECREF(bytes);
        if (!levels)
            return -1;
        int rc = apply_side(b, levels, sign, broken);
        Py_DECREF(levels);
        return rc;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double key = sign * w[i].price; /* a plain decimal: never NaN */
        Py_ssize_t at = lower_bound(b, key);
        int found = at < b->n && b->e[at].key == key;
        if (w[i].size == 0.0) {
            if (found) {
                Py_DECREF(b->e[at].px);
                Py_DECREF(b->e[at].sz);
                memmove(&b->e[at], &b->e[at + 1], (size_t)(b->n - at - 1) * sizeof(Entry));
                b->n--;
            }
            continue;
        }
        PyObject *px = PyUnicode_FromStringAndSize(w[i].ps, w[i].pn);
        PyObject *sz = px ? PyUnicode_FromStringAndSize(w[i].ss, w[i].sn) : NULL;
        if (!sz || (!found && grow(b) < 0)) {
            Py_XDECREF(px);
            Py_XDECREF(sz);
            rc = -1;
            break;
        }
        if (found) {
            Py_SETREF(b->e[at].px, px);
            Py_SETREF(b->e[at].sz, sz);
            continue;
        }
        memmove(&b->e[at + 1], &b->e[at], (size_t)(b->n - at) * sizeof(Entry));
        b->e[at] = (Entry){key, px, sz};
        b->n++;
    }
    PyMem_Free(w);
    PyBuffer_Release(&view);
    return rc;
}

static int grow(Book *b) {
    if (b->n < b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? 2 * b->cap : 64;
    Entry *grown = PyMem_Realloc(b->e, (size_t)cap * sizeof(Entry));
    if (!grown) {
        PyErr_NoMemory();
        return -1;
    }
    b->e = grown;
    b->cap = cap;
    return 0;
}

static int apply_side(Book *b, PyObject *levels, double sign, int *broken) {
    if (PyObject_CheckBuffer(levels))
        return apply_wire(b, levels, sign, broken);
    PyObject *seq = PySequence_Fast(levels, "levels must be a sequence");
    if (!seq)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int rc = -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *px = PySequence_GetItem(items[i], 0);
        PyObject *sz = px ? PySequence_GetItem(items[i], 1) : NULL;
        double price, size;
        if (!sz || as_double(px, &price) < 0 || as_double(sz, &size) < 0) {
            Py_XDECREF(px);
            Py_XDECREF(sz);
            goto done;
        }
        if (isnan(price)) { /* no order rests there: the book fails every check */
            Py_DECREF(px);
            Py_DECREF(sz);
            *broken = 1;
            continue;
        }
        double key = sign * price;
        Py_ssize_t at = lower_bound(b, key);
        int found = at < b->n && b->e[at].key == key;
        if (size == 0.0) {
            if (found) {
                Py_DECREF(b->e[at].px);
                Py_DECREF(b->e[at].sz);
                memmove(&b->e[at], &b->e[at + 1], (size_t)(b->n - at - 1) * sizeof(Entry));
                b->n--;
            }
            Py_DECREF(px);
            Py_DECREF(sz);
            continue;
        }
        if (found) {
            Py_SETREF(b->e[at].px, px);
            Py_SETREF(b->e[at].sz, sz);
            continue;
        }
        if (b->n == b->cap) {
            Py_ssize_t cap = b->cap ? 2 * b->cap : 64;
            Entry *grown = PyMem_Realloc(b->e, (size_t)cap * sizeof(Entry));
            if (!grown) {
                Py_DECREF(px);
                Py_DECREF(sz);
                PyErr_NoMemory();
                goto done;
            }
            b->e = grown;
            b->cap = cap;
        }
        memmove(&b->e[at + 1], &b->e[at], (size_t)(b->n - at) * sizeof(Entry));
        b->e[at] = (Entry){key, px, sz}; /* the references taken above */
        b->n++;
    }
    rc = 0;
done:
    Py_DECREF(seq);
    return rc;
}

static PyObject *CrcBook_apply(CrcBook *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply(bids, asks)");
        return NULL;
    }
    if (apply_side(&self->side[0], args[0], 1.0, &self->broken) < 0 ||
        apply_side(&self->side[1], args[1], -1.0, &self->broken) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* One wire value as the f-string would render it. */
static int text_value(Text *t, PyObject *v) {
    Py_ssize_t n;
    const char *s;
    if (PyUnicode_CheckExact(v)) {
        if (!(s = PyUnicode_AsUTF8AndSize(v, &n)))
            return -1;
        return text_put(t, s, n);
    }
    PyObject *text = PyObject_Format(v, NULL);
    if (!text)
        return -1;
    s = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = s ? text_put(t, s, n) : -1;
    Py_DECREF(text);
    return rc;
}

/* "px:sz" of the i-th best level of side s, after a ':' unless it is the first. */
static int text_level(CrcBook *self, int s, Py_ssize_t i, Text *t) {
    Book *b = &self->side[s];
    if (i >= b->n)
        return 0;
    Entry *level = &b->e[b->n - 1 - i];
    if ((t->n && text_put(t, ":", 1) < 0) || text_value(t, level->px) < 0 ||
        text_put(t, ":", 1) < 0)
        return -1;
    return text_value(t, level->sz);
}

static PyObject *CrcBook_checksum(CrcBook *self, PyObject *Py_UNUSED(ignored)) {
    if (self->broken)
        Py_RETURN_NONE; /* equal to no venue checksum: the rule resyncs */
    Text t;
    t.p = t.stack;
    t.n = 0;
    t.cap = sizeof(t.stack);
    int rc = 0;
    if (self->interleave) {
        for (Py_ssize_t i = 0; rc == 0 && i < self->depth; i++)
            for (int s = 0; rc == 0 && s < 2; s++)
                rc = text_level(self, s, i, &t);
    } else {
        for (int s = 0; rc == 0 && s < 2; s++)
            for (Py_ssize_t i = 0; rc == 0 && i < self->depth; i++)
                rc = text_level(self, s, i, &t);
    }
    PyObject *out = NULL;
    if (rc == 0) {
        PyObject *view = PyMemoryView_FromMemory(t.p, t.n, PyBUF_READ);
        PyObject *crc = view ? PyObject_CallOneArg(zlib_crc32, view) : NULL;
        Py_XDECREF(view);
        if (crc) {
            unsigned long v = PyLong_AsUnsignedLong(crc);
            Py_DECREF(crc);
            if (!(v == (unsigned long)-1 && PyErr_Occurred()))
                out = PyLong_FromLong((long)(int32_t)(uint32_t)v);
        }
    }
    if (t.p != t.stack)
        PyMem_Free(t.p);
    return out;
}

static void clear_side(Book *b) {
    for (Py_ssize_t i = 0; i < b->n; i++) {
        Py_DECREF(b->e[i].px);
        Py_DECREF(b->e[i].sz);
    }
    b->n = 0;
}

static int CrcBook_init(CrcBook *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"bids", "asks", "depth", "interleave", NULL};
    PyObject *bids, *asks;
    self->depth = CHECKSUM_LEVELS;
    self->interleave = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|np:CrcBook", names, &bids, &asks,
                                     &self->depth, &self->interleave))
        return -1;
    clear_side(&self->side[0]);
    clear_side(&self->side[1]);
    self->broken = 0;
    PyObject *pair[2] = {bids, asks};
    return CrcBook_apply(self, pair, 2) ? 0 : -1;
}

static void CrcBook_dealloc(CrcBook *self) {
    for (int s = 0; s < 2; s++) {
        clear_side(&self->side[s]);
        PyMem_Free(self->side[s].e);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *CrcBook_levels(CrcBook *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyTuple_New(2);
    for (int s = 0; out && s < 2; s++) {
        Book *b = &self->side[s];
        PyObject *list = PyList_New(b->n);
        if (!list) {
            Py_CLEAR(out);
            break;
        }
        for (Py_ssize_t i = 0; i < b->n; i++) {
            Entry *level = &b->e[b->n - 1 - i]; /* best first */
            PyObject *t = PyTuple_Pack(2, level->px, level->sz);
            if (!t) {
                Py_DECREF(list);
                Py_CLEAR(out);
                return NULL;
            }
            PyList_SET_ITEM(list, i, t);
        }
        PyTuple_SET_ITEM(out, s, list);
    }
    return out;
}

static PyMethodDef CrcBook_methods[] = {
    {"apply", (PyCFunction)(void (*)(void))CrcBook_apply, METH_FASTCALL,
     "apply(bids, asks): absolute sizes as sent; a zero size deletes"},
    {"checksum", (PyCFunction)CrcBook_checksum, METH_NOARGS,
     "signed CRC32 of the top levels as the venue computes it; None after a NaN price"},
    {"levels", (PyCFunction)CrcBook_levels, METH_NOARGS,
     "([(px, sz), ...] bids, [...] asks), best first, as sent"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CrcBookType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine.venues._levels.CrcBook",
    .tp_basicsize = sizeof(CrcBook),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CrcBook(bids, asks, depth=25, interleave=True): a book of wire strings and the "
              "signed CRC32 of its top depth levels (OKX interleaves; CoinEx: bids, then asks).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)CrcBook_init,
    .tp_dealloc = (destructor)CrcBook_dealloc,
    .tp_methods = CrcBook_methods,
};

int lv_checksum_init(PyObject *module) {
    PyObject *zlib = PyImport_ImportModule("zlib");
    if (!zlib)
        return -1;
    zlib_crc32 = PyObject_GetAttrString(zlib, "crc32");
    Py_DECREF(zlib);
    PyObject *orjson = PyImport_ImportModule("orjson");
    if (!orjson)
        return -1;
    json_loads = PyObject_GetAttrString(orjson, "loads");
    Py_DECREF(orjson);
    if (!zlib_crc32 || !json_loads)
        return -1;
    if (PyType_Ready(&CrcBookType) < 0)
        return -1;
    Py_INCREF(&CrcBookType);
    if (PyModule_AddObject(module, "CrcBook", (PyObject *)&CrcBookType) < 0) {
        Py_DECREF(&CrcBookType);
        return -1;
    }
    return 0;
}
