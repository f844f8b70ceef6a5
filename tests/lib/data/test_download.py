"""download(): against a local HTTP server on 127.0.0.1 started here (no internet)."""
import hashlib
import importlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.data import data_root, download, fetch_dataset

download_module = importlib.import_module("common.data.download")   # the name `download` is the function

DATA = bytes(range(256)) * 400 + b"tail"                  # 102,404 bytes
SHA256 = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


class Handler(BaseHTTPRequestHandler):
    files = {}             # path -> bytes
    log = []               # (path, Range header) of every request
    cut_once = set()       # paths whose first transfer stops half way

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.log.append((self.path, self.headers.get("Range")))
        if self.path == "/error":
            self.send_error(500, "boom")
            return
        if self.path not in self.files:
            self.send_error(404, "Not Found")
            return
        body, start = self.files[self.path], 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in Handler.cut_once:
            Handler.cut_once.discard(self.path)
            self.wfile.write(body[start:start + len(body) // 2])   # then hang up
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    Handler.files = {"/data.bin": DATA, "/flaky.bin": DATA}
    Handler.log, Handler.cut_once = [], set()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_success_and_no_refetch(server, tmp_path):
    path = download(f"{server}/data.bin", tmp_path, sha256=SHA256, progress=False)
    assert path == tmp_path / "data.bin" and path.read_bytes() == DATA
    assert not (tmp_path / "data.bin.part").exists()
    n = len(Handler.log)
    assert download(f"{server}/data.bin", tmp_path, md5=MD5, progress=False) == path
    assert len(Handler.log) == n                       # verified file: no request
    other = download(f"{server}/data.bin", tmp_path, filename="x.bin", md5=MD5, progress=False)
    assert other.name == "x.bin" and other.read_bytes() == DATA


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ValueError) as err:
        download(f"{server}/data.bin", tmp_path, sha256=wrong, progress=False)
    msg = str(err.value)
    assert f"{server}/data.bin" in msg and wrong in msg and SHA256 in msg
    assert list(tmp_path.iterdir()) == []


def test_corrupt_present_file_is_fetched_again(server, tmp_path):
    (tmp_path / "data.bin").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="checksum"):
        path = download(f"{server}/data.bin", tmp_path, sha256=SHA256, progress=False)
    assert path.read_bytes() == DATA


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    Handler.cut_once.add("/flaky.bin")
    with pytest.raises(OSError, match="resume"):
        download(f"{server}/flaky.bin", tmp_path, sha256=SHA256, progress=False)
    part = tmp_path / "flaky.bin.part"
    assert part.stat().st_size == len(DATA) // 2 and not (tmp_path / "flaky.bin").exists()
    path = download(f"{server}/flaky.bin", tmp_path, sha256=SHA256, progress=False)
    assert path.read_bytes() == DATA and not part.exists()
    assert Handler.log[-1] == ("/flaky.bin", f"bytes={len(DATA) // 2}-")


def test_complete_part_file_is_verified_not_refetched(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(DATA)     # server answers 416 to the Range
    assert download(f"{server}/data.bin", tmp_path, md5=MD5, progress=False).read_bytes() == DATA


@pytest.mark.parametrize("path, status", [("/error", 500), ("/nope.bin", 404)])
def test_http_errors_name_url_and_status(server, tmp_path, path, status):
    with pytest.raises(OSError, match=rf"{server}{path}.*HTTP {status}"):
        download(f"{server}{path}", tmp_path, progress=False)
    assert not (tmp_path / path.strip("/")).exists()


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGCOURSE_DATA", str(tmp_path / "d"))
    assert data_root() == tmp_path / "d"
    monkeypatch.delenv("SEGCOURSE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_root() == tmp_path / "segcourse"


def test_fetch_dataset_by_name(server, tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny_set/train_list.txt", "a.jpg a.png\n")
    blob = buf.getvalue()
    Handler.files["/tiny.zip"] = blob
    monkeypatch.setitem(download_module.DATASETS, "tiny", dict(
        urls=(f"{server}/gone.zip", f"{server}/tiny.zip"),       # first mirror 404s
        sha256=hashlib.sha256(blob).hexdigest(), root="tiny_set"))
    folder = fetch_dataset("tiny", tmp_path, progress=False)
    assert folder == tmp_path / "tiny_set" and (folder / "train_list.txt").read_text() == "a.jpg a.png\n"
    n = len(Handler.log)
    assert fetch_dataset("tiny", tmp_path, progress=False) == folder and len(Handler.log) == n
    monkeypatch.setitem(download_module.DATASETS, "wrong_root", dict(
        urls=(f"{server}/tiny.zip",), root="other_name"))
    with pytest.raises(FileNotFoundError, match="other_name"):
        fetch_dataset("wrong_root", tmp_path / "w", progress=False)
    with pytest.raises(FileNotFoundError, match="login.*leftImg8bit"):
        fetch_dataset("cityscapes", tmp_path)
    with pytest.raises(ValueError, match="voc2012"):
        fetch_dataset("nope", tmp_path)


def test_known_datasets_have_checksums_where_published():
    ds = download_module.DATASETS
    assert ds["voc2012"]["md5"] == "6cd6e144f989b92b3379bac3b3de84fd"
    assert {"voc2012", "ade20k", "coco_panoptic_annotations", "optic_disc"} <= set(ds)
