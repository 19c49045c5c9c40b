"""The probe image is made here as a ``docker save`` archive and loaded, not built: the
same reference always gives the same bytes, so a rerun pushes what the registry holds."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import docker.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regwizard.steps import verify
from regwizard.steps.base import StepError
from tests.unit import test_early_proof_pinned as early

REF = "reg.lab.test/regwizard/probe:verify"


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_archive_is_what_docker_load_reads():
    files = _members(verify.probe_image(REF, "amd64"))
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == [REF]
    config_bytes = files[entry["Config"]]
    # docker names the config by its digest, and the layer by its diff ID
    assert entry["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
    (layer_name,) = entry["Layers"]
    layer = files[layer_name]
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["created"] == verify.PROBE_CREATED
    assert config["config"]["Labels"] == {"io.regwizard.probe": "true"}
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mtime, member.mode) == ("probe.txt", 0, 0o644)
        assert tar.extractfile(member).read() == f"regwizard verification v1 {REF}\n".encode()


def test_the_same_reference_gives_the_same_bytes_and_a_note_a_new_layer():
    assert verify.probe_image(REF, "amd64") == verify.probe_image(REF, "amd64")
    assert verify.probe_image(REF, "amd64") != verify.probe_image(REF, "arm64")
    plain = _members(verify.probe_image(REF, "amd64"))
    noted = _members(verify.probe_image(REF, "amd64", "failover 1"))
    layers = lambda f: json.loads(f["manifest.json"])[0]["Layers"]  # noqa: E731
    assert layers(plain) != layers(noted)


@given(
    st.from_regex(
        r"[a-z0-9.-]{1,30}(:[0-9]{1,5})?/[a-z0-9/_-]{1,40}:[A-Za-z0-9_.-]{1,40}", fullmatch=True
    ),
    st.sampled_from(["amd64", "arm64", "ppc64le", "s390x"]),
    st.text(max_size=60),
)
def test_any_reference_gives_a_consistent_deterministic_archive(ref, arch, note):
    archive = verify.probe_image(ref, arch, note)
    assert archive == verify.probe_image(ref, arch, note)
    files = _members(archive)
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == [ref]
    config = json.loads(files[entry["Config"]])
    layer = files[entry["Layers"][0]]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["architecture"] == arch


class _MissingImages:
    def __init__(self, log: list, fail: bool = False) -> None:
        self.log, self.fail = log, fail

    def get(self, ref):  # noqa: ANN001, ANN201 - no probe on this client yet
        raise docker.errors.ImageNotFound(ref)

    def load(self, data):  # noqa: ANN001, ANN201
        self.log.append(("load", data))
        if self.fail:
            raise docker.errors.APIError("load refused: no space left on device")
        return []


def test_a_client_without_the_probe_loads_it_for_its_own_architecture():
    log: list = []
    ctx, client = early._ctx(untrusted=True, log=log)
    client.host.client.images = _MissingImages(log)
    client.host.client.version = lambda: {"Arch": "arm64"}
    with pytest.raises(StepError):  # the fakes end at the pinned check
        verify.Verify().apply(ctx, client, verify.VerifyChange("always verified"))
    (loaded,) = [data for kind, data in log if kind == "load"]
    assert loaded == verify.probe_image(verify._ref(ctx), "arm64")
    assert log[-1] == ("push", {})  # then the anonymous push, of what was loaded


def test_a_failed_load_is_one_step_error_and_nothing_is_pushed():
    log: list = []
    ctx, client = early._ctx(untrusted=False, log=log)
    client.host.client.images = _MissingImages(log, fail=True)
    client.host.client.version = lambda: {"Arch": "amd64"}
    with pytest.raises(StepError, match="loading the probe image") as err:
        verify.Verify().apply(ctx, client, verify.VerifyChange("always verified"))
    assert "docker load" in err.value.fix
    assert [kind for kind, _ in log] == ["load"]
