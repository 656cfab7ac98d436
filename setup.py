"""Declares the compiled parts (all metadata and options live in setup.cfg):
engine.book._core (the book core) and engine.venues._levels (JSON levels to
C doubles). This file exists only because setuptools cannot declare a C
extension in setup.cfg, and pyproject.toml's ext-modules table is refused
unless the metadata moves into a [project] table."""

from setuptools import Extension, setup

FLAGS = ["-O3"]
setup(ext_modules=[
    Extension("engine.book._core",
              ["engine/book/_core.c", "engine/book/_core_sides.c", "engine/book/_core_reader.c"],
              depends=["engine/book/_core.h"], extra_compile_args=FLAGS),
    Extension("engine.venues._levels", ["engine/venues/_levels.c"], extra_compile_args=FLAGS),
])
