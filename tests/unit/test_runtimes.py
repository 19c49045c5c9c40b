"""regwizard.facts.runtimes: containerd's config.toml and hosts.toml, read and written.

- ``containerd_config`` reads config versions 1, 2 and 3, a missing file (by containerd's
  own major version), ``disabled_plugins``, several directories in ``config_path``, and
  the registry settings containerd refuses next to ``config_path``;
- ``with_config_path`` sets ``config_path`` in the table of the file's version and keeps
  every other key as it was (a property over generated config documents);
- ``hosts_toml`` is read back by ``hosts_toml_names`` as right, for any address.
"""

from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard.facts import runtimes as R
from regwizard.plan import RegistrySpec

CD = R.CONTAINERD_CERTS_D
V1_SECTION = ("plugins", "cri", "registry")
V2_SECTION = ("plugins", "io.containerd.grpc.v1.cri", "registry")
V3_SECTION = ("plugins", "io.containerd.cri.v1.images", "registry")
SECTIONS = {1: V1_SECTION, 2: V2_SECTION, 3: V3_SECTION}
HEADERS = {
    1: "[plugins.cri.registry]",
    2: '[plugins."io.containerd.grpc.v1.cri".registry]',
    3: '[plugins."io.containerd.cri.v1.images".registry]',
}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cfg(text: str | None, major: int = 0) -> R.ContainerdConfig:
    return R.containerd_config(None if text is None else text.encode(), major)


def at(doc: dict, path: tuple[str, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("version", [1, 2, 3])
def test_each_version_reads_its_own_table(version: int) -> None:
    head = f"version = {version}\n" if version != 1 else 'root = "/var/lib/containerd"\n'
    c = cfg(f'{head}\n{HEADERS[version]}\n  config_path = "/etc/k8s/certs.d"\n')
    assert (c.present, c.version, c.error) == (True, version, "")
    assert c.section == SECTIONS[version]
    assert c.header == HEADERS[version]
    assert (c.config_path, c.dirs, c.hosts_dir) == ("/etc/k8s/certs.d", ["/etc/k8s/certs.d"],
                                                    "/etc/k8s/certs.d")  # fmt: skip


@pytest.mark.parametrize(("version", "other"), [(2, 3), (3, 2), (2, 1), (1, 2)])
def test_another_versions_table_is_not_read(version: int, other: int) -> None:
    """containerd 2.x ignores the 1.x plugin's registry table (and back): not set."""
    head = f"version = {version}\n" if version != 1 else 'root = "/r"\n'
    c = cfg(f'{head}{HEADERS[other]}\n  config_path = "{CD}"\n')
    assert c.version == version
    assert c.config_path == "" and c.hosts_dir == ""


@pytest.mark.parametrize(
    ("major", "version"), [(0, 2), (1, 2), (2, 3), (3, 3)], ids=["unknown", "1.x", "2.x", "3.x"]
)
def test_a_missing_file_means_containerds_own_defaults(major: int, version: int) -> None:
    c = cfg(None, major)
    assert (c.present, c.version, c.config_path, c.error) == (False, version, "", "")
    assert c.header == HEADERS[version]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n#version = 3\n"])
def test_a_file_that_sets_nothing_has_the_default_version(text: str) -> None:
    assert (cfg(text, 1).present, cfg(text, 1).version, cfg(text, 2).version) == (True, 2, 3)


def test_a_file_without_version_is_version_1() -> None:
    c = cfg('root = "/var/lib/containerd"\n[plugins.cri.registry]\n  config_path = "/x"\n', 2)
    assert (c.version, c.hosts_dir) == (1, "/x")


@pytest.mark.parametrize(
    ("plugins", "off"),
    [
        ('["cri"]', True),
        ('["io.containerd.grpc.v1.cri"]', True),
        ('["io.containerd.snapshotter.v1.aufs", "cri"]', True),
        ('["io.containerd.snapshotter.v1.aufs"]', False),
        ("[]", False),
        ('"cri"', False),  # not a list: containerd itself would not start
    ],
)
def test_disabled_plugins(plugins: str, off: bool) -> None:
    assert cfg(f"version = 2\ndisabled_plugins = {plugins}\n").cri_disabled is off


@pytest.mark.parametrize(
    ("value", "dirs", "hosts_dir"),
    [
        (f"{CD}:/etc/docker/certs.d", [CD, "/etc/docker/certs.d"], ""),
        (f"{CD}:", [CD], CD),
        ("", [], ""),
        (":", [], ""),
    ],
)
def test_config_path_lists(value: str, dirs: list[str], hosts_dir: str) -> None:
    c = cfg(f'version = 2\n{HEADERS[2]}\n  config_path = "{value}"\n')
    assert (c.config_path, c.dirs, c.hosts_dir) == (value, dirs, hosts_dir)


def test_a_config_path_that_is_not_text_is_not_set() -> None:
    assert cfg(f'version = 2\n{HEADERS[2]}\n  config_path = ["{CD}"]\n').config_path == ""


def test_not_toml_is_an_error_not_an_exception() -> None:
    c = cfg(f"version = 2\n{HEADERS[2]}\n  config_path = \n", 1)
    assert c.present and c.error.startswith("not valid TOML")
    assert R.containerd_config(b"\xff\xfe[", 1).error


@pytest.mark.parametrize(
    ("tables", "conflicts"),
    [
        ('.mirrors."docker.io"]\n  endpoint = ["https://m"]', ("mirrors",)),
        (".mirrors]", ()),  # an empty mirrors table sets none
        ('.configs."r:5000".tls]\n  insecure_skip_verify = true', ('configs."r:5000".tls',)),
        ('.configs."r".auth]\n  username = "u"', ()),  # credentials are allowed
    ],
)
def test_settings_containerd_refuses_next_to_config_path(tables: str, conflicts: tuple) -> None:
    head = HEADERS[2][:-1]
    assert cfg(f"version = 2\n{head}{tables}\n").conflicts == conflicts


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("containerd github.com/containerd/containerd 1.6.20 1.6.20~ds1-1+b1", 1),
        ("containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da", 1),
        ("containerd github.com/containerd/containerd/v2 v2.0.4 1a43cb6a1", 2),
        ("containerd github.com/k3s-io/containerd v1.7.23-k3s2", 1),
        ("\n", 0),
        ("", 0),
    ],
)
def test_containerd_version(text: str, major: int) -> None:
    assert R.containerd_version(text) == major


# --------------------------------------------------------------------------- writing


def test_an_existing_config_path_line_is_replaced_where_it_is() -> None:
    text = f'version = 2\n\n{HEADERS[2]}\n  # ours\n  config_path = "/old"  # x\n  foo = 1\n'
    out = R.with_config_path(text, cfg(text), CD)
    assert out == text.replace('config_path = "/old"  # x', f'config_path = "{CD}"')


def test_a_table_without_config_path_gets_it_first() -> None:
    text = f"version = 3\n{HEADERS[3]}\n  foo = 1\n[plugins.x]\n  config_path = 2\n"
    out = R.with_config_path(text, cfg(text), CD)
    assert out.splitlines()[2] == f'  config_path = "{CD}"'
    assert tomllib.loads(out)["plugins"]["x"] == {"config_path": 2}


@pytest.mark.parametrize("major", [1, 2])
def test_a_missing_file_is_written_whole(major: int) -> None:
    c = cfg(None, major)
    out = R.with_config_path("", c, CD)
    assert tomllib.loads(out) == {"version": c.version, **_nest(SECTIONS[c.version], CD)}


def test_a_file_without_a_final_newline_or_with_crlf() -> None:
    for text in ["version = 2", f"version = 2\r\n{HEADERS[2]}\r\n  a = 1\r\n"]:
        out = R.with_config_path(text, cfg(text), CD)
        assert at(tomllib.loads(out), V2_SECTION)["config_path"] == CD


def _nest(path: tuple[str, ...], value: str) -> dict:
    out: dict = {"config_path": value}
    for k in reversed(path):
        out = {k: out}
    return out


# -- the property: config_path is set in the right table, nothing else changes

_KEY = st.one_of(
    st.sampled_from(["config_path", "root", "state", "address", "sandbox_image", "endpoint"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_-.: ", min_size=1, max_size=10),
).filter(lambda k: k not in ("registry", "version", "plugins"))
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_SCALAR = st.one_of(st.integers(-(10**6), 10**6), st.booleans(), _TEXT)
_VALUE = st.one_of(_SCALAR, st.lists(_SCALAR, max_size=3))
_PLUGINS = st.sampled_from(
    ["cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images",
     "io.containerd.cri.v1.runtime", "io.containerd.internal.v1.opt", "x.y"]
)  # fmt: skip


def _table(depth: int) -> st.SearchStrategy[dict]:
    scalars = st.dictionaries(_KEY, _VALUE, max_size=3)
    if depth == 0:
        return scalars
    # (a table named config_path cannot be given a value: the step's re-read refuses it)
    subs = st.dictionaries(_KEY.filter(lambda k: k != "config_path"), _table(depth - 1), max_size=2)
    return st.tuples(scalars, subs).map(lambda p: {**p[1], **p[0]})


@st.composite
def documents(draw: st.DrawFn) -> dict:
    """A containerd config document: top-level settings, plugin tables, and registry
    tables (of any version, holding config_path or not, with sub-tables)."""
    doc: dict = {}
    version = draw(st.sampled_from([None, 1, 2, 3, 3]))
    if version is not None:
        doc["version"] = version
    doc.update(draw(st.dictionaries(_KEY, _VALUE, max_size=3)))
    plugins = dict(draw(st.dictionaries(_PLUGINS, _table(2), max_size=3)))
    for v in draw(st.lists(st.sampled_from([1, 2, 3]), max_size=3, unique=True)):
        _, plugin, _ = SECTIONS[v]
        reg = dict(draw(_table(1)))
        if draw(st.booleans()):
            reg["config_path"] = draw(st.sampled_from(["", "/a", f"{CD}:/b", CD]))
        plugins[plugin] = {**plugins.get(plugin, {}), "registry": reg}
    if plugins or draw(st.booleans()):
        doc["plugins"] = plugins
    return doc


def _key(k: str) -> str:
    bare = k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k)
    return k if bare else _string(k)


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")  # no raw DEL in TOML


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _string(v)
    return "[" + ", ".join(_value(x) for x in v) + "]"


def dump(doc: dict, *, indent: bool, comments: bool, headers: bool) -> str:
    """``doc`` as TOML in containerd's styles: tables by header only (sub-tables indented
    or not), comments after headers and values, empty parent headers written or left out."""
    out: list[str] = []

    def table(path: tuple[str, ...], t: dict) -> None:
        scalars = {k: v for k, v in t.items() if not isinstance(v, dict)}
        subs = {k: v for k, v in t.items() if isinstance(v, dict)}
        pad = "  " * max(len(path) - 1, 0) if indent else ""
        if path and (scalars or not subs or headers):
            note = "  # a table" if comments else ""
            out.append(f"{pad}[{'.'.join(_key(k) for k in path)}]{note}")
        for k, v in scalars.items():
            note = "  # a value" if comments else ""
            out.append(
                f"{pad}  {_key(k)} = {_value(v)}{note}" if path else f"{_key(k)} = {_value(v)}"
            )
        for k, v in subs.items():
            table((*path, k), v)

    if comments:
        out.append("# generated")
    table((), doc)
    return "\n".join(out) + "\n"


@SETTINGS
@given(
    doc=documents(),
    major=st.sampled_from([0, 1, 2]),
    indent=st.booleans(),
    comments=st.booleans(),
    headers=st.booleans(),
)
def test_with_config_path_sets_it_and_keeps_everything_else(
    doc: dict, major: int, indent: bool, comments: bool, headers: bool
) -> None:
    text = dump(doc, indent=indent, comments=comments, headers=headers)
    assert tomllib.loads(text) == doc, text  # the generator writes what it means
    c = cfg(text, major)
    assert c.error == ""
    out = R.with_config_path(text, c, CD)
    got = tomllib.loads(out)
    want = copy.deepcopy(doc)
    if not doc:
        want["version"] = c.version
    node = want
    for k in c.section:
        node = node.setdefault(k, {})
    node["config_path"] = CD
    assert got == want, out
    again = R.containerd_config(out.encode(), major)
    assert (again.version, again.hosts_dir) == (c.version, CD)
    assert R.with_config_path(out, again, CD) == out  # set once: nothing more to do


# --------------------------------------------------------------------------- hosts.toml


@pytest.mark.parametrize(
    ("port", "address", "key"),
    [
        (443, "reg.example.test", "https://reg.example.test"),
        (5000, "reg.example.test:5000", "https://reg.example.test:5000"),
    ],
)
def test_hosts_toml_for_a_plan(port: int, address: str, key: str) -> None:
    reg = RegistrySpec(domain="reg.example.test", port=port)
    assert reg.address == address
    ca = f"{CD}/{address}/ca.crt"
    text = R.hosts_toml(reg.address, ca)
    doc = tomllib.loads(text)
    # one [host] section, and the top-level server (containerd tries it too) with the same
    # CA: a top-level server without a top-level ca fails the first try with x509
    assert doc == {
        "server": key,
        "ca": ca,
        "host": {key: {"capabilities": ["pull", "resolve", "push"], "ca": ca}},
    }
    assert ":443" not in text
    assert R.hosts_toml_names(text.encode(), reg.address, ca) == ""


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@SETTINGS
@given(
    labels=st.lists(_LABEL, min_size=1, max_size=4),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    base=st.sampled_from([CD, "/etc/k8s/certs.d", "/var/lib/rancher/certs.d"]),
)
def test_hosts_toml_is_read_back_as_right(labels: list[str], port: int | None, base: str) -> None:
    address = ".".join(labels) + (f":{port}" if port else "")
    ca = f"{base}/{address}/ca.crt"
    data = R.hosts_toml(address, ca).encode()
    assert R.hosts_toml_names(data, address, ca) == ""
    assert R.hosts_toml_names(data, address, ca + ".old") != ""
    assert R.hosts_toml_names(data, address + "x", ca) != ""


TOP = 'server = "https://r"\nca = "/c/ca.crt"\n'


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (None, "hosts.toml is missing"),
        ("[host.\n", "hosts.toml is not valid TOML"),
        ('server = "https://r"\nca = "/c/ca.crt"\n', 'has no [host."https://r"] section'),
        ('[host."https://r:5000"]\n  ca = "/c/ca.crt"\n', 'has no [host."https://r"] section'),
        (TOP + '[host."https://r"]\n  ca = "/other.crt"\n', "/c/ca.crt as the CA at its [host]"),
        (TOP + '[host."https://r"]\n  capabilities = ["pull"]\n', "does not name /c/ca.crt"),
        (TOP + '[host."https://r"]\n  ca = ["/x.crt", "/c/ca.crt"]\n', ""),
        ('[host."https://r"]\n  ca = "/c/ca.crt"\n', "/c/ca.crt as the CA at the top level"),
        ('ca = "/x.crt"\n[host."https://r"]\n  ca = "/c/ca.crt"\n', "at the top level"),
        ('host = "https://r"\n', 'has no [host."https://r"] section'),
    ],
)
def test_hosts_toml_names(text: str | None, why: str) -> None:
    got = R.hosts_toml_names(None if text is None else text.encode(), "r", "/c/ca.crt")
    assert (got == "") if not why else (why in got), got


def test_podman_trust_dir() -> None:
    assert R.podman_trust_dir("reg.example.test:5000") == (
        "/etc/containers/certs.d/reg.example.test:5000"
    )
