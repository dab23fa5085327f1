/* InfluxDB line protocol's plain lines parsed straight into columns (lineproto.py calls it).

`parse(body, mul, div, now_us, seed)` takes a body in which no line needs unescaping: no
backslash, no double quote (so no string field), no tab or carriage return. Each line is

    key field=value[,field=value...][ timestamp]

split at single spaces exactly as lineproto.parse_lines splits a simple body (blank lines and
lines starting with `#` skipped), and returns

    (keys, names, pair, time, value, line, lines)

`keys` and `names` the bytes of each distinct (series part, field key) as sent, in order of
first sight (lineproto.py finds their series in its cache, or learns them: the series part's
syntax and UTF-8 are checked there, once per distinct pair); `pair` (int32), `time` (int64,
microseconds: the timestamp times `mul` floor-divided by `div`, or `now_us` where there is
none), `value` (float64) and `line` (int32, 1-based) one row per field, in bytearrays that numpy
wraps without a copy; `lines` the lines that hold points.

Anything else returns None, and the Python paths decide and word every problem: a line that is
not three or two space-separated parts (or has a leading, trailing or doubled space), an empty
field key or value, a field without `=` or with two, a timestamp that is not an integer or is
out of range for its precision, and a value that is not one the vendor's grammar gives a
number: a float as lineproto's value_of takes it (`-`? digits with an optional fraction, or a
fraction alone, an optional exponent; finite), an integer `12i` (signed 64-bit), an unsigned
`12u` (64-bit), a boolean (`t`, `true`, `F`, ...). Floats are converted by
PyOS_string_to_double, Python's own correctly rounded strtod (what float() calls), integers by
the correctly rounded conversion of C, as float(int) rounds; an integer zero is 0.0, as the
loop's bulk decoding makes `-0`. Every read is bounded by the
body's length: this parses network input.

Pairs are found in a hash table whose hash is keyed per process (`seed`, from lineproto.py's
secrets) and whose probes are bounded: a body of many names hashing alike goes to the Python
paths, whose dicts hash with Python's keyed SipHash, rather than making this quadratic. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../parsing.h"

#define MAX_NUMBER_CHARS 1100 /* a longer float token goes to the Python paths */
#define MAX_INT64 INT64_MAX

typedef struct {
    const char *key, *name; /* into the body, which outlives the call */
    Py_ssize_t key_size, name_size;
    uint64_t hash;
    int32_t pair; /* -1: slot empty */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask, used;
    uint64_t seed;
    PyObject *keys, *names; /* lists: the bytes of each pair */
} Pairs;

typedef struct {
    PyObject *pair, *time, *value, *line; /* bytearrays, `rows` allocated, `n` written */
    Py_ssize_t rows, n;
} Columns;

static int pairs_resize(Pairs *t, size_t size) {
    Slot *slots = PyMem_Malloc(size * sizeof(Slot));
    if (!slots) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < size; i++)
        slots[i].pair = -1;
    if (t->slots) {
        for (size_t i = 0; i <= t->mask; i++) {
            if (t->slots[i].pair < 0)
                continue;
            size_t j = t->slots[i].hash & (size - 1);
            while (slots[j].pair >= 0)
                j = (j + 1) & (size - 1);
            slots[j] = t->slots[i];
        }
        PyMem_Free(t->slots);
    }
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* The index of the pair (key, name), added the first time it is seen. */
static Outcome pair_of(Pairs *t, const char *key, Py_ssize_t key_size, uint64_t key_hash,
                       const char *name, Py_ssize_t name_size, int32_t *out) {
    uint64_t h = hash_bytes(key_hash, name, name_size);
    size_t j = h & t->mask;
    for (int probes = 0;; j = (j + 1) & t->mask) {
        Slot *s = &t->slots[j];
        if (s->pair < 0)
            break;
        if (++probes > MAX_PROBES)
            return DEFER;
        if (s->hash == h && s->key_size == key_size && s->name_size == name_size &&
            memcmp(s->key, key, (size_t)key_size) == 0 &&
            memcmp(s->name, name, (size_t)name_size) == 0) {
            *out = s->pair;
            return OK;
        }
    }
    Py_ssize_t number = PyList_GET_SIZE(t->keys);
    if (number >= INT32_MAX)
        return DEFER;
    PyObject *k = PyBytes_FromStringAndSize(key, key_size);
    if (!k)
        return FAILED;
    int failed = PyList_Append(t->keys, k);
    Py_DECREF(k);
    PyObject *n = failed ? NULL : PyBytes_FromStringAndSize(name, name_size);
    if (!n)
        return FAILED;
    failed = PyList_Append(t->names, n);
    Py_DECREF(n);
    if (failed)
        return FAILED;
    t->slots[j] = (Slot){key, name, key_size, name_size, h, (int32_t)number};
    *out = (int32_t)number;
    if (++t->used * 2 > t->mask + 1 && pairs_resize(t, 2 * (t->mask + 1)) < 0)
        return FAILED;
    return OK;
}

static int is_digits(const char *p, const char *end) {
    if (p >= end)
        return 0;
    for (; p < end; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* Digits as an unsigned number at most `limit`; 0 past it. */
static int digits_at_most(const char *p, const char *end, uint64_t limit, uint64_t *out) {
    uint64_t acc = 0;
    for (; p < end; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (acc > (limit - d) / 10)
            return 0;
        acc = acc * 10 + d;
    }
    *out = acc;
    return 1;
}

static const struct {
    const char *text;
    Py_ssize_t size;
    double value;
} BOOLS[] = {{"t", 1, 1.0},     {"T", 1, 1.0},     {"true", 4, 1.0}, {"True", 4, 1.0},
             {"TRUE", 4, 1.0},  {"f", 1, 0.0},     {"F", 1, 0.0},    {"false", 5, 0.0},
             {"False", 5, 0.0}, {"FALSE", 5, 0.0}};

/* A float token as value_of takes it: `-`? (digits [. digits*] | . digits) ([eE] [+-]? digits)? */
static int float_syntax(const char *p, const char *end) {
    if (p < end && *p == '-')
        p++;
    const char *whole = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    int digits = p > whole;
    if (p < end && *p == '.') {
        const char *fraction = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        digits |= p > fraction;
    }
    if (!digits)
        return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *exponent = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == exponent)
            return 0;
    }
    return p == end;
}

static Outcome value_of(const char *p, const char *end, double *out) {
    Py_ssize_t size = end - p;
    char last = end[-1];
    uint64_t number;
    if (last == 'i') {
        int negative = *p == '-';
        if (!is_digits(p + negative, end - 1) ||
            !digits_at_most(p + negative, end - 1, (uint64_t)MAX_INT64 + negative, &number))
            return DEFER;
        *out = negative ? (double)(int64_t)(0 - number) : (double)(int64_t)number;
        return OK;
    }
    if (last == 'u') {
        if (!is_digits(p, end - 1) || !digits_at_most(p, end - 1, UINT64_MAX, &number))
            return DEFER;
        *out = (double)number;
        return OK;
    }
    for (size_t i = 0; i < sizeof(BOOLS) / sizeof(BOOLS[0]); i++) {
        if (BOOLS[i].size == size && memcmp(BOOLS[i].text, p, (size_t)size) == 0) {
            *out = BOOLS[i].value;
            return OK;
        }
    }
    if (size > MAX_NUMBER_CHARS || !float_syntax(p, end))
        return DEFER;
    char text[MAX_NUMBER_CHARS + 1];
    memcpy(text, p, (size_t)size);
    text[size] = '\0';
    char *stop;
    double value = PyOS_string_to_double(text, &stop, NULL);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return FAILED;
        PyErr_Clear();
        return DEFER;
    }
    if (stop != text + size || !isfinite(value))
        return DEFER;
    /* `-0` as an integer is 0.0, as the loop's bulk decoding (a JSON array) makes it. */
    if (value == 0.0 && !memchr(p, '.', (size_t)size) && !memchr(p, 'e', (size_t)size) &&
        !memchr(p, 'E', (size_t)size))
        value = 0.0;
    *out = value;
    return OK;
}

/* The timestamp in microseconds, as lineproto's timestamp_of makes it. */
static Outcome time_of(const char *p, const char *end, int64_t mul, int64_t div, int64_t *out) {
    int negative = *p == '-';
    uint64_t raw;
    if (!is_digits(p + negative, end) ||
        !digits_at_most(p + negative, end, (uint64_t)MAX_INT64, &raw))
        return DEFER;
    __int128 scaled = (__int128)(negative ? -(int64_t)raw : (int64_t)raw) * mul;
    __int128 q = scaled / div;
    if ((scaled % div != 0) && ((scaled < 0) != (div < 0)))
        q -= 1; /* Python's floor division */
    if (q > MAX_INT64 || q < -MAX_INT64)
        return DEFER;
    *out = (int64_t)q;
    return OK;
}

static int columns_grow(Columns *c) {
    Py_ssize_t rows = c->rows * 2 + 64;
    if (PyByteArray_Resize(c->pair, 4 * rows) < 0 || PyByteArray_Resize(c->time, 8 * rows) < 0 ||
        PyByteArray_Resize(c->value, 8 * rows) < 0 || PyByteArray_Resize(c->line, 4 * rows) < 0)
        return -1;
    c->rows = rows;
    return 0;
}

static Outcome parse_body(const char *p, const char *end, int64_t mul, int64_t div, int64_t now,
                          Pairs *pairs, Columns *c, Py_ssize_t *lines) {
    if (memchr(p, '\\', (size_t)(end - p)) || memchr(p, '"', (size_t)(end - p)) ||
        memchr(p, '\t', (size_t)(end - p)) || memchr(p, '\r', (size_t)(end - p)))
        return DEFER;
    int32_t number = 0;
    while (p <= end) {
        if (number == INT32_MAX)
            return DEFER;
        number++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (stop == p || *p == '#')
            goto next;
        ++*lines;
        const char *space = memchr(p, ' ', (size_t)(stop - p));
        if (!space || space == p)
            return DEFER;
        const char *key = p;
        Py_ssize_t key_size = space - p;
        uint64_t key_hash = hash_bytes(pairs->seed, key, key_size);
        const char *fields = space + 1;
        const char *fields_end = memchr(fields, ' ', (size_t)(stop - fields));
        int64_t time = now;
        if (fields_end) {
            const char *stamp = fields_end + 1;
            if (stamp == stop || memchr(stamp, ' ', (size_t)(stop - stamp)))
                return DEFER;
            Outcome got = time_of(stamp, stop, mul, div, &time);
            if (got != OK)
                return got;
        } else {
            fields_end = stop;
        }
        if (fields_end == fields)
            return DEFER;
        for (const char *f = fields; f <= fields_end;) {
            const char *comma = memchr(f, ',', (size_t)(fields_end - f));
            const char *field_end = comma ? comma : fields_end;
            const char *eq = memchr(f, '=', (size_t)(field_end - f));
            if (!eq || eq == f || eq + 1 == field_end ||
                memchr(eq + 1, '=', (size_t)(field_end - eq - 1)))
                return DEFER;
            double value;
            int32_t pair;
            Outcome got = value_of(eq + 1, field_end, &value);
            if (got == OK)
                got = pair_of(pairs, key, key_size, key_hash, f, eq - f, &pair);
            if (got != OK)
                return got;
            if (c->n == c->rows && columns_grow(c) < 0)
                return FAILED;
            ((int32_t *)PyByteArray_AS_STRING(c->pair))[c->n] = pair;
            ((int64_t *)PyByteArray_AS_STRING(c->time))[c->n] = time;
            ((double *)PyByteArray_AS_STRING(c->value))[c->n] = value;
            ((int32_t *)PyByteArray_AS_STRING(c->line))[c->n] = number;
            c->n++;
            f = field_end + 1;
        }
    next:
        if (!nl)
            break;
        p = nl + 1;
    }
    return OK;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer body;
    long long mul, div, now;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "y*LLLK", &body, &mul, &div, &now, &seed))
        return NULL;
    PyObject *result = NULL;
    Pairs pairs = {NULL, 0, 0, (uint64_t)seed, PyList_New(0), PyList_New(0)};
    Columns c = {PyByteArray_FromStringAndSize(NULL, 0), PyByteArray_FromStringAndSize(NULL, 0),
                 PyByteArray_FromStringAndSize(NULL, 0), PyByteArray_FromStringAndSize(NULL, 0),
                 0, 0};
    Py_ssize_t lines = 0;
    if (mul <= 0 || div <= 0) {
        PyErr_SetString(PyExc_ValueError, "mul and div must be positive");
        goto done;
    }
    if (!pairs.keys || !pairs.names || !c.pair || !c.time || !c.value || !c.line ||
        pairs_resize(&pairs, 64) < 0)
        goto done;
    const char *p = body.buf;
    Outcome got = parse_body(p, p + body.len, mul, div, now, &pairs, &c, &lines);
    if (got == FAILED)
        goto done;
    if (got == DEFER) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (PyByteArray_Resize(c.pair, 4 * c.n) < 0 || PyByteArray_Resize(c.time, 8 * c.n) < 0 ||
        PyByteArray_Resize(c.value, 8 * c.n) < 0 || PyByteArray_Resize(c.line, 4 * c.n) < 0)
        goto done;
    result = Py_BuildValue("(OOOOOOn)", pairs.keys, pairs.names, c.pair, c.time, c.value, c.line,
                           lines);
done:
    PyMem_Free(pairs.slots);
    Py_XDECREF(pairs.keys);
    Py_XDECREF(pairs.names);
    Py_XDECREF(c.pair);
    Py_XDECREF(c.time);
    Py_XDECREF(c.value);
    Py_XDECREF(c.line);
    PyBuffer_Release(&body);
    return result;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS,
     "parse(body, mul, div, now_us, seed) -> (keys, names, pair, time, value, line, lines) or "
     "None: plain line-protocol lines as columns (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sensorbase.dialects.influx._lines",
    .m_doc = "InfluxDB line protocol's plain lines parsed straight into columns.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__lines(void) { return PyModule_Create(&module); }
