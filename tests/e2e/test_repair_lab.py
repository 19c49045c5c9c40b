"""Guided repair on the real lab, no mocks: adopt a hand-made registry, doctor, apply.

Every test works on its OWN tenant on node1, isolated from the lab's registry and from
other engineers' tests running on the same lab at the same time: domain
repair.lab.test, ports 5500-5503, containers rp-*, config under /root/rp-* and
/etc/regwizard-repair, storage /opt/rp-*. Cleanup removes only what these tests made.

Each failure-mode test breaks the healthy tenant the way people do, then:
doctor names the cause (exit 1) -> apply fixes it -> doctor says healthy (exit 0).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import docker
import pytest

from regwizard import engine, htpasswd, pki
from regwizard import lab as labmod
from regwizard.doctor import DoctorReport, diagnose, format_finding
from regwizard.facts.tls import served as live_probe
from regwizard.plan import CertificateSpec, Connection, Plan, Secrets, User, load_plan, save_plan

from .conftest import node_sh

pytestmark = pytest.mark.lab

DOMAIN = "repair.lab.test"
NODE0_SOCK = "unix:///var/run/docker.sock"
EXE = os.path.join(os.path.dirname(sys.executable), "regwizard")
HAND_USER, HAND_PW = "hand", "hand-password-42"
FIXER_PW = "fixer-password-42"


# ---------------------------------------------------------------- helpers


def n1(lab, script: str, check: bool = True) -> str:
    return node_sh(lab, "node1", script, check=check)


def node0_docker() -> docker.DockerClient:
    return docker.DockerClient(base_url=NODE0_SOCK, timeout=120)


def _edit_node0_hosts(keep_line, add: str = "") -> None:
    """Edit this machine's /etc/hosts in place (it may be a bind mount): only our lines."""
    path = Path("/etc/hosts")
    text = path.read_text()
    lines = [ln for ln in text.splitlines(keepends=True) if keep_line(ln)]
    if add:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(add + "\n")
    with path.open("r+") as fh:
        fh.write("".join(lines))
        fh.truncate()


def drop_node0_hosts() -> None:
    _edit_node0_hosts(lambda ln: DOMAIN not in ln)


def set_node0_hosts(ip: str) -> None:
    _edit_node0_hosts(lambda ln: DOMAIN not in ln, f"{ip} {DOMAIN}")


DNS_CACHE = 6.0  # dockerd re-reads /etc/hosts at most every 5 s


def _missed_lookup(err: str) -> bool:
    """dockerd's copy of /etc/hosts is older than our edit: "no such host" from a real
    resolver, "lookup NAME on 127.0.0.1:53: ... refused" from the lab's (nothing listens)."""
    return "no such host" in err or f"lookup {DOMAIN} on " in err


def docker_login_error(address: str, user: str, password: str) -> str:
    """What `docker login` on node0 says ("" when it works)."""
    c = node0_docker()
    deadline = time.monotonic() + DNS_CACHE
    try:
        while True:
            try:
                c.login(user, password, registry=address, reauth=True)
                return ""
            except docker.errors.APIError as e:
                err = str(e.explanation or e)
            if not _missed_lookup(err) or time.monotonic() > deadline:
                return err
            time.sleep(0.5)
    finally:
        c.close()


def build_and_push(
    address: str, repo: str, auth: dict | None = None, payload: bytes | None = None
) -> str:
    """Build a tiny (or ``payload``-sized) FROM scratch image on node0 and push it;
    returns the digest."""
    ref = f"{address}/{repo}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("Dockerfile", b"FROM scratch\nCOPY keep.txt /keep.txt\n"),
            ("keep.txt", payload or f"pushed before the repair to {ref}\n".encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    c = node0_docker()
    try:
        for item in c.api.build(fileobj=buf, custom_context=True, tag=ref, rm=True, decode=True):
            assert "error" not in item, item
        name, _, tag = ref.rpartition(":")
        deadline = time.monotonic() + DNS_CACHE
        while True:
            digest, errors = "", []
            for item in c.api.push(name, tag=tag, stream=True, decode=True, auth_config=auth):
                if "error" in item:
                    errors.append(item["error"])
                digest = (item.get("aux") or {}).get("Digest", digest)
            if not any(_missed_lookup(x) for x in errors) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert digest and not errors, errors
        return digest
    finally:
        c.close()


def pull(address: str, repo: str, auth: dict | None) -> str:
    """Remove the image locally, pull it again from node0; returns its repo digest."""
    ref = f"{address}/{repo}"
    c = node0_docker()
    try:
        try:
            c.images.remove(ref, force=True)
        except docker.errors.ImageNotFound:
            pass
        name, _, tag = ref.rpartition(":")
        errors = [
            item["error"]
            for item in c.api.pull(name, tag=tag, stream=True, decode=True, auth_config=auth)
            if "error" in item
        ]
        assert not errors, errors
        digests = c.images.get(ref).attrs.get("RepoDigests") or []
        return next(d.split("@", 1)[1] for d in digests if d.startswith(name + "@"))
    finally:
        c.close()


def cleanup(lab, plan: Plan, *extra_paths: str, volumes: tuple[str, ...] = ()) -> None:
    """Remove exactly what a tenant made: container, its files, trust, images, hosts lines."""
    reg = plan.registry
    mine = (reg.storage, reg.config_dir, *extra_paths)
    # never touch the lab's registry (/etc/regwizard, /opt/docker-image) or anyone else's
    mine = [p for p in mine if "/rp-" in p or "regwizard-r" in p]
    paths = " ".join(f"'{p}'" for p in mine)
    n1(lab, f"docker rm -f {reg.container} >/dev/null 2>&1; rm -rf {paths}", check=False)
    for v in volumes:
        n1(lab, f"docker volume rm {v} >/dev/null 2>&1", check=False)
    # our images by ID: verify leaves dangling probes (<none> tags) behind on clients
    images = (
        "docker images --format '{{.Repository}} {{.ID}}' | "
        f"awk '$1 ~ /^{reg.address.replace('.', '[.]')}[/]/ {{print $2}}' | sort -u | "
        "xargs -r docker rmi -f >/dev/null 2>&1; :"
    )
    trust = f"rm -rf '/etc/docker/certs.d/{reg.address}' /etc/docker/certs.d/{DOMAIN}; "
    for n in ("node1", "node2"):
        node_sh(lab, n, trust + images, check=False)
    subprocess.run(["sh", "-c", trust + images], check=False, capture_output=True)


def drop_hosts_everywhere(lab) -> None:
    drop_node0_hosts()
    for n in ("node1", "node2"):
        node_sh(lab, n, "sed -i '/repair\\.lab\\.test/d' /etc/hosts", check=False)


def tenant_plan(lab_plan: Plan, name: str, port: int) -> Plan:
    """A plan for an isolated registry on node1 (clients: this machine and node2)."""
    p = copy.deepcopy(lab_plan)
    reg = p.registry
    reg.domain, reg.port, reg.container = DOMAIN, port, f"rp-{name}"
    reg.config_dir, reg.storage = f"/etc/regwizard-repair/{name}", f"/opt/rp-{name}"
    p.certificate = CertificateSpec(
        mode="self-signed", country="CN", organization="repair lab", days=825, key="ecdsa-p256"
    )
    return p


def problems(report: DoctorReport) -> str:
    return "\n".join(line for f in report.problems for line in format_finding(f))


def only(report: DoctorReport, check: str, host: str | None = None, severity: str = "fail"):
    got = [f for f in report.of(check, host) if f.severity == severity]
    assert got, f"no {severity} {check}@{host} in:\n{problems(report)}"
    return got


def repair(plan: Plan, secrets: Secrets) -> DoctorReport:
    """apply (must verify), then the doctor must find nothing."""
    result = engine.run(plan, secrets)
    assert result.ok, result.failure
    after = diagnose(plan, secrets)
    assert after.exit_code == 0, (problems(after), after.incomplete)
    return after


def run_cli(*argv: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home))
    env.pop("REGWIZARD_PASSWORD", None)
    return subprocess.run(
        [EXE, *argv], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def write_cert(lab, plan: Plan, key_pem: bytes, cert_pem: bytes, restart: bool = True) -> None:
    """Put a certificate where the tenant's registry reads it, and (as the tutorial
    does) into every client's certs.d; restart the registry, which loads TLS at start."""
    reg = plan.registry
    certs = f"{reg.config_dir}/certs/current"
    labmod.node_exec(lab.nodes["node1"], ["sh", "-c", f"cat > {certs}/{DOMAIN}.key"], input=key_pem)
    labmod.node_exec(
        lab.nodes["node1"], ["sh", "-c", f"cat > {certs}/{DOMAIN}.crt"], input=cert_pem
    )
    trust = f"/etc/docker/certs.d/{reg.address}/ca.crt"
    for n in ("node1", "node2"):
        labmod.node_exec(lab.nodes[n], ["sh", "-c", f"cat > '{trust}'"], input=cert_pem)
    Path(trust).write_bytes(cert_pem)
    if restart:
        n1(lab, f"docker restart {reg.container} >/dev/null")
        # the registry needs a moment to listen again: wait until it serves this certificate
        deadline = time.monotonic() + 15
        while live_probe(DOMAIN, reg.ip, reg.port).pem != cert_pem:
            assert time.monotonic() < deadline, "the registry does not serve the new certificate"
            time.sleep(0.2)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def secrets(lab) -> Secrets:
    return Secrets(verify_password=lab.verify_password)


@pytest.fixture(scope="module")
def base(lab, lab_plan, secrets):
    """A healthy tenant made by regwizard: rp-base on node1:5501, clients node0 + node2."""
    plan = tenant_plan(lab_plan, "base", 5501)
    cleanup(lab, plan)
    result = engine.run(plan, secrets)
    assert result.ok, result.failure
    yield plan
    cleanup(lab, plan, "/etc/regwizard-repair")
    drop_hosts_everywhere(lab)


# ---------------------------------------------------------------- acceptance


def test_tutorial_registry_is_adopted_diagnosed_and_repaired_keeping_images(
    lab, lab_plan, tmp_path
):
    """The tutorial's own first run, then adopt -> doctor -> apply, on the CLI.

    Its mistakes: -e STORAGE_PATH (a v1 setting: the images land in an anonymous
    volume) and no auth. An image pushed before the repair must survive it.
    """
    n1ip = lab.nodes["node1"].ip
    address = f"{DOMAIN}:5500"
    adopted = Plan()
    adopted.registry.domain = DOMAIN
    adopted.registry.container, adopted.registry.port = "rp-tutorial", 5500
    adopted.registry.storage, adopted.registry.config_dir = "/opt/rp-image", "/nonexistent"
    volumes: list[str] = []
    try:
        # --- the tutorial, on node1 (~/rp-certs stands for its ~/certs), then node0
        n1(lab,
           "mkdir -p ~/rp-certs && cd ~ && openssl req -x509 -newkey rsa:2048 -nodes -sha256 "
           f"-days 365 -keyout rp-certs/{DOMAIN}.key -out rp-certs/{DOMAIN}.crt "
           f"-subj /CN={DOMAIN} -addext subjectAltName=DNS:{DOMAIN},IP:{n1ip} 2>/dev/null && "
           f"mkdir -p '/etc/docker/certs.d/{address}' && "
           f"cp rp-certs/{DOMAIN}.crt '/etc/docker/certs.d/{address}/ca.crt' && "
           f"echo '{n1ip} {DOMAIN}' >> /etc/hosts && "
           "docker run -d -p 5500:5000 --restart=always --name rp-tutorial "
           "-v /root/rp-certs:/certs -v /opt/rp-image:/opt/rp-image "
           "-e STORAGE_PATH=/opt/rp-image "
           f"-e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/{DOMAIN}.crt "
           f"-e REGISTRY_HTTP_TLS_KEY=/certs/{DOMAIN}.key registry:2 >/dev/null")  # fmt: skip
        crt = n1(lab, f"cat ~/rp-certs/{DOMAIN}.crt")
        os.makedirs(f"/etc/docker/certs.d/{address}", exist_ok=True)
        Path(f"/etc/docker/certs.d/{address}/ca.crt").write_text(crt)
        set_node0_hosts(n1ip)
        volumes = n1(lab, "docker inspect -f '{{range .Mounts}}{{.Name}} {{end}}' rp-tutorial")
        volumes = [v for v in volumes.split() if len(v) == 64]
        assert len(volumes) == 1, volumes  # the anonymous volume at /var/lib/registry
        # no auth in the tutorial's first run: anyone can push
        digest = build_and_push(address, "keep/me:1")

        # --- adopt: read-only, writes the plan of the intended setup
        plan_file = tmp_path / "plan.toml"
        before = n1(lab, "docker inspect -f '{{.Id}} {{.State.StartedAt}}' rp-tutorial")
        cp = run_cli(
            "adopt", f"root@{n1ip}", "--container", "rp-tutorial",
            "--key-file", lab.key_file, "--accept-host-key", lab.nodes["node1"].host_key,
            "-o", str(plan_file), home=tmp_path,
        )  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        assert "storage not persisted" in cp.stderr and "no auth" in cp.stderr, cp.stderr
        assert n1(lab, "docker inspect -f '{{.Id}} {{.State.StartedAt}}' rp-tutorial") == before
        adopted = load_plan(plan_file, validate=False)
        reg = adopted.registry
        assert (reg.domain, reg.ip, reg.port) == (DOMAIN, n1ip, 5500)
        assert (reg.container, reg.image, reg.storage) == (
            "rp-tutorial",
            "registry:2",
            "/opt/rp-image",
        )
        assert reg.config_dir.startswith("/etc/regwizard")  # ~/ (/root) is no config dir
        assert reg.config_dir != "/etc/regwizard"  # the lab's registry mounts that one
        assert adopted.certificate.key == "rsa-2048" and adopted.certificate.mode == "self-signed"
        assert adopted.host.host_key == lab.nodes["node1"].host_key  # pinned
        assert [c.address for c in adopted.clients] == ["local", n1ip]  # node1 trusts it too
        assert adopted.users == []  # no auth: nobody to keep

        # the wizard/user adds a login, as adopt's notes ask
        adopted.users = [User("fixer", htpasswd.hash_password(FIXER_PW))]
        adopted.verify.user = "fixer"
        save_plan(adopted, plan_file)
        pw = tmp_path / "pw"
        pw.write_text(FIXER_PW + "\n")

        # --- doctor: read-only, names no-auth and storage-not-persisted
        cp = run_cli("doctor", str(plan_file), "--json", home=tmp_path)
        assert cp.returncode == 1, cp.stdout + cp.stderr
        out = json.loads(cp.stdout)
        bad = {(f["check"], f["severity"]) for f in out["findings"]}
        assert ("auth", "fail") in bad and ("storage", "fail") in bad, cp.stdout
        storage = next(f for f in out["findings"] if f["check"] == "storage")
        assert "STORAGE_PATH" in storage["message"] and "anonymous volume" in storage["message"]
        assert "keep" in storage["evidence"]  # the pushed repository is in the volume
        auth = next(f for f in out["findings"] if f["check"] == "auth")
        assert "-> 200" in auth["evidence"]
        # what apply will do about it, step by step (the steps' own read-only checks)
        drift = " ".join(f["message"] for f in out["findings"] if f["check"] == "plan")
        assert "first copy its images from anonymous volume" in drift, drift
        assert n1(lab, "docker inspect -f '{{.Id}} {{.State.StartedAt}}' rp-tutorial") == before

        # --- apply: converges, copies the images out of the volume, verifies
        cp = run_cli("apply", str(plan_file), "--password-file", str(pw), home=tmp_path)
        assert cp.returncode == 0, cp.stderr
        assert "images copied from anonymous volume" in cp.stderr, cp.stderr
        assert FIXER_PW not in cp.stdout + cp.stderr

        # the image pushed before the repair is still there, now behind a login
        assert "401" in docker_login_error(address, "fixer", "not-the-password")
        auth_cfg = {"username": "fixer", "password": FIXER_PW}
        assert pull(address, "keep/me:1", auth_cfg) == digest
        env = n1(lab, "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' rp-tutorial")
        assert "STORAGE_PATH" not in env and "REGISTRY_" not in env  # all in config.yml
        args = n1(lab, "docker inspect -f '{{json .Args}}' rp-tutorial")
        assert json.loads(args) == ["serve", "/etc/distribution/config.yml"]
        mounts = n1(lab, "docker inspect -f '{{range .Mounts}}{{.Source}}:{{.Destination}} "
                    "{{end}}' rp-tutorial")  # fmt: skip
        assert "/opt/rp-image:/var/lib/registry" in mounts
        # the old anonymous volume is kept, data and all
        assert volumes[0] in n1(lab, "docker volume ls -q")

        # --- doctor again: healthy
        cp = run_cli("doctor", str(plan_file), "--password-file", str(pw), home=tmp_path)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "fail" not in cp.stdout.split() and "login as fixer works" in cp.stdout
    finally:
        cleanup(lab, adopted, "/root/rp-certs", volumes=tuple(volumes))
        n1(lab, "sed -i '/repair\\.lab\\.test/d' /etc/hosts", check=False)
        drop_node0_hosts()


# ---------------------------------------------------------------- the healthy baseline


def test_doctor_on_a_healthy_setup_finds_nothing(lab, base, secrets):
    t0 = time.monotonic()
    report = diagnose(base, secrets)
    secs = time.monotonic() - t0
    assert report.exit_code == 0, problems(report)
    checks = {f.check for f in report.findings}
    assert {"connect", "docker", "container", "restart", "tls", "port", "certificate", "auth",
            "login", "htpasswd", "storage", "hosts-file", "trust", "plan"} <= checks  # fmt: skip
    hosts = {f.host for f in report.of("trust")}
    assert hosts == {"this machine", "node1", "node2"}
    assert secs < 5, f"doctor took {secs:.1f}s"
    print(f"\ndoctor on a healthy setup: {secs:.2f}s, {len(report.findings)} checks")


# ---------------------------------------------------------------- 1, 3, 4: certificates


def _cert_case(kind: str, plan: Plan) -> tuple[bytes, bytes]:
    reg = plan.registry
    spec = copy.deepcopy(plan.certificate)
    now = dt.datetime.now(dt.UTC)
    if kind == "expiring":
        k, c = pki.make_server_cert(spec, reg.domain, reg.ip, days=10)
    elif kind == "expired":
        k, c = pki.make_server_cert(spec, reg.domain, reg.ip, days=365,
                                    now=now - dt.timedelta(days=400))  # fmt: skip
    elif kind == "san-mismatch":
        spec.common_name = "registry.other.test"
        k, c = pki.make_server_cert(spec, "registry.other.test", reg.ip)
    else:
        raise AssertionError(kind)
    return pki.key_to_pem(k), pki.cert_to_pem(c)


def test_cn_only_certificate(lab, base, secrets):
    """The tutorial's openssl command, verbatim: no SAN; Docker refuses it."""
    reg = base.registry
    certs = f"{reg.config_dir}/certs"
    n1(lab, f"cd {certs} && openssl req -newkey rsa:4096 -nodes -sha256 -keyout {DOMAIN}.key "
            f"-x509 -days 365 -out {DOMAIN}.crt -subj /C=CN/ST=JS/L=NJ/O=ITMUCH/CN={DOMAIN} "
            "2>/dev/null")  # fmt: skip
    cert = n1(lab, f"cat {certs}/{DOMAIN}.crt").encode()
    key = labmod.node_exec(lab.nodes["node1"], ["cat", f"{certs}/{DOMAIN}.key"]).stdout
    write_cert(lab, base, key, cert)
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "certificate", "node1")[0]
    assert f.evidence == pki.LEGACY_CN and "no subjectAltName" in f.message
    # the evidence is what Docker itself says
    assert "legacy Common Name field" in docker_login_error(reg.address, "demo", "x")
    repair(base, secrets)


@pytest.mark.parametrize("kind", ["expiring", "expired", "san-mismatch"])
def test_certificate_expiry_and_sans(lab, base, secrets, kind):
    reg = base.registry
    write_cert(lab, base, *_cert_case(kind, base))
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    if kind == "expiring":
        f = only(report, "certificate", "node1", "warn")[0]
        assert "expires on" in f.message and "renew" in f.message
    elif kind == "expired":
        f = only(report, "certificate", "node1")[0]
        assert f.evidence == pki.EXPIRED
        assert "certificate has expired" in docker_login_error(reg.address, "demo", "x")
    else:
        f = only(report, "certificate", "node1")[0]
        want = f"x509: certificate is valid for registry.other.test, not {DOMAIN}"
        assert f.evidence == want
        assert want in docker_login_error(reg.address, "demo", "x")
    assert "regwizard apply issues a new one" in f.fix
    repair(base, secrets)


# ---------------------------------------------------------------- 2: client trust


def test_trust_missing_or_misnamed(lab, base, secrets):
    reg = base.registry
    # node2: the directory without the port (Docker looks for repair.lab.test:5501)
    node_sh(lab, "node2", f"mv '/etc/docker/certs.d/{reg.address}' /etc/docker/certs.d/{DOMAIN}")
    # node0: the CA saved as ca.cert
    d = Path(f"/etc/docker/certs.d/{reg.address}")
    (d / "ca.crt").rename(d / "ca.cert")
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "trust", "node2")[0]
    assert "misnamed" in f.message and f"/etc/docker/certs.d/{DOMAIN}" in f.message
    assert f.evidence == "x509: certificate signed by unknown authority"
    f = only(report, "trust", "this machine")[0]
    want = "missing key ca.key for client certificate ca.cert"
    assert want in f.evidence
    assert want in docker_login_error(reg.address, "demo", lab.verify_password)
    repair(base, secrets)
    assert not (d / "ca.cert").exists() and (d / "ca.crt").exists()
    assert list(d.glob("ca.cert.bak-*"))  # moved aside, not deleted


# ---------------------------------------------------------------- 7: non-bcrypt htpasswd


def test_non_bcrypt_htpasswd_line(lab, base, secrets):
    reg = base.registry
    ht = f"{reg.config_dir}/auth/htpasswd"
    apr1 = n1(lab, f"openssl passwd -apr1 '{lab.verify_password}'").strip()
    n1(lab, f"sed -i 's|^demo:.*|demo:{apr1}|' {ht}")
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "htpasswd", "node1")[0]
    assert "demo (apr1-md5)" in f.message and "replaces demo" in f.fix
    login = only(report, "login", "node1")[0]
    assert "401 Unauthorized" in login.evidence
    assert "401" in docker_login_error(reg.address, "demo", lab.verify_password)
    repair(base, secrets)
    assert n1(lab, f"grep ^demo: {ht}").startswith("demo:$2")


# ---------------------------------------------------------------- 9: /etc/hosts


def test_hosts_entry_missing_or_wrong(lab, base, secrets):
    node_sh(lab, "node2", "sed -i '/repair\\.lab\\.test/d' /etc/hosts")
    set_node0_hosts("10.213.47.99")
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "hosts-file", "node2")[0]
    assert "not in /etc/hosts" in f.message and _missed_lookup(f.evidence)
    f = only(report, "hosts-file", "this machine")[0]
    assert "maps repair.lab.test to 10.213.47.99" in f.message
    repair(base, secrets)


# ---------------------------------------------------------------- 10: container state


def test_container_stopped_with_restart_policy_no(lab, base, secrets):
    name = base.registry.container
    n1(lab, f"docker update --restart=no {name} >/dev/null && docker stop {name} >/dev/null")
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "container", "node1")[0]
    assert f"{name} is exited" in f.message and f"docker start {name}" in f.fix
    f = only(report, "restart", "node1", "warn")[0]
    assert "'no'" in f.message
    repair(base, secrets)
    assert (
        n1(lab, f"docker inspect -f '{{{{.HostConfig.RestartPolicy.Name}}}}' {name}").strip()
        == "always"
    )


def test_container_crash_looping(lab, base, secrets):
    reg = base.registry
    n1(lab, f"mv {reg.config_dir}/certs/current/{DOMAIN}.crt /tmp/rp-base.crt.gone && "
            f"docker restart {reg.container} >/dev/null")  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = n1(
            lab, f"docker inspect -f '{{{{.State.Status}}}} {{{{.RestartCount}}}}' {reg.container}"
        )
        if state.split()[0] == "restarting" or int(state.split()[1]) >= 2:
            break
        time.sleep(0.3)
    report = diagnose(base, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "container", "node1")[0]
    assert "crash-looping" in f.message or "exited" in f.message, f
    assert DOMAIN + ".crt" in f.evidence  # its last log line names the missing file
    repair(base, secrets)
    n1(lab, "rm -f /tmp/rp-base.crt.gone", check=False)


# ---------------------------------------------------------------- 13: Docker unreachable


def test_docker_engine_unreachable_for_a_client(lab, base, secrets):
    """node2 reached as labuser without sudo: no access to the Docker socket."""
    plan = copy.deepcopy(base)
    n2 = lab.nodes["node2"]
    plan.clients[1] = Connection(
        address=n2.ip, user=labmod.LAB_USER, auth="key", key_file=lab.key_file,
        host_key=n2.host_key, label="node2",
    )  # fmt: skip
    report = diagnose(plan, secrets)
    assert report.exit_code == 1, (problems(report), report.incomplete)
    f = only(report, "docker", "node2")[0]
    assert "unreachable" in f.message and "Docker socket" in f.message, f
    assert "sudo" in f.fix
    # the fix is in the plan: sudo for that user
    plan.clients[1].sudo = True
    s = copy.deepcopy(secrets)
    s.sudo_passwords[n2.ip] = lab.user_password
    after = diagnose(plan, s)
    assert after.exit_code == 0, (problems(after), after.incomplete)


# ---------------------------------------------------------------- 8, 12: by hand, adopted


def test_hand_made_registry_single_file_htpasswd_and_port_mismatch(lab):
    """The tutorial's second run, done by hand with two more slips: the htpasswd file
    mounted on its own, and REGISTRY_HTTP_ADDR not matching -p. Adopt keeps its
    certificate and bcrypt users where they are."""
    n1ip = lab.nodes["node1"].ip
    address = f"{DOMAIN}:5502"
    hand_hash = htpasswd.hash_password(HAND_PW)
    adopted = Plan()
    adopted.registry.domain = DOMAIN
    adopted.registry.container, adopted.registry.port = "rp-hand", 5502
    adopted.registry.storage, adopted.registry.config_dir = "/opt/rp-hand", "/root/rp-hand"
    try:
        n1(lab,
           "mkdir -p /root/rp-hand/certs /root/rp-hand/auth /opt/rp-hand && cd /root/rp-hand && "
           "openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 "
           f"-keyout certs/{DOMAIN}.key -out certs/{DOMAIN}.crt -subj /CN={DOMAIN} "
           f"-addext subjectAltName=DNS:{DOMAIN},IP:{n1ip} 2>/dev/null && "
           f"printf '%s\\n' '{HAND_USER}:{hand_hash}' \"old:$(openssl passwd -apr1 old-pw)\" "
           "> auth/htpasswd && "
           f"grep -q {DOMAIN} /etc/hosts || echo '{n1ip} {DOMAIN}' >> /etc/hosts; "
           "docker run -d -p 5502:5000 --restart=always --name rp-hand "
           "-v /opt/rp-hand:/var/lib/registry -v /root/rp-hand/certs:/certs "
           "-v /root/rp-hand/auth/htpasswd:/auth/htpasswd "
           "-e REGISTRY_HTTP_ADDR=:5443 "
           f"-e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/{DOMAIN}.crt "
           f"-e REGISTRY_HTTP_TLS_KEY=/certs/{DOMAIN}.key "
           "-e REGISTRY_AUTH=htpasswd -e 'REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm' "
           "-e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd registry:2 >/dev/null")  # fmt: skip
        set_node0_hosts(n1ip)
        n1_conn = Connection(
            address=n1ip, key_file=lab.key_file, host_key=lab.nodes["node1"].host_key
        )
        from regwizard.adopt import adopt

        adoption = adopt(n1_conn, Secrets(), "rp-hand")
        adopted = adoption.plan
        text = "\n".join(adoption.notes)
        assert "port mismatch" in text and "single file" in text and "user old" in text, text
        reg = adopted.registry
        assert (reg.port, reg.config_dir, reg.storage) == (5502, "/root/rp-hand", "/opt/rp-hand")
        assert [(u.name, u.bcrypt) for u in adopted.users] == [(HAND_USER, hand_hash)]
        assert adopted.verify.user == HAND_USER
        secrets = Secrets(verify_password=HAND_PW)

        report = diagnose(adopted, secrets)
        assert report.exit_code == 1, (problems(report), report.incomplete)
        f = only(report, "port", n1ip)[0]
        assert "port mismatch" in f.message and "-p 5502:5000" in f.message
        assert f.evidence.endswith(("EOF", "connection reset by peer")), f.evidence
        assert "single file" in only(report, "htpasswd", n1ip, "warn")[0].message
        f = only(report, "htpasswd", n1ip)[0]
        assert "old (apr1-md5)" in f.message and "regwizard user hash old" in f.fix
        crt_before = n1(lab, f"cat /root/rp-hand/certs/{DOMAIN}.crt").encode()

        # the user follows the advice: a new password for old
        adopted.users.append(User("old", htpasswd.hash_password("old-password-42")))
        repair(adopted, secrets)
        # the certificate is kept (moved into certs/current/ as one pair), and served
        assert n1(lab, f"cat /root/rp-hand/certs/current/{DOMAIN}.crt").encode() == crt_before
        assert live_probe(DOMAIN, n1ip, 5502).pem == crt_before
        assert not docker_login_error(address, HAND_USER, HAND_PW)
    finally:
        cleanup(lab, adopted, "/root/rp-hand")
        n1(lab, "sed -i '/repair\\.lab\\.test/d' /etc/hosts", check=False)
        drop_node0_hosts()


# ---------------------------------------------------------------- 11: plain HTTP


def test_plain_http_registry(lab, lab_plan, secrets):
    plan = tenant_plan(lab_plan, "plain", 5503)
    plan.clients = plan.clients[:1]
    try:
        n1(lab, "mkdir -p /opt/rp-plain && docker run -d -p 5503:5000 --restart=always "
                "--name rp-plain -v /opt/rp-plain:/var/lib/registry registry:2 >/dev/null")  # fmt: skip
        set_node0_hosts(lab.nodes["node1"].ip)
        report = diagnose(plan, secrets)
        assert report.exit_code == 1, (problems(report), report.incomplete)
        f = only(report, "tls", "node1")[0]
        assert f.evidence.endswith("http: server gave HTTP response to HTTPS client"), f
        assert "server gave HTTP response to HTTPS client" in docker_login_error(
            plan.registry.address, "demo", "x"
        )
        only(report, "auth", "node1")
        repair(plan, secrets)
    finally:
        cleanup(lab, plan)
        n1(lab, "sed -i '/repair\\.lab\\.test/d' /etc/hosts", check=False)
