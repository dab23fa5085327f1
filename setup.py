"""The one compiled module: the native write's common body decoded into columns
(src/sensorbase/dialects/native/_columns.c). Everything else is in pyproject.toml.

Optional: without a C compiler and Python's headers the install goes on without it, and the
write path decodes through msgspec alone (dialects/native/fast_decode.py); tests/dialects/
native/test_columns.py fails then, so that CI proves the module builds."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sensorbase.dialects.native._columns",
            ["src/sensorbase/dialects/native/_columns.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
