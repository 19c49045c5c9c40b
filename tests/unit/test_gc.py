"""`regwizard gc` offline: the command builder, the output parser, and collect() on fake
hosts (read-only switch, restore in every outcome, the marker, the report)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regwizard import gc
from regwizard.events import GcFinished, GcOutput, StepFailed
from regwizard.steps.config import render
from tests.fixtures import world

MARKER = "/etc/regwizard/maintenance"
CONFIG = "/etc/regwizard/registry/config.yml"
STORAGE = "/opt/docker-image"
B1 = "sha256:" + "a1" * 32
B2 = "sha256:" + "b2" * 32
M1 = "sha256:" + "c3" * 32

# garbage-collect's stdout as distribution 2.8 writes it (registry/storage/garbagecollect.go)
MARK = f"busybox: marking manifest {M1} "  # sic: a trailing space
OUTPUT_28 = f"""busybox
{MARK}
busybox: marking blob sha256:{"d4" * 32}
manifest eligible for deletion: {{busybox {"e5" * 32} [old]}}

2 blobs marked, 2 blobs and 1 manifests eligible for deletion
blob eligible for deletion: {B1}
blob eligible for deletion: {B2}
"""
# distribution 2.7's summary line
OUTPUT_27 = f"""busybox
{MARK}
2 blobs marked, 3 blobs parsed : 1 blobs eligible for deletion
blob eligible for deletion: {B1}
"""
# what logrus writes on stderr while deleting (not counted)
STDERR = (
    'time="2026-11-30T13:05:00Z" level=info msg="Deleting blob: /docker/registry/v2/blobs/'
    f'sha256/a1/{B1[7:]}" go.version=go1.19.8 instance.id=1\n'
)


# --------------------------------------------------------------------------- pure parts


def test_argv_plain_and_with_flags() -> None:
    conf = "/etc/distribution/config.yml"
    assert gc.gc_argv("/bin/registry", conf, dry_run=False, delete_untagged=False) == [
        "/bin/registry",
        "garbage-collect",
        conf,
    ]
    assert gc.gc_argv("/bin/registry", conf, dry_run=True, delete_untagged=True) == [
        "/bin/registry",
        "garbage-collect",
        "--dry-run",
        "--delete-untagged",
        conf,
    ]


paths = st.text(min_size=1, max_size=40).map(lambda s: "/" + s)


@given(paths, paths, st.booleans(), st.booleans())
def test_argv_is_a_list_the_config_last_never_a_shell_string(
    binary: str, config: str, dry: bool, untagged: bool
) -> None:
    argv = gc.gc_argv(binary, config, dry_run=dry, delete_untagged=untagged)
    assert argv[0] == binary and argv[1] == "garbage-collect" and argv[-1] == config
    assert argv[2:-1] == [
        f for f, on in (("--dry-run", dry), ("--delete-untagged", untagged)) if on
    ]
    assert all(isinstance(a, str) for a in argv)  # an argv: each element one word, as given


@given(st.text(max_size=30), st.booleans())
def test_argv_refuses_relative_paths(path: str, dry: bool) -> None:
    if path.startswith("/"):
        return
    with pytest.raises(ValueError):
        gc.gc_argv("/bin/registry", path, dry_run=dry, delete_untagged=False)
    with pytest.raises(ValueError):
        gc.gc_argv(path, "/etc/distribution/config.yml", dry_run=dry, delete_untagged=False)


def test_registry_binary_from_the_entrypoint() -> None:
    lab = {"Config": {"Entrypoint": ["/bin/registry"], "Cmd": ["serve", "/x.yml"]}}
    official = {"Config": {"Entrypoint": ["/entrypoint.sh"]}}
    assert gc.registry_binary(lab) == "/bin/registry"
    assert gc.registry_binary({"Config": {"Entrypoint": ["/usr/bin/registry"]}}) == (
        "/usr/bin/registry"
    )
    assert gc.registry_binary(official) == "/bin/registry"
    assert gc.registry_binary({}) == "/bin/registry"


def test_parse_28_output() -> None:
    t = gc.parse_output(OUTPUT_28 + STDERR)
    assert (t.blobs, t.manifests, t.marked, t.marks) == (2, 1, 2, 2)
    assert t.digests == (B1, B2)


def test_parse_27_output() -> None:
    t = gc.parse_output(OUTPUT_27)
    assert (t.blobs, t.manifests, t.marked) == (1, 0, 2)


def test_parse_error_line() -> None:
    assert gc.Tally().feed("failed to garbage collect: failed to mark: x") == "error"


@given(st.lists(st.text(max_size=80), max_size=30))
def test_parse_never_raises_and_counts_only_eligible_lines(lines: list[str]) -> None:
    t = gc.parse_output("\n".join(lines))
    assert t.blobs <= len(lines) and t.manifests <= len(lines)


# --------------------------------------------------------------------------- collect()


def _case(tmp_path: Path, **host) -> world.Case:
    node1 = {"du": {STORAGE: 10_000_000}}
    node1.update(host)
    return world.build(
        {"setup": "applied", "plan": {"clients": []}, "hosts": {"node1": node1}}, tmp_path
    )


def _collect(case: world.Case, **kw) -> tuple[gc.GcResult, list]:
    events: list = []
    kw.setdefault("emit", events.append)
    result = gc.collect(case.plan, case.secrets, connect=case.connect(), net=case.net, **kw)
    return result, events


def _files(case: world.Case) -> dict[str, bytes]:
    return case.host().state.files


def _rendered(case: world.Case, readonly: bool) -> bytes:
    return render(case.ctx(), world.FIXED_SECRET, readonly=readonly).encode()


def test_gc_switches_read_only_collects_and_restores(tmp_path: Path) -> None:
    case = _case(
        tmp_path,
        exec={"stdout": OUTPUT_28, "stderr": STDERR, "du_after": {STORAGE: 7_000_000}},
    )
    result, events = _collect(case)
    assert result.ok, result.failure
    assert (result.blobs, result.manifests, result.marked) == (2, 1, 2)
    assert (result.bytes_before, result.bytes_after, result.freed) == (
        10_000_000,
        7_000_000,
        3_000_000,
    )
    assert result.restored
    assert MARKER not in _files(case)
    assert _files(case)[CONFIG] == _rendered(case, readonly=False)
    ops = case.host().ops
    seq = [
        (o["op"], o.get("path") or o.get("name") or "")
        for o in ops
        if o["op"] in ("write_file", "docker.restart", "docker.exec_create", "run_lock")
        or (o["op"] == "run" and o["argv"][:2] == ["rm", "-f"])
    ]
    assert seq == [
        ("run_lock", "registry"),
        ("write_file", MARKER),
        ("write_file", CONFIG),
        ("docker.restart", "registry"),
        ("docker.exec_create", "registry"),
        ("write_file", CONFIG),
        ("docker.restart", "registry"),
        ("run", ""),
    ]
    # the read-only config was written between the two restarts
    sizes = [o["size"] for o in ops if o["op"] == "write_file" and o["path"] == CONFIG]
    assert sizes == [len(_rendered(case, True)), len(_rendered(case, False))]
    create = next(o for o in ops if o["op"] == "docker.exec_create")
    assert create["cmd"] == ["/bin/registry", "garbage-collect", "/etc/distribution/config.yml"]
    lines = [e for e in events if isinstance(e, GcOutput)]
    assert lines[-1].blobs == 2 and lines[-1].manifests == 1
    assert isinstance(events[-1], GcFinished) and events[-1].result is result


def test_gc_delete_untagged_flag(tmp_path: Path) -> None:
    case = _case(tmp_path, exec={"stdout": OUTPUT_28})
    result, _ = _collect(case, delete_untagged=True)
    assert result.ok
    create = next(o for o in case.host().ops if o["op"] == "docker.exec_create")
    assert "--delete-untagged" in create["cmd"]


def test_dry_run_stays_read_write_and_sizes_the_blobs(tmp_path: Path) -> None:
    size_cmd = {"prefix": ["sh", "-c", gc._BLOB_SIZES], "stdout": "4000\tx\n500\ty\n"}
    case = _case(tmp_path, exec={"stdout": OUTPUT_28}, **{"commands+": [size_cmd]})
    result, _ = _collect(case, dry_run=True)
    assert result.ok, result.failure
    assert result.eligible_bytes == 4500
    assert result.bytes_after is None and result.freed is None
    assert case.writes() == {}  # nothing written, nothing restarted, nothing deleted
    create = next(o for o in case.host().ops if o["op"] == "docker.exec_create")
    assert "--dry-run" in create["cmd"]


def test_collector_failure_still_restores(tmp_path: Path) -> None:
    case = _case(
        tmp_path,
        exec={
            "stdout": "busybox\n",
            "stderr": "failed to garbage collect: failed to mark: boom\n",
            "rc": 1,
        },
    )
    result, events = _collect(case)
    assert not result.ok and result.restored
    assert result.failure is not None and "exit code 1" in result.failure.cause
    assert "failed to mark: boom" in result.failure.cause
    assert result.failure.step == "collect"
    assert MARKER not in _files(case)
    assert _files(case)[CONFIG] == _rendered(case, readonly=False)


def test_docker_error_still_restores(tmp_path: Path) -> None:
    case = _case(tmp_path, exec={"error": "OCI runtime exec failed: no such file /bin/registry"})
    result, _ = _collect(case)
    assert not result.ok and result.restored
    assert "no such file" in (result.failure.cause + result.failure.evidence)
    assert MARKER not in _files(case)
    assert _files(case)[CONFIG] == _rendered(case, readonly=False)


def test_cancel_during_collection_restores(tmp_path: Path, monkeypatch) -> None:
    case = _case(tmp_path, exec={"stdout": OUTPUT_28})
    cancel = threading.Event()

    def emit(ev) -> None:
        if isinstance(ev, GcOutput):
            cancel.set()  # the person pressed Cancel as the first line came in

    result, _ = _collect(case, emit=emit, cancel=cancel)
    assert not result.ok and result.restored
    assert result.failure.step == "collect"
    assert MARKER not in _files(case)
    assert _files(case)[CONFIG] == _rendered(case, readonly=False)
    restarts = [o for o in case.host().ops if o["op"] == "docker.restart"]
    assert len(restarts) == 2  # the second restart also stops the collector


def test_restore_that_fails_leaves_the_marker_for_apply(tmp_path: Path, monkeypatch) -> None:
    from tests.fixtures.fakes import FakeContainer

    case = _case(tmp_path, exec={"stdout": OUTPUT_28})
    real = FakeContainer.restart
    calls = []

    def restart(self, timeout: int = 10) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("connection lost")
        real(self, timeout)

    monkeypatch.setattr(FakeContainer, "restart", restart)
    result, events = _collect(case)
    assert not result.ok and not result.restored
    assert result.failure.step == "read-write"
    assert "regwizard apply" in result.failure.fix
    assert MARKER in _files(case)  # apply's container step restarts it and removes it
    assert any(isinstance(e, StepFailed) and e.step == "read-write" for e in events)


def test_a_marker_left_behind_is_cleared_even_by_a_dry_run(tmp_path: Path) -> None:
    case = _case(
        tmp_path,
        exec={"stdout": OUTPUT_28},
        files={CONFIG: "<rendered-config-read-only>", MARKER: "gc by node0 pid 1\n"},
    )
    result, events = _collect(case, dry_run=True)
    assert result.ok and result.restored
    assert MARKER not in _files(case)
    assert _files(case)[CONFIG] == _rendered(case, readonly=False)
    assert any("left read-only by a cut gc" in getattr(e, "text", "") for e in events)


def test_config_not_from_the_plan_is_refused_before_any_change(tmp_path: Path) -> None:
    case = _case(tmp_path, files={CONFIG: "version: 0.1\nstorage: {filesystem: {}}\n"})
    result, _ = _collect(case)
    assert not result.ok
    assert "not what the plan writes" in result.failure.cause
    assert case.writes() == {}


def test_missing_container_is_refused(tmp_path: Path) -> None:
    case = _case(tmp_path, containers={"registry": None})
    result, _ = _collect(case)
    assert not result.ok and "no container named registry" in result.failure.cause
    assert case.writes() == {}


def test_apply_after_a_sigkilled_gc_converges(tmp_path: Path) -> None:
    """SIGKILL between the switch and the restore: the next apply's config and container
    steps put the registry back read-write and remove the marker."""
    from regwizard.steps import Config, Container
    from regwizard.steps.base import Unchanged

    case = _case(
        tmp_path, files={CONFIG: "<rendered-config-read-only>", MARKER: "gc by node0 pid 1\n"}
    )
    ctx = case.ctx()
    e = case.entry()
    for step in (Config(), Container()):
        change = step.check(ctx, e)
        assert not isinstance(change, Unchanged), step.name
        step.apply(ctx, e, change)
        ctx.forget(e)
        assert isinstance(step.check(ctx, e), Unchanged), step.name
    assert MARKER not in _files(case)
    assert _files(case)[CONFIG] == _rendered(case, readonly=False)


def test_a_registry_slow_to_answer_after_the_restore_is_still_read_write(
    tmp_path: Path, monkeypatch
) -> None:
    """Restarted with the read-write file: the marker goes even if it answers late."""
    from regwizard.errors import RegwizardError

    case = _case(tmp_path, exec={"stdout": OUTPUT_28})
    calls = []
    real = gc._wait_answering

    def wait(ctx, e) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RegwizardError("the registry does not answer after a restart: timeout")
        real(ctx, e)

    monkeypatch.setattr(gc, "_wait_answering", wait)
    result, _ = _collect(case)
    assert not result.ok and result.restored
    assert "switched back to read-write but" in result.failure.cause
    assert MARKER not in _files(case)
