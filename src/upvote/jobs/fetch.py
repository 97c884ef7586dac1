"""Download a corpus from a stranger's URL without letting the URL reach internal services (SSRF).

The rules, and why:
- http and https only, no credentials in the URL: other schemes (file://, ftp://, gopher://) read
  local files or speak to services the worker should never address for someone else.
- The host is resolved ONCE and every address it resolves to must be global (not loopback,
  private, link-local - which holds the cloud metadata service 169.254.169.254 -, multicast,
  reserved, unspecified; IPv4-mapped and 6to4/Teredo IPv6 addresses are judged by the IPv4 address
  inside). The connection then goes to that checked address with the Host header (and, for https,
  the certificate check) naming the host: a second lookup could answer differently (DNS
  rebinding) and so is never made.
- Redirects are followed by hand, each hop checked like the first, at most ``max_redirects``.
- The body is streamed to disk and capped (``max_download_bytes``); reads time out and the whole
  download has a deadline, so a trickling server cannot hold a worker forever.
- An operator may permit internal hosts explicitly (``UPVOTE_JOBS_ALLOW_HOSTS``: host names, IP
  addresses or CIDR networks).
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Connect = Callable[[tuple[str, int], float], socket.socket]

GiB = 1 << 30
MiB = 1 << 20
CHUNK_BYTES = 1 << 20  # the body is read and written this many bytes at a time
REDIRECTS = (301, 302, 303, 307, 308)
METADATA = ipaddress.ip_address("169.254.169.254")
USER_AGENT = "upvote-corpus-fetcher"
# what an address is, in the order a refusal names it (127.0.0.1 is also "private" to ipaddress)
KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
)


class FetchError(ValueError):
    """A corpus that cannot be fetched or used; the message is one line naming the reason."""


class TooLarge(FetchError):
    """The download went over ``FetchLimits.max_download_bytes`` (a caller that lowered the
    limit to a quota can say so)."""


@dataclass(frozen=True)
class FetchLimits:
    """The one home of the limits of fetching and extracting a corpus (sizes in bytes, times in
    seconds). The text limit is separate from the download limit because a small compressed file
    can inflate to almost anything (gzip and zip bombs)."""

    max_download_bytes: int = 2 * GiB
    max_text_bytes: int = 8 * GiB
    max_members: int = 10_000  # files in a zip or tar archive
    max_redirects: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # the longest wait for the next bytes of the response
    max_seconds: float = 3600.0  # the whole download, redirects included
    sniff_bytes: int = MiB  # the start of each text that is checked for binary content


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks an operator permits although they are not public addresses."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> AllowList:
        """From ``"name, 10.0.0.7, 10.20.0.0/16"`` (the setting) or a list of such entries."""
        entries = text.split(",") if isinstance(text, str) else list(text or ())
        hosts, networks = set(), []
        for entry in (entry.strip().strip("[]").lower() for entry in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def permits(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in network for network in self.networks)


def format_bytes(n: int) -> str:
    """2147483648 -> "2 GiB", 1536 -> "1.5 KiB": limits in messages a person reads."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def address_problem(address: IPAddress) -> str | None:
    """Why the address is not a public one ("private", "loopback", ...), or None when it is.

    An IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo)
    is judged by that IPv4 address as well: a connection to it may end at the IPv4 host."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, (address.teredo or (None, None))[1]]
        for inner in filter(None, embedded):
            problem = address_problem(inner)
            if problem is not None:
                return problem
        if address.ipv4_mapped is not None:
            return None
    if address == METADATA:
        return "cloud metadata"
    for attribute, kind in KINDS:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "not global"


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the addresses resolved once) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def check_url(url: str, allow: AllowList) -> Target:
    """Parse and resolve the URL once; a FetchError unless every address may be reached."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise FetchError(f"not a valid URL: {url!r} ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"refused: scheme {scheme or 'none'!r} (only http and https URLs)")
    if parts.username is not None or parts.password is not None:
        raise FetchError("refused: credentials in the URL")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError(f"not a valid URL: {url!r} (no host)")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"cannot resolve host {host!r} ({error})") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0])
        address = ipaddress.ip_address(text.split("%")[0])
        problem = address_problem(address)
        if problem is not None and not allow.permits(host, address):
            raise FetchError(f"refused: {address} ({problem}) is not a public address")
        if text not in addresses:
            addresses.append(text)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url, scheme, host, port, path, tuple(addresses))


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to an address checked beforehand; the Host header and the TLS
    certificate check still name the host, so virtual hosts and https work as usual."""

    def __init__(self, target: Target, limits: FetchLimits, connect: Connect) -> None:
        super().__init__(target.host, target.port, timeout=limits.read_timeout)
        self.target, self.limits, self.connect_to = target, limits, connect

    def connect(self) -> None:
        error: OSError | None = None
        for address in self.target.addresses:
            try:
                sock = self.connect_to((address, self.target.port), self.limits.connect_timeout)
                break
            except OSError as failure:
                error = failure
        else:
            raise error or OSError("no address")
        sock.settimeout(self.limits.read_timeout)
        if self.target.scheme == "https":
            context = ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=self.target.host)
            except BaseException:
                sock.close()  # a failed handshake leaves no socket behind
                raise
        self.sock = sock


def download_name(url: str) -> str:
    """A safe file name from the URL's last path segment (shown to people; content decides the
    format), or "download"."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:100]
    return name or "download"


def fetch(
    url: str,
    dest_dir: str | Path,
    limits: FetchLimits | None = None,
    *,
    allow_hosts: str | Iterable[str] | None = None,
    connect: Connect = socket.create_connection,
) -> Path:
    """Download the corpus at ``url`` into ``dest_dir``; the path of the file written.

    ``allow_hosts`` (default: the ``jobs_allow_hosts`` setting) permits non-public hosts;
    ``connect`` opens the TCP connection to a checked address (socket.create_connection)."""
    limits = limits or FetchLimits()
    if allow_hosts is None:
        from upvote.settings import get_settings

        allow_hosts = get_settings().jobs_allow_hosts
    allow = AllowList.parse(allow_hosts)
    deadline = time.monotonic() + limits.max_seconds
    dest = Path(dest_dir) / download_name(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    current = url
    for _hop in range(limits.max_redirects + 1):
        target = check_url(current, allow)
        connection = _PinnedConnection(target, limits, connect)
        try:
            response = _request(connection, target)
            location = response.getheader("Location")
            if response.status in REDIRECTS and location:
                current = urljoin(target.url, location.strip())
                continue
            if response.status != 200:
                raise FetchError(f"HTTP {response.status} {response.reason} from {target.url}")
            _save(response, dest, limits, deadline)
            return dest
        finally:
            connection.close()
    raise FetchError(f"too many redirects (more than {limits.max_redirects})")


def _request(connection: _PinnedConnection, target: Target) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    try:
        connection.request("GET", target.path, headers=headers)
        return connection.getresponse()
    except ssl.SSLCertVerificationError as error:
        raise FetchError(f"TLS certificate of {target.host} not valid ({error.reason})") from None
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"cannot fetch {target.url} ({error or type(error).__name__})") from None


def _save(response: http.client.HTTPResponse, dest: Path, limits: FetchLimits, deadline: float):
    """Stream the body to ``dest`` under the size cap and the deadline (nothing left on error)."""
    too_large = f"download larger than the {format_bytes(limits.max_download_bytes)} limit"
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > limits.max_download_bytes:
        raise TooLarge(too_large)
    total = 0
    try:
        with open(dest, "wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                total += len(chunk)
                if total > limits.max_download_bytes:
                    raise TooLarge(too_large)
                if time.monotonic() > deadline:
                    raise FetchError(f"download took longer than {limits.max_seconds:g} s")
                out.write(chunk)
    except (OSError, http.client.HTTPException) as error:
        dest.unlink(missing_ok=True)
        raise FetchError(f"download failed ({error or type(error).__name__})") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
