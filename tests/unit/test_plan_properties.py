"""Property tests: hostile plan values and arbitrary input never crash the loader."""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import fields

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard import plan as P
from regwizard.errors import PlanError
from regwizard.plan import (
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    User,
    dump_plan,
    parse_plan,
    validate_plan,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HASH = "$2b$04$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"

NASTY = [
    "",
    " ",
    "; rm -rf / #",
    "$(reboot)",
    "`id`",
    "a && b || c | d > /etc/passwd",
    "'\"\\",
    "../../etc/shadow",
    "/opt/../../etc",
    "/opt/docker-image/../..",
    "a\nb",
    "a\r\nb",
    "nul\x00byte",
    "\x1b[31mred\x1b[0m",
    "\u202eevil",
    "\u2028sep",
    "\ufeffbom",
    "ünïcödé",
    "日本語",
    "emoji 🐳",
    "-rf",
    "--help",
    "x" * 5000,
    "*",
    "~root",
    "a:b",
    "%s%n",
]

nasty_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(max_size=10)),
)


def base_plan() -> Plan:
    return Plan(
        registry=RegistrySpec(ip="10.0.0.2"),
        host=Connection(address="10.0.0.2"),
        clients=[Connection(), Connection(address="node2")],
        certificate=CertificateSpec(key="ecdsa-p256", extra_sans=["alt.example.test"]),
        users=[User("alice", HASH)],
        remove_users=["old"],
    )


def _string_slots() -> list[tuple[str, str]]:
    """(object path, attribute) for every str field in the plan."""
    p = base_plan()
    slots: list[tuple[str, str]] = []
    for section in ("registry", "host", "certificate", "verify"):
        obj = getattr(p, section)
        slots += [(section, f.name) for f in fields(obj) if isinstance(getattr(obj, f.name), str)]
    slots += [("clients.1", f.name) for f in fields(Connection) if f.type == "str"]
    slots += [("users.0", "name"), ("users.0", "bcrypt")]
    slots += [("extra_sans", "0"), ("remove_users", "0")]
    return slots


SLOTS = _string_slots()


def _set(plan: Plan, slot: tuple[str, str], value: str) -> None:
    where, attr = slot
    if where == "extra_sans":
        plan.certificate.extra_sans[0] = value
    elif where == "remove_users":
        plan.remove_users[0] = value
    elif "." in where:
        name, idx = where.split(".")
        setattr(getattr(plan, name)[int(idx)], attr, value)
    else:
        setattr(getattr(plan, where), attr, value)


def _all_strings(plan: Plan) -> list[str]:
    out: list[str] = []
    for sec in (
        plan.registry,
        plan.host,
        *plan.clients,
        plan.certificate,
        *plan.users,
        plan.verify,
    ):
        for f in fields(sec):
            v = getattr(sec, f.name)
            out += v if isinstance(v, list) else [v] if isinstance(v, str) else []
    return out + list(plan.remove_users)


def test_base_plan_is_valid() -> None:
    assert validate_plan(base_plan()) == []
    assert len(SLOTS) > 30


@FAST
@given(slot=st.sampled_from(SLOTS), value=nasty_text)
def test_hostile_field_values_error_or_valid(slot: tuple[str, str], value: str) -> None:
    plan = base_plan()
    _set(plan, slot, value)
    errors = validate_plan(plan)
    text = dump_plan(plan)
    # The TOML writer always round-trips, valid or not.
    assert parse_plan(text, validate=False) == plan
    if errors:
        with pytest.raises(PlanError):
            parse_plan(text)
        for e in errors:
            assert e.field
            assert not any(unicodedata.category(c) == "Cc" for c in e.field + e.message + e.fix)
    else:
        assert parse_plan(text) == plan
        for s in _all_strings(plan):
            assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in s)
        for path in (plan.registry.storage, plan.registry.config_dir):
            assert path.startswith("/") and ".." not in path.split("/") and path != "/"


@FAST
@given(text=st.text(max_size=400))
def test_arbitrary_text_is_plan_or_plan_error(text: str) -> None:
    try:
        plan = parse_plan(text)
    except PlanError:
        return
    assert isinstance(plan, Plan)
    assert validate_plan(plan) == []


@FAST
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_is_plan_or_plan_error(data: bytes) -> None:
    try:
        parse_plan(data)
    except PlanError:
        pass


KEYS = sorted(
    {f.name for cls in (RegistrySpec, Connection, CertificateSpec, User) for f in fields(cls)}
    | {"registry", "host", "clients", "certificate", "users", "policy", "verify"}
    | {"remove_users", "user", "password", "storag", ""}
)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    nasty_text,
    st.dates(),
)
toml_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=4),
    ),
    max_leaves=12,
)
toml_docs = st.dictionaries(
    st.sampled_from(KEYS),
    st.one_of(
        toml_values,
        st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=6),
        st.lists(st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=6), max_size=3),
    ),
    max_size=6,
)


@FAST
@given(doc=toml_docs)
def test_structured_fuzz_never_crashes(doc: dict) -> None:
    text = tomli_w.dumps(doc)
    try:
        plan = parse_plan(text)
    except PlanError as e:
        assert str(e)
        return
    assert validate_plan(plan) == []


@FAST
@given(doc=toml_docs)
def test_structured_fuzz_without_validation(doc: dict) -> None:
    try:
        plan = parse_plan(tomli_w.dumps(doc), validate=False)
    except PlanError:
        return
    # Whatever loads also dumps and loads back identically.
    assert parse_plan(dump_plan(plan), validate=False) == plan


everything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), nasty_text, st.lists(st.integers())
)


@FAST
@given(value=everything)
def test_validators_never_raise(value: object) -> None:
    for name in dir(P):
        if name.startswith("check_") and name != "check_field":
            result = getattr(P, name)(value)
            assert result is None or isinstance(result, str)


@FAST
@given(slot=st.sampled_from(SLOTS), value=everything)
def test_wrong_python_types_are_reported_not_crashing(slot: tuple[str, str], value: object) -> None:
    plan = copy.deepcopy(base_plan())
    _set(plan, slot, value)  # type: ignore[arg-type]
    errors = validate_plan(plan)
    if not isinstance(value, str):
        assert errors
