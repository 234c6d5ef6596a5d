"""
Real SMTP clients we did not write: swaks, curl's smtp:// and Postfix's
smtp-source, over IPv4 and IPv6.
"""

import os
import shutil
import subprocess

import pytest

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"


def _need(tool):
    path = shutil.which(tool) or (tool if tool.startswith("/") else None)
    if not path or not os.path.exists(path):
        pytest.fail(f"{tool} is not installed (scripts/install-deps.sh installs it)")
    return path


def _run(cmd, timeout=60, input=None):
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input)
    return p


def _mine(g, rcpt, marker):
    return [m for m in g.maildir_messages(rcpt) if marker.encode() in m]


@pytest.mark.parametrize("family", [4, 6])
def test_swaks(shared_godwit, uniq, family):
    g = shared_godwit
    _need("swaks")
    server = "127.0.0.1" if family == 4 else "::1"
    p = _run(["swaks", f"-{family}", "--server", server, "--port", str(g.port),
              "--helo", "swaks.test", "--from", "sender@example.org",
              "--to", "alice@example.test", "--header", f"Subject: swaks {uniq}",
              "--body", f"hello from swaks {uniq}\n.leading dot line\n"])
    assert p.returncode == 0, p.stdout.decode(errors="replace")[-3000:]
    got = _mine(g, "alice@example.test", uniq)
    assert len(got) == 1
    assert b"\n.leading dot line\n" in got[0]
    assert b"from swaks.test" in got[0]


def test_swaks_pipelining(shared_godwit, uniq):
    g = shared_godwit
    _need("swaks")
    p = _run(["swaks", "--pipeline", "--server", f"127.0.0.1:{g.port}",
              "--from", "sender@example.org", "--to", "alice@example.test,bob@example.test",
              "--header", f"Subject: swaks pipelined {uniq}"])
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out[-3000:]
    assert len(_mine(g, "alice@example.test", uniq)) == 1
    assert len(_mine(g, "bob@example.test", uniq)) == 1


def test_swaks_relay_refused(shared_godwit, uniq):
    g = shared_godwit
    _need("swaks")
    p = _run(["swaks", "--server", f"127.0.0.1:{g.port}", "--from", "alice@example.test",
              "--to", "victim@other.example", "--header", f"Subject: {uniq}"])
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 24, f"swaks exit {p.returncode} (24 = RCPT refused):\n{out[-3000:]}"
    assert "554 5.7.1" in out, out[-3000:]
    assert g.queue_files() == []
    assert g.find_messages(uniq) == []


@pytest.mark.parametrize("family", [4, 6])
def test_curl(shared_godwit, uniq, family, tmp_path):
    g = shared_godwit
    _need("curl")
    msg = (f"From: <sender@example.org>\r\nTo: <alice@example.test>\r\n"
           f"Subject: curl {uniq}\r\n\r\nhello from curl {uniq}\r\n.dot line\r\n")
    f = tmp_path / "msg.eml"
    f.write_bytes(msg.encode())
    host = "127.0.0.1" if family == 4 else "[::1]"
    p = _run(["curl", "-sS", "--max-time", "30", f"smtp://{host}:{g.port}/curl.test",
              "--mail-from", "sender@example.org", "--mail-rcpt", "alice@example.test",
              "--mail-rcpt", "bob@example.test", "--upload-file", str(f)])
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    for rcpt in ("alice@example.test", "bob@example.test"):
        got = _mine(g, rcpt, uniq)
        assert len(got) == 1, rcpt
        assert got[0].endswith(msg.replace("\r\n", "\n").encode()), got[0][-300:]


def test_curl_unknown_user(shared_godwit, tmp_path):
    g = shared_godwit
    _need("curl")
    f = tmp_path / "msg.eml"
    f.write_bytes(b"Subject: x\r\n\r\nx\r\n")
    p = _run(["curl", "-sS", "-v", "--max-time", "30", f"smtp://127.0.0.1:{g.port}",
              "--mail-from", "sender@example.org", "--mail-rcpt", "nobody@example.test",
              "--upload-file", str(f)])
    assert p.returncode != 0
    assert b"550 5.1.1" in p.stderr, p.stderr.decode(errors="replace")[-2000:]


def test_smtp_source_parallel(make_godwit):
    g = make_godwit()
    _need(SMTP_SOURCE)
    p = _run([SMTP_SOURCE, "-m", "50", "-s", "5", "-l", "2048", "-M", "source.test",
              "-f", "sender@example.org", "-t", "alice@example.test",
              f"127.0.0.1:{g.port}"], timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")[-3000:]
    msgs = g.maildir_messages("alice@example.test")
    assert len(msgs) == 50
    for m in msgs:
        assert m.endswith(b"\n"), m[-100:]
        assert len(m) > 2048
        assert b"\r" not in m


def test_smtp_source_reused_connections_ipv6(make_godwit):
    g = make_godwit()
    _need(SMTP_SOURCE)
    p = _run([SMTP_SOURCE, "-6", "-d", "-m", "30", "-s", "3", "-l", "1024", "-r", "1",
              "-M", "source.test", "-f", "sender@example.org", "-t", "bob@example.test",
              f"[::1]:{g.port}"], timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")[-3000:]
    assert len(g.maildir_messages("bob@example.test")) == 30
