"""Crash-safe file writing, and the error every bad checkpoint or model file raises.

A checkpoint overwritten in place is destroyed by a crash halfway through the write. Writing
to a temporary file in the same folder and renaming it over the target (POSIX `rename` is
atomic within one file system) means the target name always holds either the previous
complete file or the new complete file, never a mix.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

from ember._core.errors import EmberError


class CheckpointError(EmberError, ValueError):
    """A weights, model or checkpoint file is missing, truncated, corrupted, of the wrong
    format, or does not fit the model it is loaded into. The message names the file."""


@contextlib.contextmanager
def atomic_write(path) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; on a clean exit flush it,
    fsync it, rename it over `path` and fsync the folder. If the block raises (or the process
    dies), `path` keeps its previous content and the temporary file is removed (a killed
    process may leave one, named `.<name>.<random>.tmp`, never `path` itself).

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "notes.bin")
    >>> with atomic_write(target) as file:
    ...     _ = file.write(b"complete")
    >>> open(target, "rb").read()
    b'complete'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CheckpointError(f"cannot write {path}: it is a directory; give a file name")
    os.makedirs(folder, exist_ok=True)
    temporary, descriptor = _create_temporary(folder, os.path.basename(path))
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            # Without fsync the rename can reach the disk before the data does, and a power
            # loss would leave a complete-looking name pointing at zeros.
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def _create_temporary(folder: str, name: str) -> tuple[str, int]:
    """A fresh file `.<name>.<random>.tmp` (O_EXCL, so never someone else's); mode 0o666
    lets the umask decide the permissions, as for a file created with open()."""
    for _ in range(100):
        temporary = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return temporary, os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
    raise CheckpointError(f"could not create a temporary file in {folder}")


def _fsync_folder(folder: str):
    """Persist the rename itself: the new directory entry lives in the folder's data."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder; NTFS journals renames
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
