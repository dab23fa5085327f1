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
exactly as many items is a ValueError: both come from the same column.

Both take an optional `epoch`: 0 (the default) writes times as above; 1, 1000 or 1000000
write them as integers of microseconds, milliseconds or seconds since 1970 (floored), -1000
as nanoseconds (the microseconds' digits and `000`, so no time overflows int64). The columnar
reply (`format=columns`) takes its arrays from

`times(time_us, epoch)`: the JSON array of the times (None for ISO times out of range), and
`values(value)`: the JSON array of the values, when each is one `decimal` writes, else None. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MIN_US (-62135596800000000LL) /* 0001-01-01T00:00:00Z */
#define MAX_US 253402300799999999LL   /* 9999-12-31T23:59:59.999999Z */
#define DAY_US 86400000000LL

static const char TIME_OPEN[] = "{\"time\":";    /* then the time */
static const char VALUE_OPEN[] = ",\"value\":"; /* then the number, then "}," */
#define TIME_OPEN_LEN (sizeof(TIME_OPEN) - 1)
#define VALUE_OPEN_LEN (sizeof(VALUE_OPEN) - 1)
#define TIME_LEN 26
#define TIME_TEXT_LEN (TIME_LEN + 3) /* in quotes, with its Z; wider than any integer time */
#define RECORD_FIXED (TIME_OPEN_LEN + TIME_TEXT_LEN + VALUE_OPEN_LEN + 2)
#define ISO 0
#define NANOSECONDS (-1000)

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

/* `"2026-11-21T10:00:00.000000Z"` at `at`; returns the end. */
static char *iso_time(char *at, int64_t t, DayCache *cache) {
    int64_t days = t / DAY_US - (t % DAY_US < 0);
    int64_t of_day = t - days * DAY_US;
    if (days != cache->day) {
        civil_date(cache->date, days);
        cache->day = days;
    }
    *at++ = '"';
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
    *at++ = 'Z';
    *at++ = '"';
    return at;
}

/* Two decimal digits of each number below 100, in order: one division by 100 writes two. */
static const char PAIRS[] = "00010203040506070809101112131415161718192021222324252627282930313233"
                            "34353637383940414243444546474849505152535455565758596061626364656667"
                            "6869707172737475767778798081828384858687888990919293949596979899";

/* The decimal digits of `number`, without leading zeros, at `at`; returns the end. */
static char *unsigned_text(char *at, uint64_t number) {
    char text[20];
    int start = sizeof(text);
    while (number >= 100) {
        start -= 2;
        memcpy(text + start, PAIRS + 2 * (number % 100), 2);
        number /= 100;
    }
    if (number >= 10) {
        start -= 2;
        memcpy(text + start, PAIRS + 2 * number, 2);
    } else {
        text[--start] = (char)('0' + number);
    }
    memcpy(at, text + start, sizeof(text) - (size_t)start);
    return at + sizeof(text) - start;
}

/* The time in `epoch`'s form (the module's comment) at `at`; returns the end. */
static char *time_text(char *at, int64_t t, int64_t epoch, DayCache *cache) {
    if (epoch == ISO)
        return iso_time(at, t, cache);
    int64_t whole = epoch > 0 ? t / epoch - (t % epoch < 0) : t;
    uint64_t magnitude = whole < 0 ? (uint64_t)0 - (uint64_t)whole : (uint64_t)whole;
    if (whole < 0)
        *at++ = '-';
    at = unsigned_text(at, magnitude);
    if (epoch == NANOSECONDS && whole != 0) {
        memcpy(at, "000", 3);
        at += 3;
    }
    return at;
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
    at = unsigned_text(at, whole / 1000000);
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
                         const char *text, Py_ssize_t size, int64_t epoch) {
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
        memcpy(at, TIME_OPEN, TIME_OPEN_LEN);
        at = time_text(at + TIME_OPEN_LEN, time_us[i], epoch, &cache);
        memcpy(at, VALUE_OPEN, VALUE_OPEN_LEN);
        at += VALUE_OPEN_LEN;
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

static int known_epoch(int64_t epoch) {
    if (epoch == ISO || epoch == 1 || epoch == 1000 || epoch == 1000000 || epoch == NANOSECONDS)
        return 1;
    PyErr_SetString(PyExc_ValueError, "epoch must be 0, 1, 1000, 1000000 or -1000");
    return 0;
}

/* Whether every time can be written in `epoch`'s form (ISO times: years 0001-9999). */
static int writable(const int64_t *time_us, Py_ssize_t n, int64_t epoch) {
    return epoch != ISO || times_in_range(time_us, n);
}

/* `encode` (the values a float64 column) and `encode_numbers` (`from_numbers`: msgspec's
encoding of their list), whose arguments are alike. */
static PyObject *encoded(PyObject *args, int from_numbers) {
    Py_buffer times, values;
    long long epoch = ISO;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*|L", &times, &values, &epoch))
        return NULL;
    Py_ssize_t n = times.len / (Py_ssize_t)sizeof(int64_t);
    const char *text = values.buf;
    Py_ssize_t size = values.len;
    int unlike = from_numbers ? size < 2 || text[0] != '[' || text[size - 1] != ']'
                              : size != n * (Py_ssize_t)sizeof(double);
    if (times.len % (Py_ssize_t)sizeof(int64_t) || unlike)
        PyErr_SetString(PyExc_ValueError,
                        from_numbers ? "times must be int64 and numbers a JSON list"
                                     : "times must be int64 and values as many float64");
    else if (!known_epoch(epoch))
        ;
    else if (!writable(times.buf, n, epoch))
        result = Py_NewRef(Py_None);
    else if (from_numbers)
        result = records(times.buf, n, NULL, text, size, epoch);
    else
        result = records(times.buf, n, values.buf, NULL, 0, epoch);
    PyBuffer_Release(&times);
    PyBuffer_Release(&values);
    return result;
}

static PyObject *encode(PyObject *self, PyObject *args) { return encoded(args, 0); }

static PyObject *encode_numbers(PyObject *self, PyObject *args) { return encoded(args, 1); }

/* `[<item>,...]` of n items, each written by `write(at, i)` in at most `widest` bytes; None
when `write` returns NULL. */
typedef char *(*ItemWriter)(char *at, Py_ssize_t i, const void *column, int64_t epoch,
                            DayCache *cache);

static PyObject *array(Py_ssize_t n, Py_ssize_t widest, ItemWriter write, const void *column,
                       int64_t epoch) {
    PyObject *result = PyBytes_FromStringAndSize(NULL, n * (widest + 1) + 2);
    if (!result)
        return NULL;
    char *out = PyBytes_AS_STRING(result);
    char *at = out;
    *at++ = '[';
    DayCache cache = {INT64_MIN, {0}};
    for (Py_ssize_t i = 0; i < n; i++) {
        at = write(at, i, column, epoch, &cache);
        if (!at) {
            Py_DECREF(result);
            return Py_NewRef(Py_None);
        }
        *at++ = ',';
    }
    if (n)
        at--;
    *at++ = ']';
    _PyBytes_Resize(&result, at - out);
    return result;
}

static char *time_item(char *at, Py_ssize_t i, const void *column, int64_t epoch,
                       DayCache *cache) {
    return time_text(at, ((const int64_t *)column)[i], epoch, cache);
}

static char *value_item(char *at, Py_ssize_t i, const void *column, int64_t epoch,
                        DayCache *cache) {
    return decimal(at, ((const double *)column)[i]);
}

static PyObject *times_array(PyObject *self, PyObject *args) {
    Py_buffer times;
    long long epoch = ISO;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*|L", &times, &epoch))
        return NULL;
    Py_ssize_t n = times.len / (Py_ssize_t)sizeof(int64_t);
    if (times.len % (Py_ssize_t)sizeof(int64_t))
        PyErr_SetString(PyExc_ValueError, "times must be int64");
    else if (!known_epoch(epoch))
        ;
    else if (!writable(times.buf, n, epoch))
        result = Py_NewRef(Py_None);
    else
        result = array(n, TIME_TEXT_LEN, time_item, times.buf, epoch);
    PyBuffer_Release(&times);
    return result;
}

static PyObject *values_array(PyObject *self, PyObject *args) {
    Py_buffer values;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*", &values))
        return NULL;
    if (values.len % (Py_ssize_t)sizeof(double))
        PyErr_SetString(PyExc_ValueError, "values must be float64");
    else
        result = array(values.len / (Py_ssize_t)sizeof(double), VALUE_MAX_LEN, value_item,
                       values.buf, ISO);
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(time_us, value, epoch=0) -> bytes or None: the JSON array of {\"time\", "
     "\"value\"} objects of the columns, when each value is a decimal it writes (see the "
     "module's source)."},
    {"encode_numbers", encode_numbers, METH_VARARGS,
     "encode_numbers(time_us, numbers, epoch=0) -> bytes or None: the same, the values taken "
     "from msgspec's encoding of their list."},
    {"times", times_array, METH_VARARGS,
     "times(time_us, epoch=0) -> bytes or None: the JSON array of the times."},
    {"values", values_array, METH_VARARGS,
     "values(value) -> bytes or None: the JSON array of the values, when each is a decimal "
     "it writes."},
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
