"""LocalStorage's own copy paths (shared/storage/local.py): the kernel copy (concat) and its by-hand
fallback, and a pipelined write whose worker thread fails."""
from __future__ import annotations

import asyncio
import errno
import os
import threading

import pytest

from shared.storage import local
from shared.storage.base import StorageError
from shared.storage.local import LocalDriver


def _copy(tmp_path, data: bytes, **options) -> bytes:
    source, target = tmp_path / "source", tmp_path / "target"
    source.write_bytes(data)
    with open(source, "rb") as reading, open(target, "wb") as writing:
        assert local._copy_all(reading.fileno(), writing.fileno(), **options) == len(data)
    return target.read_bytes()


def test_the_kernel_copy_copies_every_byte_in_steps(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    assert _copy(tmp_path, data, step=1024 * 1024) == data


@pytest.mark.parametrize("refusal", [errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP])
def test_files_the_kernel_will_not_copy_are_copied_by_hand(tmp_path, monkeypatch, refusal):
    def refuses(*args):
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(local.os, "copy_file_range", refuses)
    data = os.urandom(9 * 1024 * 1024 + 1)
    assert _copy(tmp_path, data) == data


def test_a_kernel_copy_that_reports_nothing_at_once_is_done_by_hand(tmp_path, monkeypatch):
    # FUSE, overlay and proc-like files can answer 0 to copy_file_range although they hold bytes.
    monkeypatch.setattr(local.os, "copy_file_range", lambda *args: 0)
    data = os.urandom(5 * 1024 * 1024 + 3)
    assert _copy(tmp_path, data) == data
    assert _copy(tmp_path, b"") == b""


async def test_a_short_concat_places_nothing(tmp_path, monkeypatch):
    driver = LocalDriver("here", str(tmp_path / "store"))
    await driver.prepare()
    await driver.put_bytes("parts/0", b"a" * 1000)
    await driver.put_bytes("parts/1", b"b" * 1000)
    real = local._copy_all
    monkeypatch.setattr(local, "_copy_all", lambda source, target: real(source, target) - 1)
    with pytest.raises(StorageError, match="copied 999 of its 1000 bytes"):
        await driver.concat("whole", ["parts/0", "parts/1"])
    assert await driver.stat("whole") is None
    assert not list((tmp_path / "store" / ".tmp").iterdir())


def test_other_copy_errors_are_not_hidden(tmp_path, monkeypatch):
    def fails(*args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(local.os, "copy_file_range", fails)
    with pytest.raises(OSError, match="I/O error"):
        _copy(tmp_path, b"bytes")


async def test_a_write_whose_worker_thread_fails_places_nothing(tmp_path):
    driver = LocalDriver("here", str(tmp_path / "store"))
    await driver.prepare()

    async def blocks():
        yield os.urandom(1 << 20)
        yield "not bytes"  # the file's write() raises on the worker thread
        yield os.urandom(1 << 20)

    with pytest.raises(TypeError):
        await driver.write("object", blocks())
    assert await driver.stat("object") is None
    assert not list((tmp_path / "store" / ".tmp").iterdir())


async def test_a_cancelled_write_closes_its_file_only_after_the_thread_wrote(tmp_path, monkeypatch):
    # The worker thread must never write to a descriptor that was closed (and perhaps reused) under it.
    driver = LocalDriver("here", str(tmp_path / "store"))
    await driver.prepare()
    in_write, release = threading.Event(), threading.Event()
    closed_under_a_write = []
    real_open = local._open_private

    class SlowFile:
        def __init__(self, handle):
            self.handle = handle
            self.writing = False

        def write(self, data):
            self.writing = True
            in_write.set()
            release.wait(10)
            self.handle.write(data)
            self.writing = False

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            closed_under_a_write.append(self.writing)
            self.handle.close()

    monkeypatch.setattr(local, "_open_private", lambda path: SlowFile(real_open(path)))

    async def blocks():
        yield b"a" * 1000
        yield b"b" * 1000  # asks for block 1's write to end: the cancel lands here

    task = asyncio.ensure_future(driver.write("object", blocks()))
    await asyncio.get_running_loop().run_in_executor(None, in_write.wait, 10)
    await asyncio.sleep(0.05)  # the writer is now waiting for that write
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # it waits for the thread before it closes the file
    task.cancel()  # and a second cancellation (a timeout, then shutdown) does not end that wait
    await asyncio.sleep(0.05)
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed_under_a_write == [False]
    assert await driver.stat("object") is None
    assert not list((tmp_path / "store" / ".tmp").iterdir())
