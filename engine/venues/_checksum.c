/* The OKX checksum shadow book in C (CrcBook): the book as the venue's wire
 * strings, sorted best first, and the signed CRC32 of its top 25 levels
 * interleaved ("bid1px:bid1sz:ask1px:ask1sz:..."). Same interface and results
 * as okx._PyShadow, the Python reference it replaces on the hot path
 * (tests/venues/test_checksum_c.py drives both with the same levels).
 *
 * Levels are sequences whose items 0 and 1 are the price and size as sent
 * (str, or any number for float()); a price is read as float() reads it (a
 * plain decimal in C, anything else by float() itself). A NaN price raises
 * ValueError: no order exists at it, and the book writer refuses it too.
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
} CrcBook;

static uint32_t CRC_TABLE[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        CRC_TABLE[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const char *p, Py_ssize_t n) {
    crc = ~crc;
    for (Py_ssize_t i = 0; i < n; i++)
        crc = CRC_TABLE[(crc ^ (unsigned char)p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
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

static int apply_side(Book *b, PyObject *levels, double sign) {
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
        if (isnan(price)) {
            Py_DECREF(px);
            Py_DECREF(sz);
            PyErr_SetString(PyExc_ValueError, "NaN price in a checksummed book");
            goto done;
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
    if (apply_side(&self->side[0], args[0], 1.0) < 0 ||
        apply_side(&self->side[1], args[1], -1.0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* CRC over one wire value as the f-string would render it. */
static int crc_value(uint32_t *crc, PyObject *v) {
    Py_ssize_t n;
    const char *s;
    if (PyUnicode_CheckExact(v)) {
        if (!(s = PyUnicode_AsUTF8AndSize(v, &n)))
            return -1;
        *crc = crc_update(*crc, s, n);
        return 0;
    }
    PyObject *text = PyObject_Format(v, NULL);
    if (!text)
        return -1;
    s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s)
        *crc = crc_update(*crc, s, n);
    Py_DECREF(text);
    return s ? 0 : -1;
}

static PyObject *CrcBook_checksum(CrcBook *self, PyObject *Py_UNUSED(ignored)) {
    uint32_t crc = 0;
    int first = 1;
    for (Py_ssize_t i = 0; i < CHECKSUM_LEVELS; i++) {
        for (int s = 0; s < 2; s++) {
            Book *b = &self->side[s];
            if (i >= b->n)
                continue;
            Entry *level = &b->e[b->n - 1 - i]; /* the i-th best */
            if (!first)
                crc = crc_update(crc, ":", 1);
            first = 0;
            if (crc_value(&crc, level->px) < 0)
                return NULL;
            crc = crc_update(crc, ":", 1);
            if (crc_value(&crc, level->sz) < 0)
                return NULL;
        }
    }
    return PyLong_FromLong((long)(int32_t)crc);
}

static int CrcBook_init(CrcBook *self, PyObject *args, PyObject *kwargs) {
    PyObject *bids, *asks;
    if (!PyArg_ParseTuple(args, "OO:CrcBook", &bids, &asks))
        return -1;
    PyObject *pair[2] = {bids, asks};
    return CrcBook_apply(self, pair, 2) ? 0 : -1;
}

static void clear_side(Book *b) {
    for (Py_ssize_t i = 0; i < b->n; i++) {
        Py_DECREF(b->e[i].px);
        Py_DECREF(b->e[i].sz);
    }
    b->n = 0;
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
     "signed CRC32 of the top 25 levels, interleaved, as the venue computes it"},
    {"levels", (PyCFunction)CrcBook_levels, METH_NOARGS,
     "([(px, sz), ...] bids, [...] asks), best first, as sent"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CrcBookType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine.venues._levels.CrcBook",
    .tp_basicsize = sizeof(CrcBook),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CrcBook(bids, asks): a book of wire strings for the OKX checksum.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)CrcBook_init,
    .tp_dealloc = (destructor)CrcBook_dealloc,
    .tp_methods = CrcBook_methods,
};

int lv_checksum_init(PyObject *module) {
    crc_init();
    if (PyType_Ready(&CrcBookType) < 0)
        return -1;
    Py_INCREF(&CrcBookType);
    if (PyModule_AddObject(module, "CrcBook", (PyObject *)&CrcBookType) < 0) {
        Py_DECREF(&CrcBookType);
        return -1;
    }
    return 0;
}
