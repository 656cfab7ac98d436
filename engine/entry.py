"""Console-script entry points (setup.cfg): the daemon (run.py) and the tools,
loaded from the copies a built wheel carries in ``engine/_bundled/`` or, in a
checkout or an editable install, from ``run.py`` and ``tools/`` beside the
package. Owns the lookup only; the scripts themselves are unchanged."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLED = PACKAGE / "_bundled"  # filled by setup.py's build step, absent in a checkout


def shipped(relative: str) -> Path:
    """A file or folder shipped beside the code: the wheel's copy, else the checkout's."""
    copy = BUNDLED / relative
    return copy if copy.exists() else PACKAGE.parent / relative


def _main(relative: str) -> Callable[[], int]:
    path = shipped(relative)
    if not path.is_file():
        raise SystemExit(f"{relative} is not installed with this package ({path})")
    spec = importlib.util.spec_from_file_location(f"engine_script_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.main  # type: ignore[no-any-return]


def daemon() -> None:
    sys.exit(_main("run.py")())


def tasks() -> None:
    sys.exit(_main("tools/tasks.py")())


def replay() -> None:
    sys.exit(_main("tools/replay.py")())


def import_capture() -> None:
    sys.exit(_main("tools/import_capture.py")())


def reconcile() -> None:
    sys.exit(_main("tools/reconcile.py")())


def bench() -> None:
    sys.exit(_main("tools/bench.py")())
