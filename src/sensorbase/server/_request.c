/* A whole HTTP/1.1 request of the plainest form split in one call (server/protocol.py calls it
for a fast lane's request, before the httptools parser would call back into Python nine times).

`split(data, max_body)` returns

    (method, target, headers, body, keep_alive)

when `data` is exactly one whole request, every part of it in this narrow form:

- the request line: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS, one space, an
  origin-form target (a `/`, then visible ASCII without `#`), one space, `HTTP/1.1`, CRLF;
- each header: a name of token characters (RFC 9110 5.6.2), a colon, optional spaces or tabs,
  a value of visible ASCII, spaces and tabs (not empty), CRLF; `headers` lists them in order as uvicorn's
  httptools protocol does: (name in lower case, value without its leading and trailing spaces
  and tabs);
- no Transfer-Encoding, Expect, Upgrade or Proxy-Connection header; a Connection header only
  of `close` or `keep-alive` (any case), which decides `keep_alive` as llhttp does; at most one
  Content-Length, of at most 18 digits and at most `max_body`;
- an empty line, then exactly the Content-Length's bytes of body (none without one), and
  nothing after them.

Anything else returns None, and the request goes through the httptools parser as it always
did: a request in several reads, pipelined requests, HTTP/1.0, obs-fold, bytes past ASCII,
a bare LF, duplicate lengths, chunked bodies. What this takes is a subset of what llhttp
accepts, read the same way, so that either path gives a lane the same request; every read is
bounded by the data's length: this parses network input. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_LENGTH_DIGITS 18 /* below 2^63: no overflow */

/* RFC 9110's tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA */
static const unsigned char TOKEN[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* Whether `name` (lower case) is `want` (lower case, NUL-terminated) */
static int is(const char *name, Py_ssize_t size, const char *want) {
    return (size_t)size == strlen(want) && memcmp(name, want, (size_t)size) == 0;
}

/* Whether `value` is `want` (lower case) in any case */
static int is_any_case(const char *value, Py_ssize_t size, const char *want) {
    if ((size_t)size != strlen(want))
        return 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        char c = value[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != want[i])
            return 0;
    }
    return 1;
}

/* `tuple[at] = value` (a new reference, stolen); whether there was one (else an error is set) */
static int item(PyObject *tuple, Py_ssize_t at, PyObject *value) {
    if (!value)
        return 0;
    PyTuple_SET_ITEM(tuple, at, value);
    return 1;
}

/* (name, value) as bytes, made without a format string to read (Py_BuildValue's cost) */
static PyObject *pair_of(const char *name, Py_ssize_t name_size, const char *value,
                         Py_ssize_t value_size) {
    PyObject *pair = PyTuple_New(2);
    if (pair && !(item(pair, 0, PyBytes_FromStringAndSize(name, name_size)) &&
                  item(pair, 1, PyBytes_FromStringAndSize(value, value_size))))
        Py_CLEAR(pair);
    return pair;
}

/* Methods llhttp knows (it refuses others) that a lane may answer, or the parser's path */
static const char *const METHODS[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

static int known_method(const char *method, Py_ssize_t size) {
    for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS; i++)
        if (is(method, size, METHODS[i]))
            return 1;
    return 0;
}

static PyObject *split(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t max_body;
    if (!PyArg_ParseTuple(args, "y*n:split", &view, &max_body))
        return NULL;
    const char *start = view.buf, *p = start, *end = start + view.len;
    PyObject *headers = NULL, *result = NULL;
    char lower[256]; /* a header name in lower case (a longer one: not this path's) */

    /* the request line */
    const char *method = p;
    while (p < end && *p >= 'A' && *p <= 'Z')
        p++;
    Py_ssize_t method_size = p - method;
    if (!known_method(method, method_size) || p >= end || *p != ' ')
        goto defer;
    const char *target = ++p;
    if (p >= end || *p != '/')
        goto defer;
    while (p < end && *p > ' ' && *p < 0x7F && *p != '#')
        p++;
    Py_ssize_t target_size = p - target;
    if (end - p < 11 || memcmp(p, " HTTP/1.1\r\n", 11) != 0)
        goto defer;
    p += 11;

    headers = PyList_New(0);
    if (!headers)
        goto done;
    int keep_alive = 1, has_length = 0;
    long long length = 0;
    for (;;) {
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            p += 2;
            break; /* the empty line */
        }
        const char *name = p;
        while (p < end && TOKEN[(unsigned char)*p])
            p++;
        Py_ssize_t name_size = p - name;
        if (!name_size || name_size > (Py_ssize_t)sizeof lower || p >= end || *p != ':')
            goto defer;
        for (Py_ssize_t i = 0; i < name_size; i++) {
            char c = name[i];
            lower[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
        }
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *value = p;
        while (p < end && ((*p >= ' ' && *p < 0x7F) || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            goto defer; /* a bare LF, a control character or a byte past ASCII: llhttp's */
        const char *value_end = p;
        p += 2;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
        Py_ssize_t value_size = value_end - value;
        if (!value_size)
            goto defer; /* httptools gives no header for it, and joins its name to the next */
        if (is(lower, name_size, "content-length")) {
            if (has_length || value_size > MAX_LENGTH_DIGITS)
                goto defer;
            for (Py_ssize_t i = 0; i < value_size; i++) {
                if (value[i] < '0' || value[i] > '9')
                    goto defer;
                length = length * 10 + (value[i] - '0');
            }
            has_length = 1;
        } else if (is(lower, name_size, "connection")) {
            if (is_any_case(value, value_size, "close"))
                keep_alive = 0;
            else if (!is_any_case(value, value_size, "keep-alive"))
                goto defer;
        } else if (is(lower, name_size, "transfer-encoding") || is(lower, name_size, "expect") ||
                   is(lower, name_size, "upgrade") || is(lower, name_size, "proxy-connection")) {
            goto defer;
        }
        PyObject *pair = pair_of(lower, name_size, value, value_size);
        if (!pair)
            goto done;
        int appended = PyList_Append(headers, pair);
        Py_DECREF(pair);
        if (appended < 0)
            goto done;
    }
    if (length > max_body || end - p != length)
        goto defer; /* a large body (streamed), a body not all here, or bytes after it */
    result = PyTuple_New(5);
    if (!result || !(item(result, 0, PyBytes_FromStringAndSize(method, method_size)) &&
                     item(result, 1, PyBytes_FromStringAndSize(target, target_size)) &&
                     item(result, 2, Py_NewRef(headers)) &&
                     item(result, 3, PyBytes_FromStringAndSize(p, end - p)) &&
                     item(result, 4, PyBool_FromLong(keep_alive))))
        Py_CLEAR(result);
    goto done;
defer:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(headers);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS,
     "split(data, max_body) -> (method, target, headers, body, keep_alive) or None: a whole "
     "HTTP/1.1 request of the plainest form (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sensorbase.server._request",
    .m_doc = "A whole HTTP/1.1 request of the plainest form split in one call.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__request(void) { return PyModule_Create(&module); }
