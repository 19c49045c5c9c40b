"""What a change would write, as text a person can review (``apply --dry-run --diff``).

Steps build ``events.FileDiff``s in their ``check`` from what they already read; this
module gives them the display texts, cleaned of everything secret, and renders a diff:

- ``redact``: a YAML or TOML file (config.yml, config.toml, hosts.toml) with every
  secret-like key's value (``secret``, ``password``, ``auth``, ...) and every known
  secret value replaced by ``<redacted>``;
- ``htpasswd_users``: an htpasswd file as ``user NAME`` lines, never a hash;
- ``cert_summary``: a PEM file as subject, issuer, SANs, validity, key type and
  fingerprint of each certificate in it (a private key block is only counted);
- ``settings``: a container's settings, one ``key: value`` a line, secret-like
  environment values masked;
- ``unified``: the unified diff of one FileDiff (``--- HOST:PATH (now)``,
  ``+++ HOST:PATH (after apply)``, ``/dev/null`` for a file that is not there).

Pure functions: no I/O, and none raises on malformed input.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from regwizard.events import FileDiff
from regwizard.facts.registry import yaml_str

REDACTED = "<redacted>"
# a key or variable name whose value is a secret (the http secret, a mirror's upstream
# password, S3 keys, tokens); "key" alone is not: tls.key is a path
SECRET_NAME = re.compile(
    r"secret|passw|token|credential|accesskey|access_key|apikey|api_key|private|authoriz",
    re.IGNORECASE,
)
SECRET_KEYS = {"auth"}  # containerd's registry.configs.NAME.auth: base64 of user:password
_YAML_KEY = re.compile(r"^(\s*(?:-\s+)?)([^\s:#=\[\]{}\"'][^:#=]*?)\s*:(\s*)(.*)$")
_TOML_KEY = re.compile(r"^(\s*)(\"?)([A-Za-z0-9_.\-]+)\2\s*=\s*(.*)$")
_COMMENTED = re.compile(r"^(\s*#+\s*)([A-Za-z0-9_.\-\" ]+?)\s*([:=])\s*\S.*$")
MIN_SECRET = 4  # known secret values shorter than this are not searched for in the text


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) or name.strip().lower() in SECRET_KEYS


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret value (raw, and as config.yml quotes it) replaced."""
    forms: set[str] = set()
    for s in secrets:
        if isinstance(s, str) and len(s) >= MIN_SECRET:
            forms |= {s, yaml_str(s)[1:-1]}
    for f in sorted(forms, key=len, reverse=True):
        if len(f) >= MIN_SECRET:
            text = text.replace(f, REDACTED)
    return text


def redact(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """A YAML or TOML file for display: the value of every secret-like key is
    ``<redacted>`` (a YAML block scalar's lines too, a TOML multi-line value's too),
    then every known secret value anywhere else."""
    if text is None:
        return None
    out: list[str] = []
    block_indent = -1  # inside a redacted block scalar: lines indented deeper go
    toml_close = ""  # inside a redacted multi-line TOML string: lines up to this go
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block_indent >= 0:
            if not line.strip() or indent > block_indent:
                continue
            block_indent = -1
        if toml_close:
            if toml_close in line:
                toml_close = ""
            continue
        t = _TOML_KEY.match(line)
        if t and is_secret_name(t.group(3)):
            value = t.group(4).strip()
            for q in ('"""', "'''"):
                if value.startswith(q) and value.count(q) == 1:
                    toml_close = q  # a multi-line string: its lines go too
            if value.startswith("[") and "]" not in value:
                toml_close = "]"  # a multi-line array
            out.append(f"{t.group(1)}{t.group(2)}{t.group(3)}{t.group(2)} = {REDACTED}")
            continue
        m = _YAML_KEY.match(line)
        if m and is_secret_name(m.group(2)) and m.group(4).strip():
            value = m.group(4).strip()
            if value[:1] in "|>":
                block_indent = indent
            out.append(f"{m.group(1)}{m.group(2)}: {REDACTED}")
            continue
        c = _COMMENTED.match(line)  # "# password: x", "# token = x": a comment may hold one
        if c and is_secret_name(c.group(2)):
            out.append(f"{c.group(1)}{c.group(2)}{c.group(3)} {REDACTED}")
            continue
        out.append(line)
    return scrub("\n".join(out) + ("\n" if out else ""), secrets)


def htpasswd_users(
    text: str | None, updated: Iterable[str] = (), non_bcrypt: Iterable[str] = ()
) -> str | None:
    """An htpasswd file as ``user NAME`` lines in file order: names only, never a hash.
    ``updated`` users get "(new password)", ``non_bcrypt`` ones a warning."""
    if text is None:
        return None
    new, weak = set(updated), set(non_bcrypt)
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if ":" not in s:
            out.append("(a line without a user name: dropped)")
            continue
        name = s.split(":", 1)[0]
        if "$" in name or len(name) > 128:
            out.append("(a user whose name is not shown)")
            continue
        mark = " (new password)" if name in new else ""
        mark += " (not bcrypt: the registry ignores it)" if name in weak else ""
        out.append(f"user {name}{mark}")
    return "".join(f"{line}\n" for line in out)


def subject_line(parts: dict[str, str]) -> str:
    order = ["C", "ST", "L", "O", "OU", "CN"]
    keys = [k for k in order if parts.get(k)] + sorted(k for k in parts if k not in order)
    return "/" + "/".join(f"{k}={parts[k]}" for k in keys) if keys else "(empty)"


def cert_summary(pem: bytes | None) -> str | None:
    """A PEM file for display: each certificate summarised; a private key only counted."""
    if pem is None:
        return None
    from regwizard import pki

    out: list[str] = []
    try:
        certs = pki.load_certs(pem)
    except Exception:  # noqa: BLE001 - malformed: said, never shown
        certs = []
    for n, c in enumerate(certs, 1):
        try:
            info = pki.inspect_cert(pki.cert_to_pem(c))
        except Exception:  # noqa: BLE001
            out.append(f"certificate {n}: unreadable")
            continue
        sans = [f"DNS:{d}" for d in info.dns_sans] + [f"IP:{i}" for i in info.ip_sans]
        out += [
            f"certificate {n} of {len(certs)}" + (" (a CA)" if info.is_ca else ""),
            f"  subject: {subject_line(info.subject)}",
            "  issuer:  "
            + ("itself (self-signed)" if info.self_signed else subject_line(info.issuer)),
            f"  SANs:    {', '.join(sans) or '(none)'}",
            f"  valid:   {info.not_before:%Y-%m-%d} to {info.not_after:%Y-%m-%d}",
            f"  key:     {info.key_type}",
            f"  sha256:  {info.sha256}",
        ]
    if not certs:
        out.append(f"not a PEM certificate ({len(pem)} bytes)")
    keys = pem.count(b"PRIVATE KEY-----") // 2
    if keys:
        out.append(f"and {keys} private key block(s) (never shown)")
    return "".join(f"{line}\n" for line in out)


def settings(items: Iterable[tuple[str, str]]) -> str:
    """``key: value`` lines (sorted within each key, so order never makes a diff);
    an ``env``/``label`` value whose name is secret-like is ``<redacted>``."""
    out = []
    for key, value in items:
        if key in ("env", "label"):
            name, eq, val = value.partition("=")
            if eq and is_secret_name(name):
                value = f"{name}={REDACTED}"
        out.append(f"{key}: {value}")
    return "".join(f"{line}\n" for line in out)


def unified(d: FileDiff) -> str:
    """The unified diff of ``d`` ("" when nothing differs), its note as a # line first."""
    where = f"{d.host}:{d.path}"
    note = f"# {where}: {d.note}\n" if d.note else ""
    if d.before is None and d.after is None:
        return note
    a = (d.before or "").splitlines(keepends=True)
    b = (d.after or "").splitlines(keepends=True)
    lines = list(
        difflib.unified_diff(
            a,
            b,
            "/dev/null" if d.before is None else f"{where} (now)",
            "/dev/null" if d.after is None else f"{where} (after apply)",
        )
    )
    if not lines:
        return note
    body = "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)
    return note + body
