"""The cluster image carries only what runs in a cluster: the controller, the monitor and the CLI
work with the emulator and the sandbox packages absent (the Dockerfile deletes them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter in which importing the sandbox or the emulator fails, as in the image.
WITHOUT_SANDBOX = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[:2] in (["controller", "sandbox"], ["controller", "emulator"]):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Absent())
import importlib.util
importlib.util.find_spec = (lambda original: lambda name, *a: None
    if name in ("controller.sandbox", "controller.emulator") else original(name, *a))(importlib.util.find_spec)
import controller.handlers, controller.commands.monitor, controller.monitor.loop
from controller.cli import main
for argv in (["--help"], ["tickets", "list", "--help"], ["controller", "--help"], ["monitor", "--help"]):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
from controller.ui.endpoints import resolve
assert resolve().sandbox is False
print("ok", sorted(m for m in sys.modules if m.startswith(("controller.sandbox", "controller.emulator"))))
"""


def test_controller_monitor_and_cli_need_no_sandbox_or_emulator() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok []"), done.stdout[-2000:]
    assert "{demo,tickets,report,coverage,controller,monitor,probe}" in done.stdout, done.stdout[:800]


def test_dockerfile_drops_the_sandbox_and_emulator() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "controller/emulator" in text and "controller/sandbox" in text and "rm -rf" in text
