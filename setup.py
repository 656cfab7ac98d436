"""Declares the compiled book core (engine/book/_core.c); all metadata and
options live in setup.cfg. This file exists only because setuptools cannot
declare a C extension in setup.cfg, and pyproject.toml's ext-modules table is
refused unless the metadata moves into a [project] table."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("engine.book._core", ["engine/book/_core.c"],
                             extra_compile_args=["-O3"])])
