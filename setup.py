"""Build steps (all metadata and options live in setup.cfg):

- the compiled parts: engine.book._core (the book core) and
  engine.venues._levels (JSON levels to C doubles). setuptools cannot declare
  a C extension in setup.cfg, and pyproject.toml's ext-modules table is
  refused unless the metadata moves into a [project] table;
- a wheel carries the SQL migrations, run.py and the tools as package data
  under engine/_bundled/ (engine.entry finds them there), so a non-editable
  install runs outside the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("sql", "run.py", "tools")  # relative to the checkout, copied as they are
FLAGS = ["-O3"]


class BuildWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        target = Path(self.build_lib) / "engine" / "_bundled"
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(
    cmdclass={"build_py": BuildWithShippedFiles},
    ext_modules=[
        Extension("engine.book._core",
                  ["engine/book/_core.c", "engine/book/_core_sides.c",
                   "engine/book/_core_reader.c"],
                  depends=["engine/book/_core.h"], extra_compile_args=FLAGS),
        Extension("engine.venues._levels", ["engine/venues/_levels.c", "engine/venues/_frames.c",
                                            "engine/venues/_checksum.c"],
                  depends=["engine/venues/_levels.h"], extra_compile_args=FLAGS),
    ],
)
