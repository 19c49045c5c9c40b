"""A registry that mirrors an upstream (issue 13): plan keys, the proxy: section, the
upstream login (never in the plan, the container's label or its environment), verify by
pull, the report, the CLI's input errors and the lab's plans. All offline."""

from __future__ import annotations

import json
import threading
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regwizard import doctor
from regwizard.cli.apply import result_json
from regwizard.events import Proof, RunResult, Verification
from regwizard.plan import (
    Plan,
    Secrets,
    check_mirror_image,
    check_proxy_remote_url,
    parse_plan,
    plan_from_dict,
    redacted_url,
    validate_plan,
)
from regwizard.report import markdown_report, next_steps, verification_lines
from regwizard.steps.base import Ctx, Unchanged, host_entries
from regwizard.steps.config import Config, ConfigChange, content_hash, render
from regwizard.steps.container import desired
from tests.fixtures import world

from .sandbox import Sandbox, loopback_plan
from .test_cli_input import refused

URL = "https://upstream.example.test:5443"
MIRROR = {"registry": {"proxy_remote_url": URL}, "verify": {"mirror_image": "lab/only:v1"}}


def _plan(over: dict | None = None) -> Plan:
    data = world.merge(world.BASE_PLAN, over if over is not None else MIRROR)
    return plan_from_dict(world.substitute(data, world.BCRYPTS))


def _ctx(plan: Plan, secrets: Secrets | None = None) -> Ctx:
    return Ctx(
        plan, secrets or Secrets(), lambda e: None, threading.Event(), hosts=host_entries(plan)
    )


# --------------------------------------------------------------------------- the plan


def test_a_mirror_plan_is_valid_and_round_trips() -> None:
    plan = _plan()
    assert validate_plan(plan) == []
    assert plan.registry.is_mirror


def test_a_mirror_needs_a_mirror_image() -> None:
    errors = validate_plan(_plan({"registry": {"proxy_remote_url": URL}}))
    assert [e.field for e in errors] == ["verify.mirror_image"]
    assert "refuses pushes" in errors[0].message and "library/busybox" in errors[0].fix


def test_a_ca_file_without_a_mirror_is_an_error() -> None:
    errors = validate_plan(_plan({"registry": {"proxy_ca_file": "/tmp/ca.pem"}}))
    assert [e.field for e in errors] == ["registry.proxy_ca_file"]


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    plan = _plan({"registry": {"proxy_remote_url": "https://hub:TOPSECRET@hub.example.test"},
                  "verify": {"mirror_image": "a/b:1"}})  # fmt: skip
    errors = validate_plan(plan)
    assert [e.field for e in errors] == ["registry.proxy_remote_url"]
    text = f"{errors[0].message} {errors[0].fix}"
    assert "TOPSECRET" not in text and "hub:" not in text
    assert "user name or password" in text and "REGWIZARD_UPSTREAM_USER" in text


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_host = (
    st.lists(_label, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda h: not h.rsplit(".", 1)[-1].isdigit())
)
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))


@settings(max_examples=200, deadline=None)
@given(host=_host, port=_port, slash=st.sampled_from(["", "/"]))
def test_https_host_port_urls_are_accepted(host: str, port: str, slash: str) -> None:
    assert check_proxy_remote_url(f"https://{host}{port}{slash}") is None


@settings(max_examples=200, deadline=None)
@given(
    host=_host,
    user=st.text(st.characters(codec="ascii", exclude_characters="@/:?#"), min_size=1, max_size=12),
    pw=st.text(st.characters(codec="ascii", exclude_characters="@/?#"), min_size=1, max_size=20),
)
def test_userinfo_is_always_refused_and_never_shown(host: str, user: str, pw: str) -> None:
    url = f"https://{user}:{pw}@{host}"
    msg = check_proxy_remote_url(url)
    assert msg is not None
    assert f"{user}:{pw}" not in msg
    assert f"{user}:{pw}" not in redacted_url(url)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_the_url_check_never_crashes_and_accepts_only_https(text: str) -> None:
    msg = check_proxy_remote_url(text)
    if msg is None and text:
        assert text.lower().startswith("https://")
        assert "@" not in text and "?" not in text and "#" not in text
        assert text.split("://", 1)[1].rstrip("/").count("/") == 0


@pytest.mark.parametrize(
    "url",
    ["http://hub.example.test", "ftp://x.y", "hub.example.test", "https://x.y/v2/",
     "https://x.y:0", "https://x.y:70000", "https://x.y:", "https://[::1", "https://fd00::1",
     "https://x..y", "https://x.y?a=b", "https:// x.y"],
)  # fmt: skip
def test_bad_urls_are_refused(url: str) -> None:
    assert check_proxy_remote_url(url)


@pytest.mark.parametrize("image", ["library/busybox:latest", "lab/only:v1", "alpine:3.20"])
def test_mirror_images(image: str) -> None:
    assert check_mirror_image(image) is None


@pytest.mark.parametrize(
    "image", ["busybox", "docker.io/library/busybox:1", "localhost/a:1", "a@sha256:" + "0" * 64,
              "Upper:1", "a b:1", "a:\n"],
)  # fmt: skip
def test_bad_mirror_images(image: str) -> None:
    assert check_mirror_image(image)


def test_plan_new_example_names_the_mirror_keys() -> None:
    from regwizard.plan import EXAMPLE_PLAN

    for key in ("proxy_remote_url", "proxy_ca_file", "mirror_image", "REGWIZARD_UPSTREAM_USER"):
        assert key in EXAMPLE_PLAN
    assert parse_plan(EXAMPLE_PLAN).registry.proxy_remote_url == ""


# --------------------------------------------------------------------------- config.yml


def test_render_has_a_proxy_section_only_for_a_mirror() -> None:
    assert "proxy:" not in render(_ctx(_plan({})), "s")
    text = render(_ctx(_plan()), "s", ("hub", 'p"w'))
    assert text.endswith(f'proxy:\n  remoteurl: "{URL}"\n  username: "hub"\n  password: "p\\"w"\n')


def test_the_content_hash_never_holds_the_upstream_password() -> None:
    plan = _plan()
    one = _ctx(plan, Secrets(upstream_user="hub", upstream_password="pw-one"))
    two = _ctx(plan, Secrets(upstream_user="other", upstream_password="pw-two"))
    assert content_hash(one) == content_hash(two)
    spec = json.dumps(desired(one))
    assert "pw-one" not in spec and "hub" not in spec
    assert all("pw-one" not in v for v in desired(one)["env"].values())


def _check(plan: Plan, secrets: Secrets, have: str | None):  # noqa: ANN202
    """Config.check against a registry host holding ``have`` as config.yml."""
    ctx = _ctx(plan, secrets)
    e = ctx.registry
    files = {ctx.layout.config_path: have.encode()} if have is not None else {}
    e.host = types.SimpleNamespace()
    import regwizard.steps.config as config_mod

    def snapshot(host, files=()):  # noqa: ANN001, ANN202
        return types.SimpleNamespace(files={f: stored.get(f) for f in files})

    stored = files
    real = config_mod.snapshot
    config_mod.snapshot = snapshot
    try:
        return Config().check(ctx, e)
    finally:
        config_mod.snapshot = real


def test_a_rerun_without_credentials_keeps_the_stored_login() -> None:
    plan = _plan()
    have = render(_ctx(plan), "secret-1", ("hub", "stored-pw"))
    assert isinstance(_check(plan, Secrets(), have), Unchanged)


def test_new_credentials_rewrite_and_restart() -> None:
    plan = _plan()
    have = render(_ctx(plan), "secret-1", ("hub", "stored-pw"))
    got = _check(plan, Secrets(upstream_user="hub", upstream_password="new-pw"), have)
    assert isinstance(got, ConfigChange) and got.restart
    assert 'password: "new-pw"' in got.text and 'secret: "secret-1"' in got.text
    assert "new-pw" not in got.detail and "new-pw" not in "".join(got.commands)


def test_the_same_credentials_change_nothing() -> None:
    plan = _plan()
    have = render(_ctx(plan), "secret-1", ("hub", "pw"))
    assert isinstance(
        _check(plan, Secrets(upstream_user="hub", upstream_password="pw"), have), Unchanged
    )


def test_none_drops_a_stored_login() -> None:
    plan = _plan()
    have = render(_ctx(plan), "secret-1", ("hub", "pw"))
    got = _check(plan, Secrets(upstream_anonymous=True), have)
    assert isinstance(got, ConfigChange) and got.restart and "username" not in got.text


def test_a_login_stored_for_another_upstream_is_not_kept() -> None:
    old = _plan({"registry": {"proxy_remote_url": "https://old.example.test"},
                 "verify": {"mirror_image": "a/b:1"}})  # fmt: skip
    have = render(_ctx(old), "secret-1", ("hub", "pw"))
    got = _check(_plan(), Secrets(), have)
    assert isinstance(got, ConfigChange) and "username" not in got.text
    assert not got.restart or content_hash(_ctx(old)) != content_hash(_ctx(_plan()))


def test_the_upstream_password_is_a_secret_value() -> None:
    assert "pw" in Secrets(upstream_password="pw").all_values()


# --------------------------------------------------------------------------- doctor


def test_doctor_notes_that_a_mirror_refuses_pushes(tmp_path: Path) -> None:
    case = world.load(world.HERE / "doctor" / "mirror.json", tmp_path)
    report = doctor.diagnose(case.plan, case.secrets, connect=case.connect(), net=case.net)
    notes = [f for f in report.findings if f.check == "mirror"]
    assert [(f.severity, f.message) for f in notes] == [
        ("ok", f"mirror of {URL}: pushes are refused by design (a pull-through cache)")
    ]
    assert report.exit_code == 0


def test_doctor_never_shows_an_upstream_password(tmp_path: Path) -> None:
    case = world.load(world.HERE / "doctor" / "proxy.json", tmp_path)
    report = doctor.diagnose(case.plan, case.secrets, connect=case.connect(), net=case.net)
    assert "never-shown" not in json.dumps(report.to_json())


# --------------------------------------------------------------------------- verify


class _Api:
    """docker-py's low-level API as a mirror answers it: 401 without credentials."""

    def __init__(self, digest: str) -> None:
        self._auth_configs = {"auths": {"saved": {}}}
        self.digest = digest
        self.calls: list[tuple] = []

    def pull(self, repo, tag=None, stream=True, decode=True, auth_config=None):  # noqa: ANN001, ANN201
        # as docker-py: None sends the saved logins (from memory, else from
        # ~/.docker/config.json, even when the in-memory config was emptied)
        sends_login = True if auth_config is None else bool(auth_config)
        self.calls.append(("pull", repo, tag, sends_login))
        if not sends_login:
            return iter([{"error": "no basic auth credentials",
                          "errorDetail": {"message": "no basic auth credentials"}}])  # fmt: skip
        return iter([{"status": "Digest: " + self.digest}])

    def login(self, user, password, registry=None, reauth=False):  # noqa: ANN001, ANN201
        self.calls.append(("login", user, registry, reauth))
        return {}

    def push(self, *a, **kw):  # noqa: ANN002, ANN003, ANN201
        raise AssertionError("a mirror is never pushed to")

    def build(self, *a, **kw):  # noqa: ANN002, ANN003, ANN201
        raise AssertionError("a mirror needs no probe image")


class _Client:
    def __init__(self, digest: str) -> None:
        self.api = _Api(digest)
        outer = self

        class Images:
            def get(self, ref):  # noqa: ANN001, ANN202
                repo = ref.rpartition(":")[0]
                return types.SimpleNamespace(attrs={"RepoDigests": [f"{repo}@{outer.api.digest}"]})

            def remove(self, ref, force=False):  # noqa: ANN001, ANN202
                outer.api.calls.append(("remove", ref))

        self.images = Images()


def test_verify_of_a_mirror_pulls_and_never_pushes() -> None:
    from regwizard.steps.verify import Verify, VerifyChange

    digest = "sha256:" + "ab" * 32
    plan = _plan()
    plan.clients = plan.clients[:1]
    ctx = _ctx(plan, Secrets(verify_password="alice-password-1"))
    client = _Client(digest)
    for e in ctx.hosts:
        e.host = types.SimpleNamespace(docker=lambda timeout=60: client, label=e.label)

    class Net:
        def served(self, *a):  # noqa: ANN002, ANN202
            return types.SimpleNamespace(pem=b"")

        def request(self, *a, **kw):  # noqa: ANN002, ANN003, ANN202
            return 200, {}, json.dumps({"repositories": ["lab/only"]}).encode()

    ctx.net = Net()
    import regwizard.steps.verify as verify_mod

    real = verify_mod.anchor
    verify_mod.anchor = lambda c: b"anchor"
    try:
        e = ctx.pusher
        detail = Verify().apply(ctx, e, VerifyChange("always"))
    finally:
        verify_mod.anchor = real
    v = ctx.verification
    assert v is not None and v.ok and v.mirror_of == URL
    assert v.anonymous_refused and v.login_ok and v.pull_digest == digest
    assert v.push_digest == "" and v.image_ref == "reg.example.test/lab/only:v1"
    assert "pushes refused by design" in detail
    kinds = [c[0] for c in client.api.calls]
    assert kinds.index("remove") < kinds.index("pull") < kinds.index("login")
    anonymous = client.api.calls[kinds.index("pull")]
    assert anonymous[3] is False, "the anonymous pull carried saved credentials"
    assert client.api._auth_configs == {"auths": {"saved": {}}}  # never touched


def test_results_and_json_say_pushes_are_refused_by_design() -> None:
    v = Verification(user="alice", login_ok=True, anonymous_refused=True,
                     pull_digest="sha256:" + "cd" * 32, trust={"this machine": True},
                     image_ref="reg.example.test/lab/only:v1", mirror_of=URL,
                     proofs=[Proof("k8s1", "containerd", True, "401, not x509")])  # fmt: skip
    assert v.ok
    lines = verification_lines(v)
    assert lines[0] == (True, f"mirror of {URL}: pushes are refused by design")
    assert all(ok for ok, _ in lines)
    assert not any("push " in text for _, text in lines)
    data = result_json(RunResult(ok=True, verification=v))
    assert data["pushes"] == f"mirror of {URL}: pushes are refused by design"
    assert data["mirror_of"] == URL and data["pull_digest"] == v.pull_digest
    report = markdown_report(_plan(), RunResult(ok=True, verification=v))
    assert "pushes are refused by design" in report and "Mirror of" in report
    assert "docker push" not in "\n".join(next_steps(_plan()))


def test_a_mirror_verification_without_a_pull_is_not_ok() -> None:
    assert not Verification(login_ok=True, anonymous_refused=True, mirror_of=URL).ok


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def box(tmp_path: Path):  # noqa: ANN201
    with Sandbox(tmp_path) as b:
        yield b


def _mirror_plan(box: Sandbox, mirror: bool = True) -> str:
    from regwizard.plan import dump_plan

    plan = loopback_plan()
    if mirror:
        plan.registry.proxy_remote_url = URL
        plan.verify.mirror_image = "lab/only:v1"
    (box.root / "plan.toml").write_text(dump_plan(plan))
    return "plan.toml"


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, ("does not exist",)), (b"", ("is empty",)), (b"just-a-user\n", ("user:password",)),
     (b":pw\n", ("user name", "empty")), (b"hub:\n", ("password", "empty")),
     (b"\xff\xfe\n", ("not UTF-8",))],
)  # fmt: skip
def test_a_bad_upstream_credentials_file_is_one_message(box, content, words) -> None:  # noqa: ANN001
    if content is not None:
        (box.root / "up").write_bytes(content)
    o = box.run(["apply", _mirror_plan(box), "--upstream-credentials-file", "up"])
    refused(o, *words)


def test_upstream_credentials_for_a_plan_that_is_no_mirror(box) -> None:  # noqa: ANN001
    (box.root / "up").write_bytes(b"hub:pw\n")
    o = box.run(["apply", _mirror_plan(box, mirror=False), "--upstream-credentials-file", "up"])
    refused(o, "not a mirror", "proxy_remote_url")


def test_half_an_upstream_login_in_the_environment(box, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("REGWIZARD_UPSTREAM_USER", "hub")
    monkeypatch.delenv("REGWIZARD_UPSTREAM_PASSWORD", raising=False)
    o = box.run(["apply", _mirror_plan(box)])
    refused(o, "REGWIZARD_UPSTREAM_PASSWORD is not set")


def test_the_upstream_login_reaches_secrets_only() -> None:
    from regwizard.cli.common import read_upstream_credentials

    plan, secrets = _plan(), Secrets()
    import os

    os.environ["REGWIZARD_UPSTREAM_USER"], os.environ["REGWIZARD_UPSTREAM_PASSWORD"] = "hub", "p:w"
    try:
        read_upstream_credentials(plan, secrets, None, ask=False)
    finally:
        del os.environ["REGWIZARD_UPSTREAM_USER"], os.environ["REGWIZARD_UPSTREAM_PASSWORD"]
    assert (secrets.upstream_user, secrets.upstream_password) == ("hub", "p:w")
    assert plan.registry.proxy_remote_url == URL  # the plan itself is untouched


def test_a_credentials_file_with_none_is_anonymous(tmp_path: Path) -> None:
    from regwizard.cli.common import read_upstream_credentials

    (tmp_path / "up").write_text("none\n")
    secrets = Secrets()
    read_upstream_credentials(_plan(), secrets, str(tmp_path / "up"))
    assert secrets.upstream_anonymous and not secrets.upstream_user
    (tmp_path / "up").write_text("hub:pa:ss\nignored\n")
    read_upstream_credentials(_plan(), secrets, str(tmp_path / "up"))
    assert (secrets.upstream_user, secrets.upstream_password) == ("hub", "pa:ss")
    assert not secrets.upstream_anonymous


# --------------------------------------------------------------------------- the lab's plans


def _lab_state():  # noqa: ANN202
    from regwizard import lab

    nodes = {
        n: lab.Node(n, ip, f"rwlab-{n}", f"rwl-{n}", f"/x/{n}", host_key="SHA256:" + "A" * 43)
        for n, ip in lab.NODE_IPS.items()
    }
    return lab.LabState(nodes=nodes, key_file="/x/id_ed25519", verify_password="demo-pw")


def test_the_lab_upstream_plan_is_valid() -> None:
    from regwizard import lab

    plan = parse_plan(lab.lab_upstream_plan_text(_lab_state()))
    reg = plan.registry
    assert (reg.container, reg.domain, reg.port) == ("upstream", "upstream.lab.test", 5443)
    assert (reg.storage, reg.config_dir, reg.ip) == (
        "/opt/upstream",
        "/etc/regwizard-upstream",
        "10.213.47.2",
    )
    assert plan.certificate.mode == "local-ca" and not reg.proxy_remote_url
    assert [c.address for c in plan.clients] == ["local"]
    from regwizard.plan import san_list

    assert "IP:10.213.47.2" in san_list(plan)  # the mirror reaches it by IP


def test_the_lab_mirror_plan_is_valid() -> None:
    from regwizard import lab

    state = _lab_state()
    plan = parse_plan(lab.lab_plan_text(state, mirror=True))
    assert plan.registry.proxy_remote_url == "https://10.213.47.2:5443"
    assert plan.registry.proxy_ca_file == "/etc/docker/certs.d/upstream.lab.test:5443/ca.crt"
    assert plan.verify.mirror_image == lab.MIRROR_IMAGE
    assert plan.registry.container != lab.UPSTREAM_CONTAINER
    assert plan.registry.storage != lab.UPSTREAM_STORAGE
    plain = parse_plan(lab.lab_plan_text(state))
    assert plain.registry.proxy_remote_url == "" and plain.verify.mirror_image == ""


def test_lab_upstream_writes_both_plans(box) -> None:  # noqa: ANN001
    o = box.run(["lab", "upstream", "-o", "up.toml", "--mirror-plan", "mirror.toml"])
    assert o.rc == 0, o.err
    assert o.calls == ["lab.upstream_plans"]
    assert (box.root / "up.toml").exists() and (box.root / "mirror.toml").exists()
