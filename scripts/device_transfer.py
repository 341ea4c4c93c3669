"""Move training runs through the device tool's limits (at most 8 files of 16 MiB come back from a call).

    python scripts/device_transfer.py pack OUT NAME PATH [PATH ...]   # tar PATHs into OUT/NAME.tar.partNN (< 15 MB each)
    python scripts/device_transfer.py unpack DIR NAME [DEST]           # join DIR/NAME.tar.part* and extract into DEST

Files with identical bytes (a run's final ``model/`` is a copy of its EMA weights) are stored once, as hard links,
so a run crosses in about half its size on disk. Written for the lent-GPU workflow in docs/training.md; not part of
the package.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

PART_BYTES = 15 * 1000 * 1000


def pack(out: Path, name: str, paths: list[Path]) -> list[Path]:
    buffer = io.BytesIO()
    seen: dict[str, str] = {}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for root in paths:
            for path in sorted([root] if root.is_file() else root.rglob("*")):
                if not path.is_file():
                    continue
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                info = tarfile.TarInfo(str(path))
                if digest in seen:
                    info.type, info.linkname = tarfile.LNKTYPE, seen[digest]
                    tar.addfile(info)
                else:
                    seen[digest] = str(path)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    blob = buffer.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for index in range(0, max(1, len(blob)), PART_BYTES):
        part = out / f"{name}.tar.part{index // PART_BYTES:02d}"
        part.write_bytes(blob[index:index + PART_BYTES])
        parts.append(part)
    print(f"packed {len(blob) / 1e6:.1f} MB of {', '.join(map(str, paths))} into {len(parts)} part(s)")
    return parts


def unpack(folder: Path, name: str, dest: Path) -> None:
    parts = sorted(folder.glob(f"{name}.tar.part*"))
    if not parts:
        raise FileNotFoundError(f"{folder}: no {name}.tar.part* files")
    blob = b"".join(p.read_bytes() for p in parts)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(dest, filter="data")
    print(f"unpacked {len(blob) / 1e6:.1f} MB into {dest}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "pack":
        pack(Path(args[0]), args[1], [Path(p) for p in args[2:]])
    elif command == "unpack":
        unpack(Path(args[0]), args[1], Path(args[2] if len(args) > 2 else "."))
    else:
        raise SystemExit(__doc__)
