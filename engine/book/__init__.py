"""Shared-memory order books: layout (byte offsets), store (segment lifecycle),
writer (full-depth book + seqlocked mirror, daemon process only) and reader
(lock-free consistent copies from any process)."""
