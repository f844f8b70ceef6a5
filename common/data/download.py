"""Verified, resumable downloads, and the known datasets fetched by name.

``download(url, dest_dir, sha256=..., md5=...)`` streams to ``<name>.part`` with a progress
bar, resumes a partial file with an HTTP Range request, checks the checksum and only then
renames the file into place, so a file at the final path is always a complete, verified
one. Data lives under ``SEGCOURSE_DATA`` (default ``~/.cache/segcourse``; see ``data_root``).

Only the standard library (urllib) is used.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path
from urllib.parse import urlparse

CHUNK = 1 << 20


def data_root():
    """Where datasets live: ``$SEGCOURSE_DATA``, else ``$XDG_CACHE_HOME/segcourse``, else
    ``~/.cache/segcourse``. Not created here.

    Returns:
        the folder as a ``Path``.
    """
    env = os.environ.get("SEGCOURSE_DATA")
    return Path(env).expanduser() if env else user_cache()


def user_cache():
    """The course's folder in the user's cache: ``$XDG_CACHE_HOME/segcourse``, else
    ``~/.cache/segcourse`` (datasets by default, exported programs). Not created here.

    Returns:
        the folder as a ``Path``.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "segcourse"


def file_hashes(path, algorithms):
    """Hex digests of ``path`` for each name in ``algorithms`` (one pass over the file)."""
    hs = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            for h in hs.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hs.items()}


def _expected(sha256, md5, sha1):
    return {a: v.lower() for a, v in (("sha256", sha256), ("md5", md5), ("sha1", sha1)) if v}


def _mismatch(path, expected):
    """The first (algorithm, expected, actual) that differs, or None."""
    got = file_hashes(path, list(expected))
    for a, want in expected.items():
        if got[a] != want:
            return a, want, got[a]
    return None


def download(url, dest_dir=None, sha256=None, md5=None, filename=None, sha1=None,
             progress=True, timeout=60):
    """Download ``url`` into ``dest_dir`` and verify it.

    Args:
        url: http(s) URL.
        dest_dir: folder for the file (default ``data_root()``), created if needed.
        sha256, md5, sha1: expected hex digest(s); without any the file is not verified.
        filename: name to save as (default: the last part of the URL's path).
        progress: show a tqdm progress bar.
        timeout: seconds to wait for the server on connect and on each read.

    Returns:
        Path of the verified file. A present file that verifies is returned without a
        request; a present file that does not is fetched again.

    Raises:
        ValueError: checksum mismatch (names the URL and both digests; nothing is left at
            the final path, the bad temporary file is deleted).
        OSError: HTTP error (status and URL) or a broken connection; a partial transfer is
            kept as ``<name>.part`` and the next call resumes it.
    """
    from tqdm.auto import tqdm

    name = filename or Path(urlparse(url).path).name
    if not name:
        raise ValueError(f"cannot tell a file name from {url!r}; pass filename=")
    dest = Path(dest_dir) if dest_dir is not None else data_root()
    dest.mkdir(parents=True, exist_ok=True)
    final, part = dest / name, dest / (name + ".part")
    expected = _expected(sha256, md5, sha1)
    if final.is_file():
        if not expected or _mismatch(final, expected) is None:
            return final
        warnings.warn(f"{final} does not match its checksum; downloading it again", stacklevel=2)
        final.unlink()

    start = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "segcourse"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:           # the .part already holds the whole file
            resp = None
        else:
            raise OSError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise OSError(f"download of {url} failed: {err.reason}") from err
    if resp is not None:
        with resp:
            if start and resp.status != 206:    # the server ignored Range: start over
                start = 0
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            done = start
            with open(part, "ab" if start else "wb") as f, \
                    tqdm(total=total, initial=start, unit="B", unit_scale=True,
                         desc=name, disable=not progress) as bar:
                try:
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        f.write(block)
                        done += len(block)
                        bar.update(len(block))
                except (OSError, ValueError) as err:    # IncompleteRead, reset, timeout
                    raise OSError(f"download of {url} interrupted after {done} bytes "
                                  f"({err!r}); call again to resume from {part}") from err
            if total is not None and done < total:
                raise OSError(f"download of {url} ended after {done} of {total} bytes; "
                              f"call again to resume from {part}")
    if expected:
        bad = _mismatch(part, expected)
        if bad is not None:
            part.unlink()
            algo, want, got = bad
            raise ValueError(f"checksum mismatch for {url}: expected {algo} {want}, got {got} "
                             "(the file was deleted; download again, or check the URL)")
    os.replace(part, final)                    # atomic: the final name only ever holds a verified file
    return final


# ------------------------------------------------------------------ known datasets
# Published checksums only: VOC's md5 is the one torchvision and paddle.vision use; the
# ADE20K sha1 is GluonCV's; the COCO panoptic sha256 (860,725,834 bytes) is the one
# several projects pin. PaddleSeg publishes no checksum for its optic-disc zip.
DATASETS = {
    "voc2012": dict(
        urls=("http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
              "https://dataset.bj.bcebos.com/voc/VOCtrainval_11-May-2012.tar"),
        md5="6cd6e144f989b92b3379bac3b3de84fd", root="VOCdevkit/VOC2012",
        about="PASCAL VOC 2012 trainval (2 GB): VOCSegmentation(root)"),
    "ade20k": dict(
        urls=("http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",),
        sha1="219e1696abb36c8ba3a3afe7fb2f4b4606a897c7", root="ADEChallengeData2016",
        about="ADE20K scene parsing (MIT challenge 2016, 150 classes, 923 MB)"),
    "coco_panoptic_annotations": dict(
        urls=("http://images.cocodataset.org/annotations/panoptic_annotations_trainval2017.zip",),
        sha256="c05f76d2129b6b561eb70efe16e7006df62f73fb92889132d373b9d90e31a370",
        root="annotations",
        about="COCO 2017 panoptic annotations (861 MB; the inner panoptic_<split>2017.zip "
              "hold the PNGs; images are separate: val2017.zip / train2017.zip)"),
    "optic_disc": dict(
        urls=("https://paddleseg.bj.bcebos.com/dataset/optic_disc_seg.zip",),
        root="optic_disc_seg",
        about="PaddleSeg's optic disc set (2 classes, ~19 MB): "
              "FileListDataset(root/'train_list.txt', root, 2)"),
}

CITYSCAPES_HELP = (
    "Cityscapes needs a login, so it cannot be fetched for you. Register at "
    "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip, and unzip both into {root}, giving {root}/gtFine/<split>/<city>/ "
    "and {root}/leftImg8bit/<split>/<city>/; then CityscapesSegmentation('{root}').")


def _extract(archive, dest):
    """Unpack a tar or zip archive into ``dest``, refusing members that leave it."""
    dest = Path(dest).resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            _check_members(archive, dest, names)
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            _check_members(archive, dest, t.getnames())
            # the 'data' filter (Python >= 3.12, backported) also refuses links and devices
            t.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive")


def _check_members(archive, dest, names):
    for n in names:
        if not (dest / n).resolve().is_relative_to(dest):
            raise ValueError(f"{archive}: member {n!r} would be written outside {dest}")


def fetch_dataset(name, root=None, extract=True, progress=True):
    """Download (once, verified) and unpack a known dataset; return its folder.

    Args:
        name: one of ``DATASETS`` (``voc2012``, ``ade20k``, ``coco_panoptic_annotations``,
            ``optic_disc``) or ``cityscapes`` (raises, explaining where to put the files).
        root: where data lives (default ``data_root()``).
        extract: unpack the archive (skipped when the folder is already there).

    Returns:
        The dataset's folder under ``root`` (or the archive's path if ``extract=False``).
    """
    root = Path(root) if root is not None else data_root()
    if name == "cityscapes":
        raise FileNotFoundError(CITYSCAPES_HELP.format(root=root / "cityscapes"))
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of "
                         f"{sorted(DATASETS) + ['cityscapes']}")
    spec = DATASETS[name]
    folder = root / spec["root"]
    if extract and folder.is_dir() and any(folder.iterdir()):
        return folder
    errors = []
    for url in spec["urls"]:                   # mirrors in order
        try:
            archive = download(url, root / "archives", sha256=spec.get("sha256"),
                               md5=spec.get("md5"), sha1=spec.get("sha1"), progress=progress)
            break
        except OSError as err:
            errors.append(str(err))
    else:
        raise OSError(f"could not download {name}: " + "; ".join(errors))
    if not extract:
        return archive
    tmp = root / f".{name}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    _extract(archive, tmp)
    for child in tmp.iterdir():               # move into place only once fully unpacked
        target = root / child.name
        if not target.exists():
            os.replace(child, target)
    shutil.rmtree(tmp, ignore_errors=True)
    if not folder.is_dir():
        raise FileNotFoundError(f"{archive} unpacked into {root}, but {folder} is not there "
                                f"(expected the archive to hold {spec['root']}/)")
    return folder
