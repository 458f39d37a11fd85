"""The one check that an output path destroys no input: every file and folder a command reads, by real path."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Sequence

from ..errors import DecrankError
from ._runs import PARTIAL_SUFFIX


def real_path(path: str | Path, option: str) -> Path:
    """``path`` with every symlink followed; a symlink loop is one error naming ``option``."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DecrankError(f"{option} {path}: a symlink loop") from None
    return Path(os.path.realpath(path))


def refuse_overwriting_inputs(outputs: Sequence[tuple[str, str | Path | None]],
                              inputs: Sequence[tuple[str, str | Path | None]]) -> None:
    """Refuses, before any work, an output that is an input file, lies inside an input folder (a store's
    manifest, a model's ``config.json``), is the in-progress copy of one, or is another output. Inputs that
    are not local paths (a Pyserini topic name, a hub id) are skipped."""
    files: dict[Path, str] = {}
    folders: dict[Path, str] = {}
    for option, path in inputs:
        if not path or not os.path.lexists(path):
            continue
        real = real_path(path, option)
        (folders if real.is_dir() else files)[real] = f"{option} {path}"
    seen: dict[Path, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        real = real_path(path, option)
        for candidate in (real, real.with_name(real.name + PARTIAL_SUFFIX)):  # the copy written first, too
            if candidate in files:
                raise DecrankError(f"{option} {path} is also {files[candidate]}: it would be overwritten; write elsewhere")
        for folder, name in folders.items():
            if real == folder or folder in real.parents:
                raise DecrankError(f"{option} {path} lies inside {name}: it would overwrite part of it; write elsewhere")
        if real in seen:
            raise DecrankError(f"{option} {path} is also {seen[real]}: both would write the same file")
        seen[real] = f"{option} {path}"
