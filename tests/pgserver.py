"""A real PostgreSQL server on loopback for the tests, started from the server programs that
these machines have (``initdb``, ``pg_ctl``; as the ``postgres`` user when running as root),
with password authentication, in a temporary folder; stopped at the end of the session."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "autosq"
PASSWORD = "s3cret-pw"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """Start with :meth:`start`; :meth:`new_database` gives a fresh database's URL."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="autosq-pg-"))
        self.port = _free_port()
        self._names = itertools.count()
        self._as: list[str] = []

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, text=True,
                       cwd=self.folder)

    def start(self) -> None:
        """initdb, then pg_ctl start on 127.0.0.1 (raises RuntimeError naming what failed)."""
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("the PostgreSQL server programs (initdb, pg_ctl) are not here")
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        try:
            if os.geteuid() == 0:  # both refuse to run as root
                shutil.chown(self.folder, "postgres")
                shutil.chown(pwfile, "postgres")
                self._as = ["runuser", "-u", "postgres", "--"]
            self._run(initdb, "-D", str(self.folder / "data"), "-U", USER, "--pwfile",
                      str(pwfile), "--auth", "scram-sha-256", "-E", "UTF8")
            for attempt in range(3):  # the free port may be taken before the server binds it
                try:
                    self._run(pg_ctl, "-D", str(self.folder / "data"), "-l",
                              str(self.folder / "log"), "-w", "-t", "60", "-o",
                              f"-p {self.port} -k {self.folder} -c "
                              "listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
                              "start")
                    break
                except subprocess.CalledProcessError:
                    if attempt == 2:
                        raise
                    self.port = _free_port()
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"cannot start PostgreSQL: {exc.stderr or exc.stdout}") from exc
        except (LookupError, OSError) as exc:  # no postgres user, no runuser
            raise RuntimeError(f"cannot start PostgreSQL: {exc}") from exc

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        pg_ctl = _bin("pg_ctl")
        if pg_ctl and (self.folder / "data").is_dir():
            subprocess.run([*self._as, pg_ctl, "-D", str(self.folder / "data"), "-m",
                            "immediate", "stop"], capture_output=True, cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """A started server for a ``with`` block (the test is skipped, saying why, where the server
    programs are missing or it cannot start); stopped at the end."""
    import pytest

    server = PgServer()
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
