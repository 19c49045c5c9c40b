"""S3 storage: the CLI's secret key, the container's environment, facts of a running one."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from regwizard.cli import common
from regwizard.errors import RegwizardError
from regwizard.facts.registry import interpret, s3_spec
from regwizard.plan import Plan, Secrets, StorageSpec
from regwizard.steps.base import Ctx, host_entries
from regwizard.steps.config import content_hash, render
from regwizard.steps.container import desired, docker_run_command

S3 = StorageSpec(
    driver="s3", endpoint="https://10.0.0.5:8333", bucket="registry", access_key="regwizard"
)


def s3_plan() -> Plan:
    return Plan(storage=dataclasses.replace(S3))


def ctx_of(plan: Plan, secrets: Secrets | None = None) -> Ctx:
    secrets = secrets or Secrets()
    return Ctx(plan, secrets, lambda e: None, threading.Event(), hosts=host_entries(plan))


# --------------------------------------------------------------------------- the secret key


@pytest.fixture
def no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "stdin_is_tty", lambda: False)
    monkeypatch.delenv("REGWIZARD_S3_SECRET_KEY", raising=False)


def test_secret_from_file_first_line(tmp_path: Path, no_tty: None) -> None:
    f = tmp_path / "s3"
    f.write_text("from-the-file\nsecond line\n")
    s = Secrets()
    common.read_s3_secret(s3_plan(), s, str(f))
    assert s.s3_secret_key == "from-the-file"


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch, no_tty: None) -> None:
    monkeypatch.setenv("REGWIZARD_S3_SECRET_KEY", "from-env")
    s = Secrets()
    common.read_s3_secret(s3_plan(), s, None)
    assert s.s3_secret_key == "from-env"


def test_secret_prompt_on_tty_enter_keeps(monkeypatch: pytest.MonkeyPatch, no_tty: None) -> None:
    monkeypatch.setattr(common, "stdin_is_tty", lambda: True)
    monkeypatch.setattr(common, "ask_password", lambda prompt: "")
    s = Secrets()
    common.read_s3_secret(s3_plan(), s, None)
    assert s.s3_secret_key == ""  # the config step keeps the stored one
    monkeypatch.setattr(common, "ask_password", lambda prompt: "typed")
    common.read_s3_secret(s3_plan(), s, None)
    assert s.s3_secret_key == "typed"
    s2 = Secrets()
    common.read_s3_secret(s3_plan(), s2, None, ask=False)  # doctor, gc: never asked
    assert s2.s3_secret_key == ""


def test_nothing_given_without_tty_keeps_stored(no_tty: None) -> None:
    s = Secrets()
    common.read_s3_secret(s3_plan(), s, None)
    assert s.s3_secret_key == ""


def test_secret_file_for_filesystem_plan_refused(tmp_path: Path, no_tty: None) -> None:
    f = tmp_path / "s3"
    f.write_text("x\n")
    with pytest.raises(RegwizardError) as e:
        common.read_s3_secret(Plan(), Secrets(), str(f))
    assert "not s3" in e.value.cause and "leave the option out" in e.value.fix


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe\n", b" padded \n"])
def test_bad_secret_file_refused_without_showing_it(
    tmp_path: Path, no_tty: None, content: bytes
) -> None:
    f = tmp_path / "s3"
    f.write_bytes(content)
    with pytest.raises(RegwizardError) as e:
        common.read_s3_secret(s3_plan(), Secrets(), str(f))
    assert "padded" not in str(e.value.cause)
    assert "--s3-secret-file" in e.value.fix or "S3 secret" in e.value.cause


def test_missing_secret_file(tmp_path: Path, no_tty: None) -> None:
    with pytest.raises(RegwizardError) as e:
        common.read_s3_secret(s3_plan(), Secrets(), str(tmp_path / "nope"))
    assert "does not exist" in e.value.cause


def test_secret_file_for_filesystem_plan_is_exit_2(
    tmp_path: Path, no_tty: None, valid_plan: Plan
) -> None:
    """The CLI path, offline: --s3-secret-file with a filesystem plan is exit 2 and one
    message (refused before anything connects)."""
    import contextlib
    import io

    from regwizard.cli.main import main
    from regwizard.plan import dump_plan

    plan_file = tmp_path / "p.toml"
    valid_plan.clients = valid_plan.clients[:1]  # no sudo password to ask for
    plan_file.write_text(dump_plan(valid_plan))
    secret = tmp_path / "s3"
    secret.write_text("x\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["doctor", str(plan_file), "--s3-secret-file", str(secret)])
    assert rc == 2
    assert "not s3" in err.getvalue() and "Traceback" not in err.getvalue()


# --------------------------------------------------------------------------- config.yml


def test_render_secure_follows_scheme_and_hash_excludes_secret() -> None:
    ctx = ctx_of(s3_plan())
    text = render(ctx, "http-secret", s3_secret="SK-1")
    assert "    secure: true\n" in text and "rootdirectory" not in text
    assert "filesystem" not in text
    before = content_hash(ctx)
    assert content_hash(ctx_of(s3_plan(), Secrets(s3_secret_key="SK-2"))) == before
    other = s3_plan()
    other.storage.bucket = "other"
    assert content_hash(ctx_of(other)) != before


# --------------------------------------------------------------------------- the container


def test_container_env_is_explicit_no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """facts.md: AWS_CA_BUNDLE in the environment makes the S3 driver panic at start. The
    container's environment is the explicit dict of ``desired``: this process's AWS_*
    variables never reach it, nor does the secret."""
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca.pem")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    ctx = ctx_of(s3_plan(), Secrets(s3_secret_key="SK-never-in-argv"))
    spec = desired(ctx)
    assert not [k for k in spec["env"] if k.startswith("AWS_")]
    assert spec["env"] == {"OTEL_TRACES_EXPORTER": "none"}
    binds = {v["bind"] for v in spec["volumes"].values()}
    assert "/var/lib/registry" not in binds  # no data mount
    cmd = docker_run_command(ctx)
    assert "AWS_" not in cmd and "SK-never-in-argv" not in cmd and "/var/lib/registry" not in cmd
    fs = desired(ctx_of(Plan()))
    assert spec["labels"] != fs["labels"]


def test_label_follows_storage_settings_not_secret() -> None:
    a = desired(ctx_of(s3_plan(), Secrets(s3_secret_key="one")))["labels"]
    b = desired(ctx_of(s3_plan(), Secrets(s3_secret_key="two")))["labels"]
    assert a == b
    p = s3_plan()
    p.storage.endpoint = "http://10.0.0.6:8333"
    assert desired(ctx_of(p))["labels"] != a


# --------------------------------------------------------------------------- facts


def _attrs(env: list[str]) -> dict:
    return {
        "Name": "/registry",
        "Config": {
            "Image": "registry:2",
            "Cmd": ["serve", "/etc/distribution/config.yml"],
            "Env": env,
        },
        "State": {"Status": "running"},
    }


def test_facts_keep_access_key_never_secret() -> None:
    cfg = (
        b"storage:\n  s3:\n    accesskey: AK\n    secretkey: TOPSECRET\n    bucket: b1\n"
        b"    regionendpoint: http://10.0.0.5:8333\n  redirect:\n    disable: true\n"
    )
    facts = interpret(
        _attrs(["REGISTRY_STORAGE_S3_BUCKET=b2", "AWS_CA_BUNDLE=/x"]), lambda p: (cfg, p)
    )
    st = facts.storage
    assert st.driver == "s3" and st.secret_set and st.redirect_disabled
    assert st.params["accesskey"] == "AK" and st.params["bucket"] == "b2"  # env wins
    assert "TOPSECRET" not in repr(facts.storage)  # (config.data is the parsed file)
    assert st.env_overrides == ("REGISTRY_STORAGE_S3_BUCKET",)
    assert "AWS_CA_BUNDLE" in facts.env_names
    spec = s3_spec(st)
    assert (spec.bucket, spec.endpoint, spec.access_key) == ("b2", "http://10.0.0.5:8333", "AK")


def test_facts_secret_only_in_env_is_not_kept() -> None:
    facts = interpret(
        _attrs(["REGISTRY_STORAGE=s3", "REGISTRY_STORAGE_S3_SECRETKEY=ENVSECRET"]),
        lambda p: (b"version: 0.1\n", p),
    )
    assert facts.storage.driver == "s3" and facts.storage.secret_set
    assert "ENVSECRET" not in repr(facts.storage)
