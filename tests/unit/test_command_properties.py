"""Property tests: every command regwizard builds runs exactly what was intended.

For hostile plan values (shell metacharacters, newlines, unicode, long strings, ``../``)
either plan validation rejects the plan (PlanError), or the command text, split the way
a POSIX shell splits it, gives exactly the intended argv: no value ever escapes its
argument and nothing but the intended command runs. Checked for:

- ``steps.container.docker_run_command`` (also executed by a real ``sh`` with ``docker``
  stubbed): ``serve /etc/distribution/config.yml`` at the end, the labels, and no secret;
- ``engine.shell_commands(plan)`` (the dry-run / Review "equivalent shell commands"),
  line by line: the config file written by a quoted heredoc that no plan value can end
  early, and whose YAML gives back the plan's values; openssl's ``-subj`` parsing;
- the ``commands`` of the steps' changes (``Change.commands``);
- the argv the steps pass to ``Host.run`` (plan values travel as arguments, never as code);
- the command string ``SSHHost`` sends to the remote shell (executed by sh and bash);
- ``LocalHost.run`` / ``write_file`` with hostile arguments and file names.

The loader/validator fuzzing itself lives in test_plan_properties.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from regwizard import engine, hosts, steps
from regwizard.errors import PlanError, RegwizardError
from regwizard.facts.read import _SNAPSHOT
from regwizard.facts.registry import LABEL_HASH, LABEL_MANAGED
from regwizard.hosts import LocalHost, Result, SSHHost
from regwizard.plan import (
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    Secrets,
    User,
    VerifySpec,
    is_ip,
    validate_plan,
)
from regwizard.steps.config import SECRET_MARK, render
from regwizard.steps.container import desired, docker_run_command

SOME = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HASH = "$2b$04$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"

# Payloads are harmless on purpose (some tests execute the built command in a sandbox):
# a broken quoting shows up as a PWNED file, a "not found" on stderr, or a wrong argv.
SHELL_NASTY = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "; touch PWNED",
    "&& touch PWNED #",
    "| touch PWNED",
    "> PWNED",
    "< /dev/null",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "\\",
    "\\'",
    "$HOME",
    "${IFS}",
    "*",
    "~",
    "!",
    "#",
    "a b\tc",
    "a\nb",
    "a\rb",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\u202e",
    "ünïcödé",
    "日本語",
    "🐳",
    "-rf",
    "--help",
    "../../etc/shadow",
    "..",
    "x" * 300,
    "a:b",
    "a,b",
    "a=b",
    "a/b+c",
    "a/CN=evil",
    "EOF",
    "%s%n",
]

nasty = st.one_of(
    st.sampled_from(SHELL_NASTY),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="ascii"), max_size=30),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=5), st.sampled_from(SHELL_NASTY),
              st.text(max_size=5)),
)  # fmt: skip

# values that often pass validation, so the command builders see them
path_value = st.builds(
    lambda base, tail: base + tail, st.sampled_from(["/opt/", "/srv/reg/", "/data/x "]), nasty
)
short_text = nasty.map(lambda s: s[:64])


def base_plan() -> Plan:
    return Plan(
        registry=RegistrySpec(
            domain="reg.example.test", ip="10.0.0.2", storage="/opt/reg", config_dir="/etc/rw"
        ),
        host=Connection(address="10.0.0.2", label="node1"),
        clients=[Connection(), Connection(address="10.0.0.3", label="node2")],
        certificate=CertificateSpec(key="ecdsa-p256", organization="Org", extra_sans=["alt.test"]),
        users=[User("alice", HASH), User("bob", HASH)],
        verify=VerifySpec(user="alice"),
    )


# slot (as validate_plan names it) -> value strategy
SLOTS: dict[str, st.SearchStrategy] = {
    "registry.domain": nasty,
    "registry.container": nasty,
    "registry.image": nasty,
    "registry.image_archive": st.one_of(path_value, nasty),
    "registry.storage": st.one_of(path_value, nasty),
    "registry.config_dir": st.one_of(path_value, nasty),
    "registry.realm": nasty,
    "certificate.country": nasty,
    "certificate.state": short_text,
    "certificate.locality": short_text,
    "certificate.organization": short_text,
    "certificate.organizational_unit": short_text,
    "certificate.common_name": short_text,
    "certificate.extra_sans[0]": nasty,
    "users[0].name": nasty,
    "verify.user": st.sampled_from(["", "alice", "bob"]),
    "host.label": nasty,
    "clients[1].label": nasty,
}


def _obj_attr(plan: Plan, slot: str) -> tuple[object, str | int]:
    m = re.fullmatch(r"(\w+)(?:\[(\d+)\])?\.(\w+)(?:\[(\d+)\])?", slot)
    assert m, slot
    sec, idx, attr, sub = m.groups()
    obj = getattr(plan, sec)
    if idx is not None:
        obj = obj[int(idx)]
    if sub is not None:
        return getattr(obj, attr), int(sub)
    return obj, attr


def _get(plan: Plan, slot: str):
    obj, key = _obj_attr(plan, slot)
    return obj[key] if isinstance(key, int) else getattr(obj, key)


def _set(plan: Plan, slot: str, value) -> None:
    obj, key = _obj_attr(plan, slot)
    if isinstance(key, int):
        obj[key] = value
    else:
        setattr(obj, key, value)


@st.composite
def hostile_plans(draw) -> tuple[Plan, dict[str, str]]:
    """A plan with several hostile values; slots that fail validation are reverted,
    so what remains is a valid plan still carrying every accepted hostile value."""
    plan = base_plan()
    chosen = draw(st.lists(st.sampled_from(sorted(SLOTS)), min_size=1, max_size=6, unique=True))
    mutated: dict[str, str] = {}
    for slot in chosen:
        value = draw(SLOTS[slot])
        _set(plan, slot, value)
        mutated[slot] = value
    if "users[0].name" in mutated and draw(st.booleans()):
        plan.verify.user = mutated["users[0].name"]
        mutated["verify.user"] = plan.verify.user
    plan.registry.port = draw(st.sampled_from([443, 5000, 65535]))
    plan.registry.manage_hosts_file = draw(st.booleans())
    plan.certificate.mode = draw(st.sampled_from(["self-signed", "local-ca", "provided"]))
    if plan.certificate.mode == "provided":
        plan.certificate.cert_file = draw(
            st.sampled_from(["/srv/in/reg.crt", "~/my certs/reg.pem"])
        )
        plan.certificate.key_file = draw(st.one_of(st.just("/srv/in/reg.key"), path_value))
    plan.certificate.key = draw(st.sampled_from(["rsa-2048", "rsa-4096", "ecdsa-p256"]))
    pristine = base_plan()
    for _ in range(10):
        errors = validate_plan(plan)
        if not errors:
            break
        with pytest.raises(PlanError):  # rejected as a PlanError, never another exception
            plan.validate()
        # every rejected value is reverted (the "either rejected" half of the property)
        for err in errors:
            field = err.field
            if field == "registry.config_dir":  # nested storage/config_dir
                for s in ("registry.config_dir", "registry.storage"):
                    _set(plan, s, _get(pristine, s))
                    mutated.pop(s, None)
            if field == "verify.user" or (field.startswith("users") and "verify.user" in mutated):
                plan.verify.user = "alice" if _get(plan, "users[0].name") == "alice" else ""
                mutated.pop("verify.user", None)
            if field == "certificate.key_file":
                plan.certificate.key_file = "/srv/in/reg.key"
            if field in mutated:
                _set(plan, field, _get(pristine, field))
                mutated.pop(field)
    errors = validate_plan(plan)
    assert not errors, [str(e) for e in errors]
    return plan, mutated


# --------------------------------------------------------------------------- oracles


def sh_tokens(line: str) -> list[str]:
    """How a POSIX shell splits one line into words and operators (comments dropped)."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    return list(lex)


# the expansions the equivalent shell commands mean to make (where shlex and sh differ)
_INTENDED_EXPANSIONS = re.compile(
    r'"\$PASSWORD_[A-Z0-9_]+"|"\$GEN"|\$\(date \+%Y%m%d-%H%M%S\)|\$\(openssl rand -hex 32\)'
)


def assert_no_live_expansion(line: str) -> None:
    """Nothing the shell would expand or escape, outside the intended expansions above:
    outside single quotes no $, ` or \\; one line; quotes balanced."""
    assert "\n" not in line and "\r" not in line and "\0" not in line, repr(line)
    rest = _INTENDED_EXPANSIONS.sub("X", line)
    state = ""  # "", "'" or '"'
    for ch in rest:
        if state == "'":
            state = "" if ch == "'" else state
        elif ch in "'\"" and state == "":
            state = ch
        elif ch == '"' and state == '"':
            state = ""
        else:
            assert ch not in "$`\\", f"live {ch!r} in {line!r}"
    assert state == "", f"unbalanced quote in {line!r}"


def ctx_for(plan: Plan, hosts_: list | None = None) -> steps.Ctx:
    return steps.Ctx(plan, Secrets(), lambda e: None, threading.Event(), hosts=hosts_ or [])


def expected_run_argv(plan: Plan) -> list[str]:
    reg = plan.registry
    cfg = reg.config_dir
    label = desired(ctx_for(plan))["labels"][LABEL_HASH]
    argv = ["docker", "run", "-d", "--name", reg.container, "--restart=always"]
    argv += ["-p", f"{reg.port}:5000"]
    argv += ["-v", f"{reg.storage}:/var/lib/registry"]
    argv += ["-v", f"{cfg}/certs:/certs:ro", "-v", f"{cfg}/auth:/auth:ro"]
    argv += ["-v", f"{cfg}/registry:/etc/distribution:ro"]
    argv += ["-e", "OTEL_TRACES_EXPORTER=none"]
    argv += ["--label", f"{LABEL_MANAGED}=true", "--label", f"{LABEL_HASH}={label}"]
    return [*argv, reg.image, "serve", "/etc/distribution/config.yml"]


def assert_docker_level_ok(argv: list[str], plan: Plan) -> None:
    """docker itself splits -v on ':', -e and --label on the first '=': they must stay intact."""
    vols = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    cfg = plan.registry.config_dir
    want = [
        [plan.registry.storage, "/var/lib/registry"],
        [f"{cfg}/certs", "/certs", "ro"],
        [f"{cfg}/auth", "/auth", "ro"],
        [f"{cfg}/registry", "/etc/distribution", "ro"],
    ]
    assert [v.split(":") for v in vols] == want
    env = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    assert env == ["OTEL_TRACES_EXPORTER=none"]  # no secret, no setting: all in config.yml
    labels = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--label")
    assert set(labels) == {LABEL_MANAGED, LABEL_HASH}
    assert re.fullmatch(r"[0-9a-f]{16}", labels[LABEL_HASH])


def subject_rdns(subj: str) -> list[tuple[str, str]]:
    """openssl's -subj parsing: /K=V/K=V, with backslash escaping / + and itself."""
    assert subj.startswith("/"), subj
    out, cur, i = [], "", 1
    while i < len(subj):
        ch = subj[i]
        if ch == "\\" and i + 1 < len(subj):
            cur += subj[i + 1]
            i += 2
            continue
        assert ch != "+", f"unescaped + (multi-valued RDN) in {subj!r}"
        if ch == "/":
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return [tuple(p.split("=", 1)) for p in out]  # type: ignore[misc]


def _server_rdns(plan: Plan) -> list[tuple[str, str]]:
    from regwizard import pki

    c = plan.certificate
    return [
        (k, v)
        for k, v in (
            ("C", c.country.upper()), ("ST", c.state), ("L", c.locality), ("O", c.organization),
            ("OU", c.organizational_unit), ("CN", pki.subject_cn(c, plan.registry.domain)),
        )
        if v
    ]  # fmt: skip


def _ca_rdns(plan: Plan) -> list[tuple[str, str]]:
    """The subject pki.make_ca gives the local CA (what apply creates)."""
    from regwizard import pki

    _key, ca = pki.make_ca(plan.certificate, key_kind="ecdsa-p256", domain=plan.registry.domain)
    info = pki.inspect_cert(pki.cert_to_pem(ca))
    return [(k, info.subject[k]) for k in ("C", "O", "CN") if info.subject.get(k)]


def expected_shell(plan: Plan) -> list[list[str] | str]:
    """Each line: its shell words (SUBJ / CASUBJ: checked apart), or a literal string."""
    reg, cert = plan.registry, plan.certificate
    cfg = reg.config_dir
    certs, auth, regdir = f"{cfg}/certs", f"{cfg}/auth", f"{cfg}/registry"
    gen = f"{certs}/$GEN"
    key, crt = f"{gen}/{reg.domain}.key", f"{gen}/{reg.domain}.crt"
    ca, cakey = f"{cfg}/ca/ca.crt", f"{cfg}/ca/ca.key"
    newkey = (
        ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        if cert.key == "ecdsa-p256"
        else [f"rsa:{cert.key.split('-')[1]}"]
    )
    san = "subjectAltName=" + ",".join(
        [f"DNS:{reg.domain}", f"IP:{reg.ip}"]
        + [("IP:" if is_ip(s) else "DNS:") + s for s in cert.extra_sans]
    )
    out: list[list[str] | str] = []
    if reg.manage_hosts_file and reg.ip:
        out += ["#", ["echo", f"{reg.ip} {reg.domain}", ">>", "/etc/hosts"]]
    out += ["#", "GEN=g-$(date +%Y%m%d-%H%M%S)", ["mkdir", "-p", "-m", "700", certs, gen]]
    if cert.mode == "provided":
        out.append(["install", "-m", "600", cert.key_file, key])
        out.append(["install", "-m", "644", cert.cert_file, crt])
    elif cert.mode == "local-ca":
        out.append(
            ["[", "-f", ca, "]", "||", "{", "mkdir", "-p", "-m", "700", f"{cfg}/ca", "&&",
             "openssl", "req", "-x509", "-newkey", *newkey, "-nodes", "-sha256", "-days", "3650",
             "-keyout", cakey, "-out", ca, "-subj", "CASUBJ", "-addext",
             "basicConstraints=critical,CA:TRUE,pathlen:0", ";", "}"]
        )  # fmt: skip
        out.append(
            ["openssl", "req", "-new", "-newkey", *newkey, "-nodes", "-keyout", key, "-out",
             f"{gen}/req.csr", "-subj", "SUBJ"]
        )  # fmt: skip
        out.append(["printf", "%s\\n", san, ">", f"{gen}/san.ext"])
        out.append(
            ["openssl", "x509", "-req", "-in", f"{gen}/req.csr", "-CA", ca, "-CAkey", cakey,
             "-CAcreateserial", "-sha256", "-days", str(cert.days), "-extfile",
             f"{gen}/san.ext", "-out", crt]
        )  # fmt: skip
    else:
        out.append(
            ["openssl", "req", "-x509", "-newkey", *newkey, "-nodes", "-sha256", "-days",
             str(cert.days), "-keyout", key, "-out", crt, "-subj", "SUBJ", "-addext", san]
        )  # fmt: skip
    out += [["chmod", "600", key], ["ln", "-sfn", "$GEN", f"{certs}/current"]]
    trust_dir = f"/etc/docker/certs.d/{reg.address}"
    src = ca if cert.mode == "local-ca" else f"{certs}/current/{reg.domain}.crt"
    out += ["#", ["mkdir", "-p", trust_dir], ["scp", f"REGISTRY:{src}", f"{trust_dir}/ca.crt"]]
    out += ["#", ["mkdir", "-p", "-m", "700", auth]]
    for u in plan.users:
        out.append(["htpasswd", "-Bb", f"{auth}/htpasswd", u.name, "PASSWORD-VAR"])
    out.append(["mkdir", "-p", reg.storage])
    out.append(["mkdir", "-p", "-m", "700", regdir])
    out.append("HEREDOC")
    out.append(
        [
            "sed",
            "-i",
            f"/^  secret: /s/{SECRET_MARK}/$(openssl rand -hex 32)/",
            f"{regdir}/config.yml",
        ]
    )
    if reg.image_archive:
        out.append(["docker", "load", "<", reg.image_archive])
    else:
        out.append(["docker", "pull", reg.image])
    out.append(expected_run_argv(plan))
    ref = f"{reg.address}/regwizard/probe:verify"
    out += ["#", ["docker", "login", reg.address, "-u", plan.verify_user, "&&", "docker", "push",
                  ref, "&&", "docker", "pull", ref]]  # fmt: skip
    return out


def assert_heredoc(line: str, plan: Plan) -> None:
    """The config file: written by a quoted heredoc (nothing in it expands) that no plan
    value can end early, holding exactly the plan's configuration."""
    path = f"{plan.registry.config_dir}/registry/config.yml"
    head, sep, rest = line.partition("\n")
    assert sep, line
    assert_no_live_expansion(head)
    assert head.endswith("<<'EOF'"), head  # quoted delimiter: no expansion in the body
    assert sh_tokens(head) == ["umask", "077", ";", "cat", ">", path, "<<", "EOF"]
    body_lines = rest.split("\n")
    assert body_lines[-1] == "EOF"
    assert "EOF" not in body_lines[:-1]  # the first "EOF" line is the end
    body = "\n".join(body_lines[:-1]) + "\n"
    assert body == render(ctx_for(plan), SECRET_MARK)
    doc = yaml.safe_load(body)
    assert doc["auth"]["htpasswd"]["realm"] == plan.registry.realm
    # the script's sed replaces the mark on the secret's line only (a realm may hold it)
    secret_lines = [ln for ln in body_lines if ln.startswith("  secret: ")]
    assert doc["http"]["secret"] == SECRET_MARK and len(secret_lines) == 1
    assert SECRET_MARK in secret_lines[0]
    assert doc["http"]["tls"]["certificate"] == f"/certs/current/{plan.registry.domain}.crt"
    assert doc["storage"]["filesystem"]["rootdirectory"] == "/var/lib/registry"


# --------------------------------------------------------------------------- docker run


def test_base_plan_is_valid() -> None:
    assert validate_plan(base_plan()) == []


@SOME
@given(hostile_plans())
def test_docker_run_command_gives_exactly_the_intended_argv(pm) -> None:
    plan, _ = pm
    cmd = docker_run_command(ctx_for(plan))
    assert_no_live_expansion(cmd)
    argv = shlex.split(cmd)
    assert argv == expected_run_argv(plan)
    assert_docker_level_ok(argv, plan)
    assert "SECRET" not in cmd.upper()


def test_docker_run_label_follows_the_settings() -> None:
    """The config-hash label changes with a setting (and with config.yml's content)."""
    a, b, c = base_plan(), base_plan(), base_plan()
    b.registry.port = 5000
    c.registry.realm = "Other"
    labels = {desired(ctx_for(p))["labels"][LABEL_HASH] for p in (a, b, c)}
    assert len(labels) == 3
    assert desired(ctx_for(a)) == desired(ctx_for(base_plan()))


def _sandbox(tmp: Path) -> dict[str, str]:
    """An environment where only shell builtins exist: injected commands cannot run."""
    empty = tmp / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty), "HOME": str(tmp), "LC_ALL": "C.UTF-8"}


SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]


@FEW
@given(pm=hostile_plans(), shell=st.sampled_from(SHELLS))
def test_docker_run_command_executed_by_a_real_shell(tmp_path_factory, pm, shell) -> None:
    """Run the text in sh/bash with `docker` as a function that prints its argv."""
    plan, _ = pm
    tmp = tmp_path_factory.mktemp("sh")
    script = 'docker() { printf "%s\\0" "$@"; }\n' + docker_run_command(ctx_for(plan))
    cp = subprocess.run(
        [shutil.which(shell), "-c", script],
        cwd=tmp,
        env=_sandbox(tmp),
        capture_output=True,
        timeout=20,
    )
    assert cp.returncode == 0 and cp.stderr == b"", cp.stderr
    got = [a.decode() for a in cp.stdout.split(b"\0")[:-1]]
    assert got == expected_run_argv(plan)[1:]  # the function gets argv after "docker"
    assert sorted(p.name for p in tmp.iterdir()) == ["empty-path"]


# --------------------------------------------------------------------------- shell_commands


def _check_lines(plan: Plan, lines: list[str]) -> None:
    want = expected_shell(plan)
    assert len(lines) == len(want), "\n".join(lines)
    for line, expect in zip(lines, want, strict=True):
        if expect == "#":
            # comments hold labels verbatim on one line each, never a command
            assert line.startswith("# ") and "\n" not in line and sh_tokens(line) == []
            continue
        if expect == "HEREDOC":
            assert_heredoc(line, plan)
            continue
        assert_no_live_expansion(line)
        if isinstance(expect, str):
            assert line == expect
            continue
        got = sh_tokens(line)
        for marker, rdns in (("SUBJ", _server_rdns), ("CASUBJ", _ca_rdns)):
            if marker in expect:
                i = expect.index(marker)
                assert subject_rdns(got[i]) == rdns(plan), (marker, got[i])
                expect = [*expect[:i], got[i], *expect[i + 1 :]]
        if "PASSWORD-VAR" in expect:
            var = got[-1]
            # one valid shell variable: "$PASSWORD_A.B" would expand $PASSWORD_A + ".B"
            assert re.fullmatch(r"\$PASSWORD_[A-Z0-9_]+", var), line
            expect = [*expect[:-1], var]
        assert got == expect, line


@SOME
@given(hostile_plans())
def test_shell_commands_split_to_the_intended_argv(pm) -> None:
    plan, _ = pm
    _check_lines(plan, engine.shell_commands(plan))


def test_shell_commands_each_mode() -> None:
    for mode in ("self-signed", "local-ca", "provided"):
        plan = base_plan()
        plan.certificate.mode = mode
        plan.certificate.cert_file, plan.certificate.key_file = "/in/c.pem", "/in/k.pem"
        _check_lines(plan, engine.shell_commands(plan))


def test_password_variables_are_distinct_per_user() -> None:
    """Two users must never share one $PASSWORD_ variable (bob.x and bob_x would)."""
    plan = base_plan()
    plan.users = [User("bob.x", HASH), User("bob-y", HASH), User("alice", HASH)]
    lines = [x for x in engine.shell_commands(plan) if x.startswith("htpasswd ")]
    names = [sh_tokens(x)[-1] for x in lines]
    assert len(set(names)) == len(names), names


def test_shell_commands_verify_user_defaults_to_first_user() -> None:
    plan = base_plan()
    plan.verify.user = ""
    login = next(x for x in engine.shell_commands(plan) if x.startswith("docker login"))
    assert shlex.split(login)[3:5] == ["-u", "alice"]


# --------------------------------------------------------------------------- steps: Host.run


class RecordingHost(hosts.Host):
    """A Host whose commands are only recorded: the snapshot finds nothing, every other
    command exits 100 ("missing")."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn, Secrets())
        self.calls: list[list[str]] = []

    def _login_is_root(self) -> bool:
        return True

    def _login_user(self) -> str:
        return "root"

    def _exec(self, argv, data, timeout, on_line, program) -> Result:
        self.calls.append(list(argv))
        if argv[:3] == ["sh", "-c", _SNAPSHOT]:
            return Result(0, b"", b"")
        return Result(100, b"", b"")


CHECKED_STEPS = [steps.HostsFile(), steps.Certificate(), steps.Trust(), steps.Htpasswd()]
CHECKED_STEPS += [steps.Storage(), steps.Config()]


def _run_checks(plan: Plan) -> tuple[list[list[str]], list[str]]:
    host = RecordingHost(plan.host)
    entry = steps.HostEntry("k", "node1", plan.host, host=host, is_registry=True, is_client=True)
    ctx = ctx_for(plan, [entry])
    ctx.dry_run = True  # trust: the certificate does not exist yet
    commands: list[str] = []
    for step in CHECKED_STEPS:
        if plan.certificate.mode == "provided" and step.name == "certificate":
            continue  # reads the provided files on this machine: checked in test_fixtures
        if not step.targets(ctx):
            continue  # /etc/hosts when it is not managed
        f = step.check(ctx, entry)
        assert isinstance(f, steps.Change), step.name
        commands += f.commands
    return host.calls, commands


_BASE_SCRIPTS: set[str] | None = None


def _base_scripts() -> set[str]:
    global _BASE_SCRIPTS
    if _BASE_SCRIPTS is None:
        calls, _ = _run_checks(base_plan())
        _BASE_SCRIPTS = {c[2] for c in calls if c[:2] == ["sh", "-c"]}
    return _BASE_SCRIPTS


@SOME
@given(hostile_plans())
def test_steps_pass_plan_values_as_arguments_never_as_code(pm) -> None:
    plan, _ = pm
    assume(plan.certificate.mode != "provided")
    calls, commands = _run_checks(plan)
    assert calls
    for argv in calls:
        # the argv goes to the remote shell as shlex.join(argv): it must split back
        assert shlex.split(shlex.join(argv)) == argv
        if argv[:2] == ["sh", "-c"]:
            # scripts are constants; plan values ride along as "$1", "$2"...
            assert argv[2] in _base_scripts(), argv[2]
            assert argv[3] == "sh"
        else:
            assert argv[0] in ("getent", "test"), argv
    cfg, dom = plan.registry.config_dir, plan.registry.domain
    paths = {
        f"{cfg}/certs/current/{dom}.crt",
        f"{cfg}/certs/current/{dom}.key",
        f"{cfg}/auth/htpasswd",
        f"{cfg}/registry/config.yml",
        plan.registry.storage,
    }
    seen = {a for argv in calls for a in argv}
    assert paths <= seen  # each path is one whole argument
    # the commands the steps show (Review, --dry-run, the UI's step table) are lines of
    # the dry-run text, each of which splits to exactly its intended argv
    lines = engine.shell_commands(plan)
    _check_lines(plan, lines)
    assert set(commands) <= set(lines), set(commands) - set(lines)


def test_trust_command_names_the_source_and_target_as_two_arguments() -> None:
    plan = base_plan()
    plan.registry.config_dir = "/etc/rw $(touch PWNED)"
    _, commands = _run_checks(plan)
    scp = next(c for c in commands if c.startswith("scp"))
    assert sh_tokens(scp) == [
        "scp",
        "REGISTRY:/etc/rw $(touch PWNED)/certs/current/reg.example.test.crt",
        f"/etc/docker/certs.d/{plan.registry.address}/ca.crt",
    ]


# --------------------------------------------------------------------------- SSHHost


class _Transport:
    def __init__(self, chan: _Chan) -> None:
        self.chan = chan

    def _send_user_message(self, m) -> None:
        assert self.chan.lock.locked()  # hosts._send_eof: sent under the channel's lock
        self.chan.eof.set()


class _Chan:
    def __init__(self) -> None:
        self.command: str | None = None
        self.stdin = bytearray()
        self.eof = threading.Event()
        # what hosts._send_eof uses of a paramiko Channel
        self.lock = threading.Lock()
        self.closed = self.eof_sent = False
        self.transport = _Transport(self)

    def _send_eof(self) -> object:
        self.eof_sent = True
        return object()

    def settimeout(self, t) -> None:
        pass

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, data: bytes) -> None:
        self.stdin += data

    def shutdown_write(self) -> None:
        self.eof.set()

    def close(self) -> None:
        pass


class FakeSSH(SSHHost):
    """SSHHost with the network cut out: records the exact exec_command strings."""

    def _open(self):
        return None

    def _open_channel(self, timeout: float) -> _Chan:
        chan = _Chan()
        self.__dict__.setdefault("chans", []).append(chan)
        return chan

    def _collect(self, chan, timeout, on_line, program, pid, *, interruptible=True) -> Result:
        if hosts._PID_SCRIPT_NO_STDIN not in chan.command:  # fed: stdin ends with an EOF
            assert chan.eof.wait(5)
        return Result(0, b"", b"")

    def _close_transport(self) -> None:
        pass


hostile_argv = st.lists(nasty.filter(lambda s: s != ""), min_size=1, max_size=5)


@SOME
@given(args=hostile_argv, sudo=st.booleans())
def test_ssh_command_string_splits_to_the_argv(args, sudo) -> None:
    conn = Connection(address="10.0.0.9", user="alice" if sudo else "root", sudo=sudo)
    pw = "Sudo-Pw-" + str(len(args))
    host = FakeSSH(conn, Secrets(sudo_passwords={"10.0.0.9": pw}))
    if sudo:
        host._mode = "sudo"
    host.run(["printf", "%s", *args], input=b"stdin-data")
    (chan,) = host.chans
    wrapped = ["printf", "%s", *args]
    if sudo:
        wrapped = ["sudo", "-k", "-S", "-p", "", "--", *wrapped]
    assert shlex.split(chan.command) == ["sh", "-c", hosts._PID_SCRIPT, "sh", *wrapped]
    # the sudo password goes on stdin, first; never on the command line
    assert pw not in chan.command
    assert bytes(chan.stdin) == ((pw + "\n").encode() if sudo else b"") + b"stdin-data"


@FEW
@given(args=st.lists(nasty.filter(lambda s: s and "\0" not in s), min_size=1, max_size=4),
       shell=st.sampled_from(SHELLS))  # fmt: skip
def test_ssh_command_string_executed_by_a_real_login_shell(tmp_path_factory, args, shell) -> None:
    """What sshd does with the string: `$SHELL -c STRING`. printf must get exactly args."""
    host = FakeSSH(Connection(address="10.0.0.9"), Secrets())
    host.run(["printf", "%s\\0", *args])
    (chan,) = host.chans
    tmp = tmp_path_factory.mktemp("ssh")
    env = _sandbox(tmp)
    os.symlink(shutil.which("printf"), Path(env["PATH"]) / "printf")
    os.symlink(shutil.which(shell), Path(env["PATH"]) / "sh")
    cp = subprocess.run(
        [shutil.which(shell), "-c", chan.command], cwd=tmp, env=env, capture_output=True,
        timeout=20,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert re.fullmatch(rb"regwizard-pid \d+\n", cp.stderr), cp.stderr
    assert cp.stdout.split(b"\0")[:-1] == [a.encode() for a in args]
    assert [p.name for p in tmp.iterdir()] == ["empty-path"]


def _file_helper_commands(path: str) -> list[list[str]]:
    from unittest import mock

    host = FakeSSH(Connection(address="10.0.0.9"), Secrets())
    host.read_file(path)
    host.write_file(path, b"data", 0o600)
    host.write_in_place(path, b"data")
    host.makedirs(path, 0o700)
    host.exists(path)
    # one clock for both calls: the backup's name carries the second it was made in
    with mock.patch.object(hosts.time, "strftime", return_value="20260101-000000"):
        host.backup(path)
    with pytest.raises(RegwizardError):  # the fake df prints nothing to parse
        host.free_bytes(path)
    out = []
    for chan in host.chans:
        argv = shlex.split(chan.command)
        assert argv[:2] == ["sh", "-c"] and argv[3] == "sh"
        assert argv[2] in (hosts._PID_SCRIPT, hosts._PID_SCRIPT_NO_STDIN)
        out.append(argv[4:])
    return out


@FEW
@given(path=st.one_of(path_value, nasty))
def test_ssh_file_helpers_pass_the_path_as_one_argument(path) -> None:
    assume(path and "\0" not in path)
    base = _file_helper_commands("/base/path")
    got = _file_helper_commands(path)
    assert len(got) == len(base)
    for argv, ref in zip(got, base, strict=True):
        # the same command with the path swapped, token for token: the path is data
        assert len(argv) == len(ref)
        for a, r in zip(argv, ref, strict=True):
            if "/base/path" in r:
                assert a == r.replace("/base/path", path)
            elif not r.isalnum() or not a.isalnum():  # skip random temp/backup suffixes
                assert a == r or r.startswith("/base/path"), (a, r)


# --------------------------------------------------------------------------- LocalHost


@SOME
@given(arg=nasty.filter(lambda s: "\0" not in s))
def test_local_run_keeps_a_hostile_argument_literal(tmp_path_factory, arg) -> None:
    tmp = tmp_path_factory.mktemp("local")
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        host = LocalHost(Connection(), Secrets())
        res = host.run(["printf", "%s", arg])
        assert res.stdout == arg.encode()
        res = host.run(["sh", "-c", 'printf %s "$1"', "sh", arg])
        assert res.stdout == arg.encode()
    finally:
        os.chdir(cwd)
    assert list(tmp.iterdir()) == []  # nothing ran that could create a file


def test_local_run_refuses_a_nul_byte() -> None:
    host = LocalHost(Connection(), Secrets())
    with pytest.raises(ValueError, match="null byte"):  # never a truncated argument
        host.run(["printf", "%s", "a\0b"])


file_names = nasty.filter(
    lambda s: s not in ("", ".", "..") and "/" not in s and "\0" not in s
    and len(s.encode()) <= 200
)  # fmt: skip


@FEW
@given(name=file_names)
def test_local_write_file_creates_exactly_that_file(tmp_path_factory, name) -> None:
    tmp = tmp_path_factory.mktemp("files")
    host = LocalHost(Connection(), Secrets())
    target = str(tmp / name)
    host.write_file(target, b"payload\n", 0o600)
    assert [p.name for p in tmp.iterdir()] == [name]  # no temp file left, nothing else
    assert host.read_file(target) == b"payload\n"
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert host.exists(target)
    backup = host.backup(target)
    assert backup and os.path.dirname(backup) == str(tmp)
    assert sorted(p.name for p in tmp.iterdir()) == sorted([name, os.path.basename(backup)])
