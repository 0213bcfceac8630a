"""Builds the gateway's C fast paths; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.records._speedups",
            sources=["gateway/records/_speedups.c"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"],
            # Without a compiler the package still installs: the reference paths serve.
            optional=True,
        )
    ]
)
