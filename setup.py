"""The compiled modules: the native write's common body decoded into columns
(src/sensorbase/dialects/native/_columns.c), line protocol's plain lines likewise
(dialects/influx/_lines.c) and a query reply's points encoded as JSON (native/_points_json.c).
Everything else is in pyproject.toml.

Optional: without a C compiler and Python's headers the install goes on without them, the write
path decodes through msgspec alone (dialects/native/fast_decode.py), line protocol through
Python (influx/lineproto.py) and replies are laid out by numpy (points_json.py); the tests of
each module fail then (SENSORBASE_REQUIRE_COMPILED), so that CI proves the modules build."""

from setuptools import Extension, setup


def _module(name: str, depends: tuple[str, ...] = ()) -> Extension:
    """sensorbase.dialects.<name>, from src/sensorbase/dialects/<name>.c."""
    return Extension(
        f"sensorbase.dialects.{name.replace('/', '.')}",
        [f"src/sensorbase/dialects/{name}.c"],
        depends=[f"src/sensorbase/dialects/{d}" for d in depends],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        optional=True,
    )


setup(
    ext_modules=[
        _module("native/_columns", ("parsing.h",)),
        _module("influx/_lines", ("parsing.h",)),
        _module("native/_points_json"),
    ]
)
