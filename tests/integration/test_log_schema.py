"""
The log schema (docs/log-schema.md) cannot drift from the code: every
log_event() in src/ is read here (facility, event, and each field's key),
and every (fac, event) must have its row in the doc naming each of its
keys, every key its row in the key table, every name of
test_log_forgery.py's KNOWN_EVENTS / KNOWN_KEYS its row, and no row may
name an event the code no longer writes. The example lines of the doc
are checked too: the JSON ones with json.loads, the kv ones with a
logfmt reader written here from the logfmt rules (bare values without
space, '=' or '"'; quoted ones with \\" and \\\\), so that what the doc
promises Filebeat, Logstash and Loki is what godwit writes.

Run as a script, it prints the events found in the code (the skeleton of
the doc's tables): python3 tests/integration/test_log_schema.py
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "log-schema.md"
SRC = ROOT / "src"

# Every line has these (log.c), and `truncated` when fields were cut.
HEAD_KEYS = {"ts", "level", "proc", "fac", "event", "truncated"}


def split_args(text):
    """The top-level comma-separated arguments of a call's text."""
    args, depth, cur, i, quote = [], 0, "", 0, False
    while i < len(text):
        c = text[i]
        if quote:
            cur += c
            if c == "\\":
                cur += text[i + 1]
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
            cur += c
        elif c in "([{":
            depth += 1
            cur += c
        elif c in ")]}":
            if depth == 0:
                args.append(cur.strip())
                return args, i
            depth -= 1
            cur += c
        elif c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    raise ValueError("unbalanced call")


def literal(expr):
    m = re.fullmatch(r'"([a-z0-9_-]+)"', expr)
    return m.group(1) if m else None


def dynamic_names():
    """What the non-literal facilities and events can be, read from the
    code that makes them."""
    ops = set()
    for f in [f for d in ("smtpd", "pop3d", "imapd")
              for f in (SRC / d).glob("*.c")]:
        ops |= set(re.findall(r'^\t\.name = "([a-z0-9]+)",', f.read_text(), re.M))
    outcome = set(re.findall(r'log_outcome\(m, i, "([a-z]+)"\)',
                             (SRC / "mta" / "message.c").read_text()))
    ctl = (SRC / "mta" / "control.c").read_text()
    m = re.search(r"op_names\[\] = \{([^}]*)\}", ctl)
    # those with a log_event() of their own never reach the generic one
    control = set(re.findall(r'"([a-z]+)"', m.group(1))) - set(
        re.findall(r'log_event\([A-Z_]+, "queue", "([a-z]+)"', ctl))
    assert ops and outcome and control
    return {"fac": {"cat": ops, "l->ops->name": ops, "s->ops->name": ops},
            "event": {"event": outcome, "control_op_name(cmd.op)": control}}


TYPES = {"STR": "string", "STR_IF": "string", "BYTES": "string",
         "INT": "integer", "UINT": "integer", "BOOL": "yes/no"}


def code_events(types=None):
    """{(fac, event): set of keys} for every log_event() in src/; types,
    if given, gets {key: set of the doc's type words}."""
    dyn = dynamic_names()
    out = {("daemon", "message"): {"msg"}}  # log_info(), log_warn()...
    for f in sorted(SRC.rglob("*.c")):
        text = f.read_text()
        for m in re.finditer(r"\blog_event\(", text):
            args, _ = split_args(text[m.end():])
            fac_e, ev_e = args[1], args[2]
            facs = {literal(fac_e)} if literal(fac_e) else dyn["fac"].get(fac_e)
            evs = {literal(ev_e)} if literal(ev_e) else dyn["event"].get(ev_e)
            assert facs and evs, f"{f}: log_event({fac_e}, {ev_e}): " \
                "teach dynamic_names() what it can be"
            keys = set()
            for a in args[3:]:
                km = re.match(r'LF_([A-Z_]+)\((?:[^,"]+,\s*)?"([a-z0-9_]+)"', a)
                assert km, f"{f}: a field that is not LF_*(): {a}"
                keys.add(km.group(2))
                if types is not None:
                    types.setdefault(km.group(2), set()).add(
                        TYPES[km.group(1)])
            for fac in facs:
                for ev in evs:
                    out.setdefault((fac, ev), set()).update(keys)
    return out


def doc_tables():
    """({(fac, event): set of keys}, {key: type}) from the doc: the
    events tables (under '### `fac`') and the key table."""
    events, keys, fac = {}, {}, None
    section = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
            fac = None
        h = re.match(r"^### `([a-z0-9]+)`", line)
        if h:
            fac = h.group(1)
            continue
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if section.startswith("events") and fac:
            for ev in re.findall(r"`([a-z0-9-]+)`", cells[0]):
                ks = set(re.findall(r"`([a-z0-9_]+)`", cells[2]))
                events.setdefault((fac, ev), set()).update(ks)
        elif section.startswith("keys"):
            keys[re.match(r"`([a-z0-9_]+)`", cells[0]).group(1)] = cells[1]
    return events, keys


def known_lists():
    text = (Path(__file__).parent / "test_log_forgery.py").read_text()
    out = []
    for name in ("KNOWN_EVENTS", "KNOWN_KEYS"):
        m = re.search(name + r" = \{(.*?)\n\}", text, re.S)
        out.append(set(re.findall(r'"([a-z0-9_-]+)"', m.group(1))))
    return out


def test_every_event_of_the_code_is_documented():
    code = code_events()
    doc, _ = doc_tables()
    missing = sorted(set(code) - set(doc))
    assert not missing, f"events written by the code, not in {DOC.name}: " \
        f"{missing}"
    for fe, keys in sorted(code.items()):
        lacking = sorted(keys - doc[fe])
        assert not lacking, f"{fe}: keys not in its row: {lacking}"


def test_no_documented_event_is_gone():
    code = code_events()
    doc, _ = doc_tables()
    stale = sorted(set(doc) - set(code))
    assert not stale, f"documented, but no code writes them: {stale}"
    for fe, keys in sorted(doc.items()):
        extra = sorted(keys - code[fe] - HEAD_KEYS)
        assert not extra, f"{fe}: its row names keys it never has: {extra}"


def test_every_key_is_documented():
    code = code_events()
    doc, keys = doc_tables()
    used = set().union(*code.values()) | HEAD_KEYS
    known_events, known_keys = known_lists()
    assert not sorted(used - set(keys)), sorted(used - set(keys))
    assert not sorted(known_keys - set(keys)), sorted(known_keys - set(keys))
    assert not sorted(set(keys) - used), \
        f"key rows no event has: {sorted(set(keys) - used)}"
    doc_event_names = {ev for _, ev in doc}
    assert not sorted(known_events - doc_event_names), \
        sorted(known_events - doc_event_names)
    types = {"ts": {"timestamp"}, "level": {"string"}, "proc": {"string"},
             "fac": {"string"}, "event": {"string"}, "truncated": {"yes/no"},
             "msg": {"string"}}
    code_events(types)
    for k, t in keys.items():
        want = next(iter(types[k])) if len(types[k]) == 1 else "varies"
        assert t == want, f"{k}: documented as {t}, the code writes {want}"


# ------------------------------------------------ the doc's example lines

KV_KEY = re.compile(r"[^ =\"]+")


def logfmt(line):
    """The logfmt reading (go-logfmt, Loki's `| logfmt`, Logstash's kv):
    key=value pairs separated by spaces; a value bare (no space, '=' or
    '"') or quoted with \\" and \\\\. A bare word without '=' is a key
    with an empty value (godwit's timestamp comes out as such a key)."""
    pairs, i, n = [], 0, len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        m = KV_KEY.match(line, i)
        assert m, f"no key at {line[i:]!r}"
        key, i = m.group(), m.end()
        if i >= n or line[i] != "=":
            pairs.append((key, ""))
            continue
        i += 1
        if i < n and line[i] == '"':
            i += 1
            val = ""
            while line[i] != '"':
                if line[i] == "\\":
                    assert line[i + 1] in '"\\', f"escape logfmt lacks: {line!r}"
                    i += 1
                val += line[i]
                i += 1
            i += 1
        else:
            m = re.compile(r"[^ ]*").match(line, i)
            val, i = m.group(), m.end()
            assert "=" not in val and '"' not in val, line
        pairs.append((key, val))
    return pairs


def doc_blocks(lang):
    return re.findall(r"```" + lang + r"\n(.*?)```", DOC.read_text(), re.S)


def test_doc_json_examples_are_json():
    lines = [l for b in doc_blocks("json") for l in b.splitlines() if l]
    assert len(lines) >= 3
    for line in lines:
        obj = json.loads(line)
        assert {"ts", "level", "proc", "fac", "event"} <= set(obj), line
        for k, v in obj.items():
            assert isinstance(v, (str, int)), (k, v)


def test_doc_kv_examples_are_logfmt():
    lines = [l for b in doc_blocks("text") for l in b.splitlines()
             if re.match(r"\d{4}-\d\d-\d\dT", l)]
    assert len(lines) >= 3
    for line in lines:
        pairs = logfmt(line)
        assert re.match(r"\d{4}-\d\d-\d\dT.*Z$", pairs[0][0]), line
        d = dict(pairs[1:])
        assert len(d) == len(pairs) - 1, f"a key twice: {line}"
        assert {"level", "proc", "fac", "event"} <= set(d), line


def test_doc_yaml_examples_parse():
    import pytest  # here: the script form runs without pytest
    yaml = pytest.importorskip("yaml")
    blocks = [yaml.safe_load(b) for b in doc_blocks("yaml")]
    assert len(blocks) == 3
    fb, pt, pt_kv = blocks
    inp = fb["filebeat.inputs"][0]
    assert inp["type"] == "filestream"
    assert inp["parsers"][0]["ndjson"]["target"] == "godwit"
    stages = pt["scrape_configs"][0]["pipeline_stages"]
    assert [list(s)[0] for s in stages] == ["json", "labels", "timestamp"]
    assert stages[2]["timestamp"]["source"] in stages[0]["json"]["expressions"]
    assert [list(s)[0] for s in pt_kv["pipeline_stages"]] == ["logfmt", "labels"]


if __name__ == "__main__":
    for (fac, ev), keys in sorted(code_events().items()):
        print(f"{fac:10} {ev:20} {' '.join(sorted(keys))}")
    sys.exit(0)
