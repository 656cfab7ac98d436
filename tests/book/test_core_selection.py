"""books.core selects the book core explicitly: the config refuses unknown
names, the books component runs the chosen core and reports it, and choosing
the compiled core without the built extension fails with how to fix it."""

import uuid

import pytest

from engine import config as cfg
from engine.app import BooksComponent
from engine.book import core


def books_config(name: str) -> cfg.Config:
    return cfg.parse({"books": {"core": name, "segment_name": f"t_{uuid.uuid4().hex[:12]}",
                                "capacity": 2, "depth": 4}})


@pytest.mark.parametrize("name, label", [("python", "python (reference)"), ("compiled", "compiled")])
def test_books_component_runs_and_reports_the_chosen_core(name, label):
    if name == "compiled" and not core.compiled_available():
        pytest.skip("compiled core not built")
    books = BooksComponent(books_config(name))
    books.start()
    try:
        assert books.status()["core"] == label
        writer = books.started_writer()
        i = books.store.register("x:spot:A/B")
        assert writer.apply_snapshot(i, [(1.0, 2.0)], [(3.0, 4.0)], seq=1)
        assert books.reader.read(i).bids.tolist() == [[1.0, 2.0]]
    finally:
        books.stop(1.0)


def test_config_refuses_an_unknown_core_by_name():
    with pytest.raises(cfg.ConfigError, match="core"):
        books_config("fast")


def test_compiled_core_missing_fails_before_start_saying_how_to_fix(monkeypatch):
    monkeypatch.setattr(core, "_core", None)
    monkeypatch.setattr(core, "IMPORT_ERROR", "No module named 'engine.book._core'")
    with pytest.raises(core.CoreUnavailable, match="pip install -e .*books.core: python"):
        BooksComponent(books_config("compiled"))
    BooksComponent(books_config("python"))  # the reference needs nothing built
