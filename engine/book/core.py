"""Choice of book core: the compiled writer (engine/book/_core.c) or the
pure-Python reference (writer.py), selected by config ``books.core`` and named
in the start-up summary. Never falls back silently: ``compiled`` without the
built extension is an error that says how to build it or choose ``python``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.book.store import BookStore
from engine.book.writer import BookDataError, BookWriter
from engine.model import Level, SyncState

CORES = ("compiled", "python")

try:
    from engine.book import _core  # type: ignore[attr-defined]
except ImportError as exc:  # not built: only the reference core is available
    _core = None
    IMPORT_ERROR: str = str(exc)
else:
    IMPORT_ERROR = ""


class CoreUnavailable(RuntimeError):
    """books.core is ``compiled`` but the extension was not built."""


def compiled_available() -> bool:
    return _core is not None


class CompiledBookWriter:
    """BookWriter's interface on the compiled core. ``apply_delta`` and
    ``apply_snapshot`` are the C methods themselves (no Python frame per
    frame); each C call holds the GIL throughout, so it is atomic to other
    threads and needs no stripe lock. Levels are converted to C doubles before
    a book is touched; a bad level raises BookDataError exactly as the
    reference does (tests/book/test_core_differential.py)."""

    core_name = "compiled"
    apply_delta: Callable[..., bool]
    apply_snapshot: Callable[..., bool]

    def __init__(self, store: BookStore) -> None:
        assert store.owner, "CompiledBookWriter needs the owning BookStore"
        if _core is None:
            raise CoreUnavailable(f"compiled book core not built ({IMPORT_ERROR})")
        self.store = store
        self.layout = store.layout
        self.depth = store.layout.depth
        lay = store.layout
        self._core = _core.Core(lay.books_offset, lay.record_size, lay.depth, lay.capacity,
                                BookDataError)
        self._core.attach(store.buf)
        store.on_close(self._core.detach)
        self.apply_delta = self._core.delta
        self.apply_snapshot = self._core.snapshot

    @property
    def crossed_count(self) -> int:
        return int(self._core.crossed_count)

    def set_state(self, index: int, state: SyncState) -> None:
        self._core.set_state(index, int(state))

    def clear(self, index: int, state: SyncState = SyncState.RESYNCING) -> None:
        self._core.clear(index, int(state))

    def state(self, index: int) -> SyncState:
        return SyncState(self._core.state(index))

    def levels(self, index: int, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        return self._core.levels(index, -1 if depth is None else depth)


def check_core(core: str) -> None:
    """Raise if ``core`` cannot run here, saying how to fix it."""
    if core not in CORES:
        raise ValueError(f"books.core must be one of {CORES}, got {core!r}")
    if core == "compiled" and _core is None:
        raise CoreUnavailable(
            f"books.core is 'compiled' but the extension engine.book._core is not built "
            f"({IMPORT_ERROR}); run `pip install -e .` (needs gcc and the Python headers) "
            f"or set books.core: python")


def make_writer(store: BookStore, core: str = "compiled") -> Any:
    """The writer for ``core`` ("compiled" or "python"); both have BookWriter's interface."""
    check_core(core)
    return CompiledBookWriter(store) if core == "compiled" else BookWriter(store)


def core_name(writer: Any) -> str:
    """"compiled" or "python (reference)" for the start-up summary and /status."""
    return "compiled" if isinstance(writer, CompiledBookWriter) else "python (reference)"

