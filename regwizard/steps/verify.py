"""11. Verification, from the first client: anonymous push refused, login, push of a tiny
probe image, pull with the same digest on every client, and the catalog. Proving is not
a change.

A mirror (``registry.proxy_remote_url``) refuses pushes by design (distribution answers
"unsupported"), so it is proved by pulling ``verify.mirror_image`` through it instead:
an anonymous pull refused, login, a pull that reports the digest, the same digest on
every other client and runtime."""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from regwizard import pki
from regwizard.diagnose import clean
from regwizard.errors import Cancelled
from regwizard.events import Proof, Verification
from regwizard.facts.tls import Untrusted
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, explained, served
from regwizard.steps.trust import anchor

PROBE_REPO = "regwizard/probe"
HOSTS_CACHE_SECONDS = 5.2  # dockerd's resolver caches /etc/hosts for 5 s


@dataclass(frozen=True)
class VerifyChange(Change):
    pass


PROBE_CREATED = "2024-01-01T00:00:00Z"  # fixed: the same probe has the same digest anywhere


def _tar(files: dict[str, bytes]) -> bytes:
    """A USTAR archive with no times or owners in it: the same files give the same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def docker_archive(ref: str, config: dict, files: dict[str, bytes]) -> bytes:
    """A ``docker save`` archive tagged ``ref``: one layer holding ``files``, and ``config``
    (the image config without its rootfs). Fixed bytes in, fixed bytes out, so every
    ``docker load`` of it gives the same image ID and the same pushed digest."""
    layer = _tar(files)
    diff_id = hashlib.sha256(layer).hexdigest()
    rootfs = {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}
    config_bytes = json.dumps({**config, "rootfs": rootfs}, sort_keys=True).encode()
    cfg = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{cfg}.json", "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    return _tar({
        f"{cfg}.json": config_bytes,
        f"{diff_id}/layer.tar": layer,
        "manifest.json": json.dumps(manifest).encode(),
    })  # fmt: skip


def probe_image(ref: str, arch: str, note: str = "") -> bytes:
    """The probe: one file, a fixed creation time and a label. ``docker load`` takes it in
    about half a build's time (0.10 s against 0.20 s here) and needs no builder; being
    the same image on every load, a rerun pushes the manifest the registry already holds.
    ``note`` makes a distinct layer (tests that need a fresh upload)."""
    text = f"regwizard verification v1 {ref}\n{note}".rstrip("\n") + "\n"
    config = {
        "architecture": arch,
        "os": "linux",
        "created": PROBE_CREATED,
        "config": {"Labels": {"io.regwizard.probe": "true"}},
        "history": [{"created": PROBE_CREATED, "created_by": "regwizard probe"}],
    }
    return docker_archive(ref, config, {"probe.txt": text.encode()})


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


def _stale_lookup(ctx: Ctx, err: str) -> bool:
    """A lookup failure for our domain although this run keeps it in /etc/hosts."""
    reg = ctx.plan.registry
    return bool(reg.manage_hosts_file and reg.ip) and f"lookup {reg.domain}" in err


def _await_stale_resolver(ctx: Ctx, step: str, e: HostEntry) -> None:
    """The hosts-file step saw (or wrote) the mapping, yet Docker did not resolve the
    name: its resolver still trusts an older /etc/hosts.

    dockerd (Go's resolver) trusts its copy of /etc/hosts for 5 s after it last read the
    file, so a name added within that window fails with "no such host", but only if
    dockerd did a lookup in the 5 s before the edit. That is rare, so every client tries
    at once, and waits only on this evidence. If this run wrote the file, the
    copy is at most 5 s older than that write, so wait what is left of the window; if
    someone else edited it just before the run, wait the whole window. Then one more try."""
    if ctx.early:  # a proof ahead of the last checks is thrown away, never waited for
        raise StepError(f"Docker on {e.label} does not resolve the name yet", "rerun")
    changed = ctx.hosts_changed_at.get(e.key)
    wait = HOSTS_CACHE_SECONDS
    if changed is not None:
        wait = max(0.0, changed + HOSTS_CACHE_SECONDS - time.monotonic())
    ctx.log(
        step,
        e,
        f"Docker on {e.label} does not resolve {ctx.plan.registry.domain} yet, although "
        f"/etc/hosts maps it: waiting {wait:.1f}s for it to re-read the file",
    )
    if ctx.cancel.wait(wait):
        raise Cancelled()


def _pinned(ctx: Ctx) -> bool:
    """An anonymous request to the registry's address, verified against the plan's trust
    anchor (no credential). An early proof starts before the health step has checked
    this, so its credentials wait until it holds (``_await_pinned``)."""
    reg = ctx.plan.registry
    ctx.net.request(reg.domain, ctx.target, reg.port, anchor(ctx), "/v2/")
    return True


def _await_pinned(ctx: Ctx) -> None:
    """In an early proof, the verify user's password goes nowhere until ``_pinned`` held;
    when it did not, the proof ends (thrown away: the steps repair, then verify runs)."""
    if ctx.early and not ctx.take_ahead("pinned"):
        raise StepError("the registry's certificate is not verified against the plan yet", "rerun")


# An explicit empty auth, never None: with None (or an empty in-memory config) docker-py
# loads ~/.docker/config.json of the machine running regwizard and sends its saved login,
# so after a `docker login` the "anonymous" push went through with credentials.
NO_AUTH: dict = {}


def _anonymous_pull(client, ref: str) -> str:
    """A pull with no credentials at all; the error it ends with ("" = it worked)."""
    import docker.errors

    repo, _, tag = ref.rpartition(":")
    err = ""
    try:
        for item in client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=NO_AUTH):
            if "errorDetail" in item or "error" in item:
                err = str((item.get("errorDetail") or {}).get("message") or item.get("error"))
    except docker.errors.APIError as ex:  # the daemon answers a 401 before any stream
        err = str(ex.explanation or ex)
    return err


AUTH_REFUSALS = ("unauthorized", "no basic auth", "authentication required")


def _remove_local(client, ref: str) -> None:
    import docker.errors

    try:
        client.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


def _anonymous_push(client, ref: str) -> tuple[str, str]:
    """A push with no credentials at all (none of the client's saved logins)."""
    return _push(client, ref, NO_AUTH)


class Verify(Step[VerifyChange]):
    name = "verify"
    title = "Verification: login, push, pull"
    scope = "verify"
    reads_only = True
    needs_registry = True
    fills_verification = True

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        addr = ctx.plan.registry.address
        ref = _ref(ctx)
        login = shlex.join(["docker", "login", addr, "-u", ctx.plan.verify_user])
        push, pull = shlex.join(["docker", "push", ref]), shlex.join(["docker", "pull", ref])
        if ctx.plan.registry.proxy_remote_url:
            out = [
                f"{login} && {pull}   # a mirror of {ctx.plan.registry.proxy_remote_url}: "
                "pushes are refused by design"
            ]
        else:
            out = [f"{login} && {push} && {pull}"]
        used = {r for c in ctx.clients for r in c.runtimes}
        if "podman" in used:
            podman = shlex.join(["podman", "login", addr, "-u", ctx.plan.verify_user])
            out.append(f"{podman} && {shlex.join(['podman', 'pull', ref])}   # podman clients")
        if "containerd" in used:
            ctr = ["ctr", "images", "pull", "--hosts-dir", "/etc/containerd/certs.d", ref]
            out.append(f"{shlex.join(ctr)}   # containerd clients: 401, not x509")
        return tuple(out)

    def check(self, ctx: Ctx, e: HostEntry) -> VerifyChange:
        return VerifyChange("always verified", self.script(ctx))

    def verify(self, ctx: Ctx, e: HostEntry) -> None:
        pass

    def apply(self, ctx: Ctx, e: HostEntry, change: VerifyChange) -> str:
        reg = ctx.plan.registry
        v = Verification(user=ctx.plan.verify_user, mirror_of=reg.proxy_remote_url)
        ctx.verification = v
        ref = _ref(ctx)
        v.image_ref = ref
        client = e.host.docker(300)
        # Independent work overlaps: login runs beside the push, then every client
        # pulls while the catalog is read. A fan-out to N clients then costs about one
        # client's round trips, not N of them. (The registry checks the bcrypt hash on
        # every request, so the other clients prove trust, name resolution and
        # credentials with their authenticated pull alone, not with a login first.)
        others = [o for o in ctx.clients if o is not e and o.uses("docker")]
        if ctx.early:  # both read the registry's port, off the proof's path; the
            # pinned request gates the password, so it does not wait behind the other
            ctx.start_ahead("pinned", lambda: _pinned(ctx))
            ctx.start_ahead("expiry", lambda: _note_expiry(ctx, v))
        else:
            _note_expiry(ctx, v)  # what health just read: no new connection
        pool = ThreadPoolExecutor(max_workers=len(others) + len(ctx.clients) * 2 + 2)
        try:
            prove = self._prove_mirror if v.mirror_of else self._prove
            done = prove(ctx, e, v, client, ref, others, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        ctx.take_ahead("expiry")  # the end date is in the report before "done"
        return done

    def _fan_out(self, ctx: Ctx, pool, others, ref: str, auth: dict, digest: str):  # noqa: ANN001, ANN202
        """Start every other Docker client's pull, every other runtime's own proof and
        the catalog read (as the verify user, over verified TLS)."""
        user, password = ctx.plan.verify_user, ctx.secrets.verify_password
        pulls = [pool.submit(self._pull_other, ctx, o, ref, auth) for o in others]
        proofs = [
            pool.submit(RUNTIME_PROOFS[r], ctx, o, ref, user, password, digest)
            for o in ctx.clients
            for r in RUNTIME_PROOFS
            if o.uses(r)
        ]
        reg = ctx.plan.registry
        catalog = pool.submit(
            ctx.net.request,
            reg.domain,
            ctx.target,
            reg.port,
            anchor(ctx),
            "/v2/_catalog?n=1000",
            auth=(user, password),
        )
        return pulls, proofs, catalog

    def _prove(self, ctx: Ctx, e: HostEntry, v: Verification, client, ref, others, pool) -> str:
        import docker.auth
        import docker.errors

        user, password = ctx.plan.verify_user, ctx.secrets.verify_password
        # A tiny probe image, loaded from bytes made here (no builder, no pull). It is
        # the same image on every load, so a rerun pushes the manifest the registry
        # already holds, leaving registry and clients as they were.
        try:
            client.images.get(ref)
            ctx.log(self.name, e, f"reusing probe image {ref}")
        except docker.errors.ImageNotFound:
            arch = client.version().get("Arch") or "amd64"
            try:
                client.images.load(probe_image(ref, arch))
            except docker.errors.APIError as ex:
                raise StepError(
                    f"loading the probe image into Docker on {e.label} failed: {clean(str(ex))}",
                    "check that Docker on this client can load images (docker load)",
                ) from ex
            ctx.log(self.name, e, f"loaded probe image {ref}")
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
        _await_pinned(ctx)
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
        # 7. every other runtime proves trust with its own client
        pulls, proofs, catalog = self._fan_out(ctx, pool, others, ref, auth, digest)
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
        _other_clients_agree(ctx, self.name, e, v, zip(others, pulls, strict=True), digest)
        _runtime_proofs(ctx, self.name, e, v, proofs)
        status, _, body = catalog.result()
        if status == 200:
            v.catalog = json.loads(body).get("repositories", [])
        if PROBE_REPO not in v.catalog:
            raise StepError(
                f"the catalog does not list {PROBE_REPO} (HTTP {status})",
                "check the registry logs",
            )
        if len(ctx.registries) > 1:
            v.replicas = prove_replicas(ctx, anchor(ctx))
            for p in v.replicas:
                ctx.log(self.name, e, f"registry host {p.client}: {p.how}")
            failed = [p for p in v.replicas if not p.ok]
            if failed:
                raise StepError(
                    "the registry hosts do not act as one: "
                    + "; ".join(f"{p.client}: {p.how}" for p in failed),
                    "every registry host needs the same storage, http secret and certificate: "
                    "rerun `regwizard apply`, then `regwizard doctor PLAN`",
                )
        more = "".join(f", {p.runtime} on {p.client} ok" for p in v.proofs)
        more += f", {len(v.replicas)} registry hosts agree" if v.replicas else ""
        return (
            f"login, anonymous refused, push {digest[:19]}…, pull ok on {len(v.trust)} "
            f"client(s){more}"
        )

    def _prove_mirror(
        self, ctx: Ctx, e: HostEntry, v: Verification, client, ref, others, pool
    ) -> str:
        """A mirror: anonymous pull refused, login, pull through it (the digest), the same
        digest on every other client and runtime. Nothing is pushed."""
        user, password = ctx.plan.verify_user, ctx.secrets.verify_password
        reg = ctx.plan.registry
        ctx.log(self.name, e, f"mirror of {v.mirror_of}: pushes are refused by design")
        _remove_local(client, ref)  # every pull below goes through the mirror
        # 1. an anonymous pull must be refused
        err = _anonymous_pull(client, ref)
        if _stale_lookup(ctx, err):
            _await_stale_resolver(ctx, self.name, e)
            err = _anonymous_pull(client, ref)
        v.anonymous_refused = bool(err) and any(w in err.lower() for w in AUTH_REFUSALS)
        ctx.log(
            self.name,
            e,
            f"anonymous pull: {'refused' if v.anonymous_refused else 'NOT refused'} "
            f"({clean(err, 120) or 'it worked'})",
        )
        if not err:
            _remove_local(client, ref)
            raise StepError(
                "the mirror served an anonymous pull",
                "enable htpasswd auth (REGISTRY_AUTH=htpasswd): rerun `regwizard apply`",
            )
        if not v.anonymous_refused:
            raise explained(
                f"pull from {e.label} failed before auth", err, shown=clean(err, 200),
                evidence=clean(err),
            )  # fmt: skip
        # 2. login, 3. pull through the mirror: it fetches the image from the upstream
        _await_pinned(ctx)
        self._login(ctx, e, client, user, password)
        v.login_ok = True
        ctx.log(self.name, e, f"login as {user}: ok")
        auth = {"username": user, "password": password}
        fix = (
            f"check that {ctx.plan.verify.mirror_image} exists on {v.mirror_of}; the mirror's "
            f"own reason is in `docker logs {reg.container}` on the registry host (the upstream "
            "login, its CA in registry.proxy_ca_file, or the upstream unreachable from there)"
        )
        try:
            digest = self._pull(ctx, e, ref, auth, client)
        except StepError as ex:
            raise StepError(ex.cause, fix, ex.evidence) from ex
        if not digest:
            raise StepError(f"the pull of {ref} reported no digest", fix)
        v.pull_digest = digest
        v.trust[e.label] = True
        ctx.log(self.name, e, f"pulled {ref} through the mirror: {digest}")
        # 4. every other client pulls it too, and every other runtime proves trust
        pulls, proofs, catalog = self._fan_out(ctx, pool, others, ref, auth, digest)
        _other_clients_agree(ctx, self.name, e, v, zip(others, pulls, strict=True), digest)
        _runtime_proofs(ctx, self.name, e, v, proofs)
        try:  # the cache's content, for the report: not a proof, never a failure
            status, _, body = catalog.result()
            if status == 200:
                v.catalog = json.loads(body).get("repositories", [])
        except (OSError, ValueError, Untrusted) as ex:
            ctx.log(self.name, e, f"catalog not read: {clean(str(ex), 120)}")
        more = "".join(f", {p.runtime} on {p.client} ok" for p in v.proofs)
        return (
            f"mirror of {v.mirror_of} (pushes refused by design): login, anonymous pull "
            f"refused, pulled {digest[:19]}… on {len(v.trust)} client(s){more}"
        )

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


def _ref(ctx: Ctx) -> str:
    """What verification pushes and pulls: the probe; for a mirror, verify.mirror_image."""
    reg = ctx.plan.registry
    if reg.proxy_remote_url:
        return f"{reg.address}/{ctx.plan.verify.mirror_image}"
    return f"{reg.address}/{PROBE_REPO}:verify"


# --------------------------------------------------------------------------- other runtimes


def prove_podman(ctx: Ctx, e: HostEntry, ref: str, user: str, password: str, digest: str) -> Proof:
    """podman logs in (the password on stdin, the login in a root-only file on /run that
    is removed at once), pulls the probe afresh, and must see the pushed digest."""
    import secrets as _secrets

    authfile = f"/run/regwizard-auth-{_secrets.token_hex(6)}.json"
    script = (
        'umask 077; podman rmi -f "$4" >/dev/null 2>&1; '
        'podman login --authfile "$1" -u "$2" --password-stdin "$3" >/dev/null && '
        'podman pull --authfile "$1" -q "$4" >/dev/null && '
        "podman image inspect --format '{{.Digest}}' \"$4\"; "
        'rc=$?; rm -f -- "$1"; exit $rc'
    )
    addr = ctx.plan.registry.address
    r = e.host.run(
        ["sh", "-c", script, "sh", authfile, user, addr, ref],
        input=(password + "\n").encode(),
        check=False,
        timeout=300,
    )
    got = r.stdout.decode(errors="replace").strip().splitlines()
    if r.rc == 0 and got and got[-1] == digest:
        return Proof(e.label, "podman", True, f"pulled {digest[:19]}… with podman", pulled=True)
    err = clean(r.stderr.decode(errors="replace") or " ".join(got), 300)
    return Proof(e.label, "podman", False, err or f"podman exited {r.rc}")


def prove_containerd(
    ctx: Ctx, e: HostEntry, ref: str, user: str, password: str, digest: str
) -> Proof:
    """ctr pulls through the hosts.toml CRI reads. ctr takes credentials only on its
    command line, which regwizard never does: the pull is anonymous, and an answer of
    401 Unauthorized (not an x509 error) proves containerd trusts the registry."""
    from regwizard.facts.runtimes import CONTAINERD_SOCKET
    from regwizard.steps.containerd_config import containerd_facts

    hosts_dir = containerd_facts(ctx, e).hosts_dir or "/etc/containerd/certs.d"
    argv = ["ctr", "--address", CONTAINERD_SOCKET, "-n", "regwizard", "images", "pull",
            "--hosts-dir", hosts_dir, ref]  # fmt: skip
    r = e.host.run(argv, check=False, timeout=120)
    out = clean((r.stdout + r.stderr).decode(errors="replace"), 400)
    if r.rc != 0 and "401" in out and "x509" not in out.lower():
        return Proof(
            e.label,
            "containerd",
            True,
            "trusts the registry: an anonymous pull was refused with 401 Unauthorized, "
            "not an x509 error (ctr takes credentials only on its command line)",
        )
    if r.rc == 0:
        return Proof(e.label, "containerd", False, "an anonymous pull was allowed: auth is off")
    return Proof(e.label, "containerd", False, out or f"ctr exited {r.rc}")


RUNTIME_PROOFS = {"containerd": prove_containerd, "podman": prove_podman}


REPLICA_TAG = "replicas"
REPLICA_BLOB = b"regwizard replica proof\n"  # fixed: a rerun uploads the same, changes nothing
REPLICA_CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def replica_manifest() -> bytes:
    """An OCI manifest naming the two blobs the proof uploads (never pulled by Docker)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _sha(REPLICA_CONFIG),
            "size": len(REPLICA_CONFIG),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _sha(REPLICA_BLOB),
                "size": len(REPLICA_BLOB),
            }
        ],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _location_path(location: str) -> str:
    """The path and query of an upload's Location (absolute or not); its host is never
    used: the next request goes to the replica we choose."""
    from urllib.parse import urlsplit

    u = urlsplit(location)
    return u.path + (f"?{u.query}" if u.query else "")


def prove_replicas(ctx: Ctx, anchor_pem: bytes) -> list[Proof]:
    """With replicas, through the HTTP API of each registry host's own address, as the
    verify user: a blob upload started on one registry host is finished on the next (the
    shared http secret and storage), a manifest is put on the primary, and every registry
    host serves it with the same digest and lists the same catalog. One Proof each."""
    regs = ctx.registries
    reg = ctx.plan.registry
    auth = (ctx.plan.verify_user, ctx.secrets.verify_password)
    repo = PROBE_REPO

    def call(r: HostEntry, path: str, method: str = "GET", **kw):  # noqa: ANN003, ANN202
        ctx.check_cancel()
        return ctx.net.request(
            reg.domain, ctx.target_of(r), reg.port, anchor_pem, path, auth=auth, method=method,
            **kw,
        )  # fmt: skip

    notes: dict[str, list[str]] = {r.label: [] for r in regs}
    bad: dict[str, str] = {}

    def fail(r: HostEntry, why: str) -> None:
        bad.setdefault(r.label, why)

    # 1. each blob: started on one registry host, finished on the next one
    for i, blob in enumerate((REPLICA_BLOB, REPLICA_CONFIG)):
        a, b = regs[i % len(regs)], regs[(i + 1) % len(regs)]
        try:
            st, hd, _ = call(a, f"/v2/{repo}/blobs/uploads/", "POST", body=b"")
            if st != 202 or not hd.get("location"):
                fail(a, f"starting an upload: HTTP {st}")
                continue
            loc = _location_path(hd["location"])
            sep = "&" if "?" in loc else "?"
            st, _, body = call(
                b, f"{loc}{sep}digest={_sha(blob)}", "PUT", body=blob,
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
            if st != 201:
                fail(
                    b,
                    f"finishing {a.label}'s upload: HTTP {st} {clean(body.decode(errors='replace'), 120)}",
                )
                continue
            notes[a.label].append(f"upload started here finished on {b.label}")
        except (OSError, Untrusted) as ex:
            fail(a, clean(str(ex), 160))
    # 2. the manifest, put on the primary
    manifest = replica_manifest()
    want = _sha(manifest)
    try:
        st, _, body = call(
            regs[0], f"/v2/{repo}/manifests/{REPLICA_TAG}", "PUT", body=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )  # fmt: skip
        if st != 201:
            fail(
                regs[0],
                f"putting the manifest: HTTP {st} {clean(body.decode(errors='replace'), 120)}",
            )
    except (OSError, Untrusted) as ex:
        fail(regs[0], clean(str(ex), 160))
    # 3. every registry host serves that digest and the same catalog
    catalogs: dict[str, list[str]] = {}
    for r in regs:
        try:
            st, hd, body = call(
                r, f"/v2/{repo}/manifests/{REPLICA_TAG}", headers={"Accept": OCI_MANIFEST}
            )
            got = hd.get("docker-content-digest") or (_sha(body) if st == 200 else "")
            if st != 200 or got != want:
                fail(r, f"manifest: HTTP {st}, digest {got or 'none'} (want {want[:19]}…)")
            else:
                notes[r.label].append(f"manifest {want[:19]}…")
            st, _, body = call(r, "/v2/_catalog?n=1000")
            if st == 200:
                catalogs[r.label] = sorted(json.loads(body).get("repositories") or [])
            else:
                fail(r, f"catalog: HTTP {st}")
        except (OSError, Untrusted, ValueError) as ex:
            fail(r, clean(str(ex), 160))
    first = catalogs.get(regs[0].label)
    out = []
    for r in regs:
        cat = catalogs.get(r.label)
        if cat is not None and first is not None and cat != first:
            fail(
                r,
                f"catalog differs from {regs[0].label}'s ({len(cat)} vs {len(first)} repositories)",
            )
        elif cat is not None:
            notes[r.label].append(f"same catalog ({len(cat)} repositories)")
        why = bad.get(r.label)
        how = why or "; ".join(notes[r.label])
        out.append(Proof(r.label, "registry", why is None, how, pulled=why is None))
    return out


def _note_expiry(ctx: Ctx, v: Verification) -> None:
    """The served certificate's end date, for Results and the report (Health verified it)."""
    try:
        pem = served(ctx).pem
        info = pki.inspect_cert(pem) if pem else None
    except (OSError, ValueError):
        info = None
    if info is not None:
        v.cert_expires = f"{info.not_after:%Y-%m-%d}"
        v.cert_days_left = info.days_left


def _other_clients_agree(
    ctx: Ctx, step: str, e: HostEntry, v: Verification, pulls, digest: str
) -> None:  # noqa: ANN001
    """Every other Docker client pulled ``digest``: trust, name and login work there."""
    for other, fut in pulls:
        got = fut.result()
        v.trust[other.label] = got == digest
        if got != digest:
            raise StepError(
                f"{other.label} pulled digest {got}, not {digest}",
                "check that every client resolves the domain to this registry",
            )
        ctx.log(step, other, f"pull on {other.label}: ok")


def _runtime_proofs(ctx: Ctx, step: str, e: HostEntry, v: Verification, proofs) -> None:  # noqa: ANN001
    """Each other runtime's own proof (podman, containerd); the first failure stops."""
    v.proofs = [f.result() for f in proofs]
    for p in v.proofs:
        ctx.log(step, e, f"{p.runtime} on {p.client}: {p.how}")
    bad = [p for p in v.proofs if not p.ok]
    if bad:
        raise explained(
            f"{bad[0].runtime} on {bad[0].client} cannot use the registry",
            bad[0].how,
            fix="see the evidence; rerun `regwizard apply` to rewrite its trust files",
        )
