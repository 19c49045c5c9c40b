"""regwizard.sshconfig: ~/.ssh/config resolution (offline; HOME is a temp dir)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard import sshconfig
from regwizard.errors import RegwizardError
from regwizard.plan import Connection


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    return h


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolution never looks a name up."""

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("sshconfig looked a name up")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    monkeypatch.setattr(socket, "getfqdn", refuse)
    monkeypatch.setattr(socket, "gethostbyaddr", refuse)


def cfg(home: Path, text: str, name: str = "config") -> Path:
    path = home / ".ssh" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_missing_file_is_no_config(home: Path) -> None:
    r = sshconfig.resolve(Connection(address="box"))
    assert (r.hostname, r.user, r.port, r.identity_files) == ("box", "root", 22, ())
    assert not r.from_config and r.describe() == "box" and r.path == ""


def test_local_is_never_looked_up(home: Path) -> None:
    cfg(home, "Host *\n  HostName elsewhere\n")
    r = sshconfig.resolve(Connection())
    assert r.hostname == "local" and not r.from_config


def test_alias_takes_everything_from_the_config(home: Path) -> None:
    cfg(
        home,
        "Host box\n  HostName 10.9.8.7\n  User deploy\n  Port 2222\n"
        "  IdentityFile ~/.ssh/box_key\n  IdentityFile ~/.ssh/other\n",
    )
    r = sshconfig.resolve(Connection(address="box"))
    assert (r.hostname, r.user, r.port) == ("10.9.8.7", "deploy", 2222)
    assert r.identity_files == (f"{home}/.ssh/box_key", f"{home}/.ssh/other")
    assert r.sources == {
        "hostname": "config",
        "user": "config",
        "port": "config",
        "identityfile": "config",
    }
    assert r.describe() == "box (→ deploy@10.9.8.7:2222 via ~/.ssh/config)"
    assert r.known_hosts_name == "[10.9.8.7]:2222"


def test_explicit_plan_values_win(home: Path) -> None:
    cfg(home, "Host box\n  HostName h\n  User deploy\n  Port 2222\n  IdentityFile ~/k\n")
    r = sshconfig.resolve(Connection(address="box", user="admin", port=23, key_file="~/mine"))
    assert (r.hostname, r.user, r.port, r.identity_files) == ("h", "admin", 23, ())
    assert r.sources["user"] == r.sources["port"] == "plan"


def test_defaults_stay_without_config_values(home: Path) -> None:
    cfg(home, "Host box\n  HostName h\n")
    r = sshconfig.resolve(Connection(address="box"))
    assert (r.user, r.port) == ("root", 22)
    assert r.sources["user"] == r.sources["port"] == "default"


def test_identity_files_only_for_key_auth(home: Path) -> None:
    cfg(home, "Host box\n  IdentityFile ~/k\n")
    assert sshconfig.resolve(Connection(address="box", auth="agent")).identity_files == ()
    assert sshconfig.resolve(Connection(address="box")).identity_files == (f"{home}/k",)


def test_first_value_wins_and_wildcards(home: Path) -> None:
    cfg(
        home,
        "Host *.lan !bad.lan\n  User lanuser\n  Port 2200\n"
        "Host web?.lan\n  User late\n  HostName %h.example.test\n"
        "Host *\n  User everyone\n",
    )
    r = sshconfig.resolve(Connection(address="web1.lan"))
    assert (r.user, r.port, r.hostname) == ("lanuser", 2200, "web1.lan.example.test")
    bad = sshconfig.resolve(Connection(address="bad.lan"))
    assert (bad.user, bad.port) == ("everyone", 22)


def test_tokens(home: Path) -> None:
    cfg(
        home,
        "Host box\n  HostName real.test\n  User u1\n  Port 2022\n"
        "  IdentityFile %d/.ssh/id_%h_%r\n  ProxyCommand nc %h %p # %r\n",
    )
    r = sshconfig.resolve(Connection(address="box"))
    assert r.identity_files == (f"{home}/.ssh/id_real.test_u1",)
    assert r.proxy_command == "nc real.test 2022 # u1"
    assert r.describe() == "box (→ u1@real.test:2022 through ProxyCommand via ~/.ssh/config)"


def test_percent_l_needs_no_dns(home: Path) -> None:
    cfg(home, "Host box\n  IdentityFile ~/.ssh/%l_%%_key\n")
    r = sshconfig.resolve(Connection(address="box"))
    short = socket.gethostname().split(".")[0]
    assert r.identity_files == (f"{home}/.ssh/{short}_%_key",)


def test_include_relative_absolute_and_glob(home: Path, tmp_path: Path) -> None:
    cfg(home, "Host a\n  HostName from-a\n", "conf.d/10-a")
    cfg(home, "Host b\n  HostName from-b\n", "conf.d/20-b")
    other = tmp_path / "abs.conf"
    other.write_text("Host c\n  Port 2201\n")
    cfg(home, f"Include conf.d/*\nInclude {other} missing-file\nHost *\n  User me\n")
    assert sshconfig.resolve(Connection(address="a")).hostname == "from-a"
    assert sshconfig.resolve(Connection(address="b")).hostname == "from-b"
    c = sshconfig.resolve(Connection(address="c"))
    assert (c.port, c.user) == (2201, "me")


def test_include_loop_is_an_error(home: Path) -> None:
    cfg(home, "Include config\n")
    with pytest.raises(RegwizardError) as info:
        sshconfig.resolve(Connection(address="x"))
    assert "Include" in info.value.cause and info.value.fix


def test_match_is_ignored(home: Path, tmp_path: Path) -> None:
    flag = tmp_path / "ran"
    cfg(
        home,
        f'Match exec "touch {flag}"\n  User evil\n'
        "Match all\n  Port 1\nHost box\n  HostName h\n  User good\n",
    )
    r = sshconfig.resolve(Connection(address="box"))
    assert (r.user, r.port, r.hostname) == ("good", 22, "h")
    assert not flag.exists()
    assert any("Match" in n for n in r.notes)


def test_canonicalize_is_ignored(home: Path) -> None:
    cfg(home, "CanonicalizeHostname yes\nCanonicalDomains example.test\nAddressFamily inet\n")
    assert sshconfig.resolve(Connection(address="box")).hostname == "box"


def test_proxy_jump(home: Path) -> None:
    cfg(home, "Host box\n  ProxyJump admin@bastion:2200,[fd00::1]:22\n  ProxyCommand x\n")
    r = sshconfig.resolve(Connection(address="box"))
    assert r.proxy_jump == "admin@bastion:2200,[fd00::1]:22" and r.proxy_command == ""
    assert sshconfig.parse_jumps(r.proxy_jump) == [
        sshconfig.Jump("bastion", "admin", 2200),
        sshconfig.Jump("fd00::1", "", 22),
    ]
    assert "through admin@bastion:2200" in r.describe()


def test_proxy_none(home: Path) -> None:
    cfg(home, "Host box\n  ProxyJump none\n  ProxyCommand none\n")
    r = sshconfig.resolve(Connection(address="box"))
    assert r.proxy_jump == r.proxy_command == ""


def test_host_key_alias(home: Path) -> None:
    cfg(home, "Host box\n  HostName 10.0.0.9\n  Port 2200\n  HostKeyAlias Box-Key\n")
    assert sshconfig.resolve(Connection(address="box")).known_hosts_name == "box-key"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Host box\n  Port seventy\n", "Port"),
        ("Host box\n  Port 70000\n", "Port"),
        ("Host box\n  ProxyJump a b\n", "ProxyJump"),
        ("Host box\n  ProxyJump @h\n", "ProxyJump"),
        ("Host\n", "cannot parse"),
        ('Host "unclosed\n', "cannot parse"),
        ("=value\n", "cannot parse"),
        ("Match\n", "cannot parse"),
    ],
)
def test_malformed_is_a_clear_error(home: Path, text: str, words: str) -> None:
    path = cfg(home, text)
    with pytest.raises(RegwizardError) as info:
        sshconfig.resolve(Connection(address="box"))
    assert words in info.value.cause and str(path) in info.value.cause
    assert info.value.fix


def test_unreadable_and_directory(home: Path) -> None:
    (home / ".ssh" / "config").mkdir()
    with pytest.raises(RegwizardError) as info:
        sshconfig.resolve(Connection(address="box"))
    assert "directory" in info.value.cause


def test_unreadable_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg(home, "Host box\n  User u\n")
    real_open = open

    def denied(path: object, *a: object, **k: object) -> object:
        if str(path).endswith("/.ssh/config"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(RegwizardError) as info:
        sshconfig.resolve(Connection(address="box"))
    assert "Permission denied" in info.value.cause and "600" in info.value.fix


def test_malformed_config_exits_2_from_the_cli(home: Path, capsys: pytest.CaptureFixture) -> None:
    from regwizard.cli.main import main

    # (were the config accepted, this would reach only 127.0.0.1)
    cfg(home, "Host box\n  HostName 127.0.0.1\n  Port nope\n")
    assert main(["adopt", "box", "--auth", "agent"]) == 2
    err = capsys.readouterr().err
    assert "Port" in err and "Traceback" not in err


_LINE = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda k, v: f"{k} {v}",
        st.sampled_from(
            [
                "Host",
                "Match",
                "HostName",
                "User",
                "Port",
                "IdentityFile",
                "ProxyJump",
                "ProxyCommand",
                "HostKeyAlias",
                "Include",
                "CanonicalizeHostname",
                "  port",
                "host=",
            ]
        ),
        st.text(max_size=30),
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_LINE, max_size=12), alias=st.sampled_from(["box", "a.lan", "10.0.0.1"]))
def test_any_config_text_gives_a_route_or_a_regwizard_error(
    home: Path, lines: list[str], alias: str
) -> None:
    (home / ".ssh" / "config").write_text("\n".join(lines), errors="surrogatepass")
    try:
        r = sshconfig.resolve(Connection(address=alias))
    except RegwizardError as e:
        assert e.cause and e.fix
        return
    assert isinstance(r.port, int) and 0 < r.port < 65536
    assert isinstance(r.hostname, str) and isinstance(r.describe(), str)
    assert os.path.isabs(str(home))


def _plan(tmp_path: Path, fast_hash: str, address: str) -> Path:
    from regwizard.plan import Plan, RegistrySpec, User, dump_plan

    plan = Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        host=Connection(address=address),
        clients=[Connection()],
        users=[User("alice", fast_hash)],
    )
    path = tmp_path / "plan.toml"
    path.write_text(dump_plan(plan))
    return path


def test_plan_check_accepts_an_alias_and_shows_where_it_goes(
    home: Path, tmp_path: Path, fast_hash: str, capsys: pytest.CaptureFixture
) -> None:
    from regwizard.cli.main import main

    cfg(home, "Host regbox\n  HostName 10.0.0.2\n  User deploy\n  Port 2222\n")
    path = _plan(tmp_path, fast_hash, "regbox")
    assert main(["plan", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "on regbox" in out
    assert "ssh: regbox (→ deploy@10.0.0.2:2222 via ~/.ssh/config)" in out


def test_plan_check_warns_about_a_broken_ssh_config(
    home: Path, tmp_path: Path, fast_hash: str, capsys: pytest.CaptureFixture
) -> None:
    from regwizard.cli.main import main

    cfg(home, "Host regbox\n  Port many\n")
    assert main(["plan", "check", str(_plan(tmp_path, fast_hash, "regbox"))]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "Port" in err and "Traceback" not in err


def test_ssh_routes_lists_each_changed_host_once(home: Path) -> None:
    from regwizard.cli.common import ssh_routes
    from regwizard.plan import Plan

    cfg(home, "Host regbox\n  HostName 10.0.0.2\n")
    plan = Plan(
        host=Connection(address="regbox"),
        clients=[Connection(), Connection(address="regbox"), Connection(address="10.0.0.3")],
    )
    assert ssh_routes(plan) == ["regbox (→ root@10.0.0.2:22 via ~/.ssh/config)"]
