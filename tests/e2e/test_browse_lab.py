"""The Browse screen against a real registry on the lab (issue 13): several repositories,
their tags with digests and sizes read through the registry API, and a confirmed delete.

The images are hand-built archives (fixed bytes, fixed config), loaded and pushed from
node0, so their digests and sizes - and the snapshot - are the same on every run.

Tenant: domain repair.lab.test, port 5533, container rp-browse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from regwizard import engine
from regwizard.app import RegwizardApp
from regwizard.backend import EngineBackend
from regwizard.plan import Secrets, save_plan
from tests.ui.walk import activate, screen_name, settle

from .test_repair_lab import (
    cleanup,
    drop_hosts_everywhere,
    node0_docker,
    set_node0_hosts,
    tenant_plan,
)

pytestmark = pytest.mark.lab

IMAGES = ("team/api:1.0", "team/api:1.1", "team/web:latest", "tools/cli:2")


def fixed_image(ref: str) -> bytes:
    """A docker-archive whose layer and config are fixed bytes: the same digest every run."""
    from regwizard.steps.verify import docker_archive

    config = {"architecture": "amd64", "os": "linux", "config": {}}
    return docker_archive(ref, config, {"hello.txt": f"{ref}\n".encode() * (1 + len(ref) * 40)})


def push_fixed(address: str, repo_tag: str, auth: dict) -> None:
    ref = f"{address}/{repo_tag}"
    c = node0_docker()
    try:
        c.images.load(fixed_image(ref))
        name, _, tag = ref.rpartition(":")
        errors = [
            i["error"]
            for i in c.api.push(name, tag=tag, stream=True, decode=True, auth_config=auth)
            if "error" in i
        ]
        assert not errors, errors
    finally:
        c.close()


@pytest.fixture(scope="module")
def browse_plan(lab, tmp_path_factory):
    from regwizard.plan import load_plan

    plan = tenant_plan(load_plan(lab.plan_file), "browse", 5533)
    plan.registry.allow_delete = True
    reg = plan.registry
    secrets = Secrets(verify_password=lab.verify_password)
    auth = {"username": plan.verify_user, "password": lab.verify_password}
    cleanup(lab, plan)
    set_node0_hosts(reg.ip)
    try:
        result = engine.run(plan, secrets)
        assert result.ok, result.failure
        for ref in IMAGES:
            push_fixed(reg.address, ref, auth)
        path = tmp_path_factory.mktemp("browse") / "plan.toml"
        save_plan(plan, path)
        yield plan, path
    finally:
        cleanup(lab, plan)
        drop_hosts_everywhere(lab)


async def open_browse(pilot, plan_file: Path, password: str) -> None:
    await pilot.pause()
    await activate(pilot, "#browse")
    assert screen_name(pilot) == "PathDialog"
    pilot.app.screen.query_one("#path", Input).value = str(plan_file)
    await activate(pilot, "#ok")
    for _ in range(50):  # a worker waits for this answer: pause, never wait for workers
        await pilot.pause(0.05)
        if screen_name(pilot) == "PasswordDialog":
            pilot.app.screen.query_one("#password", Input).value = password
            await activate(pilot, "#ok")
            break
    for _ in range(40):
        await settle(pilot)
        if screen_name(pilot) == "BrowseScreen" and _rows(pilot, "#repos"):
            return
    raise AssertionError(f"no repositories shown; on {screen_name(pilot)}")


async def show_tags(pilot, row: int) -> None:
    repos = pilot.app.screen.query_one("#repos", DataTable)
    repos.focus()
    repos.move_cursor(row=row)
    await pilot.pause()
    await pilot.press("enter")
    for _ in range(40):
        await settle(pilot)
        if _rows(pilot, "#tags"):
            return


def _rows(pilot, table: str) -> list[list[str]]:
    t = pilot.app.screen.query_one(table, DataTable)
    return [[str(c) for c in t.get_row_at(i)] for i in range(t.row_count)]


def _app() -> RegwizardApp:
    return RegwizardApp(backend=EngineBackend(), cursor_blink=False)


async def test_browse_a_lab_registry_then_delete_a_tag(lab, browse_plan, monkeypatch, tmp_path):
    plan, path = browse_plan
    monkeypatch.setenv("HOME", str(tmp_path))
    async with _app().run_test(size=(120, 40)) as pilot:
        await open_browse(pilot, path, lab.verify_password)
        repos = [r[0] for r in _rows(pilot, "#repos")]
        assert repos == ["regwizard/probe", "team/api", "team/web", "tools/cli"], (
            repos
        )  # + verify's
        await show_tags(pilot, 1)
        tags = _rows(pilot, "#tags")
        assert sorted(t[0] for t in tags) == ["1.0", "1.1"], tags
        from regwizard.registry_api import open_api

        api = open_api(plan, Secrets(verify_password=lab.verify_password))
        for tag, digest, size in tags:  # what the API says, shortened for the screen
            info = api.tag_info("team/api", tag)
            assert info.digest.split(":")[1].startswith(digest) and size.endswith(" B"), tags
        # delete team/api:1.1, confirmed; the registry no longer lists it
        t = pilot.app.screen.query_one("#tags", DataTable)
        t.focus()
        t.move_cursor(row=[r[0] for r in tags].index("1.1"))
        await activate(pilot, "#delete")
        assert screen_name(pilot) == "ConfirmDialog"
        await activate(pilot, "#yes")
        for _ in range(40):
            await settle(pilot)
            if [r[0] for r in _rows(pilot, "#tags")] == ["1.0"]:
                break
        assert [r[0] for r in _rows(pilot, "#tags")] == ["1.0"]
    assert list(api.all_tags("team/api")) == ["1.0"]


def test_browse_snapshot_of_a_lab_registry(lab, browse_plan, snap_compare, monkeypatch, tmp_path):
    plan, path = browse_plan
    monkeypatch.setenv("HOME", str(tmp_path))

    async def before(pilot) -> None:
        await open_browse(pilot, path, lab.verify_password)
        await show_tags(pilot, 3)  # tools/cli (kept by the delete test above)

    assert snap_compare(_app(), terminal_size=(120, 40), run_before=before)
