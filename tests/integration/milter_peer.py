#!/usr/bin/python3
"""A test milter on Debian's python3-milter (libmilter underneath), for
test_milter.py.

    milter_peer.py SOCKET MODEFILE LOGFILE

SOCKET is libmilter's ("inet:PORT@127.0.0.1", "unix:/path"). What it does
is read from MODEFILE (JSON) at every callback, so one process serves
every case of a test file; the test rewrites the file between cases:

    {"stage": "rcpt",          # connect helo mail rcpt data header eoh
                               # body eom: where the action is taken
     "action": "reject",       # continue accept reject tempfail discard
                               # replycode skip crash hang
     "reply": ["550", "5.7.1", "line 1", "line 2"],   # replycode
     "match": "bob@",          # rcpt: only recipients containing this
     "mods": [["addheader", "X-A", "1"], ...],        # at eom
     "tag": "name"}            # a mode for one milter of several

A mode may instead be {"milters": {"m1": {...}, "m2": {...}}}: each
process takes the entry of its own name (argv[4], default "m1").

Every callback appends one JSON line to LOGFILE: the callback, its
arguments, the macros it saw and the milter's name.
"""
import json
import os
import sys
import time

import Milter

SOCKET, MODEFILE, LOGFILE = sys.argv[1:4]
NAME = sys.argv[4] if len(sys.argv) > 4 else "m1"
# "noreply": the milter sends no reply to CONNECT, HELO, headers and body
# chunks (libmilter's SMFIP_NR_* bits), and wants no EOH
STYLE = sys.argv[5] if len(sys.argv) > 5 else ""

MACROS = ["j", "{daemon_name}", "{daemon_addr}", "v", "_", "{client_addr}",
          "{client_name}", "{client_port}", "{client_ptr}", "i",
          "{auth_type}", "{auth_authen}", "{tls_version}", "{cipher}",
          "{cipher_bits}", "{mail_addr}", "{mail_host}", "{mail_mailer}",
          "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"]

ACTIONS = {
    "continue": Milter.CONTINUE, "accept": Milter.ACCEPT,
    "reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL,
    "discard": Milter.DISCARD, "skip": Milter.SKIP,
}


def mode():
    try:
        with open(MODEFILE) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return {}
    if "milters" in m:
        return m["milters"].get(NAME, {})
    return m


def log(**kw):
    kw["milter"] = NAME
    line = json.dumps(kw) + "\n"
    fd = os.open(LOGFILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


class TestMilter(Milter.Base):
    def __init__(self):
        self.body_len = 0
        self.body_data = b""

    def macros(self):
        out = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                out[m] = v
        return out

    def act(self, stage, **args):
        m = mode()
        log(cb=stage, args=args, macros=self.macros())
        if m.get("stage") != stage:
            return Milter.CONTINUE
        if stage == "rcpt" and m.get("match") and \
                m["match"] not in args.get("to", ""):
            return Milter.CONTINUE
        a = m.get("action", "continue")
        if a == "crash":
            os._exit(3)
        if a == "hang":
            time.sleep(m.get("seconds", 30))
            return Milter.CONTINUE
        if a == "replycode":
            r = m["reply"]
            self.setreply(r[0], r[1], *r[2:])
            return Milter.REJECT if r[0][0] == "5" else Milter.TEMPFAIL
        if stage == "eom":
            self.modify(m.get("mods", []))
        return ACTIONS[a]

    def modify(self, mods):
        for mod in mods:
            op, args = mod[0], mod[1:]
            if op == "addheader":
                self.addheader(args[0], args[1])
            elif op == "insheader":
                self.addheader(args[1], args[2], args[0])
            elif op == "chgheader":
                self.chgheader(args[0], args[1], args[2])
            elif op == "delheader":
                self.chgheader(args[0], args[1], "")
            elif op == "addrcpt":
                self.addrcpt(args[0])
            elif op == "addrcpt_par":
                self.addrcpt(args[0], args[1])
            elif op == "delrcpt":
                self.delrcpt(args[0])
            elif op == "chgfrom":
                self.chgfrom(args[0])
            elif op == "replbody":
                self.replacebody(args[0].encode())
            elif op == "quarantine":
                self.quarantine(args[0])
            elif op == "progress":
                self.progress()

    def connect(self, hostname, family, hostaddr):
        return self.act("connect", hostname=hostname,
                        addr=list(hostaddr) if hostaddr else None)

    def hello(self, hostname):
        return self.act("helo", helo=hostname)

    def envfrom(self, f, *params):
        return self.act("mail", sender=f, params=list(params))

    def envrcpt(self, to, *params):
        return self.act("rcpt", to=to, params=list(params))

    def data(self):
        return self.act("data")

    def header(self, name, value):
        return self.act("header", name=name, value=text(value))

    def eoh(self):
        return self.act("eoh")

    def body(self, chunk):
        self.body_len += len(chunk)
        self.body_data += chunk[:4096]
        return self.act("body", size=len(chunk))

    def eom(self):
        return self.act("eom", body_len=self.body_len,
                        body=self.body_data.decode("utf-8", "replace"))

    def abort(self):
        log(cb="abort")
        return Milter.CONTINUE

    def close(self):
        log(cb="close")
        return Milter.CONTINUE


class NoReplyMilter(TestMilter):
    @Milter.noreply
    def connect(self, hostname, family, hostaddr):
        return TestMilter.connect(self, hostname, family, hostaddr)

    @Milter.noreply
    def hello(self, hostname):
        return TestMilter.hello(self, hostname)

    @Milter.noreply
    def header(self, name, value):
        return TestMilter.header(self, name, value)

    @Milter.noreply
    def body(self, chunk):
        return TestMilter.body(self, chunk)

    @Milter.nocallback
    def eoh(self):
        return Milter.CONTINUE


def main():
    os.umask(0)
    Milter.factory = NoReplyMilter if STYLE == "noreply" else TestMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY |
                     Milter.ADDRCPT | Milter.ADDRCPT_PAR | Milter.DELRCPT |
                     Milter.CHGFROM | Milter.QUARANTINE)
    sys.stdout.flush()
    Milter.runmilter(NAME, SOCKET, 60)


if __name__ == "__main__":
    main()
