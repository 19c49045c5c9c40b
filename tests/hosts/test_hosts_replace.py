"""Host.replace_file: rename over the old file; in place only over a mount point."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostlab import need_root

from regwizard.errors import RegwizardError
from regwizard.hosts import Host, LocalHost, connect
from regwizard.plan import Connection, Secrets


@pytest.fixture
def local() -> Iterator[LocalHost]:
    need_root()
    host = connect(Connection(), Secrets())
    assert isinstance(host, LocalHost)
    yield host
    host.close()


@contextlib.contextmanager
def mounted(*argv: str) -> Iterator[None]:
    """`mount ARGV...`; unmounted (by its target, the last argument) on exit."""
    subprocess.run(["mount", *argv], check=True, capture_output=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["umount", argv[-1]], check=True, capture_output=True, timeout=30)


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if "regwizard-tmp" in p.name]


def assert_renamed(host: Host, tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    target.write_bytes(b"127.0.0.1 localhost\n")
    target.chmod(0o640)
    os.chown(target, 65534, 65534)  # nobody: the owner must survive the rename
    before = target.stat()
    new = b"127.0.0.1 localhost\n10.0.0.5 reg.example.test\n"
    assert host.replace_file(str(target), new) == "renamed"
    after = target.stat()
    assert target.read_bytes() == new
    assert after.st_ino != before.st_ino  # a new inode: renamed over the old file
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == (65534, 65534)
    assert leftovers(tmp_path) == []
    # a new file gets the mode asked for (owner root), through a symlink its target
    link = tmp_path / "link"
    link.symlink_to(target)
    assert host.replace_file(str(link), b"via link") == "renamed"
    assert link.is_symlink() and target.read_bytes() == b"via link"
    fresh = tmp_path / "fresh"
    host.replace_file(str(fresh), b"x", mode=0o600)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and fresh.stat().st_uid == 0


def test_local_ordinary_file_is_renamed_over(local: LocalHost, tmp_path: Path) -> None:
    assert_renamed(local, tmp_path)


def test_ssh_ordinary_file_is_renamed_over(root_host: Host, tmp_path: Path) -> None:
    assert_renamed(root_host, tmp_path)


def test_sudo_ordinary_file_is_renamed_over(user_host: Host, tmp_path: Path) -> None:
    assert_renamed(user_host, tmp_path)


def test_bind_mounted_file_is_written_in_place(local: LocalHost, tmp_path: Path) -> None:
    """A single bind-mounted file (a container's /etc/hosts): same inode, both sides see it."""
    source = tmp_path / "outside"
    source.write_bytes(b"old\n")
    target = tmp_path / "dir with space" / "hosts"  # mountinfo escapes the space as \040
    target.parent.mkdir()
    target.write_bytes(b"")
    with mounted("--bind", str(source), str(target)):
        # found in mountinfo (so no rename is even tried); its directory is no mount point
        for path, rc in ((target, 0), (target.parent, 1)):
            probe = ["sh", "-c", local._IS_MOUNT + 'is_mount "$1"', "sh", str(path)]
            assert local.run(probe, check=False).rc == rc
        inode = target.stat().st_ino
        assert local.replace_file(str(target), b"new\n") == "in place"
        assert target.stat().st_ino == inode
        assert source.read_bytes() == b"new\n"  # the other side of the mount sees it
        assert leftovers(target.parent) == []


def test_ebusy_falls_back_to_in_place(
    local: LocalHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should mountinfo not show the mount, rename's EBUSY still sends us in place."""
    monkeypatch.setattr(LocalHost, "_IS_MOUNT", "is_mount() { return 1; }\n")
    source, target = tmp_path / "outside", tmp_path / "hosts"
    source.write_bytes(b"old\n")
    target.write_bytes(b"")
    with mounted("--bind", str(source), str(target)):
        assert local.replace_file(str(target), b"new\n") == "in place"
        assert source.read_bytes() == b"new\n"
        assert leftovers(tmp_path) == []


@pytest.fixture
def full_mount(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(target, its source): target is bind-mounted from a file on a 64 KiB tmpfs, so an
    in-place write of more than that fails part-way with ENOSPC."""
    small = tmp_path / "small"
    small.mkdir()
    target = tmp_path / "hosts"
    target.write_bytes(b"")
    with mounted("-t", "tmpfs", "-o", "size=64k", "rwtest-full", str(small)):
        source = small / "hosts"
        source.write_bytes(b"127.0.0.1 localhost\n")
        with mounted("--bind", str(source), str(target)):
            yield target, source


def test_failed_in_place_write_is_restored_from_the_backup(
    local: LocalHost, tmp_path: Path, full_mount: tuple[Path, Path]
) -> None:
    target, source = full_mount
    inode = target.stat().st_ino
    backup = local.backup(str(target))
    assert backup and Path(backup).parent == tmp_path
    with pytest.raises(RegwizardError) as info:
        local.replace_file(str(target), b"#" * 200_000, backup=backup)
    e = info.value
    assert "failed part-way" in e.cause and f"restored from {backup}" in e.cause
    assert "No space left on device" in e.evidence
    assert target.read_bytes() == b"127.0.0.1 localhost\n"  # the old content is back
    assert target.stat().st_ino == inode
    assert leftovers(tmp_path) == []


def test_failed_in_place_write_without_a_usable_backup_says_so(
    local: LocalHost, tmp_path: Path, full_mount: tuple[Path, Path]
) -> None:
    target, _ = full_mount
    with pytest.raises(RegwizardError) as info:
        local.replace_file(str(target), b"#" * 200_000)
    assert "no backup was made" in info.value.cause and "may be incomplete" in info.value.cause
    missing = str(tmp_path / "no-such-backup")
    with pytest.raises(RegwizardError) as info:
        local.replace_file(str(target), b"#" * 200_000, backup=missing)
    assert "restoring it from" in info.value.cause and "may be damaged" in info.value.cause
    assert missing in info.value.fix


def test_truncated_input_leaves_the_file_alone(local: LocalHost, tmp_path: Path) -> None:
    """The whole stdin is received and counted before the target is touched."""
    target = tmp_path / "hosts"
    target.write_bytes(b"old\n")
    inode = target.stat().st_ino
    real = local._sh

    def short_input(script: str, *args: str, **kw: object):
        kw["input"] = kw["input"][:3]  # as if the connection dropped mid-transfer
        return real(script, *args, **kw)

    local._sh = short_input  # type: ignore[method-assign]
    with pytest.raises(RegwizardError) as info:
        local.replace_file(str(target), b"new content\n")
    assert "received 3 of 12 bytes" in str(info.value)
    assert target.read_bytes() == b"old\n" and target.stat().st_ino == inode
    assert leftovers(tmp_path) == []
