"""Human-readable summaries of a plan and a run: pure text, no UI, no secrets.

``plan_summary(plan)`` feeds the review screen; ``markdown_report(plan, result)``
is what "Save report" writes. Neither ever sees :class:`~regwizard.plan.Secrets`,
and neither prints password hashes: users are listed by name only.
"""

from __future__ import annotations

from regwizard import pki
from regwizard.events import RunResult, Verification
from regwizard.plan import (
    RUNTIMES,
    Connection,
    Plan,
    cert_extra_sans,
    registry_addresses,
    storage_summary,
)

__all__ = [
    "certificate_subject",
    "certificate_sans",
    "connection_summary",
    "format_bytes",
    "format_seconds",
    "markdown_report",
    "next_steps",
    "plan_summary",
    "runtimes_summary",
    "short_digest",
    "verification_lines",
]

_SUBJECT_FIELDS = (
    ("C", "country"),
    ("ST", "state"),
    ("L", "locality"),
    ("O", "organization"),
    ("OU", "organizational_unit"),
)


def certificate_subject(plan: Plan) -> str:
    """``C=CN, ST=..., CN=...`` as openssl prints it (empty parts left out)."""
    cert = plan.certificate
    parts = [f"{key}={getattr(cert, attr)}" for key, attr in _SUBJECT_FIELDS if getattr(cert, attr)]
    parts.append(f"CN={cert.common_name or plan.registry.domain}")
    if cert.email:
        parts.append(f"emailAddress={cert.email}")
    return ", ".join(parts)


def _looks_like_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def certificate_sans(plan: Plan) -> str:
    """``DNS:domain, IP:ip, ...`` (the names clients may use)."""
    sans: list[str] = []
    if plan.registry.domain:
        sans.append(f"DNS:{plan.registry.domain}")
    if plan.registry.ip:
        sans.append(f"IP:{plan.registry.ip}")
    for extra in cert_extra_sans(plan):
        extra = extra.strip()
        if not extra:
            continue
        if ":" in extra and extra.split(":", 1)[0].upper() in ("DNS", "IP"):
            kind, value = extra.split(":", 1)
            item = f"{kind.upper()}:{value}"
        else:
            item = f"IP:{extra}" if _looks_like_ip(extra) else f"DNS:{extra}"
        if item not in sans:
            sans.append(item)
    return ", ".join(sans)


def runtimes_summary(client: Connection) -> str:
    """A client's runtimes when they are not Docker alone ("" for the default)."""
    if client.runtimes == ["docker"]:
        return ""
    text = "runtimes: " + ", ".join(r for r in RUNTIMES if r in client.runtimes)
    if "containerd" in client.runtimes:
        text += (
            "; may set config_path and restart containerd"
            if client.manage_containerd_config
            else "; containerd's config.toml left alone"
        )
    return text


def connection_summary(conn: Connection) -> str:
    """``root@10.0.0.2:22 (key ~/.ssh/id_ed25519)``; never a password."""
    if conn.is_local:
        return "this machine (local)"
    where = f"{conn.user}@{conn.address}"
    if conn.port != 22:
        where += f":{conn.port}"
    if conn.auth == "key":
        how = f"key {conn.key_file}"
    elif conn.auth == "agent":
        how = "ssh-agent"
    else:
        how = "password"
    if conn.sudo and conn.user != "root":
        how += ", sudo"
    if conn.host_key:
        how += f", host key {conn.host_key}"
    label = f"{conn.label}: " if conn.label else ""
    return f"{label}{where} ({how})"


def format_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"


def plan_summary(plan: Plan) -> list[tuple[str, str]]:
    """(heading, value) rows describing the whole plan. No secrets, no hashes."""
    reg = plan.registry
    cert = plan.certificate
    rows: list[tuple[str, str]] = [("Registry host", connection_summary(plan.host))]
    # [[replicas]]: more registry hosts (edited in the plan file only), one row each
    rows += [(f"Replica {i}", connection_summary(c)) for i, c in enumerate(plan.replicas, 1)]
    if plan.replicas:
        ips = ", ".join(registry_addresses(plan)) or "(no IP)"
        hosts_file = f"managed on every registry host and client: {reg.domain} -> {ips}"
    else:
        hosts_file = "managed on the registry host and every client"
    rows += [
        ("Registry address", reg.address),
        ("Domain / IP", f"{reg.domain} / {reg.ip or '(not set)'}"),
        ("/etc/hosts", hosts_file if reg.manage_hosts_file else "left alone"),
        ("Container", f"{reg.container} from image {reg.image}, port {reg.port}"),
    ]
    if reg.image_archive:
        rows.append(("Offline image", reg.image_archive))
    if reg.proxy_remote_url:
        ca = f"; upstream CA {reg.proxy_ca_file}" if reg.proxy_ca_file else ""
        rows.append(("Mirror of", f"{reg.proxy_remote_url} (pushes refused by design){ca}"))
    rows += [
        # a one-host filesystem plan keeps its one-word row
        ("Storage", storage_summary(plan) if plan.replicas or plan.storage.is_s3 else reg.storage),
        ("Certificate", _cert_mode(cert.mode)),
        ("Subject", certificate_subject(plan)),
        ("SANs", certificate_sans(plan) or "(none)"),
        ("Key / validity", f"{cert.key}, {cert.days} days"),
    ]
    if cert.mode == "provided":
        rows.append(("Certificate files", f"{cert.cert_file or '?'} + {cert.key_file or '?'}"))
    rows.append(("Users", ", ".join(u.name for u in plan.users) or "(none)"))
    if plan.remove_users:
        rows.append(("Remove users", ", ".join(plan.remove_users)))
    rows.append(("Verify as", plan.verify.user or "(not chosen)"))
    if plan.clients:
        for i, client in enumerate(plan.clients, 1):
            rows.append((f"Client {i}", connection_summary(client)))
            if runtimes := runtimes_summary(client):
                rows.append(("", runtimes))
    else:
        rows.append(("Clients", "(none)"))
    return rows


def _cert_mode(mode: str) -> str:
    return {
        "self-signed": "self-signed (a new key and certificate on the registry host)",
        "local-ca": "signed by a local CA created for this registry",
        "provided": "your own certificate and key files",
    }.get(mode, mode)


def short_digest(digest: str) -> str:
    """``sha256:3f1a9c0d2e4b…`` (enough to compare by eye)."""
    algo, _, hexpart = digest.partition(":")
    if not hexpart or len(hexpart) <= 16:
        return digest
    return f"{algo}:{hexpart[:12]}…"


def verification_lines(v: Verification | None, *, short: bool = False) -> list[tuple[bool, str]]:
    """(ok, text) per proof. Digests are public; no credentials appear.

    ``short`` abbreviates digests (for narrow screens); the report keeps them whole.
    """
    if v is None:
        return [(False, "no verification ran")]
    shown = short_digest if short else (lambda d: d)
    if v.mirror_of:
        return _mirror_lines(v, shown)
    matches = bool(v.pull_digest) and v.pull_digest == v.push_digest
    lines = [
        (v.login_ok, f"login as {v.user or '?'}"),
        (v.anonymous_refused, "anonymous push refused"),
        (
            bool(v.push_digest),
            f"push {v.image_ref or 'test image'}: {shown(v.push_digest) if v.push_digest else 'failed'}",
        ),
        (
            bool(v.push_digest) and matches,
            f"pull: {shown(v.pull_digest) if v.pull_digest else 'failed'}"
            + (" (same digest)" if matches else (" (digest differs!)" if v.pull_digest else "")),
        ),
        (bool(v.catalog), f"catalog: {', '.join(v.catalog) or '(empty)'}"),
    ]
    for client, ok in v.trust.items():
        lines.append((ok, f"trust on {client}: {'pull worked' if ok else 'pull failed'}"))
    for p in v.proofs:  # other runtimes, each with its own client tool
        lines.append((p.ok, f"{p.runtime} on {p.client}: {p.how}"))
    for p in v.replicas:  # one line per registry host
        lines.append((p.ok, f"registry host {p.client}: {p.how}"))
    if v.cert_expires:
        lines.append(expiry_line(v.cert_expires, v.cert_days_left))
    return lines


def _mirror_lines(v: Verification, shown) -> list[tuple[bool, str]]:  # noqa: ANN001
    """A mirror's proof: a pull through it, since it refuses pushes by design."""
    lines = [
        (True, f"mirror of {v.mirror_of}: pushes are refused by design"),
        (v.login_ok, f"login as {v.user or '?'}"),
        (v.anonymous_refused, "anonymous pull refused"),
        (
            bool(v.pull_digest),
            f"pull {v.image_ref or 'mirror image'} through the mirror: "
            + (shown(v.pull_digest) if v.pull_digest else "failed"),
        ),
    ]
    if v.catalog:
        lines.append((True, f"cached: {', '.join(v.catalog)}"))
    for client, ok in v.trust.items():
        lines.append((ok, f"trust on {client}: {'pull worked' if ok else 'pull failed'}"))
    for p in v.proofs:
        lines.append((p.ok, f"{p.runtime} on {p.client}: {p.how}"))
    for p in v.replicas:
        lines.append((p.ok, f"registry host {p.client}: {p.how}"))
    if v.cert_expires:
        lines.append(expiry_line(v.cert_expires, v.cert_days_left))
    return lines


def expiry_line(expires: str, days_left: int) -> tuple[bool, str]:
    """(ok, text): when the served certificate ends; not ok inside the renewal window."""
    if days_left < 0:
        return False, f"certificate expired on {expires}: rerun `regwizard apply` to renew it"
    ok = days_left >= pki.RENEW_DAYS
    soon = "" if ok else "; `regwizard apply` renews it now"
    return ok, f"certificate valid until {expires} ({days_left} days){soon}"


def next_steps(plan: Plan, image: str = "myimage:latest") -> list[str]:
    addr = plan.registry.address
    if plan.registry.proxy_remote_url:  # a mirror refuses pushes: pull through it
        image = plan.verify.mirror_image or "library/busybox:latest"
        return [f"docker login {addr}", f"docker pull {addr}/{image}"]
    return [
        f"docker login {addr}",
        f"docker tag {image} {addr}/{image}",
        f"docker push {addr}/{image}",
        f"docker pull {addr}/{image}",
    ]


def markdown_report(plan: Plan, result: RunResult | None) -> str:
    """A Markdown report of the plan and the run. Contains no secrets."""
    out: list[str] = ["# regwizard report", ""]
    addr = plan.registry.address
    if result is None:
        out += ["**Status:** not run", ""]
    else:
        verified = result.ok and result.verification is not None and result.verification.ok
        status = "verified" if verified else ("finished, NOT verified" if result.ok else "FAILED")
        if result.dry_run:
            status += " (dry run)"
        out += [f"**Registry:** `{addr}`  ", f"**Status:** {status}  "]
        out += [f"**Total time:** {format_seconds(result.seconds)}", ""]

    out += ["## Plan", "", "| | |", "|---|---|"]
    for key, value in plan_summary(plan):
        out.append(f"| {key} | {_md_cell(value)} |")
    out.append("")

    if result is not None:
        if result.steps:
            out += [
                "## Steps",
                "",
                "| step | host | status | seconds | detail |",
                "|---|---|---|---:|---|",
            ]
            for s in result.steps:
                out.append(
                    f"| {_md_cell(s.title or s.step)} | {_md_cell(s.host)} | {s.status} "
                    f"| {s.seconds:.1f} | {_md_cell(s.detail)} |"
                )
            out.append("")
        if result.failure is not None:
            f = result.failure
            out += [
                "## Failure",
                "",
                f"- **step:** {f.step} on {f.host}",
                f"- **cause:** {f.cause}",
            ]
            if f.fix:
                out.append(f"- **fix:** {f.fix}")
            if f.evidence:
                out += ["", "```", f.evidence.rstrip(), "```"]
            out.append("")
        if result.verification is not None or result.ok:
            out += ["## Verification", ""]
            for ok, text in verification_lines(result.verification):
                out.append(f"- [{'x' if ok else ' '}] {text}")
            out.append("")

    out += ["## Next steps", "", "```sh", *next_steps(plan), "```", ""]
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
