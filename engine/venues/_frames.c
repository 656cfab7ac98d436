/* Whole-frame decoding for the drivers' hottest path, and the object maker it
 * builds events with. binance_depth reads a Binance depthUpdate frame (combined
 * stream wrapper or raw event) straight into a BookDelta whose levels are
 * Levels: one C call per frame, no msgspec envelope, no Python __init__.
 *
 * It is only ever a shortcut: it accepts a strict subset of what the typed
 * msgspec path (binance._parse_typed) accepts and builds the same BookDelta
 * from it; for anything else it returns None and the driver's typed, then
 * generic, parser decides (tests/venues/test_frames_c.py checks both agree).
 * Refused: string escapes and non-ASCII, duplicate keys, nested values under
 * keys it does not know, integers outside int64, and "data" beside event keys.
 */
#include "_levels.h"
#include <structmember.h>

#define MAX_SLOTS 16
#define NS_PER_MS 1000000LL

/* ------------------------------------------------------------ SlotMaker */

/* SlotMaker(cls, names)(v0, v1, ...) -> a cls instance with every slot set,
 * without running __init__: for plain slotted dataclasses (no __post_init__,
 * no default computed at init; the Python side checks) whose slots are
 * exactly ``names``. A new field in the class makes the constructor refuse. */
typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    Py_ssize_t n;
    Py_ssize_t off[MAX_SLOTS];
    vectorcallfunc vectorcall;
} SlotMaker;

static PyTypeObject SlotMakerType;

static PyObject *make_instance(SlotMaker *m, PyObject *const *values) {
    PyObject *o = m->cls->tp_alloc(m->cls, 0);
    if (!o)
        return NULL;
    for (Py_ssize_t i = 0; i < m->n; i++) {
        Py_INCREF(values[i]);
        *(PyObject **)((char *)o + m->off[i]) = values[i];
    }
    return o;
}

static PyObject *SlotMaker_call(PyObject *self, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames) {
    SlotMaker *m = (SlotMaker *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != m->n || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_Format(PyExc_TypeError, "%s maker takes exactly %zd positional values",
                     m->cls->tp_name, m->n);
        return NULL;
    }
    return make_instance(m, args);
}

static PyObject *SlotMaker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *cls, *names;
    if (!PyArg_ParseTuple(args, "O!O!:SlotMaker", &PyType_Type, &cls, &PyTuple_Type, &names))
        return NULL;
    PyTypeObject *t = (PyTypeObject *)cls;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (n < 1 || n > MAX_SLOTS ||
        t->tp_basicsize != (Py_ssize_t)sizeof(PyObject) + n * (Py_ssize_t)sizeof(PyObject *) ||
        t->tp_itemsize != 0 || t->tp_base != &PyBaseObject_Type) {
        PyErr_Format(PyExc_TypeError, "%s is not a plain class with exactly these %zd slots",
                     t->tp_name, n);
        return NULL;
    }
    SlotMaker *m = (SlotMaker *)type->tp_alloc(type, 0);
    if (!m)
        return NULL;
    m->n = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyObject_GetAttr(cls, PyTuple_GET_ITEM(names, i));
        int ok = d && Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)d)->d_common.d_type == t &&
                 ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
        if (ok)
            m->off[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_XDECREF(d);
        if (!ok) {
            PyErr_Clear(); /* no such attribute: the same refusal */
            PyErr_Format(PyExc_TypeError, "%R is not an object slot of %s",
                         PyTuple_GET_ITEM(names, i), t->tp_name);
            Py_DECREF(m);
            return NULL;
        }
    }
    Py_INCREF(cls);
    m->cls = t;
    m->vectorcall = SlotMaker_call;
    return (PyObject *)m;
}

static void SlotMaker_dealloc(SlotMaker *m) {
    Py_XDECREF(m->cls);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyTypeObject SlotMakerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine.venues._levels.SlotMaker",
    .tp_basicsize = sizeof(SlotMaker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "SlotMaker(cls, names)(*values): a cls instance with its slots set, no __init__.",
    .tp_new = SlotMaker_new,
    .tp_dealloc = (destructor)SlotMaker_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(SlotMaker, vectorcall),
};

/* ------------------------------------------------------- JSON scanning */

/* A JSON string without escapes or non-ASCII; [*s, *e) its content. */
const char *lv_plain_string(const char *p, const char *end, const char **s, const char **e) {
    if (p >= end || *p != '"')
        return NULL;
    *s = ++p;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == '\\' || c < 0x20 || c >= 0x80)
            return NULL;
        p++;
    }
    if (p >= end)
        return NULL;
    *e = p;
    return p + 1;
}

/* A JSON integer (no fraction or exponent) within int64. */
static const char *json_int(const char *p, const char *end, long long *out) {
    int neg = p < end && *p == '-';
    p += neg;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
        return NULL; /* leading zero */
    unsigned long long v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (9223372036854775808ULL - (unsigned)(*p - '0')) / 10)
            return NULL;
        v = v * 10 + (unsigned)(*p - '0');
        p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return NULL;
    if (!neg && v > 9223372036854775807ULL)
        return NULL;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return p;
}

/* Skip a scalar value (plain string, number, true/false/null); nested: NULL. */
const char *lv_skip_scalar(const char *p, const char *end) {
    const char *s, *e;
    double d;
    if (p >= end)
        return NULL;
    if (*p == '"')
        return lv_plain_string(p, end, &s, &e);
    if (*p == '-' || (*p >= '0' && *p <= '9'))
        return lv_number(p, end, &d);
    static const char *lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(lits[i]);
        if ((size_t)(end - p) >= k && memcmp(p, lits[i], k) == 0)
            return p + k;
    }
    return NULL;
}

static int key_is(const char *s, const char *e, const char *name) {
    size_t k = strlen(name);
    return (size_t)(e - s) == k && memcmp(s, name, k) == 0;
}

/* -------------------------------------------------------- Binance depth */

enum { F_E = 1, F_s = 2, F_U = 4, F_u = 8, F_b = 16, F_a = 32, F_pu = 64, F_e = 128 };
#define F_REQUIRED (F_E | F_s | F_U | F_u | F_b | F_a | F_e)

typedef struct {
    unsigned seen;
    int top_event; /* an event key beside "data" at the top level */
    long long E, U, u, pu;
    const char *sym, *sym_end;
    PyObject *bids, *asks;
} Depth;

/* The members of the object whose '{' was consumed, into d. depth 0: the top
 * level, where "data" holds the event; 1: inside "data". */
static const char *depth_members(const char *p, const char *end, Depth *d, int level,
                                 int *has_data) {
    p = skip_ws(p, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        const char *ks, *ke;
        unsigned flag = 0;
        p = lv_plain_string(skip_ws(p, end), end, &ks, &ke);
        if (!p)
            return NULL;
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':')
            return NULL;
        p = skip_ws(p, end);
        size_t k = (size_t)(ke - ks);
        if (level == 0 && key_is(ks, ke, "data")) {
            if (*has_data || p >= end || *p != '{')
                return NULL;
            *has_data = 1;
            if (!(p = depth_members(p + 1, end, d, 1, has_data)))
                return NULL;
        } else if (k == 1 || (k == 2 && ks[0] == 'p' && ks[1] == 'u')) {
            long long *target = NULL;
            switch (k == 2 ? 'p' : ks[0]) {
            case 'E': flag = F_E; target = &d->E; break;
            case 'U': flag = F_U; target = &d->U; break;
            case 'u': flag = F_u; target = &d->u; break;
            case 'p': flag = F_pu; target = &d->pu; break;
            case 's': flag = F_s; break;
            case 'b': flag = F_b; break;
            case 'a': flag = F_a; break;
            case 'e': flag = F_e; break;
            }
            if (flag && (d->seen & flag))
                return NULL; /* duplicate key */
            if (flag && level == 0)
                d->top_event = 1;
            d->seen |= flag;
            if (target) {
                p = json_int(p, end, target);
            } else if (flag == F_s) {
                p = lv_plain_string(p, end, &d->sym, &d->sym_end);
            } else if (flag == F_e) {
                const char *s, *e;
                p = lv_plain_string(p, end, &s, &e);
                if (p && !key_is(s, e, "depthUpdate"))
                    return NULL; /* a trade or another event: the typed path */
            } else if (flag == F_b || flag == F_a) {
                p = lv_array(p, end, flag == F_b ? &d->bids : &d->asks, 0);
            } else {
                p = lv_skip_scalar(p, end);
            }
            if (!p)
                return NULL;
        } else if (!(p = lv_skip_scalar(p, end))) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        return NULL;
    }
}

static const char *frame_text(PyObject *frame, Py_ssize_t *len) {
    if (PyBytes_Check(frame)) {
        *len = PyBytes_GET_SIZE(frame);
        return PyBytes_AS_STRING(frame);
    }
    if (PyUnicode_Check(frame)) {
        const char *text = PyUnicode_AsUTF8AndSize(frame, len);
        if (!text)
            PyErr_Clear(); /* lone surrogates: the typed path decides */
        return text;
    }
    return NULL;
}

/* binance_depth(frame, delta_maker, pair_of, venue, market, recv_ns) -> BookDelta */
PyObject *lv_binance_depth(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !Py_IS_TYPE(args[1], &SlotMakerType) ||
        ((SlotMaker *)args[1])->n != 11 || !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "binance_depth(frame, delta_maker[11 slots], pair_of: dict, venue, "
                        "market, recv_ns)");
        return NULL;
    }
    Py_ssize_t len;
    const char *p = frame_text(args[0], &len);
    if (!p)
        Py_RETURN_NONE;
    const char *end = p + len;
    Depth d = {0};
    d.pu = -1;
    int has_data = 0;
    PyObject *out = NULL;
    p = skip_ws(p, end);
    if (p < end && *p == '{')
        p = depth_members(p + 1, end, &d, 0, &has_data);
    else
        p = NULL;
    long long exch_ns;
    if (!p || skip_ws(p, end) != end || (d.seen & F_REQUIRED) != F_REQUIRED ||
        (has_data && d.top_event) || __builtin_mul_overflow(d.E, NS_PER_MS, &exch_ns)) {
        if (!PyErr_Occurred())
            out = Py_NewRef(Py_None); /* refused: the typed path decides */
        goto done;
    }
    PyObject *symbol = PyUnicode_FromStringAndSize(d.sym, d.sym_end - d.sym);
    if (!symbol)
        goto done;
    PyObject *pair = PyDict_GetItemWithError(args[2], symbol); /* borrowed */
    if (!pair) {
        if (!PyErr_Occurred())
            out = Py_NewRef(Py_None); /* a new symbol: the typed path caches its pair */
        Py_DECREF(symbol);
        goto done;
    }
    Py_DECREF(symbol);
    PyObject *ints[5] = {PyLong_FromLongLong(d.U), PyLong_FromLongLong(d.u),
                         PyLong_FromLongLong(d.pu), PyLong_FromLongLong(exch_ns), PyDict_New()};
    if (ints[0] && ints[1] && ints[2] && ints[3] && ints[4]) {
        PyObject *values[11] = {args[3], args[4], pair,    d.bids,  d.asks, ints[0],
                                ints[1], ints[2], ints[3], args[5], ints[4]};
        out = make_instance((SlotMaker *)args[1], values);
    }
    for (int i = 0; i < 5; i++)
        Py_XDECREF(ints[i]);
done:
    Py_XDECREF(d.bids);
    Py_XDECREF(d.asks);
    return out;
}

int lv_frames_init(PyObject *module) {
    if (PyType_Ready(&SlotMakerType) < 0)
        return -1;
    Py_INCREF(&SlotMakerType);
    if (PyModule_AddObject(module, "SlotMaker", (PyObject *)&SlotMakerType) < 0) {
        Py_DECREF(&SlotMakerType);
        return -1;
    }
    return 0;
}
