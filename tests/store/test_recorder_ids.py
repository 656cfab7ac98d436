"""Batch ids: increasing per writer, above what a previous run used even
with the clock set back, and tagged per daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.store.batch_ids import TAG_BITS, BatchIds, writer_tag


def test_batch_ids_increase_and_carry_the_writer_tag(tmp_path: Path) -> None:
    ids = BatchIds("daemon-a", tmp_path / "last")
    issued = [ids.next() for _ in range(1000)]
    assert issued == sorted(set(issued))
    assert {i & ((1 << TAG_BITS) - 1) for i in issued} == {writer_tag("daemon-a")}
    assert writer_tag("daemon-a") != writer_tag("daemon-b")


def test_batch_ids_continue_above_the_last_run_when_the_clock_went_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = BatchIds("d", tmp_path / "last")
    last = first.next()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000_000_000)  # years earlier
    again = BatchIds("d", tmp_path / "last")
    assert again.next() > last


def test_batch_ids_raise_to_the_stores_highest(tmp_path: Path) -> None:
    ids = BatchIds("d", tmp_path / "last")
    far = (ids.next() >> TAG_BITS) + 10**6 << TAG_BITS
    ids.raise_to(far)
    assert ids.next() > far


def test_batch_ids_start_above_the_spill_floor(tmp_path: Path) -> None:
    floor = ((time.time_ns() // 1_000_000) + 10**7) << TAG_BITS
    assert BatchIds("d", tmp_path / "last", floor=floor).next() > floor
