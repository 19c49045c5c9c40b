"""Fuzzing adopt's reading: whatever a container and its files say, adopt answers.

Random and mutated ``docker inspect`` data (wrong types everywhere, missing keys,
hostile strings) and random or mutated config.yml text go through
``facts.registry.interpret`` and ``adopt.adoption``, as ``adopt`` does on a host:

- no exception escapes, and the result is an Adoption;
- its plan passes ``validate_plan``, or every problem is named in the notes ("edit the
  plan before apply: ..."), or ``refused`` says why apply will not take it over;
- the plan can be written the way ``regwizard adopt`` writes it (TOML, UTF-8) and
  read back;
- no secret of the configuration or the environment appears in the notes, the
  refusals or the plan.
"""

from __future__ import annotations

import copy
from functools import cache

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard import pki
from regwizard.adopt import Adoption, Found, adoption
from regwizard.facts.registry import host_path, interpret, mounts_of
from regwizard.plan import CertificateSpec, Connection, dump_plan, parse_plan, validate_plan

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # about 10 s in CI's derandomized profile, each
SECRET = "FUZZSECRET"

# --------------------------------------------------------------------------- the bases

ANON = "9f2c4e1a7b3d" + "0" * 52
IMAGE_CONFIG = (
    "version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  cache:\n"
    "    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
    "http:\n  addr: :5000\n  headers:\n    X-Content-Type-Options: [nosniff]\n"
)
CONFIGS = [
    IMAGE_CONFIG,
    "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\nhttp:\n  addr: :5000\n"
    "  secret: FUZZSECRET-http\n  tls:\n    certificate: /certs/reg.crt\n    key: /certs/reg.key\n"
    "auth:\n  htpasswd:\n    realm: Example\n    path: /auth/htpasswd\n",
    # the access key id is no secret: adopt writes it into [storage]; the secret key never
    "version: 0.1\nstorage:\n  s3:\n    bucket: registry\n    region: us-east-1\n"
    "    accesskey: AKIAFUZZ-access\n    secretkey: FUZZSECRET-s3\n  delete:\n    enabled: true\n",
    "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nproxy:\n"
    "  remoteurl: https://registry-1.docker.io\n  username: u\n  password: FUZZSECRET-proxy\n",
    "version: 0.1\nauth:\n  token:\n    realm: https://auth.example.test/token\n    service: r\n",
    "version: 0.1\nhttp:\n  tls:\n    letsencrypt:\n      cachefile: /le.json\n      email: a@b.c\n",
]


def _bind(src: str, dst: str) -> dict:
    return {"Type": "bind", "Source": src, "Destination": dst, "RW": True}


BASES = [
    {  # the tutorial's first registry
        "Name": "/registry",
        "State": {"Status": "running", "ExitCode": 0},
        "Config": {
            "Image": "registry:2",
            "Entrypoint": ["/entrypoint.sh"],
            "Cmd": ["/etc/docker/registry/config.yml"],
            "Env": [
                "STORAGE_PATH=/opt/docker-image",
                "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/reg.crt",
                "REGISTRY_HTTP_TLS_KEY=/certs/reg.key",
                f"REGISTRY_HTTP_SECRET={SECRET}-env",
            ],
            "Labels": {},
        },
        "HostConfig": {
            "PortBindings": {"5000/tcp": [{"HostIp": "", "HostPort": "443"}]},
            "RestartPolicy": {"Name": "always"},
        },
        "Mounts": [
            _bind("/root/certs", "/certs"),
            _bind("/opt/docker-image", "/opt/docker-image"),
            {
                "Type": "volume",
                "Name": ANON,
                "Source": "/var/lib/docker/volumes/a/_data",
                "Destination": "/var/lib/registry",
            },
        ],  # fmt: skip
    },
    {  # htpasswd auth, a mounted config.yml
        "Name": "/reg",
        "RestartCount": 3,
        "State": {"Status": "restarting", "ExitCode": 1},
        "Config": {
            "Image": "registry:3.0.0",
            "Cmd": ["serve", "/etc/distribution/config.yml"],
            "Env": ["REGISTRY_AUTH=htpasswd", f"REGISTRY_STORAGE_S3_SECRETKEY={SECRET}-s3env"],
        },
        "HostConfig": {
            "NetworkMode": "host",
            "RestartPolicy": {"Name": "no"},
            "Tmpfs": {"/tmp": ""},
        },  # fmt: skip
        "Mounts": [
            _bind("/srv/reg/config.yml", "/etc/distribution/config.yml"),
            _bind("/srv/reg/certs", "/certs"),
            _bind("/srv/reg/auth", "/auth"),
            _bind("/srv/data", "/data"),
        ],
    },
]


@cache
def _pems() -> tuple[bytes, ...]:
    """A few real certificates (made once): with SANs, CN only, from a CA, expired."""
    import datetime as dt

    from tests.fixtures import recipes

    spec = CertificateSpec(key="ecdsa-p256", organization="Org")
    _k, good = pki.make_server_cert(spec, "reg.example.test", "10.0.0.2", ["*.example.test"])
    ca_key, ca = pki.make_ca(spec)
    _k, signed = pki.make_server_cert(spec, "reg.example.test", issuer_key=ca_key, issuer_cert=ca)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=900)
    _k, gone = pki.make_server_cert(spec, "10.0.0.2", now=old, days=30)
    cn_only = recipes.make("cn-only for reg.example.test", {}).pem
    return tuple(pki.cert_to_pem(c) for c in (good, signed, gone)) + (cn_only,)


# --------------------------------------------------------------------------- strategies

# no lone surrogates: Docker's API and files decoded with errors="replace" cannot give one
HOSTILE = [
    "",
    " ",
    "\x00",
    "a\nb",
    "../../etc/shadow",
    "/certs/../../../etc/shadow",
    "/",
    "//x",
    "$(touch PWNED)",
    "x" * 5000,
    "registry",
    "serve",
    "5000/tcp",
    ":::::",
    "-1",
    "99999",
    "htpasswd",
    "token",
    "s3",
    "REGISTRY_AUTH=token",
    "REGISTRY_STORAGE=s3",
    "REGISTRY_HTTP_ADDR=:0",
    "REGISTRY_HTTP_ADDR=[::]:5443",
    "=",
    "🐳",
]
text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text, st.binary(max_size=8)
)
junk = st.recursive(
    scalar,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(text, c, max_size=4)),
    max_leaves=10,
)


@st.composite
def mutated(draw, base: object, depth: int = 0) -> object:
    """``base`` with some values replaced by junk, keys dropped or added, lists reshaped."""
    if depth > 6 or draw(st.integers(0, 9)) == 0:
        return draw(junk)
    if isinstance(base, dict):
        out = {}
        for k, v in base.items():
            r = draw(st.integers(0, 9))
            if r == 0:
                continue  # drop
            out[k] = draw(mutated(v, depth + 1)) if r < 4 else copy.deepcopy(v)
        for _ in range(draw(st.integers(0, 2))):
            out[draw(text)] = draw(junk)
        return out
    if isinstance(base, list):
        items = [draw(mutated(v, depth + 1)) if draw(st.booleans()) else v for v in base]
        if draw(st.booleans()):
            items.append(draw(junk))
        return draw(st.permutations(items)) if items else items
    return base if draw(st.booleans()) else draw(junk)


def _mutate_text(draw, s: str) -> str:
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(s)))
        op = draw(st.integers(0, 3))
        if op == 0:
            s = s[:i] + draw(st.text(max_size=6)) + s[i:]
        elif op == 1:
            s = s[:i] + s[i + draw(st.integers(1, 20)) :]
        elif op == 2:
            lines = s.splitlines(keepends=True)
            if lines:
                j = draw(st.integers(0, len(lines) - 1))
                lines.insert(j, lines[j])
                s = "".join(lines)
        else:
            s = s[:i] + draw(st.sampled_from(["&a ", "*a", "!!python/object:x ", "{", "- ", "\t"]))
    return s


@st.composite
def config_texts(draw) -> bytes | None:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return None  # no file
    if kind == 1:
        return draw(st.binary(max_size=64))
    if kind == 2:
        doc = draw(mutated(yaml.safe_load(draw(st.sampled_from(CONFIGS)))))
        try:
            return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")
        except yaml.YAMLError:
            return b"{}"
    if kind == 3:
        shapes = ["[" * 300, "{a: " * 200, "&a [*a, *a]", "- &x\n  - *x\n", "~", "42"]
        return draw(st.sampled_from(shapes)).encode()
    return _mutate_text(draw, draw(st.sampled_from(CONFIGS))).encode("utf-8", "surrogatepass")


htpasswd_texts = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.lists(
        st.sampled_from(
            [
                "carol:$2b$04$Uh7XEi9VDBq6WWSOoOyuOuAqr1Rs4AJ7ZPUcaALfmdbAoQ4AB8Duq",
                "carol:$2y$05$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZa",
                "dave:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/",
                "erin:$2b$15$OIslWNYvu6W6d678y9bkW.skllLGRnR8CxGFv5U1KEH2sEKoVZWRO",
                "no colon here",
                "Bad Name:$2b$04$Uh7XEi9VDBq6WWSOoOyuOuAqr1Rs4AJ7ZPUcaALfmdbAoQ4AB8Duq",
                ":",
                "# comment",
                "",
            ]
        )
        | text.map(lambda t: f"{t}:{t}"),
        max_size=6,
    ).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
)


def cert_bytes():  # noqa: ANN201
    return st.one_of(
        st.none(),
        st.binary(max_size=64),
        st.integers(0, 3).map(lambda i: _pems()[i]),
        st.integers(0, 3).map(lambda i: b"junk\n" + _pems()[i][:-30]),
    )


connections = st.builds(
    Connection,
    address=st.sampled_from(["10.0.0.2", "reg.example.test", "local", "fd00::2", "host", ""])
    | text,
    port=st.sampled_from([22, 2222]),
    user=st.sampled_from(["root", "admin"]),
)


def _read(config: bytes | None, files: dict[str, bytes | None], attrs: object):
    """read(container path) as adopt's reader: the config, else the other files."""
    mounts = mounts_of(attrs if isinstance(attrs, dict) else {})

    def read(cpath: str):
        hp, _m = host_path(mounts, cpath)
        if cpath.endswith((".yml", ".yaml")):
            return config, hp or f"registry:{cpath}"
        return files.get(cpath), hp or f"registry:{cpath}"

    return read


def _found(draw, attrs: object, config: bytes | None) -> Found:
    cert, ht = draw(cert_bytes()), draw(htpasswd_texts)
    facts = interpret(attrs, _read(config, {}, attrs))  # type: ignore[arg-type]
    return Found(
        facts=facts,
        image_tags=tuple(draw(st.lists(text, max_size=2))),
        cert=cert,
        cert_where=draw(text),
        htpasswd=ht,
        htpasswd_where=draw(text),
        used_dirs=frozenset(draw(st.lists(st.sampled_from(["/opt/docker-image", "/etc/regwizard", "/srv"]) | text, max_size=3))),
        certs_d=tuple(draw(st.lists(st.sampled_from(["reg.example.test", "reg.example.test:443"]) | text, max_size=3))),
        host_label=draw(text),
        fingerprint=draw(st.sampled_from(["", "SHA256:" + "A" * 43])),  # computed by regwizard
    )  # fmt: skip


# --------------------------------------------------------------------------- the property


def _check(a: Adoption) -> None:
    assert isinstance(a, Adoption)
    assert all(isinstance(n, str) for n in a.notes) and all(isinstance(r, str) for r in a.refused)
    errors = validate_plan(a.plan)
    if errors and not a.refused:
        said = "\n".join(a.notes)
        missing = [e.cause for e in errors if f"edit the plan before apply: {e.cause}" not in said]
        assert missing == [], missing
    # written as `regwizard adopt` writes it (TOML, UTF-8), and read back
    toml = dump_plan(a.plan)
    toml.encode("utf-8")
    back = parse_plan(toml, validate=False)
    assert back.registry.domain == a.plan.registry.domain
    shown = "\n".join([*a.notes, *a.refused, toml])
    assert SECRET not in shown, [x for x in shown.splitlines() if SECRET in x]


@FUZZ
@given(st.data())
def test_adopt_survives_mutated_inspect_data(data) -> None:
    attrs = data.draw(st.sampled_from(BASES).flatmap(mutated))
    config = data.draw(st.sampled_from([c.encode() for c in CONFIGS]) | config_texts())
    _check(adoption(_found(data.draw, attrs, config), data.draw(connections)))


@FUZZ
@given(st.data())
def test_adopt_survives_any_configuration(data) -> None:
    attrs = data.draw(st.sampled_from(BASES))
    config = data.draw(config_texts())
    _check(adoption(_found(data.draw, attrs, config), data.draw(connections)))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_adopt_survives_junk_instead_of_inspect_data(data) -> None:
    attrs = data.draw(junk)
    _check(adoption(_found(data.draw, attrs, data.draw(config_texts())), Connection()))


def test_adopt_survives_a_configuration_nested_too_deeply() -> None:
    """Deeper than Python's recursion limit: an unreadable configuration, not a crash.
    (Once, outside the fuzzer: PyYAML takes over a second to give up.)"""
    attrs = BASES[0]
    facts = interpret(attrs, _read(b"[" * 5000, {}, attrs))
    assert facts.config is not None and "not valid YAML" in facts.config.error
    a = adoption(Found(facts=facts), Connection(address="10.0.0.2"))
    _check(a)
    assert any("cannot be read" in r for r in a.refused)
