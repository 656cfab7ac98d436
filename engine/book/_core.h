/* Shared declarations of the compiled book core (engine.book._core): the
 * per-book C state and the helpers _core_sides.c gives _core.c. Layout
 * constants mirror engine/book/layout.py. */
#ifndef ENGINE_BOOK_CORE_H
#define ENGINE_BOOK_CORE_H
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
    Side side[2]; /* 0: bids (key = price), 1: asks (key = -price) */
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

extern const double SIGN[2]; /* key = SIGN[side] * price, and back */
/* Levels converted to C before a book is touched: conversion may run Python
 * code (and switch threads), the update after it never does. */
typedef struct {
    Lv *lv;
    Py_ssize_t n;
    Lv *owned;      /* a PyMem block when the stack buffer was too small */
    Py_buffer view; /* a float64 (n, 2) buffer read in place (view.obj set) */
} Input;

typedef struct {
    double key, sz;
    Py_ssize_t order;
} Entry;

static inline int level_ok(double px, double sz) {
    return 0.0 < px && px < INFINITY && 0.0 <= sz && sz < INFINITY;
}

int side_reserve(Side *s, Py_ssize_t need);
Py_ssize_t side_apply(Side *s, const Lv *lv, Py_ssize_t n, double sign, Py_ssize_t depth,
                      Py_ssize_t *dirty);
Py_ssize_t build_side(const Lv *lv, Py_ssize_t n, double sign, Entry **out);
void bad_level(PyObject *error, double px, double sz);
int load_levels(PyObject *levels, Lv *buf, Input *in);
void input_release(Input *in);
int add_reader_type(PyObject *module);

#endif
