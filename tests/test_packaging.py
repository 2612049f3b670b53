"""The wheel carries stdlib/, p4/ and codegen/, and an installed mosaico works anywhere."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True)
    (path,) = out.glob("mosaico_dsl-*.whl")
    return path


def test_wheel_contains_the_data_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for std in ("net", "l4s", "security", "fwd"):
        assert f"mosaico_dsl/_data/stdlib/std/{std}.mosaico" in names
    assert "mosaico_dsl/lang/mosaico.lark" in names
    assert any(n.startswith("mosaico_dsl/_data/p4/") for n in names)
    assert any(n.startswith("mosaico_dsl/_data/codegen/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mosaico = mosaico_dsl.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.slow
def test_installed_mosaico_runs_from_another_directory(wheel, tmp_path):
    # A fresh virtual environment that borrows only the dependencies from this one; mosaico
    # itself comes from the wheel, and runs with /tmp-like cwd far from the checkout.
    # (`system_site_packages` would borrow the *base* interpreter's packages, which lack
    # the dependencies when this one is a venv: a .pth file borrows this one's instead,
    # after the fresh environment's own site-packages, and without their .pth files, so
    # this environment's editable mosaico stays out.)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    own = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    borrowed = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    (Path(own) / "_mosaico_test_borrowed.pth").write_text("\n".join(borrowed) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                    str(wheel)], check=True)
    where = subprocess.run([str(py), "-c", "import mosaico_dsl; print(mosaico_dsl.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(env_dir) in where.stdout  # the wheel's copy, not the checkout
    example = tmp_path / "secure_l4s.mosaico"
    example.write_text((ROOT / "examples" / "secure_l4s.mosaico").read_text())
    r = subprocess.run([str(env_dir / "bin" / "mosaico"), "compile", str(example), "-o",
                        str(tmp_path / "build")], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "build" / "ir.json").exists()


def _readme_commands() -> list[str]:
    """README.md's first two commands: the first line of each of its first two ```sh blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = text.split("```sh\n")[1:3]
    return [block.split("\n", 1)[0] for block in blocks]


def test_ci_runs_the_readme_commands_verbatim():
    """CI must do what a new user does: .ci/run holds README's install-and-compile command
    and its test command, character for character, as lines of their own."""
    install, test = _readme_commands()
    assert install.startswith("python3 -m venv") and "pip install ." in install
    assert test.endswith("python -m pytest") and "'.[test]'" in test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install in ci and test in ci
    assert ci[-1] == test  # the suite's exit status is CI's
