"""Checksummed downloads and safe archive extraction.

``fetch`` never leaves a half-written or unverified file where a dataset expects its data: it
downloads beside the destination, checks the sha256, and only then renames into place.
``extract_archive`` refuses members that would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fathom.errors import DataError
from fathom.files import sha256_file

CHUNK_SIZE = 1 << 20
TIMEOUT_SECONDS = 60
USER_AGENT = "fathom-dl (dataset download)"


def fetch(
    url_or_urls: str | Sequence[str], destination: Path, sha256: str, *, download: bool
) -> Path:
    """Return ``destination`` once its sha256 matches, downloading it from the first working mirror.

    A file already present with the right hash is used without touching the network. A file present
    with the wrong hash is replaced only by a download that verifies; without ``download`` it is an
    error, as is a missing file.
    """
    destination = Path(destination)
    expected = sha256.lower()
    present = destination.is_file()
    if present:
        actual = sha256_file(destination)
        if actual == expected:
            return destination
        if not download:
            raise DataError(
                f"{destination} has sha256 {actual}, expected {expected}; "
                "replace it with the original file or delete it and allow downloads"
            )
    elif not download:
        raise DataError(
            f"{destination.name} not found; put it in {destination.parent} or allow downloads "
            "(data.download=true)"
        )
    urls = [url_or_urls] if isinstance(url_or_urls, str) else list(url_or_urls)
    if not urls:
        raise DataError(
            f"{destination.name} not found in {destination.parent} and no URL to fetch it from"
        )
    problems = []
    for url in urls:
        try:
            _download_verified(url, destination, expected)
            return destination
        except DataError as error:  # a mismatch: try the next mirror, report it if none works
            problems.append(str(error))
        except urllib.error.HTTPError as error:
            problems.append(f"{url}: HTTP {error.code} {error.reason}")
        except (OSError, http.client.HTTPException, ValueError) as error:  # URLError is an OSError
            problems.append(f"{url}: {getattr(error, 'reason', error)}")
    kept = f"; kept the existing {destination.name}" if present else ""
    raise DataError(
        f"could not download {destination.name}: {' | '.join(problems)}{kept}; "
        f"or put the file in {destination.parent} (or point --data-dir / FATHOM_DATA_DIR at a copy)"
    )


def verify_file(path: Path, sha256: str) -> Path:
    """Return ``path`` if it exists and its sha256 matches, else raise a DataError naming it."""
    if not Path(path).is_file():
        raise DataError(f"file not found: {path}")
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise DataError(
            f"{path} has sha256 {actual}, expected {sha256.lower()}; the file is corrupt or altered"
        )
    return Path(path)


def _download_verified(url: str, destination: Path, expected: str) -> None:
    """Stream ``url`` into a temporary file beside ``destination``, verify, then rename over it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            actual = _stream(url, file)
            file.flush()
            os.fsync(file.fileno())
        if actual != expected:
            raise DataError(
                f"{destination.name} from {url} has sha256 {actual}, expected {expected}; "
                "the download is corrupt or the file changed upstream"
            )
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _stream(url: str, file: BinaryIO) -> str:
    """Copy ``url`` into ``file`` in chunks, reporting progress on stderr; return the hex sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        total = int(response.headers.get("Content-Length") or 0)
        size = f" ({total / 1e6:.1f} MB)" if total else ""
        print(f"downloading {url}{size}", file=sys.stderr, flush=True)
        received, started, shown = 0, time.monotonic(), time.monotonic()
        while chunk := response.read(CHUNK_SIZE):
            digest.update(chunk)
            file.write(chunk)
            received += len(chunk)
            if sys.stderr.isatty() and total and time.monotonic() - shown > 0.5:
                shown = time.monotonic()
                print(f"\r  {100 * received / total:5.1f}%", end="", file=sys.stderr, flush=True)
        seconds = time.monotonic() - started
        ending = "\r" if sys.stderr.isatty() and total else ""
        print(f"{ending}  {received / 1e6:.1f} MB in {seconds:.1f} s", file=sys.stderr, flush=True)
    return digest.hexdigest()


def extract_archive(archive: Path, target: Path) -> None:
    """Extract a .tar.gz/.tgz/.tar/.zip into ``target``, refusing any member that escapes it.

    Every member is checked before anything is written; members are extracted into a temporary
    folder inside ``target`` and each top-level entry is then moved into place (replacing an
    existing entry of the same name), so an interrupted extraction leaves no partial folder behind.
    """
    archive, target = Path(archive), Path(target)
    name = archive.name.lower()
    if not name.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
        raise DataError(
            f"{archive}: unsupported archive type (expected .tar.gz, .tgz, .tar or .zip)"
        )
    if not archive.is_file():
        raise DataError(f"archive not found: {archive}")
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".extracting-"))
    try:
        if name.endswith(".zip"):
            _extract_zip(archive, staging)
        else:
            _extract_tar(archive, staging)
        for entry in sorted(staging.iterdir()):
            _move_into_place(entry, target / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_tar(archive: Path, staging: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as bundle:
            members = bundle.getmembers()
            for member in members:
                _check_tar_member(archive, member)
            if hasattr(tarfile, "data_filter"):  # defence in depth where Python has it
                bundle.extractall(staging, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                bundle.extractall(staging, members=members)
    except (tarfile.TarError, EOFError) as error:
        raise DataError(f"{archive}: not a readable tar archive ({error})") from None


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    _check_member_name(archive, member.name)
    if member.issym():
        link = PurePosixPath(member.linkname)
        resolved = PurePosixPath(member.name).parent / link
        if link.is_absolute() or _escapes(resolved):
            raise DataError(
                f"{archive}: refusing symlink '{member.name}' -> '{member.linkname}' outside the target"
            )
    elif member.islnk():
        if PurePosixPath(member.linkname).is_absolute() or _escapes(PurePosixPath(member.linkname)):
            raise DataError(
                f"{archive}: refusing hard link '{member.name}' -> '{member.linkname}' outside the target"
            )
    elif not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refusing special file '{member.name}' (device or pipe)")


def _extract_zip(archive: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                _check_member_name(archive, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"{archive}: refusing symlink '{info.filename}'")
            bundle.extractall(staging)
    except zipfile.BadZipFile as error:
        raise DataError(f"{archive}: not a readable zip archive ({error})") from None


def _check_member_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise DataError(
            f"{archive}: refusing member '{name}' (absolute path or '..' escapes the target)"
        )


def _escapes(path: PurePosixPath) -> bool:
    """Whether a relative path climbs above its starting folder once '..' parts are applied."""
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def _move_into_place(source: Path, destination: Path) -> None:
    if destination.is_dir() and not destination.is_symlink():
        shutil.rmtree(destination)
    elif destination.exists() or destination.is_symlink():
        destination.unlink()
    os.replace(source, destination)
