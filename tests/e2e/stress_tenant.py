"""An isolated tenant on the shared lab for the stress tests (issue 6).

Other engineers run tests on the same lab at the same time, so everything here lives
in its own namespace: domain ``stress.lab.test``, ports 5600+, containers ``st-*``,
config dirs ``/etc/regwizard-stress-*``, storage ``/opt/st-*``. Cleanup removes only
what these names cover; never ``registry``, ``/etc/regwizard`` or ``/opt/docker-image``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from regwizard import lab as labmod
from regwizard.htpasswd import hash_password
from regwizard.plan import Plan, User, VerifySpec, load_plan

DOMAIN = "stress.lab.test"
USER = "stress"
PASSWORD = "st-pass-4d1e0b"  # a tenant user's password (not the audited marker)
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
_HASHES: dict[str, str] = {}


def bcrypt_of(password: str) -> str:
    if password not in _HASHES:
        _HASHES[password] = hash_password(password, rounds=4)
    return _HASHES[password]


@dataclass
class Tenant:
    lab: labmod.LabState
    name: str  # suffix: st-NAME, /opt/st-NAME, /etc/regwizard-stress-NAME
    port: int

    @property
    def container(self) -> str:
        return f"st-{self.name}"

    @property
    def config_dir(self) -> str:
        return f"/etc/regwizard-stress-{self.name}"

    @property
    def storage(self) -> str:
        return f"/opt/st-{self.name}"

    @property
    def address(self) -> str:
        return f"{DOMAIN}:{self.port}"

    @property
    def trust_dir(self) -> str:
        return f"/etc/docker/certs.d/{self.address}"

    @property
    def node1(self) -> labmod.Node:
        return self.lab.nodes["node1"]

    @property
    def node2(self) -> labmod.Node:
        return self.lab.nodes["node2"]

    def plan(self, password: str = PASSWORD) -> Plan:
        plan = load_plan(self.lab.plan_file)
        reg = plan.registry
        reg.domain, reg.port, reg.container = DOMAIN, self.port, self.container
        reg.config_dir, reg.storage = self.config_dir, self.storage
        plan.users = [User(USER, bcrypt_of(password))]
        plan.remove_users = []
        plan.verify = VerifySpec(user=USER)
        plan.validate()
        return plan

    def sh(self, script: str, node: str = "node1", check: bool = True) -> str:
        cp = labmod.node_exec(self.lab.nodes[node], ["sh", "-c", script], check=check)
        return cp.stdout.decode(errors="replace")

    def tenant_state(self) -> str:
        """What exists of this tenant on node1: files (with modes) and the container."""
        return self.sh(
            f"find {self.config_dir} {self.storage} -printf '%m %p\\n' 2>/dev/null | sort; "
            f"docker ps -a --filter name=^/{self.container}$ --format '{{{{.Names}}}}'",
            check=False,
        )

    def cleanup(self) -> None:
        """Remove this tenant only (container, dirs, trust dirs, probe images)."""
        self.sh(
            f"docker rm -f {self.container} >/dev/null 2>&1; "
            f"umount {self.storage}/docker 2>/dev/null; "
            f"rm -rf {self.config_dir} {self.storage} {self.trust_dir}; true",
            check=False,
        )
        self.sh(f"rm -rf {self.trust_dir}", "node2", check=False)
        subprocess.run(["rm", "-rf", self.trust_dir], check=False)
        script = remove_probe_images_script(f"{self.address}/regwizard/probe")
        self.sh(script, "node2", check=False)
        subprocess.run(["sh", "-c", script], check=False)


def remove_probe_images_script(repo: str) -> str:
    """Untag/remove every image of ``repo`` by reference (tag or repo@digest), never by
    image ID: an ID can be shared with other tenants' tags (the probe image is the same
    bytes for the same reference, and pulls leave repo@digest entries behind)."""
    return (
        f"docker images --digests --format '{{{{.Repository}}}}@{{{{.Digest}}}}' {repo} "
        "| grep -v '@<none>$' | xargs -r docker rmi -f >/dev/null 2>&1; "
        f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {repo} "
        "| grep -v ':<none>$' | xargs -r docker rmi -f >/dev/null 2>&1; true"
    )


def remove_hosts_lines() -> None:
    """Drop our stress.lab.test lines from /etc/hosts on node0-2, in place (same inode),
    and the /etc/hosts backups our runs made."""
    remove_our_hosts_backups()
    script = (
        f"grep -v '[[:space:]]{DOMAIN}\\([[:space:]]\\|$\\)' /etc/hosts > /tmp/.st-hosts; "
        "cat /tmp/.st-hosts > /etc/hosts; rm -f /tmp/.st-hosts"
    )
    state = labmod.LabState.load()
    for name in ("node1", "node2"):
        labmod.node_exec(state.nodes[name], ["sh", "-c", script], check=False)
    subprocess.run(["sh", "-c", script], check=False)


class PsSampler:
    """Samples `ps -ww -eo args` (unlimited width) on node0 and inside node1 (and node2) from a thread."""

    def __init__(self, lab: labmod.LabState, nodes=("node1",), interval: float = 0.05):
        self.lab, self.nodes, self.interval = lab, nodes, interval
        self.samples: dict[str, list[str]] = {"node0": [], **{n: [] for n in nodes}}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _loop(self, where: str) -> None:
        while not self._stop.is_set():
            if where == "node0":
                cp = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, timeout=30)
            else:
                cp = labmod.node_exec(
                    self.lab.nodes[where], ["ps", "-ww", "-eo", "args"], check=False
                )
            self.samples[where].append(cp.stdout.decode(errors="replace"))
            time.sleep(self.interval)

    def __enter__(self) -> PsSampler:
        for where in self.samples:
            t = threading.Thread(target=self._loop, args=(where,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def text(self, where: str) -> str:
        return "\n".join(self.samples[where])


def run_cli(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "regwizard")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, **kw)


def lost_hosts_line(result) -> bool:
    """The run failed because the registry name stopped resolving: on this shared lab
    another tenant's read-modify-write of the same /etc/hosts can drop our fresh line."""
    f = result.failure
    return bool(f) and (
        "does not resolve" in f.cause
        or "no such host" in f.evidence
        or "dial tcp: lookup " in f.evidence  # the lab's resolver: nothing listens
    )


_BACKUP = re.compile(r"backed up /etc/hosts -> (/etc/hosts\.bak-[0-9.-]+)$")
HOSTS_BACKUPS: set[tuple[str, str]] = set()  # (host label, path) made by our runs


def record_backups(events) -> None:
    from regwizard.events import LogLine

    for ev in events:
        if isinstance(ev, LogLine):
            m = _BACKUP.search(ev.text)
            if m:
                HOSTS_BACKUPS.add((ev.host, m.group(1)))


def remove_our_hosts_backups() -> None:
    """The engine backs up /etc/hosts before each edit: delete the copies our runs made."""
    state = labmod.LabState.load()
    for host, path in sorted(HOSTS_BACKUPS):
        if host in state.nodes:
            labmod.node_exec(state.nodes[host], ["rm", "-f", "--", path], check=False)
        elif host == "this machine":
            subprocess.run(["rm", "-f", "--", path], check=False)
    HOSTS_BACKUPS.clear()


def run_engine(plan, secrets, emit=lambda e: None):
    """engine.run, remembering the /etc/hosts backups it made."""
    from regwizard import engine

    events = []

    def both(ev) -> None:
        events.append(ev)
        emit(ev)

    try:
        return engine.run(plan, secrets, emit=both)
    finally:
        record_backups(events)


def converge(plan, secrets, emit=lambda e: None):
    """run_engine, rerun once if a concurrent /etc/hosts edit dropped our line."""
    result = run_engine(plan, secrets, emit=emit)
    if not result.ok and lost_hosts_line(result):
        result = run_engine(plan, secrets, emit=emit)
    return result
