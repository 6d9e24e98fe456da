"""LocalStorage: a folder. Writes go to a temporary file and are renamed into place.

Whatever the driver creates is the service user's alone, whatever the umask: files FILE_MODE (0600),
folders DIR_MODE (0700), set explicitly after creation (docs/decisions.md, "Storage files are the
service user's alone"). Blobs of private repositories and usage-log exports are not readable by
other local users."""
from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from .base import NotFound, StorageError

READ_BLOCK = 1 << 20
COPY_STEP = 64 << 20  # bytes per copy_file_range call
COPY_BLOCK = 4 << 20  # bytes per read and write when the kernel will not copy
# copy_file_range refuses some pairs of files (other filesystem types, old kernels): copy them by hand.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}
FILE_MODE = 0o600
DIR_MODE = 0o700


def _make_dirs(path: Path, stop: Path) -> None:
    """mkdir -p that gives every folder it creates DIR_MODE (below `stop`, which must exist)."""
    missing = []
    while not path.is_dir() and path != stop and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made by a concurrent writer (which set its mode)
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask


def _open_private(path: Path):
    """A new file for writing, FILE_MODE whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def _copy_all(source: int, target: int, *, step: int = COPY_STEP) -> int:
    """Copy the rest of one open file into another; returns the bytes copied. The kernel copies them
    (copy_file_range: no trip through user space, a reflink where the filesystem can share blocks)."""
    copied = 0
    while True:
        try:
            moved = os.copy_file_range(source, target, step)
        except OSError as exc:
            if copied or exc.errno not in _NO_KERNEL_COPY:
                raise
            return _copy_by_hand(source, target)
        if moved == 0:
            # Some filesystems (FUSE, overlay, proc-like) answer 0 at once for a file that has bytes:
            # then the bytes are read by hand, which finds the true end.
            return copied if copied else _copy_by_hand(source, target)
        copied += moved


def _copy_by_hand(source: int, target: int) -> int:
    buffer = bytearray(COPY_BLOCK)
    view = memoryview(buffer)
    copied = 0
    while got := os.readv(source, [buffer]):
        written = 0
        while written < got:
            written += os.write(target, view[written:got])
        copied += got
    return copied


async def _ended(call: asyncio.Future) -> None:
    """Wait until a worker thread's call has returned, however often this task is cancelled meanwhile
    (then raise the cancellation); its outcome is taken, so a failure is not logged as never retrieved
    (the caller's own exception says what went wrong)."""
    cancelled = False
    while not call.done():
        try:
            await asyncio.wait([call])
        except asyncio.CancelledError:
            cancelled = True
    if not call.cancelled():
        call.exception()
    if cancelled:
        raise asyncio.CancelledError


class LocalDriver:
    cdn_host: str | None = None

    def __init__(self, name: str, root: str) -> None:
        self.name = name
        self.root = Path(root)
        self._made_root = not self.root.is_dir()
        self._make_root()

    def _make_root(self) -> None:
        # The root an operator made keeps its mode; one made here, and everything below, is private.
        _make_dirs(self.root.absolute(), Path(self.root.absolute().anchor))
        _make_dirs(self.root / ".tmp", self.root)

    async def prepare(self) -> bool:
        made, self._made_root = self._made_root or not self.root.is_dir(), False
        self._make_root()
        return made

    def _path(self, path: str) -> Path:
        clean = os.path.normpath(path).lstrip("/")
        if clean.startswith("..") or clean in ("", "."):
            raise StorageError(f"invalid storage path {path!r}")
        return self.root / clean

    def _tmp(self) -> Path:
        return self.root / ".tmp" / uuid.uuid4().hex

    async def stat(self, path: str) -> int | None:
        try:
            st = os.stat(self._path(path))
        except FileNotFoundError:
            return None
        return st.st_size if not os.path.isdir(self._path(path)) else None

    async def read(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:  # only opening raises these: reads of an open file do not
            with open(self._path(path), "rb") as handle:
                handle.seek(offset)
                remaining = length
                while remaining is None or remaining > 0:
                    size = READ_BLOCK if remaining is None else min(READ_BLOCK, remaining)
                    block = await loop.run_in_executor(None, handle.read, size)
                    if not block:
                        break
                    if remaining is not None:
                        remaining -= len(block)
                    yield block
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(path) from None

    async def write(self, path: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        target, tmp = self._path(path), self._tmp()
        loop = asyncio.get_running_loop()
        size = 0
        try:
            with _open_private(tmp) as handle:
                # Block N is written on a worker thread while block N+1 is made (received, hashed): at
                # most one write in flight, so writes stay in order and memory stays two blocks.
                # A producer must not reuse a block it has yielded (none does: each block is a new object).
                writing: asyncio.Future | None = None
                try:
                    async for chunk in chunks:
                        if writing is not None:
                            await asyncio.shield(writing)  # cancelled, this waiter goes; the write does not
                        writing = loop.run_in_executor(None, handle.write, chunk)
                        size += len(chunk)
                    if writing is not None:
                        await asyncio.shield(writing)
                finally:
                    if writing is not None:
                        await _ended(writing)  # the handle closes only once no thread writes to it
            _make_dirs(target.parent, self.root)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    async def get_bytes(self, path: str) -> bytes:
        try:
            return self._path(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(path) from None

    async def put_bytes(self, path: str, data: bytes) -> None:
        async def once() -> AsyncIterator[bytes]:
            yield data

        await self.write(path, once())

    async def move(self, src: str, dst: str, size: int | None = None) -> None:
        source, target = self._path(src), self._path(dst)
        if not source.is_file():
            raise NotFound(src)
        _make_dirs(target.parent, self.root)
        os.replace(source, target)

    async def concat(self, dst: str, parts: list[str]) -> int:
        paths = [self._path(p) for p in parts]
        for path, name in zip(paths, parts, strict=True):
            if not path.is_file():
                raise NotFound(name)
        return await asyncio.to_thread(self._concat_sync, self._path(dst), paths)

    def _concat_sync(self, target: Path, paths: list[Path]) -> int:
        tmp = self._tmp()
        size = 0
        try:
            with _open_private(tmp) as out:
                for path in paths:
                    with open(path, "rb") as src:
                        expected = os.fstat(src.fileno()).st_size
                        copied = _copy_all(src.fileno(), out.fileno())
                        if copied != expected:  # never a short blob at its content address
                            raise StorageError(f"{path.name}: copied {copied} of its {expected} bytes")
                        size += copied
            _make_dirs(target.parent, self.root)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    async def delete(self, path: str) -> None:
        self._path(path).unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str) -> None:
        target = self._path(prefix)
        try:
            os.rmdir(target)  # the common case: an upload folder whose chunk was already moved
            return
        except OSError:
            pass
        if target.is_dir():
            await asyncio.to_thread(shutil.rmtree, target, True)
        else:
            target.unlink(missing_ok=True)

    async def list_older(self, prefix: str, older_than: float) -> list[str]:
        cutoff = time.time() - older_than
        base = self._path(prefix)
        found = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file()) if base.is_dir() else ()
        keys = []
        for path in found:
            try:
                if path.stat().st_mtime <= cutoff:
                    keys.append(str(path.relative_to(self.root)))
            except FileNotFoundError:
                pass  # deleted while listed
        return sorted(keys)

    async def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = [str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file()]
        return sorted(keys)

    async def clean_partial(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for entry in (self.root / ".tmp").iterdir():
            try:
                if entry.stat().st_mtime <= cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def local_file(self, path: str) -> Path | None:
        return self._path(path)

    async def redirect_url(self, path: str, expires_s: int, size: int | None = None) -> str | None:
        return None  # served with sendfile by whoever holds the folder

    async def close(self) -> None:
        return None
