/* A request's series keys as names, without a Python object a name: what the native write's
decoder (dialects/native/_columns.c) hands the series cache (_series_ids.c), through a capsule
named SERIES_NAMES_CAPSULE that its key sequence gives as `_names`.

Why: a fleet written time-major names a distinct series a point, so at 100,000 series a
5,000-point request made 5,000 source strs and 5,000 SeriesKeys, each allocated, set, freed
and counted by the cyclic collector's allocation counter (~0.1 us a point of the server's CPU,
`perf`, benchmarks/README.md "The series cache probed from the body's bytes"), only for the
cache to find each one's id. With these, a key becomes a Python object only when something asks
for it (a series the cache does not know, a problem to word, an alert rule's watch).

A name is either ASCII bytes with their Python hash (a str of ASCII characters hashes its
bytes: `hash(s) == _Py_HashBytes(s.encode(), len(s))`, which _columns.c checks at import and,
failing that, hands lists of SeriesKeys as before), or a str (names with other characters, and
the defaults taken from the query string). */

#ifndef SENSORBASE_SERIES_NAMES_H
#define SENSORBASE_SERIES_NAMES_H

#include <Python.h>
#include <stdint.h>

#define SERIES_NAMES_CAPSULE "sensorbase.ingest.series_names"

typedef struct {
    const char *bytes; /* ASCII bytes; NULL: `text` names it */
    Py_ssize_t size;
    Py_hash_t hash; /* Python's hash of the name's str */
    PyObject *text; /* borrowed (held by the sequence): the str, where `bytes` is NULL */
} SeriesName;

typedef struct {
    Py_ssize_t n;          /* keys */
    const int32_t *triple; /* 3 a key: its bucket, source and field, indexes into `name` */
    const SeriesName *name;
} SeriesNames;

#endif
