/* The native write's common body decoded straight into columns (fast_decode.py calls it).

The common body: a JSON array of points, or an object {"points": [...], "bucket"?, "source"?},
each point an object of exactly `field` (string), `value` (number), `time` (integer) and, if
any, `bucket` and `source` (string or null), each name once.
`decode(body, max_points, bucket, source, SeriesKey, scale)` returns

    (keys, series_index, time_us, value)

where `keys` are the SeriesKeys of the distinct series, in order of first sight (a body of
NAMED_KEYS_AT series or more: a `Keys` sequence that makes each SeriesKey when asked for, and
hands the series cache the names without them: ingest/series_names.h), each point's
bucket and source defaulted as msgspec's path does (its own, else the body's, else `bucket` and
`source`, the query string's); `series_index` (int32), `time_us` (int64) and `value` (float64)
are one row per point, native-endian, in bytearrays that numpy wraps without a copy. Times are
sent in a precision: `scale` microseconds each (times.PRECISION_US: 0 for nanoseconds, floored
to microseconds as Python's `//` floors), and are returned in microseconds, so that a one-point
write's batch is made without arithmetic in Python.
Names are interned by their raw bytes in a hash table, each distinct (bucket, source, field)
found in a second one; a str is made at most once per distinct name and a SeriesKey once for
each series (with `Keys`, only those asked for), so no Python object is made per point.

Anything else returns None, and the msgspec path and then the general one decide and name every
problem: other shapes and members, a name repeated in an object, escapes in strings (so no
lone surrogate can hide in one), bytes that are not UTF-8, control characters, a time that is
not an integer or is past int64 (or, in microseconds, past int64), a value past float64, an empty field name, no point, more
than `max_points`, a point left without a bucket or source. Only the grammar of JSON (RFC
8259) is accepted, and every read is bounded by the body's length: this parses network input.
It is a fast path only: where it was not built, msgspec's path decodes every body.

Numbers give exactly the float64 of msgspec and of Python's float(): an integer of up to 18
digits is converted from int64 (correctly rounded, and -0 is 0.0 as msgspec makes it), a
decimal whose digits make an integer below 2^53 with a power of ten within 22 by one multiply
or divide (Clinger's fast path: both operands exact, so one correctly rounded operation), any
other by PyOS_string_to_double (Python's own correctly rounded strtod, which ignores the
locale) on a NUL-terminated copy of the token. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../parsing.h"
#include "../../ingest/series_names.h"

#define MAX_NUMBER_CHARS 1100 /* a longer number token goes to the other paths */
#define MIN_POINT_BYTES 31    /* {"field":"","value":0,"time":0}: bounds the first guess of rows */
#define NAME_SEED 0x9E3779B97F4A7C15ull /* the name hash is fixed, not keyed: see MAX_PROBES */

/* --- interning tables ------------------------------------------------------------------- */

typedef struct {
    const char *bytes; /* into the body, which outlives the call */
    Py_ssize_t size;
    uint64_t hash;
    int32_t name; /* index into the list of strs; -1: slot empty */
} Name;

typedef struct {
    Name *slots;
    size_t mask;
    size_t used;
} Names;

typedef struct {
    int32_t bucket, source, field; /* indexes of names; -1: none sent */
    int32_t series;                /* -1: slot empty */
} Triple;

typedef struct {
    Triple *slots;
    size_t mask;
    size_t used;
} Triples;

static uint64_t hash_triple(int32_t b, int32_t s, int32_t f) {
    uint64_t h = ((uint64_t)(uint32_t)b * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(uint32_t)s;
    h = (h * 0xFF51AFD7ED558CCDull) ^ (uint64_t)(uint32_t)f;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 31);
}

/* The table sized for `guess` entries at most half full; it grows when it fills. */
static int names_init(Names *t, size_t guess) {
    size_t size = 16;
    while (size < 2 * guess && size < ((size_t)1 << 20))
        size <<= 1;
    t->slots = PyMem_Malloc(size * sizeof(Name));
    if (!t->slots)
        return -1;
    for (size_t i = 0; i < size; i++)
        t->slots[i].name = -1;
    t->mask = size - 1;
    t->used = 0;
    return 0;
}

static int names_grow(Names *t) {
    size_t size = 2 * (t->mask + 1);
    Name *slots = PyMem_Malloc(size * sizeof(Name));
    if (!slots)
        return -1;
    for (size_t i = 0; i < size; i++)
        slots[i].name = -1;
    for (size_t i = 0; i <= t->mask; i++) {
        Name *old = &t->slots[i];
        if (old->name < 0)
            continue;
        size_t j = old->hash & (size - 1);
        while (slots[j].name >= 0)
            j = (j + 1) & (size - 1);
        slots[j] = *old;
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

static int triples_init(Triples *t, size_t guess) {
    size_t size = 16;
    while (size < 2 * guess && size < ((size_t)1 << 20))
        size <<= 1;
    t->slots = PyMem_Malloc(size * sizeof(Triple));
    if (!t->slots)
        return -1;
    for (size_t i = 0; i < size; i++)
        t->slots[i].series = -1;
    t->mask = size - 1;
    t->used = 0;
    return 0;
}

static int triples_grow(Triples *t) {
    size_t size = 2 * (t->mask + 1);
    Triple *slots = PyMem_Malloc(size * sizeof(Triple));
    if (!slots)
        return -1;
    for (size_t i = 0; i < size; i++)
        slots[i].series = -1;
    for (size_t i = 0; i <= t->mask; i++) {
        Triple *old = &t->slots[i];
        if (old->series < 0)
            continue;
        size_t j = hash_triple(old->bucket, old->source, old->field) & (size - 1);
        while (slots[j].series >= 0)
            j = (j + 1) & (size - 1);
        slots[j] = *old;
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* --- the parse ------------------------------------------------------------------------- */

/* A distinct name: its bytes in the body, and its str, made when first needed (at once for a
name that is not ASCII: decoding it is what checks its UTF-8). */
typedef struct {
    const char *bytes;
    Py_ssize_t size;
    PyObject *text; /* strong; NULL until made */
} Text;

typedef struct {
    const char *p, *end;
    Names names;
    Text *texts; /* each name index's */
    Py_ssize_t texts_n, texts_cap;
    Triples triples;
    Triple *distinct; /* the distinct (bucket, source, field), in order of first sight */
    Py_ssize_t distinct_n, distinct_cap;
    /* The last name seen in each slot (bucket, source, field): most bodies repeat them. */
    const char *last_bytes[3];
    Py_ssize_t last_size[3];
    int32_t last_name[3];
    int32_t last_triple[3];
    int32_t last_series;
    /* Microseconds per unit of a time (0: nanoseconds), and the largest time that many fit in
    int64 microseconds (as fast_decode._scaled bounds them). */
    int64_t scale, limit;
    /* The columns, filled in place; `rows` allocated, `n` written. */
    PyObject *index, *time, *value;
    Py_ssize_t rows, n;
} Parser;

static inline void skip_space(Parser *ps) {
    const char *p = ps->p, *end = ps->end;
    if (p < end && (unsigned char)*p > ' ')
        return; /* the usual case: compact JSON */
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* At `c` after any whitespace: consume it. */
static inline int take(Parser *ps, char c) {
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

/* The bytes that end a string here: its quote, and what this parser defers (an escape, a
control character). */
static const unsigned char STRING_STOP[256] = {
    [0 ... 0x1F] = 1,
    ['"'] = 1,
    ['\\'] = 1,
};

/* A string without escapes or control characters: its bytes between the quotes. */
static Outcome string_bytes(Parser *ps, const char **bytes, Py_ssize_t *size) {
    skip_space(ps);
    const char *p = ps->p, *end = ps->end;
    if (p >= end || *p != '"')
        return DEFER;
    const char *start = ++p;
    while (p < end && !STRING_STOP[(unsigned char)*p])
        p++;
    if (p >= end || *p != '"')
        return DEFER;
    *bytes = start;
    *size = p - start;
    ps->p = p + 1;
    return OK;
}

/* The index of a name's str, made (strictly decoded from UTF-8) the first time it is seen. */
static Outcome intern(Parser *ps, int slot, const char *bytes, Py_ssize_t size, int32_t *out) {
    if (ps->last_name[slot] >= 0 && ps->last_size[slot] == size) {
        const char *last = ps->last_bytes[slot];
        Py_ssize_t k = 0;
        while (k < size && last[k] == bytes[k]) /* names are short: no call to memcmp */
            k++;
        if (k == size) {
            *out = ps->last_name[slot];
            return OK;
        }
    }
    Names *t = &ps->names;
    uint64_t h = hash_bytes(NAME_SEED, bytes, size);
    size_t j = h & t->mask;
    for (int probes = 0;; j = (j + 1) & t->mask) {
        Name *name = &t->slots[j];
        if (name->name < 0)
            break;
        if (++probes > MAX_PROBES)
            return DEFER;
        if (name->hash == h && name->size == size &&
            memcmp(name->bytes, bytes, (size_t)size) == 0) {
            *out = name->name;
            goto found;
        }
    }
    unsigned char high = 0;
    for (Py_ssize_t k = 0; k < size; k++)
        high |= (unsigned char)bytes[k];
    PyObject *text = NULL;
    if (high & 0x80) {
        text = PyUnicode_DecodeUTF8(bytes, size, "strict");
        if (!text) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return FAILED;
            PyErr_Clear();
            return DEFER; /* not UTF-8: the other paths word it */
        }
    }
    if (ps->texts_n == ps->texts_cap) {
        Py_ssize_t cap = ps->texts_cap ? 2 * ps->texts_cap : 64;
        Text *grown = PyMem_Realloc(ps->texts, (size_t)cap * sizeof(Text));
        if (!grown) {
            Py_XDECREF(text);
            PyErr_NoMemory();
            return FAILED;
        }
        ps->texts = grown;
        ps->texts_cap = cap;
    }
    Py_ssize_t number = ps->texts_n++;
    ps->texts[number] = (Text){bytes, size, text};
    Name *name = &t->slots[j];
    name->bytes = bytes;
    name->size = size;
    name->hash = h;
    name->name = (int32_t)number;
    if (++t->used * 2 > t->mask + 1 && names_grow(t) < 0) {
        PyErr_NoMemory();
        return FAILED;
    }
    *out = (int32_t)number;
found:
    ps->last_bytes[slot] = bytes;
    ps->last_size[slot] = size;
    ps->last_name[slot] = *out;
    return OK;
}

/* A name's str (borrowed; made if not yet), None for -1; NULL on an error. */
static PyObject *text_of(Parser *ps, int32_t name) {
    if (name < 0)
        return Py_None;
    Text *t = &ps->texts[name];
    if (!t->text) /* (ASCII: no check to make) */
        t->text = PyUnicode_FromStringAndSize(t->bytes, t->size);
    return t->text;
}

/* The series index of (bucket, source, field), a new key the first time it is seen. */
static Outcome series_of(Parser *ps, int32_t b, int32_t s, int32_t f, int32_t *out) {
    if (ps->last_series >= 0 && ps->last_triple[0] == b && ps->last_triple[1] == s &&
        ps->last_triple[2] == f) {
        *out = ps->last_series;
        return OK;
    }
    Triples *t = &ps->triples;
    size_t j = hash_triple(b, s, f) & t->mask;
    for (int probes = 0;; j = (j + 1) & t->mask) {
        Triple *slot = &t->slots[j];
        if (slot->series < 0)
            break;
        if (++probes > MAX_PROBES)
            return DEFER;
        if (slot->bucket == b && slot->source == s && slot->field == f) {
            *out = slot->series;
            goto found;
        }
    }
    if (ps->distinct_n == ps->distinct_cap) {
        Py_ssize_t cap = ps->distinct_cap ? 2 * ps->distinct_cap : 64;
        Triple *grown = PyMem_Realloc(ps->distinct, (size_t)cap * sizeof(Triple));
        if (!grown) {
            PyErr_NoMemory();
            return FAILED;
        }
        ps->distinct = grown;
        ps->distinct_cap = cap;
    }
    Py_ssize_t number = ps->distinct_n++;
    ps->distinct[number] = (Triple){b, s, f, (int32_t)number};
    Triple *slot = &t->slots[j];
    slot->bucket = b;
    slot->source = s;
    slot->field = f;
    slot->series = (int32_t)number;
    if (++t->used * 2 > t->mask + 1 && triples_grow(t) < 0) {
        PyErr_NoMemory();
        return FAILED;
    }
    *out = (int32_t)number;
found:
    ps->last_triple[0] = b;
    ps->last_triple[1] = s;
    ps->last_triple[2] = f;
    ps->last_series = *out;
    return OK;
}

/* `null` or a string (interned into `slot`'s name); -1 for null or "", which name nothing
(msgspec's path takes `point.bucket or default`). */
static Outcome optional_name(Parser *ps, int slot, int32_t *out) {
    skip_space(ps);
    if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
        ps->p += 4;
        *out = -1;
        return OK;
    }
    const char *bytes;
    Py_ssize_t size;
    Outcome got = string_bytes(ps, &bytes, &size);
    if (got != OK)
        return got;
    if (size == 0) {
        *out = -1;
        return OK;
    }
    return intern(ps, slot, bytes, size, out);
}

static const double EXACT_POWERS[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number (RFC 8259 §6, strictly) as msgspec decodes it for a float. */
static Outcome number(Parser *ps, double *out) {
    skip_space(ps);
    const char *p = ps->p, *end = ps->end, *start = p;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return DEFER;
    uint64_t mantissa = 0;
    int digits = 0; /* significant digits in `mantissa` */
    int dropped = 0;  /* whether significant digits past 19 were left out of `mantissa` */
    int exponent = 0; /* of ten, applied to `mantissa`; held within +-2e6 (no overflow), past
                         which only the correctly rounded path below reads the token */
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return DEFER; /* a leading zero */
    } else {
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (digits < 19) {
                mantissa = mantissa * 10 + (uint64_t)(*p - '0');
                digits++;
            } else {
                dropped = 1;
            }
        }
    }
    int integer = 1;
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return DEFER; /* `1.` */
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (mantissa == 0 && *p == '0') {
                if (exponent > -1000000)
                    exponent--; /* leading zeros of the fraction: not significant */
            } else if (digits < 19) {
                mantissa = mantissa * 10 + (uint64_t)(*p - '0');
                digits++;
                exponent--;
            } else {
                dropped = 1;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        int minus = 0;
        if (p < end && (*p == '+' || *p == '-'))
            minus = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9')
            return DEFER;
        int e = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exponent += minus ? -e : e;
    }
    ps->p = p;
    if (integer && !dropped && digits <= 18) {
        /* msgspec reads an integer as one, then converts it: -0 is 0.0 */
        double v = (double)(int64_t)mantissa;
        *out = negative ? (mantissa ? -v : 0.0) : v;
        return OK;
    }
    if (!dropped && mantissa < ((uint64_t)1 << 53) && exponent >= -22 && exponent <= 22) {
        double v = (double)mantissa;
        v = exponent < 0 ? v / EXACT_POWERS[-exponent] : v * EXACT_POWERS[exponent];
        *out = negative ? -v : v;
        return OK;
    }
    Py_ssize_t size = p - start;
    if (size > MAX_NUMBER_CHARS)
        return DEFER;
    char copy[MAX_NUMBER_CHARS + 1];
    memcpy(copy, start, (size_t)size);
    copy[size] = '\0';
    char *stop;
    double v = PyOS_string_to_double(copy, &stop, NULL);
    if (v == -1.0 && PyErr_Occurred())
        return FAILED;
    if (stop != copy + size || isinf(v))
        return DEFER; /* past float64: msgspec says "Number out of range" */
    *out = integer ? v + 0.0 : v;
    return OK;
}

/* A JSON integer within int64. */
static Outcome integer(Parser *ps, int64_t *out) {
    skip_space(ps);
    const char *p = ps->p, *end = ps->end;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return DEFER;
    uint64_t magnitude = 0;
    if (*p == '0') {
        p++;
    } else {
        int digits = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (++digits > 19)
                return DEFER;
            magnitude = magnitude * 10 + (uint64_t)(*p - '0'); /* < 10^19 < 2^64 */
        }
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
        return DEFER; /* a float (msgspec refuses it for an int), or a leading zero */
    if (magnitude > (uint64_t)INT64_MAX + (uint64_t)negative)
        return DEFER;
    ps->p = p;
    *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return OK;
}

typedef struct {
    const char *name;
    Py_ssize_t size;
} Member;

/* A member's name and its colon; `*which` is its index in `names`, or DEFER for another.
Each name is tried against the bytes after the quote as `name"` (no name holds an escape or
a quote; the body has at least that many bytes left), before the general scan. */
static Outcome member_name(Parser *ps, const Member *names, int count, int *which) {
    skip_space(ps);
    const char *p = ps->p;
    Py_ssize_t left = ps->end - p;
    if (left < 2 || *p != '"')
        return DEFER;
    for (int i = 0; i < count; i++) {
        const char *name = names[i].name;
        Py_ssize_t size = names[i].size;
        if (p[1] != name[0] || left < size + 2 || p[size + 1] != '"')
            continue;
        Py_ssize_t k = 1;
        while (k < size && p[1 + k] == name[k])
            k++;
        if (k == size) {
            ps->p = p + size + 2;
            *which = i;
            return take(ps, ':') ? OK : DEFER;
        }
    }
    return DEFER; /* another name, or not a string: the other paths word it */
}

static const Member POINT_NAMES[] = {{"field", 5}, {"value", 5}, {"time", 4}, {"bucket", 6},
                                     {"source", 6}};
enum { FIELD, VALUE, TIME, BUCKET, SOURCE };

static Outcome grow_columns(Parser *ps) {
    Py_ssize_t rows = 2 * ps->rows;
    if (PyByteArray_Resize(ps->index, rows * 4) < 0 || PyByteArray_Resize(ps->time, rows * 8) < 0 ||
        PyByteArray_Resize(ps->value, rows * 8) < 0)
        return FAILED;
    ps->rows = rows;
    return OK;
}

static Outcome point(Parser *ps) {
    if (!take(ps, '{'))
        return DEFER;
    int seen = 0;
    int32_t names[5] = {-1, -1, -1, -1, -1}; /* field, -, -, bucket, source */
    double value = 0;
    int64_t time = 0;
    Outcome got;
    for (;;) {
        int which;
        if ((got = member_name(ps, POINT_NAMES, 5, &which)) != OK)
            return got;
        if (seen & (1 << which))
            return DEFER; /* a name repeated: the other paths name it */
        seen |= 1 << which;
        if (which == FIELD) {
            const char *bytes;
            Py_ssize_t size;
            if ((got = string_bytes(ps, &bytes, &size)) != OK)
                return got;
            if (size == 0)
                return DEFER; /* an empty field name is the general path's to refuse */
            got = intern(ps, 2, bytes, size, &names[FIELD]);
        } else if (which == VALUE) {
            got = number(ps, &value);
        } else if (which == TIME) {
            got = integer(ps, &time);
        } else {
            got = optional_name(ps, which == BUCKET ? 0 : 1, &names[which]);
        }
        if (got != OK)
            return got;
        if (take(ps, '}'))
            break;
        if (!take(ps, ','))
            return DEFER;
    }
    if ((seen & 7) != 7)
        return DEFER; /* field, value and time are required */
    if (ps->scale == 0) {
        int64_t floored = time / 1000; /* C truncates towards zero, Python's // floors */
        time = floored - (time % 1000 < 0);
    } else if (time > ps->limit || time < -ps->limit) {
        return DEFER; /* past int64 microseconds: the general path names it */
    } else {
        time *= ps->scale;
    }
    int32_t series;
    if ((got = series_of(ps, names[BUCKET], names[SOURCE], names[FIELD], &series)) != OK)
        return got;
    if (ps->n == ps->rows && (got = grow_columns(ps)) != OK)
        return got;
    Py_ssize_t i = ps->n++;
    memcpy(PyByteArray_AS_STRING(ps->index) + 4 * i, &series, 4);
    memcpy(PyByteArray_AS_STRING(ps->time) + 8 * i, &time, 8);
    memcpy(PyByteArray_AS_STRING(ps->value) + 8 * i, &value, 8);
    return OK;
}

static Outcome points(Parser *ps, Py_ssize_t max_points) {
    if (!take(ps, '['))
        return DEFER;
    if (take(ps, ']'))
        return DEFER; /* no point */
    for (;;) {
        Outcome got = point(ps);
        if (got != OK)
            return got;
        if (ps->n > max_points)
            return DEFER; /* the general path refuses it with 413 */
        if (take(ps, ']'))
            return OK;
        if (!take(ps, ','))
            return DEFER;
    }
}

static const Member BODY_NAMES[] = {{"points", 6}, {"bucket", 6}, {"source", 6}};

static Outcome body(Parser *ps, Py_ssize_t max_points, int32_t *bucket, int32_t *source) {
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == '[')
        return points(ps, max_points);
    if (!take(ps, '{'))
        return DEFER;
    int seen = 0;
    for (;;) {
        int which;
        Outcome got = member_name(ps, BODY_NAMES, 3, &which);
        if (got != OK)
            return got;
        if (seen & (1 << which))
            return DEFER;
        seen |= 1 << which;
        if (which == 0)
            got = points(ps, max_points);
        else
            got = optional_name(ps, which - 1, which == 1 ? bucket : source);
        if (got != OK)
            return got;
        if (take(ps, '}'))
            return (seen & 1) ? OK : DEFER;
        if (!take(ps, ','))
            return DEFER;
    }
}

/* --- the columns ------------------------------------------------------------------------ */

static PyObject *BUCKET_NAME, *SOURCE_NAME, *FIELD_NAME, *NO_ARGS;
/* Whether an ASCII name's str hashes as its bytes (_Py_HashBytes), checked at import: without
it, every body's keys are a list of SeriesKeys. */
static int HASHES_AS_BYTES;
/* A body of this many distinct series or more hands its keys over as names (`Keys`); fewer, as
a list of SeriesKeys (a one-point write's path, counted in instructions, makes one key). */
#define NAMED_KEYS_AT 64

/* A key of `type` (SeriesKey: a frozen dataclass with slots, whose __init__ only sets them),
its slots set as object.__setattr__ sets them: a tenth of the cost of calling the class. It
holds three strs, so it can be in no reference cycle: untracked by the cyclic collector, as
CPython untracks such tuples, or a body of 5,000 series sets off collections that walk them
all (measured: half of the decode of such a body). */
static PyObject *new_key(PyTypeObject *type, PyObject *b, PyObject *s, PyObject *f) {
    PyObject *key = type->tp_new(type, NO_ARGS, NULL);
    if (key && (PyObject_GenericSetAttr(key, BUCKET_NAME, b) < 0 ||
                PyObject_GenericSetAttr(key, SOURCE_NAME, s) < 0 ||
                PyObject_GenericSetAttr(key, FIELD_NAME, f) < 0))
        Py_CLEAR(key);
    if (key && PyObject_IS_GC(key))
        PyObject_GC_UnTrack(key);
    return key;
}

/* --- the keys as names ------------------------------------------------------------------ */

/* A body's distinct series keys, a sequence of SeriesKeys whose items are made when first
asked for (and kept: the same object each time), and, for the series cache, their names
(ingest/series_names.h) as `_names`. Holds strs and SeriesKeys only: no reference cycle, so
not tracked by the cyclic collector. */
typedef struct {
    PyObject_HEAD
    SeriesNames table;
    SeriesName *names;
    Py_ssize_t names_n;
    int32_t *triple;
    char *blob;        /* the ASCII names' bytes, copied out of the body */
    PyObject **texts;  /* each name's str (strong), NULL until made */
    PyObject **made;   /* each key's SeriesKey (strong), NULL until made */
    PyTypeObject *key_type;
} Keys;

static PyTypeObject KeysType;

static void Keys_dealloc(Keys *self) {
    for (Py_ssize_t i = 0; self->texts && i < self->names_n; i++)
        Py_XDECREF(self->texts[i]);
    for (Py_ssize_t i = 0; self->made && i < self->table.n; i++)
        Py_XDECREF(self->made[i]);
    PyMem_Free(self->names);
    PyMem_Free(self->triple);
    PyMem_Free(self->blob);
    PyMem_Free(self->texts);
    PyMem_Free(self->made);
    Py_XDECREF(self->key_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t Keys_len(Keys *self) { return self->table.n; }

static PyObject *Keys_text(Keys *self, int32_t name) {
    if (!self->texts[name])
        self->texts[name] =
            PyUnicode_FromStringAndSize(self->names[name].bytes, self->names[name].size);
    return self->texts[name];
}

static PyObject *Keys_item(Keys *self, Py_ssize_t i) {
    if (i < 0 || i >= self->table.n) {
        PyErr_SetString(PyExc_IndexError, "series key index out of range");
        return NULL;
    }
    if (!self->made[i]) {
        const int32_t *t = &self->triple[3 * i];
        PyObject *b = Keys_text(self, t[0]), *s = b ? Keys_text(self, t[1]) : NULL,
                 *f = s ? Keys_text(self, t[2]) : NULL;
        if (!f || !(self->made[i] = new_key(self->key_type, b, s, f)))
            return NULL;
    }
    return Py_NewRef(self->made[i]);
}

static PyObject *Keys_subscript(Keys *self, PyObject *at) {
    if (PyIndex_Check(at)) {
        Py_ssize_t i = PyNumber_AsSsize_t(at, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        return Keys_item(self, i < 0 ? i + self->table.n : i);
    }
    if (!PySlice_Check(at)) {
        PyErr_Format(PyExc_TypeError, "series key indices must be integers or slices, not %.200s",
                     Py_TYPE(at)->tp_name);
        return NULL;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(at, &start, &stop, &step) < 0)
        return NULL;
    Py_ssize_t n = PySlice_AdjustIndices(self->table.n, &start, &stop, step);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t k = 0; out && k < n; k++) {
        PyObject *key = Keys_item(self, start + k * step);
        if (!key)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, k, key);
    }
    return out;
}

/* Equal to any sequence of the same keys, as a list of them is. */
static PyObject *Keys_richcompare(PyObject *self, PyObject *other, int op) {
    if ((op != Py_EQ && op != Py_NE) || !PySequence_Check(other) || PyUnicode_Check(other) ||
        PyBytes_Check(other) || PyByteArray_Check(other))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *mine = PySequence_List(self), *theirs = mine ? PySequence_List(other) : NULL;
    PyObject *result = theirs ? PyObject_RichCompare(mine, theirs, op) : NULL;
    Py_XDECREF(mine);
    Py_XDECREF(theirs);
    return result;
}

static PyObject *Keys_repr(PyObject *self) {
    PyObject *list = PySequence_List(self);
    PyObject *repr = list ? PyObject_Repr(list) : NULL;
    Py_XDECREF(list);
    return repr;
}

static void names_capsule_free(PyObject *capsule) {
    Py_XDECREF((PyObject *)PyCapsule_GetContext(capsule));
}

/* The names for the series cache: a capsule holding the sequence alive. */
static PyObject *Keys_names(Keys *self, void *closure) {
    PyObject *capsule = PyCapsule_New(&self->table, SERIES_NAMES_CAPSULE, names_capsule_free);
    if (capsule && PyCapsule_SetContext(capsule, Py_NewRef(self)) < 0) {
        Py_DECREF(self);
        Py_CLEAR(capsule);
    }
    return capsule;
}

static PySequenceMethods Keys_as_sequence = {
    .sq_length = (lenfunc)Keys_len,
    .sq_item = (ssizeargfunc)Keys_item,
};

static PyMappingMethods Keys_as_mapping = {
    .mp_length = (lenfunc)Keys_len,
    .mp_subscript = (binaryfunc)Keys_subscript,
};

static PyGetSetDef Keys_getset[] = {
    {"_names", (getter)Keys_names, NULL, "the keys' names for the series cache (a capsule)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject KeysType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sensorbase.dialects.native._columns.Keys",
    .tp_basicsize = sizeof(Keys),
    .tp_dealloc = (destructor)Keys_dealloc,
    .tp_repr = Keys_repr,
    .tp_as_sequence = &Keys_as_sequence,
    .tp_as_mapping = &Keys_as_mapping,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_richcompare = Keys_richcompare,
    .tp_getset = Keys_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_SEQUENCE,
    .tp_doc = "A body's distinct series keys (SeriesKeys made when asked for) and their names.",
};

/* Name `i` of the table: a body's name (ASCII: its bytes and their hash, copied into `*blob`;
else its str), or `text` (a default from the query string) where `i` is past the body's. */
static int name_of(Parser *ps, Keys *keys, Py_ssize_t i, PyObject *text, char **blob) {
    SeriesName *name = &keys->names[i];
    if (i < ps->texts_n && !ps->texts[i].text) {
        Text *t = &ps->texts[i];
        memcpy(*blob, t->bytes, (size_t)t->size);
        *name = (SeriesName){*blob, t->size, _Py_HashBytes(*blob, t->size), NULL};
        *blob += t->size;
        return 0;
    }
    if (i < ps->texts_n)
        text = ps->texts[i].text;
    Py_hash_t hash = PyObject_Hash(text);
    if (hash == -1)
        return -1;
    keys->texts[i] = Py_NewRef(text);
    *name = (SeriesName){NULL, 0, hash, keys->texts[i]};
    return 0;
}

/* `series_keys`' answer as `Keys`: the body's names, then the defaults from the query string
where a key takes one. */
static PyObject *named_keys(Parser *ps, int32_t bucket_name, int32_t source_name,
                            PyObject *bucket, PyObject *source, PyTypeObject *type) {
    Keys *keys = PyObject_New(Keys, &KeysType);
    if (!keys)
        return NULL;
    Py_ssize_t n = ps->distinct_n, extra = ps->texts_n, bytes = 0;
    for (Py_ssize_t i = 0; i < ps->texts_n; i++)
        bytes += ps->texts[i].text ? 0 : ps->texts[i].size;
    int32_t defaults[2] = {bucket_name, source_name};
    PyObject *default_texts[2] = {bucket, source};
    Py_ssize_t names_n = ps->texts_n + (bucket_name == -2) + (source_name == -2);
    keys->table.n = n;
    keys->names_n = names_n;
    keys->key_type = (PyTypeObject *)Py_NewRef(type);
    keys->names = PyMem_Malloc((size_t)(names_n ? names_n : 1) * sizeof(SeriesName));
    keys->triple = PyMem_Malloc((size_t)(n ? n : 1) * 3 * sizeof(int32_t));
    keys->blob = PyMem_Malloc((size_t)(bytes ? bytes : 1));
    keys->texts = PyMem_Calloc((size_t)(names_n ? names_n : 1), sizeof(PyObject *));
    keys->made = PyMem_Calloc((size_t)(n ? n : 1), sizeof(PyObject *));
    if (!keys->names || !keys->triple || !keys->blob || !keys->texts || !keys->made) {
        Py_DECREF(keys);
        return PyErr_NoMemory();
    }
    char *blob = keys->blob;
    for (Py_ssize_t i = 0; i < ps->texts_n; i++)
        if (name_of(ps, keys, i, NULL, &blob) < 0)
            goto failed;
    for (int d = 0; d < 2; d++) {
        if (defaults[d] != -2)
            continue;
        if (name_of(ps, keys, extra, default_texts[d], &blob) < 0)
            goto failed;
        defaults[d] = (int32_t)extra++;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Triple *t = &ps->distinct[i];
        int32_t *out = &keys->triple[3 * i];
        out[0] = t->bucket >= 0 ? t->bucket : defaults[0];
        out[1] = t->source >= 0 ? t->source : defaults[1];
        out[2] = t->field;
    }
    keys->table.triple = keys->triple;
    keys->table.name = keys->names;
    return (PyObject *)keys;
failed:
    Py_DECREF(keys);
    return NULL;
}

/* Whether a default (the query string's bucket or source) names something. */
static int names_something(PyObject *text) {
    return PyUnicode_Check(text) && PyUnicode_GET_LENGTH(text) > 0;
}

/* The keys of the distinct (bucket, source, field) sent, each point's bucket and source
defaulted as msgspec's path does (its own, else the body's, else the query string's), into
`*keys`: `Keys` for a body of NAMED_KEYS_AT series or more, else a list of SeriesKeys; DEFER
where a point is left without one (the general path names it). Two sent apart may be one
series once defaulted ({"bucket": null} beside the default's own name): the rows of the later
one are then pointed at the first (in a list). */
static Outcome series_keys(Parser *ps, int32_t body_bucket, int32_t body_source, PyObject *bucket,
                           PyObject *source, PyTypeObject *type, PyObject **keys) {
    PyObject *bucket_default = body_bucket >= 0 ? text_of(ps, body_bucket) : bucket;
    PyObject *source_default = body_source >= 0 ? text_of(ps, body_source) : source;
    if (!bucket_default || !source_default)
        return FAILED;
    int sent[2][2] = {{0, 0}, {0, 0}}; /* [bucket, source][none sent, one sent] */
    for (Py_ssize_t i = 0; i < ps->distinct_n; i++) {
        sent[0][ps->distinct[i].bucket >= 0] = 1;
        sent[1][ps->distinct[i].source >= 0] = 1;
    }
    if ((sent[0][0] && !names_something(bucket_default)) ||
        (sent[1][0] && !names_something(source_default)))
        return DEFER;
    /* Only a default beside names sent can make two keys one. */
    int merge = (sent[0][0] && sent[0][1]) || (sent[1][0] && sent[1][1]);
    if (!merge && HASHES_AS_BYTES && ps->distinct_n >= NAMED_KEYS_AT) {
        /* -1: no key takes the default; -2: the query string's; else the body's name */
        int32_t b = !sent[0][0] ? -1 : body_bucket >= 0 ? body_bucket : -2;
        int32_t s = !sent[1][0] ? -1 : body_source >= 0 ? body_source : -2;
        *keys = named_keys(ps, b, s, bucket, source, type);
        return *keys ? OK : FAILED;
    }
    PyObject *seen = merge ? PyDict_New() : NULL;
    int32_t *into = merge ? PyMem_Malloc((size_t)ps->distinct_n * sizeof(int32_t)) : NULL;
    *keys = PyList_New(0);
    Outcome got = FAILED;
    if (merge && !into)
        PyErr_NoMemory();
    if (!*keys || (merge && (!seen || !into)))
        goto done;
    int merged = 0;
    for (Py_ssize_t i = 0; i < ps->distinct_n; i++) {
        Triple *t = &ps->distinct[i];
        PyObject *b = t->bucket >= 0 ? text_of(ps, t->bucket) : bucket_default;
        PyObject *s = t->source >= 0 ? text_of(ps, t->source) : source_default;
        PyObject *f = text_of(ps, t->field);
        if (!b || !s || !f)
            goto done;
        if (merge) {
            PyObject *triple = PyTuple_Pack(3, b, s, f);
            PyObject *number = triple ? PyLong_FromSsize_t(PyList_GET_SIZE(*keys)) : NULL;
            PyObject *first = number ? PyDict_SetDefault(seen, triple, number) : NULL;
            Py_XDECREF(triple);
            Py_XDECREF(number);
            if (!first)
                goto done;
            into[i] = (int32_t)PyLong_AsSsize_t(first);
            if (into[i] != PyList_GET_SIZE(*keys)) {
                merged = 1;
                continue;
            }
        }
        PyObject *key = new_key(type, b, s, f);
        if (!key)
            goto done;
        int appended = PyList_Append(*keys, key);
        Py_DECREF(key);
        if (appended < 0)
            goto done;
    }
    if (merged) {
        char *index = PyByteArray_AS_STRING(ps->index);
        for (Py_ssize_t row = 0; row < ps->n; row++) {
            int32_t series;
            memcpy(&series, index + 4 * row, 4);
            memcpy(index + 4 * row, &into[series], 4);
        }
    }
    got = OK;
done:
    Py_XDECREF(seen);
    PyMem_Free(into);
    if (got != OK)
        Py_CLEAR(*keys);
    return got;
}

static PyObject *decode(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t max_points;
    PyObject *bucket, *source;
    PyTypeObject *type;
    long long scale;
    if (!PyArg_ParseTuple(args, "y*nOOO!L:decode", &view, &max_points, &bucket, &source,
                          &PyType_Type, &type, &scale))
        return NULL;
    if (scale < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scale must be 0 (nanoseconds) or positive");
        return NULL;
    }
    Parser ps;
    memset(&ps, 0, sizeof ps);
    ps.scale = scale;
    ps.limit = scale ? INT64_MAX / scale : INT64_MAX;
    ps.p = view.buf;
    ps.end = ps.p + view.len;
    for (int i = 0; i < 3; i++)
        ps.last_name[i] = -1;
    ps.last_series = -1;
    Py_ssize_t guess = view.len / MIN_POINT_BYTES + 1;
    if (max_points >= 0 && guess > max_points + 1)
        guess = max_points + 1;
    if (guess < 1)
        guess = 1;
    ps.rows = guess;
    PyObject *result = NULL, *keys = NULL;
    int32_t body_bucket = -1, body_source = -1;
    ps.index = PyByteArray_FromStringAndSize(NULL, 4 * guess);
    ps.time = PyByteArray_FromStringAndSize(NULL, 8 * guess);
    ps.value = PyByteArray_FromStringAndSize(NULL, 8 * guess);
    if (!ps.index || !ps.time || !ps.value)
        goto done;
    /* Distinct names and series: as many as the points at most, few in the usual body. */
    size_t tables = guess < 1024 ? (size_t)guess : 1024;
    if (names_init(&ps.names, tables) < 0 || triples_init(&ps.triples, tables) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    Outcome got = body(&ps, max_points, &body_bucket, &body_source);
    if (got == OK) {
        skip_space(&ps);
        if (ps.p != ps.end)
            got = DEFER; /* trailing bytes */
    }
    if (got == OK)
        got = series_keys(&ps, body_bucket, body_source, bucket, source, type, &keys);
    if (got == FAILED)
        goto done;
    if (got == DEFER) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (PyByteArray_Resize(ps.index, 4 * ps.n) < 0 || PyByteArray_Resize(ps.time, 8 * ps.n) < 0 ||
        PyByteArray_Resize(ps.value, 8 * ps.n) < 0)
        goto done;
    result = PyTuple_Pack(4, keys, ps.index, ps.time, ps.value);
done:
    PyMem_Free(ps.names.slots);
    PyMem_Free(ps.triples.slots);
    PyMem_Free(ps.distinct);
    Py_XDECREF(keys);
    for (Py_ssize_t i = 0; i < ps.texts_n; i++)
        Py_XDECREF(ps.texts[i].text);
    PyMem_Free(ps.texts);
    Py_XDECREF(ps.index);
    Py_XDECREF(ps.time);
    Py_XDECREF(ps.value);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(body, max_points, bucket, source, key_type, scale) -> (keys, series_index, "
     "time_us, value) or None: the common native write body as columns (see the module's "
     "source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sensorbase.dialects.native._columns",
    .m_doc = "The native write's common body decoded straight into columns.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__columns(void) {
    BUCKET_NAME = PyUnicode_InternFromString("bucket");
    SOURCE_NAME = PyUnicode_InternFromString("source");
    FIELD_NAME = PyUnicode_InternFromString("field");
    NO_ARGS = PyTuple_New(0);
    if (!BUCKET_NAME || !SOURCE_NAME || !FIELD_NAME || !NO_ARGS || PyType_Ready(&KeysType) < 0)
        return NULL;
    Py_hash_t as_str = PyObject_Hash(SOURCE_NAME);
    if (as_str == -1)
        return NULL;
    HASHES_AS_BYTES = _Py_HashBytes("source", 6) == as_str;
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddObjectRef(m, "Keys", (PyObject *)&KeysType) < 0 ||
              PyModule_AddIntConstant(m, "NAMED_KEYS_AT", HASHES_AS_BYTES ? NAMED_KEYS_AT : -1) <
                  0))
        Py_CLEAR(m);
    return m;
}
