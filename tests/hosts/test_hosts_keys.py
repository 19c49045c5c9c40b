"""Host key checking: unknown, accepted, changed, pinned, hashed, key type preference."""

from __future__ import annotations

import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hostlab import Lab, Sshd, make_conn, ssh_fingerprint

from regwizard.errors import ConnectFailed, HostKeyChanged, HostKeyUnknown
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
