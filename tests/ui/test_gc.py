"""The Reclaim disk screen (Welcome -> plan file -> Dry run / Reclaim -> report), on the
fake backend; plus one snapshot of the report."""

from __future__ import annotations

from pathlib import Path

from regwizard.plan import Connection, Plan, RegistrySpec, User, save_plan

from .conftest import SIZE, make_app
from .fakes import FakeBackend
from .walk import activate, enter_value, screen_name, settle, widget_text


def _plan_file(tmp_path: Path) -> Path:
    from regwizard.htpasswd import hash_password

    plan = Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        host=Connection(address="10.0.0.2", label="node1"),
        users=[User("alice", hash_password("alice-password-1", rounds=4))],
    )
    path = tmp_path / "regwizard-plan.toml"
    save_plan(plan, path)
    return path


async def _open_gc(pilot, path: Path) -> None:
    await pilot.pause()
    await activate(pilot, "#gc")
    await pilot.pause()
    assert screen_name(pilot) == "PathDialog"
    await enter_value(pilot, "#path", str(path))
    await pilot.press("enter")
    await settle(pilot)
    assert screen_name(pilot) == "GcScreen"


async def test_dry_run_then_reclaim_show_the_report(tmp_path: Path) -> None:
    backend = FakeBackend()
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _open_gc(pilot, _plan_file(tmp_path))
        assert "registry on node1" in widget_text(pilot, "#gc-target")
        await activate(pilot, "#dry-run")
        await settle(pilot)
        report = widget_text(pilot, "#gc-report")
        assert "blobs eligible for deletion: 3" in report
        assert "would free about 200.0 MiB" in report
        assert "nothing was deleted" in widget_text(pilot, "#gc-status")
        await activate(pilot, "#untagged")
        await activate(pilot, "#reclaim")
        await settle(pilot)
        report = widget_text(pilot, "#gc-report")
        assert "freed:          200.0 MiB" in report
        assert "storage before: 700.0 MiB" in report
        assert "untagged manifests deleted: 0" in report
        assert "read-write again" in widget_text(pilot, "#gc-status")
        assert not app.state.running
        log = pilot.app.screen.query_one("#gc-log")
        text = "\n".join(str(line) for line in log.lines)
        assert "blob eligible for deletion" in text and "marking manifest" not in text
    assert [(dry, untagged) for _p, dry, untagged in backend.gc_calls] == [
        (True, False),
        (False, True),
    ]
    assert backend.gc_calls[0][0].host.address == "10.0.0.2"


async def test_a_failed_collection_says_so(tmp_path: Path) -> None:
    backend = FakeBackend(gc_mode="fail")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _open_gc(pilot, _plan_file(tmp_path))
        await activate(pilot, "#reclaim")
        await settle(pilot)
        assert "failed to mark: boom" in widget_text(pilot, "#gc-report")
        assert "failed" in widget_text(pilot, "#gc-status")
        assert pilot.app.screen.has_class("-failed")
        await pilot.press("escape")
        await settle(pilot)
        assert screen_name(pilot) == "WelcomeScreen"


def test_gc_report_snapshot(snap_compare, tmp_path: Path) -> None:
    path = _plan_file(tmp_path)

    async def reclaimed(pilot) -> None:
        await _open_gc(pilot, path)
        await activate(pilot, "#reclaim")
        await settle(pilot)

    assert snap_compare(make_app(FakeBackend()), terminal_size=SIZE, run_before=reclaimed)
