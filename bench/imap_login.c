/*
 * bench/imap_login.c: the login load of bench/imap-vs-dovecot. C threads,
 * so that the client is not what limits the rate: each of C threads logs
 * in over and over on 127.0.0.1:PORT as its own user until the time is up
 * (or it made MAX sessions): connect, greeting, LOGIN, SELECT INBOX,
 * LOGOUT, close. Plain IMAP (no TLS). Prints one line:
 *   ok=N errors=E wall=SECONDS first_error=...
 * wall runs from the common start to the last thread's last reply.
 *
 * Usage: imap_login -p PORT -c CLIENTS -s SECONDS -u PREFIX -w PASSWORD
 *                   [-m MAX_PER_CLIENT] [-d DOMAIN] [-t OP_TIMEOUT] [-n]
 * -n: no SELECT (connect, LOGIN, LOGOUT).
 * Users: PREFIX01@DOMAIN ... (thread i is user i+1, two digits at least).
 * Every socket operation has a timeout (-t, 30 s); every loop is bounded
 * by time and count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int port, clients = 20, seconds = 10, op_timeout = 30, do_select = 1;
static long max_per = 100000000;
static const char *prefix = "login", *password = "", *domain = "example.test";
static double t_start, t_end;

struct worker {
	pthread_t th;
	int id;
	long ok, errors;
	double last;
	char first[200];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct conn {
	int fd;
	char buf[16384];
	size_t len;
};

/* Reads lines until one starts with tag followed by a space; 0 if it is
 * "tag OK", -1 (with why) otherwise. An empty tag waits for "* OK" (the
 * greeting). */
static int wait_tagged(struct conn *c, const char *tag, char *why, size_t wl)
{
	size_t tl = strlen(tag);

	for (int reads = 0; reads < 10000; reads++) {
		char *nl;

		while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t ll = (size_t)(nl - c->buf) + 1;
			int done = 0, good = 0;

			if (tl == 0) {
				done = 1;
				good = ll >= 4 && memcmp(c->buf, "* OK", 4) == 0;
			} else if (ll > tl + 3 && memcmp(c->buf, tag, tl) == 0 &&
			    c->buf[tl] == ' ') {
				done = 1;
				good = memcmp(c->buf + tl + 1, "OK", 2) == 0;
			}
			if (done && !good)
				snprintf(why, wl, "%.*s", (int)(ll > 150 ? 150 :
				    ll - 1), c->buf);
			memmove(c->buf, c->buf + ll, c->len - ll);
			c->len -= ll;
			if (done)
				return good ? 0 : -1;
		}
		if (c->len == sizeof(c->buf))
			c->len = 0;	/* an endless line: keep its tail */
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0) {
			snprintf(why, wl, "%s waiting for %s",
			    n == 0 ? "connection closed" : strerror(errno),
			    tl ? tag : "greeting");
			return -1;
		}
		c->len += (size_t)n;
	}
	snprintf(why, wl, "too many reads");
	return -1;
}

static int send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int session(struct worker *w, char *why, size_t wl)
{
	static __thread struct conn c;
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = op_timeout };
	char cmd[512];
	int one = 1, rc = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c.len = 0;
	c.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c.fd < 0) {
		snprintf(why, wl, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(why, wl, "connect: %s", strerror(errno));
		goto out;
	}
	if (wait_tagged(&c, "", why, wl) < 0)
		goto out;
	int n = snprintf(cmd, sizeof(cmd), "a LOGIN %s%02d@%s \"%s\"\r\n",
	    prefix, w->id + 1, domain, password);
	if (send_all(c.fd, cmd, (size_t)n) < 0 ||
	    wait_tagged(&c, "a", why, wl) < 0)
		goto out;
	if (do_select && (send_all(c.fd, "b SELECT INBOX\r\n", 16) < 0 ||
	    wait_tagged(&c, "b", why, wl) < 0))
		goto out;
	if (send_all(c.fd, "c LOGOUT\r\n", 10) < 0 ||
	    wait_tagged(&c, "c", why, wl) < 0)
		goto out;
	rc = 0;
out:
	close(c.fd);
	return rc;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char why[200];
	double t = now();

	if (t < t_start) {
		struct timespec ts = { .tv_sec = (time_t)(t_start - t),
		    .tv_nsec = (long)((t_start - t - (time_t)(t_start - t)) *
		    1e9) };
		nanosleep(&ts, NULL);
	}
	w->last = now();
	for (long i = 0; i < max_per && now() < t_end; i++) {
		why[0] = '\0';
		if (session(w, why, sizeof(why)) == 0) {
			w->ok++;
		} else {
			w->errors++;
			if (!w->first[0])
				snprintf(w->first, sizeof(w->first), "%s", why);
			usleep(10000);
		}
		w->last = now();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "p:c:s:u:w:m:d:t:n")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'c': clients = atoi(optarg); break;
		case 's': seconds = atoi(optarg); break;
		case 'u': prefix = optarg; break;
		case 'w': password = optarg; break;
		case 'm': max_per = atol(optarg); break;
		case 'd': domain = optarg; break;
		case 't': op_timeout = atoi(optarg); break;
		case 'n': do_select = 0; break;
		default:
			fprintf(stderr, "usage: imap_login -p PORT -c CLIENTS "
			    "-s SECONDS -u PREFIX -w PASSWORD [-m MAX] [-d DOMAIN] "
			    "[-t TIMEOUT] [-n]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || clients < 1 || clients > 1000 ||
	    seconds < 1 || seconds > 3600 || max_per < 1 || op_timeout < 1) {
		fprintf(stderr, "imap_login: bad arguments\n");
		return 2;
	}
	struct worker *ws = calloc((size_t)clients, sizeof(*ws));
	if (ws == NULL)
		return 1;
	t_start = now() + 0.2;
	t_end = t_start + seconds;
	for (int i = 0; i < clients; i++) {
		ws[i].id = i;
		if (pthread_create(&ws[i].th, NULL, run, &ws[i]) != 0) {
			fprintf(stderr, "imap_login: pthread_create failed\n");
			return 1;
		}
	}
	long ok = 0, errors = 0;
	double last = t_start;
	const char *first = "";
	for (int i = 0; i < clients; i++) {
		pthread_join(ws[i].th, NULL);
		ok += ws[i].ok;
		errors += ws[i].errors;
		if (ws[i].last > last)
			last = ws[i].last;
		if (!first[0] && ws[i].first[0])
			first = ws[i].first;
	}
	printf("ok=%ld errors=%ld wall=%.4f first_error=%s\n", ok, errors,
	    last - t_start, first);
	free(ws);
	return 0;
}
