"""
Duplicate recipients in one SMTP transaction are collapsed (found in O(1)
per recipient): the same address given twice, an alias
that leads to a mailbox already named, and an alias that overlaps another
all deliver one copy per mailbox, while every RCPT is still answered 250
and counted in the accept line's rcpts.
"""

import re

from smtpclient import make_message, transaction


def _accept_line(g, uniq_sender):
    lines = [l for l in g.log_text().splitlines()
             if re.search(r"\bevent=accept\b", l) and uniq_sender in l]
    assert len(lines) == 1, lines
    return lines[0]


def _field(line, key):
    m = re.search(rf"\b{key}=(\d+)", line)
    assert m, f"no {key}= in {line}"
    return int(m.group(1))


def _copies(g, address, uniq):
    return len([m for m in g.maildir_messages(address) if uniq.encode() in m])


def test_duplicates_and_overlapping_aliases_deliver_once(shared_godwit, uniq):
    g = shared_godwit
    sender = f"dedup-{abs(hash(uniq)) % 10**8}@example.org"
    # postmaster and team are aliases: postmaster -> alice,
    # team -> alice + bob (conftest.ALIASES)
    rcpts = ["alice@example.test", "alice@example.test",
             "postmaster@example.test", "team@example.test",
             "bob@example.test", "team@example.test"]
    msg = make_message(uniq, to="team@example.test")
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, sender, rcpts, msg)
        assert (r.code, r.enh) == (250, "2.0.0"), r
    assert _copies(g, "alice@example.test", uniq) == 1
    assert _copies(g, "bob@example.test", uniq) == 1
    line = _accept_line(g, sender)
    assert _field(line, "rcpts") == len(rcpts), line
    assert _field(line, "local") == 2, line
    assert _field(line, "remote") == 0, line


def test_many_duplicates_deliver_once(shared_godwit, uniq):
    """max_recipients RCPTs (100), nearly all of them repeats."""
    g = shared_godwit
    sender = f"dedup-many-{abs(hash(uniq)) % 10**8}@example.org"
    rcpts = ["alice@example.test", "team@example.test",
             "postmaster@example.test", "bob@example.test"] * 25
    msg = make_message(uniq)
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, sender, rcpts, msg)
        assert (r.code, r.enh) == (250, "2.0.0"), r
    assert _copies(g, "alice@example.test", uniq) == 1
    assert _copies(g, "bob@example.test", uniq) == 1
    line = _accept_line(g, sender)
    assert _field(line, "rcpts") == len(rcpts), line
    assert _field(line, "local") == 2, line

