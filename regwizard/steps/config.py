"""7. The registry's configuration file: every setting in one root-only file.

``registry/config.yml`` (0600 in a 0700 directory, mounted read-only at
/etc/distribution) holds the whole configuration, the http secret included, so
``docker inspect`` shows no secret. The registry loads it once at start: the container
step recreates the container when its content changes (its hash is in a label).
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
import shlex
from dataclasses import dataclass

from regwizard.diffs import redact
from regwizard.events import FileDiff
from regwizard.facts.read import snapshot
from regwizard.facts.registry import parse_config, read_only, yaml_str
from regwizard.layout import C_AUTH, C_DATA
from regwizard.steps.base import (
    Change,
    Ctx,
    HostEntry,
    Step,
    StepError,
    Unchanged,
    backup,
    move_into,
)

SECRET_MARK = "@HTTP_SECRET@"  # in the shell equivalent: replaced by a random secret
S3_SECRET_MARK = "@S3_SECRET_KEY@"  # in the shell equivalent: the person puts the key there


Upstream = tuple[str, str]  # a mirror's (username, password) on its upstream


def render(
    ctx: Ctx,
    secret: str,
    upstream: Upstream | None = None,
    *,
    readonly: bool = False,
    s3_secret: str = "",
) -> str:
    """The configuration the plan wants, with ``secret`` as the http secret (and, for a
    mirror, ``upstream`` as its login on the upstream: None = anonymous; for S3 storage,
    ``s3_secret`` as the access key's secret).

    ``readonly``: only `regwizard gc` asks for it (never a plan key): pushes are refused
    while garbage-collect runs, pulls go on."""
    lay, reg = ctx.layout, ctx.plan.registry
    maintenance = "  maintenance:\n    readonly:\n      enabled: true\n" if readonly else ""
    return (
        "# written by regwizard: rerun `regwizard apply` rather than editing it\n"
        "version: 0.1\n"
        "log:\n"
        "  fields:\n"
        "    service: registry\n"
        "storage:\n"
        f"{_driver(ctx, s3_secret)}"
        "  delete:\n"
        f"    enabled: {'true' if reg.allow_delete else 'false'}\n"
        f"{maintenance}"
        "http:\n"
        '  addr: ":5000"\n'
        f"  secret: {yaml_str(secret)}\n"
        "  tls:\n"
        f"    certificate: {yaml_str(lay.c_cert)}\n"
        f"    key: {yaml_str(lay.c_key)}\n"
        "  headers:\n"
        "    X-Content-Type-Options: [nosniff]\n"
        "auth:\n"
        "  htpasswd:\n"
        f"    realm: {yaml_str(reg.realm)}\n"
        f"    path: {yaml_str(f'{C_AUTH}/htpasswd')}\n"
    ) + _proxy(ctx, upstream)


def _driver(ctx: Ctx, s3_secret: str) -> str:
    """The storage driver's part of ``storage:``: the filesystem root, or the bucket."""
    st = ctx.plan.storage
    if not st.is_s3:
        return f"  filesystem:\n    rootdirectory: {yaml_str(C_DATA)}\n"
    secure = "true" if st.endpoint.lower().startswith("https://") else "false"
    root = f"    rootdirectory: {yaml_str(st.root_directory)}\n" if st.root_directory else ""
    # redirect off: else blob GETs are redirected to presigned URLs on the object store,
    # which every client would then have to reach and trust
    return (
        "  s3:\n"
        f"    accesskey: {yaml_str(st.access_key)}\n"
        f"    secretkey: {yaml_str(s3_secret)}\n"
        f"    region: {yaml_str(st.region)}\n"
        f"    regionendpoint: {yaml_str(st.endpoint)}\n"
        f"    bucket: {yaml_str(st.bucket)}\n"
        f"    secure: {secure}\n"
        "    v4auth: true\n"
        f"{root}"
        "  redirect:\n"
        "    disable: true\n"
    )


def _stored_s3(parsed: dict) -> tuple[str, str]:
    """(accesskey, secretkey) of config.yml's storage.s3 ("" for what is not there)."""
    storage = parsed.get("storage") if isinstance(parsed.get("storage"), dict) else {}
    s3 = storage.get("s3") if isinstance(storage.get("s3"), dict) else {}
    key, secret = s3.get("accesskey"), s3.get("secretkey")
    return (key if isinstance(key, str) else "", secret if isinstance(secret, str) else "")


def stored_s3_secret(ctx: Ctx, parsed: dict) -> str:
    """The secret config.yml holds for the plan's access key ("" when none, or another key)."""
    key, secret = _stored_s3(parsed)
    return secret if key and key == ctx.plan.storage.access_key else ""


def wanted_s3_secret(ctx: Ctx, parsed: dict) -> str:
    """The S3 secret key to write: the one given for this run, else the one stored for
    the same access key (a rerun without it changes nothing); "" for filesystem storage
    or when there is none."""
    if not ctx.plan.storage.is_s3:
        return ""
    return ctx.secrets.s3_secret_key or stored_s3_secret(ctx, parsed)


NO_S3_SECRET_FIX = (
    "give the S3 secret key of the plan's access_key: --s3-secret-file FILE (first line), "
    "REGWIZARD_S3_SECRET_KEY, or the prompt on a terminal"
)


def _proxy(ctx: Ctx, upstream: Upstream | None) -> str:
    """A mirror's ``proxy:`` section ("" for an ordinary registry)."""
    url = ctx.plan.registry.proxy_remote_url
    if not url:
        return ""
    out = f"proxy:\n  remoteurl: {yaml_str(url)}\n"
    if upstream is not None:
        out += f"  username: {yaml_str(upstream[0])}\n  password: {yaml_str(upstream[1])}\n"
    return out


def _stored_upstream(parsed: dict, url: str) -> Upstream | None:
    """The upstream login config.yml holds for ``url`` (None: none, or another upstream)."""
    proxy = parsed.get("proxy") if isinstance(parsed.get("proxy"), dict) else {}
    user, pw = proxy.get("username"), proxy.get("password")
    if proxy.get("remoteurl") != url or not isinstance(user, str) or not user:
        return None
    return (user, pw if isinstance(pw, str) else "")


def wanted_upstream(ctx: Ctx, parsed: dict) -> Upstream | None:
    """The login to write: the one given for this run, else the one stored for the same
    upstream (a rerun without credentials changes nothing), else anonymous."""
    reg, sec = ctx.plan.registry, ctx.secrets
    if not reg.proxy_remote_url or sec.upstream_anonymous:
        return None
    if sec.upstream_user:
        return (sec.upstream_user, sec.upstream_password)
    return _stored_upstream(parsed, reg.proxy_remote_url)


def content_hash(ctx: Ctx) -> str:
    """A hash of the configuration without its secrets (the http secret, a mirror's
    upstream login, the S3 secret key): changes when a setting changes. A changed upstream
    login or S3 secret restarts the registry through ``restart-pending`` instead
    (layout.Layout.restart_pending)."""
    return hashlib.sha256(render(ctx, "-").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConfigChange(Change):
    text: str = ""  # the whole new file (holds the secret: never shown)
    retire_legacy_secret: bool = False
    # a mirror's upstream login or the S3 secret key changed: the registry must reload it
    restart: bool = False
    restart_why: str = ""
    was_read_only: bool = False  # the running registry refuses pushes until it restarts
    secret_changed: bool = False  # a replica takes the shared http secret: restart to load it


@dataclass(frozen=True)
class StoredConfig:
    """config.yml on one registry host, as check reads it (the secret never shown)."""

    have: bytes | None
    legacy: str  # an earlier version's http-secret file
    parsed: dict
    secret: str  # http.secret in the file, else the legacy file's, else ""


def stored_config(ctx: Ctx, e: HostEntry) -> StoredConfig:
    def read() -> StoredConfig:
        lay = ctx.layout
        snap = snapshot(e.host, files=[lay.config_path, lay.legacy_secret])
        have = snap.files.get(lay.config_path)
        legacy = (snap.files.get(lay.legacy_secret) or b"").decode(errors="replace").strip()
        parsed, _err = parse_config(have)
        http = parsed.get("http") if isinstance(parsed.get("http"), dict) else {}
        secret = http.get("secret") if isinstance(http.get("secret"), str) else ""
        return StoredConfig(have, legacy, parsed, secret or legacy)

    return ctx.fact("config-yml", e, read)


def shared_secret(ctx: Ctx) -> str:
    """The one http secret of every registry host (an upload started on one replica
    finishes on another): the primary's, else the first replica's that has one, else a
    new one, made once per run (until a host's facts are forgotten)."""

    def pick() -> str:
        for r in ctx.registries:
            if r.host is not None and (found := stored_config(ctx, r).secret):
                return found
        return _secrets.token_hex(32)

    return ctx.fact("http-secret", None, pick)


class Config(Step[ConfigChange]):
    name = "config"
    title = "Registry configuration"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        lay = ctx.layout
        path = shlex.quote(lay.config_path)
        # a quoted heredoc expands nothing; the secret goes in afterwards, never shown
        s3 = S3_SECRET_MARK if ctx.plan.storage.is_s3 else ""
        out = (
            shlex.join(["mkdir", "-p", "-m", "700", lay.registry_dir]),
            f"umask 077; cat > {path} <<'EOF'\n{render(ctx, SECRET_MARK, s3_secret=s3)}EOF",
            # only on the secret's line: a realm may hold the same text
            f'sed -i "/^  secret: /s/{SECRET_MARK}/$(openssl rand -hex 32)/" {path}',
        )
        if s3:
            out += (f"# edit {path}: put the S3 secret key in place of {S3_SECRET_MARK}",)
        return out

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | ConfigChange:
        lay = ctx.layout
        stored = stored_config(ctx, e)
        have, legacy, parsed = stored.have, stored.legacy, stored.parsed
        # keep the secret the running registry uses (an earlier version's file included);
        # a replica takes the primary's (shared_secret), so replicas agree
        secret = shared_secret(ctx) if len(ctx.registries) > 1 else stored.secret
        secret = secret or _secrets.token_hex(32)
        upstream = wanted_upstream(ctx, parsed)
        s3_secret = wanted_s3_secret(ctx, parsed)
        if ctx.plan.storage.is_s3 and not s3_secret:
            raise StepError(
                f"no S3 secret key for access key {ctx.plan.storage.access_key}: none was "
                f"given, and {lay.config_path} holds none for that key",
                NO_S3_SECRET_FIX,
            )
        want = render(ctx, secret, upstream, s3_secret=s3_secret)
        if have is not None and have.decode(errors="replace") == want and not legacy:
            return Unchanged(f"{lay.config_path} is current")
        url = ctx.plan.registry.proxy_remote_url
        # secrets are read once, at start, and none is in the container's config-hash
        # label: a change restarts through restart-pending (a new URL or key id
        # recreates the container anyway: content_hash)
        restart_why = ""
        if (
            have is not None
            and bool(url)
            and isinstance(parsed.get("proxy"), dict)
            and _stored_upstream(parsed, url) != upstream
        ):
            restart_why = "the upstream login changed"
        stored_s3 = stored_s3_secret(ctx, parsed)
        if have is not None and stored_s3 and stored_s3 != s3_secret:
            restart_why = "the S3 secret key changed"
        secret_changed = have is not None and bool(stored.secret) and stored.secret != secret
        if secret_changed:
            restart_why = "the http secret changed"
        restart = bool(restart_why)
        if have is None:
            detail = f"write {lay.config_path}"
        elif read_only(parsed):
            detail = f"rewrite {lay.config_path}: read-write again (a cut `regwizard gc` left it read-only)"
        elif secret_changed:
            detail = (
                f"rewrite {lay.config_path}: its http secret differs from "
                f"{ctx.registry.label}'s (the registry restarts to load the shared one)"
            )
        elif have.decode(errors="replace") != want:
            detail = f"rewrite {lay.config_path} (" + (
                f"{restart_why}: the registry restarts to load it)"
                if restart
                else "settings differ)"
            )
        else:
            detail = f"retire {lay.legacy_secret} (the secret is in {lay.config_path})"
        return ConfigChange(
            detail,
            self.script(ctx),
            want,
            bool(legacy),
            restart,
            restart_why,
            read_only(parsed),
            secret_changed,
            diffs=config_diffs(
                ctx, e, have, want, parsed, secret, legacy, upstream, restart_why, stored.secret
            ),
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: ConfigChange) -> str:
        lay = ctx.layout
        e.host.makedirs(lay.config_dir, 0o700)
        e.host.makedirs(lay.registry_dir, 0o700)
        backup(ctx, e, lay.config_path, self.name, into=lay.backups_dir)
        if change.restart:  # first: a run cut after the write still restarts next time
            why = change.restart_why or "a secret changed"
            e.host.write_file(lay.restart_pending, f"{why}\n".encode(), 0o600)
        if change.was_read_only and not e.host.exists(lay.maintenance_marker):
            # the marker makes the container step restart the registry (config is read at start)
            e.host.write_file(lay.maintenance_marker, b"reason: config.yml was read-only\n", 0o600)
        e.host.write_file(lay.config_path, change.text.encode(), 0o600)
        if change.retire_legacy_secret:
            moved = move_into(e.host, lay.legacy_secret, lay.backups_dir)
            if moved:
                ctx.log(self.name, e, f"moved {lay.legacy_secret} -> {moved}")
        ctx.forget(e)
        return change.detail


def config_diffs(
    ctx: Ctx,
    e: HostEntry,
    have: bytes | None,
    want: str,
    parsed: dict,
    secret: str,
    legacy: str,
    upstream: Upstream | None,
    restart_why: str = "",
    old_secret: str = "",
) -> tuple[FileDiff, ...]:
    """config.yml before and after with every secret redacted: secret-like keys by name,
    and the values known here (the http secret kept or made, the legacy file's, the
    upstream login stored and wanted, the S3 secret key given and stored) wherever else
    they appear."""
    lay = ctx.layout
    proxy = parsed.get("proxy") if isinstance(parsed.get("proxy"), dict) else {}
    known = [secret, old_secret, legacy, ctx.secrets.upstream_password, proxy.get("password")]
    known += [ctx.secrets.s3_secret_key, _stored_s3(parsed)[1]]
    known += [upstream[1]] if upstream else []
    known = [k for k in known if isinstance(k, str) and k]
    before = None if have is None else redact(have.decode(errors="replace"), known)
    out = [FileDiff(e.label, lay.config_path, before, redact(want, known))]
    if restart_why:  # the redacted texts may be equal: say what changed, never its value
        note = f"{restart_why} (its value is never shown): the registry restarts to load it"
        out.append(FileDiff(e.label, lay.config_path, None, None, note))
    if legacy:
        out.append(
            FileDiff(
                e.label,
                lay.legacy_secret,
                None,
                None,
                f"moved into {lay.backups_dir} (the secret is in {lay.config_path})",
            )  # fmt: skip
        )
    return tuple(out)
