#!/bin/sh
# Prepares the development server that `make run` starts: everything lives
# under ./run/ (gitignored). Idempotent: an existing run/godwit.yaml, database
# and certificate are kept. Prints what it set up and how to try it.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
godwit="$top/build/godwit"
cfg="$run/godwit.yaml"

mkdir -p "$run"

# Workers drop to the `godwit` user when started as root, but only if that
# user can reach ./run (a checkout under /root cannot be entered by others).
user='""'
if [ "$(id -u)" -eq 0 ] && getent passwd godwit >/dev/null; then
	if runuser -u godwit -- test -x "$run" 2>/dev/null; then
		user=godwit
	fi
fi

# ./run is the data directory: root's, the daemon user's group may enter
# (the layout godwit itself gives it; see docs/operations.md)
if [ "$user" = godwit ]; then
	chgrp godwit "$run" && chmod 0750 "$run"
fi

if [ ! -f "$cfg" ]; then
	cat >"$cfg" <<YAML
# godwit development configuration, written by scripts/dev-setup.sh.
# Every key is described in docs/configuration.md.
hostname: mail.example.test
data_dir: $run
user: $user
log:
  format: kv
  level: info
limits:
  max_connections_per_ip: 50
  connection_rate: 600/60s
# SPF, DKIM, DMARC and iprev on the mx listener (docs/operations.md):
# short DNS bounds, so that without a usable resolver the checks end in
# temperror at once and mail is still accepted
checks:
  timeout: 3s
tls:
  certificates:
    - cert: $run/tls/cert.pem
      key: $run/tls/key.pem
listeners:
  - name: mx
    protocol: smtp
    listen: ["127.0.0.1:2525", "[::1]:2525"]
    greet_pause: 0s
  - name: submission
    protocol: submission
    listen: ["127.0.0.1:2587", "[::1]:2587"]
  - name: submissions
    protocol: submissions
    listen: ["127.0.0.1:2465", "[::1]:2465"]
YAML
fi

# Files written before POP3 existed get its listeners (listeners is the
# last section of the file this script writes).
if head -1 "$cfg" | grep -q 'written by scripts/dev-setup.sh' &&
	! grep -q 'protocol: pop3' "$cfg"; then
	cat >>"$cfg" <<YAML
  - name: pop3
    protocol: pop3
    listen: ["127.0.0.1:2110", "[::1]:2110"]
  - name: pop3s
    protocol: pop3s
    listen: ["127.0.0.1:2995", "[::1]:2995"]
YAML
fi

# The same for the Prometheus metrics listener (loopback only).
if head -1 "$cfg" | grep -q 'written by scripts/dev-setup.sh' &&
	! grep -q 'protocol: metrics' "$cfg"; then
	cat >>"$cfg" <<YAML
  - name: metrics
    protocol: metrics
    listen: ["127.0.0.1:2980", "[::1]:2980"]
YAML
fi

# The same for IMAP (STARTTLS on 2143, implicit TLS on 2993).
if head -1 "$cfg" | grep -q 'written by scripts/dev-setup.sh' &&
	! grep -q 'protocol: imap' "$cfg"; then
	cat >>"$cfg" <<YAML
  - name: imap
    protocol: imap
    listen: ["127.0.0.1:2143", "[::1]:2143"]
  - name: imaps
    protocol: imaps
    listen: ["127.0.0.1:2993", "[::1]:2993"]
YAML
fi

# A self-signed certificate for the TLS listeners.
if [ ! -f "$run/tls/cert.pem" ]; then
	mkdir -p "$run/tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
		-subj "/CN=mail.example.test" \
		-addext "subjectAltName=DNS:mail.example.test,DNS:localhost,IP:127.0.0.1,IP:::1" \
		-keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" >/dev/null 2>&1
	chmod 600 "$run/tls/key.pem"
fi

# errors (file:line) now; warnings once the user database is set up
if ! "$godwit" -c "$cfg" config check >/dev/null 2>"$run/.config-check"; then
	cat "$run/.config-check" >&2
	exit 1
fi
rm -f "$run/.config-check"

if ! "$godwit" -c "$cfg" domain list 2>/dev/null | grep -qx example.test; then
	"$godwit" -c "$cfg" domain add example.test >/dev/null
fi
if [ ! -f "$run/demo-password" ]; then
	(umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$run/demo-password")
fi
if ! "$godwit" -c "$cfg" user list example.test 2>/dev/null | grep -qx demo@example.test; then
	"$godwit" -c "$cfg" user add demo@example.test --password-stdin \
		<"$run/demo-password" >/dev/null
	"$godwit" -c "$cfg" alias add postmaster@example.test demo@example.test >/dev/null
fi
# after the domain and its postmaster alias exist, or it would warn that
# nobody receives postmaster mail
"$godwit" -c "$cfg" config check >/dev/null

# One line per protocol the configuration listens for, and only those: a
# service appears here once godwit has it and the file configures it.
has() { grep -q "protocol: $1\$" "$cfg"; }
services=$(
	has smtp && echo "  MX (SMTP)  127.0.0.1:2525 and [::1]:2525  (STARTTLS offered)"
	has submission && echo "  submission 127.0.0.1:2587 (STARTTLS, then AUTH) and 2465 (implicit TLS)"
	has pop3 && echo "  POP3       127.0.0.1:2110 (STLS, then login) and 2995 (implicit TLS)"
	has imap && echo "  IMAP       127.0.0.1:2143 (STARTTLS, then login) and 2993 (implicit TLS)"
	has metrics && echo "  metrics    http://127.0.0.1:2980/metrics and http://[::1]:2980/metrics (Prometheus)"
	true
)

cat <<EOT

  godwit development server
  -------------------------
  config     $cfg
  data       $run  (mail in $run/mail/example.test/demo/Maildir/new/)
$services
  TLS        self-signed certificate in $run/tls/
  domain     example.test
  user       demo@example.test   password: $(cat "$run/demo-password")

  Send a test message (in another terminal):
    swaks --server 127.0.0.1:2525 --to demo@example.test
    swaks -6 --server ::1 --port 2525 --to demo@example.test
  Try to relay (refused, 554 5.7.1):
    swaks --server 127.0.0.1:2525 --to someone@example.org
  Submit as the demo user (587-style, STARTTLS + AUTH):
    swaks --server 127.0.0.1:2587 --tls --auth PLAIN \\
      --auth-user demo@example.test --auth-password "$(cat "$run/demo-password")" \\
      --from demo@example.test --to demo@example.test

  Collect the mail over POP3 (implicit TLS, self-signed certificate):
    curl -k --user demo@example.test:"$(cat "$run/demo-password")" pop3s://127.0.0.1:2995/
    curl -k --user demo@example.test:"$(cat "$run/demo-password")" pop3s://127.0.0.1:2995/1
$(has imap && printf '\n  Read it over IMAP (implicit TLS; or imap://127.0.0.1:2143 with --ssl-reqd):\n    curl -k --user demo@example.test:"%s" imaps://127.0.0.1:2993/INBOX\n    curl -k --user demo@example.test:"%s" "imaps://127.0.0.1:2993/INBOX;UID=1"\n' "$(cat "$run/demo-password")" "$(cat "$run/demo-password")")
$(has metrics && printf '\n  Counters for Prometheus (checked with promtool):\n    curl -s http://127.0.0.1:2980/metrics | promtool check metrics\n')

  Stop with Ctrl-C. Logs follow, one event per line.

EOT
