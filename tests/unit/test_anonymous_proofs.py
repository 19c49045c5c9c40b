"""The anonymous push and pull of verification carry no credentials, even when the
machine running regwizard has a saved `docker login` (found on the lab: docker-py sends
~/.docker/config.json's login whenever auth_config is None, so an "anonymous" push
went through and verification said the registry accepts anonymous pushes)."""

from __future__ import annotations

from pathlib import Path

import docker.auth
import docker.utils

from regwizard.steps import verify


class Api:
    def __init__(self) -> None:
        self.auth_configs: list = []

    def push(self, repo, tag=None, stream=True, decode=True, auth_config=None):  # noqa: ANN001, ANN201
        self.auth_configs.append(auth_config)
        return iter([{"error": "no basic auth credentials",
                      "errorDetail": {"message": "no basic auth credentials"}}])  # fmt: skip

    def pull(self, repo, tag=None, stream=True, decode=True, auth_config=None):  # noqa: ANN001, ANN201
        self.auth_configs.append(auth_config)
        return iter([{"error": "no basic auth credentials"}])


class Client:
    def __init__(self) -> None:
        self.api = Api()


def test_anonymous_push_and_pull_send_an_explicit_empty_auth():
    c = Client()
    digest, err = verify._anonymous_push(c, "reg.example.test/regwizard/probe:verify")
    assert (digest, err) == ("", "no basic auth credentials")
    assert verify._anonymous_pull(c, "reg.example.test/lab/only:v1") == "no basic auth credentials"
    assert c.api.auth_configs == [{}, {}]  # never None: None means "the saved logins"


def test_docker_py_encodes_the_empty_auth_as_no_credentials(tmp_path: Path, monkeypatch):
    """What dockerd receives for NO_AUTH: an X-Registry-Auth of {}; and what None would
    have sent with a saved login in ~/.docker/config.json."""
    import base64
    import json

    assert json.loads(base64.urlsafe_b64decode(docker.auth.encode_header(verify.NO_AUTH))) == {}
    cfg = tmp_path / ".docker" / "config.json"
    cfg.parent.mkdir()
    saved = base64.b64encode(b"demo:secret-password").decode()
    cfg.write_text(json.dumps({"auths": {"reg.example.test": {"auth": saved}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg.parent))
    loaded = docker.auth.load_config()
    assert loaded.resolve_authconfig("reg.example.test")["password"] == "secret-password"
    assert docker.utils.config.find_config_file() == str(cfg)
