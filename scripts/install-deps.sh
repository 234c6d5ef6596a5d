#!/bin/sh
# Install what godwit needs to build, run and test, from Debian 12 packages.
# Idempotent and quick when everything is present: apt-get runs only when a
# package is missing. Also creates the unprivileged `godwit` system user that
# the daemon drops to when started as root.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libevent-dev libssl-dev libunbound-dev libsqlite3-dev libcrypt-dev libyaml-dev
libcmocka-dev python3 python3-pytest python3-pytest-xdist swaks libio-socket-inet6-perl
libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl libdigest-hmac-perl curl openssl sqlite3 postfix
iproute2 procps fetchmail unbound python3-aiosmtpd
sasl2-bin libsasl2-modules libsasl2-modules-db
libpsl-dev publicsuffix python3-spf python3-dnslib python3-dkim python3-nacl
opendkim opendkim-tools opendmarc postfix-policyd-spf-python
libgmime-3.0-dev libmagic-dev libarchive-dev clamav-daemon clamav-milter clamdscan
rspamd python3-milter libmilter-dev zip p7zip-full
prometheus nftables iptables ufw firewalld nsd mb2md
dovecot-core dovecot-imapd isync offlineimap3 neomutt tmux
libpq-dev postgresql-15 libmariadb-dev mariadb-server mariadb-client
libhiredis-dev redis-server redis-tools haproxy"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages:$missing" >&2
		echo "install-deps: run as root, or: sudo apt-get install$missing" >&2
		exit 1
	fi
	echo "install-deps: installing:$missing"
	# Installing postfix must not start a Postfix on port 25: we only want
	# its smtp-source/smtp-sink tools and a peer we configure ourselves.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# No service a package brings may start while it installs: firewalld
	# would filter the test namespaces' veth links, nsd and prometheus
	# would take ports. invoke-rc.d asks policy-rc.d (101: not allowed);
	# one the machine already has is left as it is.
	own_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
	# A package's postinst may have started postfix: we never want it running.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now postfix >/dev/null 2>&1 || true
	fi
	/usr/sbin/postfix stop >/dev/null 2>&1 || true
	# The same for unbound: the outbound tests (tests/integration/netlab.py)
	# run their own in a network namespace; a system unbound on port 53
	# (and unbound-resolvconf pointing /etc/resolv.conf at it) we never want.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now unbound unbound-resolvconf >/dev/null 2>&1 || true
	fi
	# opendkim, opendmarc, clamd, clamav-milter, freshclam and rspamd are
	# peers the tests start themselves (clamd with the test's own signature
	# database: no download from the internet).
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now opendkim opendmarc clamav-daemon \
			clamav-freshclam clamav-milter rspamd prometheus nsd firewalld dovecot \
			ufw postgresql mariadb redis-server haproxy >/dev/null 2>&1 || true
	fi
	# The tools of the operations tests (promtool, nft, iptables-restore,
	# nsd-checkzone, firewall-offline-cmd, mb2md) need none of their
	# services running.
	for d in opendkim opendmarc clamav-daemon clamav-freshclam clamav-milter rspamd \
		prometheus nsd firewalld ufw postgresql mariadb redis-server haproxy; do
		if [ -x /etc/init.d/$d ]; then
			/etc/init.d/$d stop >/dev/null 2>&1 || true
			update-rc.d $d disable >/dev/null 2>&1 || true
		fi
	done
	if [ -x /etc/init.d/unbound ]; then
		/etc/init.d/unbound stop >/dev/null 2>&1 || true
		update-rc.d unbound disable >/dev/null 2>&1 || true
	fi
fi

if [ "$(id -u)" -eq 0 ] && ! getent passwd godwit >/dev/null; then
	useradd --system --home-dir /var/lib/godwit --no-create-home \
		--shell /usr/sbin/nologin godwit
	echo "install-deps: created system user godwit"
fi
exit 0
