"""dtx_build — how the dtx Python package is built and installed, with the
standard library only.

NOTES
    Two users:

    * pip, through pyproject.toml (PEP 517, with ``backend-path``): this
      module is the build backend.  It needs nothing to be downloaded
      (``requires = []``), so ``pip install ./client/python`` works offline
      — in a virtual environment, with ``--user`` or with ``--target``.  It
      builds a pure-Python wheel (the package's files and a
      ``dist-info``), a source archive, and an editable wheel (a ``.pth``
      file naming this directory) for ``pip install -e``.

    * ``make install``, which runs it as a program::

          python3 build_backend/dtx_build.py install --prefix /usr/local [--destdir D]

      installs the package for that interpreter (the system's python3)
      under the prefix: on Debian into ``/usr/local/lib/python3.X/
      dist-packages`` for /usr/local (``/usr/lib/python3/dist-packages``
      for /usr), elsewhere into ``PREFIX/lib/python3.X/site-packages``
      (``--sitedir`` chooses another directory).  It also writes
      ``dtx/_install.py`` recording ``PREFIX/lib``, where ``make install``
      puts libdtx.so.1, so that the package finds the library even before
      ``ldconfig`` has run; and a ``dist-info`` (INSTALLER "make"), so that
      pip and importlib.metadata know the package.  With an interpreter
      older than 3.11 it installs nothing and says so.

    The name, version and summary come from pyproject.toml's [project]
    table, the one place they are written (the version is the Makefile's
    VERSION; tests/integration/python.sh checks that they agree).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # client/python
PACKAGE = "dtx"
SUPPORTED = (3, 11)


def _project() -> dict[str, str]:
    import tomllib

    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        p = tomllib.load(f)["project"]
    return {
        "name": p["name"],
        "version": p["version"],
        "summary": p.get("description", ""),
        "requires_python": p.get("requires-python", ""),
    }


def _package_files() -> list[str]:
    """The package's files, relative to HERE ('dtx/__init__.py', ...)."""
    out = []
    for name in sorted(os.listdir(os.path.join(HERE, PACKAGE))):
        if (name.endswith(".py") or name == "py.typed") and name != "_install.py":
            out.append(f"{PACKAGE}/{name}")
    return out


def _metadata(p: dict[str, str]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {p['name']}",
        f"Version: {p['version']}",
        f"Summary: {p['summary']}",
    ]
    if p["requires_python"]:
        lines.append(f"Requires-Python: {p['requires_python']}")
    return "\n".join(lines) + "\n"


def _wheel_file() -> str:
    return "Wheel-Version: 1.0\nGenerator: dtx_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _dist_info(p: dict[str, str]) -> str:
    return f"{p['name']}-{p['version']}.dist-info"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(directory: str, files: dict[str, bytes], p: dict[str, str]) -> str:
    """A wheel holding `files` (archive path -> bytes) and a dist-info."""
    info = _dist_info(p)
    files = dict(files)
    files[f"{info}/METADATA"] = _metadata(p).encode()
    files[f"{info}/WHEEL"] = _wheel_file().encode()
    files[f"{info}/top_level.txt"] = f"{PACKAGE}\n".encode()
    record = [_record_line(k, v) for k, v in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    name = f"{p['name']}-{p['version']}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def _read(rel: str) -> bytes:
    with open(os.path.join(HERE, rel), "rb") as f:
        return f.read()


# ---- PEP 517 / PEP 660 hooks ------------------------------------------------------


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: object = None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings: object = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: object = None) -> str:
    p = _project()
    info = _dist_info(p)
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    for name, text in (("METADATA", _metadata(p)), ("WHEEL", _wheel_file())):
        with open(os.path.join(metadata_directory, info, name), "w") as f:
            f.write(text)
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    return _write_wheel(wheel_directory, {rel: _read(rel) for rel in _package_files()}, _project())


def build_editable(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    # a .pth file puts this directory on sys.path: edits take effect at once
    return _write_wheel(wheel_directory, {f"__editable__.{PACKAGE}.pth": (HERE + "\n").encode()}, _project())


def build_sdist(sdist_directory: str, config_settings: object = None) -> str:
    p = _project()
    base = f"{p['name']}-{p['version']}"
    name = f"{base}.tar.gz"
    members = ["pyproject.toml", "build_backend/dtx_build.py"] + _package_files()
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in members:
            t.add(os.path.join(HERE, rel), arcname=f"{base}/{rel}")
        data = _metadata(p).encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(data)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(data))
    return name


# ---- make install ---------------------------------------------------------------


def site_dir(prefix: str) -> str:
    """Where this interpreter finds packages installed under `prefix`."""
    import sysconfig

    prefix = os.path.normpath(prefix)
    if sysconfig.get_default_scheme() == "posix_local":  # Debian and derivatives
        if prefix == "/usr/local":
            return sysconfig.get_path("purelib", "posix_local")
        if prefix == "/usr":
            return sysconfig.get_path("purelib", "deb_system")
    return sysconfig.get_path("purelib", "posix_prefix", vars={"base": prefix, "platbase": prefix})


def install(prefix: str, destdir: str = "", sitedir: str | None = None) -> str:
    """Install the package (see NOTES); returns the directory it went to."""
    import py_compile

    p = _project()
    target = sitedir or site_dir(prefix)
    root = destdir.rstrip("/") + target if destdir else target
    pkg = os.path.join(root, PACKAGE)
    os.makedirs(pkg, exist_ok=True)
    files = {rel: _read(rel) for rel in _package_files()}
    libdir = os.path.join(os.path.normpath(prefix), "lib")
    files[f"{PACKAGE}/_install.py"] = (
        '"""Written by `make install`: where it installed libdtx (see _libdtx.py)."""\n\n'
        f"LIBDIR = {libdir!r}\n"
    ).encode()
    info = _dist_info(p)
    files[f"{info}/METADATA"] = _metadata(p).encode()
    files[f"{info}/INSTALLER"] = b"make\n"
    files[f"{info}/top_level.txt"] = f"{PACKAGE}\n".encode()
    # a RECORD, so that pip can uninstall what make installed
    record = [_record_line(k, v) for k, v in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        if rel.endswith(".py"):
            py_compile.compile(path, dfile=os.path.join(target, rel), doraise=True)
    return root


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="dtx_build.py", description="install the dtx Python package")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ins = sub.add_parser("install", help="install for this interpreter under a prefix")
    ins.add_argument("--prefix", default="/usr/local")
    ins.add_argument("--destdir", default="")
    ins.add_argument("--sitedir", default=None, help="install into this directory instead")
    sub.add_parser("site-dir", help="print where install would put the package").add_argument(
        "--prefix", default="/usr/local")
    args = ap.parse_args(argv)
    if args.cmd == "site-dir":
        print(site_dir(args.prefix))
        return 0
    if sys.version_info < SUPPORTED:
        print(f"dtx: {sys.executable} is Python {sys.version.split()[0]}; the dtx package needs "
              f"{SUPPORTED[0]}.{SUPPORTED[1]} or newer: not installed", file=sys.stderr)
        return 0
    where = install(args.prefix, args.destdir, args.sitedir)
    print(f"dtx: Python package installed in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
