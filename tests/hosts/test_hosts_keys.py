"""Host key checking: unknown, accepted, changed, pinned, hashed, key type preference."""

from __future__ import annotations

import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hostlab import Lab, Sshd, keygen, make_conn, ssh_fingerprint

from regwizard.errors import ConnectFailed, HostKeyChanged, HostKeyUnknown, RegwizardError
from regwizard.hosts import SSHHost, connect, known_hosts_name
from regwizard.plan import Secrets


def unpinned(sshlab: Lab, **kw: object):
    return make_conn(sshlab, host_key="", **kw)


def test_unknown_key_raises_with_openssh_fingerprint(sshlab: Lab, known_hosts: Path) -> None:
    with pytest.raises(HostKeyUnknown) as info:
        connect(unpinned(sshlab), Secrets(), known_hosts=str(known_hosts))
    e = info.value
    expected = ssh_fingerprint(sshlab.sshd.host_keys[0].with_suffix(".pub"))
    assert e.fingerprint == expected
    assert e.fingerprint.startswith("SHA256:") and not e.fingerprint.endswith("=")
    assert e.key_type == "ssh-ed25519"
    assert e.host == f"127.0.0.1:{sshlab.sshd.port}"
    assert expected in str(e) and "--accept-host-key" in e.fix
    assert not known_hosts.exists()  # nothing written for an unconfirmed key


def test_accepted_fingerprint_connects_and_is_remembered(sshlab: Lab, known_hosts: Path) -> None:
    assert not known_hosts.parent.exists()
    secrets = Secrets(accepted_host_keys={sshlab.fingerprint})
    with connect(unpinned(sshlab), secrets, known_hosts=str(known_hosts)) as host:
        assert host.run(["true"]).rc == 0
        assert host.fingerprint == sshlab.fingerprint
    assert stat.S_IMODE(known_hosts.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    name = known_hosts_name("127.0.0.1", sshlab.sshd.port)
    assert known_hosts.read_text().startswith(f"{name} ssh-ed25519 ")
    # OpenSSH itself finds the entry we wrote
    found = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert found.returncode == 0, found.stderr
    # Known now: a second connection needs no acceptance, and writes nothing more.
    with connect(unpinned(sshlab), Secrets(), known_hosts=str(known_hosts)) as host:
        assert host.run(["true"]).rc == 0
    assert len(known_hosts.read_text().splitlines()) == 1


def test_append_keeps_existing_lines(sshlab: Lab, known_hosts: Path) -> None:
    known_hosts.parent.mkdir(mode=0o700)
    other = sshlab.other_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"example.org {other[0]} {other[1]}")  # no trailing newline
    secrets = Secrets(accepted_host_keys={sshlab.fingerprint})
    connect(unpinned(sshlab), secrets, known_hosts=str(known_hosts)).close()
    lines = known_hosts.read_text().splitlines()
    assert lines[0].startswith("example.org ")
    assert lines[1].startswith(f"[127.0.0.1]:{sshlab.sshd.port} ssh-ed25519 ")


def test_accepted_key_in_other_form_is_normalised(sshlab: Lab, known_hosts: Path) -> None:
    bare = sshlab.fingerprint.split(":", 1)[1] + "="
    connect(
        unpinned(sshlab), Secrets(accepted_host_keys={bare}), known_hosts=str(known_hosts)
    ).close()
    assert known_hosts.exists()


def test_changed_key_is_refused_and_nothing_runs(
    tmp_path: Path, sshlab: Lab, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sshd = Sshd(tmp_path / "sshd2", sshlab.sshd.authorized_keys)
    sshd.start()
    try:
        conn = make_conn(sshlab, host_key="", port=sshd.port)
        old = sshd.fingerprint
        connect(conn, Secrets(accepted_host_keys={old}), known_hosts=str(known_hosts)).close()

        sshd.regenerate()
        sshd.restart()
        new = sshd.fingerprint
        assert new != old

        auth_calls: list[object] = []
        monkeypatch.setattr(SSHHost, "_authenticate", lambda self, t: auth_calls.append(t))
        # Even an explicit acceptance of the new key cannot bypass a changed key.
        with pytest.raises(HostKeyChanged) as info:
            connect(conn, Secrets(accepted_host_keys={new}), known_hosts=str(known_hosts))
        assert info.value.expected == old and info.value.got == new
        assert "CHANGED" in str(info.value) and "ssh-keygen -R" in info.value.fix
        assert auth_calls == []  # refused before authenticating: nothing ran
        assert new not in known_hosts.read_text()
    finally:
        sshd.stop()


def test_pinned_key(sshlab: Lab, known_hosts: Path) -> None:
    for pin in (sshlab.fingerprint, "sha256:" + sshlab.fingerprint.split(":", 1)[1] + "="):
        with connect(make_conn(sshlab, host_key=pin), Secrets(), known_hosts=str(known_hosts)) as h:
            assert h.run(["true"]).rc == 0
    assert not known_hosts.exists()  # a pinned key needs no known_hosts

    wrong = "SHA256:" + "A" * 43
    with pytest.raises(HostKeyChanged) as info:
        connect(
            make_conn(sshlab, host_key=wrong),
            Secrets(accepted_host_keys={sshlab.fingerprint}),
            known_hosts=str(known_hosts),
        )
    assert info.value.expected == wrong and info.value.got == sshlab.fingerprint


def test_hashed_known_hosts_entry(sshlab: Lab, known_hosts: Path) -> None:
    known_hosts.parent.mkdir(mode=0o700)
    pub = sshlab.sshd.host_keys[0].with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{sshlab.sshd.port} {pub[0]} {pub[1]}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known_hosts)], capture_output=True, check=True)
    assert known_hosts.read_text().startswith("|1|")
    connect(unpinned(sshlab), Secrets(), known_hosts=str(known_hosts)).close()


def test_known_key_type_is_negotiated_first(tmp_path: Path, sshlab: Lab, known_hosts: Path) -> None:
    """Like OpenSSH: if we know the host's ECDSA key, we ask for ECDSA, not ed25519."""
    sshd = Sshd(tmp_path / "sshd3", sshlab.sshd.authorized_keys, key_types=("ed25519", "ecdsa"))
    sshd.start()
    try:
        known_hosts.parent.mkdir(mode=0o700)
        pub = (sshd.root / "ssh_host_ecdsa_key.pub").read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}\n")
        conn = make_conn(sshlab, host_key="", port=sshd.port)
        with connect(conn, Secrets(), known_hosts=str(known_hosts)) as host:
            assert host.key_type.startswith("ecdsa-sha2-")
            assert host.fingerprint == sshd.fingerprint_of("ecdsa")
        # An unrelated ed25519 key on file for this host: changed, not unknown.
        other = sshlab.other_key.with_suffix(".pub").read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
        with pytest.raises(HostKeyChanged):
            connect(conn, Secrets(), known_hosts=str(known_hosts))
    finally:
        sshd.stop()


def test_port_22_entry_does_not_match_other_port(sshlab: Lab, known_hosts: Path) -> None:
    known_hosts.parent.mkdir(mode=0o700)
    pub = sshlab.sshd.host_keys[0].with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"127.0.0.1 {pub[0]} {pub[1]}\n")
    with pytest.raises(HostKeyUnknown):
        connect(unpinned(sshlab), Secrets(), known_hosts=str(known_hosts))


def test_connection_refused_is_clear(sshlab: Lab, known_hosts: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ConnectFailed) as info:
            connect(make_conn(sshlab, port=port), Secrets(), known_hosts=str(known_hosts))
    assert "connection refused" in str(info.value)
    assert "sshd" in info.value.fix


def test_silent_server_times_out(sshlab: Lab, known_hosts: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        held: list[socket.socket] = []
        t = threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True)
        t.start()
        start = time.monotonic()
        with pytest.raises(ConnectFailed) as info:
            connect(
                make_conn(sshlab, port=port), Secrets(), timeout=1, known_hosts=str(known_hosts)
            )
        assert time.monotonic() - start < 5
        for s in held:
            s.close()
    assert "handshake" in str(info.value)


# -- a pinned key of another type (the server offers ed25519, ECDSA and RSA) -------------


def keygen_line(pub: Path) -> str:
    """The first line `ssh-keygen -lf FILE` prints: `256 SHA256:... comment (ECDSA)`."""
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return out.splitlines()[0]


@pytest.fixture(scope="module")
def multikey(sshlab: Lab, tmp_path_factory: pytest.TempPathFactory):
    sshd = Sshd(
        tmp_path_factory.mktemp("multikey"),
        sshlab.sshd.authorized_keys,
        key_types=("ed25519", "ecdsa", "rsa"),
    )
    sshd.start()
    try:
        yield sshd
    finally:
        sshd.stop()


@pytest.fixture
def handshakes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], bool]]:
    """Every SSH handshake SSHHost makes: (host key families asked for, only those)."""
    calls: list[tuple[list[str], bool]] = []
    real = SSHHost._handshake

    def counting(self: SSHHost, families: list[str], *, only: bool = False):
        calls.append((list(families), only))
        return real(self, families, only=only)

    monkeypatch.setattr(SSHHost, "_handshake", counting)
    return calls


def pinned(sshlab: Lab, sshd: Sshd, pin: str):
    return make_conn(sshlab, port=sshd.port, host_key=pin)


def test_pinned_ed25519_needs_one_handshake(
    sshlab: Lab, multikey: Sshd, known_hosts: Path, handshakes: list
) -> None:
    pin = multikey.fingerprint_of("ed25519")
    with connect(pinned(sshlab, multikey, pin), Secrets(), known_hosts=str(known_hosts)) as h:
        assert h.run(["true"]).rc == 0
        assert h.key_type == "ssh-ed25519" and h.fingerprint == pin
    assert len(handshakes) == 1  # the match came first: no extra handshake
    assert not known_hosts.exists()


def test_pinned_ecdsa_bare_fingerprint_connects(
    sshlab: Lab, multikey: Sshd, known_hosts: Path, handshakes: list
) -> None:
    pin = multikey.fingerprint_of("ecdsa")
    with connect(pinned(sshlab, multikey, pin), Secrets(), known_hosts=str(known_hosts)) as h:
        assert h.run(["true"]).rc == 0
        assert h.key_type.startswith("ecdsa-sha2-") and h.fingerprint == pin
        # ed25519 first (the server's and paramiko's first choice), then ECDSA alone
        assert handshakes == [([], False), (["ecdsa-sha2-nistp256"], True)]
        # a dropped connection is remade asking for the trusted type: one handshake
        h.transport.sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        while h._transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h.run(["true"]).rc == 0
        assert len(handshakes) == 3 and handshakes[2] == (["ecdsa-sha2-nistp256"], False)
        assert h.fingerprint == pin
    assert not known_hosts.exists()


def test_pinned_rsa_bare_fingerprint_tries_each_other_type(
    sshlab: Lab, multikey: Sshd, known_hosts: Path, handshakes: list
) -> None:
    pin = multikey.fingerprint_of("rsa")
    with connect(pinned(sshlab, multikey, pin), Secrets(), known_hosts=str(known_hosts)) as h:
        assert h.key_type == "ssh-rsa" and h.fingerprint == pin
    assert [f for f, _ in handshakes] == [[], ["ecdsa-sha2-nistp256"], ["ssh-rsa"]]


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_pinned_keygen_line_asks_for_its_type(
    sshlab: Lab, multikey: Sshd, known_hosts: Path, handshakes: list, kind: str
) -> None:
    line = keygen_line(multikey.root / f"ssh_host_{kind}_key.pub")
    assert line.endswith(f"({kind.upper()})")
    with connect(pinned(sshlab, multikey, line), Secrets(), known_hosts=str(known_hosts)) as h:
        assert h.run(["true"]).rc == 0
        assert h.fingerprint == multikey.fingerprint_of(kind)
    assert len(handshakes) == 1  # the type in the line was asked for first


def test_pinned_other_ecdsa_key_is_refused(
    tmp_path: Path,
    sshlab: Lab,
    multikey: Sshd,
    known_hosts: Path,
    handshakes: list,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real change is still refused: no key of the server matches the pin."""
    other = keygen(tmp_path / "other_ecdsa", "ecdsa")
    bare = ssh_fingerprint(other.with_suffix(".pub"))
    auth_calls: list[object] = []
    monkeypatch.setattr(SSHHost, "_authenticate", lambda self, t: auth_calls.append(t))
    with pytest.raises(HostKeyChanged) as info:
        connect(pinned(sshlab, multikey, bare), Secrets(), known_hosts=str(known_hosts))
    e = info.value
    assert e.expected == bare and e.got == multikey.fingerprint_of("ed25519")
    assert len(handshakes) == 3  # each of the server's three types was tried
    for kind in ("ed25519", "ecdsa", "rsa"):
        assert multikey.fingerprint_of(kind) in e.evidence
    # the same key given as a -lf line: its type is asked for, and refused at once
    handshakes.clear()
    with pytest.raises(HostKeyChanged) as info:
        connect(
            pinned(sshlab, multikey, keygen_line(other.with_suffix(".pub"))),
            Secrets(),
            known_hosts=str(known_hosts),
        )
    assert info.value.expected == bare and info.value.got == multikey.fingerprint_of("ecdsa")
    assert len(handshakes) == 1
    assert auth_calls == []  # refused before authenticating
    assert not known_hosts.exists()


def test_pinned_type_the_server_lacks_is_refused_and_explained(
    sshlab: Lab, known_hosts: Path, tmp_path: Path, handshakes: list
) -> None:
    other = keygen(tmp_path / "other_ecdsa", "ecdsa")
    with pytest.raises(HostKeyChanged) as info:  # sshlab's sshd has an ed25519 key only
        connect(
            make_conn(sshlab, host_key=keygen_line(other.with_suffix(".pub"))),
            Secrets(),
            known_hosts=str(known_hosts),
        )
    assert "has no ECDSA host key" in info.value.evidence
    assert len(handshakes) == 1


def test_unsupported_pin_type_is_refused_before_connecting(
    sshlab: Lab, known_hosts: Path, handshakes: list
) -> None:
    line = f"1024 {sshlab.fingerprint} root@old (DSA)"
    with pytest.raises(RegwizardError) as info:
        connect(make_conn(sshlab, host_key=line), Secrets(), known_hosts=str(known_hosts))
    assert "DSA" in info.value.cause and "ssh-keygen -lf" in info.value.fix
    assert handshakes == []


def test_known_hosts_entry_of_another_type(
    sshlab: Lab, multikey: Sshd, known_hosts: Path, handshakes: list
) -> None:
    """known_hosts holds only the RSA key: RSA is asked for first, one handshake."""
    known_hosts.parent.mkdir(mode=0o700)
    pub = (multikey.root / "ssh_host_rsa_key.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{multikey.port} {pub[0]} {pub[1]}\n")
    conn = make_conn(sshlab, port=multikey.port, host_key="")
    with connect(conn, Secrets(), known_hosts=str(known_hosts)) as h:
        assert h.key_type == "ssh-rsa"
        assert h.fingerprint == multikey.fingerprint_of("rsa")
    assert handshakes == [(["ssh-rsa"], False)]


def test_accepted_fingerprint_of_another_type(
    sshlab: Lab, multikey: Sshd, known_hosts: Path, handshakes: list
) -> None:
    """--accept-host-key with the ECDSA fingerprint (ssh-keygen -lf shows every key)."""
    conn = make_conn(sshlab, port=multikey.port, host_key="")
    ecdsa = multikey.fingerprint_of("ecdsa")
    line = keygen_line(multikey.root / "ssh_host_ecdsa_key.pub")
    with connect(conn, Secrets(accepted_host_keys={line}), known_hosts=str(known_hosts)) as h:
        assert h.fingerprint == ecdsa
    assert len(handshakes) == 2
    assert known_hosts.read_text().split()[1].startswith("ecdsa-sha2-")
    handshakes.clear()
    with connect(conn, Secrets(), known_hosts=str(known_hosts)) as h:  # known now
        assert h.fingerprint == ecdsa
    assert len(handshakes) == 1
    # an unknown host whose keys match no accepted fingerprint: still unknown (ed25519)
    known_hosts.unlink()
    with pytest.raises(HostKeyUnknown) as info:
        connect(
            conn, Secrets(accepted_host_keys={sshlab.fingerprint}), known_hosts=str(known_hosts)
        )
    assert info.value.fingerprint == multikey.fingerprint_of("ed25519")
    assert not known_hosts.exists()
