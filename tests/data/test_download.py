"""fetch() against a local HTTP server, and extract_archive() against path traversal."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from fathom.data.download import extract_archive, fetch, verify_file
from fathom.errors import DataError

PAYLOAD = b"fathom test payload\n" * 1000
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_good_download_is_verified_and_renamed_into_place(file_server, tmp_path, capsys):
    (file_server.folder / "data.bin").write_bytes(PAYLOAD)
    destination = tmp_path / "cache" / "data.bin"
    result = fetch(file_server.url + "data.bin", destination, PAYLOAD_SHA256, download=True)
    assert result == destination and destination.read_bytes() == PAYLOAD
    assert leftovers(destination.parent) == ["data.bin"]  # no temporary file left
    assert "downloading" in capsys.readouterr().err


def test_tampered_download_is_rejected_and_leaves_nothing(file_server, tmp_path):
    (file_server.folder / "data.bin").write_bytes(PAYLOAD + b"tampered")
    destination = tmp_path / "cache" / "data.bin"
    with pytest.raises(DataError) as error:
        fetch(file_server.url + "data.bin", destination, PAYLOAD_SHA256, download=True)
    message = str(error.value)
    assert "data.bin" in message and PAYLOAD_SHA256 in message
    assert hashlib.sha256(PAYLOAD + b"tampered").hexdigest() in message
    assert "\n" not in message
    assert leftovers(destination.parent) == []


def test_present_good_file_is_used_without_a_request(file_server, tmp_path):
    destination = tmp_path / "data.bin"
    destination.write_bytes(PAYLOAD)
    assert (
        fetch(file_server.url + "data.bin", destination, PAYLOAD_SHA256, download=True)
        == destination
    )
    assert file_server.requests == []


def test_mirrors_are_tried_in_order(file_server, tmp_path):
    (file_server.folder / "data.bin").write_bytes(PAYLOAD)
    mirrors = [file_server.url + "missing/", file_server.url]
    destination = tmp_path / "data.bin"
    fetch([mirror + "data.bin" for mirror in mirrors], destination, PAYLOAD_SHA256, download=True)
    assert destination.read_bytes() == PAYLOAD
    assert file_server.requests == ["/missing/data.bin", "/data.bin"]


def test_all_mirrors_failing_names_the_file(file_server, tmp_path):
    with pytest.raises(DataError, match=r"could not download data\.bin: .*404"):
        fetch(file_server.url + "data.bin", tmp_path / "data.bin", PAYLOAD_SHA256, download=True)
    assert leftovers(tmp_path) == ["served"]


def test_missing_file_without_download_names_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=rf"data\.bin not found; put it in {tmp_path}"):
        fetch("http://127.0.0.1:9/data.bin", tmp_path / "data.bin", PAYLOAD_SHA256, download=False)


def test_users_wrong_file_is_kept_unless_a_verified_copy_arrives(file_server, tmp_path):
    destination = tmp_path / "data.bin"
    destination.write_bytes(b"the user's own file")
    with pytest.raises(DataError, match="has sha256"):
        fetch(file_server.url + "data.bin", destination, PAYLOAD_SHA256, download=False)
    (file_server.folder / "data.bin").write_bytes(b"also wrong")
    with pytest.raises(DataError, match="kept the existing data.bin"):
        fetch(file_server.url + "data.bin", destination, PAYLOAD_SHA256, download=True)
    assert destination.read_bytes() == b"the user's own file"
    (file_server.folder / "data.bin").write_bytes(PAYLOAD)
    fetch(file_server.url + "data.bin", destination, PAYLOAD_SHA256, download=True)
    assert destination.read_bytes() == PAYLOAD


def test_verify_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(PAYLOAD)
    assert verify_file(path, PAYLOAD_SHA256.upper()) == path
    with pytest.raises(DataError, match="corrupt or altered"):
        verify_file(path, "0" * 64)


def make_tar(path: Path, members: list[tuple[str, bytes | None, str | None]]) -> Path:
    """members: (name, content for a file, or None with a link target for a symlink)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                archive.addfile(info)
            else:
                info.size = len(content or b"")
                archive.addfile(info, io.BytesIO(content or b""))
    return path


def test_good_tar_is_extracted(tmp_path):
    archive = make_tar(
        tmp_path / "good.tar.gz",
        [("data/a.txt", b"a", None), ("data/sub/b.txt", b"b", None), ("data/link", None, "a.txt")],
    )
    extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "sub" / "b.txt").read_bytes() == b"b"
    assert (tmp_path / "out" / "data" / "link").read_bytes() == b"a"
    assert leftovers(tmp_path / "out") == ["data"]


@pytest.mark.parametrize(
    "member",
    [
        ("../evil", b"x", None),
        ("data/../../evil", b"x", None),
        ("/tmp/fathom-evil", b"x", None),
        ("data/link", None, "../../evil"),
        ("data/link", None, "/etc/passwd"),
    ],
    ids=["dot-dot", "nested-dot-dot", "absolute", "symlink-out", "symlink-absolute"],
)
def test_tar_members_escaping_the_target_are_refused(tmp_path, member):
    archive = make_tar(tmp_path / "evil.tar.gz", [("data/fine.txt", b"ok", None), member])
    target = tmp_path / "out"
    with pytest.raises(DataError, match="refusing"):
        extract_archive(archive, target)
    assert leftovers(target) == []  # checked before anything is written
    assert not (tmp_path / "evil").exists() and not Path("/tmp/fathom-evil").exists()


def test_hard_link_outside_is_refused(tmp_path):
    archive = tmp_path / "hard.tar"
    with tarfile.open(archive, "w") as bundle:
        info = tarfile.TarInfo("data/hard")
        info.type, info.linkname = tarfile.LNKTYPE, "../../etc/passwd"
        bundle.addfile(info)
    with pytest.raises(DataError, match="refusing hard link"):
        extract_archive(archive, tmp_path / "out")


def test_zip_traversal_is_refused_and_good_zip_extracts(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../evil", b"x")
    with pytest.raises(DataError, match="refusing member '../evil'"):
        extract_archive(evil, tmp_path / "out")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("data/a.txt", b"a")
    extract_archive(good, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "a.txt").read_bytes() == b"a"


def test_unreadable_or_unknown_archives(tmp_path):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar")
    with pytest.raises(DataError, match="not a readable tar archive"):
        extract_archive(broken, tmp_path / "out")
    with pytest.raises(DataError, match="unsupported archive type"):
        extract_archive(tmp_path / "data.rar", tmp_path / "out")
