/* Shared declarations of engine.venues._levels: the JSON number and level
 * array scanners of _levels.c, used by the whole-frame decoders and the
 * object maker of _frames.c. */
#ifndef ENGINE_VENUES_LEVELS_H
#define ENGINE_VENUES_LEVELS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A JSON number, optionally quoted, to a double; NULL if refused. */
const char *lv_number(const char *p, const char *end, double *out);
/* A JSON array of [price, size] pairs to a new Levels; see _levels.c. */
const char *lv_array(const char *p, const char *end, PyObject **out, int extra);
/* A JSON string without escapes or non-ASCII; [*s, *e) its content; NULL if not one. */
const char *lv_plain_string(const char *p, const char *end, const char **s, const char **e);
/* Skip a plain scalar (string without escapes, number, literal); NULL if not one. */
const char *lv_skip_scalar(const char *p, const char *end);

PyObject *lv_binance_depth(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
int lv_frames_init(PyObject *module);
int lv_checksum_init(PyObject *module);

#endif
