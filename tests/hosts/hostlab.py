"""Helpers and fixtures for the hosts tests: a throwaway sshd on 127.0.0.1 and a throwaway user.

Everything lives in temp dirs; HOME points at a temp dir so ~/.ssh is never touched.
Processes we start are ended by PID. In CI (``$CI`` set) missing root is a failure,
not a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regwizard.hosts import Host, connect
from regwizard.plan import Connection, Secrets

SSHD = "/usr/sbin/sshd"
TEST_USER = "rwtestuser"
TEST_PASSWORD = "rw-Test-pass-7319"  # throwaway account, deleted after the session


def need(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {why}")
    pytest.skip(why)


def need_root() -> None:
    need(os.geteuid() == 0, "these tests need root (sshd, useradd)")
    need(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None, "sshd not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    if path.exists():
        path.unlink()
        path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "rwtest", "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path


def ssh_fingerprint(pub: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()[1]


@dataclass
class Sshd:
    """One sshd -D on 127.0.0.1:port, with its own host key(s) and config."""

    root: Path
    authorized_keys: Path
    key_types: tuple[str, ...] = ("ed25519",)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_keys = [self.root / f"ssh_host_{t}_key" for t in self.key_types]
        for path, kind in zip(self.host_keys, self.key_types, strict=True):
            keygen(path, kind)

    @property
    def fingerprint(self) -> str:
        return ssh_fingerprint(self.host_keys[0].with_suffix(".pub"))

    def fingerprint_of(self, kind: str) -> str:
        return ssh_fingerprint(self.root / f"ssh_host_{kind}_key.pub")

    def regenerate(self) -> None:
        for path, kind in zip(self.host_keys, self.key_types, strict=True):
            keygen(path, kind)

    def start(self) -> None:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        cfg = self.root / "sshd_config"
        lines = [
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            *(f"HostKey {k}" for k in self.host_keys),
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PermitRootLogin yes",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UsePAM no",
            "StrictModes no",
            "Subsystem sftp internal-sftp",
            "MaxSessions 20",
            "LogLevel VERBOSE",
        ]
        cfg.write_text("\n".join(lines) + "\n")
        log = open(self.root / "sshd.log", "ab")  # noqa: SIM115 - kept by the process
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s,
            ):
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Lab:
    root: Path
    sshd: Sshd
    client_key: Path  # root's and rwtestuser's authorized key
    other_key: Path  # a valid key the server does not know
    encrypted_key: Path
    user: str = TEST_USER
    password: str = TEST_PASSWORD

    @property
    def fingerprint(self) -> str:
        return self.sshd.fingerprint


@pytest.fixture(scope="session")
def sshlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    need_root()
    root = tmp_path_factory.mktemp("sshlab")
    client_key = keygen(root / "id_client")
    other_key = keygen(root / "id_other")
    encrypted_key = keygen(root / "id_encrypted", passphrase="secret-phrase")
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o644)
    root.chmod(0o755)  # the test user reads authorized_keys through sshd (StrictModes no)
    sshd = Sshd(root / "sshd", authorized)
    sshd.start()
    try:
        yield Lab(root, sshd, client_key, other_key, encrypted_key)
    finally:
        sshd.stop()


def _userdel() -> None:
    subprocess.run(["userdel", "-r", "-f", TEST_USER], capture_output=True, timeout=30)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"/etc/sudoers.d/{TEST_USER}")


@pytest.fixture(scope="session")
def test_user(sshlab: Lab) -> Iterator[str]:
    """A non-root account with a password; sudo needs that password."""
    need(shutil.which("useradd") is not None and shutil.which("sudo") is not None, "no useradd")
    _userdel()  # leftovers of an interrupted run
    subprocess.run(
        ["useradd", "-m", "-s", "/bin/sh", TEST_USER], check=True, capture_output=True, timeout=30
    )
    try:
        subprocess.run(
            ["chpasswd"],
            input=f"{TEST_USER}:{TEST_PASSWORD}\n",
            text=True,
            check=True,
            timeout=30,
        )
        sudoers = Path(f"/etc/sudoers.d/{TEST_USER}")
        sudoers.write_text(f"{TEST_USER} ALL=(ALL:ALL) ALL\n")
        sudoers.chmod(0o440)
        subprocess.run(["visudo", "-c", "-q", "-f", str(sudoers)], check=True, timeout=30)
        yield TEST_USER
    finally:
        _userdel()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real ~/.ssh or ssh-agent."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def known_hosts(isolated_home: Path) -> Path:
    return isolated_home / ".ssh" / "known_hosts"


# -- connections --------------------------------------------------------------------------


def make_conn(sshlab: Lab, **kw: object) -> Connection:
    """A Connection to the sshlab sshd as root by key, with the host key pinned."""
    base: dict[str, object] = {
        "address": "127.0.0.1",
        "port": sshlab.sshd.port,
        "user": "root",
        "auth": "key",
        "key_file": str(sshlab.client_key),
        "host_key": sshlab.fingerprint,
    }
    base.update(kw)
    return Connection(**base)  # type: ignore[arg-type]


@pytest.fixture
def root_conn(sshlab: Lab) -> Connection:
    return make_conn(sshlab)


@pytest.fixture(scope="session")
def root_host(sshlab: Lab) -> Iterator[Host]:
    """One SSH connection as root, shared by the read-mostly tests."""
    host = connect(
        make_conn(sshlab), Secrets(), known_hosts=str(sshlab.root / "unused_known_hosts")
    )
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="session")
def user_host(sshlab: Lab, test_user: str) -> Iterator[Host]:
    """rwtestuser by password, with sudo (password required)."""
    conn = make_conn(sshlab, user=test_user, auth="password", sudo=True)
    secrets = Secrets(
        ssh_passwords={"127.0.0.1": TEST_PASSWORD}, sudo_passwords={"127.0.0.1": TEST_PASSWORD}
    )
    host = connect(conn, secrets, known_hosts=str(sshlab.root / "unused_known_hosts"))
    try:
        yield host
    finally:
        host.close()


def remote_gone(pattern: str, within: float = 5.0) -> bool:
    """True once no process matches ``pattern`` (we are the same machine as the sshd)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        res = subprocess.run(["pgrep", "-f", pattern], capture_output=True, timeout=10)
        if res.returncode != 0:
            return True
        time.sleep(0.1)
    return False


def as_user_in_child(user: str, body) -> dict:
    """Run ``body()`` in a forked child with the uid/gid of ``user``; return its dict.

    A fork keeps every module already imported (a fresh interpreter as that user could
    not read this venv under /root).
    """
    pw = pwd.getpwnam(user)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os.environ.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
            os.chdir(pw.pw_dir)
            out = body()
            os.write(w, json.dumps(out).encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 - report anything to the parent
            os.write(w, json.dumps({"error": repr(e)}).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        ready, _, _ = select.select([r], [], [], 0.5)
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    else:
        os.kill(pid, 9)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "no answer"}')
