"""regwizard.report: pure text for the review screen and the saved report."""

from __future__ import annotations

from regwizard.events import RunResult, StepFailed, StepRecord, Verification
from regwizard.plan import CertificateSpec, Connection, Plan, RegistrySpec, User
from regwizard.report import (
    certificate_sans,
    certificate_subject,
    connection_summary,
    format_bytes,
    format_seconds,
    markdown_report,
    next_steps,
    plan_summary,
    short_digest,
    verification_lines,
)

HASH = "$2b$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"


def plan() -> Plan:
    return Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2", port=5000),
        host=Connection(address="10.0.0.2", user="admin", sudo=True, label="node1"),
        clients=[Connection(), Connection(address="10.0.0.3", auth="password")],
        certificate=CertificateSpec(
            country="CN", state="Beijing", organization="ACME", extra_sans=["10.0.0.20", "reg.lan"]
        ),
        users=[User("alice", HASH), User("bob", HASH)],
    )


def test_subject_and_sans():
    p = plan()
    assert certificate_subject(p) == "C=CN, ST=Beijing, O=ACME, CN=reg.example.test"
    p.certificate.common_name = "registry"
    p.certificate.email = "ops@example.test"
    assert certificate_subject(p).endswith("CN=registry, emailAddress=ops@example.test")
    assert certificate_sans(p) == "DNS:reg.example.test, IP:10.0.0.2, IP:10.0.0.20, DNS:reg.lan"


def test_connection_summary_never_shows_passwords():
    assert connection_summary(Connection()) == "this machine (local)"
    text = connection_summary(
        Connection(address="h", port=2222, user="u", auth="password", sudo=True)
    )
    assert text == "u@h:2222 (password, sudo)"


def test_summary_lists_users_by_name_only():
    rows = dict(plan_summary(plan()))
    assert rows["Users"] == "alice, bob"
    assert rows["Registry address"] == "reg.example.test:5000"
    assert HASH not in repr(plan_summary(plan()))


def test_formatting():
    assert format_bytes(None) == "unknown"
    assert format_bytes(512) == "512 B"
    assert format_bytes(42 * 1024**3) == "42.0 GiB"
    assert format_seconds(4.25) == "4.2 s"
    assert format_seconds(125) == "2 min 05 s"
    assert short_digest("sha256:" + "a" * 64) == "sha256:aaaaaaaaaaaa…"


def test_verification_lines_and_next_steps():
    v = Verification(
        user="alice",
        login_ok=True,
        anonymous_refused=True,
        push_digest="sha256:" + "1" * 64,
        pull_digest="sha256:" + "2" * 64,
        trust={"node2": False},
    )
    lines = verification_lines(v)
    assert lines[0] == (True, "login as alice")
    assert lines[3][0] is False and "digest differs" in lines[3][1]
    assert lines[-1] == (False, "trust on node2: pull failed")
    assert next_steps(plan())[0] == "docker login reg.example.test:5000"


def test_markdown_report_failure_and_success():
    p = plan()
    failed = RunResult(
        ok=False,
        steps=[StepRecord("certificate", "node1", "TLS certificate", "failed", 1.0, "a|b")],
        failure=StepFailed("certificate", "node1", "openssl failed", "install openssl", "trace"),
        seconds=3.0,
    )
    text = markdown_report(p, failed)
    assert "**Status:** FAILED" in text
    assert "- **fix:** install openssl" in text
    assert "a\\|b" in text
    assert HASH not in text
    ok = RunResult(
        ok=True,
        verification=Verification(
            user="alice",
            login_ok=True,
            anonymous_refused=True,
            push_digest="sha256:" + "3" * 64,
            pull_digest="sha256:" + "3" * 64,
            catalog=["regwizard/hello"],
            trust={"this machine": True},
        ),
        seconds=42.0,
    )
    text = markdown_report(p, ok)
    assert "**Status:** verified" in text
    assert "- [x] pull: sha256:" + "3" * 64 + " (same digest)" in text
    assert markdown_report(p, None).count("not run") == 1
