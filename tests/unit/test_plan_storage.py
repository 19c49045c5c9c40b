"""[storage] and [[replicas]]: the field checks, the cross-field rules, plan check lines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard import plan as P
from regwizard.errors import PlanError
from regwizard.plan import Connection, Plan, StorageSpec, parse_plan, validate_plan

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

S3 = StorageSpec(
    driver="s3", endpoint="http://10.0.0.5:8333", bucket="registry", access_key="regwizard"
)


def errors_of(plan: Plan) -> dict[str, str]:
    return {e.field: f"{e.cause} | {e.fix}" for e in validate_plan(plan)}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "http://10.0.0.5:8333",
        "https://s3.example.test",
        "https://s3.example.test:9000/",
        "http://[fd00::5]:8333",
    ],
)
def test_endpoint_ok(value: str) -> None:
    assert P.check_s3_endpoint(value) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("10.0.0.5:8333", "http:// or https://"),
        ("ftp://10.0.0.5", "http:// or https://"),
        ("http://10.0.0.5:8333/bucket", "no path"),
        ("http://10.0.0.5:8333?x=1", "no path"),
        ("http://key:secret@10.0.0.5", "user name or password"),
        ("http://10.0.0.5:", "no port"),
        ("http://10.0.0.5:99999", "1 to 65535"),
        ("http://fd00::5:8333", "brackets"),
        ("http://bad_host", "Endpoint host"),
        (" http://10.0.0.5", "spaces"),
        (5, "text"),
    ],
)
def test_endpoint_refused(value: object, words: str) -> None:
    msg = P.check_s3_endpoint(value)
    assert msg and words in msg


@pytest.mark.parametrize("value", ["", "registry", "reg.images-1", "abc", "a" * 63])
def test_bucket_ok(value: str) -> None:
    assert P.check_bucket(value) is None


@pytest.mark.parametrize(
    "value", ["ab", "a" * 64, "Registry", "reg_1", "-reg", "reg-", "a..b", "a.-b", "10.0.0.5"]
)
def test_bucket_refused(value: str) -> None:
    assert P.check_bucket(value)


def test_other_storage_fields() -> None:
    assert P.check_region("us-east-1") is None
    assert P.check_region("") and P.check_region("US East")
    assert P.check_access_key("AKIA123") is None and P.check_access_key("") is None
    assert P.check_access_key("a b") and P.check_access_key("a\tb") and P.check_access_key("é")
    assert P.check_root_directory("") is None and P.check_root_directory("/reg/v2") is None
    assert P.check_root_directory("reg") and P.check_root_directory("/a/../b")
    assert P.check_storage_driver("s3") is None and P.check_storage_driver("gcs")


def test_s3_plan_valid(valid_plan: Plan) -> None:
    valid_plan.storage = dataclasses.replace(S3)
    valid_plan.replicas = [Connection(address="10.0.0.4")]
    assert validate_plan(valid_plan) == []


def test_s3_requires_endpoint_bucket_access_key(valid_plan: Plan) -> None:
    valid_plan.storage = StorageSpec(driver="s3")
    errs = errors_of(valid_plan)
    for key in ("endpoint", "bucket", "access_key"):
        assert "is required when driver = s3" in errs[f"storage.{key}"]
    assert "REGWIZARD_S3_SECRET_KEY" in errs["storage.access_key"]


def test_filesystem_with_s3_keys_refused(valid_plan: Plan) -> None:
    valid_plan.storage = StorageSpec(endpoint="http://10.0.0.5:8333", root_directory="/r")
    errs = errors_of(valid_plan)
    assert "only used when driver = s3" in errs["storage.endpoint"]
    assert "only used when driver = s3" in errs["storage.root_directory"]


def test_replicas_need_s3(valid_plan: Plan) -> None:
    valid_plan.replicas = [Connection(address="10.0.0.4")]
    errs = errors_of(valid_plan)
    assert "different images" in errs["replicas[0].address"]
    assert 'driver = "s3"' in errs["replicas[0].address"]


def test_replica_twice_or_the_host(valid_plan: Plan) -> None:
    valid_plan.storage = dataclasses.replace(S3)
    valid_plan.replicas = [
        Connection(address="10.0.0.4"),
        Connection(address="10.0.0.4"),
        Connection(address="10.0.0.2"),  # the [host]
        Connection(address="10.0.0.2", port=2222),  # another sshd on it: allowed
    ]
    errs = errors_of(valid_plan)
    assert "listed twice" in errs["replicas[1].address"]
    assert "is the [host] itself" in errs["replicas[2].address"]
    assert "replicas[3].address" not in errs and "replicas[0].address" not in errs


def test_replica_name_needs_ip_when_hosts_file_managed(valid_plan: Plan) -> None:
    valid_plan.storage = dataclasses.replace(S3)
    valid_plan.replicas = [Connection(address="reg2.example.test")]
    assert "not an IP address" in errors_of(valid_plan)["replicas[0].address"]
    valid_plan.registry.manage_hosts_file = False
    assert validate_plan(valid_plan) == []


def test_secret_key_in_plan_refused() -> None:
    with pytest.raises(PlanError) as ei:
        parse_plan('[storage]\ndriver = "s3"\nsecret_key = "x"\n')
    errs = getattr(ei.value, "errors", [ei.value])
    e = next(x for x in errs if x.field == "storage.secret_key")
    assert "never goes in the plan" in e.cause and "--s3-secret-file" in e.fix


def test_plan_check_shows_file_lines(tmp_path: Path, valid_plan: Plan) -> None:
    from regwizard.cli.main import main

    valid_plan.storage = StorageSpec(driver="s3", endpoint="http://10.0.0.5/x", bucket="B")
    valid_plan.replicas = [Connection(address="reg2.example.test")]
    text = P.dump_plan(valid_plan)
    path = tmp_path / "p.toml"
    path.write_text(text)
    lines = text.splitlines()
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["plan", "check", str(path)])
    assert rc == 2
    out = err.getvalue()
    endpoint_line = next(i for i, x in enumerate(lines, 1) if x.startswith("endpoint ="))
    assert f"p.toml:{endpoint_line}: storage.endpoint:" in out
    assert "storage.bucket:" in out and "storage.access_key:" in out
    assert "replicas[0].address:" in out


def test_dump_roundtrip_keeps_storage_and_replicas(valid_plan: Plan) -> None:
    valid_plan.storage = dataclasses.replace(S3, root_directory="/reg")
    valid_plan.replicas = [Connection(address="10.0.0.4", label="node3")]
    again = parse_plan(P.dump_plan(valid_plan))
    assert again.storage == valid_plan.storage and again.replicas == valid_plan.replicas


CHECKS = [
    P.check_storage_driver,
    P.check_s3_endpoint,
    P.check_bucket,
    P.check_region,
    P.check_access_key,
    P.check_root_directory,
]
ANY = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"https?://[a-z0-9.:\[\]@/?-]{0,40}", fullmatch=True),
    st.integers(),
    st.none(),
    st.booleans(),
)


@FAST
@given(value=ANY)
def test_storage_validators_never_raise(value: object) -> None:
    for check in CHECKS:
        out = check(value)
        assert out is None or (isinstance(out, str) and out)


@FAST
@given(
    driver=st.sampled_from(["filesystem", "s3", "x"]),
    endpoint=ANY,
    bucket=ANY,
    addrs=st.lists(st.sampled_from(["10.0.0.2", "10.0.0.4", "reg2", "local", ""]), max_size=3),
)
def test_validate_plan_never_raises(
    driver: str, endpoint: object, bucket: object, addrs: list[str]
) -> None:
    plan = Plan(
        storage=StorageSpec(driver=driver, endpoint=endpoint, bucket=bucket),  # type: ignore[arg-type]
        replicas=[Connection(address=a) for a in addrs],
    )
    for e in validate_plan(plan):
        assert isinstance(e.cause, str) and e.cause
