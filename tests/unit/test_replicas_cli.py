"""An HA plan ([storage] + [[replicas]]) in `plan check` and `apply --dry-run`: every
registry host is listed, a replica's ~/.ssh/config route is shown like the host's, and
its SSH password is read like every other host's. Offline (the CLI sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regwizard.cli.common import ha_lines, read_connection_secrets, ssh_routes
from regwizard.plan import Connection, Secrets, StorageSpec, dump_plan
from tests.unit.sandbox import Sandbox, loopback_plan

# an IP as the alias: with manage_hosts_file a replica must be written as its IP
SSH_CONFIG = "Host 10.0.0.4\n  User deploy\n  Port 2222\n"


@pytest.fixture
def box(tmp_path: Path):  # noqa: ANN201
    with Sandbox(tmp_path) as b:
        yield b


def ha_plan():  # noqa: ANN201
    plan = loopback_plan()
    plan.registry.ip = "10.0.0.2"
    plan.host = Connection(address="10.0.0.2", label="node1")
    plan.storage = StorageSpec(
        driver="s3",
        endpoint="http://10.0.0.9:8333",
        bucket="registry",
        access_key="regwizard",
    )
    plan.replicas = [Connection(address="10.0.0.3"), Connection(address="10.0.0.4")]
    return plan


def _write(box: Sandbox, plan) -> str:  # noqa: ANN001
    (box.root / "plan.toml").write_text(dump_plan(plan))
    ssh = box.root / "home" / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    (ssh / "config").write_text(SSH_CONFIG)
    return "plan.toml"


HOSTS = "registry hosts: node1 = 10.0.0.2 (primary), 10.0.0.3 (replica), 10.0.0.4 (replica)"
STORAGE = (
    "storage: s3: bucket registry at http://10.0.0.9:8333 (region us-east-1, access key "
    "regwizard), shared by every registry host"
)
ROUTE = "ssh: 10.0.0.4 (→ deploy@10.0.0.4:2222 via ~/.ssh/config)"


def test_plan_check_lists_every_registry_host_and_a_replicas_route(box: Sandbox) -> None:
    o = box.run(["plan", "check", _write(box, ha_plan())])
    assert o.rc == 0, o.err
    assert "2 replica(s), 1 client(s)" in o.out
    assert f"  {HOSTS}\n" in o.out and f"  {STORAGE}\n" in o.out
    assert f"  {ROUTE}\n" in o.out
    assert o.calls == []  # nothing contacted


def test_dry_run_lists_every_registry_host_and_a_replicas_route(box: Sandbox) -> None:
    o = box.run(["apply", _write(box, ha_plan()), "--dry-run"])
    assert o.rc == 0, o.err
    assert HOSTS in o.err and STORAGE in o.err and ROUTE in o.err
    head = o.err.splitlines()
    assert head.index(HOSTS) < head.index(ROUTE)  # before the run's own lines


def test_one_host_plan_prints_as_before(box: Sandbox) -> None:
    plan = loopback_plan()
    (box.root / "plan.toml").write_text(dump_plan(plan))
    o = box.run(["plan", "check", "plan.toml"])
    assert o.rc == 0 and "replica" not in o.out and "registry hosts" not in o.out
    o = box.run(["apply", "plan.toml", "--dry-run"])
    assert "registry hosts" not in o.err and "storage:" not in o.err
    assert ha_lines(plan) == []


def test_filesystem_replicas_say_each_keeps_its_own_disk() -> None:
    plan = ha_plan()
    plan.storage = StorageSpec()
    assert (
        ha_lines(plan)[1] == "storage: filesystem: /opt/docker-image on every registry host's disk"
    )


def test_ssh_routes_include_replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(SSH_CONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ssh_routes(ha_plan()) == [ROUTE.removeprefix("ssh: ")]


def test_a_replicas_ssh_and_sudo_passwords_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REGWIZARD_SSH_PASSWORD", "ssh-pw-for-all")
    plan = ha_plan()
    plan.replicas[0].auth = "password"
    plan.replicas[0].user = "ops"
    plan.replicas[0].sudo = True
    secrets = Secrets()
    read_connection_secrets(plan, secrets)
    assert secrets.ssh_passwords == {"10.0.0.3": "ssh-pw-for-all"}
    assert secrets.sudo_passwords == {"10.0.0.3": "ssh-pw-for-all"}
