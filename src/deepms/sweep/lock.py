"""A lock shared by every worker of one study, so that "count the budget, then claim a trial" is
atomic across processes and machines.

sqlite: an ``flock`` on a file beside the database (one machine, as sqlite itself). PostgreSQL:
a session advisory lock; MySQL: ``GET_LOCK``. The server drops either when a worker dies, so a
killed worker never leaves the study locked. In-memory studies need only a thread lock.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger(__name__)


class StudyLock:
    """Re-entrant-free lock with ``release_if_held`` for cleanup paths."""

    def __init__(self) -> None:
        self.held = False

    def acquire(self) -> None:
        self._acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._release()

    release_if_held = release

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _acquire(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _release(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class ThreadLock(StudyLock):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def _acquire(self) -> None:
        self._lock.acquire()

    def _release(self) -> None:
        self._lock.release()


class FileLock(StudyLock):
    """``fcntl.flock`` on ``path``: released by the kernel when the process dies."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._handle: Any = None

    def _acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a")  # noqa: SIM115 - held until release
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    def _release(self) -> None:
        import fcntl

        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


class DatabaseLock(StudyLock):
    """A server-side named lock held on a dedicated connection."""

    STATEMENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "postgresql": ("SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"),
        "mysql": ("SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"),
    }

    def __init__(self, url: str, name: str) -> None:
        super().__init__()
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        self.backend = make_url(url).get_backend_name()
        self.engine = create_engine(url, poolclass=NullPool)
        # advisory locks take a signed 64-bit key; crc32 of the name fits
        self.params = {"key": zlib.crc32(name.encode()), "name": name[:64]}
        self._conn: Any = None

    def _run(self, statement: str) -> None:
        from sqlalchemy import text

        self._conn.execute(text(statement), self.params)
        self._conn.commit()

    def _acquire(self) -> None:
        self._conn = self.engine.connect()
        self._run(self.STATEMENTS[self.backend][0])

    def _release(self) -> None:
        try:
            self._run(self.STATEMENTS[self.backend][1])
        finally:
            self._conn.close()
            self._conn = None


class NoLock(StudyLock):
    def _acquire(self) -> None:
        pass

    def _release(self) -> None:
        pass


def study_lock(storage: str | None, study_name: str) -> StudyLock:
    """The strongest lock the storage allows for this study."""
    if storage is None:
        return ThreadLock()
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return ThreadLock()
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", study_name)
        return FileLock(Path(f"{Path(url.database).resolve()}.{safe}.lock"))
    if backend in DatabaseLock.STATEMENTS:
        return DatabaseLock(storage, f"deepms-sweep:{study_name}")
    log.warning(
        "no cross-process lock for %s storage: parallel workers may overshoot the budget", backend
    )
    return NoLock()
