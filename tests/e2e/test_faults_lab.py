"""Proof under stress: faults on the real lab, each ending in a clear message, nothing
half-written, and a rerun that converges.

Runs in its own tenant on the shared lab (see stress_tenant.py). Two faults are left out
on purpose, because other engineers' tests use the same lab at the same time: stopping
node1's dockerd or sshd, and cutting node1's veth.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from regwizard import lab as labmod
from regwizard import pki
from regwizard.hosts import LocalHost
from regwizard.plan import Secrets, save_plan

from .stress_tenant import (
    DOMAIN,
    PASSWORD,
    TRACEBACK,
    USER,
    Tenant,
    converge,
    remove_hosts_lines,
    run_cli,
    run_engine,
)

lab_test = pytest.mark.lab
SECRETS = Secrets(verify_password=PASSWORD)


@pytest.fixture(scope="module")
def tenants(lab):
    made: list[Tenant] = []

    def make(name: str, port: int) -> Tenant:
        t = Tenant(lab, name, port)
        t.cleanup()
        made.append(t)
        return t

    yield make
    for t in made:
        t.cleanup()
    labmod.node_exec(lab.nodes["node1"], ["docker", "rm", "-f", "st-squatter"], check=False)
    remove_hosts_lines()


def assert_clear(failure, *words: str) -> None:
    """One message naming the cause: no traceback text, every expected word present."""
    assert failure is not None
    text = f"{failure.cause}\n{failure.fix}\n{failure.evidence}"
    assert not TRACEBACK.search(text), text
    assert failure.cause and failure.fix, failure
    for w in words:
        assert w.lower() in failure.cause.lower(), (w, failure.cause)


# --------------------------------------------------------------------------- port held


@lab_test
def test_port_held_by_a_container_then_freed(tenants):
    t = tenants("port", 5602)
    t.sh(f"docker rm -f st-squatter >/dev/null 2>&1; docker run -d --name st-squatter "
         f"-p {t.port}:5000 registry:2 >/dev/null")  # fmt: skip
    try:
        result = run_engine(t.plan(), SECRETS)
        assert not result.ok
        assert result.failure.step == "preflight"
        assert_clear(result.failure, str(t.port), "st-squatter")
        assert t.tenant_state() == "", "preflight must change nothing"
    finally:
        t.sh("docker rm -f st-squatter >/dev/null")
    again = converge(t.plan(), SECRETS)
    assert again.ok, again.failure


@lab_test
def test_port_held_by_a_process_then_freed(tenants):
    t = tenants("proc", 5603)
    node1 = t.node1
    listener = subprocess.Popen(
        ["nsenter", "-t", str(node1.init_pid), "-m", "-u", "-n", "--", "python3", "-c",
         "import socket, time\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('0.0.0.0', {t.port})); s.listen(); time.sleep(120)\n"],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection((node1.ip, t.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        result = run_engine(t.plan(), SECRETS)
        assert not result.ok
        assert result.failure.step == "preflight"
        # names the port and the holder (ss -ltnp on node1: same PID namespace as node0)
        assert_clear(result.failure, str(t.port), "python3", f"pid {listener.pid}")
        assert t.tenant_state() == ""
    finally:
        listener.kill()
        listener.wait(timeout=10)
    again = converge(t.plan(), SECRETS)
    assert again.ok, again.failure


# --------------------------------------------------------------------------- disk full


@lab_test
def test_storage_fills_during_the_push(tenants):
    """A 1 MiB tmpfs under the storage path, filled first: the registry answers 500 on
    the blob upload. (Mounted at STORAGE/docker, where the registry writes, so the
    preflight's free-space check on STORAGE itself still passes: the disk fills *during*
    the run, as it does in real life.)"""
    t = tenants("full", 5604)
    data = f"{t.storage}/docker"
    t.sh(f"mkdir -p {data} && mount -t tmpfs -o size=1m st-full {data} && "
         f"(dd if=/dev/zero of={data}/filler bs=4k 2>/dev/null; true) && df -k {data}")  # fmt: skip
    try:
        assert t.sh(f"df -k --output=avail {data} | tail -1").strip() == "0"
        result = run_engine(t.plan(), SECRETS)
        assert not result.ok
        assert result.failure.step == "verify"
        assert_clear(result.failure, "push", "disk is full")
        assert "500" in result.failure.evidence
        # nothing half-written: no tag was committed, the TLS pair is intact
        tag = f"{data}/registry/v2/repositories/regwizard/probe/_manifests/tags/verify/current/link"
        assert t.sh(f"test -e {tag} && echo yes || echo no").strip() == "no"
        _assert_tls_pair_intact(t)
        t.sh(f"rm -f {data}/filler")
        again = converge(t.plan(), SECRETS)
        assert again.ok, again.failure
        assert t.sh(f"cat {tag}").startswith("sha256:")
    finally:
        t.sh(f"docker rm -f {t.container} >/dev/null 2>&1; umount {data}", check=False)


def _assert_tls_pair_intact(t: Tenant) -> None:
    certs = f"{t.config_dir}/certs/current"
    mode = t.sh(f"stat -c %a {certs}/{DOMAIN}.key").strip()
    assert mode == "600"
    key = labmod.node_exec(t.node1, ["cat", f"{certs}/{DOMAIN}.key"]).stdout
    cert = labmod.node_exec(t.node1, ["cat", f"{certs}/{DOMAIN}.crt"]).stdout
    ca = labmod.node_exec(t.node1, ["cat", f"{t.config_dir}/ca/ca.crt"]).stdout
    assert pki.key_matches_cert(key, cert)
    assert pki.verify_signed_by(cert, ca)


# --------------------------------------------------------------------------- SIGKILL


@lab_test
def test_sigkill_mid_apply_then_rerun_converges(tenants, tmp_path):
    t = tenants("kill", 5605)
    plan_file, pw = tmp_path / "plan.toml", tmp_path / "pw"
    save_plan(t.plan(), plan_file)
    pw.write_text(PASSWORD + "\n")
    exe = os.path.join(os.path.dirname(sys.executable), "regwizard")
    killed_after = []
    # the CLI prints a line when a step finishes: kill -9 right after the step before
    # the certificate (so: during it), after the certificate, and after the image step
    # (so: during the container step)
    for mark in ("hosts-file", "certificate", "image"):
        proc = subprocess.Popen(
            [exe, "apply", str(plan_file), "--password-file", str(pw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if f" {mark} " in line:
                os.kill(proc.pid, signal.SIGKILL)
                killed_after.append(mark)
                break
        proc.wait(timeout=120)
        proc.stderr.close()
        assert not any(TRACEBACK.search(x) for x in seen), seen
    assert killed_after, "the runs finished before any kill point"
    time.sleep(1)  # the remote halves of the killed runs see EOF and end
    cp = run_cli(["apply", str(plan_file), "--password-file", str(pw)])
    if cp.returncode and "does not resolve" in cp.stderr:  # see stress_tenant.converge
        cp = run_cli(["apply", str(plan_file), "--password-file", str(pw)])
    assert cp.returncode == 0, cp.stderr
    assert not TRACEBACK.search(cp.stderr)
    # nothing half-written: no temp files, a matching 0600 key, trust files whole
    left = t.sh(f"find {t.config_dir} {t.trust_dir} -name '*.regwizard-tmp-*' 2>/dev/null")
    assert left == "", left
    assert t.sh(f"find {t.trust_dir} -name '*.regwizard-tmp-*' 2>/dev/null", "node2") == ""
    assert not [p for p in os.listdir(t.trust_dir) if ".regwizard-tmp-" in p]
    _assert_tls_pair_intact(t)
    ca = labmod.node_exec(t.node1, ["cat", f"{t.config_dir}/ca/ca.crt"]).stdout
    assert t.sh(f"cat {t.trust_dir}/ca.crt", "node2").encode() == ca
    with open(f"{t.trust_dir}/ca.crt", "rb") as fh:
        assert fh.read() == ca
    for node in ("node1", "node2"):
        assert "localhost" in t.sh("cat /etc/hosts", node)
    # and a further rerun changes nothing
    again = converge(t.plan(), SECRETS)
    assert again.ok and again.changed == [], (again.failure, again.changed)


# --------------------------------------------------------------------------- credentials


@lab_test
def test_wrong_credentials_clear_message_nothing_changed(tenants, tmp_path):
    t = tenants("auth", 5606)
    lab, node1 = t.lab, t.node1
    cases = []

    plan = t.plan()
    plan.host.auth = "password"
    cases.append(("wrong SSH password", plan, Secrets(
        ssh_passwords={node1.ip: "Wrong-Ssh-Pw-1"}, verify_password=PASSWORD)))  # fmt: skip

    plan = t.plan()
    plan.host.key_file = str(tmp_path)  # a directory
    cases.append(("key file is a directory", plan, SECRETS))

    plan = t.plan()
    plan.host.key_file = str(tmp_path / "no-such-key")
    cases.append(("key file missing", plan, SECRETS))

    plan = t.plan()
    plan.host.user, plan.host.auth, plan.host.sudo = labmod.LAB_USER, "password", True
    cases.append(("wrong sudo password", plan, Secrets(
        ssh_passwords={node1.ip: lab.user_password},
        sudo_passwords={node1.ip: "Wrong-Sudo-Pw-2"}, verify_password=PASSWORD)))  # fmt: skip

    messages = {}
    for what, plan, secrets in cases:
        result = run_engine(plan, secrets)
        assert not result.ok, what
        f = result.failure
        messages[what] = f.cause
        assert_clear(f)
        for bad in ("Wrong-Ssh-Pw-1", "Wrong-Sudo-Pw-2", lab.user_password, PASSWORD):
            assert bad not in f"{f.cause}{f.fix}{f.evidence}", what
        assert not result.changed, (what, result.changed)
        assert t.tenant_state() == "", what
    assert "node1" in messages["wrong SSH password"] or node1.ip in messages["wrong SSH password"]
    assert "password" in messages["wrong SSH password"].lower()
    assert str(tmp_path) in messages["key file is a directory"]
    assert "no-such-key" in messages["key file missing"]
    assert "sudo" in messages["wrong sudo password"]
    assert "password" in messages["wrong sudo password"]
    # the CLI says it the same way: a cause line, exit 1, no traceback
    plan = t.plan()
    plan.host.key_file = str(tmp_path / "no-such-key")
    save_plan(plan, tmp_path / "plan.toml")
    cp = run_cli(["apply", str(tmp_path / "plan.toml")], env={**os.environ,
                 "REGWIZARD_PASSWORD": PASSWORD})  # fmt: skip
    assert cp.returncode == 1, cp.stderr
    assert "cause:" in cp.stderr and "no-such-key" in cp.stderr
    assert not TRACEBACK.search(cp.stderr), cp.stderr
    assert t.tenant_state() == ""


# --------------------------------------------------------------------------- converged tenant


@pytest.fixture(scope="module")
def held_hosts(lab):
    """Processes holding node1's and node2's /etc/hosts open: whatever happens to the
    path later (another tenant may `sed -i` it), we can read the inode that was there."""
    held = {}
    for name in ("node1", "node2"):
        node = lab.nodes[name]
        p = subprocess.Popen(
            ["nsenter", "-t", str(node.init_pid), "-m", "-u", "-n", "--",
             "sh", "-c", "exec sleep 300 < /etc/hosts"],
        )  # fmt: skip
        held[name] = p
    time.sleep(0.3)
    yield held
    for p in held.values():
        p.kill()
        p.wait(timeout=10)


@pytest.fixture(scope="module")
def converged(tenants, held_hosts):
    """One tenant set up from nothing, after our /etc/hosts lines were removed in place."""
    t = tenants("perm", 5607)
    remove_hosts_lines()
    inodes = {n: int(t.sh("stat -c %i /etc/hosts", n)) for n in ("node1", "node2")}
    node0 = open("/etc/hosts")  # noqa: SIM115 - held across the run
    inodes["node0"] = os.fstat(node0.fileno()).st_ino
    result = converge(t.plan(), SECRETS)
    assert result.ok, result.failure
    yield t, result, inodes, node0
    node0.close()


@lab_test
def test_hosts_file_is_replaced_atomically(converged, held_hosts):
    """/etc/hosts is a plain file on every lab node and on node0: it is replaced by a
    rename (a reader sees the old file or the new one, never half of one), after a
    backup. The inode that was /etc/hosts before the run is left exactly as it was."""
    t, result, inodes, node0 = converged
    line = f"10.213.47.2\t{DOMAIN}"
    for name, proc in held_hosts.items():
        fd = f"/proc/{proc.pid}/fd/0"
        assert os.stat(fd).st_ino == inodes[name]
        with open(fd) as fh:
            assert line not in fh.read(), f"{name}: the old /etc/hosts was written to"
        assert int(t.sh("stat -c %i /etc/hosts", name)) != inodes[name], name
        assert line in t.sh("cat /etc/hosts", name), name
    node0.seek(0)
    assert line not in node0.read(), "node0: the old /etc/hosts was written to"
    assert os.stat("/etc/hosts").st_ino != inodes["node0"]
    with open("/etc/hosts") as fh:
        assert line in fh.read()


@lab_test
def test_hosts_file_bind_mount_edit_in_place(tmp_path):
    """/etc/hosts as a single-file bind mount (as in containers), where rename fails:
    the HostsFile step on a LocalHost, in a private mount namespace of this machine."""
    script = r"""
import json, os, shutil, subprocess, tempfile, threading
from regwizard import steps
from regwizard.hosts import LocalHost
from regwizard.plan import Connection, Plan, RegistrySpec, Secrets, User
copy = os.path.join(tempfile.mkdtemp(), "hosts")
shutil.copy("/etc/hosts", copy)
subprocess.run(["mount", "--bind", copy, "/etc/hosts"], check=True)
mounted = any(l.split()[4] == "/etc/hosts" for l in open("/proc/self/mountinfo"))
ino = os.stat("/etc/hosts").st_ino
plan = Plan(registry=RegistrySpec(domain="bind.stress.lab.test", ip="10.213.47.2"),
            host=Connection(), clients=[Connection()], users=[User("u", "x")])
host = LocalHost(Connection(), Secrets())
host.backup = lambda path, **kw: None  # the real /etc is not ours to litter
e = steps.HostEntry("local", "node0", plan.host, host=host, is_registry=True, is_client=True)
ctx = steps.Ctx(plan, Secrets(), lambda ev: None, threading.Event(), hosts=[e])
step = steps.HostsFile()
change = step.check(ctx, e)
step.apply(ctx, e, change)
ctx.forget(e)
step.verify(ctx, e)
print(json.dumps({"mounted": mounted, "ino": ino, "ino_after": os.stat("/etc/hosts").st_ino,
                  "seen": open("/etc/hosts").read(), "backing": open(copy).read()}))
"""
    cp = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))),
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["mounted"]
    assert out["ino_after"] == out["ino"]
    want = "10.213.47.2\tbind.stress.lab.test"
    assert want in out["seen"] and want in out["backing"]  # written through the mount
    assert "localhost" in out["seen"]
    with open("/etc/hosts") as fh:
        assert "bind.stress.lab.test" not in fh.read()  # the real file never saw it


@lab_test
def test_permissions_and_trust_files(converged):
    t = converged[0]
    modes = dict(
        reversed(line.split(" ", 1))
        for line in t.sh(f"find {t.config_dir} -printf '%m %p\\n'").splitlines()
    )
    c = t.config_dir
    for d in ("", "/certs", "/auth", "/ca", "/registry"):
        assert modes[c + d] == "700", d
    gen = t.sh(f"readlink {c}/certs/current").strip()
    for secret in (f"certs/{gen}/{DOMAIN}.key", "ca/ca.key", "auth/htpasswd",
                   "registry/config.yml"):  # fmt: skip
        assert modes[f"{c}/{secret}"] == "600", secret
    # the directory mounted into the registry holds the live pair and nothing else
    mounted = sorted(p[len(f"{c}/certs/") :] for p in modes if p.startswith(f"{c}/certs/"))
    assert mounted == ["current", gen, f"{gen}/{DOMAIN}.crt", f"{gen}/{DOMAIN}.key"]
    owners = t.sh(f"stat -c %U {c} {c}/certs/{gen}/{DOMAIN}.key").split()
    assert owners == ["root", "root"]
    trust = {
        "node0": open(f"{t.trust_dir}/ca.crt").read(),  # noqa: SIM115
        "node2": t.sh(f"cat {t.trust_dir}/ca.crt", "node2"),
    }
    for where, pem in trust.items():
        assert pem.count("BEGIN CERTIFICATE") == 1, where
        assert "PRIVATE KEY" not in pem, where
        files = os.listdir(t.trust_dir) if where == "node0" else t.sh(
            f"ls {t.trust_dir}", "node2").split()  # fmt: skip
        assert files == ["ca.crt"], (where, files)  # no *.key next to it


@lab_test
def test_registry_refuses_anonymous_push_and_pull_from_node2(converged):
    t, result = converged[0], converged[1]
    addr, ref = t.address, f"{t.address}/regwizard/probe:verify"
    anon = f"{addr}/anon/probe:x"

    def node2(script: str) -> tuple[int, str]:
        cp = labmod.node_exec(t.node2, ["sh", "-c", script], check=False)
        return cp.returncode, (cp.stdout + cp.stderr).decode(errors="replace")

    assert result.verification.trust.get("node2")  # node2 pulled during verification
    node2(f"docker logout {addr}")
    rc, out = node2(f"docker tag {ref} {anon} && docker push {anon}")
    assert rc != 0 and ("no basic auth credentials" in out or "unauthorized" in out), out
    rc, out = node2(f"docker rmi -f {anon} {ref} >/dev/null; docker pull {ref}")
    assert rc != 0 and ("no basic auth credentials" in out or "unauthorized" in out), out
    rc, out = node2(f"echo Wrong-Pw-3 | docker login -u {USER} --password-stdin {addr}")
    assert rc != 0 and ("unauthorized" in out.lower() or "401" in out), out
    # the control: with the right password the same pull works, so the refusals above
    # are about credentials, not TLS or names
    rc, out = node2(f"printf %s {PASSWORD} | docker login -u {USER} --password-stdin {addr} "
                    f"&& docker pull {ref}; rc=$?; docker logout {addr}; exit $rc")  # fmt: skip
    assert rc == 0, out
    # anonymous API access from node0 as well
    from regwizard.facts import tls

    anchor = open(f"{t.trust_dir}/ca.crt", "rb").read()  # noqa: SIM115
    reg = t.plan().registry
    status, headers, _ = tls.request(reg.domain, reg.ip, reg.port, anchor, "/v2/_catalog")
    assert status == 401 and "basic" in headers.get("www-authenticate", "").lower()
    status, _, _ = tls.request(
        reg.domain, reg.ip, reg.port, anchor, "/v2/_catalog", auth=(USER, "Wrong-Pw-3")
    )
    assert status == 401


def test_truncated_input_never_replaces_a_file(tmp_path):
    """The SIGKILL / dropped-connection model: the writer's stdin ends early. `cat` then
    exits 0 on EOF, so without a size check a truncated file would be committed."""

    class Cut(LocalHost):
        def _exec(self, argv, data, timeout, on_line, program):
            return super()._exec(argv, data[: len(data) // 2], timeout, on_line, program)

    from regwizard.errors import CommandFailed
    from regwizard.plan import Connection

    host = Cut(Connection(), Secrets())
    key, hosts = tmp_path / "server.key", tmp_path / "hosts"
    key.write_bytes(b"OLD KEY\n")
    hosts.write_text("127.0.0.1 localhost\n10.0.0.1 a\n")
    with pytest.raises(CommandFailed, match="received .* bytes"):
        host.write_file(str(key), b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 300, 0o600)
    with pytest.raises(CommandFailed, match="left unchanged"):
        host.write_in_place(str(hosts), b"127.0.0.1 localhost\n10.0.0.1 a\n10.0.0.2 b\n")
    assert key.read_bytes() == b"OLD KEY\n"
    assert hosts.read_text() == "127.0.0.1 localhost\n10.0.0.1 a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts", "server.key"]
