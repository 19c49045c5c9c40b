"""8. The registry image on the registry host: present, loaded from an archive, or pulled.

A reference may pin a digest (``registry:2@sha256:...``): it is pulled by that digest."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from regwizard.diagnose import clean
from regwizard.plan import split_image
from regwizard.progress import Reporter
from regwizard.steps.base import DOCKER_TIMEOUT, Change, Ctx, HostEntry, Step, StepError, Unchanged


@dataclass(frozen=True)
class ImageChange(Change):
    archive: str = ""  # load from this `docker save` tar instead of pulling


class CountingReader:
    """A file read by the Docker client as it sends it: every chunk read is progress.

    ``len()`` gives requests the Content-Length (the body is streamed, not buffered)."""

    def __init__(self, fh: BinaryIO, size: int, on_read: Callable[[int], None]) -> None:
        self._fh = fh
        self._size = size
        self._on_read = on_read
        self.read_bytes = 0

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.read_bytes += len(data)
        self._on_read(self.read_bytes)
        return data


def pull_args(image: str) -> tuple[str, str]:
    """(repository, tag-or-digest) for the Engine API's pull: a digest wins over a tag."""
    name, tag, digest = split_image(image)
    return name, digest or tag


class Image(Step[ImageChange]):
    name = "image"
    title = "Registry image"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        reg = ctx.plan.registry
        if reg.image_archive:
            return (f"docker load < {shlex.quote(reg.image_archive)}",)
        return (shlex.join(["docker", "pull", reg.image]),)

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | ImageChange:
        import docker.errors

        reg = ctx.plan.registry
        try:
            e.host.docker(DOCKER_TIMEOUT).images.get(reg.image)
            return Unchanged(f"{reg.image} present")
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as ex:  # a malformed reference the plan let through
            raise StepError(
                f"Docker refuses the image reference {reg.image}: {clean(str(ex.explanation))}",
                "write registry.image as name[:tag][@sha256:digest], e.g. registry:2",
            ) from ex
        if reg.image_archive:
            return ImageChange(
                f"load {reg.image} from {reg.image_archive}", self.script(ctx), reg.image_archive
            )
        return ImageChange(f"pull {reg.image}", self.script(ctx))

    def apply(self, ctx: Ctx, e: HostEntry, change: ImageChange) -> str:
        image = ctx.plan.registry.image
        client = e.host.docker(600)
        if change.archive:
            return self._load(ctx, e, client, change.archive)
        repo, ref = pull_args(image)
        last = 0.0
        try:
            for item in client.api.pull(repo, tag=ref, stream=True, decode=True):
                if "error" in item:
                    raise StepError(
                        f"pulling {image} failed: {clean(str(item['error']))}",
                        "check the host's network, or set image_archive to a `docker save` tar",
                    )
                if time.monotonic() - last > 1 or "progress" not in item:
                    last = time.monotonic()
                    ctx.log(
                        self.name, e, clean(f"{item.get('status', '')} {item.get('progress', '')}")
                    )
        except StepError:
            raise
        except Exception as ex:  # noqa: BLE001
            raise StepError(
                f"pulling {image} failed: {clean(str(ex))}",
                "check the host's network, or set image_archive to a `docker save` tar",
            ) from ex
        ctx.forget(e)
        return f"pulled {image}"

    def _load(self, ctx: Ctx, e: HostEntry, client, archive: str) -> str:  # noqa: ANN001
        image = ctx.plan.registry.image
        path = os.path.expanduser(archive)
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as fh:
                ctx.log(self.name, e, f"loading {archive} ({size // 2**20} MiB)")
                sent = Reporter(ctx.emit, self.name, e.label, "loading registry image", size)
                sent.update(0)
                loaded = client.images.load(CountingReader(fh, size, sent.update))
        except OSError as ex:
            raise StepError(
                f"cannot read the image archive {archive}: {ex.strerror}",
                "give the path of a `docker save` tar on this machine",
            ) from ex
        tags = [t for img in loaded for t in img.tags]
        ctx.log(self.name, e, f"loaded {', '.join(tags) or 'image'}")
        if image not in tags:
            raise StepError(
                f"{archive} does not contain {image} (it has {', '.join(tags) or 'no tags'})",
                f"save the right image: docker save {image} -o {archive}",
            )
        return f"loaded {image} from {archive}"
