"""One writer per run folder: an exclusive OS lock on ``RUN/run.lock``.

A trainer holds the lock for its lifetime (rank 0 under DDP). A second trainer
on the same folder stops at once with :class:`RunLockedError`, naming the
holder. The lock is the operating system's (``flock``), not the file's
existence: the OS drops it when the holding process dies, however it dies, so a
lock left by a killed run never blocks. The file's text (process id, host,
start time) only serves the message. On systems without ``fcntl`` (Windows)
runs are not locked, and the trainer says so once.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

from vid2vid.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = "run.lock"


class RunLockedError(UserError):
    """Another live process trains into the same run folder."""


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Holds the run folder's lock (creating the folder) until the block ends or the process dies.

    Raises:
        RunLockedError: another live process holds it; the message names the
            folder and the holder's process id, host and start time.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    if fcntl is None:
        warnings.warn(f"this system has no fcntl: {folder} is not locked against a second trainer", stacklevel=3)
        yield path
        return
    # not O_TRUNC: the holder's text must survive a refused open
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            raise RunLockedError(f"{folder} is in use by another trainer ({holder or 'holder unknown'}); "
                                 f"stop it, or wait for it to finish, or choose another --output")
        since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        text = f"process {os.getpid()} on host {socket.gethostname()} since {since}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


__all__ = ["run_lock", "RunLockedError", "LOCK_FILE"]
