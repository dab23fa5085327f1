/* A query reply's points as JSON, written in one pass over the columns (points_json.py calls
it; its numpy path is what runs where this was not built, and what this must equal).

`encode(time_us, numbers)`: `time_us` the int64 microseconds since 1970 of the points
(native-endian, e.g. a numpy array), `numbers` msgspec's encoding of the list of their values
(`[21.5,22.0,null]`: msgspec writes floats as the reply's encoder would, so the bytes are
those of encoding a list of dicts). Returns

    [{"time":"2026-11-21T10:00:00.000000Z","value":21.5},...]

or None when a time lies outside the years 0001-9999 (its text would not be 26 bytes: the
numpy path words those). A date is worked out once per run of times on the same day (Howard
Hinnant's days-to-civil algorithm), a time of day by integer arithmetic. A `numbers` that is
not a list of exactly as many items is a ValueError: both come from the same column. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
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

static PyObject *encode(PyObject *self, PyObject *args) {
    Py_buffer times, numbers;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*", &times, &numbers))
        return NULL;
    const int64_t *time_us = times.buf;
    const char *text = numbers.buf;
    Py_ssize_t n = times.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t size = numbers.len;
    if (times.len % (Py_ssize_t)sizeof(int64_t) || size < 2 || text[0] != '[' ||
        text[size - 1] != ']') {
        PyErr_SetString(PyExc_ValueError, "times must be int64 and numbers a JSON list");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (time_us[i] < MIN_US || time_us[i] > MAX_US) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    /* Every record's fixed bytes, the numbers' bytes (their commas become the records'),
    the brackets. */
    result = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)RECORD_FIXED + size);
    if (!result)
        goto done;
    char *out = PyBytes_AS_STRING(result);
    char *at = out;
    *at++ = '[';
    const char *number = text + 1, *end = text + size - 1;
    int64_t day_of = INT64_MIN;
    char date[10];
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *comma = memchr(number, ',', (size_t)(end - number));
        const char *stop = comma ? comma : end;
        if (stop == number || (i == n - 1) != (comma == NULL)) {
            Py_CLEAR(result);
            PyErr_SetString(PyExc_ValueError, "numbers must hold one item a time");
            goto done;
        }
        int64_t t = time_us[i];
        int64_t days = t / DAY_US - (t % DAY_US < 0);
        int64_t of_day = t - days * DAY_US;
        if (days != day_of) {
            civil_date(date, days);
            day_of = days;
        }
        memcpy(at, TIME_OPEN, TIME_OPEN_LEN);
        at += TIME_OPEN_LEN;
        memcpy(at, date, 10);
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
        at += VALUE_OPEN_LEN;
        memcpy(at, number, (size_t)(stop - number));
        at += stop - number;
        *at++ = '}';
        *at++ = ',';
        number = stop + 1;
    }
    if (n == 0 && end != number) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_ValueError, "numbers must hold one item a time");
        goto done;
    }
    if (n)
        at--; /* the last record's comma */
    *at++ = ']';
    _PyBytes_Resize(&result, at - out);
done:
    PyBuffer_Release(&times);
    PyBuffer_Release(&numbers);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(time_us, numbers) -> bytes or None: the JSON array of {\"time\", \"value\"} "
     "objects of the columns (see the module's source)."},
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
