"""``~/.ssh/config``: where a plan's host really is (HostName, User, Port, IdentityFile,
ProxyJump / ProxyCommand, HostKeyAlias), and where each value came from.

``resolve(conn) -> Route`` is the one resolver; ``hosts.SSHHost`` connects through it,
adopt, the dry run and the wizard's connection form show it.

Precedence is OpenSSH's, with one rule of ours: a plan value that differs from
``Connection``'s default (port 22, user root, key ~/.ssh/id_ed25519) is explicit and wins;
a plan value equal to that default counts as unset, so the config's value (if any) wins
over it; what neither sets keeps the default. (A plan cannot say "port 22, whatever the
config says": remove the Port line from the config for that host instead.)

Parsing is paramiko's ``SSHConfig`` with these differences, all deliberate:
- ``Include`` is expanded here (paramiko has none): globs, relative to ~/.ssh, nested up
  to 16 deep; the included text is inlined where the Include line stands.
- ``Match`` blocks are ignored (never applied; ``Match exec`` would run commands), and so
  are ``CanonicalizeHostname`` / ``AddressFamily`` (they make paramiko look names up).
- Tokens are expanded as paramiko does for HostName, IdentityFile, ProxyCommand and
  ProxyJump (``%h %p %r %u %d ~ %%``), but never ``%l`` / ``%C`` through DNS: ``%l`` is
  the local short host name.
A missing file is no config. An unreadable or malformed one is a RegwizardError (cause +
fix), never a traceback.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import socket
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .errors import RegwizardError
from .plan import Connection

__all__ = ["DEFAULTS", "Jump", "Route", "config_path", "parse_jumps", "resolve"]

DEFAULTS = Connection()  # the values that count as "not set" in a plan
_MAX_INCLUDE_DEPTH = 16
_MAX_BYTES = 1 << 20
_DROPPED = ("canonicalizehostname", "canonicaldomains", "canonicalizemaxdots", "addressfamily")
_KEYWORD = re.compile(r"\s*(\w+)(?:\s*=\s*|\s+|$)(.*)$")


def config_path() -> str:
    return os.path.join(os.path.expanduser("~"), ".ssh", "config")


@dataclass(frozen=True)
class Jump:
    """One ProxyJump hop: ``[user@]host[:port]`` (user "" / port 0 = not said)."""

    host: str
    user: str = ""
    port: int = 0


@dataclass(frozen=True)
class Route:
    """Where ``alias`` really is, and where each value came from ("plan", "config", "default")."""

    alias: str
    hostname: str
    user: str
    port: int
    identity_files: tuple[str, ...] = ()  # expanded paths from the config, in order
    proxy_jump: str = ""
    proxy_command: str = ""
    host_key_alias: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the config said that regwizard ignores
    path: str = ""  # the config file read ("" = none)

    @property
    def from_config(self) -> bool:
        """Did the config change anything about how we connect?"""
        return any(v == "config" for v in self.sources.values())

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH looks up in known_hosts: HostKeyAlias as it is, else the
        HostName, as ``[name]:port`` for a port other than 22."""
        if self.host_key_alias:
            return self.host_key_alias.lower()
        name = self.hostname.lower()
        return name if self.port == 22 else f"[{name}]:{self.port}"

    @property
    def target(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"

    @property
    def via(self) -> str:
        if self.proxy_jump:
            return f" through {self.proxy_jump}"
        if self.proxy_command:
            return " through ProxyCommand"
        return ""

    def describe(self) -> str:
        """``alias (→ user@hostname:port via ~/.ssh/config)``; just the alias if the config
        changes nothing."""
        if not self.from_config:
            return self.alias
        return f"{self.alias} (→ {self.target}{self.via} via ~/.ssh/config)"


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise RegwizardError(
            f"{path} is a directory, not an SSH config file",
            f"move it away, or make {path} a file",
        ) from None
    except OSError as e:
        raise RegwizardError(
            f"cannot read {path}: {e.strerror or e}",
            f"check the permissions of {path} (it should be yours, mode 600)",
        ) from None
    if len(data) > _MAX_BYTES:
        raise RegwizardError(
            f"{path} is larger than 1 MiB; that is not an SSH config regwizard will read",
            f"check {path}",
        )
    return data.decode("utf-8", errors="replace")


def _expand(path: str, text: str, base: str, depth: int, notes: list[str]) -> list[str]:
    """The config's lines with Include expanded, Match blocks neutralized, and the
    options that make paramiko resolve names dropped."""
    if depth > _MAX_INCLUDE_DEPTH:
        raise RegwizardError(
            f"{path}: Include nested more than {_MAX_INCLUDE_DEPTH} deep (a loop?)",
            "check the Include lines of your SSH config",
        )
    out: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.replace("\x00", "").strip()
        if not line or line.startswith("#"):
            continue
        m = _KEYWORD.match(line)
        if m is None or not m.group(1):
            raise _malformed(path, n, line)
        key, value = m.group(1).lower(), m.group(2).strip()
        if not value:
            raise _malformed(path, n, line)
        if key == "include":
            for pattern in value.split():
                pattern = os.path.expanduser(pattern)
                if not os.path.isabs(pattern):
                    pattern = os.path.join(base, pattern)
                for inc in sorted(glob.glob(pattern)):
                    inc_text = _read(inc)
                    if inc_text is not None:
                        out += _expand(inc, inc_text, base, depth + 1, notes)
            continue
        if key == "match":
            note = f"{path}:{n}: Match blocks are ignored"
            if note not in notes:
                notes.append(note)
            out.append("Host !*")  # a block that applies to no host
            continue
        if key in _DROPPED:
            notes.append(f"{path}:{n}: {m.group(1)} is ignored")
            continue
        out.append(line)
    return out


def _malformed(path: str, n: int, line: str) -> RegwizardError:
    shown = line if len(line) <= 60 else line[:57] + "..."
    return RegwizardError(
        f"{path}:{n}: cannot parse {shown!r} (an SSH config line is `Keyword value`)",
        f"fix or remove line {n} of {path} (`ssh -G HOST` shows what OpenSSH makes of it)",
    )


@cache
def _config_class() -> Any:
    """paramiko's parser, subclassed; built on first use, so that a machine without an
    SSH config (and `plan check` there) never imports paramiko (and cryptography)."""
    import paramiko

    class _Config(paramiko.SSHConfig):
        """paramiko's parser; token expansion without DNS (see the module docstring)."""

        def _tokenize(self, config, target_hostname, key, value):  # noqa: ANN001, ANN202
            allowed = self._allowed_tokens(key)
            if not allowed or not isinstance(value, str):
                return value
            hostname = (
                target_hostname if key == "hostname" else config.get("hostname", target_hostname)
            )
            try:
                local_user = getpass.getuser()
            except Exception:
                local_user = str(os.getuid())
            home = os.path.expanduser("~")
            table = {
                "h": hostname,
                "p": str(config.get("port", 22)),
                "r": config.get("user", local_user),
                "u": local_user,
                "d": home,
                "l": socket.gethostname().split(".")[0],
                "L": socket.gethostname().split(".")[0],
                "n": target_hostname,
                "%": "%",
            }

            def sub(m: re.Match[str]) -> str:
                tok = m.group(1)
                if tok == "%" or f"%{tok}" in allowed:
                    return table.get(tok, m.group(0))
                return m.group(0)

            out = re.sub(r"%(.)", sub, value)
            if "~" in allowed and out.startswith("~"):
                out = os.path.expanduser(out)
            return out

    return _Config


def _load(path: str) -> tuple[Any, list[str]]:
    text = _read(path)
    if text is None:
        return None, []
    notes: list[str] = []
    lines = _expand(path, text, os.path.dirname(path), 0, notes)
    try:
        cfg = _config_class().from_text("\n".join(lines) + "\n")
    except Exception as e:  # paramiko's ConfigParseError, shlex's ValueError, ...
        raise RegwizardError(
            f"{path}: cannot parse the SSH config ({e})",
            f"fix {path} (`ssh -G HOST` shows what OpenSSH makes of it)",
        ) from None
    return cfg, notes


def _lookup(cfg: Any, alias: str, path: str) -> dict:
    try:
        return dict(cfg.lookup(alias))
    except Exception as e:
        raise RegwizardError(
            f"{path}: cannot read the settings for {alias!r} ({e})",
            f"fix {path} (`ssh -G {alias}` shows what OpenSSH makes of it)",
        ) from None


def _port(value: object, path: str, alias: str) -> int:
    text = str(value).strip()
    if text.isascii() and text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise RegwizardError(
        f"{path}: Port {text!r} for {alias!r} is not a port (1 to 65535)",
        f"fix the Port line for {alias} in {path}",
    )


def resolve(conn: Connection, *, path: str | None = None) -> Route:
    """Where ``conn`` really is. Plan values that differ from the defaults win over the
    config; the config wins over the defaults. Local connections are never looked up."""
    alias = conn.address
    sources = {"hostname": "plan", "user": "plan", "port": "plan"}
    if conn.is_local:
        return Route(alias, alias, conn.user, conn.port, sources=sources)
    path = path or config_path()
    cfg, notes = _load(path)
    opts = _lookup(cfg, alias, path) if cfg is not None else {}
    used = path if cfg is not None else ""

    hostname = str(opts.get("hostname") or alias)
    sources["hostname"] = "config" if hostname != alias else "plan"

    user = conn.user
    if conn.user and conn.user != DEFAULTS.user:
        sources["user"] = "plan"
    elif opts.get("user"):
        user, sources["user"] = str(opts["user"]), "config"
    else:
        user, sources["user"] = conn.user or DEFAULTS.user, "default"

    port = conn.port
    if conn.port and conn.port != DEFAULTS.port:
        sources["port"] = "plan"
    elif opts.get("port"):
        port, sources["port"] = _port(opts["port"], path, alias), "config"
    else:
        port, sources["port"] = DEFAULTS.port, "default"

    identity: tuple[str, ...] = ()
    key_explicit = conn.key_file and conn.key_file != DEFAULTS.key_file
    if conn.auth == "key" and not key_explicit and opts.get("identityfile"):
        identity = tuple(os.path.expanduser(p) for p in opts["identityfile"] if p)
        if identity:
            sources["identityfile"] = "config"

    jump = str(opts.get("proxyjump") or "")
    if jump.lower() == "none":
        jump = ""
    command = opts.get("proxycommand") or ""
    if command and str(command).lower() == "none":
        command = ""
    if jump:
        sources["proxyjump"] = "config"
        parse_jumps(jump, path, alias)  # malformed -> RegwizardError now, not at connect
        if command:
            notes.append(f"{path}: {alias} has both ProxyJump and ProxyCommand; ProxyJump is used")
            command = ""
    if command:
        sources["proxycommand"] = "config"
    key_alias = str(opts.get("hostkeyalias") or "")
    if key_alias:
        sources["hostkeyalias"] = "config"
    return Route(
        alias=alias,
        hostname=hostname,
        user=user,
        port=port,
        identity_files=identity,
        proxy_jump=jump,
        proxy_command=str(command),
        host_key_alias=key_alias,
        sources=sources,
        notes=tuple(notes),
        path=used,
    )


def parse_jumps(text: str, path: str = "", alias: str = "") -> list[Jump]:
    """``[user@]host[:port][,...]`` (or ``ssh://[user@]host[:port]``) -> hops, first first."""
    hops: list[Jump] = []
    for part in text.split(","):
        spec = part.strip().removeprefix("ssh://")
        user, sep, rest = spec.rpartition("@")
        if not sep:
            user, rest = "", spec
        port = 0
        host = rest
        if rest.startswith("["):
            end = rest.find("]")
            host, tail = (rest[1:end], rest[end + 1 :]) if end > 0 else ("", "")
            if tail.startswith(":"):
                port = _port(tail[1:], path or "ProxyJump", alias)
            elif tail:
                host = ""
        elif rest.count(":") == 1:
            host, _, ptext = rest.partition(":")
            port = _port(ptext, path or "ProxyJump", alias)
        if not host or any(c.isspace() for c in spec) or (sep and not user):
            raise RegwizardError(
                f"{path or 'ssh config'}: ProxyJump {text!r} for {alias!r} is not "
                "[user@]host[:port][,...]",
                f"fix the ProxyJump line for {alias} in {path or '~/.ssh/config'}",
            )
        hops.append(Jump(host, user, port))
    return hops
