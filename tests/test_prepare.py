"""Dataset preparation (lmht/data/prepare.py, workflow/rules/prepare_data.smk) against a loopback server.

An HTTP server on 127.0.0.1 (http.server in a thread) serves small archives built here in the layout of
the real ones (CIFAR python tarball, tiny-imagenet-200.zip, the ten CIFAR10-DVS class zips); it can
drop the connection half-way through a file and ignore Range requests. Nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from workflow_utils import snakemake

from lmht.data import prepare as P
from lmht.data.cifar10_dvs import CLASSES as DVS_CLASSES
from lmht.data.tiny_imagenet import TinyImageNet


# --------------------------------------------------------------------------------------------------
# Loopback server
# --------------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        name = self.path.lstrip("/")
        srv.requests.append((name, self.headers.get("Range")))
        data = srv.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start, rng = 0, self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drops.get(name, 0) > 0:  # send half the body, then close the connection
            srv.drops[name] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.drops, srv.ranges = {}, [], {}, True
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def serve(srv, name: str, data: bytes, checksum: str | None = None) -> P.Remote:
    """Serve ``data`` as ``name``; its Remote has an unreachable public URL (the tests use the mirror)."""
    srv.files[name] = data
    return P.Remote(name, f"http://public.invalid/{name}", checksum or md5(data))


# --------------------------------------------------------------------------------------------------
# Fixture archives in the layout of the real ones
# --------------------------------------------------------------------------------------------------
def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def cifar10_members() -> dict[str, bytes]:
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
    return {f"cifar-10-batches-py/{n}": f"fixture {n}".encode() for n in names}


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), seed * 40 % 256, dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


WNIDS = ("n01443537", "n01629819")


def tiny_members() -> dict[str, bytes]:
    top = "tiny-imagenet-200"
    members = {f"{top}/wnids.txt": "\n".join(WNIDS).encode() + b"\n"}
    for k, wnid in enumerate(WNIDS):
        for i in range(3):
            members[f"{top}/train/{wnid}/images/{wnid}_{i}.JPEG"] = jpeg(k)
    lines = []
    for i in range(4):  # val images alternate between the two classes
        members[f"{top}/val/images/val_{i}.JPEG"] = jpeg(i)
        lines.append(f"val_{i}.JPEG\t{WNIDS[i % 2]}\t0\t0\t8\t8")
    members[f"{top}/val/val_annotations.txt"] = ("\n".join(lines) + "\n").encode()
    members[f"{top}/test/images/test_0.JPEG"] = jpeg(9)
    return members


def aedat(seed: int, n: int = 400) -> bytes:
    """An AEDAT 2.0 recording: header line, then big-endian (address, timestamp) pairs."""
    rng = np.random.default_rng(seed)
    x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    addr = (y << 8) | (x << 1) | p
    words = np.stack([addr, np.arange(n) * 10]).T.astype(">u4")
    return b"#!AER-DAT2.0\r\n# fixture\r\n" + words.tobytes()


def dvs_zip(cls: str, per_class: int = 2) -> bytes:
    return zip_bytes(
        {f"{cls}/cifar10_{cls}_{i}.aedat": aedat(hash((cls, i)) % 1000) for i in range(per_class)}
    )


def listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


# --------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------
def test_download_verifies_md5_and_reuses_the_finished_file(server, tmp_path):
    data = os.urandom(300_000)
    remote = serve(server, "a.bin", data)
    path = P.download(remote, tmp_path, mirror=server.url, log=lambda m: None)
    assert path.read_bytes() == data and not path.with_name("a.bin.part").exists()
    server.files.clear()  # a second call must not need the server
    assert P.download(remote, tmp_path, mirror=server.url, log=lambda m: None) == path
    assert len(server.requests) == 1


def test_checksum_mismatch_names_the_file_and_both_digests(server, tmp_path):
    data = b"not the published archive" * 100
    remote = serve(server, "cifar-10-python.tar.gz", data, checksum="c58f30108f718f92721af3b95e74349a")
    with pytest.raises(P.ChecksumError) as err:
        P.download(remote, tmp_path, mirror=server.url, log=lambda m: None)
    message = str(err.value)
    assert "cifar-10-python.tar.gz" in message
    assert "c58f30108f718f92721af3b95e74349a" in message and md5(data) in message
    assert list(tmp_path.iterdir()) == [], "the bad download must be deleted"


def test_a_corrupt_file_already_in_the_download_folder_is_reported_not_used(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"truncated")
    remote = P.Remote("x.zip", "http://public.invalid/x.zip", md5(b"the real one"))
    with pytest.raises(P.ChecksumError, match=r"x\.zip: MD5 mismatch: expected .* got " + md5(b"truncated")):
        P.download(remote, tmp_path, log=lambda m: None)


@pytest.mark.parametrize("ranges", [True, False], ids=["resumes-with-range", "restarts-without-range"])
def test_interrupted_download_completes(server, tmp_path, ranges):
    data = os.urandom(1_000_000)
    remote = serve(server, "big.zip", data)
    server.drops["big.zip"] = 1
    server.ranges = ranges
    messages = []
    path = P.download(remote, tmp_path, mirror=server.url, retry_wait=0, log=messages.append)
    assert path.read_bytes() == data
    assert [r for _, r in server.requests] == [None, f"bytes={len(data) // 2}-"]
    assert any("interrupted" in m for m in messages) and any("resuming" in m for m in messages)


def test_download_gives_up_after_repeated_interruptions_and_keeps_the_part(server, tmp_path):
    remote = serve(server, "big.zip", os.urandom(200_000))
    server.drops["big.zip"] = 10
    with pytest.raises(P.DownloadError, match=r"failed 3 times .*big\.zip\.part"):
        P.download(remote, tmp_path, mirror=server.url, attempts=3, retry_wait=0, log=lambda m: None)
    assert (tmp_path / "big.zip.part").stat().st_size > 0


def test_http_error_names_the_url(server, tmp_path):
    remote = P.Remote("missing.zip", "http://public.invalid/missing.zip", "0" * 32)
    with pytest.raises(P.DownloadError, match=r"127\.0\.0\.1:\d+/missing\.zip: HTTP 404"):
        P.download(remote, tmp_path, mirror=server.url, log=lambda m: None)


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------
def test_prepare_cifar10(server, tmp_path):
    remote = serve(server, "cifar-10-python.tar.gz", tar_bytes(cifar10_members()))
    root, cache = tmp_path / "data" / "cifar10", tmp_path / "cache"
    record = P.prepare("cifar10", root, cache, mirror=server.url, sources=(remote,), log=lambda m: None)
    assert record["status"] == "downloaded"
    for name in cifar10_members():
        assert (root / name).is_file(), name
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]
    assert not list(tmp_path.joinpath("data").glob(".lmht-prepare-*")), "staging folder left behind"
    # a complete root is only checked: nothing is written into it, nothing is downloaded
    before, n_requests = listing(root), len(server.requests)
    record = P.prepare("cifar10", root, cache, mirror=server.url, sources=(remote,), log=lambda m: None)
    assert record["status"] == "present" and listing(root) == before and len(server.requests) == n_requests


def test_an_incomplete_dataset_folder_is_not_overwritten(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "data_batch_1").write_bytes(b"x")
    with pytest.raises(P.PrepareError, match=r"data_roots\.cifar10 = .*incomplete .*data_batch_2 is missing"):
        P.prepare("cifar10", tmp_path / "cifar10", tmp_path / "cache", sources=(), log=lambda m: None)


def test_a_missing_dataset_in_an_unwritable_root_names_the_key(tmp_path, monkeypatch):
    monkeypatch.setattr(P.os, "access", lambda path, mode: False)  # tests run as root: chmod is no help
    with pytest.raises(P.PrepareError, match=r"data_roots\.cifar100 = .* is not writable"):
        P.prepare("cifar100", tmp_path / "cifar100", tmp_path / "cache", sources=(), log=lambda m: None)


def test_prepare_tiny_imagenet_sorts_val_into_class_folders(server, tmp_path):
    remote = serve(server, "tiny-imagenet-200.zip", zip_bytes(tiny_members()))
    root = tmp_path / "tiny-imagenet-200"
    record = P.prepare("imagenet200", root, tmp_path / "cache", mirror=server.url, sources=(remote,),
                       log=lambda m: None)  # fmt: skip
    assert record["status"] == "downloaded"
    assert record["counts"] == {"classes": 2, "train": 6, "val": 4}
    assert not (root / "val" / "images").exists()
    for i in range(4):
        assert (root / "val" / WNIDS[i % 2] / "images" / f"val_{i}.JPEG").is_file()
    val = TinyImageNet(root, train=False)  # the loader reads the class folders with the same labels
    assert sorted((p.name, label) for p, label in val.samples) == [(f"val_{i}.JPEG", i % 2) for i in range(4)]


def test_prepare_cifar10_dvs_extracts_events_and_caches_frames_outside_the_root(server, tmp_path):
    sources = tuple(serve(server, f"{c}.zip", dvs_zip(c)) for c in DVS_CLASSES)
    root, cache = tmp_path / "cifar10-dvs", tmp_path / "cache"
    # an earlier, interrupted run had installed one class: it is not downloaded again
    (root / "airplane").mkdir(parents=True)
    for i in range(2):
        (root / "airplane" / f"cifar10_airplane_{i}.aedat").write_bytes(aedat(i))
    server.files.pop("airplane.zip")
    record = P.prepare("cifar10_dvs", root, cache, mirror=server.url, frames=4, sources=sources,
                       log=lambda m: None)  # fmt: skip
    assert record["status"] == "downloaded" and record["frames"] == 4
    assert record["counts"] == dict.fromkeys(DVS_CLASSES, 2)
    assert "airplane.zip" not in {name for name, _ in server.requests}
    for c in DVS_CLASSES:
        assert len(list((root / c).glob("*.aedat"))) == 2
    frame_cache = cache / "cifar10_dvs" / "F4_S48_aa"  # the loader's subfolder for 4 frames at 48x48
    frames = sorted(frame_cache.rglob("*.npz"))
    assert len(frames) == 20 and Path(record["frame_cache"]) == frame_cache.resolve()
    with np.load(frames[0]) as data:
        assert data["frames"].shape == (4, 2, 48, 48)
    assert not list(root.rglob("*.npz")), "frames must be cached outside the data root"
    # prepared again (e.g. a read-only shared copy): nothing is written into the root, nothing fetched
    before, n_requests = listing(root), len(server.requests)
    record = P.prepare(
        "cifar10_dvs", root, cache, mirror=server.url, frames=4, sources=sources, log=lambda m: None
    )
    assert record["status"] == "present" and listing(root) == before and len(server.requests) == n_requests


def make_imagenet(root: Path, classes: int, flat_val: bool = False) -> None:
    for split in ("train", "val"):
        for k in range(classes):
            folder = root / split / f"n{k:08d}"
            if split == "val" and flat_val:
                folder = root / split
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"ILSVRC2012_val_{k:08d}.JPEG").write_bytes(b"")
                continue
            folder.mkdir(parents=True)
            (folder / "x.JPEG").write_bytes(b"")


def test_imagenet_is_checked_and_what_is_expected_is_printed(tmp_path):
    root = tmp_path / "imagenet"
    with pytest.raises(P.PrepareError) as err:
        P.prepare("imagenet", root, tmp_path / "cache", log=lambda m: None)
    assert f"data_roots.imagenet = {root}" in str(err.value)
    assert f"{root}/train/<wnid>/*.JPEG" in str(err.value) and "1,281,167" in str(err.value)
    make_imagenet(root, 1000, flat_val=True)
    with pytest.raises(P.PrepareError, match="holds 1000 images directly instead of in class folders"):
        P.prepare("imagenet", root, tmp_path / "cache", log=lambda m: None)


def test_a_complete_imagenet_copy_passes_with_a_count_warning(tmp_path):
    root = tmp_path / "imagenet"
    make_imagenet(root, 1000)
    messages = []
    record = P.prepare("imagenet", root, tmp_path / "cache", log=messages.append)
    assert record["status"] == "present" and record["counts"] == {"classes": 1000, "train": 1000, "val": 1000}
    assert any("1281167" in m for m in messages)


# --------------------------------------------------------------------------------------------------
# Command line and workflow
# --------------------------------------------------------------------------------------------------
def test_cli_fetches_from_the_mirror_and_checks_the_published_md5(server, tmp_path):
    """The real CIFAR-10 source (torchvision's URL and MD5), fetched from the loopback mirror."""
    fake = tar_bytes(cifar10_members())
    server.files["cifar-10-python.tar.gz"] = fake
    res = subprocess.run(
        [sys.executable, "-m", "lmht.data.prepare", "cifar10", "--root", str(tmp_path / "c10"),
         "--cache", str(tmp_path / "cache"), "--record", str(tmp_path / "rec.json")],
        capture_output=True, text=True, timeout=120, env={**os.environ, P.MIRROR_ENV: server.url},
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cifar-10-python.tar.gz: MD5 mismatch: expected c58f30108f718f92721af3b95e74349a" in res.stderr
    assert md5(fake) in res.stderr and f"{server.url}/cifar-10-python.tar.gz" in res.stderr
    assert not (tmp_path / "rec.json").exists() and not (tmp_path / "c10").exists()


@pytest.mark.slow
def test_prepare_rules_are_in_the_dag_of_the_paper_suite(tmp_path):
    res = snakemake("-n", "--config", "suite=paper", cwd=tmp_path, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    for dataset in P.DATASETS:
        assert f"prepare_{dataset} " in out, dataset
    assert "does not exist" not in out, "data roots of prepared datasets are not reported missing"
    res = snakemake("-n", "--config", "suite=paper", "prepare_data=false", cwd=tmp_path, timeout=300)
    out = res.stdout + res.stderr
    assert (
        res.returncode == 0
        and "rule prepare_" not in out
        and "data_roots.cifar10 = 'data/cifar10' does not" in out
    )


@pytest.mark.slow
def test_prepare_rule_checks_imagenet(tmp_path):
    """The rule's command line end to end: prepare_imagenet on a good and a bad copy (any suite has the
    rule; the small smoke DAG keeps it quick)."""
    root = tmp_path / "imagenet"
    make_imagenet(root, 1000)
    record = tmp_path / "cache" / "prepared" / "imagenet.json"
    args = ("--cores", "1", "--config", "suite=smoke", f"cache_dir={tmp_path / 'cache'}",
            f"data_roots={{imagenet: {root}}}")  # fmt: skip
    res = snakemake(str(record), *args, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert json.loads(record.read_text())["counts"]["classes"] == 1000
    bad = tmp_path / "bad"
    bad.mkdir()
    res = snakemake(str(record), *args[:-1], f"data_roots={{imagenet: {bad}}}", cwd=tmp_path, timeout=300)
    assert res.returncode != 0
    log = (tmp_path / "cache" / "prepared" / "imagenet.log").read_text()
    assert f"data_roots.imagenet = {bad}: ImageNet-1k is not there" in log and "valprep.sh" in log


def test_the_workflow_prepares_exactly_the_datasets_prepare_knows():
    """common.smk lists the prepared datasets without importing torch; it must match lmht.data.prepare."""
    import re

    from lmht.data.prepare import DATASETS

    common = (Path(__file__).resolve().parents[1] / "workflow" / "rules" / "common.smk").read_text()
    listed = re.search(r"^PREPARED_DATASETS = \((.*?)\)", common, re.M | re.S).group(1)
    assert tuple(re.findall(r'"([a-z0-9_]+)"', listed)) == DATASETS
