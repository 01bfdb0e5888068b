"""Files written whole or not at all.

Every file the project writes (checkpoints, weights, results.json, figures, prediction PNGs,
exported networks, lists, videos) is made under a temporary name beside its final one (same
folder, hence same file system; same extension, for writers that choose the format from the
name), flushed to disk, and renamed over the final name; the rename is then made durable.  A
crash, a SIGKILL or a full disk at any point leaves either the previous file or the new one, never
a partial file under the final name, and a failed write removes its temporary file.

Writers that can serialise to memory do so first (``write_bytes``): the write to disk is then a
plain Python write, whose OSError carries the reason (a library writing the file itself may say
only "unexpected pos", or abort the process).
"""
import contextlib
import errno
import json
import os

from .errors import ProjectError


class FileWriteError(ProjectError, OSError):
    """A file that could not be written; the message names the file and the reason, and says
    that the file that was there is unchanged."""


def _temporary_path(path):
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp{os.getpid()}{ext}")


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(error: OSError) -> str:
    """The reason of an OSError with its errno name, e.g. "No space left on device (ENOSPC)"."""
    reason = error.strerror or str(error) or type(error).__name__
    code = errno.errorcode.get(error.errno) if error.errno else None
    return f"{reason} ({code})" if code else reason


@contextlib.contextmanager
def atomic_path(path, before_replace=None):
    """``with atomic_path(path) as tmp:`` write the file at ``tmp``; when the block ends without
    error the file is flushed to disk, ``before_replace()`` runs when given (e.g. keeping the
    file it replaces under another name), and the file is renamed to ``path``.

    Any error removes the temporary file and leaves ``path`` as it was; an OSError (full disk,
    permissions, a missing folder that cannot be made) is raised as ``FileWriteError`` naming
    ``path`` and the reason.  The parent folders are made.
    """
    tmp = _temporary_path(path)
    folder = os.path.dirname(tmp)
    try:
        os.makedirs(folder, exist_ok=True)
        yield tmp
        _fsync(tmp)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
        _fsync(folder)  # make the rename itself durable
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, FileWriteError):
            raise FileWriteError(f"cannot write {path}: {describe(e)}; the file that was there "
                                 f"is unchanged") from e
        raise


def write_bytes(path, data, before_replace=None) -> None:
    """Write ``data`` (bytes, or a buffer such as ``BytesIO.getbuffer()``) to ``path`` through
    ``atomic_path``."""
    with atomic_path(path, before_replace) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` through ``atomic_path``."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent=2) -> None:
    """Write ``obj`` as JSON to ``path`` through ``atomic_path``; serialised first, so that an
    object JSON cannot hold leaves the previous file too."""
    write_text(path, json.dumps(obj, indent=indent))
