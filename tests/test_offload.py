"""`sora3r.offload.FrameStore`: per-frame outputs held in a file, read and written a slice at a time."""

import numpy as np
import pytest
import torch

from sora3r.offload import FrameStore


def resident_file_pages_kib() -> int:
    """This process's resident file-backed memory (``RssFile`` + ``RssShmem`` of /proc/self/status), KiB."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return sum(int(fields[name].split()[0]) for name in ("RssFile", "RssShmem"))


def test_frames_round_trip_by_slice_and_index():
    store = FrameStore((10, 4, 5, 3))
    values = torch.randn(10, 4, 5, 3, generator=torch.Generator().manual_seed(0))
    store[0:6] = values[:6]
    store[6:10] = values[6:]
    torch.testing.assert_close(store[2:8], values[2:8])
    torch.testing.assert_close(store[torch.tensor([9, 0, 3])], values[[9, 0, 3]])
    torch.testing.assert_close(store.tensor(), values)
    assert len(store) == 10 and [part.start for part in store.chunks()] == [0]
    ones = FrameStore((3, 2, 2), fill=1.0)
    assert bool((ones[0:3] == 1).all())
    # The tensor view writes through to the store.
    ones.tensor()[1] = 5.0
    assert float(ones[1:2].max()) == 5.0


def test_in_memory_store_has_the_same_interface_and_no_file(monkeypatch):
    """``in_memory=True`` (one window's outputs): the same reads, writes and fill, with no temporary file made."""
    monkeypatch.setattr("tempfile.TemporaryFile", lambda: pytest.fail("an in-memory store made a file"))
    values = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(1))
    store = FrameStore((5, 2, 3), fill=2.0, in_memory=True)
    assert bool((store[0:5] == 2).all())
    store[0:5] = values
    torch.testing.assert_close(store[torch.tensor([4, 1])], values[[4, 1]])
    copy = store[1:3]
    copy += 1  # reads are copies
    torch.testing.assert_close(store.tensor(), values)
    assert [part.start for part in store.chunks()] == [0]


def test_written_frames_do_not_stay_in_the_process_memory(tmp_path):
    """A 96 MiB store written a frame at a time: the process's resident file pages grow by far less than that (the
    same writes into a plain ``np.memmap`` keep all of them), while the data stays readable."""
    frames, shape = 96, (256, 1024)  # 1 MiB float32 frames
    before = resident_file_pages_kib()
    store = FrameStore((frames, *shape))
    for frame in range(frames):
        store[frame:frame + 1] = torch.full((1, *shape), float(frame))
    grown = resident_file_pages_kib() - before
    assert grown < 16 * 1024, f"resident file pages grew by {grown} KiB"
    assert float(store[50:51].mean()) == 50.0 and float(store[95:96].mean()) == 95.0
    # The control: a plain memory map written the same way keeps its pages, so the measure above can see them.
    before = resident_file_pages_kib()
    plain = np.memmap(tmp_path / "plain.bin", dtype=np.float32, mode="w+", shape=(frames, *shape))
    for frame in range(frames):
        plain[frame] = frame
    assert resident_file_pages_kib() - before > 80 * 1024
    del plain


def test_bad_store_shapes_and_dtypes_are_refused():
    with pytest.raises(ValueError, match="dtype"):
        FrameStore((2, 3), dtype=torch.int16)
    with pytest.raises(ValueError, match="non-empty"):
        FrameStore((0, 3))


def test_a_full_temporary_disk_is_one_clear_error_up_front(monkeypatch, tmp_path):
    """The space is reserved when the store is made (a write into a mapped file on a full disk would kill the process
    with SIGBUS instead); the error names the directory and the way out."""
    import errno
    import os
    import tempfile

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match=f"cannot hold 7 MiB .* {tmp_path} \\(set TMPDIR") as raised:
        FrameStore((100, 64, 96, 3))
    assert raised.value.errno == errno.ENOSPC
