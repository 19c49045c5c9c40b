"""9. The registry container: created, or recreated only when its configuration differs.

The container's settings are hashed into a label; a container whose label differs (or a
hand-made one) is replaced, after its images are copied into the plan's storage when they
live elsewhere. Nothing is deleted: the old volume or directory is kept, and a setup the
plan cannot express (S3 storage, a plain-http upstream, token auth) is refused, never
replaced. A running registry that serves another certificate than the one on disk (a
renewal cut short) is restarted: TLS is loaded at start.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import threading
import time
from dataclasses import dataclass

from regwizard import problems
from regwizard.diagnose import clean
from regwizard.diffs import settings
from regwizard.errors import RegwizardError
from regwizard.events import FileDiff
from regwizard.facts import read
from regwizard.facts.read import snapshot
from regwizard.facts.registry import LABEL_HASH, LABEL_MANAGED, RegistryFacts, s3_spec
from regwizard.layout import C_AUTH, C_CERTS, C_CONFIG, C_CONFIG_DIR, C_DATA, C_UPSTREAM_CA
from regwizard.progress import Reporter
from regwizard.steps.base import (
    Change,
    Ctx,
    HostEntry,
    Step,
    StepError,
    Unchanged,
    backup,
    explained,
    served,
)
from regwizard.steps.certificate import tls_files
from regwizard.steps.config import content_hash
from regwizard.steps.upstream_ca import upstream_ca_hash

SPACE_MARGIN = 64 * 2**20  # left free after a copy: the registry must still write uploads
PROGRESS_EVERY = 3.0  # seconds between "copied X of Y" lines while images are copied


def desired(ctx: Ctx) -> dict:
    """The container the plan wants (no secret anywhere in it)."""
    lay, reg = ctx.layout, ctx.plan.registry
    spec = {
        "image": reg.image,
        "name": reg.container,
        "command": ["serve", C_CONFIG],
        # distribution v3 sends traces to localhost:4318 by default and fills the log
        "env": {"OTEL_TRACES_EXPORTER": "none"},
        "volumes": {
            lay.certs_dir: {"bind": C_CERTS, "mode": "ro"},
            lay.auth_dir: {"bind": C_AUTH, "mode": "ro"},
            lay.registry_dir: {"bind": C_CONFIG_DIR, "mode": "ro"},
        },
        "ports": {"5000/tcp": reg.port},
        "restart_policy": {"Name": "always"},
        "config": content_hash(ctx),
    }
    st = ctx.plan.storage
    if st.is_s3:
        # images live in the bucket: no data mount. The secret key is only in config.yml
        # (content_hash covers the rest); the environment stays explicit, with no AWS_*
        # (AWS_CA_BUNDLE makes the S3 driver panic at start)
        spec["storage"] = storage_text(st)
    else:
        spec["volumes"] = {reg.storage: {"bind": C_DATA, "mode": "rw"}, **spec["volumes"]}
    if reg.proxy_remote_url and reg.proxy_ca_file:
        # a mirror's upstream CA: Go reads SSL_CERT_DIR (a path, never a secret), and the
        # roots only at start, so the CA's hash is part of the label
        spec["volumes"][lay.upstream_dir] = {"bind": C_UPSTREAM_CA, "mode": "ro"}
        spec["env"]["SSL_CERT_DIR"] = C_UPSTREAM_CA
        spec["upstream_ca"] = upstream_ca_hash(ctx)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    spec["labels"] = {LABEL_MANAGED: "true", LABEL_HASH: digest}
    return spec


def storage_text(st) -> str:  # noqa: ANN001 - plan.StorageSpec or facts' params
    """``s3 bucket B at ENDPOINT (region R[, root /x])`` for a diff line and the label."""
    root = f", root {st.root_directory}" if st.root_directory else ""
    return f"s3 bucket {st.bucket} at {st.endpoint} (region {st.region}{root})"


def desired_settings(spec: dict) -> list[tuple[str, str]]:
    """The container ``desired`` describes, as (key, value) lines for a diff."""
    items = [("image", spec["image"]), ("command", shlex.join(spec["command"]))]
    if "storage" in spec:
        items.append(("storage", spec["storage"]))
    items += [("port", f"{hp} -> {cp}") for cp, hp in sorted(spec["ports"].items())]
    items += sorted(
        ("mount", f"{src.rstrip('/') or '/'} -> {v['bind']} ({v['mode']})")
        for src, v in spec["volumes"].items()
    )
    items.append(("restart", spec["restart_policy"]["Name"]))
    items += sorted(("env", f"{k}={v}") for k, v in spec["env"].items())
    items += sorted(("label", f"{k}={v}") for k, v in spec["labels"].items())
    return items


IMAGE_ENV = {"PATH"}  # set by the image, not by whoever ran the container


def observed_settings(facts: RegistryFacts, c) -> list[tuple[str, str]]:  # noqa: ANN001
    """The running container's settings as ``desired_settings`` lists them, from what
    docker inspect already gave (nothing more is read)."""
    attrs = getattr(c, "attrs", None)
    cfg = attrs.get("Config") if isinstance(attrs, dict) else None
    cfg = cfg if isinstance(cfg, dict) else {}
    items = [("image", facts.image)]
    cmd = cfg.get("Cmd")
    if isinstance(cmd, list):
        items.append(("command", shlex.join(str(x) for x in cmd)))
    if facts.storage.driver == "s3":
        items.append(("storage", storage_text(s3_spec(facts.storage))))
    if facts.host_network:
        items.append(("network", "host"))
    for cp, hps in sorted(facts.published.items()):
        items += [("port", f"{hp} -> {cp}/tcp") for hp in sorted(set(hps))]
    mounts = []
    for m in facts.mounts:
        if m.kind == "bind":
            src = m.source.rstrip("/") or "/"
        elif m.kind == "volume":
            src = f"volume {m.name[:12] if m.anonymous else m.name}"
        else:
            src = m.kind
        mounts.append(("mount", f"{src} -> {m.destination} ({'rw' if m.rw else 'ro'})"))
    items += sorted(mounts)
    items.append(("restart", facts.restart_policy))
    env = cfg.get("Env") if isinstance(cfg.get("Env"), list) else []
    items += sorted(("env", str(v)) for v in env if str(v).partition("=")[0] not in IMAGE_ENV)
    items += sorted(("label", f"{k}={v}") for k, v in facts.labels.items())
    return items


def docker_run_command(ctx: Ctx) -> str:
    spec = desired(ctx)
    argv = ["docker", "run", "-d", "--name", spec["name"], "--restart=always"]
    argv += ["-p", f"{ctx.plan.registry.port}:5000"]
    for src, v in spec["volumes"].items():
        argv += ["-v", f"{src}:{v['bind']}" + (":ro" if v["mode"] == "ro" else "")]
    for k, val in spec["env"].items():
        argv += ["-e", f"{k}={val}"]
    for k, val in spec["labels"].items():
        argv += ["--label", f"{k}={val}"]
    return shlex.join([*argv, spec["image"], *spec["command"]])


def registry_facts(ctx: Ctx, e: HostEntry):  # noqa: ANN201
    """(RegistryFacts, container) of the plan's container, or (None, None)."""
    name = ctx.plan.registry.container

    def get():  # noqa: ANN202
        facts, c, _read = read.registry(e.host, name)
        return facts, c

    return ctx.fact("registry", e, get)


@dataclass(frozen=True)
class Migration:
    """Copy the old container's images into the plan's storage before replacing it."""

    kind: str  # layer | bind | volume
    root: str  # the registry's data directory inside the old container
    what: str  # in words
    command: str  # the shell equivalent
    source: str = ""  # the host directory (bind, volume)
    volume: str = ""  # the volume's name (kept afterwards)
    size: int = 0  # bytes to copy (0: unknown)


@dataclass(frozen=True)
class ContainerChange(Change):
    action: str = "create"  # create | recreate | start | restart | policy
    policy: bool = False  # also set the restart policy to always
    migrate: Migration | None = None
    end_maintenance: bool = False  # remove the gc marker once the registry restarted


class Container(Step[ContainerChange]):
    name = "container"
    title = "Registry container"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        return (docker_run_command(ctx),)

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | ContainerChange:
        want = desired(ctx)
        name = want["name"]
        facts, c = registry_facts(ctx, e)
        replace = (shlex.join(["docker", "rm", "-f", name]), docker_run_command(ctx))
        left = maintenance_left(ctx, e)
        where = f"container {name}"
        if facts is None:
            return ContainerChange(
                f"create {name}",
                self.script(ctx),
                "create",
                end_maintenance=left,
                diffs=(FileDiff(e.label, where, None, settings(desired_settings(want))),),
            )
        labelled = facts.config_hash == want["labels"][LABEL_HASH]
        seen = observed_drift(facts, want, ctx.plan.registry.port) if labelled else ""
        if not labelled or seen:
            refuse(facts)
            refuse_storage(ctx, facts)
            why = "configuration differs" if facts.managed else "not made by regwizard"
            why += f" ({seen})" if seen else ""
            mig = plan_migration(ctx, e, facts, c)
            detail = f"recreate {name}: {why}"
            cmds = replace
            now = settings(observed_settings(facts, c))
            diffs = (FileDiff(e.label, where, now, settings(desired_settings(want))),)
            if mig is not None:
                size = f" ({_mib(mig.size)})" if mig.size else ""
                storage = ctx.plan.registry.storage
                detail += f"; first copy its images from {mig.what} to {storage}{size}"
                cmds = (mig.command, *cmds)
                diffs += (
                    FileDiff(
                        e.label, storage, None, None,
                        f"images copied here from {mig.what}{size}; the source is kept",
                    ),
                )  # fmt: skip
            return ContainerChange(
                detail, cmds, "recreate", migrate=mig, end_maintenance=left, diffs=diffs
            )
        fix_policy = facts.restart_policy != "always"
        pol_cmd = (
            (shlex.join(["docker", "update", "--restart=always", name]),) if fix_policy else ()
        )
        pol_text = f"; restart policy {facts.restart_policy} -> always" if fix_policy else ""
        restart = (*pol_cmd, shlex.join(["docker", "restart", name]))
        if facts.crash_looping():
            return ContainerChange(
                f"restart {name}: it is crash-looping{pol_text}",
                restart,
                "restart",
                fix_policy,
                end_maintenance=left,
            )
        if not facts.running:
            return ContainerChange(
                f"start {name} (it is {facts.status or 'not running'}){pol_text}",
                (*pol_cmd, shlex.join(["docker", "start", name])),
                "start",
                fix_policy,
                end_maintenance=left,
            )
        if left:
            return ContainerChange(
                f"restart {name}: a cut `regwizard gc` left it read-only (the registry reads "
                f"config.yml only at start){pol_text}",
                (*restart, shlex.join(["rm", "-f", "--", ctx.layout.maintenance_marker])),
                "restart",
                fix_policy,
                end_maintenance=True,
            )
        pending = self._restart_pending(ctx, e)
        if pending:
            what = _pending_what(pending)
            return ContainerChange(
                f"restart {name}: its {what} changed in {ctx.layout.config_path} "
                f"(read at start){pol_text}",
                restart,
                "restart",
                fix_policy,
            )
        stale = self._serves_old_certificate(ctx, e)
        if stale:
            return ContainerChange(f"restart: {stale}{pol_text}", restart, "restart", fix_policy)
        if fix_policy:
            now = observed_settings(facts, c)
            after = [(k, "always" if k == "restart" else v) for k, v in now]
            return ContainerChange(
                f"restart policy of {name} is {facts.restart_policy}: set always (survives "
                "reboots)",
                pol_cmd,
                "policy",
                True,
                diffs=(FileDiff(e.label, where, settings(now), settings(after)),),
            )
        return Unchanged(f"{name} running as planned")

    def _restart_pending(self, ctx: Ctx, e: HostEntry) -> str:
        """The config step's restart-pending mark (a mirror's new upstream login, a new
        S3 secret key, a replica's new http secret): its text, "" when there is none."""
        if not secret_restarts(ctx):
            return ""
        path = ctx.layout.restart_pending
        got = snapshot(e.host, files=[path]).files.get(path)
        return "" if got is None else (got.decode(errors="replace").strip() or "pending")

    def _serves_old_certificate(self, ctx: Ctx, e: HostEntry) -> str:
        """Why the running registry must reload its certificate ("" when it need not)."""
        disk = tls_files(ctx, e).cert
        if not disk:
            return ""
        now = served(ctx, e)
        if not now.tls or not now.pem:
            return ""  # not answering yet: Health waits for it
        from regwizard import pki

        if pki.inspect_cert(now.pem).sha256 == pki.inspect_cert(disk).sha256:
            return ""
        return (
            f"it serves an older certificate than {ctx.layout.cert_path} (TLS is loaded at start)"
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: ContainerChange) -> str:
        import docker.errors

        client = e.host.docker(120)
        name = ctx.plan.registry.container
        try:
            if change.action in ("start", "restart", "policy"):
                c = client.containers.get(name)
                done = []
                if change.policy:
                    c.update(restart_policy={"Name": "always", "MaximumRetryCount": 0})
                    done.append("set restart policy always")
                if change.action != "policy":
                    (c.start if change.action == "start" else c.restart)()
                    done.append(f"{change.action}ed {name}")
                    _clear_restart_pending(ctx, e)
                end_maintenance(ctx, e, change)
                return f"{'; '.join(done)} ({change.detail})"
            want = desired(ctx)
            kept = ""
            if change.action == "recreate":
                try:
                    old = client.containers.get(name)
                except docker.errors.NotFound:
                    old = None
                if old is not None:
                    refuse(read.facts_of(e.host, old))
                    if change.migrate is not None:
                        migrate(ctx, e, old, change.migrate)
                    ctx.log(self.name, e, f"removing old container {name} (its volumes are kept)")
                    old.remove(force=True, v=False)  # never delete data volumes
                    if change.migrate is not None and change.migrate.volume:
                        kept = change.migrate.volume
                        ctx.log(
                            self.name,
                            e,
                            f"kept the old volume {kept}: nothing was deleted; remove it "
                            f"yourself once satisfied (docker volume rm {kept})",
                        )
            try:
                c = client.containers.run(
                    want["image"],
                    want["command"],
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
            _await_start(ctx, e, c)
            if c.status != "running":
                logs = c.logs(tail=20).decode(errors="replace")
                raise StepError(
                    f"the registry container exited right after start ({c.status})",
                    "see its last log lines",
                    clean(logs),
                )
            _clear_restart_pending(ctx, e)
            end_maintenance(ctx, e, change)
            mig = change.migrate
            if mig is not None:
                return f"{change.action}d {name}; images copied from {mig.what}" + (
                    f" (old volume {kept[:12]} kept)" if kept else ""
                )
            return f"{change.action}d {name}"
        finally:
            ctx.forget(e)


START_GRACE = 0.5  # a registry that exits on a bad config does so well within this


def _answers(ctx: Ctx, e: HostEntry) -> bool:
    """The registry itself answers on its port (docker-proxy accepts connections even
    before the process in the container listens, so only a TLS answer counts)."""
    from regwizard.facts.tls import Untrusted
    from regwizard.steps.trust import anchor

    reg = ctx.plan.registry
    try:
        ctx.net.request(reg.domain, ctx.target_of(e), reg.port, anchor(ctx), "/v2/", timeout=1)
    except Untrusted:
        return True  # it speaks TLS: the health step says what is wrong with it
    except Exception:  # noqa: BLE001 - not listening yet, reset by docker-proxy, ...
        return False
    return True


def _await_start(ctx: Ctx, e: HostEntry, c) -> None:  # noqa: ANN001
    """Wait until the new container serves, exits, or START_GRACE passes. A registry
    that serves has read its config; one that exits is reported with its logs. Polling
    ends as soon as either shows (usually about 0.1 s) instead of a fixed wait."""
    deadline = time.monotonic() + START_GRACE
    while True:
        c.reload()
        if c.status != "running" or time.monotonic() >= deadline or _answers(ctx, e):
            return
        ctx.check_cancel()
        time.sleep(0.05)


def secret_restarts(ctx: Ctx) -> bool:
    """The plan has a secret that config.yml holds but content_hash leaves out (a mirror's
    upstream login, the S3 secret key, the http secret replicas share): a change of it
    restarts through restart-pending. A one-host filesystem plan never reads or removes
    the mark (its fixtures hold no such command)."""
    plan = ctx.plan
    return bool(plan.registry.proxy_remote_url or plan.storage.is_s3 or plan.replicas)


def _pending_what(text: str) -> str:
    """What changed, from the mark's text ("the S3 secret key changed" -> "S3 secret key")."""
    for what in ("http secret", "S3 secret key", "upstream login"):
        if what in text:
            return what
    return "configuration"


def _clear_restart_pending(ctx: Ctx, e: HostEntry) -> None:
    """The registry (re)started and read config.yml: a pending restart is done."""
    if secret_restarts(ctx):
        e.host.run(["rm", "-f", "--", ctx.layout.restart_pending], check=False, timeout=30)


def maintenance_left(ctx: Ctx, e: HostEntry) -> bool:
    """A `regwizard gc` marker is on the host: the running registry may be read-only."""
    marker = ctx.layout.maintenance_marker
    return (
        ctx.fact("maintenance", e, lambda: read.snapshot(e.host, files=[marker])).files.get(marker)
        is not None
    )


def end_maintenance(ctx: Ctx, e: HostEntry, change: ContainerChange) -> None:
    """The registry restarted with the plan's (read-write) config: the gc marker goes."""
    if change.end_maintenance:
        e.host.run(["rm", "-f", "--", ctx.layout.maintenance_marker], timeout=30)
        ctx.log("container", e, "read-write again: removed the `regwizard gc` marker")


def observed_drift(facts: RegistryFacts, want: dict, port: int) -> str:
    """What docker inspect shows differing from the plan although the label matches (a
    hand-edited copy of the printed `docker run`, which carries the label): "" if nothing."""
    if facts.image != want["image"]:
        return f"image {facts.image}"
    if facts.host_network or set(facts.published.get(5000, ())) != {port}:
        return "published ports"
    binds = {(m.source.rstrip("/"), m.destination) for m in facts.mounts if m.kind == "bind"}
    for src, v in want["volumes"].items():
        if (src.rstrip("/"), v["bind"]) not in binds:
            return f"mount {v['bind']}"
    return ""


def refuse_storage(ctx: Ctx, facts: RegistryFacts) -> None:
    """Refuse a replacement that would hide the running registry's images in a bucket
    (the plan says filesystem). Nothing is deleted either way; the reverse, filesystem
    data with an s3 plan, is refused by the storage step and ``plan_migration``."""
    st = facts.storage
    if st.driver == "s3" and not ctx.plan.storage.is_s3:
        spec = s3_spec(st)
        raise StepError(
            f"{facts.name} keeps its images in S3 bucket {spec.bucket} ({spec.endpoint}); the "
            f"plan says filesystem storage, so the new container would start empty",
            f'set [storage] driver = "s3", bucket = "{spec.bucket}", endpoint = '
            f'"{spec.endpoint}" in the plan (regwizard adopt writes them), or copy the '
            "bucket's data into registry.storage first and remove this container yourself",
        )


def refuse(facts: RegistryFacts) -> None:
    """Refuse to replace a container whose setup a plan cannot express."""
    if facts.managed:
        return
    found = problems.unsupported(facts)
    if found:
        raise StepError(
            f"{facts.name} cannot be replaced: " + "; ".join(p.message for p in found),
            "regwizard leaves it running as it is. Manage this registry by hand, or move its "
            "images to filesystem storage first",
        )


# --------------------------------------------------------------------------- migration


def plan_migration(ctx: Ctx, e: HostEntry, facts: RegistryFacts, c) -> Migration | None:  # noqa: ANN001
    """Where the old container keeps its images, when that is not the plan's storage.

    The tutorial's ``-e STORAGE_PATH`` (a v1 setting) leaves them in an anonymous volume;
    a config.yml may set another root directory; others bind another host directory, or
    nothing (the writable layer). None when there is nothing to copy. Refuses (StepError)
    when the copy would not fit in the free space at the plan's storage.
    """
    st = facts.storage
    dst = ctx.plan.registry.storage.rstrip("/")
    q = shlex.quote
    if st.kind == "layer":
        size = _layer_size(e, c)
        mig = Migration(
            "layer",
            st.root,
            f"{facts.name}'s writable layer ({st.root})",
            shlex.join(["docker", "cp", f"{facts.name}:{st.root}/.", f"{dst}/"]),
            size=size,
        )
    elif st.kind in ("bind", "volume", "anonymous-volume") and st.host_path:
        src = st.host_path.rstrip("/")
        if src == dst:
            return None
        if e.host.run(["test", "-d", f"{src}/docker"], check=False, timeout=30).rc != 0:
            return None  # nothing stored there yet
        vol = st.mount.name if st.mount is not None and st.mount.kind == "volume" else ""
        if vol:
            anonymous = st.mount is not None and st.mount.anonymous
            shown = vol[:12] if anonymous else vol
            what = f"{'anonymous ' if anonymous else ''}volume {shown} ({src})"
        else:
            what = src
        mig = Migration(
            "volume" if vol else "bind",
            st.root,
            what,
            f"cp -a {q(src + '/.')} {q(dst + '/')}",
            source=src,
            volume=vol,
            size=_du(e, src),
        )
    else:
        if st.kind == "tmpfs":
            ctx.log("container", e, f"{facts.name} keeps images on a tmpfs: they cannot be kept")
        return None
    if ctx.plan.storage.is_s3:
        if mig.kind == "layer" and not mig.size:
            return None  # an empty writable layer: nothing to lose
        raise StepError(
            f"{facts.name} keeps images in {mig.what}; the plan says S3 storage, so they "
            f"would disappear from view",
            f"copy {st.host_path or st.root} into bucket {ctx.plan.storage.bucket} first "
            "(e.g. aws s3 sync DIR/docker s3://BUCKET/docker, or weed filer.copy), then rerun; "
            'or keep [storage] driver = "filesystem". Nothing was changed',
        )
    _check_space(e, dst, mig)
    return mig


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 10 * 2**20 else f"{n // 2**20} MiB"


def _du(e: HostEntry, path: str) -> int:
    r = e.host.run(["du", "-sb", "--", path], check=False, timeout=300)
    try:
        return int(r.stdout.split()[0])
    except (IndexError, ValueError):
        return 0


def _layer_size(e: HostEntry, c) -> int:  # noqa: ANN001
    """The container's writable layer (SizeRw): an upper bound of the images in it."""
    try:
        found = e.host.docker(60).api.containers(all=True, size=True, filters={"id": c.id})
    except Exception:  # noqa: BLE001 - unknown size: the copy is checked as it goes
        return 0
    return int((found[0] if found else {}).get("SizeRw") or 0)


def _check_space(e: HostEntry, dst: str, mig: Migration) -> None:
    if not mig.size:
        return
    try:
        free = e.host.free_bytes(dst)
    except RegwizardError:
        return
    if mig.size + SPACE_MARGIN > free:
        raise StepError(
            f"the images in {mig.what} ({_mib(mig.size)}) do not fit in {dst}: "
            f"{free // 2**20} MiB free there, and {SPACE_MARGIN // 2**20} MiB must stay free",
            "free space on that filesystem, or set registry.storage to a directory on a larger "
            "one; nothing was changed",
        )


def migrate(ctx: Ctx, e: HostEntry, old, mig: Migration) -> None:  # noqa: ANN001
    """Copy the old container's images into the plan's storage; never delete the source.

    The old container is stopped first (no upload in flight) and started again when the
    copy fails. Tags already in the destination are backed up, then the old registry's
    win: it is the one clients used. Long copies report progress in the log.
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
            backup(ctx, e, repos, "container")
        ctx.log("container", e, f"copying images from {mig.what} to {dst}")
        if mig.kind == "layer":
            argv = ["docker", "cp", f"{old.name}:{mig.root}/.", f"{dst}/"]
        else:
            argv = ["cp", "-a", "--", f"{mig.source}/.", f"{dst}/"]
        r = _copy_with_progress(ctx, e, argv, dst, mig.size)
        err = r.stderr.decode(errors="replace")
        if r.rc != 0 and not (mig.kind == "layer" and "could not find the file" in err.lower()):
            raise StepError(
                f"copying the images from {mig.what} failed: {clean(err, 200)}",
                "check free space in the storage path, then rerun (the source is untouched)",
                clean(err),
            )
    except BaseException:
        if was_running:
            try:
                old.start()
            except Exception:  # noqa: BLE001 - the copy error is the one to report
                pass
        raise


def _copy_with_progress(ctx: Ctx, e: HostEntry, argv: list[str], dst: str, total: int):  # noqa: ANN202
    """Run the copy; every few seconds, log how much has arrived."""
    start = _du(e, dst) if total else 0
    done = threading.Event()
    result: list = []

    def run() -> None:
        try:
            result.append(e.host.run(argv, check=False, timeout=6 * 3600))
        except BaseException as ex:  # noqa: BLE001 - re-raised in the caller's thread
            result.append(ex)
        finally:
            done.set()

    copied = Reporter(ctx.emit, "container", e.label, "copying images", total or None)
    copied.update(0)
    t = threading.Thread(target=run, name="regwizard-copy", daemon=True)
    t.start()
    while not done.wait(PROGRESS_EVERY):
        if total:
            got = max(0, _du(e, dst) - start)
            pct = min(100, got * 100 // total)
            ctx.log("container", e, f"copied {_mib(got)} of {_mib(total)} ({pct}%)")
            copied.update(got)
    t.join()
    out = result[0]
    if isinstance(out, BaseException):
        raise out
    if out.rc == 0:
        copied.finish()
    return out
