"""Issue 15: new plans use ECDSA P-256; a plan that leaves `key` out keeps RSA-4096.

(1) `plan new` writes `key = "ecdsa-p256"`; (2) the wizard's new plan is ECDSA and a
saved one says so; (3) a plan without `key` loads as rsa-4096 and re-saving never adds
or changes it; (4) a plan naming rsa-4096 keeps it; adopt writes the key it finds.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from regwizard import pki
from regwizard.plan import (
    EXAMPLE_PLAN,
    NEW_PLAN_KEY,
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    User,
    dump_plan,
    edit_plan_text,
    load_plan,
    new_plan,
    parse_plan,
    save_plan,
)

from .sandbox import Sandbox


def _without_key(text: str) -> str:
    lines = text.splitlines(keepends=True)
    out = [x for x in lines if not x.startswith("key = ")]
    assert len(out) == len(lines) - 1
    return "".join(out)


def _filled(plan: Plan, fast_hash: str) -> Plan:
    plan.registry = RegistrySpec(domain="reg.example.test", ip="10.0.0.2")
    plan.host = Connection(address="10.0.0.2")
    plan.users = [User("alice", fast_hash)]
    return plan


def test_the_dataclass_default_stays_rsa_4096_and_new_plans_are_ecdsa() -> None:
    assert NEW_PLAN_KEY == "ecdsa-p256"
    assert CertificateSpec().key == "rsa-4096"  # what a plan without `key` always meant
    assert Plan().certificate.key == "rsa-4096"
    assert new_plan().certificate.key == "ecdsa-p256"
    assert new_plan() == Plan(certificate=CertificateSpec(key="ecdsa-p256"))


# (1) `plan new`


def test_example_plan_names_ecdsa_p256_explicitly() -> None:
    data = tomllib.loads(EXAMPLE_PLAN)
    assert data["certificate"]["key"] == "ecdsa-p256"
    assert parse_plan(EXAMPLE_PLAN).certificate.key == "ecdsa-p256"


def test_plan_new_writes_key_ecdsa_p256(tmp_path: Path) -> None:
    with Sandbox(tmp_path) as box:
        assert box.run(["plan", "new", "-o", "p.toml"]).rc == 0
    text = (tmp_path / "p.toml").read_text()
    assert tomllib.loads(text)["certificate"]["key"] == "ecdsa-p256"
    assert load_plan(tmp_path / "p.toml").certificate.key == "ecdsa-p256"


# (2) the wizard's new plan


def test_a_new_plan_saved_to_a_new_file_says_ecdsa(tmp_path: Path, fast_hash: str) -> None:
    path = tmp_path / "new.toml"
    save_plan(_filled(new_plan(), fast_hash), path)
    assert tomllib.loads(path.read_text())["certificate"]["key"] == "ecdsa-p256"
    assert load_plan(path).certificate.key == "ecdsa-p256"


def test_switching_an_old_plan_to_ecdsa_writes_the_key(tmp_path: Path) -> None:
    """Edited in place over a file that left `key` out, ECDSA differs from the default
    and is written; it never silently stays RSA-4096."""
    path = tmp_path / "old.toml"
    path.write_text(_without_key(EXAMPLE_PLAN))
    plan = load_plan(path, validate=False)
    plan.certificate.key = "ecdsa-p256"
    save_plan(plan, path)
    assert 'key = "ecdsa-p256"' in path.read_text()
    assert load_plan(path, validate=False).certificate.key == "ecdsa-p256"


def test_the_wizard_starts_from_new_plan() -> None:
    pytest.importorskip("textual")
    from regwizard.app import RegwizardApp, WizardState

    assert WizardState().plan.certificate.key == "ecdsa-p256"
    assert RegwizardApp(backend=None).state.plan.certificate.key == "ecdsa-p256"  # type: ignore[arg-type]


# (3) a plan that leaves `key` out


def test_a_plan_without_key_loads_as_rsa_4096() -> None:
    assert parse_plan(_without_key(EXAMPLE_PLAN)).certificate.key == "rsa-4096"
    assert parse_plan("[certificate]\nmode = 'self-signed'\n", validate=False).certificate.key == (
        "rsa-4096"
    )


def test_resaving_a_plan_without_key_keeps_it_out_and_rsa_4096(tmp_path: Path) -> None:
    old = _without_key(EXAMPLE_PLAN)
    path = tmp_path / "old.toml"
    path.write_text(old)
    plan = load_plan(path, validate=False)
    assert edit_plan_text(old, plan) == old  # nothing changed: byte for byte
    plan.certificate.days = 90  # another change in the same table
    plan.registry.port = 5000
    save_plan(plan, path)
    text = path.read_text()
    assert "key = " not in text.split("[certificate]")[1].split("[[users]]")[0]
    assert "days = 90" in text
    assert load_plan(path, validate=False).certificate.key == "rsa-4096"


def test_a_plan_without_key_that_is_rewritten_afresh_names_rsa_4096() -> None:
    """dump_plan (a new file, or an old text that is not a plan) writes every key."""
    plan = parse_plan(_without_key(EXAMPLE_PLAN))
    text = dump_plan(plan)
    assert tomllib.loads(text)["certificate"]["key"] == "rsa-4096"
    assert parse_plan(text) == plan
    assert tomllib.loads(edit_plan_text("not = [a plan", plan))["certificate"]["key"] == "rsa-4096"


# (4) a plan naming rsa-4096


@pytest.mark.parametrize("key", ["rsa-4096", "rsa-2048"])
def test_a_plan_naming_rsa_keeps_it(tmp_path: Path, key: str) -> None:
    text = EXAMPLE_PLAN.replace('key = "ecdsa-p256"', f'key = "{key}"', 1)
    assert f'key = "{key}"' in text
    path = tmp_path / "rsa.toml"
    path.write_text(text)
    plan = load_plan(path, validate=False)
    assert plan.certificate.key == key
    plan.certificate.days = 90
    save_plan(plan, path)
    assert f'key = "{key}"' in path.read_text()
    assert load_plan(path, validate=False).certificate.key == key


# adopt: the key kind it finds, so apply does not re-issue an adopted certificate


@pytest.mark.parametrize("key", ["rsa-2048", "rsa-4096", "ecdsa-p256"])
def test_adopt_writes_the_key_kind_it_finds(key: str) -> None:
    from .test_adopt_doctor import _adopt

    _, cert = pki.make_server_cert(CertificateSpec(key=key), "reg.example.test", "10.0.0.2")
    found = _adopt(
        [
            "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt",
            "REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
        ],
        [{"Type": "bind", "Source": "/root/certs", "Destination": "/certs"}],
        {"/root/certs/domain.crt": pki.cert_to_pem(cert)},
    )
    assert found.plan.certificate.key == key
    assert tomllib.loads(dump_plan(found.plan))["certificate"]["key"] == key
    assert parse_plan(dump_plan(found.plan), validate=False).certificate.key == key
