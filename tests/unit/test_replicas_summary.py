"""The plan summary (Review, the report) and the verification lines with [[replicas]]:
a row per replica and the shared storage; one-host plans read exactly as before."""

from __future__ import annotations

from regwizard.events import Proof, RunResult, Verification
from regwizard.report import markdown_report, plan_summary, verification_lines
from tests.unit.sandbox import loopback_plan
from tests.unit.test_replicas_cli import ha_plan


def test_one_host_rows_are_unchanged() -> None:
    rows = dict(plan_summary(loopback_plan()))
    assert rows["Storage"] == "/opt/docker-image"
    assert rows["/etc/hosts"] == "managed on the registry host and every client"
    assert not any(k.startswith("Replica") for k in rows)


def test_ha_rows_name_each_replica_and_the_storage() -> None:
    rows = plan_summary(ha_plan())
    keys = [k for k, _ in rows]
    assert keys[:3] == ["Registry host", "Replica 1", "Replica 2"]
    d = dict(rows)
    assert d["Replica 1"] == "root@10.0.0.3 (key ~/.ssh/id_ed25519)"
    assert d["Storage"].startswith("s3: bucket registry at http://10.0.0.9:8333")
    assert d["/etc/hosts"].endswith("reg.example.test -> 10.0.0.2, 10.0.0.3, 10.0.0.4")


def test_a_line_per_registry_host_also_for_a_mirror() -> None:
    reps = [
        Proof("node1", "registry", True, "same catalog"),
        Proof("10.0.0.3", "registry", False, "HTTP 503"),
    ]
    v = Verification(login_ok=True, anonymous_refused=True, replicas=reps)
    for mirror in ("", "https://registry-1.docker.io"):
        v.mirror_of = mirror
        lines = verification_lines(v)
        assert (True, "registry host node1: same catalog") in lines
        assert (False, "registry host 10.0.0.3: HTTP 503") in lines


def test_the_report_has_the_replicas_and_no_secret() -> None:
    plan = ha_plan()
    v = Verification(replicas=[Proof("10.0.0.3", "registry", True, "manifest sha256:ab")])
    text = markdown_report(plan, RunResult(ok=True, verification=v))
    assert "| Replica 2 | root@10.0.0.4 (key ~/.ssh/id_ed25519) |" in text
    assert "registry host 10.0.0.3: manifest sha256:ab" in text
    assert "secret" not in text.lower()
