"""Turn a downloaded corpus (text, gzip/bz2/xz, zip or tar of text files, Parquet) into ONE UTF-8
text file, one document per line, that `upvote embed train` reads unchanged.

A stranger's file is hostile until read: everything is read as a stream and counted while it is
read, so a compression bomb stops at ``max_text_bytes`` and is never inflated fully; archive
members are read as streams and never extracted under their own names (no path traversal, no
absolute paths); links, device files and too many members end the job; the start of every text is
checked for binary content; an empty result is refused. The format is told by content, not name.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from upvote.jobs.fetch import CHUNK_BYTES, FetchError, FetchLimits, format_bytes

OUTPUT_NAME = "corpus.txt"
PARQUET_MAGIC = b"PAR1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
COMPRESSORS = (  # magic bytes -> the decompressing reader
    (b"\x1f\x8b", "gzip", lambda raw, mode: gzip.GzipFile(fileobj=raw, mode=mode)),
    (b"BZh", "bz2", bz2.BZ2File),
    (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile),
)
TAR_MAGIC_OFFSET = 257  # "ustar" in the first header block of a POSIX/GNU tar
HEAD_BYTES = 512
INVALID_UTF8_SHARE = 0.01  # more invalid UTF-8 than this in a text's start: binary, not text
SKIPPED_MEMBERS = ("__MACOSX/", ".DS_Store")  # macOS archive litter, binary by nature
DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)


class _TextSink:
    """The output file: counts every decompressed byte against the text cap as it arrives,
    checks the start of each text for binary content and keeps the output valid UTF-8."""

    def __init__(self, out: BinaryIO, limits: FetchLimits) -> None:
        self.out, self.limits = out, limits
        self.total = 0
        self.has_text = False

    def copy(self, stream: BinaryIO, name: str) -> None:
        """Append one text (a file, an archive member), ending it with a newline."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        seen, last = 0, b"\n"
        while True:
            try:
                chunk = stream.read(CHUNK_BYTES)
            except DECOMPRESS_ERRORS as error:
                raise FetchError(f"corrupt compressed data in {name} ({error})") from None
            if not chunk:
                break
            self.total += len(chunk)
            if self.total > self.limits.max_text_bytes:
                limit = format_bytes(self.limits.max_text_bytes)
                raise FetchError(f"decompressed text larger than the {limit} limit")
            text = decoder.decode(chunk)
            if seen < self.limits.sniff_bytes:
                self._check_start(chunk, text, seen, name)
            seen += len(chunk)
            self.has_text = self.has_text or (bool(text) and not text.isspace())
            self.out.write(text.replace("\0", " ").encode("utf-8"))
            last = chunk[-1:]
        tail = decoder.decode(b"", final=True)
        if tail:
            self.out.write(tail.encode("utf-8"))
        if last != b"\n" or tail:
            self.out.write(b"\n")

    def _check_start(self, chunk: bytes, text: str, seen: int, name: str) -> None:
        """NUL bytes, or invalid UTF-8 beyond a small share, in the first sniff_bytes: binary."""
        nul = chunk.find(b"\0", 0, self.limits.sniff_bytes - seen)
        if nul >= 0:
            raise FetchError(f"not text: binary content in {name} (a NUL byte at {seen + nul})")
        invalid = text.count("\ufffd") - chunk.count("\ufffd".encode())
        if invalid > max(1, INVALID_UTF8_SHARE * len(chunk)):
            raise FetchError(f"not text: binary content in {name} (invalid UTF-8)")

    def write_line(self, text: str) -> None:
        """One document (a Parquet cell) on one line."""
        data = (" ".join(text.split()) + "\n").encode("utf-8")
        self.total += len(data)
        if self.total > self.limits.max_text_bytes:
            limit = format_bytes(self.limits.max_text_bytes)
            raise FetchError(f"decompressed text larger than the {limit} limit")
        self.has_text = self.has_text or len(data) > 1
        self.out.write(data)


def extract(
    path: str | Path,
    dest_dir: str | Path,
    column: str | None = None,
    limits: FetchLimits | None = None,
) -> Path:
    """Write the documents of the corpus file at ``path`` to ``dest_dir/corpus.txt``; its path.

    ``column`` names the text column of a Parquet corpus (default: ``title``, else ``text``).
    Any bad corpus is a one-line FetchError, and no partial output is left behind."""
    path, limits = Path(path), limits or FetchLimits()
    dest = Path(dest_dir) / OUTPUT_NAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(OUTPUT_NAME + ".partial")
    try:
        with open(partial, "wb") as out:
            sink = _TextSink(out, limits)
            _extract_into(path, sink, column, limits)
        if not sink.has_text:
            raise FetchError("empty corpus: no text found")
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def _extract_into(path: Path, sink: _TextSink, column: str | None, limits: FetchLimits) -> None:
    with open(path, "rb") as raw:
        head = raw.read(HEAD_BYTES)
        raw.seek(0)
        if head.startswith(PARQUET_MAGIC):
            return _parquet(path, sink, column)
        if head.startswith(ZIP_MAGICS):
            return _zip(path, sink, limits)
        for magic, kind, reader in COMPRESSORS:
            if head.startswith(magic):
                with reader(raw, "rb") as compressed:
                    try:
                        inner = compressed.read(HEAD_BYTES)
                    except DECOMPRESS_ERRORS as error:
                        raise FetchError(f"corrupt {kind} file ({error})") from None
                    stream = _Prefixed(inner, compressed)
                    if _is_tar(inner):
                        return _tar(stream, sink, limits)
                    return sink.copy(stream, f"the {kind} stream")
        if _is_tar(head):
            return _tar(raw, sink, limits)
        return sink.copy(raw, "the file")


class _Prefixed:
    """A reader that gives ``head`` (already read to tell the format) before the rest of
    ``stream``: a decompressing stream cannot seek back cheaply."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(size)
        if size < 0:
            return self.head + self.stream.read()
        data, self.head = self.head[:size], self.head[size:]
        return data


def _is_tar(head: bytes) -> bool:
    return head[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + 5] == b"ustar"


def _member_problem(name: str) -> str | None:
    """Why an archive member name is refused: absolute, or climbing out with "..". The names are
    never used as paths here, but an archive built to attack extraction is not an honest corpus."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "a path outside the archive (..)"
    return None


def _skipped(name: str) -> bool:
    return name.startswith(SKIPPED_MEMBERS[0]) or name.rsplit("/", 1)[-1] == SKIPPED_MEMBERS[1]


def _zip(path: Path, sink: _TextSink, limits: FetchLimits) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise FetchError(f"corrupt zip file ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise FetchError(f"too many files in the archive (more than {limits.max_members})")
        for info in members:
            problem = _member_problem(info.filename)
            mode = info.external_attr >> 16
            if problem is None and stat.S_ISLNK(mode):
                problem = "a symbolic link"
            elif problem is None and _is_special(mode):
                problem = "a device file or FIFO"
            if problem is None and info.flag_bits & 0x1:
                problem = "encrypted"
            if problem is not None:
                raise FetchError(f"refused archive member {info.filename!r}: {problem}")
            if info.is_dir() or _skipped(info.filename):
                continue
            try:
                with archive.open(info) as stream:
                    sink.copy(stream, repr(info.filename))
            except (zipfile.BadZipFile, NotImplementedError) as error:
                raise FetchError(f"corrupt zip member {info.filename!r} ({error})") from None


def _is_special(mode: int) -> bool:
    """A member that is neither a regular file nor a directory (device, FIFO, socket); a zip
    member without file type bits (most zip tools write none) is a regular file."""
    return stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR)


def _tar(stream: BinaryIO, sink: _TextSink, limits: FetchLimits) -> None:
    """Members in stream mode ("r|"): each is read once, in order, without seeking."""
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                count += 1
                if count > limits.max_members:
                    raise FetchError(
                        f"too many files in the archive (more than {limits.max_members})"
                    )
                problem = _member_problem(member.name)
                if problem is None and (member.issym() or member.islnk()):
                    problem = "a link"
                if problem is None and not (member.isreg() or member.isdir()):
                    problem = "a device file or FIFO"
                if problem is not None:
                    raise FetchError(f"refused archive member {member.name!r}: {problem}")
                if member.isdir() or _skipped(member.name):
                    continue
                sink.copy(archive.extractfile(member), repr(member.name))
    except DECOMPRESS_ERRORS as error:
        raise FetchError(f"corrupt tar archive ({error})") from None


def _parquet(path: Path, sink: _TextSink, column: str | None) -> None:
    """The non-empty cells of the text column, one per line (inner whitespace collapsed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise FetchError(f"corrupt Parquet file ({error})") from None
    schema = parquet.schema_arrow
    names = schema.names
    if column is None:
        column = next((name for name in ("title", "text") if name in names), None)
        if column is None:
            listed = ", ".join(names)
            raise FetchError(f"no column given and no title/text column; columns: {listed}")
    elif column not in names:
        raise FetchError(f"column {column!r} not found; columns: {', '.join(names)}")
    kind = schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise FetchError(f"column {column!r} is not text ({kind})")
    try:
        for batch in parquet.iter_batches(columns=[column], batch_size=8192):
            for text in batch.column(0).to_pylist():
                if text and not text.isspace():
                    sink.write_line(text)
    except (pa.ArrowException, OSError) as error:
        raise FetchError(f"corrupt Parquet file ({error})") from None
