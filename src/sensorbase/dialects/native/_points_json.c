/* A query reply's points as JSON, written in one pass over the columns (points_json.py calls
it; its numpy path is what runs where this was not built, and what this must equal).

`encode(time_us, value)`: `time_us` the int64 microseconds since 1970 of the points, `value`
their float64 values (native-endian, e.g. numpy arrays). Returns

    [{"time":"2026-11-21T10:00:00.000000Z","value":21.5},...]

byte for byte as msgspec encodes the list of dicts, or None when a time lies outside the years
0001-9999 (its text would not be 26 bytes: the numpy path words those) or a value is not one
this writes (below). A date is worked out once per run of times on the same day (Howard
Hinnant's days-to-civil algorithm), a time of day by integer arithmetic.

A value is written here when it is the double nearest a decimal of at most 6 places and 15
digits (what sensors send; what chunks store scaled), found as m = round(v * 10^6) with
m / 10^6 == v (one correctly rounded division). Two decimals of at most 15 significant digits
never round to the same double, so that decimal, trailing zeros dropped, is the shortest text
that reads back as v: the digits msgspec writes. msgspec writes those in plain notation from
1e-5 up (|m| >= 10), and NaN and infinities as null. Anything else, say 0.1 + 0.2 or 1e-7,
returns None: then

`encode_numbers(time_us, numbers)`: `numbers` msgspec's encoding of the list of the values
(`[21.5,22.0,null]`), its items copied between the records. A `numbers` that is not a list of
exactly as many items is a ValueError: both come from the same column. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MIN_US (-62135596800000000LL) /* 0001-01-01T00:00:00Z */
#define MAX_US 253402300799999999LL   /* 9999-12-31T23:59:59.999999Z */
#define DAY_US 86400000000LL

static const char TIME_OPEN[] = "{\"time\":\"";    /* then the 26 bytes of the time */
static const char VALUE_OPEN[] = "Z\",\"value\":"; /* then the number, then "}," */
#define TIME_OPEN_LEN (sizeof(TIME_OPEN) - 1)
#define VALUE_OPEN_LEN (sizeof(VALUE_OPEN) - 1)
#define TIME_LEN 26
#define RECORD_FIXED (TIME_OPEN_LEN + TIME_LEN + VALUE_OPEN_LEN + 2)

static void digits(char *at, int64_t number, int width) {
    for (int i = width - 1; i >= 0; i--) {
        at[i] = (char)('0' + number % 10);
        number /= 10;
    }
}

/* `YYYY-MM-DD` of a day since 1970-01-01 (years 0001-9999 only). */
static void civil_date(char *at, int64_t days) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    digits(at, year, 4);
    at[4] = '-';
    digits(at + 5, month, 2);
    at[7] = '-';
    digits(at + 8, day, 2);
}

/* The records' times are written in order; a date is worked out once per run of a day. */
typedef struct {
    int64_t day;
    char date[10];
} DayCache;

static int times_in_range(const int64_t *time_us, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (time_us[i] < MIN_US || time_us[i] > MAX_US)
            return 0;
    return 1;
}

/* `{"time":"<26 bytes>Z","value":` at `at`; returns the end. */
static char *record_open(char *at, int64_t t, DayCache *cache) {
    int64_t days = t / DAY_US - (t % DAY_US < 0);
    int64_t of_day = t - days * DAY_US;
    if (days != cache->day) {
        civil_date(cache->date, days);
        cache->day = days;
    }
    memcpy(at, TIME_OPEN, TIME_OPEN_LEN);
    at += TIME_OPEN_LEN;
    memcpy(at, cache->date, 10);
    at[10] = 'T';
    int64_t seconds = of_day / 1000000;
    digits(at + 11, seconds / 3600, 2);
    at[13] = ':';
    digits(at + 14, seconds / 60 % 60, 2);
    at[16] = ':';
    digits(at + 17, seconds % 60, 2);
    at[19] = '.';
    digits(at + 20, of_day % 1000000, 6);
    at += TIME_LEN;
    memcpy(at, VALUE_OPEN, VALUE_OPEN_LEN);
    return at + VALUE_OPEN_LEN;
}

#define SCALE 1e6
#define PLACES 6
#define MAX_SCALED 1e15 /* 15 digits at most */
#define VALUE_MAX_LEN 17 /* -123456789.123456 */

/* `v` as msgspec writes it, when it is a decimal this writes (the module's comment); returns
the end, or NULL. */
static char *decimal(char *at, double v) {
    if (isnan(v) || isinf(v)) {
        memcpy(at, "null", 4);
        return at + 4;
    }
    double scaled = v * SCALE;
    if (!(fabs(scaled) < MAX_SCALED))
        return NULL;
    int64_t m = llrint(scaled);
    if ((double)m / SCALE != v || (m != 0 && m > -10 && m < 10))
        return NULL;
    if (signbit(v))
        *at++ = '-';
    uint64_t whole = (uint64_t)(m < 0 ? -m : m);
    uint64_t fraction = whole % 1000000;
    whole /= 1000000;
    char text[10];
    int width = 0;
    do {
        text[sizeof(text) - 1 - width++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    memcpy(at, text + sizeof(text) - width, (size_t)width);
    at += width;
    *at++ = '.';
    int places = PLACES;
    while (places > 1 && fraction % 10 == 0) {
        fraction /= 10;
        places--;
    }
    digits(at, (int64_t)fraction, places);
    return at + places;
}

/* The reply's records: each value written by `decimal` (`value`), or copied from msgspec's
encoding of their list (`text`, `size`: between its brackets, one item a time). None when a
value is not one `decimal` writes; NULL with a ValueError when `text` does not hold n items. */
static PyObject *records(const int64_t *time_us, Py_ssize_t n, const double *value,
                         const char *text, Py_ssize_t size) {
    Py_ssize_t room = value ? n * (Py_ssize_t)(RECORD_FIXED + VALUE_MAX_LEN) + 2
                            : n * (Py_ssize_t)RECORD_FIXED + size; /* its commas: the records' */
    PyObject *result = PyBytes_FromStringAndSize(NULL, room);
    if (!result)
        return NULL;
    char *out = PyBytes_AS_STRING(result);
    char *at = out;
    *at++ = '[';
    const char *number = text ? text + 1 : NULL, *end = text ? text + size - 1 : NULL;
    DayCache cache = {INT64_MIN, {0}};
    for (Py_ssize_t i = 0; i < n; i++) {
        at = record_open(at, time_us[i], &cache);
        if (value) {
            at = decimal(at, value[i]);
            if (!at) {
                Py_DECREF(result);
                return Py_NewRef(Py_None);
            }
        } else {
            const char *comma = memchr(number, ',', (size_t)(end - number));
            const char *stop = comma ? comma : end;
            if (stop == number || (i == n - 1) != (comma == NULL))
                goto unequal;
            memcpy(at, number, (size_t)(stop - number));
            at += stop - number;
            number = stop + 1;
        }
        *at++ = '}';
        *at++ = ',';
    }
    if (!value && n == 0 && end != number)
        goto unequal;
    if (n)
        at--; /* the last record's comma */
    *at++ = ']';
    _PyBytes_Resize(&result, at - out);
    return result;
unequal:
    Py_DECREF(result);
    PyErr_SetString(PyExc_ValueError, "numbers must hold one item a time");
    return NULL;
}

static PyObject *encode(PyObject *self, PyObject *args) {
    Py_buffer times, values;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*", &times, &values))
        return NULL;
    Py_ssize_t n = times.len / (Py_ssize_t)sizeof(int64_t);
    if (times.len % (Py_ssize_t)sizeof(int64_t) ||
        values.len != n * (Py_ssize_t)sizeof(double))
        PyErr_SetString(PyExc_ValueError, "times must be int64 and values as many float64");
    else if (!times_in_range(times.buf, n))
        result = Py_NewRef(Py_None);
    else
        result = records(times.buf, n, values.buf, NULL, 0);
    PyBuffer_Release(&times);
    PyBuffer_Release(&values);
    return result;
}

static PyObject *encode_numbers(PyObject *self, PyObject *args) {
    Py_buffer times, numbers;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*", &times, &numbers))
        return NULL;
    const char *text = numbers.buf;
    Py_ssize_t n = times.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t size = numbers.len;
    if (times.len % (Py_ssize_t)sizeof(int64_t) || size < 2 || text[0] != '[' ||
        text[size - 1] != ']')
        PyErr_SetString(PyExc_ValueError, "times must be int64 and numbers a JSON list");
    else if (!times_in_range(times.buf, n))
        result = Py_NewRef(Py_None);
    else
        result = records(times.buf, n, NULL, text, size);
    PyBuffer_Release(&times);
    PyBuffer_Release(&numbers);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(time_us, value) -> bytes or None: the JSON array of {\"time\", \"value\"} "
     "objects of the columns, when each value is a decimal it writes (see the module's source)."},
    {"encode_numbers", encode_numbers, METH_VARARGS,
     "encode_numbers(time_us, numbers) -> bytes or None: the same, the values taken from "
     "msgspec's encoding of their list."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sensorbase.dialects.native._points_json",
    .m_doc = "A query reply's points as JSON, written in one pass over the columns.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__points_json(void) { return PyModule_Create(&module); }
