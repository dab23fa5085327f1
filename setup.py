"""The compiled modules: the native write's common body decoded into columns
(src/sensorbase/dialects/native/_columns.c), line protocol's plain lines likewise
(dialects/influx/_lines.c) and a query reply's points encoded as JSON (native/_points_json.c).
Everything else is in pyproject.toml.

Optional: without a C compiler and Python's headers the install goes on without them, the write
path decodes through msgspec alone (dialects/native/fast_decode.py), line protocol through
Python (influx/lineproto.py) and replies are laid out by numpy (points_json.py); the tests of
each module fail then (SENSORBASE_REQUIRE_COMPILED), so that CI proves the modules build."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sensorbase.dialects.native._columns",
            ["src/sensorbase/dialects/native/_columns.c"],
            depends=["src/sensorbase/dialects/parsing.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
        Extension(
            "sensorbase.dialects.influx._lines",
            ["src/sensorbase/dialects/influx/_lines.c"],
            depends=["src/sensorbase/dialects/parsing.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
        Extension(
            "sensorbase.dialects.native._points_json",
            ["src/sensorbase/dialects/native/_points_json.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ]
)
