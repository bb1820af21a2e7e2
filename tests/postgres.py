"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temporary folder, loopback only.

PostgreSQL refuses to run as root, so as root (CI) the cluster runs as Debian's ``postgres`` user
(made by the package) in a folder it owns; otherwise as the current user. A role with a password
stands for a teammate, so the tests see the password handled as users' will be.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PASSWORD = "pg-secret-hunter2"
ROLE = "team"


def server_binaries() -> Path:
    """Debian's PostgreSQL server programs (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed: apt-get install postgresql (.ci/run does)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """initdb, then postgres on a free loopback port; :meth:`stop` removes everything."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="yart-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            shutil.chown(self.folder, self.user)
        self.folder.chmod(0o700)
        password_file = self.folder / "pw"
        password_file.write_text(PASSWORD + "\n")
        if self.user is not None:
            shutil.chown(password_file, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "admin", "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={password_file}", "-E", "UTF8", "--no-sync")
        self._start()
        self._sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' CREATEDB")

    def _start(self) -> None:
        """Start the server on the cluster's port and wait until it answers."""
        log = self.folder / "server.log"
        with open(log, "ab") as output:  # the server's log goes to a file: a pipe nobody reads would fill up
            self.server = subprocess.Popen(
                self._as_user(str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                              "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
                              "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                              "-c", "max_connections=200"),
                stdout=output, stderr=output)
        deadline = time.monotonic() + 30
        while self._sql("SELECT 1", check=False).returncode != 0:
            if self.server.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start: {log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start in 30 s")
            time.sleep(0.05)

    def _as_user(self, *command: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *command] if self.user is not None else list(command)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(self._as_user(str(self.bin / program), *args), check=True, capture_output=True, cwd="/")

    def _sql(self, statement: str, *, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["psql", "-h", str(self.folder), "-p", str(self.port), "-U", "admin", "-d", "postgres",
                               "-v", "ON_ERROR_STOP=1", "-qAtc", statement], check=check, capture_output=True,
                              cwd="/", env={**os.environ, "PGCONNECT_TIMEOUT": "2"})

    def new_database(self) -> str:
        """A fresh empty database owned by the team role: its URL, password included."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._sql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.url(name)

    def url(self, name: str, *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{ROLE}{secret}@127.0.0.1:{self.port}/{name}"

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (fast: connections are cut) and start it again after ``down_for`` seconds."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.server.wait(10)
        time.sleep(down_for)
        self._start()

    def stop(self) -> None:
        """Stop the server and remove the cluster's folder. A fast shutdown (connections cut) takes
        0.13 s; the SIGTERM of before, a smart one, waited 2 s for the server's own sessions, at the
        end of every test process that used the database."""
        if self.server.poll() is None:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "15", "stop")
                self.server.wait(15)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self.server.kill()
                self.server.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
