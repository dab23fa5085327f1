/* The ingest pipeline's series ids (ingest/series_cache.py): (organisation, bucket, source,
field) -> (series id, bucket id), a whole request's keys looked up in one call.

Why in C: a fleet written time-major names a distinct series a point, so at 100,000 cached
series every point's look-up misses the CPU's caches. numpy's sorted arrays (series_cache.py's
fallback) need ~8 passes a key, each its own miss (the hash, its range, the organisation, the
names, the source object, the ids); here a key costs one slot (32 bytes: its hash, series id,
source and context) and its source's str, and the loads of one key do not wait on another's:
a request's slots are prefetched in one pass, the sources they point at in a second, and read
in a third.

A slot's context holds what a request's keys share (organisation, bucket and field names and
bucket id): few of them, always in the caches. The hash is Python's own str hashes (keyed
SipHash, cached on each str) mixed with the organisation, so a client cannot aim names at one
slot; every hit is verified against the stored key all the same (organisation, and the three
names by value), so a hash that matches and a key that does not is a miss, never another
series' id. A request's keys come as SeriesKeys, or as names (the native decoder's `Keys`,
series_names.h: each name's bytes or str and its Python hash), looked up the same way without
a Python object made for a key the table holds. Slots are never removed (`clear` drops them
all), so probing stops at the first empty one. Not thread-safe: the pipeline holds its lock
around every call. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "series_names.h"

typedef struct {
    uint64_t hash;
    int64_t series_id;
    PyObject *source; /* a strong reference; NULL: the slot is empty */
    uint32_t context;
} Slot;

typedef struct {
    int64_t org, bucket_id;
    PyObject *bucket, *field; /* strong references */
} Context;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t mask, used;
    Context *contexts;
    size_t contexts_n, contexts_cap;
    PyObject *context_of; /* dict: (org, bucket, field, bucket id) -> context number */
    PyTypeObject *key_type;
    Py_ssize_t offsets[3]; /* of the key type's bucket, source and field slots */
    int busy; /* inside a call: a name's __eq__ or __hash__ may not use or change the table */
} Ids;

static const uint64_t K1 = 0x9E3779B97F4A7C15ull, K2 = 0xBF58476D1CE4E5B9ull,
                      K3 = 0x94D049BB133111EBull, K4 = 0xFF51AFD7ED558CCDull;

static inline uint64_t mix(int64_t org, Py_hash_t b, Py_hash_t s, Py_hash_t f) {
    uint64_t h = (uint64_t)b * K1;
    h = (h ^ (uint64_t)s) * K2;
    h = (h ^ (uint64_t)f) * K3;
    h = (h ^ (uint64_t)org) * K4;
    return h ^ (h >> 31);
}

/* 1 if the names are equal, 0 if not, -1 on an error. Plain strs by their bytes (the stored
names are shared by many slots, so hot); a subclass as Python compares it. */
static inline int same_text(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(a);
        int kind = PyUnicode_KIND(a);
        return n == PyUnicode_GET_LENGTH(b) && kind == PyUnicode_KIND(b) &&
               memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * (size_t)kind) == 0;
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

static int alloc_slots(Ids *self, size_t size) {
    self->slots = PyMem_Calloc(size, sizeof(Slot));
    if (!self->slots) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    self->used = 0;
    return 0;
}

static void drop_all(Ids *self) {
    if (self->slots) {
        for (size_t i = 0; i <= self->mask; i++)
            Py_XDECREF(self->slots[i].source);
        PyMem_Free(self->slots);
        self->slots = NULL;
    }
    for (size_t i = 0; i < self->contexts_n; i++) {
        Py_DECREF(self->contexts[i].bucket);
        Py_DECREF(self->contexts[i].field);
    }
    PyMem_Free(self->contexts);
    self->contexts = NULL;
    self->contexts_n = self->contexts_cap = 0;
    if (self->context_of)
        PyDict_Clear(self->context_of);
}

/* --- type ------------------------------------------------------------------------------- */

static int Ids_init(Ids *self, PyObject *args, PyObject *kwds) {
    PyTypeObject *type;
    if (!PyArg_ParseTuple(args, "O!:SeriesIds", &PyType_Type, &type))
        return -1;
    static const char *names[3] = {"bucket", "source", "field"};
    for (int i = 0; i < 3; i++) {
        /* The key type's slots are member descriptors: read at their offsets, as
        object.__getattribute__ would (a tenth of its cost). */
        PyObject *descr = PyDict_GetItemString(type->tp_dict, names[i]);
        if (!descr || Py_TYPE(descr) != &PyMemberDescr_Type ||
            ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX) {
            PyErr_Format(PyExc_TypeError, "%s has no slot '%s'", type->tp_name, names[i]);
            return -1;
        }
        self->offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
    }
    drop_all(self);
    Py_XSETREF(self->key_type, (PyTypeObject *)Py_NewRef(type));
    if (!self->context_of && !(self->context_of = PyDict_New()))
        return -1;
    return alloc_slots(self, 16);
}

static void Ids_dealloc(Ids *self) {
    drop_all(self);
    Py_XDECREF(self->context_of);
    Py_XDECREF(self->key_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t Ids_len(Ids *self) { return (Py_ssize_t)self->used; }

/* A key's names, borrowed: from its slots when it is of the key type, else by attribute
(new references, then released by the caller through `owned`). */
static int names_of(Ids *self, PyObject *key, PyObject *out[3], int *owned) {
    if (Py_TYPE(key) == self->key_type) {
        for (int i = 0; i < 3; i++) {
            out[i] = *(PyObject **)((char *)key + self->offsets[i]);
            if (!out[i]) {
                PyErr_SetString(PyExc_AttributeError, "a series key without its names");
                return -1;
            }
        }
        *owned = 0;
        return 0;
    }
    static const char *names[3] = {"bucket", "source", "field"};
    for (int i = 0; i < 3; i++) {
        out[i] = PyObject_GetAttrString(key, names[i]);
        if (!out[i]) {
            for (int k = 0; k < i; k++)
                Py_DECREF(out[k]);
            return -1;
        }
    }
    *owned = 1;
    return 0;
}

static void release_names(PyObject *names[3], int owned) {
    if (owned)
        for (int i = 0; i < 3; i++)
            Py_DECREF(names[i]);
}

/* Whether the slot holds (org, b, s, f); -1 on an error. */
static int slot_is(Ids *self, Slot *slot, int64_t org, PyObject *b, PyObject *s, PyObject *f) {
    Context *c = &self->contexts[slot->context];
    if (c->org != org)
        return 0;
    int same = same_text(c->bucket, b);
    if (same == 1)
        same = same_text(c->field, f);
    if (same == 1)
        same = same_text(slot->source, s);
    return same;
}

/* Whether the stored name is `name` (ASCII bytes, or a str); -1 on an error. */
static inline int same_name(PyObject *stored, const SeriesName *name) {
    if (!name->bytes)
        return same_text(stored, name->text);
    if (PyUnicode_CheckExact(stored))
        return PyUnicode_IS_ASCII(stored) && PyUnicode_GET_LENGTH(stored) == name->size &&
               memcmp(PyUnicode_1BYTE_DATA(stored), name->bytes, (size_t)name->size) == 0;
    PyObject *text = PyUnicode_FromStringAndSize(name->bytes, name->size); /* (a subclass) */
    int same = text ? same_text(stored, text) : -1;
    Py_XDECREF(text);
    return same;
}

/* The first slot of each key's hash (-1: none, a miss), its source prefetched for the check
   that follows. */
static inline void first_slots(const Slot *slots, size_t mask, const uint64_t *hashes,
                               Py_ssize_t n, Py_ssize_t *at) {
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t j = hashes[i] & mask;
        at[i] = -1;
        for (; slots[j].source; j = (j + 1) & mask) {
            if (slots[j].hash == hashes[i]) {
                at[i] = (Py_ssize_t)j;
                __builtin_prefetch(slots[j].source);
                __builtin_prefetch((char *)slots[j].source + 64);
                break;
            }
        }
    }
}

/* `Ids_get` of keys given as names (series_names.h): the same three passes, with the names'
hashes and bytes, so no key, str or hash is made for a key the table holds. */
static Py_ssize_t get_named(Ids *self, int64_t org, const SeriesNames *keys, int64_t *series_id,
                            int64_t *bucket_id, uint64_t *hashes, Py_ssize_t *at) {
    Py_ssize_t n = keys->n;
    const SeriesName *name = keys->name;
    Slot *slots = self->slots;
    size_t mask = self->mask;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int32_t *t = &keys->triple[3 * i];
        hashes[i] = mix(org, name[t[0]].hash, name[t[1]].hash, name[t[2]].hash);
        __builtin_prefetch(&slots[hashes[i] & mask]);
    }
    first_slots(slots, mask, hashes, n, at);
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        series_id[i] = bucket_id[i] = -1;
        if (at[i] < 0)
            continue;
        const int32_t *t = &keys->triple[3 * i];
        int same = 0;
        for (size_t j = (size_t)at[i]; slots[j].source; j = (j + 1) & mask) {
            if (slots[j].hash != hashes[i])
                continue;
            Context *c = &self->contexts[slots[j].context];
            same = c->org == org;
            if (same == 1)
                same = same_name(c->bucket, &name[t[0]]);
            if (same == 1)
                same = same_name(c->field, &name[t[2]]);
            if (same == 1)
                same = same_name(slots[j].source, &name[t[1]]);
            if (same == 1) {
                series_id[i] = slots[j].series_id;
                bucket_id[i] = c->bucket_id;
                found++;
            }
            if (same != 0)
                break;
        }
        if (same < 0)
            return -1;
    }
    return found;
}

/* The names of keys given as a decoder's sequence (its `_names`), or NULL with no error for any
other sequence. */
static const SeriesNames *names_given(PyObject *keys, PyObject **capsule) {
    *capsule = NULL;
    if (PyList_CheckExact(keys) || PyTuple_CheckExact(keys))
        return NULL;
    *capsule = PyObject_GetAttrString(keys, "_names");
    if (!*capsule) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        return NULL;
    }
    const SeriesNames *names = PyCapsule_GetPointer(*capsule, SERIES_NAMES_CAPSULE);
    if (!names) {
        PyErr_Clear(); /* another `_names`: the keys are read as a sequence */
        Py_CLEAR(*capsule);
    }
    return names;
}

/* get(org_id, keys, series_id, bucket_id): each key's ids written into the two int64 buffers
(-1 where not cached); returns how many were found. */
static PyObject *Ids_get(Ids *self, PyObject *args) {
    long long org;
    PyObject *keys;
    Py_buffer out_series, out_bucket;
    if (self->busy || !self->slots) {
        PyErr_SetString(PyExc_RuntimeError, "SeriesIds in use or not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "LOw*w*:get", &org, &keys, &out_series, &out_bucket))
        return NULL;
    PyObject *result = NULL, *fast = NULL, *capsule = NULL;
    uint64_t *hashes = NULL;
    Py_ssize_t *at = NULL;
    const SeriesNames *named = names_given(keys, &capsule);
    if (!named && PyErr_Occurred())
        goto done;
    if (!named && !(fast = PySequence_Fast(keys, "keys must be a sequence")))
        goto done;
    Py_ssize_t n = named ? named->n : PySequence_Fast_GET_SIZE(fast);
    if (out_series.len != n * 8 || out_bucket.len != n * 8) {
        PyErr_SetString(PyExc_ValueError, "the id buffers must hold 8 bytes a key");
        goto done;
    }
    int64_t *series_id = out_series.buf, *bucket_id = out_bucket.buf;
    hashes = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
    at = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
    if (!hashes || !at) {
        PyErr_NoMemory();
        goto done;
    }
    self->busy = 1;
    if (named) {
        Py_ssize_t found = get_named(self, org, named, series_id, bucket_id, hashes, at);
        if (found >= 0)
            result = PyLong_FromSsize_t(found);
        goto busy;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    /* 1: each key's hash, its first slot prefetched. A request's keys mostly share their
    bucket and field objects: their hashes are reused. */
    PyObject *last_b = NULL, *last_f = NULL;
    Py_hash_t hb = 0, hf = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *names[3];
        int owned;
        if (names_of(self, items[i], names, &owned) < 0)
            goto busy;
        Py_hash_t hs = PyObject_Hash(names[1]);
        if (names[0] != last_b) {
            hb = PyObject_Hash(names[0]);
            last_b = owned ? NULL : names[0];
        }
        if (names[2] != last_f) {
            hf = PyObject_Hash(names[2]);
            last_f = owned ? NULL : names[2];
        }
        release_names(names, owned);
        if (hs == -1 || hb == -1 || hf == -1) /* (a hash is never -1 but on an error) */
            goto busy;
        hashes[i] = mix(org, hb, hs, hf);
        __builtin_prefetch(&self->slots[hashes[i] & self->mask]);
    }
    /* 2: the first slot of each key's hash, its source prefetched (-1: none, a miss). */
    Slot *slots = self->slots;
    size_t mask = self->mask;
    first_slots(slots, mask, hashes, n, at);
    /* 3: every hit verified; a slot of the same hash and another key (a collision) leads on
    to the next slot of that hash. */
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        series_id[i] = bucket_id[i] = -1;
        if (at[i] < 0)
            continue;
        PyObject *names[3];
        int owned;
        if (names_of(self, items[i], names, &owned) < 0)
            goto busy;
        int same = 0;
        for (size_t j = (size_t)at[i]; slots[j].source; j = (j + 1) & mask) {
            if (slots[j].hash != hashes[i])
                continue;
            same = slot_is(self, &slots[j], org, names[0], names[1], names[2]);
            if (same == 1) {
                series_id[i] = slots[j].series_id;
                bucket_id[i] = self->contexts[slots[j].context].bucket_id;
                found++;
            }
            if (same != 0)
                break;
        }
        release_names(names, owned);
        if (same < 0)
            goto busy;
    }
    result = PyLong_FromSsize_t(found);
busy:
    self->busy = 0;
done:
    PyMem_Free(hashes);
    PyMem_Free(at);
    Py_XDECREF(fast);
    Py_XDECREF(capsule);
    PyBuffer_Release(&out_series);
    PyBuffer_Release(&out_bucket);
    return result;
}

/* The number of the context (org, bucket, field, bucket id), made if new. */
static Py_ssize_t context_number(Ids *self, int64_t org, PyObject *b, PyObject *f,
                                 int64_t bucket_id) {
    PyObject *tuple = Py_BuildValue("(LOOL)", (long long)org, b, f, (long long)bucket_id);
    if (!tuple)
        return -1;
    PyObject *known = PyDict_GetItemWithError(self->context_of, tuple);
    if (known) {
        Py_DECREF(tuple);
        return PyLong_AsSsize_t(known);
    }
    if (PyErr_Occurred() || self->contexts_n >= UINT32_MAX) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "too many series contexts");
        Py_DECREF(tuple);
        return -1;
    }
    if (self->contexts_n == self->contexts_cap) {
        size_t cap = self->contexts_cap ? 2 * self->contexts_cap : 8;
        Context *grown = PyMem_Realloc(self->contexts, cap * sizeof(Context));
        if (!grown) {
            Py_DECREF(tuple);
            PyErr_NoMemory();
            return -1;
        }
        self->contexts = grown;
        self->contexts_cap = cap;
    }
    Py_ssize_t number = (Py_ssize_t)self->contexts_n;
    PyObject *value = PyLong_FromSsize_t(number);
    int stored = value ? PyDict_SetItem(self->context_of, tuple, value) : -1;
    Py_XDECREF(value);
    Py_DECREF(tuple);
    if (stored < 0)
        return -1;
    self->contexts[number] = (Context){org, bucket_id, Py_NewRef(b), Py_NewRef(f)};
    self->contexts_n++;
    return number;
}

static int grow(Ids *self) {
    Slot *old = self->slots;
    size_t old_size = self->mask + 1, used = self->used;
    if (alloc_slots(self, 2 * old_size) < 0) {
        self->slots = old;
        self->mask = old_size - 1;
        return -1;
    }
    for (size_t i = 0; i < old_size; i++) {
        if (!old[i].source)
            continue;
        size_t j = old[i].hash & self->mask;
        while (self->slots[j].source)
            j = (j + 1) & self->mask;
        self->slots[j] = old[i];
    }
    self->used = used;
    PyMem_Free(old);
    return 0;
}

/* One learned key: its ids replaced if cached, else a slot taken. */
static int learn(Ids *self, PyObject *key, PyObject *hit) {
    long long org, series_id, bucket_id;
    PyObject *b, *s, *f;
    if (!PyTuple_Check(key) || !PyTuple_Check(hit) ||
        !PyArg_ParseTuple(key, "LOOO", &org, &b, &s, &f) ||
        !PyArg_ParseTuple(hit, "LL", &series_id, &bucket_id)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "learned: {(org, bucket, source, field): (ids)}");
        return -1;
    }
    Py_hash_t hb = PyObject_Hash(b), hs = PyObject_Hash(s), hf = PyObject_Hash(f);
    if ((hb == -1 || hs == -1 || hf == -1) && PyErr_Occurred())
        return -1;
    uint64_t h = mix(org, hb, hs, hf);
    Py_ssize_t context = context_number(self, org, b, f, bucket_id);
    if (context < 0)
        return -1;
    size_t j = h & self->mask;
    for (; self->slots[j].source; j = (j + 1) & self->mask) {
        Slot *slot = &self->slots[j];
        if (slot->hash != h)
            continue;
        int same = slot_is(self, slot, org, b, s, f);
        if (same < 0)
            return -1;
        if (same) {
            slot->series_id = series_id;
            slot->context = (uint32_t)context;
            return 0;
        }
    }
    self->slots[j] = (Slot){h, series_id, Py_NewRef(s), (uint32_t)context};
    if (++self->used * 2 > self->mask + 1)
        return grow(self);
    return 0;
}

/* update(learned): add keys resolved by a write, {(org, bucket, source, field): (series id,
bucket id)}; a key cached already takes its new ids, as in a dict. */
static PyObject *Ids_update(Ids *self, PyObject *learned) {
    if (!PyDict_Check(learned)) {
        PyErr_SetString(PyExc_TypeError, "learned must be a dict");
        return NULL;
    }
    if (self->busy || !self->slots) {
        PyErr_SetString(PyExc_RuntimeError, "SeriesIds in use or not initialised");
        return NULL;
    }
    self->busy = 1;
    Py_ssize_t pos = 0;
    PyObject *key, *hit;
    int failed = 0;
    while (!failed && PyDict_Next(learned, &pos, &key, &hit))
        failed = learn(self, key, hit) < 0;
    self->busy = 0;
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Ids_clear(Ids *self, PyObject *unused) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "SeriesIds in use");
        return NULL;
    }
    drop_all(self);
    if (alloc_slots(self, 16) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Ids_methods[] = {
    {"get", (PyCFunction)Ids_get, METH_VARARGS,
     "get(org_id, keys, series_id, bucket_id) -> found: each key's ids into the two int64 "
     "buffers, -1 where not cached."},
    {"update", (PyCFunction)Ids_update, METH_O,
     "update(learned): {(org, bucket, source, field): (series id, bucket id)} added."},
    {"clear", (PyCFunction)Ids_clear, METH_NOARGS, "clear(): every key forgotten."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Ids_sequence = {.sq_length = (lenfunc)Ids_len};

static PyTypeObject IdsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sensorbase.ingest._series_ids.SeriesIds",
    .tp_basicsize = sizeof(Ids),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SeriesIds(key_type): series ids by (organisation, bucket, source, field).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ids_init,
    .tp_dealloc = (destructor)Ids_dealloc,
    .tp_methods = Ids_methods,
    .tp_as_sequence = &Ids_sequence,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sensorbase.ingest._series_ids",
    .m_doc = "The ingest pipeline's series ids, a request's keys looked up at once.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__series_ids(void) {
    if (PyType_Ready(&IdsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "SeriesIds", (PyObject *)&IdsType) < 0)
        Py_CLEAR(m);
    return m;
}
