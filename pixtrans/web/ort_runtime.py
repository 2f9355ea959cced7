"""ONNX Runtime Web for in-page inference: fetched from the npm registry, checked, served from ``static/ort/``.

    python -m pixtrans.web.ort_runtime            # what `make install` runs; --force to fetch again

The version and the tarball's sha512 integrity are pinned in ``vendor/package-lock.json``; ``npm pack`` downloads the
tarball (npm's own cache and registry settings apply), the digest is checked against the lock, and only the WASM and
WebGPU builds' files (:data:`FILES`) are copied out. Without npm (or offline) the studio still works: every model runs
on the server, and the page says why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import PixtransError

HERE = Path(__file__).resolve().parent
ORT_DIR = HERE / "static" / "ort"  # git-ignored; the page imports ort/ort.wasm.min.mjs
LOCK = HERE / "vendor" / "package-lock.json"
PACKAGE = "onnxruntime-web"
# the WASM execution provider's ES module, its Emscripten loader and the SIMD + threads binary (required)
WASM_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# the WebGPU build (WebGPU + WASM execution providers; its binary is the asyncify one), used where the browser gives a
# WebGPU adapter
WEBGPU_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
FILES = WASM_FILES + WEBGPU_FILES
STAMP = "VERSION"


class RuntimeInstallError(PixtransError):
    """The downloaded runtime does not match the pinned integrity."""


def pinned() -> tuple[str, str]:
    """(version, integrity) of onnxruntime-web in the lock file."""
    entry = json.loads(LOCK.read_text())["packages"][f"node_modules/{PACKAGE}"]
    return entry["version"], entry["integrity"]


def installed(folder: Path = ORT_DIR, files: tuple[str, ...] = WASM_FILES) -> str | None:
    """The installed runtime's version when ``files`` (default: the WASM build) are all present, else None."""
    stamp = folder / STAMP
    if not stamp.is_file() or not all((folder / f).is_file() for f in files):
        return None
    return stamp.read_text().strip() or None


def backends(folder: Path = ORT_DIR) -> list[str]:
    """The page's in-page backends the installed files allow, preferred first: ``webgpu`` (when the browser gives an
    adapter), ``wasm``; empty when the runtime is not installed."""
    if installed(folder) is None:
        return []
    return ["webgpu", "wasm"] if installed(folder, FILES) else ["wasm"]


def runtime_files(folder: Path = ORT_DIR) -> list[Path]:
    """The WASM build's files (empty when not installed)."""
    return [folder / f for f in WASM_FILES] if installed(folder) else []


def check_integrity(data: bytes, integrity: str) -> None:
    """Raise :class:`RuntimeInstallError` unless ``data`` has the Subresource-Integrity digest ``integrity``."""
    algo, _, want = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256"):
        raise RuntimeInstallError(f"{LOCK.name}: unsupported integrity algorithm {algo!r}")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise RuntimeInstallError(
            f"{PACKAGE} tarball integrity mismatch ({algo} {got[:16]}… != {want[:16]}…); "
            "delete npm's cache entry (npm cache clean --force) and run `make install` again"
        )


def extract(tarball: Path, folder: Path, version: str) -> None:
    """Copy :data:`FILES` from the package tarball's ``dist/`` into ``folder`` and write the version stamp."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        for name in FILES:
            member = tar.getmember(f"package/dist/{name}")
            src = tar.extractfile(member)
            if src is None:
                raise RuntimeInstallError(f"{tarball.name}: dist/{name} is not a file")
            with src, open(folder / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    (folder / STAMP).write_text(version + "\n")


def install(force: bool = False, folder: Path = ORT_DIR, log=print) -> bool:
    """Install the pinned runtime into ``folder``; True when it is there afterwards. Missing npm or no network is a
    note (False), a digest mismatch an error."""
    version, integrity = pinned()
    if not force and installed(folder, FILES) == version:
        log(f"onnxruntime-web {version}: already in {folder}")
        return True
    npm = shutil.which("npm")
    if npm is None:
        log("onnxruntime-web: npm not found; the studio will run every model on the server (install Node.js + npm "
            "and run `make install` for in-page inference)")  # fmt: skip
        return False
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [npm, "pack", f"{PACKAGE}@{version}", "--pack-destination", tmp, "--silent", "--ignore-scripts"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            r = None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if r is None or r.returncode != 0 or len(tarballs) != 1:
            why = "timed out" if r is None else (r.stderr.strip().splitlines() or ["no tarball"])[-1]
            log(f"onnxruntime-web: `npm pack` failed ({why}); the studio will run every model on the server")
            return False
        check_integrity(tarballs[0].read_bytes(), integrity)
        extract(tarballs[0], folder, version)
    mb = sum((folder / f).stat().st_size for f in FILES) / 2**20
    log(f"onnxruntime-web {version}: integrity ok, {len(FILES)} files ({mb:.1f} MB) -> {folder}")
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        install(force="--force" in argv)
    except (PixtransError, OSError, KeyError, tarfile.TarError) as err:
        print(f"onnxruntime-web: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
