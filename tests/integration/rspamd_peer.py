"""
A real rspamd (Debian's `rspamd` 3.4) as a milter peer, for
tests/integration/test_rspamd.py and bench/filter-vs-postfix.

`rspamd -f -c DIR/rspamd.conf -u _rspamd -g _rspamd` in the foreground,
as a process of ours in a session of its own, with a configuration written
here from scratch (Debian's /etc/rspamd is not read): one proxy worker in
milter mode on 127.0.0.1:PORT that scans itself (`self_scan`), and nothing
else that could leave the machine or wait on a service:

  - no Redis (no greylist, ratelimit, bayes, history or neural modules:
    a Lua plugin that has no section in the configuration is not loaded),
    no fuzzy_check, no RBL/SPF/DKIM/DMARC modules (`filters = ""`), no
    maps fetched over HTTP;
  - its resolver is the name server given (the suite's refusing unbound,
    conftest.refusing_dns_port()), so any lookup fails at once, locally;
  - the public suffix list it compiles at every start (9,600 suffixes,
    ~11 s of hyperscan on a small VM) is replaced by a file of a few
    test TLDs: start-up takes about a second.

The rules (RULES_LUA) are the test's own, plus rspamd's built-in GTUBE:

  actions   reject = 15, add_header = 6, greylist = 4 (ACTIONS)
  GTUBE     the GTUBE string in a text part: rspamd's reject action
            (a pre-result, whatever the score), its milter reply
            "554 5.7.1 Gtube pattern"
  JUNK_TOKEN in the Subject: symbol GODWIT_TEST_JUNK, score 10 (between
            add_header and reject): the add header action, for which the
            proxy sets `X-Spam: Yes` (its spam_header) and accepts
  GREY_TOKEN in the Subject: symbol GODWIT_TEST_GREY, score 5 (the
            greylist action); a postfilter then does what rspamd's
            greylist module does on first sight (that module needs Redis):
            it turns the greylist action into a soft reject, which the
            proxy answers "451 4.7.1 Try again later"
  milter_headers with extended_spam_headers (X-Spamd-Result,
            X-Rspamd-Server, X-Rspamd-Queue-Id, X-Spam-Level,
            X-Spam-Status) for every message, loopback ones included
            (skip_local = false).

Each instance has its own directory (owned by _rspamd, which the workers
run as), log file (`log_text()`) and control socket. Standard library only.
"""

import os
import shutil
import signal

from peer_proc import MilterPeer, installed, listening_tcp

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
RSPAMD_USER = "_rspamd"

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
JUNK_TOKEN = "GODWIT-RSPAMD-JUNK-TOKEN"
GREY_TOKEN = "GODWIT-RSPAMD-GREY-TOKEN"
JUNK_SCORE = 10.0
GREY_SCORE = 5.0
ACTIONS = {"reject": 15, "add_header": 6, "greylist": 4}
SPAM_HEADER = "X-Spam"  # the proxy's spam_header, "Yes" on add_header
# the milter's replies: GTUBE's carries its pre-result message, a reject
# by score the proxy's reject_message
GTUBE_REPLY = "554 5.7.1 Gtube pattern"
REJECT_REPLY = "554 5.7.1 Spam message rejected"
SOFT_REPLY = "451 4.7.1 Try again later"

# The few TLDs rspamd's URL detector needs here (see the head comment).
TLDS = "com\nnet\norg\ntest\nexample\ninvalid\nlocalhost\n"

RULES_LUA = f"""\
-- godwit's rspamd test rules (tests/integration/rspamd_peer.py)
local function subject_has(task, token)
  local s = task:get_header('Subject')
  return s ~= nil and s:find(token, 1, true) ~= nil
end

rspamd_config.GODWIT_TEST_JUNK = {{
  callback = function(task) return subject_has(task, '{JUNK_TOKEN}') end,
  score = {JUNK_SCORE},
  description = 'godwit test: a score between add_header and reject',
  group = 'godwit_test',
}}

rspamd_config.GODWIT_TEST_GREY = {{
  callback = function(task) return subject_has(task, '{GREY_TOKEN}') end,
  score = {GREY_SCORE},
  description = 'godwit test: a score in the greylist band',
  group = 'godwit_test',
}}

-- What the greylist module does on first sight of a message whose
-- action is greylist (it needs Redis to remember the triplet): a soft
-- reject, which the milter proxy answers with 451 4.7.1.
rspamd_config:register_symbol({{
  name = 'GODWIT_TEST_GREYLIST_SET',
  type = 'postfilter',
  priority = 5,
  callback = function(task)
    local action = task:get_metric_action()
    if action == 'greylist' then
      task:set_pre_result('soft reject', 'Try again later', 'godwit_test')
    end
  end,
}})
"""


def available():
    """(True, "") if rspamd is installed and its user exists."""
    return installed([(RSPAMD, "rspamd")], [(RSPAMD_USER, "rspamd")])


def _ucl_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


class RspamdPeer(MilterPeer):
    """One rspamd with a milter proxy on 127.0.0.1:port.

    dns: "IP:PORT" of the name server rspamd may ask (give a refusing
    one); extra_conf: more UCL appended to rspamd.conf; workers: the
    proxy's `count` (processes scanning in parallel); extra_lua: more
    rules, appended to RULES_LUA."""

    name = "rspamd"
    user = RSPAMD_USER

    def __init__(self, directory, port, dns, extra_conf="", workers=1,
                 log_level="info", extra_lua=""):
        super().__init__(directory, port)
        self.dns = dns
        self.extra_conf = extra_conf
        self.extra_lua = extra_lua
        self.workers = workers
        self.log_level = log_level

    def write(self):
        d = self.dir
        (d / "tlds.dat").write_text(TLDS)
        (d / "rules.lua").write_text(RULES_LUA + self.extra_lua)
        acts = "".join(f"  {k} = {v};\n" for k, v in ACTIONS.items())
        self.conf.write_text(f"""\
# written by tests/integration/rspamd_peer.py
options {{
  pidfile = {_ucl_str(d / "rspamd.pid")};
  filters = "";
  hs_cache_dir = {_ucl_str(d)};
  cache_file = {_ucl_str(d / "symbols.cache")};
  dynamic_conf = {_ucl_str(d / "dynamic")};
  history_file = {_ucl_str(d / "history")};
  stats_file = {_ucl_str(d / "stats.ucl")};
  control_socket = {_ucl_str(str(d / "rspamd.sock") + " mode=0600")};
  url_tld = {_ucl_str(d / "tlds.dat")};
  local_addrs = [];
  dns {{ nameserver = [{_ucl_str(self.dns)}]; timeout = 1s; retransmits = 1; }}
  task_timeout = 8s;
  allow_raw_input = true;
  check_all_filters = false;
}}
logging {{
  type = "file";
  filename = {_ucl_str(self.log)};
  level = {_ucl_str(self.log_level)};
}}
actions {{
{acts}}}
worker "rspamd_proxy" {{
  milter = yes;
  bind_socket = "127.0.0.1:{self.port}";
  timeout = 120s;
  count = {self.workers};
  spam_header = {_ucl_str(SPAM_HEADER)};
  reject_message = "Spam message rejected";
  upstream "local" {{ default = yes; self_scan = yes; }}
}}
modules {{ path = "${{PLUGINSDIR}}"; }}
milter_headers {{
  skip_local = false;
  skip_authenticated = false;
  extended_spam_headers = true;
  use = ["x-spamd-result", "x-spam-status", "x-spam-level"];
}}
lua = {_ucl_str(d / "rules.lua")};
{self.extra_conf}
""")

    def argv(self):
        a = [RSPAMD, "-f", "-c", str(self.conf)]
        if os.geteuid() == 0:
            a += ["-u", RSPAMD_USER, "-g", RSPAMD_USER]
        return a

    def ready(self):
        return self.listening()

    def listening(self):
        """A LISTEN socket on 127.0.0.1:port in rspamd's namespace, and a
        proxy worker forked to serve it (the main process binds first)."""
        return (listening_tcp(self.proc.pid, self.port)
                and bool(self.proxy_pids()))

    def proxy_pids(self):
        """The proxy worker processes (children of the main process)."""
        out = []
        try:
            kids = set()
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{tid}/children") as f:
                    kids.update(int(x) for x in f.read().split())
        except OSError:
            return out
        for k in sorted(kids):
            try:
                with open(f"/proc/{k}/cmdline", "rb") as f:
                    if f.read().startswith(b"rspamd: rspamd_proxy process"):
                        out.append(k)
            except OSError:
                pass
        return out

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=15):
        """Peer's stop (SIGTERM to the main process: it ends its workers),
        then SIGKILL to the session it leads if anything is left."""
        super().stop(timeout)
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
