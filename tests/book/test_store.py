"""BookStore segment lifecycle: capacity, unknown books, attach by name,
stale segments from crashed owners, and clean-up on shutdown."""

import os
import subprocess
import sys
import uuid
from multiprocessing import shared_memory

import pytest

from engine.book.reader import BookReader
from engine.book.store import BookStore, BookStoreError, BookStoreFull, BookStoreInUse, UnknownBook
from engine.book.writer import BookWriter


def name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def test_store_capacity_exceeded_raises_with_hint():
    s = BookStore.create(name(), capacity=2, depth=4)
    try:
        assert s.register("a:spot:X/Y") == 0
        assert s.register("b:spot:X/Y") == 1
        assert s.register("a:spot:X/Y") == 0  # idempotent
        with pytest.raises(BookStoreFull, match="books.capacity"):
            s.register("c:spot:X/Y")
    finally:
        s.close()


def test_store_unknown_book_raises():
    s = BookStore.create(name(), capacity=2, depth=4)
    try:
        with pytest.raises(UnknownBook):
            s.index("nope:spot:X/Y")
        with pytest.raises(UnknownBook):
            BookReader(s).read("nope:spot:X/Y")
        with pytest.raises(UnknownBook):
            BookReader(s).read(1)  # allocated slot range only
    finally:
        s.close()


def test_store_close_unlinks_segment():
    n = name()
    s = BookStore.create(n, capacity=2, depth=4)
    assert os.path.exists(f"/dev/shm/{n}")
    s.close()
    assert not os.path.exists(f"/dev/shm/{n}")
    with pytest.raises(BookStoreError, match="no book store"):
        BookStore.attach(n)


def test_store_attach_sees_books_registered_later():
    n = name()
    s = BookStore.create(n, capacity=4, depth=4)
    try:
        r = BookReader.attach(n)
        w = BookWriter(s)
        i = s.register("x:spot:A/B")
        w.apply_snapshot(i, [(1.0, 2.0)], [(3.0, 4.0)], seq=9)
        assert r.read("x:spot:A/B").seq == 9
        r.close()
        assert os.path.exists(f"/dev/shm/{n}")  # a reader never unlinks
    finally:
        s.close()


def test_store_stale_segment_from_dead_owner_is_replaced():
    n = name()
    # A child creates the segment and dies without cleaning up (SIGKILL-like).
    code = ("import os, sys; sys.path.insert(0, %r)\n"
            "from multiprocessing import resource_tracker\n"
            "from engine.book.store import BookStore\n"
            "s = BookStore.create(%r, 2, 4); s.register('old:spot:A/B')\n"
            "resource_tracker.unregister(s.shm._name, 'shared_memory')\n"
            "os._exit(0)\n") % (os.getcwd(), n)
    subprocess.run([sys.executable, "-c", code], check=True)
    assert os.path.exists(f"/dev/shm/{n}")
    s = BookStore.create(n, capacity=3, depth=5)
    try:
        assert s.count() == 0 and s.capacity == 3 and s.depth == 5
    finally:
        s.close()


def test_store_segment_of_live_owner_is_refused():
    n = name()
    s = BookStore.create(n, capacity=2, depth=4)
    try:
        # Pretend another live process owns it: our parent pid is alive.
        import struct
        struct.pack_into("<Q", s.buf, 32, os.getppid())
        with pytest.raises(BookStoreInUse, match="running process"):
            BookStore.create(n, capacity=2, depth=4)
    finally:
        struct.pack_into("<Q", s.buf, 32, os.getpid())
        s.close()


def test_store_foreign_segment_is_not_attached():
    n = name()
    shm = shared_memory.SharedMemory(name=n, create=True, size=4096)
    try:
        with pytest.raises(BookStoreError, match="not a book store"):
            BookStore.attach(n)
    finally:
        shm.close()
        shm.unlink()
