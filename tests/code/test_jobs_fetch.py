"""The corpus fetcher of embedding jobs: a real HTTP server on 127.0.0.1 serves real files.

The loopback server is reachable only through the allow-list, which is itself what the positive
tests check. Refusals must happen before any connection: every fetch here connects through a
recording wrapper of socket.create_connection, and the refusal tests assert it was never called
(nothing here ever connects to 10.x or 169.254.x)."""

import bz2
import gzip
import io
import lzma
import socket
import ssl
import subprocess
import tarfile
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from upvote.embeddings.corpus import iter_documents
from upvote.jobs.extract import extract
from upvote.jobs.fetch import FetchError, FetchLimits, address_problem, fetch

TEXT = "the quick brown fox\njumps over the lazy dog\nhacker news story titles\n"
LOCAL = "127.0.0.1"


class Handler(SimpleHTTPRequestHandler):
    """Files of the served folder, plus /redirect?to=URL answering 302 to that URL."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """(folder served, base URL, server) of a real HTTP server on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer((LOCAL, 0), partial(Handler, directory=str(root)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://{LOCAL}:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


class Connections:
    """socket.create_connection, recording every address it is asked to connect to."""

    def __init__(self):
        self.addresses = []

    def __call__(self, address, timeout):
        self.addresses.append(address[0])
        assert address[0] in (LOCAL, "::1"), f"connected to {address}"
        return socket.create_connection(address, timeout)


def get(url, dest, limits=None, allow=LOCAL, connections=None):
    return fetch(url, dest, limits, allow_hosts=allow, connect=connections or Connections())


def documents(path):
    return [document.split() for document in iter_documents(path)]


EXPECTED = [line.split() for line in TEXT.splitlines()]


def tar_bytes(files, mode="w:gz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def parquet_bytes(table):
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


FORMATS = {
    "corpus.txt": TEXT.encode(),
    "corpus.txt.gz": gzip.compress(TEXT.encode()),
    "corpus.txt.bz2": bz2.compress(TEXT.encode()),
    "corpus.txt.xz": lzma.compress(TEXT.encode()),
    "texts.zip": zip_bytes({"one.txt": TEXT[:20].encode(), "two.txt": TEXT[20:].encode()}),
    "texts.tar.gz": tar_bytes({"a/one.txt": TEXT[:20].encode(), "b/two.txt": TEXT[20:].encode()}),
    "texts.tar": tar_bytes({"one.txt": TEXT.encode()}, mode="w"),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_fetches_and_extracts_each_format(served, tmp_path, name):
    root, base, server = served
    (root / name).write_bytes(FORMATS[name])
    connections = Connections()
    downloaded = get(f"{base}/{name}", tmp_path / "job", connections=connections)
    assert downloaded.read_bytes() == FORMATS[name]
    assert connections.addresses == [LOCAL]
    assert server.requests == [f"/{name}"]
    corpus = extract(downloaded, tmp_path / "job")
    words = [word for document in documents(corpus) for word in document]
    assert words == TEXT.split()  # archive members keep their order; nothing lost or added
    if name in ("corpus.txt", "corpus.txt.gz", "corpus.txt.bz2", "corpus.txt.xz", "texts.tar"):
        assert documents(corpus) == EXPECTED


def test_parquet_column(served, tmp_path):
    root, base, _ = served
    table = pa.table({"title": ["x", "y", "z"], "body": TEXT.splitlines()})
    (root / "items.parquet").write_bytes(parquet_bytes(table))
    downloaded = get(f"{base}/items.parquet", tmp_path)
    assert documents(extract(downloaded, tmp_path, column="body")) == EXPECTED
    with pytest.raises(FetchError, match=r"^column 'text' not found; columns: title, body$"):
        extract(downloaded, tmp_path, column="text")


def test_redirect_is_followed_on_the_allowed_server(served, tmp_path):
    root, base, server = served
    (root / "corpus.txt").write_text(TEXT)
    downloaded = get(f"{base}/redirect?to=/corpus.txt", tmp_path)
    assert downloaded.read_text() == TEXT
    assert server.requests == ["/redirect?to=/corpus.txt", "/corpus.txt"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x.txt", r"refused: 127\.0\.0\.1 \(loopback\) is not a public address"),
        ("http://10.1.2.3/x.txt", r"refused: 10\.1\.2\.3 \(private\) is not a public address"),
        ("http://169.254.169.254/latest/meta-data/", r"169\.254\.169\.254 \(cloud metadata\)"),
        ("http://[::1]:8080/x.txt", r"refused: ::1 \(loopback\)"),
        ("http://localhost/x.txt", r"refused: (127\.0\.0\.1|::1) \(loopback\)"),
        ("http://[::ffff:127.0.0.1]/", r"refused: ::ffff:7f00:1 \(loopback\)"),
        ("http://[::ffff:10.0.0.1]/", r"\(private\)"),
        ("http://[2002:a00:1::1]/", r"\(private\)"),  # 6to4 of 10.0.0.1
        ("http://0.0.0.0/", r"\(unspecified\)"),
        ("ftp://example.com/x.txt", r"scheme 'ftp'"),
        ("file:///etc/passwd", r"scheme 'file'"),
        ("http://user:secret@example.com/x.txt", r"credentials in the URL"),
    ],
)
def test_refused_before_any_connection(tmp_path, url, reason):
    connections = Connections()
    with pytest.raises(FetchError, match=reason):
        fetch(url, tmp_path, allow_hosts="", connect=connections)
    assert connections.addresses == []
    assert list(tmp_path.iterdir()) == []


def test_redirect_to_a_private_address_is_refused_at_the_hop(served, tmp_path):
    _, base, server = served
    connections = Connections()
    with pytest.raises(FetchError, match=r"refused: 10\.0\.0\.1 \(private\)"):
        get(f"{base}/redirect?to=http://10.0.0.1/corpus.txt", tmp_path, connections=connections)
    assert connections.addresses == [LOCAL]  # the first hop only
    assert server.requests == ["/redirect?to=http://10.0.0.1/corpus.txt"]


def test_too_many_redirects(served, tmp_path):
    _, base, server = served
    url = f"{base}/redirect?to=/redirect?to=/redirect?to=/corpus.txt"
    with pytest.raises(FetchError, match=r"^too many redirects \(more than 1\)$"):
        get(url, tmp_path, FetchLimits(max_redirects=1))
    assert len(server.requests) == 2


def test_allow_list_accepts_networks_and_names(served, tmp_path):
    root, base, _ = served
    (root / "corpus.txt").write_text(TEXT)
    port = base.rsplit(":", 1)[1]
    assert get(f"{base}/corpus.txt", tmp_path, allow="10.0.0.0/8, 127.0.0.0/8").exists()
    assert get(f"http://localhost:{port}/corpus.txt", tmp_path, allow="LocalHost").exists()
    with pytest.raises(FetchError, match="loopback"):
        get(f"{base}/corpus.txt", tmp_path, allow="10.0.0.0/8, localhost")


def test_public_addresses_pass():
    from ipaddress import ip_address

    for address in ("8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"):
        assert address_problem(ip_address(address)) is None


def test_oversize_download_stopped_at_the_cap(served, tmp_path):
    root, base, _ = served
    (root / "big.txt").write_bytes(b"word " * 100_000)
    with pytest.raises(FetchError, match=r"^download larger than the 100 KiB limit$"):
        get(f"{base}/big.txt", tmp_path, FetchLimits(max_download_bytes=100 << 10))
    assert not (tmp_path / "big.txt").exists()


def test_http_error_named(served, tmp_path):
    _, base, _ = served
    with pytest.raises(FetchError, match=r"^HTTP 404 .* from http://127\.0\.0\.1:\d+/nope\.txt$"):
        get(f"{base}/nope.txt", tmp_path)


def test_gzip_bomb_stopped_at_the_text_cap(tmp_path):
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:  # 50 MB of text, about 100 KB on disk
        for _ in range(50):
            f.write(b"a " * 500_000)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(FetchError, match=r"^decompressed text larger than the 4 MiB limit$"):
        extract(bomb, tmp_path / "out", limits=FetchLimits(max_text_bytes=4 << 20))
    assert list((tmp_path / "out").iterdir()) == []  # no partial output
    zeros = tmp_path / "zeros.gz"
    zeros.write_bytes(gzip.compress(bytes(50_000_000)))
    with pytest.raises(FetchError, match=r"^not text: binary content in the gzip stream"):
        extract(zeros, tmp_path / "out")


def test_zip_bomb_stopped_at_the_text_cap(tmp_path):
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bytes({f"{i}.txt": b"b " * 1_000_000 for i in range(10)}))
    with pytest.raises(FetchError, match=r"larger than the 5 MiB limit"):
        extract(bomb, tmp_path / "out", limits=FetchLimits(max_text_bytes=5 << 20))


def zip_with_symlink():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.txt", TEXT)
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16) | 0x20  # a symbolic link to /etc/passwd
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def tar_with(member):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(member, io.BytesIO(TEXT.encode()) if member.isreg() else None)
    return buffer.getvalue()


def tar_member(name, kind=tarfile.REGTYPE, target=""):
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, target
    member.size = len(TEXT) if kind == tarfile.REGTYPE else 0
    return member


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (zip_bytes({"ok.txt": TEXT, "../evil.txt": TEXT}), r"'\.\./evil\.txt': a path outside"),
        (zip_bytes({"/etc/cron.d/x": TEXT}), r"'/etc/cron\.d/x': an absolute path"),
        (zip_with_symlink(), r"'link': a symbolic link"),
        (tar_with(tar_member("../../evil.txt")), r"a path outside the archive"),
        (tar_with(tar_member("link", tarfile.SYMTYPE, "/etc/passwd")), r"'link': a link"),
        (tar_with(tar_member("hard", tarfile.LNKTYPE, "ok.txt")), r"'hard': a link"),
        (tar_with(tar_member("dev", tarfile.CHRTYPE)), r"'dev': a device file"),
        (zip_bytes({f"{i}.txt": TEXT for i in range(6)}), r"too many files .*more than 5"),
        (tar_bytes({f"{i}.txt": TEXT.encode() for i in range(6)}), r"too many files"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, r"not text: binary content in the file"),
        (bytes(range(128, 256)) * 20, r"not text: binary content in the file \(invalid UTF-8\)"),
        (zip_bytes({"ok.txt": TEXT, "x.bin": bytes(100)}), r"binary content in 'x\.bin'"),
        (b"", r"^empty corpus: no text found$"),
        (b"  \n\n \t\n", r"^empty corpus"),
        (gzip.compress(b""), r"^empty corpus"),
        (zip_bytes({"dir/": b""}), r"^empty corpus"),
        (b"\x1f\x8b\x08\x00garbage" * 10, r"corrupt gzip"),
        (b"PK\x03\x04garbage", r"corrupt zip"),
    ],
)
def test_bad_corpora_refused(tmp_path, data, reason):
    corpus = tmp_path / "corpus"
    corpus.write_bytes(data)
    with pytest.raises(FetchError, match=reason) as raised:
        extract(corpus, tmp_path / "out", limits=FetchLimits(max_members=5))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out" / "corpus.txt").exists()


def test_parquet_without_a_text_column(tmp_path):
    corpus = tmp_path / "c.parquet"
    corpus.write_bytes(parquet_bytes(pa.table({"score": [1, 2], "body": ["a", "b"]})))
    with pytest.raises(FetchError, match=r"no title/text column; columns: score, body$"):
        extract(corpus, tmp_path)
    with pytest.raises(FetchError, match=r"^column 'score' is not text \(int64\)$"):
        extract(corpus, tmp_path, column="score")


def test_a_few_invalid_bytes_are_replaced_not_refused(tmp_path):
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(("word " * 200 + "caf\xe9\n").encode("latin-1"))
    out = extract(corpus, tmp_path / "out")
    assert out.read_text(encoding="utf-8").split()[-1] == "caf\ufffd"


@pytest.fixture
def served_tls(served, tmp_path):
    """The same server behind TLS, with a fresh self-signed certificate for 127.0.0.1."""
    root, base, server = served
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return root, base.replace("http://", "https://"), cert


def test_https_verifies_the_certificate_against_the_host(served_tls, tmp_path, monkeypatch):
    root, base, cert = served_tls
    (root / "corpus.txt").write_text(TEXT)
    with pytest.raises(FetchError, match=r"^TLS certificate of 127\.0\.0\.1 not valid"):
        get(f"{base}/corpus.txt", tmp_path / "untrusted")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted: the default context reads it
    assert get(f"{base}/corpus.txt", tmp_path / "trusted").read_text() == TEXT


def test_a_silent_server_times_out(tmp_path):
    with socket.create_server((LOCAL, 0)) as listener:  # accepts, never answers
        url = f"http://{LOCAL}:{listener.getsockname()[1]}/corpus.txt"
        with pytest.raises(FetchError, match=r"^cannot fetch .*timed out"):
            get(url, tmp_path, FetchLimits(read_timeout=0.3))


def test_redirect_to_another_scheme_is_refused(served, tmp_path):
    _, base, _ = served
    with pytest.raises(FetchError, match=r"^refused: scheme 'file'"):
        get(f"{base}/redirect?to=file:///etc/passwd", tmp_path)
