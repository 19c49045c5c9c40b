"""/etc/hosts, interpreted once: where a name points, and the file with it fixed.

Host names match without regard to case, as the resolver does (RFC 4343): a line
``10.9.9.9 REG.example.test`` maps ``reg.example.test``.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "# regwizard"


@dataclass(frozen=True)
class HostsEntry:
    """What /etc/hosts says about one name."""

    name: str
    addresses: tuple[str, ...]  # every address a line maps the name to, in file order

    def maps_to(self, ip: str) -> bool:
        return ip in self.addresses

    @property
    def present(self) -> bool:
        return bool(self.addresses)

    def wrong(self, ip: str) -> tuple[str, ...]:
        return tuple(a for a in self.addresses if a != ip)


def _fields(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def _same(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def lookup(text: str, name: str) -> HostsEntry:
    addrs = []
    for line in text.splitlines():
        f = _fields(line)
        if len(f) >= 2 and any(_same(n, name) for n in f[1:]):
            addrs.append(f[0])
    return HostsEntry(name, tuple(addrs))


def with_mapping(text: str, name: str, ip: str | list[str] | tuple[str, ...]) -> str:
    """The file with ``name`` mapped to ``ip`` only (or to each of several addresses, one
    line each, in that order): other names on a line are kept."""
    ips = [ip] if isinstance(ip, str) else list(ip)
    lines = []
    for line in text.splitlines():
        f = _fields(line)
        if len(f) >= 2 and any(_same(n, name) for n in f[1:]):
            rest = [n for n in f[1:] if not _same(n, name)]
            if rest:
                lines.append("\t".join([f[0], *rest]))
            continue  # our name is written once, below
        lines.append(line)
    lines.extend(f"{a}\t{name}\t{MARK}" for a in ips)
    return "\n".join(lines) + "\n"


def resolved(getent_output: str) -> tuple[str, ...]:
    """Addresses from ``getent ahosts NAME`` output, in order, each once."""
    out: list[str] = []
    for ln in getent_output.splitlines():
        parts = ln.split()
        if parts and parts[0] not in out:
            out.append(parts[0])
    return tuple(out)
