"""Writing files so a kill never leaves a half-written one that looks finished: every output (dataset file and
metadata, checkpoint, eval JSON, MP4, PNG) is written to a temp file beside its target and renamed into place
(`atomic_path`; the media encoders in `racecar_env.media` use it too).

`durable=True` also fsyncs the file and its folder: for what must survive a crash (datasets, checkpoints), not
for outputs that can simply be rendered again.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

PARTIAL_PREFIX = ".partial-"


def fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries (a rename is durable only once its folder is fsync'd)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: "str | Path", *, durable: bool = False, prefix: str = PARTIAL_PREFIX) -> Iterator[Path]:
    """Yield a temp path beside `path` to write; on success it replaces `path`, on any failure it is deleted.
    The temp name keeps the extension, so writers that pick the format from it (ffmpeg, Pillow) still work."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{prefix}{os.getpid()}-{path.name}"
    try:
        yield tmp
        if durable:
            fsync(tmp)
        os.replace(tmp, path)  # the commit point
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync(path.parent)


def write_bytes(path: "str | Path", data: bytes, *, durable: bool = True) -> Path:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: "str | Path", obj: Any, *, durable: bool = False, prefix: str = PARTIAL_PREFIX,
               default: Callable[[Any], Any] | None = None) -> Path:
    with atomic_path(path, durable=durable, prefix=prefix) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=default) + "\n")
    return Path(path)


def unwritable(folder: "str | Path") -> str:
    """'' if files can be created in `folder` (it exists, or its nearest existing ancestor is a folder this process
    may write to: it will be created), else why not, for a CLI to say before it spends minutes on episodes."""
    p = Path(folder)
    try:
        for q in (p, *p.parents):
            if q.exists():
                if not q.is_dir():
                    return f"{q} is a file, not a folder"
                if not os.access(q, os.W_OK | os.X_OK):
                    return f"{q} is not writable" + (" (a read-only file system)" if _read_only(q) else "")
                return ""
    except OSError as e:
        return e.strerror or str(e)
    return ""


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
