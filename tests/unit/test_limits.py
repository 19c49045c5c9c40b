"""Limits on plan values: certificate lifetime vs renewal, bcrypt cost, image references,
and names that reach a certificate. Each limit is enforced where the value enters."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard import pki, problems
from regwizard.errors import PlanError
from regwizard.plan import MAX_DAYS, CertificateSpec, Plan, RegistrySpec

DOMAIN = "reg.example.test"
IP = "10.0.0.2"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def key() -> pki.PrivateKey:
    return pki.generate_key("ecdsa-p256")  # one key for every example: keygen is not tested


# ------------------------------------------------------------------ days vs renewal (item 4)


def test_renew_days_is_thirty_or_a_third_of_the_lifetime() -> None:
    assert pki.renew_days(825) == 30
    assert pki.renew_days(90) == 30
    assert pki.renew_days(89) == 29
    assert pki.renew_days(30) == 10
    assert pki.renew_days(3) == 1
    assert pki.renew_days(2) == pki.renew_days(1) == 0
    assert pki.cert_problems.__kwdefaults__["min_days"] == pki.RENEW_DAYS


@SETTINGS
@given(days=st.integers(1, MAX_DAYS), late=st.integers(0, 3600))
def test_a_freshly_issued_certificate_always_verifies(key, days: int, late: int) -> None:
    """For every accepted lifetime, a certificate just made for the plan needs no renewal:
    neither at the moment it is made nor an hour later (`late` seconds), so a rerun keeps
    it (days 1..30 used to be renewed on every run: renewal wanted 30 days left)."""
    spec = CertificateSpec(key="ecdsa-p256", days=days)
    _, cert = pki.make_server_cert(spec, DOMAIN, IP, key=key, now=NOW)
    at = NOW + dt.timedelta(seconds=late)
    info = pki.inspect_cert(pki.cert_to_pem(cert), now=at)
    assert (
        pki.cert_problems(info, domain=DOMAIN, ip=IP, min_days=pki.renew_days(days), now=at) == []
    )


@SETTINGS
@given(days=st.integers(1, MAX_DAYS))
def test_a_fresh_certificate_made_now_verifies_through_the_plan_checks(key, days: int) -> None:
    """problems.certificate (what apply's certificate step and doctor decide with) reads
    the real clock: a certificate issued a moment ago with the plan's days is kept."""
    spec = CertificateSpec(key="ecdsa-p256", days=days)
    _, cert = pki.make_server_cert(spec, DOMAIN, IP, key=key)
    info = pki.inspect_cert(pki.cert_to_pem(cert))
    plan = Plan(registry=RegistrySpec(domain=DOMAIN, ip=IP), certificate=spec)
    assert [p.message for p in problems.certificate(info, plan, "")] == []


@pytest.mark.parametrize("days", [1, 2, 3, 10, 30, 89, 90, 825, MAX_DAYS])
def test_renewal_still_comes_when_due(key, days: int) -> None:
    """The threshold is not 0 for real lifetimes: past it, a renewal is asked for."""
    spec = CertificateSpec(key="ecdsa-p256", days=days)
    _, cert = pki.make_server_cert(spec, DOMAIN, key=key, now=NOW)
    due = NOW + dt.timedelta(days=days - pki.renew_days(days), seconds=1)
    info = pki.inspect_cert(pki.cert_to_pem(cert), now=due)
    (msg,) = pki.cert_problems(info, domain=DOMAIN, min_days=pki.renew_days(days), now=due)
    assert ("renew it now" in msg) if pki.renew_days(days) else ("expired" in msg)


def test_check_days_and_the_example_plan_state_the_rule() -> None:
    from regwizard import plan as P

    assert "min(30, days // 3)" in (P.check_days.__doc__ or "")
    line = next(x for x in P.EXAMPLE_PLAN.splitlines() if x.startswith("days ="))
    nxt = P.EXAMPLE_PLAN.splitlines()[P.EXAMPLE_PLAN.splitlines().index(line) + 1]
    assert "renewed when fewer than" in line and "min(30, days / 3)" in nxt


# ------------------------------------------------------------------ names into a certificate


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("a" * 64 + ".example.test", "longer than 63"),
        (("a" * 63 + ".") * 4 + "test", "at most 253"),
        ("bücher.example.test", "punycode"),
        ("a b.test", "may only use"),
        ("a\0b.test", "may only use"),
        ("", "required"),
    ],
)
def test_a_bad_domain_never_reaches_a_certificate(key, domain: str, words: str) -> None:
    """cryptography writes a 64-character label or a 300-character name into a DNS SAN
    without complaint, and raises ValueError for non-ASCII: pki refuses both as PlanError."""
    with pytest.raises(PlanError) as e:
        pki.make_server_cert(CertificateSpec(key="ecdsa-p256"), domain, key=key)
    assert e.value.field == "registry.domain" and words in str(e.value)
    with pytest.raises(PlanError):
        pki.make_ca(CertificateSpec(key="ecdsa-p256"), domain=domain or "-bad")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ip": "fe80::1%eth0"}, "registry.ip"),
        ({"ip": "0.0.0.0"}, "registry.ip"),
        ({"extra_sans": ["ok.test", "x" * 64]}, "certificate.extra_sans[1]"),
        ({"days": 0}, "certificate.days"),
        ({"days": 10**9}, "certificate.days"),
    ],
)
def test_other_bad_certificate_inputs_are_plan_errors(key, kwargs: dict, field: str) -> None:
    with pytest.raises(PlanError) as e:
        pki.make_server_cert(CertificateSpec(key="ecdsa-p256"), DOMAIN, key=key, **kwargs)
    assert e.value.field == field


@pytest.mark.parametrize(
    "subject",
    [{"state": "x" * 300}, {"email": "é@x.test"}, {"organization": "\ud800"}, {"country": "C"}],
)
def test_bad_subject_fields_are_plan_errors(key, subject: dict) -> None:
    """A lone surrogate used to raise UnicodeEncodeError from deep inside cryptography."""
    spec = CertificateSpec(key="ecdsa-p256", **subject)
    (name,) = subject
    for make in (
        lambda: pki.make_server_cert(spec, DOMAIN, key=key),
        lambda: pki.make_ca(spec),
    ):
        with pytest.raises(PlanError) as e:
            make()
        assert e.value.field == f"certificate.{name}"


def test_wildcards_and_ips_still_go_in(key) -> None:
    _, cert = pki.make_server_cert(
        CertificateSpec(key="ecdsa-p256"), "*.example.test", "fd00::2", ["10.0.0.9", "a.test"]
    )
    info = pki.inspect_cert(pki.cert_to_pem(cert))
    assert info.dns_sans == ["*.example.test", "a.test"]
    assert info.ip_sans == ["fd00::2", "10.0.0.9"]
