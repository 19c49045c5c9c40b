"""regwizard.plan: TOML in/out, unknown keys, types and every field validator."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from regwizard import plan as P
from regwizard.errors import PlanError, RegwizardError
from regwizard.plan import (
    EXAMPLE_PLAN,
    PLACEHOLDER_BCRYPT,
    Connection,
    Plan,
    PlanErrors,
    User,
    dump_plan,
    load_plan,
    parse_plan,
    plan_from_dict,
    plan_to_dict,
    plan_warnings,
    save_plan,
    validate_plan,
)

from .conftest import PASSWORD

USERS = '[[users]]\nname = "alice"\nbcrypt = "{h}"\n'


def _fields(errors: list[PlanError]) -> list[str]:
    return [e.field for e in errors]


def _raises(text: str) -> PlanError:
    with pytest.raises(PlanError) as info:
        parse_plan(text)
    return info.value


# --------------------------------------------------------------------- example + round trips


def test_example_plan_parses_and_is_commented() -> None:
    plan = parse_plan(EXAMPLE_PLAN)
    assert plan.registry.domain == "reg.example.test"
    assert plan.registry.ip == "10.0.0.2"
    assert [u.name for u in plan.users] == ["testuser"]
    assert plan.verify.user == "testuser"
    assert "regwizard user hash testuser" in EXAMPLE_PLAN
    assert EXAMPLE_PLAN.count("#") > 20
    assert validate_plan(plan) == []


def test_example_placeholder_is_a_real_bcrypt_and_warned() -> None:
    from regwizard.htpasswd import check_password, is_bcrypt

    plan = parse_plan(EXAMPLE_PLAN)
    assert plan.users[0].bcrypt == PLACEHOLDER_BCRYPT
    assert is_bcrypt(PLACEHOLDER_BCRYPT)
    assert not check_password(PLACEHOLDER_BCRYPT, "testuser")
    assert any("placeholder" in w for w in plan_warnings(plan))


def test_roundtrip_example() -> None:
    plan = parse_plan(EXAMPLE_PLAN)
    assert parse_plan(dump_plan(plan)) == plan


def test_roundtrip_full_plan(valid_plan: Plan) -> None:
    valid_plan.verify.user = "bob"
    valid_plan.certificate.mode = "provided"
    valid_plan.certificate.cert_file = "~/certs/reg.pem"
    valid_plan.certificate.key_file = "~/certs/reg.key"
    valid_plan.host.host_key = "SHA256:" + "A" * 43
    text = dump_plan(valid_plan)
    assert parse_plan(text) == valid_plan
    assert "[[clients]]" in text and "[[users]]" in text and "[policy]" in text


def test_roundtrip_empty_lists(valid_plan: Plan) -> None:
    valid_plan.clients = []
    valid_plan.remove_users = []
    valid_plan.certificate.extra_sans = []
    assert parse_plan(dump_plan(valid_plan)) == valid_plan


def test_roundtrip_invalid_plan_without_validation() -> None:
    plan = Plan()  # no users: invalid, but a draft can still be saved and read back
    assert parse_plan(dump_plan(plan), validate=False) == plan
    with pytest.raises(PlanError):
        parse_plan(dump_plan(plan))


def test_dict_helpers_roundtrip(valid_plan: Plan) -> None:
    assert plan_from_dict(plan_to_dict(valid_plan)) == valid_plan
    d = plan_to_dict(valid_plan)
    assert d["policy"] == {"remove_users": ["mallory"]}


def test_missing_sections_use_defaults(fast_hash: str) -> None:
    plan = parse_plan(USERS.format(h=fast_hash))
    assert plan.registry == P.RegistrySpec()
    assert plan.host == Connection()
    assert plan.clients == [Connection()]
    assert plan.certificate == P.CertificateSpec()
    assert plan.remove_users == []


def test_common_name_defaults_to_domain(valid_plan: Plan) -> None:
    assert valid_plan.common_name == "reg.example.test"
    valid_plan.certificate.common_name = "My Registry"
    assert valid_plan.common_name == "My Registry"


def test_verify_user_defaults_to_first_user(valid_plan: Plan) -> None:
    assert valid_plan.verify_user == "alice"
    valid_plan.verify.user = "bob"
    assert valid_plan.verify_user == "bob"
    assert Plan().verify_user == ""


def test_no_plaintext_password_in_dump(valid_plan: Plan) -> None:
    text = dump_plan(valid_plan)
    assert PASSWORD not in text
    data = tomllib.loads(text)

    def keys(d: object) -> list[str]:
        if isinstance(d, dict):
            return [k for k, v in d.items() for k in [k, *keys(v)]]
        if isinstance(d, list):
            return [k for item in d for k in keys(item)]
        return []

    assert not [k for k in keys(data) if "pass" in k.lower()]


# --------------------------------------------------------------------- unknown keys + types


@pytest.mark.parametrize(
    ("toml", "path", "hint"),
    [
        ('[registry]\nstorag = "/x"\n', "registry.storag", '"storage"'),
        ("[certificate]\nday = 3\n", "certificate.day", '"days"'),
        ('[[clients]]\n[[clients]]\nadress = "x"\n', "clients[1].adress", '"address"'),
        ("remove_users = []\n", "remove_users", '"policy.remove_users"'),
        ('[host]\ndomain = "x"\n', "host.domain", '"registry.domain"'),
        ("[registri]\n", "registri", '"registry"'),
        ('[verify]\nzzz = "x"\n', "verify.zzz", None),
        ("[registry.extra]\nx = 1\n", "registry.extra", None),
    ],
)
def test_unknown_key_names_path_and_suggests(toml: str, path: str, hint: str | None) -> None:
    err = _raises(toml)
    fields = [e.field for e in getattr(err, "errors", [err])]
    assert path in fields
    e = next(e for e in getattr(err, "errors", [err]) if e.field == path)
    assert "unknown key" in e.message
    if hint:
        assert f"did you mean {hint}?" in e.message
    else:
        assert "did you mean" not in e.message
    assert "keys allowed" in e.fix


def test_unknown_key_message_format() -> None:
    err = _raises('[registry]\nstorag = "/x"\n[[users]]\nname="a"\nbcrypt="x"\n')
    assert str(err).startswith('registry.storag: unknown key (did you mean "storage"?)')


def test_unknown_quoted_key_is_escaped() -> None:
    err = _raises('[registry]\n"we\\u001bird" = 1\n')
    assert err.field.startswith("registry.")
    assert "\x1b" not in str(err)


@pytest.mark.parametrize(
    "toml",
    [
        'password = "x"\n',
        '[host]\npassword = "hunter2"\n',
        '[host]\nsudo_password = "hunter2"\n',
        '[verify]\npassword = "x"\n',
        '[[users]]\nname = "a"\npassword = "x"\n',
        '[[clients]]\npasswd = "x"\n',
        '[registry]\nhttp_secret = "x"\n',
    ],
)
def test_password_keys_rejected(toml: str) -> None:
    err = _raises(toml)
    errors = getattr(err, "errors", [err])
    assert any("passwords never go in plans" in e.message for e in errors)
    assert "hunter2" not in str(err)


@pytest.mark.parametrize(
    ("toml", "path", "expected"),
    [
        ('[registry]\nport = "443"\n', "registry.port", "whole number"),
        ("[registry]\nport = 4.5\n", "registry.port", "whole number"),
        ("[registry]\nport = true\n", "registry.port", "whole number"),
        ('[registry]\nmanage_hosts_file = "yes"\n', "registry.manage_hosts_file", "true or false"),
        ("[registry]\ndomain = 5\n", "registry.domain", "text"),
        ("[registry]\ndomain = 2024-01-01\n", "registry.domain", "text"),
        ('[certificate]\nextra_sans = "a.test"\n', "certificate.extra_sans", "list of text"),
        ('[certificate]\nextra_sans = ["a", 1]\n', "certificate.extra_sans[1]", "text"),
        ("[policy]\nremove_users = [1]\n", "policy.remove_users[0]", "text"),
        ('registry = "x"\n', "registry", "table"),
        ("[[registry]]\n", "registry", "table"),
        ('[users]\nname = "a"\n', "users", "[[users]]"),
        ("clients = 3\n", "clients", "[[clients]]"),
        ("clients = [3]\n", "clients[0]", "table"),
    ],
)
def test_wrong_types_name_key_and_type(toml: str, path: str, expected: str) -> None:
    err = _raises(toml)
    errors = getattr(err, "errors", [err])
    e = next((e for e in errors if e.field == path), None)
    assert e is not None, [str(x) for x in errors]
    assert expected in e.message


def test_array_instead_of_table_gets_fix() -> None:
    assert _raises("[[verify]]\n").fix == "write [verify], not [[verify]]"


def test_quoted_port_gets_fix() -> None:
    err = _raises('[registry]\nport = "5000"\n')
    assert err.fix == "write port = 5000 without quotes"


def test_missing_user_fields() -> None:
    err = _raises("[[users]]\n")
    fields = _fields(getattr(err, "errors", [err]))
    assert "users[0].name" in fields and "users[0].bcrypt" in fields


@pytest.mark.parametrize(
    "text",
    ["[registry", 'a = "unterminated', "= 1", "[a]\n[a]\n", "a = [" * 5000, "x = 1\nx = 2"],
)
def test_bad_toml_is_a_plan_error(text: str) -> None:
    err = _raises(text)
    assert "not valid TOML" in err.message


def test_bytes_input_and_bom(fast_hash: str) -> None:
    data = ("\ufeff" + USERS.format(h=fast_hash)).encode()
    assert parse_plan(data).users[0].name == "alice"
    with pytest.raises(PlanError, match="not UTF-8"):
        parse_plan(b"\xff\xfe[registry]")


def test_too_large() -> None:
    with pytest.raises(PlanError, match="too large"):
        parse_plan("#" * (P.MAX_PLAN_BYTES + 10))


# --------------------------------------------------------------------- files


def test_save_and_load(tmp_path: Path, valid_plan: Plan) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("old")
    path.chmod(0o644)
    save_plan(valid_plan, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_plan(path) == valid_plan
    assert os.listdir(tmp_path) == ["plan.toml"]  # no temp file left behind


def test_save_into_missing_dir_is_regwizard_error(tmp_path: Path, valid_plan: Plan) -> None:
    with pytest.raises(RegwizardError, match="cannot write"):
        save_plan(valid_plan, tmp_path / "nope" / "plan.toml")


def test_load_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not found") as info:
        load_plan(tmp_path / "missing.toml")
    assert "regwizard plan new" in info.value.fix
    with pytest.raises(PlanError, match="directory"):
        load_plan(tmp_path)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[registry\n")
    with pytest.raises(PlanError, match="bad.toml"):
        load_plan(path)


# --------------------------------------------------------------------- field validators

GOOD_BAD = {
    P.check_country: (["CN", "us", "De", ""], ["CHN", "C", "1A", "C\n", "ÄÖ", 5]),
    P.check_common_name: (["", "reg.example.test", "My Registry", "x" * 64], ["x" * 65, "a\nb", 3]),
    P.check_domain: (
        ["reg.example.test", "registry", "a-b.c", "x" * 63 + ".test", "xn--bcher-kva.example"],
        [
            "",
            "-bad.test",
            "bad-.test",
            "a..b",
            ".a",
            "a.",
            "under_score.test",
            "x" * 64 + ".test",
            ("a" * 62 + ".") * 4 + "test",
            "10.0.0.2",
            "::1",
            "reg.test:5000",
            "bücher.example",
            "a.123",
            "a b",
            "reg\n.test",
            None,
        ],
    ),
    P.check_ip: (
        ["", "10.0.0.2", "192.168.1.1", "::1", "fd00::2", "127.0.0.1"],
        ["10.0.0", "256.1.1.1", "010.0.0.1", "0.0.0.0", "::", "fe80::1%eth0", "[::1]", "x", 1],
    ),
    P.check_port: ([1, 22, 443, 5000, 65535], [0, -1, 65536, "443", True, 4.0]),
    P.check_days: ([1, 825, 3650], [0, 3651, -5, "30", False]),
    P.check_key: (["rsa-2048", "rsa-4096", "ecdsa-p256"], ["rsa-1024", "ed25519", "", None]),
    P.check_mode: (["self-signed", "local-ca", "provided"], ["acme", "", "SELF-SIGNED"]),
    P.check_auth: (["key", "agent", "password"], ["kerberos", ""]),
    P.check_storage: (
        ["/opt/docker-image", "/srv/registry", "/data", "/var/lib/registry", "/a b/c"],
        [
            "",
            "/",
            "opt/x",
            "./x",
            "/opt/../etc",
            "/opt/x/..",
            "/opt//x",
            "/opt/x/",
            "/opt/./x",
            "//opt",
            "/opt/x\n",
            "/opt/\x00x",
            "/opt/a:b",
            "/opt/a,b",
            "/etc",
            "/var/lib",
            "/proc/x",
            "/sys",
            "/" + "x" * 5000,
            " /opt/x",
            7,
        ],
    ),
    P.check_config_dir: (["/etc/regwizard", "/opt/reg/conf"], ["/", "/etc", "etc/x", "/x/../y"]),
    P.check_container: (
        ["registry", "my-registry_2", "R.1", "a" * 128],
        ["", "-x", "_x", ".x", "a b", "a/b", "a" * 129, "reg;rm"],
    ),
    P.check_image: (
        [
            "registry:2",
            "registry",
            "library/registry:2.8.3",
            "docker.io/library/registry:2",
            "localhost:5000/team/registry:v1",
            "10.0.0.2:5000/registry",
            "registry@sha256:" + "a" * 64,
            "registry:2@sha256:" + "b" * 64,
            "my_repo/a__b/c-d.e:tag_1",
        ],
        [
            "",
            "Registry:2",
            "registry:2 ",
            "registry:",
            "-registry",
            "registry:2;rm -rf /",
            "registry:$(id)",
            "a//b",
            "registry:" + "x" * 129,
            "registry@sha256:short",
            "a" * 300,
        ],
    ),
    P.check_username: (
        ["alice", "testuser", "_svc", "a.b-c_d", "u1", "a" * 32],
        ["", "Alice", "1user", "a:b", "a b", "-x", "a" * 33, "ü", "a\n"],
    ),
    P.check_ssh_user: (["root", "admin", "Deploy_1"], ["", "-oProxyCommand", "a b", "a@b"]),
    P.check_bcrypt: (
        [
            "$2b$12$" + "a" * 53,
            "$2y$10$" + "./Az09" * 8 + "abcde",
            "$2a$04$" + "Z" * 53,
            PLACEHOLDER_BCRYPT,
        ],
        [
            "",
            "$apr1$abc$def",
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "$6$salt$hash",
            "plaintext",
            "$2b$03$" + "a" * 53,
            "$2b$12$" + "a" * 52,
            "$2b$12$" + "a" * 53 + "\n",
            "$2x$12$" + "a" * 53,
        ],
    ),
    P.check_email: (
        ["", "a@b", "ops@example.test", "a.b+c@x.y"],
        ["a", "a@", "@b", "a@b@c", "é@x"],
    ),
    P.check_address: (
        ["local", "10.0.0.2", "::1", "fd00::3", "node1", "node1.example.test"],
        ["", "root@node1", "node1:22", "[::1]", "0.0.0.0", "-oProxyCommand=x", "a b", "fe80::1%e"],
    ),
    P.check_san: (
        ["registry.lan", "10.0.0.20", "::1", "*.example.test"],
        ["", "a..b", "*", "*.*.test", "a b", "-x.test", "x.test."],
    ),
    P.check_subject_text: (
        ["", "Beijing", "ACME Ltd.", "Zürich", "x" * 64],
        ["x" * 65, "a\tb", " a"],
    ),
    P.check_realm: (["Registry Realm", "Acme"], ["", 'a"b', "a\\b", "a\nb", "x" * 129]),
    P.check_label: (["", "node1", "this machine"], ["a\x1bb", "x" * 65]),
    P.check_host_key: (["", "SHA256:" + "A" * 43], ["SHA256:short", "MD5:aa", "A" * 50]),
    P.check_bool: ([True, False], [1, "true", None]),
    P.check_verify_user: (["", "alice"], ["Alice", "a:b", None]),
}


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (check, value, ok)
        for check, (good, bad) in GOOD_BAD.items()
        for ok, values in ((True, good), (False, bad))
        for value in values
    ],
    ids=lambda x: getattr(x, "__name__", None) or repr(x)[:30],
)
def test_field_validator(check, value: object, ok: bool) -> None:
    msg = check(value)
    if ok:
        assert msg is None, msg
    else:
        assert isinstance(msg, str) and msg, f"{check.__name__}({value!r}) accepted"
        assert "\n" not in msg and "\x00" not in msg and "\x1b" not in msg


def test_specific_messages() -> None:
    assert P.check_country("CHN") == "Country must be 2 letters (ISO 3166), e.g. CN"
    assert "ignores" in (P.check_bcrypt("$apr1$x$y") or "")
    assert "MD5" in (P.check_bcrypt("$apr1$x$y") or "")
    assert "colon" in (P.check_username("a:b") or "")
    assert "/opt/x" in (P.check_storage("/opt/x/") or "")
    assert "registry.ip" in (P.check_domain("10.0.0.2") or "")
    assert "xn--bcher-kva" in (P.check_domain("bücher.example") or "")
    assert "lowercase" in (P.check_image("Registry:2") or "")


def test_check_field_dispatch() -> None:
    assert P.check_field("registry.domain", "-x") is not None
    assert P.check_field("clients.address", "local") is None
    assert P.check_field("clients.address", "a b") is not None
    assert P.check_field("nope.nope", "x") is None


# --------------------------------------------------------------------- plan-level validation


def test_valid_plan_is_valid(valid_plan: Plan) -> None:
    assert validate_plan(valid_plan) == []
    valid_plan.validate()


def test_no_users() -> None:
    errs = validate_plan(Plan())
    assert _fields(errs) == ["users"]
    assert "at least one user" in errs[0].message


def test_duplicate_users(valid_plan: Plan, fast_hash: str) -> None:
    valid_plan.users.append(User("alice", fast_hash))
    assert _fields(validate_plan(valid_plan)) == ["users[2].name"]


def test_non_bcrypt_user_hash(valid_plan: Plan) -> None:
    valid_plan.users[0].bcrypt = "$apr1$abc$def"
    (err,) = validate_plan(valid_plan)
    assert err.field == "users[0].bcrypt"
    assert "ignores" in err.message
    assert "regwizard user hash" in err.fix


def test_verify_user_must_be_a_user(valid_plan: Plan) -> None:
    valid_plan.verify.user = "carol"
    (err,) = validate_plan(valid_plan)
    assert err.field == "verify.user" and "not one of" in err.message


def test_remove_users_overlap(valid_plan: Plan) -> None:
    valid_plan.remove_users = ["alice", "Bad:Name"]
    assert _fields(validate_plan(valid_plan)) == [
        "policy.remove_users[0]",
        "policy.remove_users[1]",
    ]


def test_provided_needs_files(valid_plan: Plan) -> None:
    valid_plan.certificate.mode = "provided"
    assert _fields(validate_plan(valid_plan)) == ["certificate.cert_file", "certificate.key_file"]


def test_storage_and_config_dir_separate(valid_plan: Plan) -> None:
    valid_plan.registry.config_dir = "/opt/docker-image/conf"
    assert _fields(validate_plan(valid_plan)) == ["registry.config_dir"]
    valid_plan.registry.config_dir = "/opt/docker-image"
    assert _fields(validate_plan(valid_plan)) == ["registry.config_dir"]
    valid_plan.registry.config_dir = "/opt/docker-image2"
    assert validate_plan(valid_plan) == []


def test_key_auth_needs_key_file(valid_plan: Plan) -> None:
    valid_plan.host.key_file = ""
    valid_plan.clients[1].key_file = ""
    assert _fields(validate_plan(valid_plan)) == ["host.key_file", "clients[1].key_file"]
    valid_plan.host.auth = "agent"
    valid_plan.clients[1].auth = "password"
    assert validate_plan(valid_plan) == []


def test_duplicate_clients(valid_plan: Plan) -> None:
    valid_plan.clients.append(Connection(address="10.0.0.3"))
    assert _fields(validate_plan(valid_plan)) == ["clients[2].address"]


def test_extra_sans_checked(valid_plan: Plan) -> None:
    valid_plan.certificate.extra_sans = ["ok.test", "bad name", "10.0.0.300"]
    assert _fields(validate_plan(valid_plan)) == [
        "certificate.extra_sans[1]",
        "certificate.extra_sans[2]",
    ]


def test_control_chars_rejected_everywhere(valid_plan: Plan) -> None:
    valid_plan.registry.realm = "Realm\nX-Injected: 1"
    valid_plan.certificate.organization = "Acme\x00"
    valid_plan.certificate.locality = "Evil\u202e"
    valid_plan.host.label = "a\x1b[31m"
    valid_plan.host.key_file = "~/.ssh/id\n"
    assert set(_fields(validate_plan(valid_plan))) == {
        "registry.realm",
        "certificate.organization",
        "certificate.locality",
        "host.label",
        "host.key_file",
    }


def test_validate_raises_single_or_combined(valid_plan: Plan) -> None:
    valid_plan.certificate.country = "CHN"
    with pytest.raises(PlanError) as one:
        valid_plan.validate()
    assert not isinstance(one.value, PlanErrors)
    assert one.value.field == "certificate.country"
    assert "ISO 3166" in one.value.fix

    valid_plan.registry.port = 0
    with pytest.raises(PlanErrors) as many:
        valid_plan.validate()
    assert [e.field for e in many.value.errors] == ["registry.port", "certificate.country"]
    assert many.value.field == "registry.port"
    assert "2 problems" in str(many.value)
    assert "certificate.country" in str(many.value)


def test_parse_reports_all_validation_errors(fast_hash: str) -> None:
    text = f'[registry]\ndomain = "-x"\nport = 0\n{USERS.format(h=fast_hash)}'
    err = _raises(text)
    assert isinstance(err, PlanErrors)
    assert [e.field for e in err.errors] == ["registry.domain", "registry.port"]


def test_warnings(valid_plan: Plan) -> None:
    assert plan_warnings(valid_plan) == []
    valid_plan.registry.ip = "127.0.0.1"
    valid_plan.registry.domain = "localhost"
    assert len(plan_warnings(valid_plan)) == 2


def test_long_domain_is_valid_even_if_too_long_for_cn(valid_plan: Plan) -> None:
    valid_plan.registry.domain = ("a" * 60 + ".") * 2 + "test"
    assert validate_plan(valid_plan) == []
