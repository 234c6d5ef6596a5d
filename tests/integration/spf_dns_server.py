"""
A DNS server on loopback (UDP and TCP, one port) that serves the zone data
of one RFC 7208 test-suite scenario at a time, for test_spf_suite.py.

The zone data is the suite's own format: per name a list of records
{TYPE: value} (A, AAAA, MX [pref, host], PTR, CNAME, TXT and SPF as a
string or a list of character-strings) and the bare word TIMEOUT. Its
meaning follows the suite's reference driver (pyspf's testspf.py):
  - SPF records are also served as TXT records, after the others, unless
    the name has a TXT entry of its own ("TXT: NONE" means: no TXT);
  - a query meets TIMEOUT when no record of its type came before it in the
    name's list: it is answered SERVFAIL (so the resolver gives up at once
    and the check says temperror, rather than waiting for a real timeout);
  - names not in the zone are NXDOMAIN, names without records of the type
    asked NOERROR with no answer; both carry an SOA, as a real server's do;
  - CNAMEs are followed inside the zone (at most 8 links; a loop ends).
Type SPF (99) is served too (godwit never asks for it).
"""

import threading

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSServer

TTL = 60
CNAME_LINKS = 8


def _strings(v):
    """TXT/SPF value -> list of byte strings of at most 255 octets."""
    parts = [v] if isinstance(v, str) else list(v)
    # a TXT rdata holds one string at least: "SPF: [ ]" (no strings, which
    # the suite calls illegal) is served as one empty string
    parts = parts or [""]
    out = []
    for p in parts:
        b = str(p).encode("utf-8")
        if not b:
            out.append(b"")
        while b:
            out.append(b[:255])
            b = b[255:]
    return out


def _norm(name):
    """A name as the zone's keys spell it: a DNSLabel by its octets (str()
    would escape a blank as \\032), lower case, no final dot."""
    if isinstance(name, DNSLabel):
        name = ".".join(l.decode("latin-1") for l in name.label)
    return str(name).rstrip(".").lower()


def load_zone(zonedata):
    """{name: [(TYPE, value) | ("TIMEOUT", None)]} as the reference driver
    builds it: generated TXT copies of SPF records go last."""
    zone = {}
    for name, recs in (zonedata or {}).items():
        out, gen_txt, has_txt = [], [], False
        for r in recs or []:
            if r == "TIMEOUT":
                out.append(("TIMEOUT", None))
                continue
            for t, v in r.items():
                if t == "TXT":
                    has_txt = True
                elif t == "SPF":
                    gen_txt.append(("TXT", v))
                if v != "NONE":
                    out.append((t, v))
        if not has_txt:
            out.extend(gen_txt)
        zone[_norm(name)] = out
    return zone


def _rdata(t, v):
    if t == "A":
        return QTYPE.A, A(v)
    if t == "AAAA":
        return QTYPE.AAAA, AAAA(v)
    if t == "MX":
        pref, host = v
        return QTYPE.MX, MX(host if host else ".", int(pref))
    if t == "PTR":
        return QTYPE.PTR, PTR(v)
    if t == "CNAME":
        return QTYPE.CNAME, CNAME(v)
    if t == "TXT":
        return QTYPE.TXT, TXT(_strings(v))
    if t == "SPF":
        return 99, TXT(_strings(v))
    raise ValueError(f"record type {t}")


class SuiteResolver(BaseResolver):
    def __init__(self, ttl=TTL):
        self.ttl = ttl
        self.zone = {}
        self.lock = threading.Lock()

    def set_zone(self, zonedata):
        zone = load_zone(zonedata)
        with self.lock:
            self.zone = zone

    def _soa(self, qname):
        labels = _norm(qname).split(".")
        owner = ".".join(labels[-2:]) + "."
        return RR(owner, QTYPE.SOA, ttl=self.ttl,
                  rdata=SOA("ns." + owner, "hostmaster." + owner,
                            (1, 3600, 600, 86400, self.ttl)))

    def _lookup(self, zone, name, qtype):
        """(rcode, [RR]) for one name, no CNAME following."""
        recs = zone.get(_norm(name))
        if recs is None:
            return RCODE.NXDOMAIN, []
        seen, answers = False, []
        for t, v in recs:
            if t == "TIMEOUT":
                if not seen:
                    return RCODE.SERVFAIL, []
                break
            rtype, rdata = _rdata(t, v)
            if rtype == qtype or (rtype == QTYPE.CNAME and qtype != QTYPE.CNAME):
                seen = True
                answers.append(RR(name, rtype, ttl=self.ttl, rdata=rdata))
        return RCODE.NOERROR, answers

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        qname, qtype = request.q.qname, request.q.qtype
        with self.lock:
            zone = self.zone
        name, seen = qname, set()
        for _ in range(CNAME_LINKS):
            rcode, answers = self._lookup(zone, name, qtype)
            reply.header.rcode = rcode
            if rcode == RCODE.SERVFAIL:
                reply.rr = []
                return reply
            for rr in answers:
                reply.add_answer(rr)
            cnames = [rr for rr in answers if rr.rtype == QTYPE.CNAME]
            if not cnames or len(answers) != len(cnames):
                break
            seen.add(_norm(name))
            name = DNSLabel(str(cnames[0].rdata.label))
            if _norm(name) in seen:
                break
        if not reply.rr or rcode == RCODE.NXDOMAIN:
            reply.add_auth(self._soa(qname))
        return reply


class SuiteDNS:
    """Both servers on 127.0.0.1:port; set_zone() switches the scenario."""

    def __init__(self, port, ttl=TTL):
        self.port = port
        self.resolver = SuiteResolver(ttl)
        self.servers = [
            DNSServer(self.resolver, port=port, address="127.0.0.1",
                      tcp=tcp, logger=_Quiet())
            for tcp in (False, True)
        ]

    def start(self):
        for s in self.servers:
            s.start_thread()

    def stop(self):
        for s in self.servers:
            s.stop()
            s.server.server_close()

    def set_zone(self, zonedata):
        self.resolver.set_zone(zonedata)


class _Quiet:
    """A dnslib logger that logs nothing."""

    def __getattr__(self, name):
        return lambda *a, **k: None
