#!/usr/bin/python3
"""
An SMTP peer for outbound-delivery tests, on Debian's python3-aiosmtpd:

    greylist_server.py --listen IP [--listen IP ...] --port 25
                       --mode greylist:N|reject|accept|tempfail
                       --maildir DIR [--delay SECONDS] [--hostname NAME]

  accept      accepts every recipient and message
  greylist:N  answers 451 4.7.1 at RCPT to the first N attempts of each
              (sender, recipient) pair, then accepts
  reject      answers 550 5.1.1 at RCPT
  tempfail    answers 451 4.3.0 at RCPT, always

Every accepted message is written to DIR/new/ as one file: the lines
"X-Peer-Mail-From: <sender>" and "X-Peer-Rcpt-To: <rcpt>" (one per
recipient) and then the message exactly as received. --delay waits that
long before answering the final "." (a slow peer). One line per event goes
to stdout, e.g. "rcpt from=<a@a.test> to=<x@grey.test> reply=451", so a
test can count attempts. IPv4 and IPv6 addresses can both be given;
SIGTERM ends it.
"""

import argparse
import asyncio
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, mode, maildir, delay):
        self.mode, self.greylist_n = mode, 0
        if mode.startswith("greylist:"):
            self.mode = "greylist"
            self.greylist_n = int(mode.split(":", 1)[1])
        elif mode not in ("accept", "reject", "tempfail"):
            raise SystemExit(f"unknown mode {mode}")
        self.maildir = maildir
        self.delay = delay
        self.attempts = {}
        self.seq = 0
        for sub in ("tmp", "new"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)

    @staticmethod
    def log(line):
        print(f"{time.time():.3f} {line}", flush=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        sender = envelope.mail_from or ""
        key = (sender.lower(), address.lower())
        n = self.attempts.get(key, 0) + 1
        self.attempts[key] = n
        if self.mode == "reject":
            reply = "550 5.1.1 <%s>: no such user here" % address
        elif self.mode == "tempfail":
            reply = "451 4.3.0 <%s>: try again later" % address
        elif self.mode == "greylist" and n <= self.greylist_n:
            reply = "451 4.7.1 <%s>: greylisted, attempt %d" % (address, n)
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 2.1.5 OK"
        self.log(f"rcpt peer={session.peer[0]} from=<{sender}> to=<{address}> "
                 f"attempt={n} reply={reply[:3]}")
        return reply

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.seq += 1
        name = f"{time.time_ns()}.{os.getpid()}.{self.seq}"
        head = f"X-Peer-Mail-From: <{envelope.mail_from or ''}>\r\n"
        for r in envelope.rcpt_tos:
            head += f"X-Peer-Rcpt-To: <{r}>\r\n"
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(head.encode("utf-8", "replace") + data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.maildir, "new", name))
        self.log(f"data peer={session.peer[0]} from=<{envelope.mail_from}> "
                 f"rcpts={len(envelope.rcpt_tos)} size={len(data)} file={name}")
        return "250 2.0.0 OK queued as %s" % name


async def main(args):
    handler = Handler(args.mode, args.maildir, args.delay)
    loop = asyncio.get_running_loop()
    servers = []
    for addr in args.listen:
        srv = await loop.create_server(
            lambda: SMTP(handler, hostname=args.hostname, enable_SMTPUTF8=True,
                         data_size_limit=64 * 1024 * 1024),
            host=addr, port=args.port, reuse_address=True)
        servers.append(srv)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    handler.log(f"listening {args.listen} port={args.port} mode={args.mode}")
    await stop.wait()
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", action="append", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--mode", default="accept")
    p.add_argument("--maildir", required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--hostname", default="peer.test")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
