"""Where geostance writes, and how: no output replaces an input, a folder geostance did not write,
or another output of the same command; folders and files appear whole or not at all.

Every temporary name starts with `.geostance-tmp-`, so a startup sweep can remove what a killed
run left behind (older than an hour) without touching anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from geostance.errors import GeostanceError

TEMP_PREFIX = ".geostance-tmp-"
JOURNAL_PREFIX = ".geostance-swap-"
LOCK_PREFIX = ".geostance-lock-"
STALE_SECONDS = 3600
MODEL_SCHEMA_PREFIX = "geostance-model/"


class OutputError(GeostanceError):
    """An output path would destroy something: an input, a foreign folder, another output."""


def folder_kind(path: Path) -> str | None:
    """ "model" or "report" for a folder geostance wrote, "empty" for an empty one, else None."""
    if not any(path.iterdir()):
        return "empty"
    try:
        metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
        if isinstance(metadata, dict) and str(metadata.get("schema", "")).startswith(
            MODEL_SCHEMA_PREFIX
        ):
            return "model"
    except (OSError, ValueError):
        pass
    if (path / "report.md").is_file() and (path / "metrics.json").is_file():
        return "report"
    return None


def check_folder(path: str | Path, kind: str, option: str) -> Path:
    """Refuse to replace `path` unless it is absent, empty, or a geostance `kind` folder."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(f"{option} {path}: exists and is not a folder; not replacing it")
    if path.is_dir():
        found = folder_kind(path)
        if found not in ("empty", kind):
            what = f"a geostance {found}" if found else "a folder geostance did not write"
            raise OutputError(
                f"{option} {path}: is {what}, not a {kind} folder; not replacing it "
                "(choose another path)"
            )
    return path


def check_files(outputs: dict[str, str | None], inputs: Iterable[str | Path]) -> None:
    """Refuse output files that are folders, that are one of `inputs`, or that coincide."""
    seen: dict[Path, str] = {}
    sources = [Path(p).resolve() for p in inputs if str(p) != "-"]
    for option, value in outputs.items():
        if value is None or value == "-":
            continue
        path = Path(value).resolve()
        if path.is_dir():
            raise OutputError(f"{option} {value}: is a folder; give a file name")
        for source in sources:
            if path == source or (path.exists() and source.exists() and path.samefile(source)):
                raise OutputError(f"{option} {value}: is the input; it would be overwritten")
        if path in seen:
            raise OutputError(f"{option} and {seen[path]} are the same file {value}")
        seen[path] = option


def temporary_file(final: Path) -> tuple[int, str]:
    """An open descriptor and name of a new temporary file beside `final`, with the
    permissions a plain new file would get (mkstemp's are owner-only)."""
    sweep(final.parent)
    descriptor, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{final.name}.", dir=final.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return descriptor, name


@contextmanager
def publish(folders: dict[str | Path, str]) -> Iterator[dict[Path, Path]]:
    """Yield an empty staging folder for each final folder (path -> kind); if the block
    succeeds, every final folder is replaced by its staging folder together.

    The swap is journaled: were the process killed between two renames, the next `publish` or
    `recover` in that folder finishes it, so a model never stays beside another run's report.
    """
    finals = {Path(path): kind for path, kind in folders.items()}
    staged: dict[Path, Path] = {}
    try:
        for final, kind in finals.items():
            check_folder(final, kind, kind)
            final.parent.mkdir(parents=True, exist_ok=True)
            recover(final.parent)
            staged[final] = Path(
                tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{final.name}.", dir=final.parent)
            )
        yield staged
    except BaseException:
        for staging in staged.values():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    first = next(iter(finals))
    journal = first.parent / f"{JOURNAL_PREFIX}{first.name}-{uuid.uuid4().hex[:8]}.json"
    pairs = [[str(staging), str(final)] for final, staging in staged.items()]
    for staging in staged.values():
        staging.chmod(0o755)
    write_atomic(journal, json.dumps(pairs))
    _roll_forward(journal)


def recover(folder: Path) -> None:
    """Finish any swap a killed run left half done in `folder`, then sweep stale temporaries."""
    if folder.is_dir():
        for journal in folder.glob(f"{JOURNAL_PREFIX}*.json"):
            _roll_forward(journal)
    sweep(folder)


def _roll_forward(journal: Path) -> None:
    try:
        pairs = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        journal.unlink(missing_ok=True)
        return
    for staging, final in (map(Path, pair) for pair in pairs):
        if not staging.is_dir():
            continue  # already moved into place
        if final.exists():
            old = final.with_name(f"{TEMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, final)
    journal.unlink(missing_ok=True)


def sweep(folder: Path, older_than: float = STALE_SECONDS) -> None:
    """Remove this tool's temporaries in `folder` left by runs killed over an hour ago."""
    if not folder.is_dir():
        return
    cutoff = time.time() - older_than
    for entry in folder.glob(f"{TEMP_PREFIX}*"):
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            continue


@contextmanager
def experiment_lock(folder: str | Path, name: str) -> Iterator[None]:
    """Hold the lock of experiment `name` in `folder`; a second run of it fails at once."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / f"{LOCK_PREFIX}{name}", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputError(
            f"another geostance run is writing {name} (lock {lock.lock_file}); wait for it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file renamed into place."""
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    descriptor, temporary = temporary_file(path)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:  # a full disk: name the user's file, not the temporary one
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
