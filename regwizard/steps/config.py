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
from regwizard.steps.base import Change, Ctx, HostEntry, Step, Unchanged, backup, move_into

SECRET_MARK = "@HTTP_SECRET@"  # in the shell equivalent: replaced by a random secret


Upstream = tuple[str, str]  # a mirror's (username, password) on its upstream


def render(
    ctx: Ctx, secret: str, upstream: Upstream | None = None, *, readonly: bool = False
) -> str:
    """The configuration the plan wants, with ``secret`` as the http secret (and, for a
    mirror, ``upstream`` as its login on the upstream: None = anonymous).

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
        "  filesystem:\n"
        f"    rootdirectory: {yaml_str(C_DATA)}\n"
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
    upstream login): changes when a setting changes. A changed upstream login restarts
    the registry through ``restart-pending`` instead (layout.Layout.restart_pending)."""
    return hashlib.sha256(render(ctx, "-").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConfigChange(Change):
    text: str = ""  # the whole new file (holds the secret: never shown)
    retire_legacy_secret: bool = False
    restart: bool = False  # a mirror's upstream login changed: the registry must reload it
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
        return (
            shlex.join(["mkdir", "-p", "-m", "700", lay.registry_dir]),
            f"umask 077; cat > {path} <<'EOF'\n{render(ctx, SECRET_MARK)}EOF",
            f'sed -i "s/{SECRET_MARK}/$(openssl rand -hex 32)/" {path}',
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | ConfigChange:
        lay = ctx.layout
        stored = stored_config(ctx, e)
        have, legacy, parsed = stored.have, stored.legacy, stored.parsed
        # keep the secret the running registry uses (an earlier version's file included);
        # a replica takes the primary's (shared_secret), so replicas agree
        secret = shared_secret(ctx) if len(ctx.registries) > 1 else stored.secret
        secret = secret or _secrets.token_hex(32)
        upstream = wanted_upstream(ctx, parsed)
        want = render(ctx, secret, upstream)
        if have is not None and have.decode(errors="replace") == want and not legacy:
            return Unchanged(f"{lay.config_path} is current")
        url = ctx.plan.registry.proxy_remote_url
        # the secret and a login are read once, at start, and neither is in the container's
        # config-hash label: a change restarts through restart-pending
        login_changed = (
            have is not None
            and bool(url)
            and isinstance(parsed.get("proxy"), dict)
            and _stored_upstream(parsed, url) != upstream
        )
        secret_changed = have is not None and bool(stored.secret) and stored.secret != secret
        restart = login_changed or secret_changed
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
                "the upstream login changed: the registry restarts to load it)"
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
            read_only(parsed),
            secret_changed,
            diffs=config_diffs(ctx, e, have, want, parsed, secret, legacy, upstream, stored.secret),
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: ConfigChange) -> str:
        lay = ctx.layout
        e.host.makedirs(lay.config_dir, 0o700)
        e.host.makedirs(lay.registry_dir, 0o700)
        backup(ctx, e, lay.config_path, self.name, into=lay.backups_dir)
        if change.restart:  # first: a run cut after the write still restarts next time
            why = b"http secret changed\n" if change.secret_changed else b"upstream login changed\n"
            e.host.write_file(lay.restart_pending, why, 0o600)
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
    old_secret: str = "",
) -> tuple[FileDiff, ...]:
    """config.yml before and after with every secret redacted: secret-like keys by name,
    and the values known here (the http secret kept or made, the legacy file's, the
    upstream login stored and wanted) wherever else they appear."""
    lay = ctx.layout
    proxy = parsed.get("proxy") if isinstance(parsed.get("proxy"), dict) else {}
    known = [secret, old_secret, legacy, ctx.secrets.upstream_password, proxy.get("password")]
    known += [upstream[1]] if upstream else []
    known = [k for k in known if isinstance(k, str) and k]
    before = None if have is None else redact(have.decode(errors="replace"), known)
    out = [FileDiff(e.label, lay.config_path, before, redact(want, known))]
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
