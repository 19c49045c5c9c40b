"""The sandbox lab: a registry host and a second client on this very machine.

node0 is this machine (the client that runs regwizard). node1 (registry host)
and node2 (second client) each get their own network namespace on a private
bridge, plus their own mount and UTS namespaces holding their own /etc (a
directory copy), /root, /home, /var/lib/docker, /opt, a tmpfs /run, their own
dockerd and their own sshd. A client's missing trust then fails exactly as it
does between two real machines.

Tests and ``regwizard lab``/``regwizard demo`` share this one implementation.
Linux and root are required. Processes are ended by PID, never by name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from regwizard.errors import RegwizardError

STATE_DIR = Path(os.environ.get("REGWIZARD_LAB_DIR", "/var/lib/regwizard-lab"))
BRIDGE = "rwlab0"
SUBNET = "10.213.47"
NODE0_IP = f"{SUBNET}.1"
DOMAIN = "reg.lab.test"
NODE_NAMES = ("node1", "node2")
NODE_IPS = {"node1": f"{SUBNET}.2", "node2": f"{SUBNET}.3", "node3": f"{SUBNET}.4"}
# node3 (a second registry host) is built only by `lab up --ha` (lab_ha.py)
EXTRA_NODE_NAMES = ("node3",)
CLIENT_PREFIX = "client"  # extra clients, built on demand: client1 .11, client2 .12, ...
MAX_CLIENTS = 32
LAB_USER = "labuser"
PACKAGES = {  # binary -> Debian package
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ip": "iproute2",
    "sudo": "sudo",
    "nsenter": "util-linux",
    "podman": "podman",
    "ctr": "containerd",
}
# clients with other runtimes, built on demand (``lab runtimes``)
RUNTIME_NODES = {"podman1": (f"{SUBNET}.21", ["docker", "podman"]),
                 "k8s1": (f"{SUBNET}.22", ["containerd"])}  # fmt: skip
CONTAINERD_LAB_CONFIG = """\
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
"""
# The lab's stand-in for a service manager on the containerd node (it has no systemd):
# `service containerd restart` does what systemd would, and counts restarts.
SERVICE_SHIM = """\
#!/bin/sh
# regwizard lab: `service containerd start|stop|restart|status` (no systemd here)
[ "$1" = containerd ] || { echo "lab service: only containerd is managed here" >&2; exit 1; }
pid=/run/containerd-lab.pid
# the nodes share this machine's PID space: a stale pid file may name someone else's
# process (a registry's, say), so only a containerd is ended
ours() { [ -f $pid ] && [ "$(cat /proc/"$(cat $pid)"/comm 2>/dev/null)" = containerd ]; }
stop() {
  ours && kill "$(cat $pid)" 2>/dev/null
  i=0; while ours && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
}
start() {
  setsid containerd --config /etc/containerd/config.toml >>/run/containerd-lab.log 2>&1 \\
    </dev/null & echo $! > $pid
  echo start >> /run/containerd-lab.starts
}
case "$2" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) ours ;;
  *) echo "usage: service containerd start|stop|restart|status" >&2; exit 2 ;;
esac
"""
REGISTRY_IMAGE = "registry:2"
REGISTRY_TAGS = ("registry:2", "registry:3")
NODE0_SOCK = "/var/run/docker.sock"
CGROUPS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")

REGISTRY_CONFIG = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""

DOCKERFILE = """\
FROM scratch
COPY docker-registry /bin/registry
COPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6
COPY ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
COPY config.yml /etc/docker/registry/config.yml
COPY config.yml /etc/distribution/config.yml
VOLUME /var/lib/registry
EXPOSE 5000
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
"""


@dataclass
class Node:
    name: str
    ip: str
    netns: str
    veth: str
    root: str  # host path of this node's private directories
    init_pid: int = 0
    dockerd_pid: int = 0
    sshd_pid: int = 0
    host_key: str = ""  # "SHA256:..." of the ed25519 host key
    host_key_line: str = ""  # "ssh-ed25519 AAAA..."
    # what the node runs besides sshd: docker (node1, node2, clientN), docker + podman,
    # or a standalone containerd with no dockerd at all (a Kubernetes node's runtime)
    runtimes: list[str] = field(default_factory=lambda: ["docker"])
    # more processes started inside the node (lab_ha: weed), name -> PID; ended by PID
    extra_pids: dict[str, int] = field(default_factory=dict)

    @property
    def docker_sock(self) -> str:
        """The node's dockerd socket, reachable from node0 through /proc."""
        return f"/proc/{self.init_pid}/root/run/docker.sock"


@dataclass
class LabState:
    nodes: dict[str, Node] = field(default_factory=dict)
    key_file: str = ""
    known_hosts: str = ""
    root_password: str = ""
    user_password: str = ""
    verify_user: str = "demo"
    verify_password: str = ""
    plan_file: str = ""
    ha_plan_file: str = ""
    started_node0_dockerd: int = 0
    forward_rule: bool = False

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        path = STATE_DIR / "lab.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)

    @staticmethod
    def nodes_dir() -> Path:
        return STATE_DIR / "nodes"

    @classmethod
    def load(cls) -> LabState | None:
        path = STATE_DIR / "lab.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # unreadable: down() still finds the lab by its names
        # Only the fields this version knows: a state written by an older or newer
        # regwizard must never stop `lab down` (or the tests) from cleaning up.
        node_keys = {f.name for f in fields(Node)}
        keys = {f.name for f in fields(cls)} - {"nodes"}
        try:
            nodes = {
                k: Node(**{f: x for f, x in v.items() if f in node_keys})
                for k, v in data.pop("nodes", {}).items()
            }
            return cls(nodes=nodes, **{k: v for k, v in data.items() if k in keys})
        except (TypeError, AttributeError):
            return None


class LabError(RegwizardError):
    pass


# ---------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def sh(
    argv: list[str], *, timeout: float = 120, check: bool = True, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        cp = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from e
    if check and cp.returncode != 0:
        err = cp.stderr.decode(errors="replace").strip()[-800:]
        raise LabError(f"command failed ({cp.returncode}): {' '.join(argv)}\n{err}")
    return cp


def require_linux_root() -> None:
    if not sys.platform.startswith("linux"):
        raise LabError(
            "the lab needs Linux (network and mount namespaces)",
            "run `regwizard lab` on a Linux machine or VM",
        )
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (it creates namespaces and starts dockerd/sshd)",
            "run it as root, e.g. `sudo regwizard lab up`",
        )


def ensure_packages(install: bool = True) -> None:
    missing = sorted({pkg for b, pkg in PACKAGES.items() if not _which(b)})
    if not missing:
        return
    if not install:
        raise LabError(
            f"missing packages: {', '.join(missing)}", f"apt-get install -y {' '.join(missing)}"
        )
    _log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
    cp = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        env=env,
        capture_output=True,
        timeout=1200,
    )
    if cp.returncode != 0:
        raise LabError(
            f"apt-get could not install {' '.join(missing)}",
            "check the package sources, then rerun",
            cp.stderr.decode(errors="replace")[-500:],
        )


def _which(binary: str) -> str | None:
    return shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _docker_answers(sock: str, timeout: float = 3) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        return b"200 OK" in s.recv(256)
    except OSError:
        return False
    finally:
        s.close()


def _wait(pred, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _kill(pid: int, timeout: float = 10) -> None:
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.1)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.2)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def fingerprint_of_pubkey(line: str) -> str:
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def node_exec(
    node: Node, argv: list[str], *, timeout: float = 120, check: bool = True, input=None
) -> subprocess.CompletedProcess[bytes]:
    """Run a command inside a node (its net, mount and UTS namespaces)."""
    return sh(
        ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--", *argv],
        timeout=timeout,
        check=check,
        input=input,
    )


def node_docker(node: Node, timeout: float = 60):
    """A Docker SDK client for a node's own dockerd (test and lab use only)."""
    import docker

    return docker.DockerClient(base_url=f"unix://{node.docker_sock}", timeout=timeout)


# ---------------------------------------------------------------- node0


def node0_dockerd_root() -> Path | None:
    """This machine's dockerd's view of the filesystem (/proc/PID/root), from its pid file."""
    try:
        pid = int(Path("/var/run/docker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    root = Path(f"/proc/{pid}/root")
    return root if root.exists() else None


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def ensure_node0_docker(state: LabState | None = None) -> int:
    """Start dockerd on this machine when none answers. Returns its PID if we started it."""
    if _docker_answers(NODE0_SOCK):
        root = node0_dockerd_root()
        if root is None or _read_or_empty(root / "etc/resolv.conf") != LAB_RESOLV_CONF:
            _log(
                "warning: this machine's dockerd was not started by the lab; a lookup it "
                "misses in /etc/hosts goes to this machine's DNS server"
            )
        return 0
    dockerd = _which("dockerd")
    if not dockerd:
        raise LabError("dockerd not found", "apt-get install -y docker.io")
    _log("starting dockerd on this machine (none answered on /var/run/docker.sock)")
    log = open("/var/log/regwizard-dockerd.log", "ab")  # noqa: SIM115
    # This machine's resolv.conf names a real DNS server. regwizard tries a lookup
    # before it waits out dockerd's /etc/hosts cache, so a test that left the cache
    # stale would send the registry's name out. The dockerd the lab starts runs in its
    # own mount namespace whose /etc/resolv.conf is the nodes' (nothing listens), and
    # sees the same /etc/hosts. `unshare` execs, so the PID is dockerd's.
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    resolv = STATE_DIR / "resolv.conf"
    resolv.write_text(LAB_RESOLV_CONF)
    proc = subprocess.Popen(
        [
            "unshare",
            "-m",
            "--propagation",
            "slave",
            "--",
            "sh",
            "-c",
            'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
            "sh",
            str(resolv),
            dockerd,
            "--iptables=false",
            "--ip-masq=false",
        ],  # fmt: skip
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(lambda: _docker_answers(NODE0_SOCK), 60, "dockerd on this machine")
    if state is not None:
        state.started_node0_dockerd = proc.pid
    return proc.pid


def ensure_registry_image() -> None:
    """Build registry:2 (and tag registry:3) from Debian's docker-registry when absent."""
    import docker

    client = docker.DockerClient(base_url=f"unix://{NODE0_SOCK}", timeout=120)
    try:
        have = {t for img in client.images.list() for t in img.tags}
        if all(t in have for t in REGISTRY_TAGS):
            return
        binary = _which("docker-registry") or "/usr/bin/docker-registry"
        _log(f"building {REGISTRY_IMAGE} from {binary} (FROM scratch)")
        with tempfile.TemporaryDirectory() as ctx:
            shutil.copy2(binary, f"{ctx}/docker-registry")
            shutil.copy2("/lib/x86_64-linux-gnu/libc.so.6", f"{ctx}/libc.so.6")
            shutil.copy2("/lib64/ld-linux-x86-64.so.2", f"{ctx}/ld-linux-x86-64.so.2")
            Path(ctx, "config.yml").write_text(REGISTRY_CONFIG)
            Path(ctx, "Dockerfile").write_text(DOCKERFILE)
            image, _ = client.images.build(path=ctx, tag=REGISTRY_IMAGE, rm=True, pull=False)
        for tag in REGISTRY_TAGS[1:]:
            repo, _, t = tag.partition(":")
            image.tag(repo, t)
    finally:
        client.close()


def ensure_lab_key() -> tuple[str, str]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE_DIR, 0o700)
    key = STATE_DIR / "id_ed25519"
    if not key.exists():
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "regwizard-lab", "-f", str(key)])
    os.chmod(key, 0o600)
    return str(key), (STATE_DIR / "id_ed25519.pub").read_text().strip()


def _forward_rule(add: bool) -> bool:
    """Let bridged lab traffic through when br_netfilter + a DROP policy would block it."""
    iptables = _which("iptables")
    nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if not iptables or not nf.exists():
        return False
    rule = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]
    if add:
        return sh([iptables, "-I", *rule], check=False).returncode == 0
    sh([iptables, "-D", *rule], check=False)
    return False


# ---------------------------------------------------------------- nodes


def _node_setup_script(node: Node) -> str:
    r = node.root
    cg = " ".join(CGROUPS)
    return f"""set -e
mount --make-rprivate /
mount --bind {r}/etc /etc
mount --bind {r}/root /root
mount --bind {r}/home /home
mkdir -p /var/lib/docker /opt /var/lib/containers /var/lib/containerd
mount --bind {r}/var-lib-docker /var/lib/docker
mount --bind {r}/var-lib-containers /var/lib/containers
mount --bind {r}/var-lib-containerd /var/lib/containerd
mount --bind {r}/usr-local-sbin /usr/local/sbin
mount --bind {r}/opt /opt
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/sshd /run/lock
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in {cg}; do mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; done
hostname {node.name}
touch /run/.rwlab-ready
exec sleep infinity
"""


LAB_RESOLV_CONF = "# regwizard lab: no DNS server (a lookup that misses /etc/hosts fails)\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def _prepare_node_fs(node: Node, pubkey: str, state: LabState) -> None:
    root = Path(node.root)
    if root.exists():
        shutil.rmtree(root)
    for d in ("etc", "root/.ssh", "home", "var-lib-docker", "var-lib-containers",
              "var-lib-containerd", "usr-local-sbin", "opt"):  # fmt: skip
        (root / d).mkdir(parents=True, exist_ok=True)
    sh(["cp", "-a", "/etc/.", f"{root}/etc/"], timeout=300)
    etc = root / "etc"
    # A clean client side: no trust, no daemon config from node0.
    shutil.rmtree(etc / "docker", ignore_errors=True)
    (etc / "docker").mkdir()
    for d in ("containers/certs.d", "containerd/certs.d"):
        shutil.rmtree(etc / d, ignore_errors=True)
    if "podman" in node.runtimes:
        # vfs: overlay on top of the node's own files is not worth the trouble here
        (etc / "containers").mkdir(exist_ok=True)
        (etc / "containers" / "storage.conf").write_text(
            '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\n'
            'graphroot = "/var/lib/containers/storage"\n'
        )
    if "containerd" in node.runtimes:
        (etc / "containerd").mkdir(exist_ok=True)
        (etc / "containerd" / "config.toml").write_text(CONTAINERD_LAB_CONFIG)
        shim = root / "usr-local-sbin" / "service"
        shim.write_text(SERVICE_SHIM)
        os.chmod(shim, 0o755)
    (etc / "hostname").write_text(f"{node.name}\n")
    hosts = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{node.name}", "::1\tlocalhost ip6-localhost"]
    hosts += [f"{NODE0_IP}\tnode0"] + [f"{ip}\t{n}" for n, ip in NODE_IPS.items()]
    (etc / "hosts").write_text("\n".join(hosts) + "\n")
    # A name missing from /etc/hosts must fail here, never become a DNS query leaving
    # this machine (node0's resolv.conf names a real server): nothing listens on the
    # node's own loopback port 53, so a miss is refused at once.
    (etc / "resolv.conf").unlink(missing_ok=True)  # may be a symlink into /run
    (etc / "resolv.conf").write_text(LAB_RESOLV_CONF)
    # Own SSH host keys, so each node has its own identity.
    for old in (etc / "ssh").glob("ssh_host_*"):
        old.unlink()
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{etc}/ssh/ssh_host_ed25519_key"])
    pub = (etc / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
    node.host_key_line = f"{pub[0]} {pub[1]}"
    node.host_key = fingerprint_of_pubkey(node.host_key_line)
    (etc / "ssh" / "sshd_config.regwizard-lab").write_text(
        "\n".join(
            [
                f"ListenAddress {node.ip}",
                "Port 22",
                "HostKey /etc/ssh/ssh_host_ed25519_key",
                "PermitRootLogin yes",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "UsePAM no",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "Subsystem sftp internal-sftp",
                "PidFile /run/sshd.pid",
                "MaxStartups 100:30:200",
                "MaxSessions 100",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    ssh_dir = root / "root" / ".ssh"
    (ssh_dir / "authorized_keys").write_text(pubkey + "\n")
    os.chmod(ssh_dir, 0o700)
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    os.chmod(root / "root", 0o700)
    # A non-root user whose sudo asks for a password.
    sudoers = etc / "sudoers.d" / "regwizard-lab"
    sudoers.parent.mkdir(exist_ok=True)
    sudoers.write_text(f"{LAB_USER} ALL=(ALL:ALL) ALL\n")
    os.chmod(sudoers, 0o440)


def _start_node(node: Node, pubkey: str, state: LabState) -> None:
    sh(["ip", "netns", "add", node.netns])
    sh(
        [
            "ip",
            "link",
            "add",
            node.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            node.netns,
        ]
    )
    sh(["ip", "link", "set", node.veth, "master", BRIDGE, "up"])
    ns = ["ip", "netns", "exec", node.netns]
    sh([*ns, "ip", "addr", "add", f"{node.ip}/24", "dev", "eth0"])
    sh([*ns, "ip", "link", "set", "eth0", "up"])
    sh([*ns, "ip", "link", "set", "lo", "up"])

    init = subprocess.Popen(
        [*ns, "unshare", "--mount", "--uts", "--propagation", "private", "--"]
        + ["/bin/sh", "-c", _node_setup_script(node)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(f"{node.root}/init.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    node.init_pid = init.pid
    state.save()
    ready = Path(f"/proc/{init.pid}/root/run/.rwlab-ready")
    _wait(lambda: ready.exists() or init.poll() is not None, 30, f"{node.name} namespaces")
    if init.poll() is not None:
        raise LabError(
            f"{node.name}: namespace setup failed",
            "see the log",
            Path(f"{node.root}/init.log").read_text()[-800:],
        )

    enter = ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--"]
    # The non-root user and the passwords live in the node's own /etc.
    node_exec(node, ["useradd", "-m", "-s", "/bin/bash", LAB_USER])
    node_exec(
        node,
        ["chpasswd"],
        input=f"root:{state.root_password}\n{LAB_USER}:{state.user_password}\n".encode(),
    )
    uhome = Path(node.root) / "home" / LAB_USER / ".ssh"
    uhome.mkdir(parents=True, exist_ok=True)
    (uhome / "authorized_keys").write_text(pubkey + "\n")
    node_exec(node, ["chown", "-R", f"{LAB_USER}:{LAB_USER}", f"/home/{LAB_USER}/.ssh"])
    node_exec(node, ["chmod", "700", f"/home/{LAB_USER}/.ssh"])

    if "docker" in node.runtimes:
        _spawn_dockerd(node)
        _container_egress(node)
    if "containerd" in node.runtimes:
        node_exec(node, ["service", "containerd", "start"])
    slog = open(f"{node.root}/sshd.log", "wb")  # noqa: SIM115
    sshd = subprocess.Popen(
        [*enter, _which("sshd") or "/usr/sbin/sshd", "-D", "-e"]
        + ["-f", "/etc/ssh/sshd_config.regwizard-lab"],
        stdin=subprocess.DEVNULL,
        stdout=slog,
        stderr=slog,
        start_new_session=True,
    )
    node.sshd_pid = sshd.pid
    state.save()


def _container_egress(node: Node) -> None:
    """Let a node's containers reach the other lab nodes, as on a real Docker host.

    The nodes' dockerd runs with --iptables=false (it must not touch rules it does not
    own), so nothing forwards or masquerades a container's traffic. A registry on node3
    then cannot reach the S3 gateway on node1. The node's own network namespace gets
    the two pieces dockerd would have set: forwarding, and NAT for the bridge subnets.
    They live and die with the namespace."""
    node_exec(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    node_exec(
        node,
        ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "172.16.0.0/12"]
        + ["!", "-o", "docker0", "-j", "MASQUERADE"],
    )


def _spawn_dockerd(node: Node) -> None:
    enter = ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--"]
    dlog = open(f"{node.root}/dockerd.log", "ab")  # noqa: SIM115
    dockerd = subprocess.Popen(
        [*enter, _which("dockerd") or "dockerd", "--iptables=false", "--ip-masq=false"]
        + ["--host", "unix:///run/docker.sock", "--exec-root", "/run/docker"]
        + ["--pidfile", "/run/docker.pid", "--cgroup-parent", f"rwlab-{node.name}"],
        stdin=subprocess.DEVNULL,
        stdout=dlog,
        stderr=dlog,
        start_new_session=True,
    )
    node.dockerd_pid = dockerd.pid


def stop_dockerd(state: LabState, name: str) -> None:
    """Stop a node's dockerd (by its PID), as a crashed or stopped engine would be."""
    node = state.nodes[name]
    if _cmdline_in_netns(node.dockerd_pid, node.netns):
        _kill(node.dockerd_pid, timeout=20)
    _wait(lambda: not _docker_answers(node.docker_sock, 1), 20, f"dockerd on {name} to stop")


def start_dockerd(state: LabState, name: str) -> None:
    """Start a node's dockerd again (containers with restart=always come back)."""
    node = state.nodes[name]
    if not _docker_answers(node.docker_sock, 2):
        _spawn_dockerd(node)
        state.save()
    _wait(lambda: _docker_answers(node.docker_sock), 90, f"dockerd on {name}")


def sshd_session_pids(state: LabState, name: str) -> list[int]:
    """The per-connection sshd processes under a node's listening sshd."""
    node = state.nodes[name]
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == node.sshd_pid:
            out.append(int(d.name))
    return out


def _wait_node_services(node: Node) -> None:
    if "docker" in node.runtimes:
        _wait(lambda: _docker_answers(node.docker_sock), 90, f"dockerd on {node.name}")
    if "containerd" in node.runtimes:
        sock = Path(f"/proc/{node.init_pid}/root/run/containerd/containerd.sock")
        _wait(sock.exists, 60, f"containerd on {node.name}")

    def ssh_up() -> bool:
        try:
            with socket.create_connection((node.ip, 22), timeout=1) as s:
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    _wait(ssh_up, 30, f"sshd on {node.name}")


def lab_ssh(state: LabState, node: Node, user: str = "root") -> list[str]:
    """The OpenSSH command line that reaches a node with the lab key."""
    return [
        "ssh",
        "-i",
        state.key_file,
        "-o",
        f"UserKnownHostsFile={state.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        f"{user}@{node.ip}",
    ]


def _load_registry_image(state: LabState, node: Node) -> None:
    """`docker save | ssh node docker load`, as a person would do it."""
    save = subprocess.Popen(
        ["docker", "-H", f"unix://{NODE0_SOCK}", "save", *REGISTRY_TAGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        cp = subprocess.run(
            [*lab_ssh(state, node), "docker", "load"],
            stdin=save.stdout,
            capture_output=True,
            timeout=300,
        )
    finally:
        if save.stdout:
            save.stdout.close()
        save.wait(timeout=60)
    if cp.returncode != 0 or save.returncode != 0:
        raise LabError(
            f"loading {REGISTRY_IMAGE} on {node.name} failed",
            "see the error",
            cp.stderr.decode(errors="replace")[-500:],
        )


# ---------------------------------------------------------------- plan


def _lab_user(state: LabState):
    """The verify user: the lab plan's own entry when it exists (one bcrypt hash per lab,
    so every plan made for this lab leaves the registry's htpasswd file as it is)."""
    from regwizard import htpasswd
    from regwizard.plan import PlanError, User, load_plan

    if state.plan_file and Path(state.plan_file).exists():
        try:
            for user in load_plan(state.plan_file).users:
                if user.name == state.verify_user:
                    return user
        except PlanError:
            pass
    return User(state.verify_user, htpasswd.hash_password(state.verify_password))


# A second registry on node1 for mirror tests (``lab upstream``): its own container,
# name, port, storage, config dir and local CA. The mirror reaches it by node1's IP (the
# registry container does not read node1's /etc/hosts); the certificate has that IP SAN.
UPSTREAM_DOMAIN = "upstream.lab.test"
UPSTREAM_PORT = 5443
UPSTREAM_CONTAINER = "upstream"
UPSTREAM_STORAGE = "/opt/upstream"
UPSTREAM_CONFIG = "/etc/regwizard-upstream"
MIRROR_IMAGE = "lab/upstream-only:v1"  # pushed to the upstream alone, pulled through the mirror


def upstream_url(state: LabState) -> str:
    return f"https://{state.nodes['node1'].ip}:{UPSTREAM_PORT}"


def upstream_ca_on_node0() -> str:
    """Where the upstream's CA lands on node0 (a client of the upstream plan): Docker's
    certs.d, written by its trust step. The mirror plan's proxy_ca_file."""
    from regwizard.facts.certsd import trust_file

    return trust_file(f"{UPSTREAM_DOMAIN}:{UPSTREAM_PORT}")


def lab_upstream_plan_text(state: LabState) -> str:
    """A plan for the lab's upstream registry: container "upstream" on node1, port 5443,
    its own local CA, storage and config dir, the same verify user; node0 is its client
    (it pushes there, and gets the CA into certs.d)."""
    from regwizard.plan import (
        CertificateSpec,
        Connection,
        Plan,
        RegistrySpec,
        VerifySpec,
        dump_plan,
    )

    n1 = state.nodes["node1"]
    plan = Plan(
        registry=RegistrySpec(
            domain=UPSTREAM_DOMAIN,
            ip=n1.ip,
            port=UPSTREAM_PORT,
            container=UPSTREAM_CONTAINER,
            storage=UPSTREAM_STORAGE,
            config_dir=UPSTREAM_CONFIG,
            realm="Upstream Realm",
        ),
        host=_lab_conn(state, n1),
        clients=[Connection()],
        certificate=CertificateSpec(
            mode="local-ca",
            organization="regwizard lab upstream",
            common_name=UPSTREAM_DOMAIN,
            days=825,
            key="ecdsa-p256",
        ),
        users=[_lab_user(state)],
        verify=VerifySpec(user=state.verify_user),
    )
    return dump_plan(plan)


def upstream_plans() -> tuple[str, str, list[str]]:
    """(upstream plan, mirror plan, lines saying what they are) for the running lab.
    Builds nothing; LabError when the lab is not up."""
    state = LabState.load()
    if state is None or "node1" not in state.nodes:
        raise LabError("the lab is not up", "run `regwizard lab up` first")
    url = upstream_url(state)
    return (
        lab_upstream_plan_text(state),
        lab_plan_text(state, mirror=True),
        [
            f"upstream: {UPSTREAM_CONTAINER} on node1, {UPSTREAM_DOMAIN}:{UPSTREAM_PORT} "
            f"(the mirror uses {url})",
            f"mirror: {DOMAIN} on node1 mirrors {url}, trusting {upstream_ca_on_node0()} "
            "(written on node0 when the upstream plan is applied); verify pulls "
            f"{MIRROR_IMAGE}",
        ],
    )


def _lab_conn(state: LabState, n: Node):  # noqa: ANN202 - plan.Connection
    from regwizard.plan import Connection

    return Connection(
        address=n.ip,
        user="root",
        auth="key",
        key_file=state.key_file,
        host_key=n.host_key,
        label=n.name,
        runtimes=list(n.runtimes),
        manage_containerd_config="containerd" in n.runtimes,
    )


def lab_plan_text(
    state: LabState, clients: list[str] | None = None, *, mirror: bool = False
) -> str:
    """A ready plan that targets the lab: registry on node1, clients node0 and node2.

    ``clients`` names the lab nodes to use as clients instead ("node0" is this machine),
    for example the extra clients from ``ensure_clients``. ``mirror``: the registry is a
    pull-through cache of the lab's upstream (``lab_upstream_plan_text``), trusting its
    CA from node0's certs.d, and verify pulls MIRROR_IMAGE through it.
    """
    from regwizard.plan import (
        CertificateSpec,
        Connection,
        Plan,
        RegistrySpec,
        VerifySpec,
        dump_plan,
    )

    n1 = state.nodes["node1"]

    def conn(n: Node) -> Connection:
        return _lab_conn(state, n)

    plan = Plan(
        registry=RegistrySpec(
            domain=DOMAIN,
            ip=n1.ip,
            storage="/opt/docker-image",
            proxy_remote_url=upstream_url(state) if mirror else "",
            proxy_ca_file=upstream_ca_on_node0() if mirror else "",
        ),
        host=conn(n1),
        clients=[
            Connection() if name == "node0" else conn(state.nodes[name])
            for name in (clients or ["node0", "node2"])
        ],
        certificate=CertificateSpec(
            mode="local-ca",
            country="CN",
            state="JS",
            locality="NJ",
            organization="regwizard lab",
            organizational_unit="training",
            common_name=DOMAIN,
            email="ops@lab.test",
            days=825,
            key="ecdsa-p256",
        ),
        users=[_lab_user(state)],
        verify=VerifySpec(user=state.verify_user, mirror_image=MIRROR_IMAGE if mirror else ""),
    )
    return dump_plan(plan)


# ---------------------------------------------------------------- public


def up(
    *, plan_out: str | None = None, install: bool = True, extra_nodes: tuple[str, ...] = ()
) -> LabState:
    """Build the lab from nothing (tearing down any stale one first). ``extra_nodes``
    (from EXTRA_NODE_NAMES) are more registry hosts like node1, with the registry image."""
    require_linux_root()
    ensure_packages(install)
    down(quiet=True)
    import secrets as _secrets

    state = LabState()
    state.root_password = "lab-root-" + _secrets.token_hex(6)
    state.user_password = "lab-user-" + _secrets.token_hex(6)
    state.verify_password = "demo-" + _secrets.token_hex(8)
    state.key_file, pubkey = ensure_lab_key()
    ensure_node0_docker(state)
    ensure_registry_image()

    sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
    sh(["ip", "addr", "add", f"{NODE0_IP}/24", "dev", BRIDGE])
    sh(["ip", "link", "set", BRIDGE, "up"])
    state.forward_rule = _forward_rule(True)

    nodes_dir = state.nodes_dir()
    nodes_dir.mkdir(parents=True, exist_ok=True)
    for name in (*NODE_NAMES, *extra_nodes):
        node = Node(
            name=name,
            ip=NODE_IPS[name],
            netns=f"rwlab-{name}",
            veth=f"rwl-{name}",
            root=str(nodes_dir / name),
        )
        state.nodes[name] = node
        _prepare_node_fs(node, pubkey, state)
        _start_node(node, pubkey, state)
    for node in state.nodes.values():
        _wait_node_services(node)

    _write_known_hosts(state)
    for name in ("node1", *extra_nodes):
        _load_registry_image(state, state.nodes[name])

    plan_path = Path(plan_out) if plan_out else STATE_DIR / "lab-plan.toml"
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(lab_plan_text(state))
    os.chmod(plan_path, 0o600)
    state.plan_file = str(plan_path.resolve())
    pw = STATE_DIR / "verify-password"
    pw.write_text(state.verify_password + "\n")
    os.chmod(pw, 0o600)
    state.save()
    return state


def _netns_pids(netns: str) -> list[int]:
    cp = sh(["ip", "netns", "pids", netns], check=False, timeout=10)
    return [int(p) for p in cp.stdout.split() if p.strip().isdigit()]


def down(*, quiet: bool = False) -> None:
    """Tear the lab down: containers through each node's engine, then PIDs, then links."""
    require_linux_root()
    state = LabState.load()
    nodes = list(state.nodes.values()) if state else []
    known = {n.netns for n in nodes}
    for name in (*NODE_NAMES, *EXTRA_NODE_NAMES):  # a stale lab without state: by its names
        if f"rwlab-{name}" not in known:
            nodes.append(
                Node(name, NODE_IPS[name], f"rwlab-{name}", f"rwl-{name}", str(STATE_DIR / name))
            )
    for extra in _stale_client_netns():  # clients of a lab whose state was lost
        if extra not in known | {n.netns for n in nodes}:
            name = extra.removeprefix("rwlab-")
            nodes.append(Node(name, "", extra, f"rwl-{name}", str(STATE_DIR / "nodes" / name)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: _teardown_node(n, quiet), nodes))
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        _forward_rule(False)
        sh(["ip", "link", "del", BRIDGE], check=False)
    if STATE_DIR.exists():
        shutil.rmtree(STATE_DIR / "nodes", ignore_errors=True)
        for f in ("lab.json", "known_hosts", "verify-password"):
            (STATE_DIR / f).unlink(missing_ok=True)
    if not quiet:
        _log("lab is down")


def _teardown_node(node: Node, quiet: bool = True) -> None:
    """Remove a node's containers through its own engine, then end its processes by PID."""
    if node.init_pid and _alive(node.init_pid) and _docker_answers(node.docker_sock, 2):
        try:
            client = node_docker(node, timeout=30)
            for c in client.containers.list(all=True):
                c.remove(force=True)
            client.close()
        except Exception as e:  # noqa: BLE001 - best effort, then kill by PID
            if not quiet:
                _log(f"{node.name}: could not remove containers: {e}")
    for pid in (*node.extra_pids.values(), node.sshd_pid, node.dockerd_pid):
        if pid and _cmdline_in_netns(pid, node.netns):
            _kill(pid, timeout=20)
    # Whatever else still lives in the node's network namespace is ours
    # (containerd, shims, docker-proxy, ssh sessions): end it by PID.
    if Path(f"/run/netns/{node.netns}").exists():
        for pid in _netns_pids(node.netns):
            _kill(pid, timeout=5)
    if node.init_pid and _cmdline_in_netns(node.init_pid, node.netns):
        _kill(node.init_pid, timeout=5)
    if Path(f"/run/netns/{node.netns}").exists():
        sh(["ip", "netns", "del", node.netns], check=False)
    if Path(f"/sys/class/net/{node.veth}").exists():
        sh(["ip", "link", "del", node.veth], check=False)


def _stale_client_netns() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.glob(f"rwlab-{CLIENT_PREFIX}*")) if d.is_dir() else []


def client_names(state: LabState) -> list[str]:
    """The extra clients the lab has now, in order (client1, client2, ...)."""
    names = [n for n in state.nodes if n.startswith(CLIENT_PREFIX)]
    return sorted(names, key=lambda n: int(n.removeprefix(CLIENT_PREFIX)))


def ensure_clients(count: int) -> LabState:
    """Give the running lab exactly ``count`` extra clients, built or removed on demand.

    Each is a node like node2: its own network, mount and UTS namespaces, /etc copy,
    dockerd and sshd, reachable with the lab key and recorded in the lab's known_hosts.
    They are cheap (about a second each, started in parallel) and leave with ``down``.
    """
    require_linux_root()
    if not 0 <= count <= MAX_CLIENTS:
        raise LabError(f"{count} extra clients asked for", f"choose 0..{MAX_CLIENTS}")
    state = LabState.load()
    if state is None or not status().get("up"):
        raise LabError("the lab is not up", "run `regwizard lab up` first")
    have = client_names(state)
    for name in have[count:]:
        _teardown_node(state.nodes.pop(name))
        shutil.rmtree(state.nodes_dir() / name, ignore_errors=True)
    state.save()
    _, pubkey = ensure_lab_key()
    new = []
    for i in range(1, count + 1):
        name = f"{CLIENT_PREFIX}{i}"
        if name in state.nodes:
            continue
        node = Node(
            name=name,
            ip=f"{SUBNET}.{10 + i}",
            netns=f"rwlab-{name}",
            veth=f"rwl-{name}",
            root=str(state.nodes_dir() / name),
        )
        state.nodes[name] = node
        new.append(node)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: _prepare_node_fs(n, pubkey, state), new))
    for node in new:
        _start_node(node, pubkey, state)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_wait_node_services, new))
    _write_known_hosts(state)
    state.save()
    return state


def ensure_runtime_clients() -> LabState:
    """Give the running lab its clients with other runtimes, built on demand: podman1
    (Docker and podman) and k8s1 (a standalone containerd, no dockerd, config_path set
    as kubeadm sets it: it stands for a Kubernetes node)."""
    require_linux_root()
    state = LabState.load()
    if state is None or not status().get("up"):
        raise LabError("the lab is not up", "run `regwizard lab up` first")
    missing = [p for b, p in PACKAGES.items() if b in ("podman", "ctr") and not _which(b)]
    if missing:
        ensure_packages(True)
    _, pubkey = ensure_lab_key()
    new = []
    for name, (ip, runtimes) in RUNTIME_NODES.items():
        if name in state.nodes:
            continue
        node = Node(
            name=name,
            ip=ip,
            netns=f"rwlab-{name}",
            veth=f"rwl-{name}",
            root=str(state.nodes_dir() / name),
            runtimes=list(runtimes),
        )
        state.nodes[name] = node
        new.append(node)
    for node in new:
        _prepare_node_fs(node, pubkey, state)
        _start_node(node, pubkey, state)
    for node in new:
        _wait_node_services(node)
    _write_known_hosts(state)
    state.save()
    return state


def _write_known_hosts(state: LabState) -> None:
    known = STATE_DIR / "known_hosts"
    known.write_text("".join(f"{n.ip} {n.host_key_line}\n" for n in state.nodes.values()))
    os.chmod(known, 0o600)
    state.known_hosts = str(known)


def _cmdline_in_netns(pid: int, netns: str) -> bool:
    """True when pid is alive and still one of the lab's processes (not a reused PID)."""
    if not _alive(pid):
        return False
    try:
        mine = os.stat(f"/run/netns/{netns}").st_ino
        theirs = os.stat(f"/proc/{pid}/ns/net").st_ino
        return mine == theirs
    except OSError:
        return False


def status() -> dict:
    state = LabState.load()
    if not state:
        return {"up": False, "nodes": {}}
    out: dict = {"up": True, "plan_file": state.plan_file, "nodes": {}}
    if state.ha_plan_file:
        out["ha_plan_file"] = state.ha_plan_file
    for node in state.nodes.values():
        info = {
            "ip": node.ip,
            "netns": Path(f"/run/netns/{node.netns}").exists(),
            "init": _alive(node.init_pid),
            "dockerd": _alive(node.dockerd_pid) and _docker_answers(node.docker_sock, 2)
            if "docker" in node.runtimes
            else "none",
            "sshd": _alive(node.sshd_pid),
            **{name: _alive(pid) for name, pid in node.extra_pids.items()},
            "host_key": node.host_key,
        }
        out["nodes"][node.name] = info
        if "containerd" in node.runtimes:
            info["containerd"] = Path(
                f"/proc/{node.init_pid}/root/run/containerd/containerd.sock"
            ).exists()
        out["up"] = out["up"] and all(v for k, v in info.items() if k not in ("ip", "host_key"))
    return out
