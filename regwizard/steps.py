"""The setup steps. Each is one small unit:

- ``check(ctx, host)`` reads the current state and changes nothing; it returns a
  ``Finding`` saying whether a change is needed, why, and the equivalent commands;
- ``apply(ctx, host, finding)`` changes things, only when check said so;
- ``verify(ctx, host)`` confirms the result (by default: check again, expect no change).

A rerun on a healthy setup therefore changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets as _secrets
import shlex
import socket
import ssl
import tarfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from regwizard import htpasswd, pki
from regwizard.diagnose import clean, explain
from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import Event, LogLine, Verification
from regwizard.plan import Plan, Secrets

REGISTRY_DATA = "/var/lib/registry"
LABEL_HASH = "io.regwizard.config-hash"
LABEL_MANAGED = "io.regwizard.managed"
PROBE_REPO = "regwizard/probe"
DOCKER_TIMEOUT = 60
HOSTS_CACHE_SECONDS = 5.2  # dockerd's resolver caches /etc/hosts for 5 s


class StepError(RegwizardError):
    pass


def explained(
    what: str,
    text: str,
    *,
    fix: str = "see the evidence",
    shown: str | None = None,
    evidence: str | None = None,
) -> StepError:
    """A StepError for an error Docker reported: the known cause and fix when
    ``diagnose`` recognises the text, else the text itself with ``fix``."""
    hint = explain(text)
    return StepError(
        f"{what}: {hint[0] if hint else (text if shown is None else shown)}",
        hint[1] if hint else fix,
        text if evidence is None else evidence,
    )


@dataclass
class Finding:
    needed: bool
    detail: str = ""
    commands: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)


@dataclass
class HostEntry:
    """One machine taking part in the run, with the roles it plays."""

    key: str
    label: str
    conn: object  # plan.Connection
    host: object = None  # hosts.Host once connected
    is_registry: bool = False
    is_client: bool = False
    facts: object = None


@dataclass
class Ctx:
    plan: Plan
    secrets: Secrets
    emit: Callable[[Event], None]
    cancel: threading.Event
    dry_run: bool = False
    hosts: list[HostEntry] = field(default_factory=list)
    # shared between steps
    trust_pem: bytes = b""
    cert_changed: bool = False
    verification: Verification | None = None
    # host key -> monotonic time its /etc/hosts was written in this run
    hosts_changed_at: dict[str, float] = field(default_factory=dict)

    @property
    def registry(self) -> HostEntry:
        return next(h for h in self.hosts if h.is_registry)

    @property
    def clients(self) -> list[HostEntry]:
        return [h for h in self.hosts if h.is_client]

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def log(self, step: str, entry: HostEntry, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.emit(LogLine(step, entry.label, line))

    # paths on the registry host
    @property
    def certs_dir(self) -> str:
        return f"{self.plan.registry.config_dir}/certs"

    @property
    def auth_dir(self) -> str:
        return f"{self.plan.registry.config_dir}/auth"

    @property
    def cert_path(self) -> str:
        return f"{self.certs_dir}/{self.plan.registry.domain}.crt"

    @property
    def key_path(self) -> str:
        return f"{self.certs_dir}/{self.plan.registry.domain}.key"

    @property
    def ca_path(self) -> str:
        return f"{self.certs_dir}/ca.crt"

    @property
    def ca_key_path(self) -> str:
        return f"{self.certs_dir}/ca.key"

    @property
    def htpasswd_path(self) -> str:
        return f"{self.auth_dir}/htpasswd"

    @property
    def secret_path(self) -> str:
        return f"{self.plan.registry.config_dir}/http-secret"

    @property
    def trust_dir(self) -> str:
        return f"/etc/docker/certs.d/{self.plan.registry.address}"


class Step:
    name = ""
    title = ""
    scope = "registry"  # registry | clients | all | verify

    def targets(self, ctx: Ctx) -> list[HostEntry]:
        if self.scope == "registry":
            return [ctx.registry]
        if self.scope == "clients":
            return ctx.clients
        if self.scope == "verify":
            return [ctx.clients[0]] if ctx.clients else [ctx.registry]
        return list(ctx.hosts)

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        raise NotImplementedError

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        raise NotImplementedError

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        f = self.check(ctx, e)
        if f.needed:
            raise StepError(
                f"{self.title} on {e.label}: still not as planned after the change ({f.detail})",
                "rerun; if it persists, check the host by hand",
            )


def _q(*argv: str) -> str:
    return shlex.join(argv)


def _backup(host, path: str, ctx: Ctx, step: str, e: HostEntry) -> None:
    b = host.backup(path)
    if b:
        ctx.log(step, e, f"backed up {path} -> {b}")


# ---------------------------------------------------------------- 1. preflight


def _publishes(container, port: int) -> bool:
    """Whether a container publishes ``port`` on the host."""
    ports = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    return any(str(b.get("HostPort")) == str(port) for bs in ports.values() for b in bs or [])


class Preflight(Step):
    name = "preflight"
    title = "Preflight"
    scope = "all"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        host = e.host
        facts = host.facts()
        e.facts = facts
        ctx.log(
            self.name,
            e,
            f"{facts.os or 'unknown OS'} {facts.arch}; Docker {facts.docker_version or '-'}; "
            f"{'root' if facts.is_root else ('sudo' if facts.sudo_ok else 'no root')}",
        )
        if not (facts.is_root or facts.sudo_ok):
            if e.conn.sudo:
                # sudo was asked for but failed: raise its own SudoFailed (wrong/missing
                # password, not in sudoers, not installed) instead of a generic message
                host.run(["true"])
            raise StepError(
                f"{e.label}: user {e.conn.user} is neither root nor allowed to sudo",
                "connect as root, or set sudo = true for a user in sudoers",
            )
        if not facts.docker_version:
            # docker_error reads "HOST: why; fix: what to do" when the host could tell
            why, _, fix = (facts.docker_error or "no answer").partition("; fix: ")
            why = why.removeprefix(f"{e.label}: ")
            raise StepError(
                f"{e.label}: the Docker engine is unreachable ({why})",
                fix
                or "install Docker (apt-get install docker.io) and start it (systemctl start docker)",
            )
        if e.is_registry:
            self._check_port(ctx, e)
            self._check_space(ctx, e)
        return Finding(False, f"Docker {facts.docker_version}, {facts.arch}")

    def _check_port(self, ctx: Ctx, e: HostEntry) -> None:
        reg = ctx.plan.registry
        client = e.host.docker(DOCKER_TIMEOUT)
        running = client.containers.list()
        for c in running:
            ports = (c.attrs.get("HostConfig") or {}).get("PortBindings") or {}
            for bindings in ports.values():
                for b in bindings or []:
                    if str(b.get("HostPort")) == str(reg.port) and c.name != reg.container:
                        raise StepError(
                            f"{e.label}: port {reg.port} is held by container {c.name!r}",
                            f"stop it (docker stop {c.name}) or choose another port in the plan",
                        )
        # a non-container process listening on the port (ours only excuses it when our
        # container publishes this very port: docker-proxy is then the listener)
        r = e.host.run(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"], check=False)
        hexport = f":{reg.port:04X}"
        ours = any(c.name == reg.container and _publishes(c, reg.port) for c in running)
        for line in r.stdout.decode(errors="replace").splitlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[1].endswith(hexport) and parts[3] == "0A" and not ours:
                raise StepError(
                    f"{e.label}: port {reg.port} is already in use by "
                    f"{self._port_holder(e, reg.port) or 'another process'}",
                    f"stop it (ss -ltnp 'sport = :{reg.port}') or choose another port in the plan",
                )

    @staticmethod
    def _port_holder(e: HostEntry, port: int) -> str:
        """``process NAME (pid N)`` listening on the port, from ss -ltnp; "" if unknown."""
        import re

        try:
            r = e.host.run(["ss", "-ltnp", f"sport = :{port}"], check=False, timeout=15)
        except RegwizardError:
            return ""
        m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', r.stdout.decode(errors="replace"))
        return f"process {m.group(1)!r} (pid {m.group(2)})" if m else ""

    def _check_space(self, ctx: Ctx, e: HostEntry) -> None:
        free = e.host.free_bytes(ctx.plan.registry.storage)
        if free is not None:
            ctx.log(self.name, e, f"free at {ctx.plan.registry.storage}: {free // 2**20} MiB")
            if free < 64 * 2**20:
                raise StepError(
                    f"{e.label}: only {free // 2**20} MiB free at {ctx.plan.registry.storage}",
                    "free some space or choose another storage path",
                )


# ---------------------------------------------------------------- 2. /etc/hosts


class HostsFile(Step):
    name = "hosts-file"
    title = "/etc/hosts entry"
    scope = "all"

    def targets(self, ctx: Ctx) -> list[HostEntry]:
        reg = ctx.plan.registry
        if not reg.manage_hosts_file or not reg.ip:
            return []
        return list(ctx.hosts)

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        reg = ctx.plan.registry
        text = (e.host.read_file("/etc/hosts") or b"").decode(errors="replace")
        wrong = []
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and reg.domain in fields[1:]:
                if fields[0] == reg.ip:
                    return Finding(False, f"{reg.domain} -> {reg.ip} already in /etc/hosts")
                wrong.append(fields[0])
        if not wrong:
            r = e.host.run(["getent", "ahosts", reg.domain], check=False, timeout=15)
            addrs = {ln.split()[0] for ln in r.stdout.decode().splitlines() if ln.strip()}
            if reg.ip in addrs:
                return Finding(False, f"{reg.domain} already resolves to {reg.ip}")
        why = f"maps to {', '.join(wrong)}" if wrong else "missing"
        return Finding(
            True,
            f"{reg.domain} {why}; want {reg.ip}",
            (f"echo {shlex.quote(f'{reg.ip} {reg.domain}')} >> /etc/hosts",),
            {"text": text, "wrong": wrong},
        )

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        reg = ctx.plan.registry
        lines = []
        for line in f.data["text"].splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and reg.domain in fields[1:]:
                rest = [n for n in fields[1:] if n != reg.domain]
                if rest:
                    lines.append("\t".join([fields[0], *rest]))
                continue  # drop the wrong mapping for our domain
            lines.append(line)
        lines.append(f"{reg.ip}\t{reg.domain}\t# regwizard")
        _backup(e.host, "/etc/hosts", ctx, self.name, e)
        # in place: /etc/hosts is often a bind mount, where rename fails (EBUSY)
        e.host.write_in_place("/etc/hosts", ("\n".join(lines) + "\n").encode())
        ctx.hosts_changed_at[e.key] = time.monotonic()
        return f"{reg.domain} -> {reg.ip}"


# ---------------------------------------------------------------- 3. certificate


class Certificate(Step):
    name = "certificate"
    title = "TLS certificate"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        plan, h = ctx.plan, e.host
        spec, reg = plan.certificate, plan.registry
        cert = h.read_file(ctx.cert_path)
        key = h.read_file(ctx.key_path)
        reasons: list[str] = []
        if spec.mode == "provided":
            want_cert, want_key = _read_local(spec.cert_file), _read_local(spec.key_file)
            problems = pki.validate_provided(want_cert, want_key, reg.domain, reg.ip)
            if problems:
                raise StepError(
                    f"the provided certificate does not fit: {'; '.join(problems)}",
                    "give a certificate+key pair whose SANs cover the domain and IP",
                )
            ctx.trust_pem = want_cert
            if cert != want_cert or key != want_key:
                return Finding(
                    True,
                    "install the provided certificate",
                    data={"cert": want_cert, "key": want_key},
                )
            return Finding(False, "the provided certificate is installed")
        if cert is None or key is None:
            reasons.append("no certificate yet")
        else:
            try:
                info = pki.inspect_cert(cert)
            except Exception:  # noqa: BLE001 - unreadable = replace
                info = None
                reasons.append("the certificate on the host cannot be read")
            if info is not None:
                reasons += pki.cert_problems(
                    info, domain=reg.domain, ip=reg.ip, extra_sans=spec.extra_sans
                )
                if not pki.key_matches_cert(key, cert):
                    reasons.append("the key does not match the certificate")
                want_cn = pki.subject_cn(spec, reg.domain)
                if info.subject.get("CN", "") != want_cn:
                    reasons.append(f"CN is {info.subject.get('CN')!r}, plan says {want_cn!r}")
                if info.key_type != spec.key:
                    reasons.append(f"key is {info.key_type}, plan says {spec.key}")
        ca_cert = ca_key = None
        if spec.mode == "local-ca":
            ca_cert, ca_key = h.read_file(ctx.ca_path), h.read_file(ctx.ca_key_path)
            ca_ok = bool(ca_cert and ca_key)
            if ca_ok:
                try:
                    cinfo = pki.inspect_cert(ca_cert)
                    ca_ok = (
                        cinfo.is_ca
                        and cinfo.days_left > 30
                        and pki.key_matches_cert(ca_key, ca_cert)
                    )
                except Exception:  # noqa: BLE001
                    ca_ok = False
            if not ca_ok:
                ca_cert = ca_key = None
                reasons.append("no usable local CA yet")
            elif cert and not reasons and not pki.verify_signed_by(cert, ca_cert):
                reasons.append("the certificate is not signed by the local CA")
            ctx.trust_pem = ca_cert or b""
        else:
            ctx.trust_pem = cert or b""
        if reasons:
            cmds = (
                _q("mkdir", "-p", ctx.certs_dir),
                "openssl req -x509 -newkey rsa:4096 -nodes -sha256 -days "
                f"{spec.days} -keyout {shlex.quote(ctx.key_path)} -out {shlex.quote(ctx.cert_path)} "
                f"-subj {shlex.quote('/CN=' + (spec.common_name or reg.domain))} "
                f"-addext {shlex.quote('subjectAltName=' + _san_text(plan))}",
            )
            return Finding(True, "; ".join(reasons), cmds, {"ca_cert": ca_cert, "ca_key": ca_key})
        return Finding(False, f"valid, {info.days_left} days left")  # type: ignore[union-attr]

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        plan, h = ctx.plan, e.host
        spec, reg = plan.certificate, plan.registry
        h.makedirs(plan.registry.config_dir, 0o700)
        h.makedirs(ctx.certs_dir, 0o700)
        if spec.mode == "provided":
            cert, key = f.data["cert"], f.data["key"]
            detail = "installed the provided certificate"
        else:
            issuer_key = issuer_cert = None
            if spec.mode == "local-ca":
                if f.data.get("ca_cert"):
                    ca_cert_pem, ca_key_pem = f.data["ca_cert"], f.data["ca_key"]
                else:
                    k, c = pki.make_ca(spec)
                    ca_key_pem, ca_cert_pem = pki.key_to_pem(k), pki.cert_to_pem(c)
                    for p in (ctx.ca_path, ctx.ca_key_path):
                        _backup(h, p, ctx, self.name, e)
                    h.write_file(ctx.ca_key_path, ca_key_pem, 0o600)
                    h.write_file(ctx.ca_path, ca_cert_pem, 0o644)
                    ctx.log(self.name, e, f"created local CA {ctx.ca_path}")
                issuer_key, issuer_cert = pki.load_key(ca_key_pem), pki.load_cert(ca_cert_pem)
                ctx.trust_pem = ca_cert_pem
            k, c = pki.make_server_cert(
                spec, reg.domain, reg.ip, spec.extra_sans,
                issuer_key=issuer_key, issuer_cert=issuer_cert,
            )  # fmt: skip
            key, cert = pki.key_to_pem(k), pki.cert_to_pem(c)
            detail = f"issued for {_san_text(plan)}, {spec.days} days"
        for p in (ctx.cert_path, ctx.key_path):
            _backup(h, p, ctx, self.name, e)
        h.write_file(ctx.key_path, key, 0o600)
        h.write_file(ctx.cert_path, cert, 0o644)
        if spec.mode != "local-ca":
            ctx.trust_pem = cert
        ctx.cert_changed = True
        return detail


def _read_local(path: str) -> bytes:
    import os

    try:
        with open(os.path.expanduser(path), "rb") as fh:
            return fh.read()
    except OSError as ex:
        raise StepError(f"cannot read {path}: {ex.strerror}", "check the path in the plan") from ex


def _san_text(plan: Plan) -> str:
    reg = plan.registry
    sans = [f"DNS:{reg.domain}"] + ([f"IP:{reg.ip}"] if reg.ip else [])
    for s in plan.certificate.extra_sans:
        sans.append(("IP:" if _is_ip(s) else "DNS:") + s)
    return ",".join(sans)


def _is_ip(s: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- 4. trust


class Trust(Step):
    name = "trust"
    title = "Docker trust (certs.d)"
    scope = "all"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        if not ctx.trust_pem:
            if ctx.dry_run:
                return Finding(True, "the certificate will be created first")
            raise StepError("no certificate to trust yet", "run the certificate step first")
        path = f"{ctx.trust_dir}/ca.crt"
        have = e.host.read_file(path)
        stray = stray_certs_d_files(e.host, ctx.trust_dir)
        if have == ctx.trust_pem and not stray:
            return Finding(False, f"{path} is current")
        cmds: tuple[str, ...] = ()
        why = []
        if have != ctx.trust_pem:
            why.append(f"{path} {'missing' if have is None else 'differs'}")
            cmds = (
                _q("mkdir", "-p", ctx.trust_dir),
                _q("scp", f"REGISTRY:{ctx.ca_path if ctx.plan.certificate.mode == 'local-ca' else ctx.cert_path}", path),
            )  # fmt: skip
        for name, err in stray:
            why.append(f"{name} breaks the directory ({err})")
            cmds += (_q("mv", f"{ctx.trust_dir}/{name}", f"{ctx.trust_dir}/{name}.bak"),)
        return Finding(True, "; ".join(why), cmds, {"write": have != ctx.trust_pem, "stray": stray})

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        path = f"{ctx.trust_dir}/ca.crt"
        done = []
        e.host.makedirs(ctx.trust_dir, 0o755)
        if f.data.get("write", True):
            _backup(e.host, path, ctx, self.name, e)
            e.host.write_file(path, ctx.trust_pem, 0o644)
            done.append(f"wrote {path} (read per connection: no Docker restart)")
        for name, _err in f.data.get("stray", []):
            stray = f"{ctx.trust_dir}/{name}"
            _backup(e.host, stray, ctx, self.name, e)  # NAME.bak-DATE: Docker ignores it
            e.host.run(["rm", "-f", "--", stray])
            done.append(f"moved {name} aside (a CA file must end in .crt)")
        return "; ".join(done)


def stray_certs_d_files(host, trust_dir: str) -> list[tuple[str, str]]:
    """Files in a certs.d directory that make Docker refuse it: (name, Docker's error).

    Docker reads ``*.crt`` as CAs and ``*.cert`` + ``*.key`` as a client certificate
    pair; a ``.cert`` without its ``.key`` (a CA saved as ca.cert) or the reverse fails
    every connection to that registry.
    """
    r = host.run(
        ["sh", "-c", 'cd -- "$1" 2>/dev/null && ls -1A', "sh", trust_dir], check=False, timeout=30
    )
    names = set(r.stdout.decode(errors="replace").split("\n")) - {""}
    out = []
    for n in sorted(names):
        if n.endswith(".cert") and n[: -len(".cert")] + ".key" not in names:
            key = n[: -len(".cert")] + ".key"
            out.append(
                (n, f"missing key {key} for client certificate {n}. "
                    "CA certificates must use the extension .crt")
            )  # fmt: skip
        elif n.endswith(".key") and n[: -len(".key")] + ".cert" not in names:
            out.append((n, f"missing client certificate {n[: -len('.key')]}.cert for key {n}"))
    return out


# ---------------------------------------------------------------- 5. htpasswd


class Htpasswd(Step):
    name = "htpasswd"
    title = "htpasswd users (bcrypt)"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        text = (e.host.read_file(ctx.htpasswd_path) or b"").decode(errors="replace")
        res = htpasswd.merge(text, ctx.plan.users, ctx.plan.remove_users)
        if res.non_bcrypt:
            ctx.log(
                self.name,
                e,
                "warning: non-bcrypt lines (the registry ignores them, login gets 401): "
                + ", ".join(res.non_bcrypt),
            )
        if not res.changed:
            return Finding(False, f"{len(ctx.plan.users)} user(s) current")
        parts = []
        for label, names in (("add", res.added), ("update", res.updated), ("remove", res.removed)):
            if names:
                parts.append(f"{label} {', '.join(names)}")
        return Finding(
            True,
            "; ".join(parts) or "rewrite",
            tuple(
                f'htpasswd -Bb {shlex.quote(ctx.htpasswd_path)} {shlex.quote(u.name)} "$PASSWORD"'
                for u in ctx.plan.users
            ),
            {"text": res.text},
        )

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        e.host.makedirs(ctx.plan.registry.config_dir, 0o700)
        e.host.makedirs(ctx.auth_dir, 0o700)
        _backup(e.host, ctx.htpasswd_path, ctx, self.name, e)
        # atomic rename; the auth *directory* is mounted, so the registry sees the new file
        e.host.write_file(ctx.htpasswd_path, f.data["text"].encode(), 0o600)
        return f.detail


# ---------------------------------------------------------------- 6. storage


class Storage(Step):
    name = "storage"
    title = "Storage directory"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        path = ctx.plan.registry.storage
        if e.host.exists(path):
            return Finding(False, f"{path} exists (data is never moved or deleted)")
        return Finding(True, f"create {path}", (_q("mkdir", "-p", path),))

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        e.host.makedirs(ctx.plan.registry.storage, 0o755)
        return f"created {ctx.plan.registry.storage}"


# ---------------------------------------------------------------- 7. image


class Image(Step):
    name = "image"
    title = "Registry image"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        import docker.errors

        image = ctx.plan.registry.image
        try:
            e.host.docker(DOCKER_TIMEOUT).images.get(image)
            return Finding(False, f"{image} present")
        except docker.errors.ImageNotFound:
            pass
        archive = ctx.plan.registry.image_archive
        if archive:
            return Finding(
                True, f"load {image} from {archive}", (f"docker load < {shlex.quote(archive)}",)
            )
        return Finding(True, f"pull {image}", (_q("docker", "pull", image),))

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        image = ctx.plan.registry.image
        archive = ctx.plan.registry.image_archive
        client = e.host.docker(600)
        if archive:
            import os

            path = os.path.expanduser(archive)
            try:
                size = os.path.getsize(path)
                with open(path, "rb") as fh:
                    ctx.log(self.name, e, f"loading {archive} ({size // 2**20} MiB)")
                    loaded = client.images.load(fh)
            except OSError as ex:
                raise StepError(
                    f"cannot read the image archive {archive}: {ex.strerror}",
                    "give the path of a `docker save` tar on this machine",
                ) from ex
            tags = [t for img in loaded for t in img.tags]
            ctx.log(self.name, e, f"loaded {', '.join(tags) or 'image'}")
            if image not in tags:
                raise StepError(
                    f"{archive} does not contain {image} (it has {', '.join(tags) or 'no tags'})",
                    f"save the right image: docker save {image} -o {archive}",
                )
            return f"loaded {image} from {archive}"
        repo, _, tag = (
            image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        )
        last = 0.0
        try:
            for item in client.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                if "error" in item:
                    raise StepError(
                        f"pulling {image} failed: {clean(str(item['error']))}",
                        "check the host's network, or set image_archive to a `docker save` tar",
                    )
                if time.monotonic() - last > 1 or "progress" not in item:
                    last = time.monotonic()
                    ctx.log(
                        self.name, e, clean(f"{item.get('status', '')} {item.get('progress', '')}")
                    )
        except StepError:
            raise
        except Exception as ex:  # noqa: BLE001
            raise StepError(
                f"pulling {image} failed: {clean(str(ex))}",
                "check the host's network, or set image_archive to a `docker save` tar",
            ) from ex
        return f"pulled {image}"


# ---------------------------------------------------------------- 8. container


def desired_container(ctx: Ctx, http_secret: str) -> dict:
    reg, plan = ctx.plan.registry, ctx.plan
    env = {
        "REGISTRY_HTTP_ADDR": "0.0.0.0:5000",
        "REGISTRY_HTTP_TLS_CERTIFICATE": f"/certs/{reg.domain}.crt",
        "REGISTRY_HTTP_TLS_KEY": f"/certs/{reg.domain}.key",
        "REGISTRY_AUTH": "htpasswd",
        "REGISTRY_AUTH_HTPASSWD_REALM": reg.realm,
        "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": REGISTRY_DATA,
        "REGISTRY_HTTP_SECRET": http_secret,
    }
    volumes = {
        reg.storage: {"bind": REGISTRY_DATA, "mode": "rw"},
        ctx.certs_dir: {"bind": "/certs", "mode": "ro"},
        ctx.auth_dir: {"bind": "/auth", "mode": "ro"},
    }
    spec = {
        "image": reg.image,
        "name": reg.container,
        "env": env,
        "volumes": volumes,
        "ports": {"5000/tcp": reg.port},
        "restart_policy": {"Name": "always"},
        "cert_mode": plan.certificate.mode,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    spec["labels"] = {LABEL_MANAGED: "true", LABEL_HASH: digest}
    return spec


def docker_run_command(ctx: Ctx, secret_placeholder: str = "$(cat http-secret)") -> str:
    spec = desired_container(ctx, secret_placeholder)
    argv = ["docker", "run", "-d", "--name", spec["name"], "--restart=always"]
    argv += ["-p", f"{ctx.plan.registry.port}:5000"]
    for src, v in spec["volumes"].items():
        argv += ["-v", f"{src}:{v['bind']}" + (":ro" if v["mode"] == "ro" else "")]
    for k, val in spec["env"].items():
        if k != "REGISTRY_HTTP_SECRET":
            argv += ["-e", f"{k}={val}"]
    return (
        shlex.join(argv)
        + f' -e REGISTRY_HTTP_SECRET="{secret_placeholder}" '
        + shlex.quote(spec["image"])
    )


class Container(Step):
    name = "container"
    title = "Registry container"

    def _secret(self, ctx: Ctx, e: HostEntry, create: bool) -> str:
        raw = e.host.read_file(ctx.secret_path)
        if raw and raw.strip():
            return raw.decode().strip()
        if not create:
            return ""
        value = _secrets.token_hex(32)
        e.host.makedirs(ctx.plan.registry.config_dir, 0o700)
        e.host.write_file(ctx.secret_path, value.encode() + b"\n", 0o600)
        return value

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        import docker.errors

        client = e.host.docker(DOCKER_TIMEOUT)
        secret = self._secret(ctx, e, create=False)
        want = desired_container(ctx, secret or "-")
        cmds = (_q("docker", "rm", "-f", want["name"]), docker_run_command(ctx))
        try:
            c = client.containers.get(want["name"])
        except docker.errors.NotFound:
            return Finding(True, f"create {want['name']}", cmds, {"action": "create"})
        labels = c.attrs.get("Config", {}).get("Labels") or {}
        if not secret or labels.get(LABEL_HASH) != want["labels"][LABEL_HASH]:
            why = (
                "not made by regwizard" if LABEL_MANAGED not in labels else "configuration differs"
            )
            data: dict = {"action": "recreate"}
            detail = f"recreate {c.name}: {why}"
            mig = _data_migration(ctx, e, c)
            if mig:
                data["migrate"] = mig
                detail += (
                    f"; first copy its images from {mig['what']} to {ctx.plan.registry.storage}"
                )
                cmds = (mig["command"], *cmds)
            return Finding(True, detail, cmds, data)
        c.reload()
        policy = ((c.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        fix_policy = policy != "always"
        pol_cmd = (_q("docker", "update", "--restart=always", c.name),) if fix_policy else ()
        pol_text = f"; restart policy {policy} -> always" if fix_policy else ""
        if c.status == "restarting":
            return Finding(
                True, f"restart {c.name}: it is crash-looping{pol_text}",
                (*pol_cmd, _q("docker", "restart", c.name)), {"action": "restart", "policy": fix_policy},
            )  # fmt: skip
        if c.status != "running":
            return Finding(
                True,
                f"start {c.name} (it is {c.status}){pol_text}",
                (*pol_cmd, _q("docker", "start", c.name)),
                {"action": "start", "policy": fix_policy},
            )
        if ctx.cert_changed:
            return Finding(
                True, f"restart: the certificate changed (TLS is loaded at start){pol_text}",
                (*pol_cmd, _q("docker", "restart", c.name)), {"action": "restart", "policy": fix_policy},
            )  # fmt: skip
        if fix_policy:
            return Finding(
                True, f"restart policy of {c.name} is {policy}: set always (survives reboots)",
                pol_cmd, {"action": "policy", "policy": True},
            )  # fmt: skip
        return Finding(False, f"{c.name} running as planned")

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        import docker.errors

        client = e.host.docker(120)
        name = ctx.plan.registry.container
        action = f.data["action"]
        if action in ("start", "restart", "policy"):
            c = client.containers.get(name)
            done = []
            if f.data.get("policy"):
                c.update(restart_policy={"Name": "always", "MaximumRetryCount": 0})
                done.append("set restart policy always")
            if action != "policy":
                (c.start if action == "start" else c.restart)()
                ctx.cert_changed = False  # the running process now holds the new certificate
                done.append(f"{action}ed {name}")
            return "; ".join(done)
        secret = self._secret(ctx, e, create=True)
        want = desired_container(ctx, secret)
        kept = ""
        if action == "recreate":
            try:
                old = client.containers.get(name)
            except docker.errors.NotFound:
                old = None
            if old is not None:
                mig = f.data.get("migrate")
                if mig:
                    _migrate_data(ctx, e, old, mig)
                ctx.log(self.name, e, f"removing old container {name} (its volumes are kept)")
                old.remove(force=True, v=False)  # never delete data volumes
                if mig and mig.get("volume"):
                    kept = mig["volume"]
                    ctx.log(
                        self.name,
                        e,
                        f"kept the old volume {kept}: nothing was deleted; remove it yourself "
                        f"once satisfied (docker volume rm {kept})",
                    )
        try:
            c = client.containers.run(
                want["image"],
                name=want["name"],
                detach=True,
                environment=want["env"],
                volumes=want["volumes"],
                ports=want["ports"],
                restart_policy=want["restart_policy"],
                labels=want["labels"],
            )
        except docker.errors.APIError as ex:
            msg = clean(str(ex.explanation or ex))
            raise explained("starting the registry container failed", msg) from ex
        ctx.cert_changed = False
        time.sleep(0.5)
        c.reload()
        if c.status != "running":
            logs = c.logs(tail=20).decode(errors="replace")
            raise StepError(
                f"the registry container exited right after start ({c.status})",
                "see its last log lines",
                clean(logs),
            )
        if f.data.get("migrate"):
            return f"{action}d {name}; images copied from {f.data['migrate']['what']}" + (
                f" (old volume {kept[:12]} kept)" if kept else ""
            )
        return f"{action}d {name}"


def _data_migration(ctx: Ctx, e: HostEntry, c) -> dict | None:
    """Where an existing container keeps its images, when that is not the plan's storage.

    The tutorial's ``-e STORAGE_PATH`` (a v1 setting) leaves them in an anonymous volume
    at /var/lib/registry; others bind another host dir, or nothing (the writable layer).
    Returns None when there is nothing to copy.
    """
    from regwizard.adopt import data_mount, is_anonymous_volume

    root, src, m = data_mount(c.attrs)
    dst = ctx.plan.registry.storage.rstrip("/")
    if m is None:
        return {
            "kind": "layer",
            "root": root,
            "what": f"{c.name}'s writable layer ({root})",
            "command": _q("docker", "cp", f"{c.name}:{root}/.", f"{dst}/"),
        }
    if not src or src.rstrip("/") == dst:
        return None
    has_data = e.host.run(["test", "-d", f"{src}/docker"], check=False, timeout=30).rc == 0
    if not has_data:
        return None
    vol = m.get("Name", "") if m.get("Type") == "volume" else ""
    if vol:
        what = f"{'anonymous ' if is_anonymous_volume(m) else ''}volume {vol[:12]} ({src})"
    else:
        what = src
    return {
        "kind": m.get("Type", ""),
        "root": root,
        "source": src,
        "volume": vol,
        "what": what,
        "command": _q("cp", "-a", f"{src}/.", f"{dst}/"),
    }


def _migrate_data(ctx: Ctx, e: HostEntry, old, mig: dict) -> None:
    """Copy the old container's images into the plan's storage; never delete the source.

    The old container is stopped first (no upload in flight) and started again when the
    copy fails. Tags already in the destination are backed up, then the old registry's
    win: it is the one clients used.
    """
    h, dst = e.host, ctx.plan.registry.storage.rstrip("/")
    h.makedirs(dst, 0o755)
    old.reload()
    was_running = old.status in ("running", "restarting")
    if was_running:
        ctx.log("container", e, f"stopping {old.name} so its images do not change while copied")
        old.stop(timeout=15)
    try:
        repos = f"{dst}/docker/registry/v2/repositories"
        if h.exists(repos):
            _backup(h, repos, ctx, "container", e)
        ctx.log("container", e, f"copying images from {mig['what']} to {dst}")
        if mig["kind"] == "layer":
            argv = ["docker", "cp", f"{old.name}:{mig['root']}/.", f"{dst}/"]
            r = h.run(argv, timeout=3600, check=False)
            err = r.stderr.decode(errors="replace")
            if r.rc != 0 and "could not find the file" not in err.lower():
                raise StepError(
                    f"copying the images out of {old.name} failed: {clean(err, 200)}",
                    "check free space in the storage path, then rerun",
                    clean(err),
                )
        else:
            h.run(["cp", "-a", "--", f"{mig['source']}/.", f"{dst}/"], timeout=3600)
    except BaseException:
        if was_running:
            try:
                old.start()
            except Exception:  # noqa: BLE001 - the copy error is the one to report
                pass
        raise


# ---------------------------------------------------------------- 9. health


def https_get(
    ctx: Ctx,
    path: str,
    auth: tuple[str, str] | None = None,
    method: str = "GET",
    timeout: float = 5,
) -> tuple[int, dict[str, str], bytes]:
    """An HTTPS request to the registry from this machine, checked against our trust anchor."""
    import base64
    import http.client

    reg = ctx.plan.registry
    sslctx = ssl.create_default_context(cadata=ctx.trust_pem.decode())
    target = reg.ip or reg.domain

    class Conn(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection((target, reg.port), timeout)
            # as http.client does: without it Nagle and delayed ACK add ~40 ms per request
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sslctx.wrap_socket(sock, server_hostname=reg.domain)

    conn = Conn(reg.domain, reg.port, timeout=timeout, context=sslctx)
    headers = {"User-Agent": "regwizard"}
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(65536)
    finally:
        conn.close()


class Health(Step):
    name = "health"
    title = "Registry answers over TLS"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        try:
            status, headers, _ = https_get(ctx, "/v2/")
        except Exception as ex:  # noqa: BLE001
            return Finding(True, f"not answering yet: {clean(str(ex), 200)}")
        ok = status == 401 and "registry/2.0" in headers.get("docker-distribution-api-version", "")
        if ok and "basic" in headers.get("www-authenticate", "").lower():
            return Finding(
                False, "GET /v2/ -> 401 with Docker-Distribution-API-Version: registry/2.0"
            )
        return Finding(True, f"GET /v2/ -> {status} (expected 401 with auth on)")

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        deadline = time.monotonic() + 30
        last = f.detail
        while time.monotonic() < deadline:
            ctx.check_cancel()
            again = self.check(ctx, e)
            if not again.needed:
                return again.detail
            last = again.detail
            time.sleep(0.3)
        logs = ""
        try:
            c = e.host.docker(DOCKER_TIMEOUT).containers.get(ctx.plan.registry.container)
            logs = c.logs(tail=15).decode(errors="replace")
        except Exception:  # noqa: BLE001
            pass
        raise explained(
            f"the registry does not answer correctly on {ctx.plan.registry.address}",
            last,
            fix="check the container logs, the port and the certificate",
            evidence=clean(logs or last),
        )


# ---------------------------------------------------------------- 10. verification


def _probe_context(run_id: str) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            (
                "Dockerfile",
                b"FROM scratch\nCOPY probe.txt /probe.txt\nLABEL io.regwizard.probe=true\n",
            ),
            ("probe.txt", f"regwizard verification {run_id}\n".encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _push(client, ref: str, auth: dict | None) -> tuple[str, str]:
    """Push; returns (digest, error). docker-py reports failures inside the stream."""
    repo, _, tag = ref.rpartition(":")
    digest, error = "", ""
    for item in client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
        if "errorDetail" in item or "error" in item:
            error = str((item.get("errorDetail") or {}).get("message") or item.get("error"))
        aux = item.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
    return digest, error


def _await_resolver(ctx: Ctx, step: str, e: HostEntry) -> None:
    """Wait until this client's dockerd sees the /etc/hosts entry this run wrote.

    dockerd (Go's resolver) trusts its copy of /etc/hosts for 5 s after it last checked
    the file: a name added within that window kept failing with "no such host" for up to
    5 s. Only clients whose file changed wait, and only what is left of the window; the
    setup steps and the probe build run meanwhile.
    """
    changed = ctx.hosts_changed_at.get(e.key)
    wait = changed + HOSTS_CACHE_SECONDS - time.monotonic() if changed else 0.0
    if wait > 0:
        ctx.log(step, e, f"waiting {wait:.1f}s: Docker re-reads /etc/hosts every 5 s")
        if ctx.cancel.wait(wait):
            raise Cancelled()


def _stale_lookup(ctx: Ctx, err: str) -> bool:
    """A lookup failure for our domain although this run keeps it in /etc/hosts."""
    reg = ctx.plan.registry
    return bool(reg.manage_hosts_file and reg.ip) and f"lookup {reg.domain}" in err


def _await_stale_resolver(ctx: Ctx, step: str, e: HostEntry) -> None:
    """The hosts-file step saw the mapping, yet Docker did not resolve the name: its
    resolver still trusts an older /etc/hosts (edited by someone else just before the
    run). One wait of the full window, then one more try."""
    ctx.log(
        step,
        e,
        f"Docker on {e.label} does not resolve {ctx.plan.registry.domain} yet, although "
        f"/etc/hosts maps it: waiting {HOSTS_CACHE_SECONDS:.1f}s for it to re-read the file",
    )
    if ctx.cancel.wait(HOSTS_CACHE_SECONDS):
        raise Cancelled()


def _anonymous_push(client, ref: str) -> tuple[str, str]:
    """A push with no credentials at all (none of the client's saved logins)."""
    import docker.auth

    api = client.api
    saved = api._auth_configs
    api._auth_configs = docker.auth.AuthConfig({})
    try:
        return _push(client, ref, None)
    finally:
        api._auth_configs = saved


class Verify(Step):
    name = "verify"
    title = "Verification: login, push, pull"
    scope = "verify"

    def check(self, ctx: Ctx, e: HostEntry) -> Finding:
        return Finding(True, "always verified", (self._commands(ctx),))

    def _commands(self, ctx: Ctx) -> str:
        addr = ctx.plan.registry.address
        ref = f"{addr}/{PROBE_REPO}:verify"
        login = _q("docker", "login", addr, "-u", ctx.plan.verify_user)
        return f"{login} && {_q('docker', 'push', ref)} && {_q('docker', 'pull', ref)}"

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        pass

    def apply(self, ctx: Ctx, e: HostEntry, f: Finding) -> str:
        reg = ctx.plan.registry
        v = Verification(user=ctx.plan.verify_user)
        ctx.verification = v
        ref = f"{reg.address}/{PROBE_REPO}:verify"
        v.image_ref = ref
        client = e.host.docker(300)
        # Independent work overlaps: login runs beside the push, then every client
        # pulls while the catalog is read. A fan-out to N clients then costs about one
        # client's round trips, not N of them. (The registry checks the bcrypt hash on
        # every request, so the other clients prove trust, name resolution and
        # credentials with their authenticated pull alone, not with a login first.)
        others = [o for o in ctx.clients if o is not e]
        pool = ThreadPoolExecutor(max_workers=len(others) + 2)
        try:
            return self._prove(ctx, e, v, client, ref, others, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _prove(self, ctx: Ctx, e: HostEntry, v: Verification, client, ref, others, pool) -> str:
        import docker.auth
        import docker.errors

        api = client.api
        user, password = ctx.plan.verify_user, ctx.secrets.verify_password
        # A tiny probe image, built locally on the client (FROM scratch, no pull).
        # The builder stamps a creation time, so a rebuilt probe has a new digest:
        # reuse the one the last verification pulled, and a rerun then pushes the
        # same manifest, leaving registry and clients as they were.
        try:
            client.images.get(ref)
            have_probe = True
        except docker.errors.ImageNotFound:
            have_probe = False
        if have_probe:
            ctx.log(self.name, e, f"reusing probe image {ref}")
        else:
            for item in api.build(
                fileobj=_probe_context("v1"), custom_context=True, tag=ref, rm=True, decode=True
            ):
                if "error" in item or "errorDetail" in item:
                    raise StepError(
                        f"building the probe image on {e.label} failed: "
                        f"{clean(str(item.get('error')))}",
                        "check that Docker on this client can build images (docker build)",
                    )
            ctx.log(self.name, e, f"built probe image {ref}")
        _await_resolver(ctx, self.name, e)
        # 1. anonymous push must be refused (no credentials at all)
        digest, err = _anonymous_push(client, ref)
        if _stale_lookup(ctx, err):
            _await_stale_resolver(ctx, self.name, e)
            digest, err = _anonymous_push(client, ref)
        v.anonymous_refused = bool(err) and not digest
        ctx.log(
            self.name,
            e,
            f"anonymous push: {'refused' if v.anonymous_refused else 'ALLOWED'} ({clean(err, 120)})",
        )
        if not v.anonymous_refused:
            raise StepError(
                "the registry accepted an anonymous push",
                "enable htpasswd auth (REGISTRY_AUTH=htpasswd): rerun `regwizard apply`",
            )
        if "unauthorized" not in err.lower() and "no basic auth" not in err.lower():
            raise explained(
                f"push from {e.label} failed before auth",
                err,
                shown=clean(err, 200),
                evidence=clean(err),
            )
        auth = {"username": user, "password": password}
        # 2. login, forcing a real round trip to the registry, while 3. the push (with
        # explicit credentials) runs: a failed login is reported before the push error
        login = pool.submit(self._login, ctx, e, client, user, password)
        digest, err = _push(client, ref, auth)
        login.result()
        v.login_ok = True
        ctx.log(self.name, e, f"login as {user}: ok")
        if err or not digest:
            raise explained(
                f"push from {e.label} failed", err, shown=clean(err, 200), evidence=clean(err)
            )
        v.push_digest = digest
        ctx.log(self.name, e, f"pushed {ref} {digest}")
        # 5. the other clients pull and 6. the catalog is read, while 4. this client
        # pulls back what it pushed
        pulls = [pool.submit(self._pull_other, ctx, o, ref, auth) for o in others]
        catalog = pool.submit(https_get, ctx, "/v2/_catalog?n=1000", auth=(user, password))
        # 4. remove the local tag, pull, compare digests
        try:
            client.images.remove(ref, force=True)
        except docker.errors.ImageNotFound:
            pass
        v.pull_digest = self._pull(ctx, e, ref, auth)
        v.trust[e.label] = v.pull_digest == digest
        if v.pull_digest != digest:
            raise StepError(
                f"pulled digest {v.pull_digest} differs from pushed {digest}",
                "check the storage path on the registry host",
            )
        for other, fut in zip(others, pulls, strict=True):
            got = fut.result()
            v.trust[other.label] = got == digest
            if got != digest:
                raise StepError(
                    f"{other.label} pulled digest {got}, not the pushed {digest}",
                    "check that every client resolves the domain to this registry",
                )
            ctx.log(self.name, other, f"pull on {other.label}: ok")
        status, _, body = catalog.result()
        if status == 200:
            v.catalog = json.loads(body).get("repositories", [])
        if PROBE_REPO not in v.catalog:
            raise StepError(
                f"the catalog does not list {PROBE_REPO} (HTTP {status})",
                "check the registry logs",
            )
        return f"login, anonymous refused, push {digest[:19]}…, pull ok on {len(v.trust)} client(s)"

    def _login(self, ctx: Ctx, e: HostEntry, client, user: str, password: str) -> None:
        """``docker login`` on a client, forcing a real round trip to the registry."""
        import docker.errors

        try:
            client.api.login(user, password, registry=ctx.plan.registry.address, reauth=True)
        except docker.errors.APIError as ex:
            msg = clean(str(ex.explanation or ex))
            raise explained(
                f"docker login as {user} from {e.label} failed",
                msg,
                fix="check the password and the htpasswd file",
            ) from ex

    def _pull_other(self, ctx: Ctx, e: HostEntry, ref: str, auth: dict) -> str:
        import docker.errors

        ctx.check_cancel()
        _await_resolver(ctx, self.name, e)
        retried = False
        while True:
            try:
                return self._pull(ctx, e, ref, auth)
            except (docker.errors.APIError, StepError) as ex:
                if isinstance(ex, StepError):
                    msg, raw = clean(str(ex)), ex.evidence or ex.cause
                else:  # the daemon refused the call itself (HTTP 500 before any stream)
                    msg = raw = clean(str(ex.explanation or ex))
                if not retried and _stale_lookup(ctx, raw):
                    _await_stale_resolver(ctx, self.name, e)
                    retried = True
                    continue
                raise explained(f"{e.label} cannot pull from the registry", msg) from ex

    def _pull(self, ctx: Ctx, e: HostEntry, ref: str, auth: dict, client=None) -> str:
        client = client or e.host.docker(300)
        repo, _, tag = ref.rpartition(":")
        err = ""
        for item in client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=auth):
            if "errorDetail" in item or "error" in item:
                err = str((item.get("errorDetail") or {}).get("message") or item.get("error"))
        if err:
            raise explained(
                f"pull on {e.label} failed", err, shown=clean(err, 200), evidence=clean(err)
            )
        attrs = client.images.get(ref).attrs
        for rd in attrs.get("RepoDigests") or []:
            if rd.startswith(repo + "@"):
                return rd.split("@", 1)[1]
        return ""


STEPS: list[Step] = [
    Preflight(),
    HostsFile(),
    Certificate(),
    Trust(),
    Htpasswd(),
    Storage(),
    Image(),
    Container(),
    Health(),
    Verify(),
]
