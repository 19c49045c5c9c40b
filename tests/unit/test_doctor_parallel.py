"""doctor runs its checks at once, and its report keeps the sequential order.

The order is forced with events, never with timing: the registry host's docker check
waits until the last host's hosts-file check has run, which only a parallel run allows.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from regwizard import doctor
from regwizard.errors import Cancelled
from regwizard.plan import Secrets
from regwizard.steps.base import Ctx
from tests.fixtures import world

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "doctor"

# today's sequential order for a registry host with a local CA and this machine as a client
SEQUENTIAL = [
    ("connect", "node1"),
    ("connect", "this machine"),
    ("docker", "node1"),
    ("docker", "this machine"),
    ("container", "node1"),
    ("restart", "node1"),
    ("tls", "node1"),
    ("port", "node1"),
    ("certificate", "node1"),
    ("auth", "node1"),
    ("login", "node1"),
    ("htpasswd", "node1"),
    ("storage", "node1"),
    ("hosts-file", "node1"),
    ("trust", "node1"),
    ("hosts-file", "this machine"),
    ("trust", "this machine"),
    ("plan", "node1"),
]


def _diagnose(path: Path, tmp_path: Path, **kw) -> doctor.DoctorReport:  # noqa: ANN003
    case = world.load(path, tmp_path)
    return doctor.diagnose(case.plan, case.secrets, connect=case.connect(), net=case.net, **kw)


def test_report_order_is_sequential_when_checks_finish_in_another_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = threading.Event()  # set by the last check of the report before drift
    waited: list[bool] = []
    docker, hosts_file = doctor._Doctor._docker, doctor._Doctor._hosts_file

    def slow_docker(self, e) -> None:  # noqa: ANN001
        if e.label == "node1":  # the first check after connect waits for a late one
            waited.append(late.wait(30))
        docker(self, e)

    def marking_hosts_file(self, e) -> None:  # noqa: ANN001
        hosts_file(self, e)
        if e.label == "this machine":
            late.set()

    monkeypatch.setattr(doctor._Doctor, "_docker", slow_docker)
    monkeypatch.setattr(doctor._Doctor, "_hosts_file", marking_hosts_file)
    emitted: list[tuple[str, str]] = []
    report = _diagnose(
        FIXTURES / "healthy-local-ca-port.json",
        tmp_path,
        emit=lambda f: emitted.append((f.check, f.host)),
    )
    assert waited == [True], "the checks did not run at once"
    # emit streams in completion order: the late check came before docker on node1
    assert emitted.index(("hosts-file", "this machine")) < emitted.index(("docker", "node1"))
    assert [(f.check, f.host) for f in report.findings] == SEQUENTIAL
    assert sorted(emitted) == sorted(SEQUENTIAL)
    assert report.exit_code == 0


def test_the_login_does_not_take_the_registry_hosts_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """login talks to the registry's port, not over SSH: while it waits, the registry
    host's SSH checks (one at a time, PER_HOST) go on. Here it waits for htpasswd, which
    comes after it in the report and could not start if login held node1's slot."""
    htpasswd_started = threading.Event()
    waited: list[bool] = []
    login, htpasswd = doctor._Doctor._login, doctor._Doctor._htpasswd

    def waiting_login(self) -> None:  # noqa: ANN001
        waited.append(htpasswd_started.wait(10))
        login(self)

    def marking_htpasswd(self) -> None:  # noqa: ANN001
        htpasswd_started.set()
        htpasswd(self)

    monkeypatch.setattr(doctor, "PER_HOST", 1)
    monkeypatch.setattr(doctor._Doctor, "_login", waiting_login)
    monkeypatch.setattr(doctor._Doctor, "_htpasswd", marking_htpasswd)
    report = _diagnose(FIXTURES / "healthy-local-ca-port.json", tmp_path)
    assert waited == [True], "login held the registry host's SSH slot"
    assert [(f.check, f.host) for f in report.findings] == SEQUENTIAL
    assert report.exit_code == 0


def test_one_worker_gives_the_sequential_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "WORKERS", 1)
    report = _diagnose(FIXTURES / "healthy-local-ca-port.json", tmp_path)
    assert [(f.check, f.host) for f in report.findings] == SEQUENTIAL


@pytest.mark.parametrize("path", world.cases("doctor"), ids=world.case_id)
def test_parallel_report_equals_the_one_worker_report(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def shown(r: doctor.DoctorReport) -> list[tuple[str, ...]]:
        # each load makes its own keys: evidence holds their hashes
        return [(f.check, f.host, f.severity, f.id, f.message) for f in r.findings]

    (tmp_path / "parallel").mkdir()
    (tmp_path / "one").mkdir()
    parallel = _diagnose(path, tmp_path / "parallel")
    monkeypatch.setattr(doctor, "WORKERS", 1)
    one = _diagnose(path, tmp_path / "one")
    assert shown(parallel) == shown(one)
    assert parallel.incomplete == one.incomplete


def test_a_check_that_breaks_is_incomplete_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self) -> None:  # noqa: ANN001
        raise KeyError("boom")

    def broken_unit(self, step, h) -> None:  # noqa: ANN001
        raise ValueError(f"{step.name} broke")

    monkeypatch.setattr(doctor._Doctor, "_storage", broken)
    monkeypatch.setattr(doctor._Doctor, "_drift_unit", broken_unit)
    report = _diagnose(FIXTURES / "healthy-local-ca-port.json", tmp_path)
    assert [f.message for f in report.of("storage")] == ["cannot check: KeyError: 'boom'"]
    assert report.incomplete[0] == "storage@node1: KeyError: 'boom'"
    assert any("certificate broke" in x for x in report.incomplete)
    assert [f.severity for f in report.of("trust")] == ["ok", "ok"]
    # as before: a unit that could not check is incomplete, not a change
    assert report.findings[-1].message == "apply would change nothing"
    assert report.exit_code == 2


def test_cancel_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cancel = threading.Event()
    seen: list[str] = []
    container = doctor._Doctor._container

    def cancelling_container(self) -> None:  # noqa: ANN001
        container(self)
        cancel.set()

    monkeypatch.setattr(doctor._Doctor, "_container", cancelling_container)
    monkeypatch.setattr(doctor, "WORKERS", 1)  # nothing else runs while container does
    with pytest.raises(Cancelled):
        _diagnose(
            FIXTURES / "healthy-local-ca-port.json",
            tmp_path,
            cancel=cancel,
            emit=lambda f: seen.append(f.check),
        )
    assert "container" in seen and "tls" not in seen and "plan" not in seen


def test_a_fact_two_threads_ask_for_at_once_is_read_once() -> None:
    from regwizard.plan import Plan

    ctx = Ctx(Plan(), Secrets(), lambda e: None, threading.Event())
    reads: list[int] = []
    started, release = threading.Event(), threading.Event()

    def read() -> int:
        reads.append(1)
        started.set()
        release.wait(30)
        return 42

    got: list[int] = []
    first = threading.Thread(target=lambda: got.append(ctx.fact("k", None, read)))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=lambda: got.append(ctx.fact("k", None, read)))
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert got == [42, 42] and reads == [1]


def test_a_fact_whose_read_fails_is_read_again() -> None:
    from regwizard.plan import Plan

    ctx = Ctx(Plan(), Secrets(), lambda e: None, threading.Event())
    calls: list[int] = []

    def read() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("flaky")
        return 7

    with pytest.raises(OSError):
        ctx.fact("k", None, read)
    assert ctx.fact("k", None, read) == 7 and len(calls) == 2
