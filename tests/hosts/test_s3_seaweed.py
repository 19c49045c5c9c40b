"""facts/s3.bucket_status against a real SeaweedFS on 127.0.0.1 (seaweedlab.py)."""

from __future__ import annotations

import socket

from regwizard import lab_ha, problems


def test_the_bucket_answers(seaweed) -> None:
    got = seaweed.status()
    assert got.kind == "ok" and got.status == 200, got
    assert problems.bucket(got, seaweed.access_key) == []


def test_a_bucket_nobody_made(seaweed) -> None:
    got = seaweed.status(bucket="no-such-bucket-here")
    assert got.kind == "no-such-bucket", got
    assert [p.id for p in problems.bucket(got)] == ["s3-bucket-missing"]


def test_a_wrong_secret_is_access_denied_and_never_shown(seaweed) -> None:
    wrong = "not-the-secret-" + "x" * 20
    got = seaweed.status(secret_key=wrong)
    assert got.kind == "access-denied", got
    assert wrong not in got.evidence and seaweed.secret not in got.evidence
    assert [p.id for p in problems.bucket(got, seaweed.access_key)] == ["s3-access-denied"]


def test_an_unknown_access_key_is_access_denied(seaweed) -> None:
    got = seaweed.status(access_key="nobody")
    assert got.kind == "access-denied", got
    assert seaweed.secret not in got.evidence


def test_nothing_on_the_port_is_unreachable(seaweed) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = seaweed.status(endpoint=f"http://127.0.0.1:{port}")
    assert got.kind == "unreachable", got
    assert [p.id for p in problems.bucket(got)] == ["s3-unreachable"]


def test_making_the_bucket_again_changes_nothing(seaweed) -> None:
    assert (
        lab_ha.ensure_bucket(seaweed.weed, seaweed.master, seaweed.filer, seaweed.bucket) is False
    )
    assert seaweed.status().ok
