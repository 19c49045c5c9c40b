"""Container runtimes other than Docker, interpreted once: containerd and podman.

containerd (the CRI runtime of Kubernetes nodes, and ctr/nerdctl) reads a registry's
CAs from ``<config_path>/<host>[:port]/`` — ``ca.crt`` named by a ``hosts.toml`` — but
CRI reads that directory only when ``config_path`` is set in its config.toml, under a
plugin whose name depends on the config version (2: containerd 1.x, 3: containerd 2.x).
podman, CRI-O, buildah and skopeo read ``/etc/containers/certs.d/<host>[:port]/*.crt``
first and ``/etc/docker/certs.d`` after it: the first directory that exists wins.
For port 443 every directory is the bare host name.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CONTAINERD_CERTS_D = "/etc/containerd/certs.d"
CONTAINERS_CERTS_D = "/etc/containers/certs.d"

# config version -> the CRI plugin's registry table
_SECTIONS = {
    1: ("plugins", "cri", "registry"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry"),
}


def podman_trust_dir(address: str) -> str:
    return f"{CONTAINERS_CERTS_D}/{address}"


@dataclass(frozen=True)
class ContainerdConfig:
    """What /etc/containerd/config.toml says about registries (CRI)."""

    present: bool  # the file exists
    version: int  # the config format: 1, 2 (containerd 1.x) or 3 (containerd 2.x)
    config_path: str = ""  # as written ("" = not set)
    cri_disabled: bool = False  # disabled_plugins holds "cri": not a CRI runtime
    error: str = ""  # why the file could not be read as TOML
    # registry settings containerd refuses next to config_path ("mirrors", "configs.H.tls"):
    # with both, its CRI plugin does not load
    conflicts: tuple[str, ...] = ()

    @property
    def section(self) -> tuple[str, ...]:
        return _SECTIONS.get(self.version, _SECTIONS[2])

    @property
    def header(self) -> str:
        """The TOML table header of the registry section, as containerd's docs write it."""
        a, b, c = self.section
        return f'[{a}."{b}".{c}]' if "." in b else f"[{a}.{b}.{c}]"

    @property
    def dirs(self) -> list[str]:
        return [d for d in self.config_path.split(":") if d]

    @property
    def hosts_dir(self) -> str:
        """The one directory CRI reads hosts.toml from ("" when none, or several)."""
        return self.dirs[0] if len(self.dirs) == 1 else ""


def containerd_version(text: str) -> int:
    """The major version from ``containerd --version`` (0 when unknown)."""
    m = re.search(r"\bv?(\d+)\.\d+(?:\.\d+)?", text)
    return int(m.group(1)) if m else 0


def containerd_config(data: bytes | None, major: int = 0) -> ContainerdConfig:
    """Interpret config.toml; ``major`` is containerd's own version, for a missing file."""
    default = 3 if major >= 2 else 2
    if data is None:
        return ContainerdConfig(False, default)
    try:
        doc = tomllib.loads(data.decode("utf-8", errors="replace"))
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        return ContainerdConfig(True, default, error=f"not valid TOML: {e}")
    version = doc.get("version")
    if not isinstance(version, int) or version not in _SECTIONS:
        version = 1 if doc else default
    node: object = doc
    for key in _SECTIONS[version]:
        node = node.get(key) if isinstance(node, dict) else None
    path = node.get("config_path") if isinstance(node, dict) else None
    disabled = doc.get("disabled_plugins")
    cri_off = isinstance(disabled, list) and any(
        p in ("cri", "io.containerd.grpc.v1.cri") for p in disabled
    )
    conflicts: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("mirrors"), dict) and node["mirrors"]:
            conflicts.append("mirrors")
        configs = node.get("configs")
        for name, c in (configs or {}).items() if isinstance(configs, dict) else ():
            if isinstance(c, dict) and "tls" in c:
                conflicts.append(f"configs.{json.dumps(name)}.tls")
    return ContainerdConfig(
        True, version, path if isinstance(path, str) else "", cri_off, "", tuple(conflicts)
    )


def with_config_path(text: str, cfg: ContainerdConfig, directory: str) -> str:
    """config.toml with the CRI registry's config_path set to ``directory`` (one line is
    added or replaced; the rest of the file is kept as it was)."""
    line = f"  config_path = {json.dumps(directory)}"
    if not cfg.present or not _has_keys(text):
        # nothing set (a missing or empty file, or comments only): containerd would read
        # a file without `version` as version 1, so it is written; comments are kept
        version = f"version = {cfg.version}\n\n" if cfg.version != 1 else ""
        kept = text.rstrip() + "\n\n" if text.strip() else ""
        return f"{kept}{version}{cfg.header}\n{line}\n"
    # not splitlines(): it also breaks at U+0085, U+2028 and U+2029, which TOML strings
    # and comments may hold
    lines = text.removesuffix("\n").split("\n")
    header = _header_index(lines, cfg.section)
    if header is None:
        tail = "" if text.endswith("\n") else "\n"
        return f"{text}{tail}\n{cfg.header}\n{line}\n"
    end = next(
        (i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    for i in range(header + 1, end):
        if re.match(r"\s*config_path\s*=", lines[i]):
            lines[i] = line
            break
    else:
        lines.insert(header + 1, line)
    return "\n".join(lines) + "\n"


def _has_keys(text: str) -> bool:
    try:
        return bool(tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return True  # not ours to judge here (the reader reports it)


def _header_index(lines: list[str], section: tuple[str, ...]) -> int | None:
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not (s.startswith("[") and not s.startswith("[[")):
            continue
        body = s[1 : s.find("]")] if "]" in s else ""
        try:
            parsed = tomllib.loads(f"[{body}]\n")
        except tomllib.TOMLDecodeError:
            continue
        node: object = parsed
        keys = []
        while isinstance(node, dict) and len(node) == 1:
            k = next(iter(node))
            keys.append(k)
            node = node[k]
        if tuple(keys) == section:
            return i
    return None


def hosts_toml(address: str, ca_path: str) -> str:
    """hosts.toml for a registry: a [host] section naming its CA, and the same CA for the
    top-level ``server``. containerd always also tries that server (by default
    ``https://ADDRESS``, with the system CAs only): without a top-level ``ca`` every pull
    first fails with x509 before the [host] entry answers (checked with containerd 1.6)."""
    url = json.dumps("https://" + address)
    return (
        "# written by regwizard: rerun `regwizard apply` rather than editing it\n"
        f"server = {url}\n"
        f"ca = {json.dumps(ca_path)}\n"
        "\n"
        f"[host.{url}]\n"
        '  capabilities = ["pull", "resolve", "push"]\n'
        f"  ca = {json.dumps(ca_path)}\n"
    )


def hosts_toml_names(data: bytes | None, address: str, ca_path: str) -> str:
    """Why an existing hosts.toml does not send ``address`` to its CA ("" when it does)."""
    if data is None:
        return "hosts.toml is missing"
    try:
        doc = tomllib.loads(data.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as e:
        return f"hosts.toml is not valid TOML ({e})"
    host = doc.get("host")
    entry = host.get(f"https://{address}") if isinstance(host, dict) else None
    if not isinstance(entry, dict):
        return f'hosts.toml has no [host."https://{address}"] section'
    for where, value in (("its [host] section", entry.get("ca")), ("the top level", doc.get("ca"))):
        cas = value if isinstance(value, list) else [value]
        if ca_path not in cas:
            return f"hosts.toml does not name {ca_path} as the CA at {where}"
    return ""
