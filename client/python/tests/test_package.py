"""The package as shipped: it builds as pip builds it, needing nothing
from the network; `make install`'s installer lays it out for the system's
Python; the versions agree; the library is found as documented."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import dtx

PKG = Path(__file__).resolve().parent.parent  # client/python
ROOT = PKG.parent.parent


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180)
    assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def child_env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    e.update(extra)
    return e


SMOKE = (
    "import dtx, sys; "
    "print(dtx.__file__); "
    "c = dtx.connect(); "
    "print(c.oneshot([('a', 'SELECT $1::int * 2', [21])]).results[0].scalar())"
)


FRONTEND = """
import json, sys, tomllib
with open("pyproject.toml", "rb") as f:
    system = tomllib.load(f)["build-system"]
sys.path[:0] = system["backend-path"]          # as a PEP 517 frontend (pip) does
backend = __import__(system["build-backend"])
print(json.dumps({
    "requires": system["requires"],
    "hook_requires": backend.get_requires_for_build_wheel(),
    "wheel": backend.build_wheel(sys.argv[1]),
    "sdist": backend.build_sdist(sys.argv[1]),
    "editable": backend.build_editable(sys.argv[2]),
}))
"""


def test_the_build_needs_nothing_from_the_network(tmp_path: Path) -> None:
    # what pip does for `pip install ./client/python`: read pyproject.toml,
    # ask the backend what it needs (nothing: so nothing is downloaded),
    # build the wheel
    (tmp_path / "editable").mkdir()
    out = json.loads(run(sys.executable, "-c", FRONTEND, tmp_path, tmp_path / "editable", env=child_env(), cwd=PKG))
    assert out["requires"] == [] and out["hook_requires"] == []
    assert out["wheel"] == f"dtx-{dtx.__version__}-py3-none-any.whl"
    assert out["sdist"] == f"dtx-{dtx.__version__}.tar.gz"
    with zipfile.ZipFile(tmp_path / out["wheel"]) as z:
        names = set(z.namelist())
        info = f"dtx-{dtx.__version__}.dist-info"
        assert {"dtx/__init__.py", "dtx/aio.py", "dtx/py.typed", f"{info}/METADATA", f"{info}/RECORD"} <= names
        assert "dtx/_install.py" not in names
        assert "Requires-Python: >=3.11" in z.read(f"{info}/METADATA").decode()
        # every file's hash in RECORD is right (pip checks them)
        for line in z.read(f"{info}/RECORD").decode().splitlines():
            path, digest, size = line.split(",")
            if digest:
                data = z.read(path)
                want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (f"sha256={want}", len(data)), path
        # installed (a pure-Python wheel installs by unpacking), it works
        target = tmp_path / "site"
        z.extractall(target)
    got = run(sys.executable, "-c", SMOKE, env=child_env(PYTHONPATH=str(target)), cwd=tmp_path).splitlines()
    assert got == [str(target / "dtx" / "__init__.py"), "42"]
    with tarfile.open(tmp_path / out["sdist"]) as t:
        assert f"dtx-{dtx.__version__}/build_backend/dtx_build.py" in t.getnames()
    with zipfile.ZipFile(tmp_path / "editable" / out["editable"]) as z:
        assert z.read("__editable__.dtx.pth").decode().strip() == str(PKG)


def test_make_install_lays_out_the_package(tmp_path: Path) -> None:
    # what `make install` runs, into a DESTDIR
    out = run(sys.executable, PKG / "build_backend" / "dtx_build.py", "install", "--prefix", "/opt/dtx",
              "--destdir", tmp_path)
    site = run(sys.executable, PKG / "build_backend" / "dtx_build.py", "site-dir", "--prefix", "/opt/dtx").strip()
    assert site.startswith("/opt/dtx/lib/python3")
    where = Path(str(tmp_path) + site)
    assert str(where) in out
    assert (where / "dtx" / "__init__.py").exists()
    assert "LIBDIR = '/opt/dtx/lib'" in (where / "dtx" / "_install.py").read_text()
    record = (where / f"dtx-{dtx.__version__}.dist-info" / "RECORD").read_text()
    assert "dtx/connection.py,sha256=" in record
    # the installed copy loads the library from LIBDTX_PATH like any other
    got = run(sys.executable, "-c", SMOKE, env=child_env(PYTHONPATH=str(where)), cwd=tmp_path).splitlines()
    assert got == [str(where / "dtx" / "__init__.py"), "42"]
    # the Makefile runs this same installer
    makefile = (ROOT / "Makefile").read_text()
    assert "client/python/build_backend/dtx_build.py install" in makefile


def test_versions_agree() -> None:
    with open(PKG / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    make_version = re.search(r"^VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert make_version
    assert project["version"] == dtx.__version__ == make_version.group(1)
    assert project["requires-python"] == ">=3.11"


def test_libdtx_path_names_the_library(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "libdtx.so.1"
    p = subprocess.run(
        [sys.executable, "-c", "import dtx; dtx.connect()"],
        capture_output=True, text=True, env=child_env(PYTHONPATH=str(PKG), LIBDTX_PATH=str(missing)),
    )
    assert p.returncode == 1
    assert "InterfaceError" in p.stderr and str(missing) in p.stderr and "LIBDTX_PATH" in p.stderr
    # import alone does not need the library
    run(sys.executable, "-c", "import dtx", env=child_env(PYTHONPATH=str(PKG), LIBDTX_PATH=str(missing)))


def test_package_uses_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names)
    for f in (PKG / "dtx").glob("*.py"):
        for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", f.read_text(), re.M):
            name = m.group(1)
            assert name in stdlib or name in ("dtx", "__future__"), f"{f.name} imports {name}"
