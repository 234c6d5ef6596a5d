"""scripts/check-layers, the include rule of src/ (docs/architecture.md):
it passes on the tree as it is, and fails, naming the file and line, on
each kind of break: an include from a layer above, from a peer layer, a
flat include that does not name its layer, and a module cycle."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check-layers"


def check(src):
    return subprocess.run([sys.executable, str(CHECK), str(src)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def tree(tmp_path):
    dst = tmp_path / "src"
    shutil.copytree(ROOT / "src", dst)
    return dst


def add_include(path, inc):
    text = path.read_text()
    path.write_text(f'#include "{inc}"\n' + text)


def test_the_tree_passes():
    r = check(ROOT / "src")
    assert r.returncode == 0, r.stderr
    assert "no upward include, no cycle" in r.stdout


def test_upward_include_fails(tree):
    add_include(tree / "store" / "queue.c", "mta/runner.h")
    r = check(tree)
    assert r.returncode == 1
    assert "store/queue.c:1: store/ includes \"mta/runner.h\" from mta/, " \
           "a layer above it" in r.stderr


def test_peer_include_fails(tree):
    add_include(tree / "smtpd" / "smtp_server.c", "pop3d/pop3_server.h")
    r = check(tree)
    assert r.returncode == 1
    assert "from its peer pop3d/" in r.stderr


def test_include_without_layer_fails(tree):
    add_include(tree / "net" / "tls.c", "util.h")
    r = check(tree)
    assert r.returncode == 1
    assert "net/tls.c:1: include \"util.h\" does not name its layer" in r.stderr


def test_cycle_within_a_layer_fails(tree):
    # lib/base64 -> lib/util is allowed alone; util -> base64 closes a cycle
    add_include(tree / "lib" / "base64.h", "lib/util.h")
    add_include(tree / "lib" / "util.h", "lib/base64.h")
    r = check(tree)
    assert r.returncode == 1
    assert "module cycle:" in r.stderr
    assert "lib/base64" in r.stderr and "lib/util" in r.stderr


def test_source_outside_a_layer_fails(tree):
    (tree / "stray.c").write_text("int stray;\n")
    (tree / "extra").mkdir()
    r = check(tree)
    assert r.returncode == 1
    assert "stray.c: source outside a layer directory" in r.stderr
    assert "extra: directory is not a layer" in r.stderr
