/* Book sides and their input for the compiled book core: sorted C arrays
 * (best last), level validation, and the conversion of level lists or
 * float64 buffers to C doubles. No shared memory here (see _core.c). */
#include "_core.h"

const double SIGN[2] = {1.0, -1.0};

/* ------------------------------------------------------------ sides */

int side_reserve(Side *s, Py_ssize_t need) {
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

void bad_level(PyObject *error, double px, double sz) {
    char *p = PyOS_double_to_string(px, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    char *s = PyOS_double_to_string(sz, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    PyErr_Format(error, "bad level price=%s size=%s", p ? p : "?", s ? s : "?");
    PyMem_Free(p);
    PyMem_Free(s);
}

/* Apply absolute sizes to one side; *dirty = first top-N slot (counted from
 * the best) that changed. Returns 0, -1 on a memory error, or 1 + index of the
 * first bad level (the levels before it stay applied, as in the reference). */
Py_ssize_t side_apply(Side *s, const Lv *lv, Py_ssize_t n, double sign, Py_ssize_t depth,
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

void input_release(Input *in) {
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
int load_levels(PyObject *levels, Lv *buf, Input *in) {
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

static int entry_cmp(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Sorted, de-duplicated (the last listing of a price wins), zero sizes left out. */
Py_ssize_t build_side(const Lv *lv, Py_ssize_t n, double sign, Entry **out) {
    Entry *e = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
    if (!e) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t m = 0;
    int ascending = 1, descending = 1; /* strictly; venues list one side best first */
    for (Py_ssize_t j = 0; j < n; j++) {
        if (lv[j].sz > 0.0) {
            e[m].key = sign * lv[j].px;
            e[m].sz = lv[j].sz;
            e[m].order = j;
            if (m) {
                ascending &= e[m - 1].key < e[m].key;
                descending &= e[m - 1].key > e[m].key;
            }
            m++;
        }
    }
    if (descending && !ascending) {
        for (Py_ssize_t i = 0, j = m - 1; i < j; i++, j--) {
            Entry t = e[i];
            e[i] = e[j];
            e[j] = t;
        }
    } else if (!ascending) {
        qsort(e, (size_t)m, sizeof(Entry), entry_cmp);
    }
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
