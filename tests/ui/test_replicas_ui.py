"""An HA plan ([storage] s3 + [[replicas]]) in the wizard: no screen loses them, Hosts and
Review show them read-only (never the S3 secret), the run asks for the S3 secret key
(Enter keeps the stored one), and Results / the report have a line per registry host."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from regwizard.htpasswd import hash_password
from regwizard.plan import (
    Connection,
    Plan,
    RegistrySpec,
    StorageSpec,
    User,
    VerifySpec,
    dump_plan,
    load_plan,
)

from .conftest import SIZE, WIDE, make_app
from .fakes import REPLICA_FAILURE, FakeBackend
from .walk import (
    USER_PASSWORD,
    activate,
    back_step,
    enter_value,
    next_step,
    screen_name,
    screen_text,
    settle,
    type_into,
    widget_text,
)

COMMENT = "# the bucket lives on the SeaweedFS cluster"
S3_SECRET = "s3-Secret-Key-0123456789"


def ha_plan() -> Plan:
    return Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        host=Connection(address="10.0.0.2", label="node1"),
        clients=[Connection()],
        users=[User("alice", hash_password(USER_PASSWORD, rounds=4))],
        verify=VerifySpec("alice"),
        storage=StorageSpec(
            driver="s3",
            endpoint="http://10.0.0.9:8333",
            bucket="registry",
            access_key="regwizard",
            root_directory="/reg",
        ),
        replicas=[
            Connection(address="10.0.0.3", label="node3"),
            Connection(address="10.0.0.4", user="ops", sudo=True, auth="agent"),
        ],
    )


def write_ha_plan(path: Path) -> Path:
    path.write_text(dump_plan(ha_plan()).replace("[storage]", f"{COMMENT}\n[storage]"))
    return path


def ha_sections(text: str) -> tuple[dict, list]:
    doc = tomllib.loads(text)
    return doc["storage"], doc["replicas"]


async def open_plan(pilot, path: Path) -> None:
    await activate(pilot, "#open")
    await enter_value(pilot, "#path", str(path))
    await activate(pilot, "#ok")
    await settle(pilot)
    assert screen_name(pilot) == "ReviewScreen"


async def save_to(pilot, path: Path) -> None:
    await activate(pilot, "#save-plan")
    await enter_value(pilot, "#path", str(path))
    await activate(pilot, "#ok")
    await settle(pilot)


async def test_walking_every_form_and_saving_keeps_storage_and_replicas(tmp_path: Path) -> None:
    """Welcome -> Open plan -> Review, Back to Hosts and Next again through every form,
    Save over the file and to a new one: [storage] and [[replicas]] are as they were."""
    path = write_ha_plan(tmp_path / "ha.toml")
    before = path.read_text()
    app = make_app(FakeBackend())
    async with app.run_test(size=SIZE) as pilot:
        await open_plan(pilot, path)
        for name in ("StorageScreen", "CertificateScreen", "HostsScreen"):
            await back_step(pilot)
            assert screen_name(pilot) == name
        note = widget_text(pilot, "#replicas-note")
        assert "2 replica(s) from the plan file: node3 (10.0.0.3), 10.0.0.4" in note
        assert "3 registry hosts serve reg.example.test from s3 storage" in note
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        await type_into(pilot, "#verify-password", USER_PASSWORD)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert app.state.plan.replicas == ha_plan().replicas
        assert app.state.plan.storage == ha_plan().storage
        await save_to(pilot, path)
        await save_to(pilot, tmp_path / "new.toml")
    assert path.read_text() == before  # nothing differed: the file is untouched, comment too
    assert ha_sections((tmp_path / "new.toml").read_text()) == ha_sections(before)
    assert load_plan(tmp_path / "new.toml").replicas == ha_plan().replicas


async def test_a_changed_host_keeps_the_replicas(tmp_path: Path) -> None:
    """Hosts rebuilds the registry host from its form; the replicas stay as the file says."""
    path = write_ha_plan(tmp_path / "ha.toml")
    app = make_app(FakeBackend())
    async with app.run_test(size=SIZE) as pilot:
        await open_plan(pilot, path)
        for _ in range(3):
            await back_step(pilot)
        await enter_value(pilot, "#host-user", "deploy")
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        await on_to_review_and_save(pilot)
    text = path.read_text()
    assert ha_sections(text) == ha_sections(write_ha_plan(tmp_path / "orig.toml").read_text())
    assert COMMENT in text
    assert load_plan(path).host.user == "deploy"


async def on_to_review_and_save(pilot) -> None:
    """Go on to Review (the password first) and save over the opened file."""
    await next_step(pilot)
    await type_into(pilot, "#verify-password", USER_PASSWORD)
    await next_step(pilot)
    assert screen_name(pilot) == "ReviewScreen"
    await save_to(pilot, pilot.app.state.plan_path)


async def test_review_shows_replicas_and_storage_but_no_secret(tmp_path: Path) -> None:
    plan = ha_plan()
    app = make_app(FakeBackend(), plan, start_at="review")
    app.state.secrets.s3_secret_key = ""
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        summary = summary_text(pilot)
        assert "Replica 1" in summary and "node3: root@10.0.0.3 (key ~/.ssh/id_ed25519)" in summary
        assert "Replica 2" in summary and "ops@10.0.0.4 (ssh-agent, sudo)" in summary
        assert (
            "s3: bucket registry at http://10.0.0.9:8333 (region us-east-1, access key "
            "regwizard, prefix /reg), shared by every registry host"
        ) in " ".join(summary.split())
        assert "reg.example.test -> 10.0.0.2, 10.0.0.3, 10.0.0.4" in summary
        needs = widget_text(pilot, "#needs")
        assert "S3 secret key of access key regwizard" in needs
        assert "sudo password for ops@10.0.0.4 (replica 10.0.0.4)" in needs
        assert S3_SECRET not in screen_text(pilot)


def summary_text(pilot) -> str:
    """Review's summary table as a person reads it (all rows, scrolled into view or not)."""
    console = Console(width=110, file=io.StringIO(), record=True)
    console.print(pilot.app.screen.query_one("#summary", Static).content)
    return console.export_text()


async def answer(pilot, prompt: str, text: str) -> None:
    """The PasswordDialog asking ``prompt``: type ``text``, Enter. (No settle here: the
    worker asking is waiting for the next dialog.)"""
    for _ in range(50):  # a bound, not a timing: the bcrypt check of the last one runs
        if screen_name(pilot) == "PasswordDialog" and prompt in screen_text(pilot):
            break
        await pilot.pause(0.05)
    assert prompt in screen_text(pilot)
    await type_into(pilot, "#password", text)
    await pilot.press("enter")
    await pilot.pause()


async def run_ha(pilot, s3_answer: str) -> None:
    """Review -> Run: answer the sudo, verify and S3 dialogs, then on to Results."""
    await pilot.click("#next")
    await pilot.pause()
    await answer(pilot, "sudo password for ops@10.0.0.4", "Sudo-pw-replica")
    await answer(pilot, "Password of registry user alice", USER_PASSWORD)
    await answer(pilot, "S3 secret key of access key regwizard", s3_answer)
    for _ in range(50):
        if screen_name(pilot) == "RunScreen":
            break
        await pilot.pause(0.05)
    assert screen_name(pilot) == "RunScreen"
    await settle(pilot)
    await pilot.click("#results")
    await settle(pilot)
    assert screen_name(pilot) == "ResultsScreen"


async def test_results_show_a_line_per_registry_host_and_enter_keeps_the_s3_key(
    tmp_path: Path,
) -> None:
    backend = FakeBackend()
    app = make_app(backend, ha_plan(), start_at="review")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await run_ha(pilot, "")  # Enter: keep the key the registry hosts have
        text = screen_text(pilot)
        assert "✓ Your registry reg.example.test works" in text
        for name, nxt in (("node1", "node3"), ("node3", "10.0.0.4"), ("10.0.0.4", "node1")):
            assert f"✓ registry host {name}: upload started here finished on {nxt}" in text
        await pilot.click("#save-report")
        await pilot.pause()
        await enter_value(pilot, "#path", str(tmp_path / "report.md"))
        await pilot.press("enter")
        await settle(pilot)
    plan, secrets = backend.run_calls[0]
    assert secrets.s3_secret_key == "" and secrets.sudo_passwords == {"10.0.0.4": "Sudo-pw-replica"}
    assert [c.address for c in plan.replicas] == ["10.0.0.3", "10.0.0.4"]
    report = (tmp_path / "report.md").read_text()
    assert "registry host node3: upload started here finished on 10.0.0.4" in report
    assert "| Replica 2 | ops@10.0.0.4 (ssh-agent, sudo) |" in report


async def test_a_failed_replica_is_named_and_the_s3_key_typed_is_used(tmp_path: Path) -> None:
    backend = FakeBackend(failing_replicas={"node3"})
    app = make_app(backend, ha_plan(), start_at="review")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await run_ha(pilot, S3_SECRET)
        text = screen_text(pilot)
        assert "✗ reg.example.test is not proven to work" in text
        assert f"✗ registry host node3: {REPLICA_FAILURE}"[:60] in text
        assert "✓ registry host node1" in text and S3_SECRET not in text
    assert backend.run_calls[0][1].s3_secret_key == S3_SECRET
