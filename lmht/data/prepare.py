"""Download, verify and lay out the paper suite's datasets where the workflow's ``data_roots`` point.

    python -m lmht.data.prepare DATASET --root ROOT --cache CACHE [--mirror URL] [--frames F]
                                [--frame-cache DIR] [--record OUT.json] [--key data_roots.DATASET]

What each dataset gets (the workflow's ``prepare_<dataset>`` rules, workflow/rules/prepare_data.smk):

* ``cifar10``, ``cifar100``: the CIFAR python tarball from Krizhevsky's page (URL and MD5 as
  torchvision declares them), extracted into ROOT: ``ROOT/cifar-10-batches-py/`` or
  ``ROOT/cifar-100-python/`` (torchvision checks each file's MD5 whenever it opens the dataset);
* ``imagenet200``: Stanford CS231n's ``tiny-imagenet-200.zip`` (MD5 90528d7c…), extracted into ROOT with
  ``val/`` reorganized into class folders: ``ROOT/val/<wnid>/images/*.JPEG`` (``val_annotations.txt``
  is kept); the loader (lmht/data/tiny_imagenet.py) then finds 200 classes, 100 000 / 10 000 images;
* ``cifar10_dvs``: the ten per-class zips of figshare record 4724671 (``airplane.zip`` …, MD5 as
  SpikingJelly lists them), extracted to ``ROOT/<class>/*.aedat``; then the frames of all 10 000
  samples are integrated and cached through the loader's own API (``CIFAR10DVS(..., cache_dir=...)``)
  in the frame cache (default ``CACHE/cifar10_dvs``; the loader adds ``F{F}_S48_aa/<class>/``);
* ``imagenet``: cannot be downloaded (ImageNet's terms need a registered account): a user-provided
  copy is checked (1000 WordNet-id class folders in ``ROOT/train`` and ``ROOT/val``, image counts) and
  what is expected is printed (:data:`IMAGENET_EXPECTED`).

Downloads go to ``CACHE/downloads/<file>`` through ``<file>.part``: an interrupted transfer resumes with
an HTTP ``Range`` request (or starts again when the server ignores it), and the file gets its final name
only once its MD5 matches; a mismatch raises :class:`ChecksumError` naming the file and both digests
(the bad download is deleted). An archive already in ``CACHE/downloads/`` (e.g. copied there for a
machine without internet) is verified and used. Archives are extracted into a hidden staging folder
next to (or inside) ROOT and moved into place at the end, so an interrupted preparation leaves no
half-extracted dataset; the staging folder of an interrupted run is removed by the next one.

ROOT is written only while the dataset is missing there; a complete ROOT (possibly read-only, e.g. a
shared copy on a cluster) is only checked. Caches and records go to CACHE, never into ROOT.

``--mirror URL`` (or ``$LMHT_DATA_MIRROR``) fetches every file as ``URL/<file name>`` instead of its
public URL (a site mirror; the tests use a local HTTP server).

Over 400 lines because preparation is one idea (fetch, verify, lay out) applied to five datasets
with their own archive formats and layouts; each dataset's steps are one short function here so that the
workflow rules, the loopback tests and the README's list of archives read one table (``DATASETS``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import DataFileError, DatasetNotFoundError

#: The datasets this module prepares (the workflow has one ``prepare_<name>`` rule for each).
DATASETS = ("cifar10", "cifar100", "imagenet200", "cifar10_dvs", "imagenet")
MIRROR_ENV = "LMHT_DATA_MIRROR"
USER_AGENT = "lmht-prepare/1 (+https://github.com/hzc1208/LMHT_SNN reproduction)"
CHUNK = 1 << 20
#: Canonical sizes (for the check of a dataset found on disk).
TINY_IMAGENET_COUNTS = {"classes": 200, "train": 100_000, "val": 10_000}
IMAGENET_COUNTS = {"classes": 1000, "train": 1_281_167, "val": 50_000}
DVS_PER_CLASS = 1000
IMAGENET_EXPECTED = """\
ImageNet-1k (ILSVRC 2012) is not downloaded automatically: its terms require an account at
https://image-net.org. Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar there, then lay
them out as two torchvision ImageFolder trees under {root}:
  {root}/train/<wnid>/*.JPEG   1000 class folders named by WordNet id (n01440764, ...), 1,281,167
                              images (extract the train tar, then each of its 1000 per-class tars
                              into its own folder)
  {root}/val/<wnid>/*.JPEG     the same 1000 folders, 50 images each, 50,000 images (the val tar is
                              flat: sort it into class folders, e.g. with the widely used valprep.sh)
and point the workflow's data_roots.imagenet at {root} (it may be read-only)."""


class PrepareError(RuntimeError):
    """A dataset cannot be prepared; the message names the path or key and what was expected."""


class DownloadError(PrepareError):
    """A file could not be downloaded (HTTP error, repeated interruptions)."""


class ChecksumError(PrepareError):
    """A file's MD5 differs from the published one; the message names the file and both digests."""

    def __init__(self, path: Path | str, expected: str, actual: str, detail: str = "") -> None:
        self.path, self.expected, self.actual = Path(path), expected, actual
        super().__init__(f"{path}: MD5 mismatch: expected {expected}, got {actual}{detail}")


@dataclass(frozen=True)
class Remote:
    """One published file: its name, public URL and MD5."""

    filename: str
    url: str
    md5: str


#: CIFAR10-DVS: class -> (figshare file id, MD5) of <class>.zip in figshare record 4724671.
DVS_FILES = {
    "airplane": ("7712788", "0afd5c4bf9ae06af762a77b180354fdd"),
    "automobile": ("7712791", "8438dfeba3bc970c94962d995b1b9bdd"),
    "bird": ("7712794", "a9c207c91c55b9dc2002dc21c684d785"),
    "cat": ("7712812", "52c63c677c2b15fa5146a8daf4d56687"),
    "deer": ("7712815", "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
    "dog": ("7712818", "f379ebdf6703d16e0a690782e62639c3"),
    "frog": ("7712842", "cad6ed91214b1c7388a5f6ee56d08803"),
    "horse": ("7712851", "e7cbbf77bec584ffbf913f00e682782a"),
    "ship": ("7712836", "41c7bd7d6b251be82557c6cce9a7d5c9"),
    "truck": ("7712839", "89f3922fd147d9aeff89e76a2b0b70a7"),
}
TINY_IMAGENET = Remote(
    filename="tiny-imagenet-200.zip",
    url="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    md5="90528d7ca1a48142e341f4ef8d21d0de",
)


def _unknown(dataset: str) -> str:
    return f"nothing to prepare for dataset {dataset!r}: expected one of {', '.join(DATASETS)}"


def _cifar_class(dataset: str):
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[dataset]


def default_sources(dataset: str) -> tuple[Remote, ...]:
    """The published files of ``dataset`` (none for ImageNet-1k)."""
    if dataset in ("cifar10", "cifar100"):
        cls = _cifar_class(dataset)
        return (Remote(cls.filename, cls.url, cls.tgz_md5),)
    sources = {
        "imagenet200": (TINY_IMAGENET,),
        "cifar10_dvs": tuple(
            Remote(f"{c}.zip", f"https://ndownloader.figshare.com/files/{fid}", md5)
            for c, (fid, md5) in DVS_FILES.items()
        ),
        "imagenet": (),
    }
    if dataset not in sources:
        raise PrepareError(_unknown(dataset))
    return sources[dataset]


# --------------------------------------------------------------------------------------------------
# Download and checksum
# --------------------------------------------------------------------------------------------------
def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def remote_url(remote: Remote, mirror: str | None) -> str:
    """The URL to fetch: ``MIRROR/<file name>`` with a mirror, else the public URL."""
    return f"{mirror.rstrip('/')}/{remote.filename}" if mirror else remote.url


def _fetch(url: str, part: Path, timeout: float) -> tuple[int, int | None]:
    """Append the rest of ``url`` to ``part`` (resuming with Range when it has bytes).

    Returns (bytes in ``part``, expected total or None). A server that ignores Range restarts the file.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
        resumed = offset > 0 and resp.status == 206
        content_range = resp.headers.get("Content-Range", "")
        if resumed and not content_range.startswith(f"bytes {offset}-"):
            resumed = False  # a range other than the one asked for: start again
        if not resumed:
            offset = 0
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if resumed else "wb") as fh:
            for block in iter(lambda: resp.read(CHUNK), b""):
                fh.write(block)
    return part.stat().st_size, total


def download(
    remote: Remote,
    folder: Path,
    mirror: str | None = None,
    attempts: int = 5,
    timeout: float = 60.0,
    retry_wait: float = 2.0,
    log: Callable[[str], None] = print,
) -> Path:
    """``folder/<file name>``, downloaded (resumably, through ``.part``) and MD5-verified.

    A complete file already there is verified and used. Raises :class:`ChecksumError` on an MD5
    mismatch and :class:`DownloadError` when the transfer fails ``attempts`` times.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / remote.filename
    if dest.is_file():
        digest = file_md5(dest)
        if digest != remote.md5:
            raise ChecksumError(dest, remote.md5, digest, f" (found in {folder}: replace or delete it)")
        log(f"{dest.name}: found in {folder}, MD5 ok")
        return dest
    url = remote_url(remote, mirror)
    part = dest.with_name(dest.name + ".part")
    start = time.time()
    last_error = ""
    for attempt in range(1, attempts + 1):
        if part.exists() and part.stat().st_size:
            log(f"{dest.name}: resuming {url} at byte {part.stat().st_size}")
        else:
            log(f"{dest.name}: downloading {url}")
        try:
            size, total = _fetch(url, part, timeout)
            if total is None or size >= total:
                break
            last_error = f"connection closed after {size} of {total} bytes"
        except urllib.error.HTTPError as err:
            if err.code == 416 and part.exists() and part.stat().st_size:
                break  # nothing left to send: the .part file is complete (checked below)
            if 400 <= err.code < 500:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason} (file {remote.filename})") from err
            last_error = f"HTTP {err.code} {err.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            last_error = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt < attempts:
            log(f"{dest.name}: interrupted ({last_error}); retry {attempt + 1}/{attempts}")
            time.sleep(min(retry_wait * 2 ** (attempt - 1), 60.0))
    else:
        have = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"{url}: download of {remote.filename} failed {attempts} times (last: {last_error}); "
            f"{have} bytes are kept in {part} and the next run resumes from there"
        )
    digest = file_md5(part)
    if digest != remote.md5:
        part.unlink()
        raise ChecksumError(dest, remote.md5, digest, f" (from {url}; deleted, run again to retry)")
    os.replace(part, dest)
    mb = dest.stat().st_size / 1e6
    log(f"{dest.name}: {mb:.1f} MB in {time.time() - start:.0f} s, MD5 ok")
    return dest


# --------------------------------------------------------------------------------------------------
# Extraction and installation into the data root
# --------------------------------------------------------------------------------------------------
def extract(archive: Path, dest: Path) -> None:
    """Extract a .tar(.gz) or .zip archive into ``dest``; members may not leave ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                base = dest.resolve()
                for name in zf.namelist():
                    target = (dest / name).resolve()
                    if target != base and base not in target.parents:
                        raise DataFileError(archive, f"member {name!r} would be extracted outside {dest}")
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise DataFileError(archive, f"cannot be extracted: {err}") from err


def _check_writable(root: Path, key: str, dataset: str, missing: str) -> None:
    """Raise when ``root`` (or the folder that would hold it) cannot be written."""
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise PrepareError(
            f"{key} = {root}: {dataset} is not there ({missing}) and {probe} is not writable; put the "
            f"dataset there, or point {key} at a writable folder where it can be downloaded"
        )


class Staging:
    """A hidden folder for extraction: next to ``root`` while root is absent or empty, else inside it.

    Leftovers of an interrupted run are removed on entry, the folder itself on exit.
    """

    def __init__(self, root: Path, tag: str) -> None:
        in_root = root.is_dir() and any(root.iterdir())
        self.path = (root if in_root else root.parent) / f".lmht-prepare-{tag}.partial"

    def __enter__(self) -> Path:
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def install_tree(tree: Path, root: Path) -> None:
    """Move the contents of ``tree`` into ``root``: one rename when root is absent or empty, else
    entry by entry, refusing to overwrite an entry root already has."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tree, root)
        return
    entries = sorted(tree.iterdir())
    clash = [str(root / e.name) for e in entries if (root / e.name).exists()]
    if clash:
        raise PrepareError(
            f"{', '.join(clash)} already exist(s) but the dataset is incomplete: remove them so that the "
            "dataset is extracted again"
        )
    for entry in entries:
        os.replace(entry, root / entry.name)


# --------------------------------------------------------------------------------------------------
# Per-dataset preparation
# --------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """Arguments shared by the per-dataset functions."""

    dataset: str
    root: Path
    cache: Path
    key: str
    mirror: str | None = None
    frames: int = 10
    frame_cache: Path | None = None
    sources: tuple[Remote, ...] = ()
    log: Callable[[str], None] = print
    retry_wait: float = 2.0

    @property
    def downloads(self) -> Path:
        return self.cache / "downloads"

    def fetch(self, remote: Remote) -> Path:
        return download(remote, self.downloads, self.mirror, retry_wait=self.retry_wait, log=self.log)


def _cifar_missing(folder: Path, cls) -> list[str]:
    """Files of torchvision's CIFAR layout missing from ``folder`` (their MD5s are checked by
    torchvision whenever the dataset is opened)."""
    names = [name for name, _ in [*cls.train_list, *cls.test_list]] + [cls.meta["filename"]]
    return [str(folder / name) for name in names if not (folder / name).is_file()]


def prepare_cifar(ctx: Context) -> dict:
    """CIFAR-10/100: ``ROOT/<torchvision base folder>/`` from the python tarball."""
    cls = _cifar_class(ctx.dataset)
    folder = ctx.root / cls.base_folder
    missing = _cifar_missing(folder, cls)
    if not missing:
        return {"status": "present", "layout": str(folder)}
    if folder.exists():
        raise PrepareError(
            f"{ctx.key} = {ctx.root}: {folder} is incomplete ({missing[0]} is missing): remove it so that "
            "it is downloaded again"
        )
    _check_writable(ctx.root, ctx.key, ctx.dataset, f"{missing[0]} is missing")
    (remote,) = ctx.sources
    archive = ctx.fetch(remote)
    with Staging(ctx.root, ctx.dataset) as stage:
        extract(archive, stage)
        missing = _cifar_missing(stage / cls.base_folder, cls)
        if missing:
            raise DataFileError(archive, f"lacks {Path(missing[0]).relative_to(stage)}")
        install_tree(stage, ctx.root)
    return {"status": "downloaded", "layout": str(folder)}


def reorganize_tiny_val(val: Path) -> int:
    """Sort ``val/images/*.JPEG`` into ``val/<wnid>/images/`` (``val_annotations.txt``); returns the count."""
    from .tiny_imagenet import read_val_annotations

    annotations = val / "val_annotations.txt"
    if not annotations.is_file():
        raise DataFileError(annotations, "is missing (needed to sort val/images into class folders)")
    mapping = read_val_annotations(annotations)
    images = sorted((val / "images").iterdir())
    for image in images:
        if image.name not in mapping:
            raise DataFileError(annotations, f"has no line for {image.name}")
        target = val / mapping[image.name] / "images"
        target.mkdir(parents=True, exist_ok=True)
        os.replace(image, target / image.name)
    (val / "images").rmdir()
    return len(images)


def _tiny_counts(root: Path) -> dict:
    from .tiny_imagenet import tiny_imagenet_samples

    classes, train = tiny_imagenet_samples(root, True)
    _, val = tiny_imagenet_samples(root, False)
    return {"classes": len(classes), "train": len(train), "val": len(val)}


def prepare_tiny_imagenet(ctx: Context) -> dict:
    """Tiny-ImageNet: ``ROOT/train/<wnid>/images``, ``ROOT/val/<wnid>/images`` (val reorganized)."""
    try:
        counts, missing = _tiny_counts(ctx.root), ""
    except (DatasetNotFoundError, FileNotFoundError) as err:
        counts, missing = {}, str(err)
    status = "downloaded" if missing else "present"
    if missing:
        _check_writable(ctx.root, ctx.key, ctx.dataset, missing)
        (remote,) = ctx.sources
        archive = ctx.fetch(remote)
        with Staging(ctx.root, ctx.dataset) as stage:
            extract(archive, stage)
            tops = [p for p in stage.iterdir() if p.is_dir()]
            tree = tops[0] if len(tops) == 1 and not (stage / "train").is_dir() else stage
            if not (tree / "train").is_dir() or not (tree / "val" / "images").is_dir():
                raise DataFileError(archive, "holds no tiny-imagenet-200/train and val/images folders")
            n = reorganize_tiny_val(tree / "val")
            ctx.log(f"val: {n} images sorted into class folders")
            install_tree(tree, ctx.root)
        counts = _tiny_counts(ctx.root)
    if counts != TINY_IMAGENET_COUNTS:
        ctx.log(f"warning: {ctx.root} has {counts}, Tiny-ImageNet has {TINY_IMAGENET_COUNTS}")
    return {"status": status, "counts": counts}


def _dvs_frame_cache(ctx: Context) -> Path:
    return ctx.frame_cache or ctx.cache / "cifar10_dvs"


def prepare_cifar10_dvs(ctx: Context) -> dict:
    """CIFAR10-DVS: ``ROOT/<class>/*.aedat`` from the ten class zips, then every sample's frames cached."""
    from .cifar10_dvs import CIFAR10DVS, CLASSES, find_event_files

    try:
        files = find_event_files(ctx.root)
    except DatasetNotFoundError:
        files = None
    status = "present" if files else "downloaded"
    if not files:
        by_name = {r.filename: r for r in ctx.sources}
        for c in CLASSES:
            if any((ctx.root / c).glob("*.aedat")):
                continue  # installed by an earlier, interrupted run (each class is moved in at once)
            _check_writable(ctx.root, ctx.key, ctx.dataset, f"no {ctx.root / c}/*.aedat")
            archive = ctx.fetch(by_name[f"{c}.zip"])
            with Staging(ctx.root, f"{ctx.dataset}-{c}") as stage:
                extract(archive, stage / "zip")
                events = sorted((stage / "zip").rglob("*.aedat"))
                if not events:
                    raise DataFileError(archive, "holds no .aedat event files")
                (stage / "tree" / c).mkdir(parents=True)
                for path in events:
                    os.replace(path, stage / "tree" / c / path.name)
                install_tree(stage / "tree", ctx.root)
            ctx.log(f"{c}: {len(events)} event files")
        files = find_event_files(ctx.root)
    counts = {c: len(v) for c, v in files.items()}
    if any(n != DVS_PER_CLASS for n in counts.values()):
        ctx.log(f"warning: {ctx.root} has {counts} event files, CIFAR10-DVS has {DVS_PER_CLASS} per class")
    cache = _dvs_frame_cache(ctx)
    start, done = time.time(), 0
    for train in (True, False):  # the two splits cover every file once
        ds = CIFAR10DVS(ctx.root, train, frames=ctx.frames, cache_dir=cache)
        for i in range(len(ds)):
            ds.load_frames(i)
            done += 1
            if done % 1000 == 0:
                ctx.log(f"frames: {done} samples cached in {time.time() - start:.0f} s")
    ctx.log(f"frames: {done} samples ({ctx.frames} frames each) in {ds.cache_dir}")
    return {
        "status": status,
        "counts": counts,
        "frames": ctx.frames,
        "frame_cache": str(ds.cache_dir.resolve()),
    }


def _imagenet_split(folder: Path) -> tuple[list[str], int, int]:
    """(class folders, images in them, images lying directly in ``folder``)."""
    classes, images, loose = [], 0, 0
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_dir():
                classes.append(entry.name)
                with os.scandir(entry.path) as files:
                    images += sum(1 for f in files if f.is_file())
            elif entry.name.lower().endswith((".jpeg", ".jpg")):
                loose += 1
    return sorted(classes), images, loose


def prepare_imagenet(ctx: Context) -> dict:
    """ImageNet-1k: check the user's ImageFolder copy; raise with :data:`IMAGENET_EXPECTED` if wrong."""
    problems, counts, found = [], {}, {}
    for split in ("train", "val"):
        folder = ctx.root / split
        if not folder.is_dir():
            problems.append(f"{folder} does not exist")
            continue
        classes, images, loose = _imagenet_split(folder)
        found[split], counts[split] = classes, images
        if loose:
            problems.append(f"{folder} holds {loose} images directly instead of in class folders")
        if len(classes) != IMAGENET_COUNTS["classes"]:
            expected = IMAGENET_COUNTS["classes"]
            problems.append(f"{folder} has {len(classes)} class folders, expected {expected}")
    if len(found) == 2 and found["train"] != found["val"]:
        diff = sorted(set(found["train"]) ^ set(found["val"]))
        problems.append(f"train and val have different class folders (e.g. {', '.join(diff[:3])})")
    if problems:
        raise PrepareError(
            f"{ctx.key} = {ctx.root}: ImageNet-1k is not there as expected: {'; '.join(problems)}.\n"
            + IMAGENET_EXPECTED.format(root=ctx.root)
        )
    for split in ("train", "val"):
        if counts[split] != IMAGENET_COUNTS[split]:
            ctx.log(
                f"warning: {ctx.root / split} has {counts[split]} images, ILSVRC 2012 has "
                f"{IMAGENET_COUNTS[split]}"
            )
    return {"status": "present", "counts": {"classes": len(found["train"]), **counts}}


#: dataset -> preparation function
PREPARERS: dict[str, Callable[[Context], dict]] = {
    "cifar10": prepare_cifar,
    "cifar100": prepare_cifar,
    "imagenet200": prepare_tiny_imagenet,
    "cifar10_dvs": prepare_cifar10_dvs,
    "imagenet": prepare_imagenet,
}


def prepare(
    dataset: str,
    root: Path | str,
    cache: Path | str,
    mirror: str | None = None,
    frames: int = 10,
    frame_cache: Path | str | None = None,
    sources: tuple[Remote, ...] | None = None,
    key: str | None = None,
    log: Callable[[str], None] = print,
    retry_wait: float = 2.0,
) -> dict:
    """Prepare ``dataset`` under ``root`` (downloads and caches under ``cache``); returns its record.

    ``sources`` replaces the published files (tests); ``key`` names the root in messages (default
    ``data_roots.<dataset>``, the workflow's config key).
    """
    if dataset not in PREPARERS:
        raise PrepareError(_unknown(dataset))
    if frames < 1:
        raise PrepareError(f"frames must be >= 1, got {frames}")
    start = time.time()
    ctx = Context(
        dataset=dataset,
        root=Path(root),
        cache=Path(cache),
        key=key or f"data_roots.{dataset}",
        mirror=mirror,
        frames=frames,
        frame_cache=Path(frame_cache) if frame_cache else None,
        sources=default_sources(dataset) if sources is None else tuple(sources),
        log=log,
        retry_wait=retry_wait,
    )
    record = PREPARERS[dataset](ctx)
    return {
        "dataset": dataset,
        "root": str(ctx.root.resolve()),
        **record,
        "sources": [asdict(r) | {"fetched_from": remote_url(r, mirror)} for r in ctx.sources],
        "seconds": round(time.time() - start, 1),
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lmht.data.prepare",
        description="Download, verify and lay out a dataset of the LM-HT paper suite (details: module doc).",
    )
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--root", required=True, help="where the dataset is (or goes): data_roots.<dataset>")
    parser.add_argument("--cache", required=True, help="writable folder for downloads and frame caches")
    parser.add_argument(
        "--mirror",
        default=os.environ.get(MIRROR_ENV) or None,
        help=f"fetch files as MIRROR/<file name> (default ${MIRROR_ENV})",
    )
    parser.add_argument("--frames", type=int, default=10, help="cifar10_dvs: frames per sample to cache")
    parser.add_argument(
        "--frame-cache", help="cifar10_dvs: the loader's frame cache folder (default CACHE/cifar10_dvs)"
    )
    parser.add_argument("--record", help="write the preparation record (JSON) here")
    parser.add_argument("--key", help="name of the root in messages (default data_roots.<dataset>)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"prepare {args.dataset}: {message}", flush=True)

    try:
        record = prepare(
            args.dataset,
            args.root,
            args.cache,
            args.mirror,
            args.frames,
            args.frame_cache,
            key=args.key,
            log=log,
        )
    except (PrepareError, DataFileError, DatasetNotFoundError) as err:
        print(f"prepare {args.dataset}: error: {err}", file=sys.stderr, flush=True)
        return 1
    if args.record:
        _write_json(Path(args.record), record)
    log(f"{record['status']}: {record['root']} ({record['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
