"""The Docker SDK over a byte stream we open ourselves.

The SDK's own ``ssh://`` support makes its own paramiko connection (system known_hosts,
no passwords, no sudo). Here every HTTP connection of a :class:`docker.APIClient` is
instead a stream returned by an *opener* callable: on SSH hosts an exec channel on the
host's one paramiko Transport running ``docker system dial-stdio`` (sudo'd when needed),
locally a socketpair wired to a ``sudo docker system dial-stdio`` process.

    client_over(opener, timeout=60) -> docker.DockerClient
        opener(timeout) -> a socket-like object (sendall/recv/makefile/settimeout/close).
        The API version is negotiated with the daemon (``GET /version``), capped at
        what this SDK knows; a daemon that cannot be reached raises the SDK/requests
        exception (callers turn it into a clear RegwizardError).
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import docker
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util
from docker import constants as docker_constants
from docker.transport.basehttpadapter import BaseHTTPAdapter
from docker.transport.sshconn import SSHConnectionPool
from docker.utils import version_lt

Opener = Callable[[float], Any]

#: Version used before negotiation (never sent except for GET /version, which is unversioned).
PINNED_API_VERSION = "1.41"
_BASE_URL = "http+docker://ssh"
_POOL_KEY = "dial-stdio"


class ChannelConnection(urllib3.connection.HTTPConnection):
    """One HTTP connection = one stream from the opener (e.g. one dial-stdio channel)."""

    def __init__(self, opener: Opener, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._opener = opener
        self._default_timeout = timeout
        self.timeout = timeout

    def connect(self) -> None:
        t = self.timeout if isinstance(self.timeout, int | float) else self._default_timeout
        self.sock = self._opener(t)


class ChannelConnectionPool(SSHConnectionPool):
    """Inherits the SDK's ``_get_conn`` (no ``fileno()`` probing of paramiko channels)."""

    scheme = "ssh"

    def __init__(self, opener: Opener, timeout: float, maxsize: int) -> None:
        urllib3.connectionpool.HTTPConnectionPool.__init__(
            self, "localhost", timeout=timeout, maxsize=maxsize
        )
        self._opener = opener
        self.timeout = timeout
        self.ssh_transport = None
        self.ssh_host = None

    def _new_conn(self) -> ChannelConnection:
        return ChannelConnection(self._opener, self.timeout)


class _RetryDroppedStream(urllib3.util.Retry):
    """Retry an idempotent call once when its pooled stream turned out to be closed.

    urllib3 cannot probe a paramiko channel for a far-end close before reusing it (the
    SDK's SSH pool skips that probe too), so a stream closed between two calls fails the
    next one with "Remote end closed connection without response". Seen once in about a
    hundred preflights while 9 hosts were checked at once. A read timeout is raised at
    once, as without retries: a hung daemon is not waited for twice.
    """

    def increment(self, method=None, url=None, response=None, error=None, *a, **kw):  # noqa: ANN001
        if isinstance(error, urllib3.exceptions.ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, *a, **kw)


def _retry_policy() -> urllib3.util.Retry:
    return _RetryDroppedStream(
        total=1,
        connect=1,
        read=1,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
    )


class ChannelHTTPAdapter(BaseHTTPAdapter):
    __attrs__ = requests.adapters.HTTPAdapter.__attrs__ + ["pools", "timeout", "max_pool_size"]

    def __init__(
        self,
        opener: Opener,
        timeout: float = 60,
        pool_connections: int = docker_constants.DEFAULT_NUM_POOLS_SSH,
        max_pool_size: int = docker_constants.DEFAULT_MAX_POOL_SIZE,
    ) -> None:
        self.opened = 0  # streams opened so far (observability / tests)
        self._lock = threading.Lock()

        def counting_opener(t: float) -> Any:
            stream = opener(t)
            with self._lock:
                self.opened += 1
            return stream

        self._opener = counting_opener
        self.timeout = timeout
        self.max_pool_size = max_pool_size
        self.pools = urllib3._collections.RecentlyUsedContainer(
            pool_connections, dispose_func=lambda p: p.close()
        )
        super().__init__()
        self.max_retries = _retry_policy()  # GET/HEAD once more on a fresh stream

    def get_connection(self, url, proxies=None):  # noqa: ANN001 - requests' signature
        # One pool for every URL: they all reach the same daemon. (The SDK's SSH adapter
        # keys pools by full URL, so each API path opened its own dial-stdio stream.)
        with self.pools.lock:
            pool = self.pools.get(_POOL_KEY)
            if pool:
                return pool
            pool = ChannelConnectionPool(self._opener, self.timeout, self.max_pool_size)
            self.pools[_POOL_KEY] = pool
        return pool


class _Client(docker.DockerClient):
    """A DockerClient around an APIClient we built ourselves."""

    def __init__(self, api: docker.APIClient, adapter: BaseHTTPAdapter | None = None) -> None:
        self.api = api
        self.adapter = adapter


def negotiate_version(api: docker.APIClient, timeout: float) -> str:
    """Ask the daemon for its API version; use min(daemon, SDK default)."""
    res = api._get(api._url("/version", versioned_api=False), timeout=timeout)
    server = api._result(res, json=True).get("ApiVersion") or PINNED_API_VERSION
    ours = docker_constants.DEFAULT_DOCKER_API_VERSION
    chosen = server if version_lt(server, ours) else ours
    if version_lt(chosen, docker_constants.MINIMUM_DOCKER_API_VERSION):
        raise docker.errors.InvalidVersion(
            f"the Docker engine speaks API {server}; at least "
            f"{docker_constants.MINIMUM_DOCKER_API_VERSION} is needed"
        )
    api._version = chosen
    return chosen


def client_over(
    opener: Opener, *, timeout: float = 60, max_pool_size: int = 4
) -> docker.DockerClient:
    """A DockerClient whose every HTTP connection is ``opener(timeout)``.

    At most ``max_pool_size`` idle streams are kept (sshd's MaxSessions defaults to 10
    channels per connection, shared with commands); extra concurrent calls open
    short-lived streams.
    """
    api = docker.APIClient(
        base_url="tcp://localhost:2375", version=PINNED_API_VERSION, timeout=timeout
    )
    adapter = ChannelHTTPAdapter(opener, timeout, max_pool_size=max_pool_size)
    api._custom_adapter = adapter
    api.mount(_BASE_URL, adapter)
    api._unmount("http://", "https://")
    api.base_url = _BASE_URL
    client = _Client(api, adapter)
    try:
        negotiate_version(api, min(timeout, 30))
    except BaseException:
        client.close()
        raise
    return client


def unix_client(path: str, *, timeout: float = 60) -> docker.DockerClient:
    """A DockerClient on a local unix socket, with the API version negotiated."""
    client = docker.DockerClient(
        base_url=f"unix://{path}", version=PINNED_API_VERSION, timeout=timeout
    )
    try:
        negotiate_version(client.api, min(timeout, 30))
    except BaseException:
        client.close()
        raise
    return client


class ProcessStream:
    """A socket to a local process (e.g. ``sudo docker system dial-stdio``).

    The process gets one end of a socketpair as stdin+stdout; we keep the other end.
    ``prefix`` (a sudo password line) is sent first. Closing kills the process if it
    has not gone away on EOF.
    """

    def __init__(self, argv: list[str], prefix: bytes, timeout: float) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=theirs,
                stdout=theirs,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            theirs.close()
        self._sock = ours
        self._sock.settimeout(timeout)
        if prefix:
            self._sock.sendall(prefix)

    # socket-like surface used by http.client / urllib3
    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def recv(self, n: int) -> bytes:
        return self._sock.recv(n)

    def makefile(self, *args: Any, **kwargs: Any) -> Any:
        return self._sock.makefile(*args, **kwargs)

    def settimeout(self, t: float | None) -> None:
        self._sock.settimeout(t)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def fileno(self) -> int:
        return self._sock.fileno()

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        try:  # EOF for the process now, even while http.client still holds a makefile()
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
