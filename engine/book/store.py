"""The shared-memory segment that holds every book: creation, attachment by
name, the key directory, stale-segment recovery and clean-up. Owns the
segment's lifecycle; it never interprets levels (writer.py and reader.py do).
"""

from __future__ import annotations

import _posixshmem  # type: ignore[import-not-found]
import os
import threading
from collections.abc import Callable
from multiprocessing import resource_tracker, shared_memory

from loguru import logger

from engine.book import layout as L

log = logger.bind(component="books")


class BookStoreError(RuntimeError):
    pass


class BookStoreFull(BookStoreError):
    pass


class UnknownBook(KeyError):
    pass


class BookStoreInUse(BookStoreError):
    pass


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_TRACKER_PATCH = threading.Lock()


def _attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Attach without registering with the resource tracker. Python < 3.13
    registers attached segments too, so a reader's exit would unlink the
    owner's segment; unregistering afterwards is no better, because spawned
    children share the owner's tracker and would drop its registration."""
    with _TRACKER_PATCH:
        register = resource_tracker.register
        resource_tracker.register = lambda *args, **kwargs: None  # type: ignore[assignment]
        try:
            return shared_memory.SharedMemory(name=name)
        finally:
            resource_tracker.register = register  # type: ignore[assignment]


class BookStore:
    """A segment of ``capacity`` books x ``depth`` levels, owned or attached.

    The owner (the daemon process) registers books and writes; attached stores
    in other processes read. ``lock_for(i)`` is the writer stripe for book i.
    """

    def __init__(self, shm: shared_memory.SharedMemory, layout: L.Layout, owner: bool,
                 lock_stripes: int = 64) -> None:
        self.shm = shm
        self.layout = layout
        self.owner = owner
        self.name = shm.name
        assert shm.buf is not None
        self.buf: memoryview = shm.buf
        self._keys: dict[str, int] = {}
        self._names: list[str] = []  # index -> key
        self._register_lock = threading.Lock()
        self._locks = [threading.Lock() for _ in range(max(1, lock_stripes))]
        self._closed = False
        self._close_hooks: list[Callable[[], None]] = []

    def on_close(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` before the mapping goes (the compiled core holds a raw pointer)."""
        self._close_hooks.append(hook)

    # ---------------------------------------------------------- construction

    @classmethod
    def create(cls, name: str, capacity: int, depth: int, lock_stripes: int = 64) -> BookStore:
        """Create the segment; recover a stale one left by a dead owner."""
        lay = L.Layout(capacity, depth)
        try:
            shm = shared_memory.SharedMemory(name=name, create=True, size=lay.total_size)
        except FileExistsError:
            cls._recover_stale(name)
            shm = shared_memory.SharedMemory(name=name, create=True, size=lay.total_size)
        buf = shm.buf
        assert buf is not None
        buf[: lay.books_offset] = bytes(lay.books_offset)
        L.SEGMENT_HEADER.pack_into(buf, 0, L.MAGIC, L.LAYOUT_VERSION, capacity, depth,
                                   os.getpid(), 0, lay.record_size, 0)
        log.info("book store created name={} capacity={} depth={} bytes={}",
                 name, capacity, depth, lay.total_size)
        return cls(shm, lay, owner=True, lock_stripes=lock_stripes)

    @staticmethod
    def _recover_stale(name: str) -> None:
        old = _attach_untracked(name)
        try:
            assert old.buf is not None
            fields = L.SEGMENT_HEADER.unpack_from(old.buf, 0) if old.size >= 64 else (0,) * 8
            magic, pid = fields[0], fields[4]
            if magic == L.MAGIC and pid != os.getpid() and _pid_alive(pid):
                raise BookStoreInUse(
                    f"shared memory segment {name!r} belongs to running process {pid}; "
                    f"stop it or set books.segment_name to another name")
            log.warning("removing stale book segment name={} owner_pid={}", name, pid)
        finally:
            old.close()
        try:
            stale = _attach_untracked(name)
            stale.close()
            # Not stale.unlink(): it would unregister a name this process's
            # tracker never registered.
            _posixshmem.shm_unlink(stale._name)  # type: ignore[attr-defined]
        except FileNotFoundError:
            pass

    @classmethod
    def attach(cls, name: str) -> BookStore:
        """Attach read-only use from another process by segment name."""
        try:
            shm = _attach_untracked(name)
        except FileNotFoundError:
            raise BookStoreError(f"no book store segment named {name!r}") from None
        assert shm.buf is not None
        magic, ver, cap, depth, _pid, _n, rec, _ = L.SEGMENT_HEADER.unpack_from(shm.buf, 0)
        if magic != L.MAGIC or ver != L.LAYOUT_VERSION:
            shm.close()
            raise BookStoreError(f"segment {name!r} is not a book store of layout {L.LAYOUT_VERSION}")
        lay = L.Layout(cap, depth)
        if lay.record_size != rec:
            shm.close()
            raise BookStoreError(f"segment {name!r} record size mismatch")
        return cls(shm, lay, owner=False)

    # ------------------------------------------------------------ directory

    @property
    def capacity(self) -> int:
        return self.layout.capacity

    @property
    def depth(self) -> int:
        return self.layout.depth

    def count(self) -> int:
        return int.from_bytes(self.buf[L.COUNT_OFFSET:L.COUNT_OFFSET + 8], "little")

    def register(self, key: str) -> int:
        """Index of book ``key``, allocating a slot on first use (owner only)."""
        assert self.owner, "only the owning process registers books"
        index = self._keys.get(key)
        if index is not None:
            return index
        raw = key.encode()
        if not raw or len(raw) > L.KEY_SLOT_SIZE or b"\0" in raw:
            raise ValueError(f"book key {key!r} must be 1..{L.KEY_SLOT_SIZE} bytes, no NUL")
        with self._register_lock:
            index = self._keys.get(key)
            if index is not None:
                return index
            index = self.count()
            if index >= self.layout.capacity:
                raise BookStoreFull(
                    f"book store full: capacity {self.layout.capacity} books, cannot add {key!r}; "
                    f"raise books.capacity")
            off = self.layout.key_offset(index)
            self.buf[off:off + L.KEY_SLOT_SIZE] = raw.ljust(L.KEY_SLOT_SIZE, b"\0")
            rec = self.layout.record_offset(index)
            self.buf[rec:rec + self.layout.record_size] = bytes(self.layout.record_size)
            # Publish the count last: a reader that sees it sees the key.
            self.buf[L.COUNT_OFFSET:L.COUNT_OFFSET + 8] = (index + 1).to_bytes(8, "little")
            self._keys[key] = index
            self._names.append(key)
            return index

    def index(self, key: str) -> int:
        """Index of a registered book; rescans the directory for new books."""
        index = self._keys.get(key)
        if index is None:
            self._rescan()
            index = self._keys.get(key)
            if index is None:
                raise UnknownBook(key)
        return index

    def keys(self) -> dict[str, int]:
        self._rescan()
        return dict(self._keys)

    def _rescan(self) -> None:
        for i in range(len(self._keys), self.count()):
            off = self.layout.key_offset(i)
            key = bytes(self.buf[off:off + L.KEY_SLOT_SIZE]).rstrip(b"\0").decode()
            self._keys[key] = i
            self._names.append(key)

    def key_of(self, index: int) -> str:
        if index >= len(self._names):
            self._rescan()
        return self._names[index]

    def lock_for(self, index: int) -> threading.Lock:
        return self._locks[index % len(self._locks)]

    # -------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Detach; the owner also unlinks the segment so nothing is left behind."""
        if self._closed:
            return
        self._closed = True
        for hook in self._close_hooks:
            hook()
        self.buf = None  # type: ignore[assignment]
        try:
            self.shm.close()
        except BufferError:
            # numpy views still reference the buffer; the mapping goes at exit.
            log.debug("book store {} still has views; leaving mapping to process exit", self.name)
        if self.owner:
            try:
                self.shm.unlink()
                log.info("book store unlinked name={}", self.name)
            except FileNotFoundError:
                pass
