"""Host.run_lock: one regwizard run per host, however the host is named, freed by itself."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostlab import TEST_PASSWORD, Lab, as_user_in_child, make_conn, need_root, remote_gone

from regwizard.errors import Cancelled, LockBusy, RegwizardError
from regwizard.hosts import Host, LocalHost, SSHHost, connect
from regwizard.plan import Connection, Secrets

LOCK_DIR = Path("/run/lock/regwizard")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def name() -> Iterator[str]:
    """A lock name of our own (never "registry": another run on this machine may use it)."""
    need_root()
    lock = f"rwtest-{uuid.uuid4().hex[:12]}"
    yield lock
    for suffix in (".lock", ".holder", ".holder.new"):
        (LOCK_DIR / f"{lock}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def local() -> Iterator[LocalHost]:
    need_root()
    host = connect(Connection(), Secrets())
    assert isinstance(host, LocalHost)
    yield host
    host.close()


def ended(pid: int, within: float = 5.0) -> bool:
    """``pid`` is gone or a zombie (init reaps orphans when it gets to it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def assert_free(host: Host, name: str) -> float:
    """The lock can be taken at once (wait=0); returns how long taking it took."""
    start = time.monotonic()
    with host.run_lock(name, holder="probe", wait=0):
        return time.monotonic() - start


def assert_busy(host: Host, name: str, holder: str, wait: float = 0.0) -> LockBusy:
    seen: list[str] = []
    start = time.monotonic()
    with pytest.raises(LockBusy) as info:
        with host.run_lock(name, holder="second run", wait=wait, on_wait=seen.append):
            pytest.fail("took a lock that is held")
    elapsed = time.monotonic() - start
    assert seen == [holder]  # on_wait: once, naming the holder
    e = info.value
    assert e.holder == holder and holder in e.cause and e.name == name
    assert wait <= elapsed < wait + 5
    assert e.path == f"{LOCK_DIR}/{name}.lock" and e.path in e.evidence
    assert "frees itself" in e.fix and "wait for that run" in e.fix
    return e


def test_local_and_ssh_to_127_0_0_1_contend(local: LocalHost, root_host: Host, name: str) -> None:
    """ "local" and "root@127.0.0.1" are one machine: one host-side lock file."""
    with local.run_lock(name, holder="node0 (root) pid 1 started today") as lock:
        assert lock.held and lock.path == f"{LOCK_DIR}/{name}.lock"
        assert_busy(root_host, name, "node0 (root) pid 1 started today", wait=1.0)
    assert not lock.held
    with root_host.run_lock(name, holder="over ssh"):
        assert_busy(local, name, "over ssh")
    # the directory and files are root's alone
    assert stat.S_IMODE(LOCK_DIR.stat().st_mode) == 0o700
    note = LOCK_DIR / f"{name}.holder"
    assert stat.S_IMODE(note.stat().st_mode) == 0o600 and note.stat().st_uid == 0


def test_released_on_exit_even_by_an_exception(
    local: LocalHost, root_host: Host, name: str
) -> None:
    with pytest.raises(RuntimeError):
        with root_host.run_lock(name, holder="doomed"):
            raise RuntimeError("a step failed")
    took = assert_free(local, name)
    assert took < 1.0
    # a waiter gets the lock the moment it is released
    got: list[float] = []
    with local.run_lock(name, holder="first"):

        def second() -> None:
            with root_host.run_lock(name, holder="waiter", wait=10):
                got.append(time.monotonic())

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        released = time.monotonic()
    t.join(15)
    assert got and got[0] - released < 1.0


def test_released_when_the_ssh_connection_drops(sshlab: Lab, local: LocalHost, name: str) -> None:
    host = connect(make_conn(sshlab), Secrets(), known_hosts=str(sshlab.root / "unused_kh"))
    assert isinstance(host, SSHHost)
    try:
        with host.run_lock(name, holder="dropped run") as lock:
            assert_busy(local, name, "dropped run")
            host.transport.sock.shutdown(2)  # abruptly: no SSH disconnect, just TCP gone
            start = time.monotonic()
            with local.run_lock(name, holder="next", wait=10):
                freed = time.monotonic() - start
            assert not lock.held
        # (leaving the block after the drop raised nothing)
    finally:
        host.close()
    assert freed < 3.0


HOLDER_SCRIPT = """
import sys, time
from regwizard.hosts import connect
from regwizard.plan import Connection, Secrets
with connect(Connection(), Secrets()) as host, host.run_lock(sys.argv[1], holder=sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_released_when_the_holder_is_killed(local: LocalHost, name: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, name, "killed run"],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        assert_busy(local, name, "killed run")
        holder_pid = int((LOCK_DIR / f"{name}.holder").read_text().split()[0])
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup of any kind runs
        proc.wait(10)
        start = time.monotonic()
        with local.run_lock(name, holder="after the kill", wait=10):
            freed = time.monotonic() - start
        assert freed < 2.0
        assert ended(holder_pid)  # the host-side holder process ended too
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_stale_note_never_blocks_or_names(local: LocalHost, name: str) -> None:
    """A note left by a dead run: the lock is free; and when the lock is busy with no
    fresh note (held by a process that wrote none), the dead run is not named."""
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    (LOCK_DIR / f"{name}.holder").write_text("999999999\nlong gone run\n")  # no such PID
    assert assert_free(local, name) < 1.0
    (LOCK_DIR / f"{name}.holder").write_text("999999999\nlong gone run\n")
    other = subprocess.Popen(["flock", str(LOCK_DIR / f"{name}.lock"), "sleep", "30"])
    try:
        time.sleep(0.3)
        seen: list[str] = []
        with pytest.raises(LockBusy) as info:
            with local.run_lock(name, wait=0, on_wait=seen.append):
                pass
        assert "long gone" not in info.value.cause and "not named itself" in info.value.cause
        assert seen == ["a run that has not named itself yet"]
    finally:
        other.kill()
        other.wait(10)


def test_cancel_while_waiting(local: LocalHost, root_host: Host, name: str) -> None:
    cancel = threading.Event()
    with local.run_lock(name, holder="long run"):
        seen: list[str] = []
        threading.Timer(0.5, cancel.set).start()
        start = time.monotonic()
        with pytest.raises(Cancelled):
            with root_host.run_lock(name, wait=30.123, on_wait=seen.append, cancel=cancel):
                pytest.fail("took a lock that is held")
        assert time.monotonic() - start < 2.0
        assert seen == ["long run"]
        # the waiter on the host (its shell and its `flock -w`) ended, not left queued
        assert remote_gone(name) and remote_gone("flock -w 30.123")
    assert assert_free(local, name) < 1.0  # and it did not take the lock later


def test_sudo_with_password(user_host: Host, local: LocalHost, name: str) -> None:
    """The sudo password goes first on stdin; the rest of stdin still holds the lock."""
    with user_host.run_lock(name, holder="rwtestuser via sudo") as lock:
        time.sleep(0.5)  # sudo read its line; stdin stays open, so the lock stays held
        assert lock.held
        assert_busy(local, name, "rwtestuser via sudo", wait=0.5)
        note = LOCK_DIR / f"{name}.holder"
        assert note.stat().st_uid == 0  # taken as root
    assert assert_free(local, name) < 1.0
    with local.run_lock(name, holder="root here"):
        assert_busy(user_host, name, "root here")


def test_missing_flock_is_explained(
    local: LocalHost, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(RegwizardError) as info:
        with local.run_lock(name):
            pass
    assert "flock" in info.value.cause and "util-linux" in info.value.fix


def test_bad_names_are_refused(local: LocalHost) -> None:
    for bad in ("", "../etc/passwd", "a b", "-n", "x" * 65):
        with pytest.raises(ValueError):
            local.run_lock(bad)


def test_local_sudo_with_password(test_user: str, local: LocalHost, name: str) -> None:
    """LocalHost as a real non-root user: sudo's password first, stdin then held open."""

    def body() -> dict:
        out: dict = {}
        secrets = Secrets(sudo_passwords={"local": TEST_PASSWORD})
        with (
            connect(Connection(sudo=True), secrets) as a,
            connect(Connection(sudo=True), secrets) as b,
        ):
            with a.run_lock(name, holder="local sudo run") as lock:
                time.sleep(0.5)
                out["held"] = lock.held
                out["uid"] = b.run(["stat", "-c", "%u", f"{LOCK_DIR}/{name}.holder"]).text
                seen: list[str] = []
                try:
                    with b.run_lock(name, wait=0.5, on_wait=seen.append):
                        out["busy"] = "took a held lock"
                except LockBusy as e:
                    out["busy"] = e.holder
                out["seen"] = seen
            with b.run_lock(name, wait=0):
                out["after"] = "free"
        return out

    out = as_user_in_child(test_user, body)
    assert "error" not in out, out
    assert out["held"] and out["uid"] == "0\n"
    assert out["busy"] == "local sudo run" and out["seen"] == ["local sudo run"]
    assert out["after"] == "free"
    assert TEST_PASSWORD not in str(out)
    assert assert_free(local, name) < 1.0
