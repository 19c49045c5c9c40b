"""``regwizard apply PLAN --dry-run --diff``: a unified diff of each file that would change.

Offline: the dry run runs on fake hosts (tests/fixtures/world.py) through the real CLI
(``regwizard.cli.main``) with only ``engine.run`` bound to them. Each step's own diff is
checked by its fixture cases (``"diff"`` in tests/fixtures/steps/*); here: the CLI's text
and JSON, ``--diff`` without ``--dry-run``, the pure helpers of regwizard/diffs.py, and a
property: whatever the users, passwords, http secret and upstream login, no password,
bcrypt hash or secret value ever appears in any diff.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from regwizard import diffs, engine
from regwizard.cli.main import main
from regwizard.events import FileDiff, StepFinished
from regwizard.facts.registry import yaml_str
from regwizard.htpasswd import hash_password
from regwizard.plan import dump_plan
from tests.fixtures import world

from .sandbox import Sandbox, loopback_plan
from .test_limits import assert_one_message

# --------------------------------------------------------------------------- helpers


def _fresh(tmp: Path) -> world.Case:
    """Nothing on any host yet: every file-writing step has a diff."""
    return world.build({"plan": {"registry": {"port": 5000}}}, tmp)


def _applied(tmp: Path, hosts: dict | None = None) -> world.Case:
    return world.build({"setup": "applied", "hosts": hosts or {}}, tmp)


def _cli(case: world.Case, tmp: Path, monkeypatch, capsys, *flags: str) -> tuple[int, str, str]:
    """``regwizard apply PLAN --dry-run FLAGS`` against the case's fake hosts."""
    plan_file = tmp / "plan.toml"
    plan_file.write_text(dump_plan(case.plan))
    real = engine.run
    monkeypatch.setattr(
        engine, "run", functools.partial(real, connect=case.connect(), net=case.net)
    )
    rc = main(["apply", str(plan_file), *flags])
    out, err = capsys.readouterr()
    assert case.writes() == {}, "a dry run changed a host"
    return rc, out, err


def _dry_run_diffs(case: world.Case) -> list[FileDiff]:
    events: list = []
    result = engine.run(
        case.plan, case.secrets, emit=events.append, dry_run=True, connect=case.connect()
    )
    assert result.ok, result.failure
    assert case.writes() == {} and case.key_reads() == {}
    return [d for ev in events if isinstance(ev, StepFinished) for d in ev.diffs]


# --------------------------------------------------------------------------- the CLI


def test_diff_prints_a_unified_diff_per_file(tmp_path, monkeypatch, capsys) -> None:
    rc, out, err = _cli(_fresh(tmp_path), tmp_path, monkeypatch, capsys, "--dry-run", "--diff")
    assert rc == 3, err
    assert "# equivalent shell commands" in out  # the usual output stays
    assert "# what would change, file by file (secrets redacted)" in out
    addr = "reg.example.test:5000"
    for want in (
        "--- node1:/etc/hosts (now)\n+++ node1:/etc/hosts (after apply)\n",
        "+10.0.0.2\treg.example.test\t# regwizard\n",
        f"+++ this machine:/etc/docker/certs.d/{addr}/ca.crt (after apply)\n",
        "--- /dev/null\n+++ node1:/etc/regwizard/auth/htpasswd (after apply)\n",
        "+user alice\n",
        "--- /dev/null\n+++ node1:/etc/regwizard/registry/config.yml (after apply)\n",
        "+  secret: <redacted>\n",
        "+++ node1:/etc/regwizard/certs/current/reg.example.test.crt (after apply)\n",
        "+  SANs:    DNS:reg.example.test, IP:10.0.0.2\n",
        "--- /dev/null\n+++ node1:container registry (after apply)\n",
        "+restart: always\n",
        "# node1:/opt/docker-image: a new directory",
    ):
        assert want in out, want
    assert "$2" not in out and "PRIVATE KEY" not in out and "BEGIN CERTIFICATE" not in out
    assert "dry run: " in err and "change(s) pending" in err


def test_diff_as_json(tmp_path, monkeypatch, capsys) -> None:
    rc, out, _ = _cli(
        _fresh(tmp_path), tmp_path, monkeypatch, capsys, "--dry-run", "--diff", "--json"
    )
    assert rc == 3
    doc = json.loads(out)
    assert doc["pending"]
    got = {(d["host"], d["path"]): d for d in doc["diffs"]}
    hosts = got[("node1", "/etc/hosts")]
    assert set(hosts) == {"host", "path", "note", "diff"}
    assert hosts["diff"].startswith(
        "--- node1:/etc/hosts (now)\n+++ node1:/etc/hosts (after apply)"
    )
    assert "+user alice\n" in got[("node1", "/etc/regwizard/auth/htpasswd")]["diff"]
    assert "secret: <redacted>" in got[("node1", "/etc/regwizard/registry/config.yml")]["diff"]
    assert got[("node1", "/opt/docker-image")]["diff"].startswith("# node1:/opt/docker-image: ")
    assert "$2" not in out


def test_json_without_diff_has_no_diffs_key(tmp_path, monkeypatch, capsys) -> None:
    rc, out, _ = _cli(_fresh(tmp_path), tmp_path, monkeypatch, capsys, "--dry-run", "--json")
    assert rc == 3 and "diffs" not in json.loads(out)


def test_nothing_to_change_prints_no_diff(tmp_path, monkeypatch, capsys) -> None:
    case = _applied(tmp_path)
    rc, out, err = _cli(case, tmp_path, monkeypatch, capsys, "--dry-run", "--diff")
    assert rc == 0, err
    assert "what would change" not in out and "\n--- " not in out
    rc, out, _ = _cli(case, tmp_path, monkeypatch, capsys, "--dry-run", "--diff", "--json")
    assert rc == 0 and json.loads(out)["diffs"] == []


def test_a_hosts_entry_changed_by_hand_is_the_one_diff(tmp_path, monkeypatch, capsys) -> None:
    """What the lab test does, offline: one wrong line in one client's /etc/hosts."""
    wrong = {"this machine": {"files": {"/etc/hosts": "10.9.9.9 reg.example.test\n"}}}
    rc, out, _ = _cli(
        _applied(tmp_path, wrong), tmp_path, monkeypatch, capsys, "--dry-run", "--diff"
    )
    assert rc == 3
    diff = out[out.index("# what would change") :]
    assert diff.count("\n--- ") == 1
    assert "--- this machine:/etc/hosts (now)\n" in diff
    assert "-10.9.9.9 reg.example.test\n" in diff


def test_diff_without_dry_run_is_refused(tmp_path) -> None:
    with Sandbox(tmp_path) as box:
        (box.root / "plan.toml").write_text(dump_plan(loopback_plan()))
        o = box.run(["apply", "plan.toml", "--diff"])
    assert o.rc == 2, o.err
    assert_one_message(o.err, "--diff needs --dry-run")
    assert o.calls == [] and o.out == ""


# --------------------------------------------------------------------------- diffs.py


def test_unified_headers_and_dev_null() -> None:
    d = FileDiff("n1", "/etc/x", None, "a\n")
    assert diffs.unified(d) == "--- /dev/null\n+++ n1:/etc/x (after apply)\n@@ -0,0 +1 @@\n+a\n"
    gone = diffs.unified(FileDiff("n1", "/etc/x", "a", None))
    assert gone.startswith("--- n1:/etc/x (now)\n+++ /dev/null\n")
    assert gone.endswith("-a\n\\ No newline at end of file\n")
    assert diffs.unified(FileDiff("n1", "/etc/x", "same\n", "same\n")) == ""
    assert diffs.unified(FileDiff("n1", "/d", None, None, "made")) == "# n1:/d: made\n"


def test_redact_by_key_in_yaml_and_toml() -> None:
    yml = (
        "http:\n  secret: abc123secret\n  tls:\n    key: /certs/x.key\n"
        "proxy:\n  password: |\n    line-one\n    line-two\n  username: u\n"
        "storage:\n  s3:\n    accesskey: AKIA1\n    secretkey: SK1\n"
        "# old secret: was-this-one\n#password = p2\n# a comment: kept\n"
    )
    got = diffs.redact(yml)
    assert "secret: <redacted>" in got and "password: <redacted>" in got
    assert "key: /certs/x.key" in got and "username: u" in got
    for gone in ("abc123secret", "line-one", "line-two", "AKIA1", "SK1", "was-this", "p2"):
        assert gone not in got
    assert "# a comment: kept" in got
    toml = (
        '[x.auth]\n  username = "u"\n  password = "p4ss"\n  auth = "dTpw"\n'
        '[h.header]\n  Authorization = [\n    "Basic Zm9v"\n  ]\nca = "/a.crt"\n'
    )
    got = diffs.redact(toml)
    for gone in ("p4ss", "dTpw", "Zm9v"):
        assert gone not in got
    assert 'ca = "/a.crt"' in got and 'username = "u"' in got


def test_redact_known_values_anywhere() -> None:
    got = diffs.redact('http: {secret: "s3cr\\u00e9t-value", addr: ":5000"}\n', ["s3cré t"])
    assert got is not None  # a value not in the text changes nothing
    got = diffs.redact('http: {secret: "s3cr\\u00e9t-value"}\n', ["s3cr\u00e9t-value"])
    assert "s3cr" not in got and diffs.REDACTED in got


def test_htpasswd_users_are_names_only() -> None:
    text = "alice:$2b$04$abc\n# comment\n\nbob:$apr1$x$y\nbroken line\n$2b$04$x:y\n"
    got = diffs.htpasswd_users(text, updated=["alice"], non_bcrypt=["bob"])
    assert got == (
        "user alice (new password)\n"
        "user bob (not bcrypt: the registry ignores it)\n"
        "(a line without a user name: dropped)\n"
        "(a user whose name is not shown)\n"
    )


def test_cert_summary_counts_a_key_and_never_shows_it() -> None:
    from tests.fixtures import recipes

    made = recipes.make_all({"c": "self-signed for reg.example.test,10.0.0.2"})
    cert, key = made["c"].pem, made["c"].key_pem
    got = diffs.cert_summary(cert + key)
    assert "subject: /CN=reg.example.test" in got or "CN=reg.example.test" in got
    assert "SANs:    DNS:reg.example.test, IP:10.0.0.2" in got
    assert "1 private key block(s) (never shown)" in got
    assert "BEGIN" not in got
    assert diffs.cert_summary(b"junk").startswith("not a PEM certificate (4 bytes)")


def test_settings_mask_secret_like_env_and_labels() -> None:
    got = diffs.settings(
        [("env", "REGISTRY_HTTP_SECRET=x1"), ("env", "A=b"), ("label", "api_token=t")]
    )
    assert got == "env: REGISTRY_HTTP_SECRET=<redacted>\nenv: A=b\nlabel: api_token=<redacted>\n"


# --------------------------------------------------------------------------- property

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{2,12}", fullmatch=True)
# long enough that a value found in a diff can only be a leak, never a coincidence
SECRETS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=12,
    max_size=40,
)


def _secret_world(
    names: list[str],
    passwords: list[str],
    http_secret: str,
    upstream: tuple[str, str, str],
    flow: bool,
) -> tuple[str, list[FileDiff], list[str]]:
    """A dry run's diffs where every secret is on some host or in the plan: the registry's
    config.yml (block or flow style) and the legacy http-secret file, a mirror's upstream
    login (stored and new), htpasswd lines of the plan's users (hashes of passwords
    changed) and a stranger, and a hand-made REGISTRY_HTTP_SECRET in the container's
    environment (its label differs: it is recreated). Returns (text, diffs, hashes)."""
    import tempfile

    up_user, up_old, up_new = upstream
    pw_old, pw_new, pw_other = passwords
    old = dict.fromkeys(names, hash_password(pw_old, rounds=4))
    new = dict.fromkeys(names, hash_password(pw_new, rounds=4))
    stranger = hash_password(pw_other, rounds=4)
    q = yaml_str
    if flow:
        config = f'http: {{secret: {q(http_secret)}, addr: ":5000"}}\n'
    else:
        config = f"http:\n  secret: {q(http_secret)}\n  addr: :5000\n"
    config += (
        f"proxy:\n  remoteurl: {q('https://up.example.test')}\n"
        f"  username: {q(up_user)}\n  password: {q(up_old)}\n"
    )
    htpasswd = "".join(f"{n}:{h}\n" for n, h in old.items()) + f"stranger:{stranger}\n"
    data = {
        "setup": "applied",
        "plan": {
            "registry": {"proxy_remote_url": "https://up.example.test"},
            "users=": [{"name": n, "bcrypt": h} for n, h in new.items()],
            "verify": {"user": names[0], "mirror_image": "lab/x:v1"},
        },
        "secrets": {"upstream_user": up_user, "upstream_password": up_new},
        "hosts": {
            "node1": {
                "files": {
                    "/etc/regwizard/registry/config.yml": config,
                    "/etc/regwizard/http-secret": http_secret,
                    "/etc/regwizard/auth/htpasswd": htpasswd,
                },
                "containers": {
                    "registry": {
                        "Config": {
                            "Env+": [f"REGISTRY_HTTP_SECRET={http_secret}"],
                            "Labels": {"io.regwizard.config-hash": "0123456789abcdef"},
                        }
                    }
                },
            }
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        found = _dry_run_diffs(world.build(data, Path(tmp)))
    text = "".join(diffs.unified(d) for d in found)
    return text, found, [*old.values(), *new.values(), stranger]


PLACEHOLDERS = ["Placeholder-Old-1", "Placeholder-New-2", "Placeholder-Other-3"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(NAMES, min_size=1, max_size=3, unique=True),
    passwords=st.lists(SECRETS, min_size=3, max_size=3),
    http_secret=SECRETS,
    upstream=st.tuples(NAMES, SECRETS, SECRETS),
    flow=st.booleans(),
)
def test_no_secret_ever_appears_in_a_diff(names, passwords, http_secret, upstream, flow) -> None:
    secrets_ = [*passwords, http_secret, upstream[1], upstream[2]]
    for v in secrets_:
        assume(len(v.encode()) <= 72 and not any(v in n or n in v for n in [*names, upstream[0]]))
    # the same run with other values: what it shows anyway is no leak (a value that
    # happens to be "/opt/docker-" is found in any diff of the container)
    baseline, _, _ = _secret_world(
        names, PLACEHOLDERS, "Placeholder-Http-4", (upstream[0], "Placeholder-Up-5", "Ph-6-up"),
        flow,
    )  # fmt: skip
    for v in secrets_:
        assume(v not in baseline)
    text, found, hashes = _secret_world(names, passwords, http_secret, upstream, flow)
    paths = {d.path for d in found}
    assert {"/etc/regwizard/auth/htpasswd", "/etc/regwizard/registry/config.yml"} <= paths
    assert "container registry" in paths
    assert re.search(r"\$2[aby]?\$", text) is None and "$2" not in text
    for v in (*secrets_, *hashes):
        assert v not in text, f"{v!r} leaked into the diff"
    for n in names:
        assert f"user {n}" in text
