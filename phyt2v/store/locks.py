"""Locks on disk, with ``fcntl.flock`` (the kernel drops a lock when its holder dies, even by SIGKILL):
``FolderLock`` for a run folder while a process works on it, ``writers_lock`` for the writers of one file."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import RunLocked


@contextmanager
def writers_lock(path: Path) -> Iterator[int]:
    """Exclusive lock for the writers of one file, taken on the file itself (created if missing; no lock
    file). Yields a read-write descriptor of it. A writer that replaces the file atomically while holding
    the lock is safe: a waiter that wakes on the replaced file sees the change and locks the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the file itself (results.jsonl): a normal mode
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the flock


class FolderLock:
    """``<folder>/.lock``, held with ``fcntl.flock`` on a descriptor kept open while the lock is held: the
    kernel releases it when the holder exits, even after SIGKILL, so a stale file means nothing. The file
    names the holder's pid and host. Taking the lock creates the folder.

    Re-entrant within the thread that holds it: ``Batch`` holds a run's lock across refine + result line, and
    ``Refiner.refine`` takes it again in the same thread. Another thread of the same process is refused, as
    another process is (two threads refining one prompt through the Python API would write one ``run.json``)."""

    NAME = ".lock"
    _held: dict[str, list[Any]] = {}  # lock path -> [fd, depth, owning thread's ident]
    _guard = threading.Lock()  # the threads of this process update ``_held`` one at a time

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME

    def holder(self) -> str:
        entry = self._held.get(str(self.path.absolute()))
        if entry is not None and entry[2] != threading.get_ident():
            return f"another thread of this process (pid {os.getpid()})"
        try:
            return self.path.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    def try_acquire(self) -> bool:
        with self._guard:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        key = str(self.path.absolute())
        entry = self._held.get(key)
        if entry is not None:
            if entry[2] != threading.get_ident():
                return False
            entry[1] += 1
            return True
        while True:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the folder was removed meanwhile (a refused prompt): again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # locked a file its holder removed with the folder: lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._held[key] = [fd, 1, threading.get_ident()]
        return True

    def acquire(self) -> "FolderLock":
        """Take the lock or raise ``RunLocked`` naming the holder."""
        if not self.try_acquire():
            raise RunLocked(f"{self.folder} is in use by {self.holder()}; wait for that process to finish "
                            "(or stop it), then run the command again")
        return self

    def release(self) -> None:
        key = str(self.path.absolute())
        with self._guard:
            entry = self._held.get(key)
            if entry is None or entry[2] != threading.get_ident():
                return
            entry[1] -= 1
            if entry[1] == 0:
                del self._held[key]
                os.close(entry[0])

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
