"""The compiled modules: the native write's common body decoded into columns
(src/sensorbase/dialects/native/_columns.c), line protocol's plain lines likewise
(dialects/influx/_lines.c), a query reply's points encoded as JSON (native/_points_json.c),
the ingest pipeline's cache of series ids (ingest/_series_ids.c), a whole plain HTTP request
split for a fast lane (server/_request.c) and a chunk's values scaled and its blocks' summaries
encoded (storage/_chunk_blocks.c).
Everything else is in pyproject.toml.

Optional: without a C compiler and Python's headers the install goes on without them, the write
path decodes through msgspec alone (dialects/native/fast_decode.py), line protocol through
Python (influx/lineproto.py), replies are laid out by numpy (points_json.py), series ids
are cached in numpy's sorted arrays (ingest/series_cache.py), every request goes through
the httptools parser (server/protocol.py) and chunks are encoded by numpy (storage/chunks.py);
the tests of
each module fail then (SENSORBASE_REQUIRE_COMPILED), so that CI proves the modules build."""

from setuptools import Extension, setup


def _module(name: str, depends: tuple[str, ...] = ()) -> Extension:
    """sensorbase.<name>, from src/sensorbase/<name>.c."""
    return Extension(
        f"sensorbase.{name.replace('/', '.')}",
        [f"src/sensorbase/{name}.c"],
        depends=[f"src/sensorbase/{d}" for d in depends],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        optional=True,
    )


setup(
    ext_modules=[
        _module("dialects/native/_columns", ("dialects/parsing.h", "ingest/series_names.h")),
        _module("dialects/influx/_lines", ("dialects/parsing.h",)),
        _module("dialects/native/_points_json"),
        _module("ingest/_series_ids", ("ingest/series_names.h",)),
        _module("server/_request"),
        _module("storage/_chunk_blocks"),
    ]
)
