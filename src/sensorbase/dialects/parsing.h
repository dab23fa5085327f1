/* What the compiled parsers share (native/_columns.c, influx/_lines.c): their outcome, and the
hash of their tables with its bound on probes. */

#include <stdint.h>
#include <string.h>

typedef enum { OK = 0, DEFER = 1, FAILED = 2 } Outcome; /* FAILED: a Python error is set */

/* A client who knows a table's hash can make names that all hash alike: each lookup would
then walk all of them, quadratic in a body's names. A lookup that probes this many slots (a
table at most half full of honest names needs ~1.5 on average) defers the body to the Python
paths, whose dicts hash with Python's keyed SipHash. */
#define MAX_PROBES 64

/* `n` bytes at `p`, from `seed` (a constant, or a secret of the process). */
static uint64_t hash_bytes(uint64_t seed, const char *p, Py_ssize_t n) {
    uint64_t h = seed ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, (size_t)n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    /* murmur3's finaliser, so that every byte reaches the low bits that pick a slot. With
    `h ^ (h >> 29)` alone, a tail's bytes past the fifth never did: names differing only there
    ("s000001" ... "s004999") shared a few slots, went past MAX_PROBES, and a 5,000-series
    body of them was deferred to msgspec's path at ~3x the CPU (measured: ingest/series_cache
    benchmarks, 2026-12-07). */
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}
