"""`FrameStore`: per-frame outputs of a long video held in a file instead of memory.

A reconstruction's per-frame arrays (the fused pointmaps, their confidence) grow with the video's length; held in
memory they made the peak memory of a 1,000-frame run 10-16 % higher than a 100-frame one (docs/memory.md). A
`FrameStore` keeps them in an anonymous temporary file (created already unlinked, so nothing is left behind, even
after a crash) mapped into memory. Every read copies the frames asked for and every write stores them, and each then
tells the kernel it may drop the mapping's pages from the process (``madvise(MADV_DONTNEED)``: the data stays in the
file and the page cache), so only the frames being worked on count towards the process's memory, whatever the
length. `FrameStore.tensor` gives the whole array as a tensor backed by the file, for the `Reconstruction` returned:
its pages are read in when something reads them.

NumPy's ``memmap`` would keep the same file mapped but gives no way to drop its pages; hence a plain ``mmap``.

A video of one window needs none of this (its arrays are one window's, whatever happens): ``in_memory=True`` keeps
them as a tensor on the store's device behind the same interface, which saves the round trips through the host and
the file (~0.1-0.2 s of a paper-size window on a GPU, docs/speed.md).
"""

from __future__ import annotations

import math
import mmap
import os
import tempfile

import numpy as np
import torch

__all__ = ["FrameStore"]

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.uint8: np.uint8, torch.bool: np.bool_}


class FrameStore:
    """A file-backed ``(N, ...)`` array read and written a slice of frames at a time.

    Args:
        shape: ``(N, ...)``: N frames of shape ``shape[1:]``.
        dtype: one of float32, float64, uint8, bool.
        fill: initial value of every element (``None``: zeros).
        device: where `__getitem__` returns frames (the store itself is in host memory's page cache).
        in_memory: hold the frames in a tensor on ``device`` instead (no file; for outputs of bounded size).
    Raises:
        ValueError: an unsupported dtype or an empty shape.
        OSError: the temporary directory (``TMPDIR``) cannot hold ``N x prod(shape[1:])`` elements.
    """

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32, fill: float | None = None,
                 device: torch.device | str = "cpu", in_memory: bool = False):
        if dtype not in _NUMPY_DTYPES:
            raise ValueError(f"FrameStore: dtype must be one of {list(_NUMPY_DTYPES)}, got {dtype}")
        if len(shape) < 1 or math.prod(shape) == 0:
            raise ValueError(f"FrameStore: need a non-empty (N, ...) shape, got {tuple(shape)}")
        self.shape, self.dtype, self.device = tuple(shape), dtype, torch.device(device)
        self._frame_bytes = math.prod(shape[1:]) * np.dtype(_NUMPY_DTYPES[dtype]).itemsize
        self._map = None
        if in_memory:
            self._tensor = torch.full(shape, fill or 0, dtype=dtype, device=self.device)
            return
        size = shape[0] * self._frame_bytes
        with tempfile.TemporaryFile() as file:  # unlinked at once; the mapping keeps the data
            try:  # the space is taken now: a full disk found later would kill the process (SIGBUS) mid-write
                os.posix_fallocate(file.fileno(), 0, size)
            except OSError as error:
                raise OSError(error.errno, f"cannot hold {size / 2**20:.0f} MiB of per-frame outputs in the "
                                           f"temporary directory {tempfile.gettempdir()} (set TMPDIR to a larger "
                                           f"disk): {error.strerror}") from None
            self._map = mmap.mmap(file.fileno(), size)
        self._tensor = torch.from_numpy(np.frombuffer(self._map, dtype=_NUMPY_DTYPES[dtype]).reshape(shape))
        if fill:
            for first in range(0, shape[0], self._chunk):
                self._tensor[first:first + self._chunk] = fill
                self.release()

    @property
    def _chunk(self) -> int:
        """Frames of about 64 MiB, the unit of whole-store passes."""
        return max(1, (64 << 20) // max(1, self._frame_bytes))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, frames: slice | torch.Tensor) -> torch.Tensor:
        """A copy of ``frames`` (a slice or an index tensor of the first axis) on the store's device."""
        if isinstance(frames, torch.Tensor):
            frames = frames.to(self._tensor.device)
        copy = self._tensor[frames].clone()
        self.release()
        return copy.to(self.device)

    def __setitem__(self, frames: slice, value: torch.Tensor) -> None:
        """Store ``value`` (broadcastable to those frames; any device) at ``frames``."""
        self._tensor[frames] = value.detach().to(self._tensor.device, self.dtype)
        self.release()

    def release(self) -> None:
        """Let the kernel drop the mapping's pages from this process (their data stays in the file; no-op in memory)."""
        if self._map is not None:
            self._map.madvise(mmap.MADV_DONTNEED)

    def chunks(self) -> list[slice]:
        """Slices of consecutive frames, about 64 MiB each, covering the store (for passes over all of it)."""
        return [slice(first, first + self._chunk) for first in range(0, self.shape[0], self._chunk)]

    def tensor(self) -> torch.Tensor:
        """The whole store as a tensor, no copy: on the CPU backed by its file (it keeps the mapping alive), or the
        in-memory tensor on the store's device; writing to it writes the store."""
        return self._tensor
