"""Limits on plan values: certificate lifetime vs renewal, bcrypt cost, image references,
and names that reach a certificate. Each limit is enforced where the value enters."""

from __future__ import annotations

import datetime as dt
import io
import re

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard import htpasswd, pki, problems
from regwizard import plan as P
from regwizard.errors import PlanError, RegwizardError
from regwizard.plan import (
    MAX_DAYS,
    CertificateSpec,
    Plan,
    RegistrySpec,
    User,
    check_bcrypt,
    check_image,
    dump_plan,
    parse_plan,
    split_image,
    validate_plan,
)

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


# ------------------------------------------------------------------ bcrypt cost (item 5)


def _hash_of_cost(cost: int) -> str:
    """A well-formed bcrypt string of any cost (no real hashing: cost 31 takes hours)."""
    return f"$2b${cost:02d}$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"


@pytest.mark.parametrize("cost", [4, 5, 10, 12, htpasswd.MAX_COST])
def test_plans_accept_bcrypt_costs_up_to_the_bound(valid_plan, cost: int) -> None:
    valid_plan.users[0].bcrypt = _hash_of_cost(cost)
    assert check_bcrypt(_hash_of_cost(cost)) is None
    assert validate_plan(valid_plan) == []


@pytest.mark.parametrize("cost", [htpasswd.MAX_COST + 1, 20, 31])
def test_plans_refuse_bcrypt_costs_above_the_bound(valid_plan, cost: int) -> None:
    """The registry checks the hash on every request: the message says the bound, why
    (the CPU per request at that cost, from cost_words) and the fix (user hash NAME)."""
    valid_plan.users[1].bcrypt = _hash_of_cost(cost)
    (err,) = validate_plan(valid_plan)
    assert err.field == "users[1].bcrypt"
    assert f"cost {cost}" in err.message and f"limit of {htpasswd.MAX_COST}" in err.message
    assert "every request" in err.message and htpasswd.cost_words(cost) in err.message
    assert "`regwizard user hash bob`" in err.fix and "default cost 10" in err.fix
    with pytest.raises(PlanError, match="above the limit"):
        parse_plan(dump_plan(valid_plan))


def test_merge_refuses_a_costly_hash_too() -> None:
    user = User("alice", _hash_of_cost(htpasswd.MAX_COST + 1))
    with pytest.raises(RegwizardError, match="cost 15"):
        htpasswd.merge("", [user])


@pytest.mark.parametrize("rounds", [htpasswd.MIN_COST - 1, htpasswd.MAX_COST + 1, 31, True, "10"])
def test_hash_password_refuses_costs_outside_the_bounds(rounds: object) -> None:
    with pytest.raises(RegwizardError) as e:
        htpasswd.hash_password("a-long-password", rounds)  # type: ignore[arg-type]
    assert isinstance(e.value, ValueError)  # a bad argument, as before
    assert f"{htpasswd.MIN_COST} to {htpasswd.MAX_COST}" in e.value.fix


def test_hash_password_takes_the_lowest_cost() -> None:
    h = htpasswd.hash_password("a-long-password", htpasswd.MIN_COST)
    assert htpasswd.cost_of(h) == htpasswd.MIN_COST and check_bcrypt(h) is None


def _user_hash(monkeypatch, capsys, *argv: str, stdin: str = "a-long-password\n"):
    from regwizard import cli

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = cli.main(["user", "hash", "alice", *argv])
    return rc, capsys.readouterr()


@pytest.mark.parametrize("cost", range(htpasswd.MIN_COST, htpasswd.MAX_COST + 1))
def test_user_hash_accepts_exactly_min_to_max_cost(monkeypatch, capsys, cost: int) -> None:
    if cost > 12:  # real hashing: 13 and 14 take 0.5-1 s each; their bounds are tested
        monkeypatch.setattr(
            bcrypt, "gensalt", lambda rounds: f"$2b${rounds:02d}$".encode() + b"a" * 22
        )
        monkeypatch.setattr(bcrypt, "hashpw", lambda pw, salt: salt + b"b" * 31)
    rc, out = _user_hash(monkeypatch, capsys, "--cost", str(cost))
    assert rc == 0, out.err
    line = next(x for x in out.out.splitlines() if x.startswith("bcrypt = "))
    assert htpasswd.cost_of(line.split('"')[1]) == cost


@pytest.mark.parametrize("cost", ["3", "15", "31", "-1", "x", "1e3", "", "٣"])
def test_user_hash_refuses_other_costs_in_one_line(monkeypatch, capsys, cost: str) -> None:
    rc, out = _user_hash(monkeypatch, capsys, "--cost", cost)
    assert rc == 2 and out.out == ""
    assert_one_message(out.err, "--cost", f"from {htpasswd.MIN_COST} to {htpasswd.MAX_COST}")


def test_user_hash_help_states_the_true_range(capsys) -> None:
    from regwizard.cli.parser import parser

    with pytest.raises(SystemExit) as e:
        parser().parse_args(["user", "hash", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"--cost {htpasswd.MIN_COST}..{htpasswd.MAX_COST}" in text
    assert f"default {htpasswd.DEFAULT_COST}" in text
    assert f"{htpasswd.MAX_COST}: {htpasswd.cost_words(htpasswd.MAX_COST)}" in text
    assert f"5, as htpasswd -B: {htpasswd.cost_words(5)}" in text


def test_user_hash_default_cost_is_10(monkeypatch, capsys) -> None:
    rc, out = _user_hash(monkeypatch, capsys)
    assert rc == 0 and "$2b$10$" in out.out


# ------------------------------------------------------------------ shared helpers


def assert_one_message(err: str, *words: str) -> None:
    """The rule for bad input: `regwizard: CAUSE` then `  fix: FIX`, nothing else."""
    lines = err.rstrip("\n").split("\n")
    assert len(lines) == 2, err
    assert lines[0].startswith("regwizard: ") and lines[1].startswith("  fix: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


# ------------------------------------------------------------------ image references (item 8)

HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_seps = st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "---"]), _alnum), max_size=3)
_path = st.tuples(_alnum, _seps).map(lambda t: t[0] + "".join(a + b for a, b in t[1]))
_label = st.from_regex(re.compile(P._DOM_COMP, re.ASCII), fullmatch=True).filter(
    lambda s: len(s) <= 20
)
_port = st.integers(1, 65535).map(str)
_host = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
_domain = st.tuples(_host, st.none() | _port).map(lambda t: t[0] + (f":{t[1]}" if t[1] else ""))
_name = st.tuples(st.none() | _domain, st.lists(_path, min_size=1, max_size=3)).map(
    lambda t: (f"{t[0]}/" if t[0] else "") + "/".join(t[1])
)
_tag = st.from_regex(re.compile(P._TAG, re.ASCII), fullmatch=True)
_digest = st.tuples(st.sampled_from(sorted(P.DIGEST_HEX)), st.randoms(use_true_random=False)).map(
    lambda t: (
        f"{t[0]}:" + "".join(t[1].choice("0123456789abcdef") for _ in range(P.DIGEST_HEX[t[0]]))
    )
)


def _join(name: str, tag: str, digest: str) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_name, tag=st.none() | _tag, digest=st.none() | _digest)
def test_split_image_returns_the_parts_a_reference_was_made_of(name, tag, digest) -> None:
    """Built from the grammar's parts: check_image accepts it, and split_image gives back
    exactly those parts (a missing tag is "latest" only when no digest pins the image).
    A host's port (`host:5000/reg`) is never a tag; a digest is kept whole."""
    ref = _join(name, tag or "", digest or "")
    if len(name) > 255 or len(ref) > 512:
        return
    assert check_image(ref) is None, (ref, check_image(ref))
    want_tag = tag or ("" if digest else "latest")
    assert split_image(ref) == (name, want_tag, digest or "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ref=st.from_regex(P._REF_RE, fullmatch=True))
def test_every_accepted_reference_splits_and_joins_back(ref: str) -> None:
    """Any text the reference grammar matches and check_image accepts: its parts join
    back to it (modulo the default tag), each part matches its own grammar."""
    if check_image(ref) is not None:
        return
    name, tag, digest = split_image(ref)
    joined = _join(name, tag, digest)
    assert joined == ref or (joined == ref + ":latest" and not digest and ":latest" not in ref)
    assert P._NAME_RE.fullmatch(name), name
    assert tag == "" or re.fullmatch(P._TAG, tag, re.ASCII), tag
    assert digest == "" or re.fullmatch(P._DIGEST, digest, re.ASCII), digest
    assert "@" not in name + tag and "/" not in tag


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("registry:2", ("registry", "2", "")),
        ("registry", ("registry", "latest", "")),
        ("host:5000/reg", ("host:5000/reg", "latest", "")),
        ("host:5000/reg:2.8", ("host:5000/reg", "2.8", "")),
        ("[fd00::1]:5000/team/reg", ("[fd00::1]:5000/team/reg", "latest", "")),
        ("registry:2@sha256:" + "a" * 64, ("registry", "2", "sha256:" + "a" * 64)),
        ("registry@sha256:" + "b" * 64, ("registry", "", "sha256:" + "b" * 64)),
        ("h:5000/r@sha256:" + "c" * 64, ("h:5000/r", "", "sha256:" + "c" * 64)),
    ],
)
def test_split_image_examples(ref: str, parts: tuple[str, str, str]) -> None:
    assert check_image(ref) is None
    assert split_image(ref) == parts


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("registry@sha256:" + "a" * 63, "64 lowercase hex"),
        ("registry@sha256:" + "A" * 64, "64 lowercase hex"),
        ("registry:2@sha256:" + "a" * 65, "64 lowercase hex"),
        ("registry@md5:" + "a" * 32, "use sha256"),
        ("registry@sha256", "not an image reference"),
        ("registry:2@", "not an image reference"),
    ],
)
def test_check_image_refuses_digests_docker_would_refuse(ref: str, words: str) -> None:
    assert words in (check_image(ref) or "")
