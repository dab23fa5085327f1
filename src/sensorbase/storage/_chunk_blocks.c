/* A chunk's values scaled to integers and its compact blocks blob, each in one pass over its
columns (storage/chunks.py calls them when a fold encodes a chunk; its numpy path is what runs
where this was not built, and what this must equal, bit for bit).

A fold encodes a chunk of ~1,000 points in ~40 numpy calls of a few microseconds each around
the compression itself: on bench.py's fleet the fold helper spent more of its time in those
calls than in pcodec.

`scaled(values, most_decimals)`: `values` float64 (native-endian, e.g. a numpy array). The
fewest decimal places d (0 to `most_decimals`) such that every value v is round(v * 10^d) /
10^d exactly, bit for bit (round half to even, as numpy's round; the quotient as numpy's
int64 / float64, a plain division; for d = 0 the integer as a double), with |round(v * 10^d)|
< 2^53: then (d, the integers as int64 bytes, the largest |integer|); else (-1, None, 0).

`regular(times)`: whether int64 `times` are all one step apart (fewer than 3, or every second
difference 0, in int64's wrapping arithmetic, as numpy's np.diff(times, 2)).

`compact_numbers(decimals, times, stored, block_points, sizes)`: the zigzag LEB128 varints
of the compact blocks blob (block_summaries.py says what they are), less its first word:
`times` and `stored` int64 of one length (every |stored| < 2^40, so that no sum leaves int64),
`sizes` the list of the time column's model and page sizes, then the value column's. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MOST_DECIMALS 15
static const double POWERS[MOST_DECIMALS + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};
#define EXACT_BELOW 9007199254740992.0 /* 2^53 */

static int column(PyObject *object, Py_buffer *view, const char *kind, Py_ssize_t item) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *format = view->format ? view->format : "B";
    if (*format == '@' || *format == '=') {
        format++;
    }
    int ok = view->itemsize == item && (strchr(kind, *format) != NULL) && format[1] == '\0';
    if (!ok) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "expected a contiguous buffer of %s", kind);
        return -1;
    }
    return 0;
}

/* Whether every value holds at `d` decimals; `ints` gets the integers, `largest` the
largest |integer|. */
static int holds(const double *v, Py_ssize_t n, int d, int64_t *ints, double *largest) {
    double power = POWERS[d];
    double most = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double s = nearbyint(v[i] * power);
        if (!(fabs(s) < EXACT_BELOW)) {
            return 0;
        }
        int64_t k = (int64_t)s;
        double back = d == 0 ? (double)k : (double)k / power;
        if (memcmp(&back, &v[i], sizeof(double)) != 0) {
            return 0;
        }
        ints[i] = k;
        if (fabs(s) > most) {
            most = fabs(s);
        }
    }
    *largest = most;
    return 1;
}

static PyObject *scaled(PyObject *self, PyObject *args) {
    PyObject *values;
    int most_decimals;
    if (!PyArg_ParseTuple(args, "Oi", &values, &most_decimals)) {
        return NULL;
    }
    if (most_decimals < 0 || most_decimals > MOST_DECIMALS) {
        PyErr_SetString(PyExc_ValueError, "most_decimals must be 0 to 15");
        return NULL;
    }
    Py_buffer view;
    if (column(values, &view, "d", sizeof(double)) < 0) {
        return NULL;
    }
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(double);
    const double *v = view.buf;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *ints = (int64_t *)PyBytes_AS_STRING(out);
    double largest = 0.0;
    int found = -1;
    Py_BEGIN_ALLOW_THREADS
    /* The first values first: a chunk of arbitrary floats fails at once, and each d is
    tried on them before all. */
    Py_ssize_t few = n < 8 ? n : 8;
    for (int d = 0; d <= most_decimals; d++) {
        if (holds(v, few, d, ints, &largest) && holds(v, n, d, ints, &largest)) {
            found = d;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (found < 0) {
        Py_DECREF(out);
        return Py_BuildValue("iOi", -1, Py_None, 0);
    }
    PyObject *result = Py_BuildValue("iNL", found, out, (long long)largest);
    return result;
}

static PyObject *regular(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (column(arg, &view, "qlL", sizeof(int64_t)) < 0) {
        return NULL;
    }
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(int64_t);
    const uint64_t *t = view.buf; /* unsigned: numpy's wrapping differences */
    int same = 1;
    for (Py_ssize_t i = 0; i + 2 < n && same; i++) {
        same = t[i + 2] - t[i + 1] == t[i + 1] - t[i];
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(same);
}

typedef struct {
    unsigned char *at;
} Out;

static void varint(Out *out, int64_t x) {
    uint64_t u = x < 0 ? ((~(uint64_t)x) << 1) | 1 : (uint64_t)x << 1;
    while (u >= 0x80) {
        *out->at++ = (unsigned char)((u & 0x7F) | 0x80);
        u >>= 7;
    }
    *out->at++ = (unsigned char)u;
}

static int64_t wrapped(uint64_t x) { /* two's complement, as numpy's int64 */
    int64_t y;
    memcpy(&y, &x, sizeof y);
    return y;
}

static PyObject *compact_numbers(PyObject *self, PyObject *args) {
    int decimals;
    PyObject *times_object, *stored_object, *sizes;
    Py_ssize_t block_points;
    if (!PyArg_ParseTuple(args, "iOOnO!", &decimals, &times_object, &stored_object,
                          &block_points, &PyList_Type, &sizes)) {
        return NULL;
    }
    if (block_points <= 0) {
        PyErr_SetString(PyExc_ValueError, "block_points must be positive");
        return NULL;
    }
    Py_buffer tv, sv;
    if (column(times_object, &tv, "qlL", sizeof(int64_t)) < 0) {
        return NULL;
    }
    if (column(stored_object, &sv, "qlL", sizeof(int64_t)) < 0) {
        PyBuffer_Release(&tv);
        return NULL;
    }
    Py_ssize_t n = tv.len / (Py_ssize_t)sizeof(int64_t);
    PyObject *bytes = NULL;
    if (sv.len != tv.len || n == 0) {
        PyErr_SetString(PyExc_ValueError, "times and stored must be of one length, not 0");
        goto done;
    }
    const uint64_t *t = tv.buf;
    const int64_t *v = sv.buf;
    Py_ssize_t blocks = (n + block_points - 1) / block_points;
    Py_ssize_t n_sizes = PyList_GET_SIZE(sizes);
    /* at most 10 bytes a varint: 3, 2 a block, the sizes, 5 a block */
    bytes = PyBytes_FromStringAndSize(NULL, 10 * (3 + 7 * blocks + n_sizes));
    if (bytes == NULL) {
        goto done;
    }
    Out out = {(unsigned char *)PyBytes_AS_STRING(bytes)};
    uint64_t step = n > 1 ? t[1] - t[0] : 0;
    varint(&out, decimals);
    varint(&out, wrapped(t[0]));
    varint(&out, wrapped(step));
    for (Py_ssize_t b = 0; b < blocks; b++) {
        Py_ssize_t start = b * block_points;
        Py_ssize_t end = start + block_points < n ? start + block_points - 1 : n - 1;
        uint64_t count = (uint64_t)(end - start + 1);
        uint64_t gap = b == 0 ? 0 : t[start] - t[start - 1] - step;
        varint(&out, wrapped(gap));
        varint(&out, wrapped(t[end] - t[start] - (count - 1) * step));
    }
    for (Py_ssize_t i = 0; i < n_sizes; i++) {
        long long size = PyLong_AsLongLong(PyList_GET_ITEM(sizes, i));
        if (size == -1 && PyErr_Occurred()) {
            Py_CLEAR(bytes);
            goto done;
        }
        varint(&out, size);
    }
    int64_t previous = 0;
    for (Py_ssize_t b = 0; b < blocks; b++) {
        Py_ssize_t start = b * block_points;
        Py_ssize_t end = start + block_points < n ? start + block_points - 1 : n - 1;
        int64_t mn = v[start], mx = v[start];
        uint64_t sum = 0; /* (unsigned: wrapping as numpy's, never undefined) */
        for (Py_ssize_t i = start; i <= end; i++) {
            mn = v[i] < mn ? v[i] : mn;
            mx = v[i] > mx ? v[i] : mx;
            sum += (uint64_t)v[i];
        }
        int64_t first = v[start], last = v[end];
        int64_t low = first < last ? first : last, high = first < last ? last : first;
        uint64_t count = (uint64_t)(end - start + 1);
        varint(&out, wrapped((uint64_t)first - (uint64_t)previous));
        varint(&out, wrapped((uint64_t)last - (uint64_t)first));
        varint(&out, wrapped((uint64_t)low - (uint64_t)mn));
        varint(&out, wrapped((uint64_t)mx - (uint64_t)high));
        varint(&out, wrapped(2 * sum - count * ((uint64_t)first + (uint64_t)last)));
        previous = last;
    }
    if (_PyBytes_Resize(&bytes, out.at - (unsigned char *)PyBytes_AS_STRING(bytes)) < 0) {
        bytes = NULL;
    }
done:
    PyBuffer_Release(&tv);
    PyBuffer_Release(&sv);
    return bytes;
}

static PyMethodDef methods[] = {
    {"scaled", scaled, METH_VARARGS, "The fewest decimals that hold the values, and them."},
    {"regular", regular, METH_O, "Whether the times are all one step apart."},
    {"compact_numbers", compact_numbers, METH_VARARGS, "The compact blocks blob's varints."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sensorbase.storage._chunk_blocks",
    .m_doc = "A chunk's values scaled and its compact blocks blob, each in one pass.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__chunk_blocks(void) { return PyModule_Create(&module); }
