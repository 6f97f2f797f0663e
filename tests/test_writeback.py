"""kutils._writeback on real files: the disk blocks reserved for a download of known size.

get_file reserves the blocks of a download once the server announced its size, so that
writing it costs ext4 less (see docs/performance.md). The reservation must not change
what a reader of the file sees (its size grows only with the bytes written), and must
not take more than half the free space, whatever size a server announces.
"""

from __future__ import annotations

import os
import sys

import pytest

from kutils._writeback import Writeback

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fallocate is reserved on Linux only"
)

MIB = 1024 * 1024


def _reserved_after_expect(path, total: int) -> os.stat_result:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        syncer = Writeback(fd)
        syncer.expect(total)
        syncer.stop()
        return os.fstat(fd)
    finally:
        os.close(fd)
        os.remove(path)  # never leave a large reservation behind, even when a test fails


def _supports_fallocate(folder) -> bool:
    probe = folder / "probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, MIB)
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()
    return True


def test_expect_reserves_the_blocks_and_keeps_the_size(tmp_path):
    if not _supports_fallocate(tmp_path):
        pytest.skip("the filesystem of tmp_path has no fallocate")
    info = _reserved_after_expect(tmp_path / "download.part", 8 * MIB)
    assert info.st_size == 0  # a reader sees only the bytes written
    assert info.st_blocks * 512 >= 8 * MIB


def test_written_bytes_fill_the_reserved_blocks(tmp_path):
    if not _supports_fallocate(tmp_path):
        pytest.skip("the filesystem of tmp_path has no fallocate")
    path = tmp_path / "download.part"
    data = os.urandom(3 * MIB + 17)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        syncer = Writeback(fd)
        syncer.expect(len(data))
        os.write(fd, data)
        syncer.finish(len(data))
        syncer.stop()
        assert syncer.error is None and syncer.synced
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def test_expect_reserves_nothing_beyond_half_the_free_space(tmp_path):
    disk = os.statvfs(tmp_path)
    free = disk.f_bavail * disk.f_frsize
    info = _reserved_after_expect(tmp_path / "download.part", free // 2 + MIB)
    assert info.st_size == 0
    assert info.st_blocks == 0  # a server announcing a huge size takes no space
