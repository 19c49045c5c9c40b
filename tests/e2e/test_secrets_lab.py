"""Secrets audit on the real lab: a known password must surface nowhere.

A marker password is the verify user's password (its bcrypt is in the plan). After real
runs we look for it in: every emitted event (str and repr), the saved plan, the Markdown
report, ``result_json``, ``regwizard apply --json`` stdout+stderr, Textual screenshots
of the Run and Results screens, the process lists of node0 and node1 sampled while the
run goes on, the tenant's files and container on node1, and Docker's config.json.
A second run logs in by SSH password and sudo as the lab user: that password must not
show in node1's process list or in the events either.

Runs in its own tenant on the shared lab (see stress_tenant.py).
"""

from __future__ import annotations

import base64
import copy
import json

import pytest

from regwizard import lab as labmod
from regwizard.app import RegwizardApp
from regwizard.backend import EngineBackend
from regwizard.cli.apply import result_json
from regwizard.plan import Secrets, save_plan
from regwizard.report import markdown_report

from .stress_tenant import (
    USER,
    PsSampler,
    Tenant,
    converge,
    record_backups,
    remove_hosts_lines,
    run_cli,
)

pytestmark = pytest.mark.lab

MARKER = "Marker-Pw-9f3a7c"
PORT = 5600


def _needles(*passwords: str, user: str = USER) -> list[str]:
    """The password, and the forms it would take inside a Basic auth header / config.json."""
    out = []
    for pw in passwords:
        out += [pw, base64.b64encode(f"{user}:{pw}".encode()).decode()]
    return out


def assert_absent(where: str, text: str, needles: list[str]) -> None:
    for n in needles:
        assert n not in text, f"secret {n[:4]}… found in {where}"


@pytest.fixture(scope="module")
def tenant(lab):
    t = Tenant(lab, "sec", PORT)
    t.cleanup()
    yield t
    t.cleanup()
    remove_hosts_lines()


@pytest.fixture(scope="module")
def first_run(tenant):
    """A full run from nothing, with ps sampled on node0, node1 and node2."""
    plan = tenant.plan(password=MARKER)
    events = []
    with PsSampler(tenant.lab, nodes=("node1", "node2")) as ps:
        result = converge(plan, Secrets(verify_password=MARKER), emit=events.append)
    assert result.ok, result.failure
    return plan, result, events, ps


def test_marker_absent_from_events_plan_report_json(first_run, tmp_path):
    plan, result, events, _ = first_run
    needles = _needles(MARKER)
    assert len(events) > 30
    for ev in events:
        assert_absent(f"event {type(ev).__name__}", str(ev) + repr(ev), needles)
    save_plan(plan, tmp_path / "plan.toml")
    saved = (tmp_path / "plan.toml").read_text()
    assert plan.users[0].bcrypt in saved  # the hash is there, never the password
    assert_absent("the saved plan", saved, needles)
    report = markdown_report(plan, result)
    assert "verified" in report
    assert_absent("the Markdown report", report, needles)
    assert_absent("result_json", json.dumps(result_json(result)), needles)


def test_marker_absent_from_process_lists(first_run):
    _, _, _, ps = first_run
    needles = _needles(MARKER)
    for where in ("node0", "node1", "node2"):
        assert len(ps.samples[where]) >= 3, f"too few ps samples on {where}"
        assert_absent(f"ps on {where}", ps.text(where), needles)
    # the sampling overlapped the run: regwizard's own remote commands were seen
    assert "docker system dial-stdio" in ps.text("node1")


def test_marker_absent_from_node1_files_container_and_docker_config(tenant, first_run):
    needles = _needles(MARKER)
    found = tenant.sh(
        f"grep -rlF -e {MARKER} -e {needles[1]} {tenant.config_dir} {tenant.storage} "
        "/root/.docker 2>/dev/null; true"
    )
    assert found == ""
    inspect = tenant.sh(f"docker inspect {tenant.container}")
    assert_absent("docker inspect on node1", inspect, needles)
    htpasswd = tenant.sh(f"cat {tenant.config_dir}/auth/htpasswd")
    assert htpasswd.startswith(f"{USER}:$2")
    for path in ("/root/.docker/config.json",):
        try:
            with open(path) as fh:
                assert_absent(f"node0 {path}", fh.read(), needles)
        except FileNotFoundError:
            pass


def test_cli_apply_json_and_process_lists(tenant, first_run, tmp_path):
    plan, _, _, _ = first_run
    plan_file = tmp_path / "plan.toml"
    save_plan(plan, plan_file)
    pw = tmp_path / "pw"
    pw.write_text(MARKER + "\n")
    pw.chmod(0o600)
    tenant.sh(f"docker rm -f {tenant.container} >/dev/null")  # make the run change something
    with PsSampler(tenant.lab) as ps:
        cp = run_cli(["apply", str(plan_file), "--password-file", str(pw), "--json"])
        if cp.returncode and "does not resolve" in cp.stderr:  # see converge()
            cp = run_cli(["apply", str(plan_file), "--password-file", str(pw), "--json"])
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["ok"] and "container@node1" in out["changed"]
    needles = _needles(MARKER)
    assert_absent("apply --json stdout", cp.stdout, needles)
    assert_absent("apply stderr", cp.stderr, needles)
    assert_absent("ps on node0 (CLI run)", ps.text("node0"), needles)
    assert_absent("ps on node1 (CLI run)", ps.text("node1"), needles)
    assert "--password-file" in ps.text("node0")  # we did see the CLI's own command line


class SpyBackend(EngineBackend):
    """The real engine; every event the UI receives is also kept for the audit."""

    def __init__(self) -> None:
        self.events: list = []

    def run(self, plan, secrets, *, emit, cancel, dry_run=False):
        def both(ev):
            self.events.append(ev)
            emit(ev)

        return super().run(plan, secrets, emit=both, cancel=cancel, dry_run=dry_run)


async def test_textual_run_and_results_screens(tenant, first_run):
    plan, _, _, _ = first_run
    # a real change in this run too: the certificate is reissued, trust rewritten
    tenant.sh(f"rm -f {tenant.config_dir}/certs/current/stress.lab.test.crt")
    backend = SpyBackend()
    app = RegwizardApp(
        backend=backend,
        plan=plan,
        start_at="review",
        secrets=Secrets(verify_password=MARKER),
        cursor_blink=False,
    )
    shots: dict[str, str] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shots["review"] = app.export_screenshot()
        await pilot.click("#next")
        for _ in range(600):  # a few seconds of real work
            await pilot.pause(0.1)
            if app.state.result is not None:
                break
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = app.state.result
        assert result is not None and result.ok, result and result.failure
        assert any(s.step == "certificate" for s in result.changed)
        shots["run"] = app.export_screenshot()
        await pilot.click("#results")
        await pilot.pause()
        await pilot.pause()
        assert type(app.screen).__name__ == "ResultsScreen"
        shots["results"] = app.export_screenshot()
    needles = _needles(MARKER)
    assert result.verification.push_digest[7:19] in shots["results"]
    for name, svg in shots.items():
        assert_absent(f"the {name} screenshot", svg, needles)
    assert backend.events
    record_backups(backend.events)
    for ev in backend.events:
        assert_absent(f"UI event {type(ev).__name__}", str(ev) + repr(ev), needles)
    assert_absent("the UI's report", markdown_report(plan, result), needles)


def test_password_login_and_sudo_as_lab_user(tenant, first_run):
    """SSH password + sudo password (the lab user's) never reach a process list or event."""
    plan = copy.deepcopy(first_run[0])
    lab = tenant.lab
    node1 = tenant.node1
    user_pw = lab.user_password
    plan.host.user = labmod.LAB_USER
    plan.host.auth = "password"
    plan.host.sudo = True
    plan.validate()
    # root-owned writes through sudo in this run: htpasswd and the container
    tenant.sh(
        f"rm -f {tenant.config_dir}/auth/htpasswd; docker rm -f {tenant.container} >/dev/null"
    )
    secrets = Secrets(
        ssh_passwords={node1.ip: user_pw},
        sudo_passwords={node1.ip: user_pw},
        verify_password=MARKER,
    )
    events = []
    with PsSampler(lab, interval=0.02) as ps:
        result = converge(plan, secrets, emit=events.append)
    assert result.ok, result.failure
    changed = {s.step for s in result.changed}
    assert {"htpasswd", "container"} <= changed
    needles = [user_pw, *_needles(MARKER)]
    node1_ps = ps.text("node1")
    assert "sudo -k -S -p" in node1_ps  # commands did go through sudo while we sampled
    assert_absent("ps on node1 (sudo run)", node1_ps, needles)
    assert_absent("ps on node0 (sudo run)", ps.text("node0"), needles)
    for ev in events:
        assert_absent(f"event {type(ev).__name__}", str(ev) + repr(ev), needles)
    assert_absent("result_json", json.dumps(result_json(result)), needles)
    assert_absent("the Markdown report", markdown_report(plan, result), needles)
    # files written through sudo are root's, with the planned modes
    modes = tenant.sh(f"stat -c '%U %a' {tenant.config_dir}/auth/htpasswd")
    assert modes.split() == ["root", "600"]
