"""File content for imports: kept in the database, streamed back in chunks.

Uploads (admin API) and inbox files are copied into ``import_files`` / ``import_file_chunks``
(4 MiB chunks) in the same transaction as their ``ImportRun``: no file lives on a web or
worker's local disk between requests, any worker can run the import, and the content is
deduplicated by SHA-256. The CLI imports a path of its own disk directly (it runs where the
file is); ``--enqueue`` stores the file first, like an upload.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, insert, select

from spie.db import db
from spie.integrations.models import ImportFile, ImportFileChunk, ImportRun

CHUNK_SIZE = 4 * 1024 * 1024
READ_BUFFER = 1024 * 1024


def file_checksum(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store_stream(stream: BinaryIO, file_name: str, max_bytes: int | None = None) -> ImportFile:
    """Copy ``stream`` into the database (flushes; the caller commits).

    Returns the stored file, or the already stored one with the same content (the new copy is
    dropped). Raises ValueError when the content exceeds ``max_bytes``.
    """
    record = ImportFile(
        checksum=f"pending-{uuid.uuid4().hex}",
        size_bytes=0,
        file_name=_clean_name(file_name),
        chunk_count=0,
        complete=False,
    )
    db.session.add(record)
    db.session.flush()
    digest = hashlib.sha256()
    size = 0
    seq = 0
    while True:
        chunk = _read_full(stream, CHUNK_SIZE)
        if not chunk:
            break
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise ValueError(f"file larger than {max_bytes} bytes")
        digest.update(chunk)
        db.session.execute(
            insert(ImportFileChunk), [{"file_id": record.id, "seq": seq, "data": chunk}]
        )
        seq += 1
    checksum = digest.hexdigest()
    existing = db.session.scalar(
        select(ImportFile).where(ImportFile.checksum == checksum, ImportFile.complete.is_(True))
    )
    if existing is not None:
        db.session.execute(delete(ImportFileChunk).where(ImportFileChunk.file_id == record.id))
        db.session.delete(record)
        db.session.flush()
        return existing
    record.checksum = checksum
    record.size_bytes = size
    record.chunk_count = seq
    record.complete = True
    db.session.flush()
    return record


def store_path(path: Path) -> ImportFile:
    with path.open("rb") as handle:
        return store_stream(handle, path.name)


def _read_full(stream: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def _clean_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "fichier"
    return base[:255]


class _ChunkRaw(io.RawIOBase):
    """Raw stream over the chunks of one stored file (one chunk in memory at a time)."""

    def __init__(self, file_id: int, chunk_count: int) -> None:
        self._file_id = file_id
        self._count = chunk_count
        self._seq = 0
        self._current = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while self._offset >= len(self._current):
            if self._seq >= self._count:
                return 0
            data = db.session.scalar(
                select(ImportFileChunk.data).where(
                    ImportFileChunk.file_id == self._file_id, ImportFileChunk.seq == self._seq
                )
            )
            if data is None:
                raise OSError(f"chunk {self._seq} of stored file {self._file_id} is missing")
            self._current = bytes(data)
            self._offset = 0
            self._seq += 1
        size = min(len(view), len(self._current) - self._offset)
        view[:size] = self._current[self._offset : self._offset + size]
        self._offset += size
        return size


def open_stored(file: ImportFile) -> BinaryIO:
    return io.BufferedReader(_ChunkRaw(file.id, file.chunk_count), buffer_size=READ_BUFFER)


@contextmanager
def open_run_source(run: ImportRun) -> Iterator[BinaryIO]:
    """The bytes of the run's file: stored in the database, or the CLI's local path."""
    if run.file_id is not None:
        file = db.session.get(ImportFile, run.file_id)
        if file is None:
            raise FileNotFoundError(f"stored file {run.file_id} of run {run.id} is missing")
        stream = open_stored(file)
        try:
            yield stream
        finally:
            stream.close()
        return
    if run.local_path is None:
        raise FileNotFoundError(f"run {run.id} has neither a stored file nor a path")
    with Path(run.local_path).open("rb") as handle:
        yield handle


@contextmanager
def run_file_path(run: ImportRun) -> Iterator[str]:
    """A path to the run's file that another thread or process can read without the database
    session: the CLI's file, or the stored file spooled to a temporary file for the duration
    of the block (nothing stays on disk afterwards)."""
    if run.file_id is None and run.local_path is not None:
        yield run.local_path
        return
    with tempfile.NamedTemporaryFile(prefix="spie-import-") as spool:
        with open_run_source(run) as raw:
            shutil.copyfileobj(raw, spool, 1024 * 1024)
        spool.flush()
        yield spool.name
