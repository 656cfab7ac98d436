"""The distribution as a user installs it: build the wheel from a copy of the
source, install it (no editable link) into a fresh virtualenv, and from a
folder outside the checkout run a migration and a daemon role through the
console scripts. Dependencies come from this interpreter's site-packages
(--system-site-packages), so nothing is downloaded."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import requests
import yaml

from engine.store.migrations import available

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "run.py", "engine", "sql", "tools")


def clean_env() -> dict[str, str]:
    """No PYTHONPATH: the installed package must stand on its own."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(dist)], check=True, timeout=600,
                   env=clean_env(), cwd=tmp_path)
    (wheel,) = dist.glob("cryptogrid_engine-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/_bundled/sql/taskdb/sqlite/0001_tasks.sql" in names
    assert "engine/_bundled/run.py" in names and "engine/_bundled/tools/tasks.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                   timeout=300)
    bin_dir = venv / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300, env=clean_env())
    home = tmp_path / "elsewhere"
    home.mkdir()
    where = subprocess.run([str(bin_dir / "python"), "-c", "import engine; print(engine.__file__)"],
                           capture_output=True, text=True, check=True, cwd=home, env=clean_env())
    assert where.stdout.strip().startswith(str(venv)), where.stdout

    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({
        "daemon": {"data_dir": str(home / "data"), "id": "wheel-test"}, "http": {"port": 0},
        "storage": {"history": {"backend": "none"}}}))
    migrated = subprocess.run([str(bin_dir / "cryptogrid-tasks"), "--config", str(config),
                               "migrate"], capture_output=True, text=True, timeout=120, cwd=home,
                              env=clean_env())
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip().endswith(f"schema version {len(available('sqlite'))}")

    daemon = subprocess.Popen([str(bin_dir / "cryptogrid"), "--role", "monitor", "--config",
                               str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=home, env=clean_env())
    try:
        url = None
        assert daemon.stdout is not None
        for line in daemon.stdout:
            found = re.search(r"http:\s+(http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the daemon printed no start-up summary"
        assert requests.get(url + "/health", timeout=10).status_code == 200
        daemon.send_signal(signal.SIGINT)
        out, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, out
        assert "stopped cleanly" in out
    finally:
        if daemon.poll() is None:
            daemon.kill()
