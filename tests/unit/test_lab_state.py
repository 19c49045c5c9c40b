"""The lab's saved state: a file from another regwizard version never stops cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regwizard import lab as labmod


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(labmod, "STATE_DIR", tmp_path)
    return tmp_path


def _node(**extra: object) -> dict[str, object]:
    return {"name": "node1", "ip": "10.0.0.2", "netns": "rwlab-node1", "veth": "rwl-node1",
            "root": "/x", "init_pid": 0, **extra}  # fmt: skip


def test_fields_from_a_newer_version_are_ignored(state_dir: Path) -> None:
    data = {"nodes": {"node1": _node(runtimes=["docker"], future=1)}, "key_file": "k", "new": 2}
    (state_dir / "lab.json").write_text(json.dumps(data))
    st = labmod.LabState.load()
    assert st is not None and st.key_file == "k" and st.nodes["node1"].netns == "rwlab-node1"


def test_round_trip(state_dir: Path) -> None:
    st = labmod.LabState(nodes={"node1": labmod.Node(**_node())}, verify_user="demo")
    st.save()
    assert labmod.LabState.load() == st


@pytest.mark.parametrize("text", ["{", "[]", '{"nodes": {"node1": {"ip": "x"}}}', '{"nodes": 3}'])
def test_an_unreadable_state_reads_as_none(state_dir: Path, text: str) -> None:
    (state_dir / "lab.json").write_text(text)
    assert labmod.LabState.load() is None
