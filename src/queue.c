/*
 * Queue file format: writing and reading envelopes (see queue.h and
 * docs/queue-format.md), and the read-only queue admin commands.
 * String values are xtext-encoded (RFC 3461 4.) so that a value can never
 * contain a space, a newline or anything else that would break the format.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "queue.h"

const char *const queue_states[] = {"incoming", "active", "deferred", "hold",
				    NULL};

static unsigned id_slot;
static unsigned id_counter;

void
queue_id_init(unsigned slot)
{
	uint32_t r = 0;

	id_slot = slot & 0x3f;
	/* a random start keeps ids of a restarted worker apart from the
	 * previous one's within the same millisecond */
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid();
	id_counter = r;
}

void
queue_id_new(char id[QUEUE_ID_LEN + 1])
{
	unsigned low = (id_slot << 14) | (id_counter++ & 0x3fff);

	snprintf(id, QUEUE_ID_LEN + 1, "%011llx%05x",
		 (unsigned long long)(now_ms() & 0xfffffffffffULL), low);
}

bool
queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return i == QUEUE_ID_LEN;
}

/* ---- xtext ---------------------------------------------------------- */

static void
xtext_put(FILE *f, const char *s)
{
	if (*s == '\0') {
		fputc('+', f);	/* "+" alone: the empty string */
		return;
	}
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=')
			fprintf(f, "+%02X", c);
		else
			fputc(c, f);
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *
xtext_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	if (len == 1 && s[0] == '+') {
		out[0] = '\0';
		return out;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			int h, l;
			if (i + 2 >= len)
				goto bad;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				goto bad;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if ((unsigned char)s[i] < 33 ||
			   (unsigned char)s[i] > 126 || s[i] == '=') {
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* ---- writing -------------------------------------------------------- */

char *
queue_envelope_format(const struct queue_envelope *e, size_t *len_r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "%s %d\n", QUEUE_MAGIC, QUEUE_VERSION);
	fprintf(f, "id %s\n", e->id);
	fprintf(f, "arrival %lld\n", (long long)e->arrival);
	fputs("client ", f);
	xtext_put(f, e->client_ip);
	fputs("\nhelo ", f);
	xtext_put(f, e->helo);
	fputs("\nsender ", f);
	xtext_put(f, e->sender);
	fputs("\nbody ", f);
	xtext_put(f, e->body);
	fprintf(f, "\nsmtputf8 %d\nret ", e->smtputf8 ? 1 : 0);
	xtext_put(f, e->ret);
	fputs("\nenvid ", f);
	xtext_put(f, e->envid);
	fputc('\n', f);
	for (size_t i = 0; i < e->nrcpts; i++) {
		fputs("rcpt ", f);
		xtext_put(f, e->rcpts[i].addr);
		fprintf(f, " %u ", e->rcpts[i].notify);
		xtext_put(f, e->rcpts[i].orcpt);
		fputc('\n', f);
	}
	fprintf(f, "size %llu\n\n", (unsigned long long)e->size);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len_r = len;
	return buf;
}

void
queue_rcpt_add(struct queue_envelope *e, const char *addr, unsigned notify,
	       const char *orcpt)
{
	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*e->rcpts));
	e->rcpts[e->nrcpts].addr = xstrdup(addr);
	e->rcpts[e->nrcpts].notify = notify;
	e->rcpts[e->nrcpts].orcpt = xstrdup(orcpt != NULL ? orcpt : "");
	e->nrcpts++;
}

void
queue_envelope_free(struct queue_envelope *e)
{
	free(e->client_ip);
	free(e->helo);
	free(e->sender);
	free(e->body);
	free(e->ret);
	free(e->envid);
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
	}
	free(e->rcpts);
	memset(e, 0, sizeof(*e));
}

/* ---- reading -------------------------------------------------------- */

static int
field(char **dst, const char *v, size_t vlen)
{
	if (*dst != NULL)
		return -1;	/* repeated */
	*dst = xtext_decode(v, vlen);
	return *dst == NULL ? -1 : 0;
}

int
queue_envelope_parse(const char *buf, size_t len, struct queue_envelope *e,
		     size_t *hdr_len_r, char **error_r)
{
	const char *p = buf, *end = buf + len;
	bool have_size = false, have_magic = false;
	int lineno = 0;

	memset(e, 0, sizeof(*e));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp, *v;
		size_t klen, vlen;

		lineno++;
		if (nl == NULL)
			break;
		if (nl == p) {	/* blank line: end of envelope */
			if (!have_magic || !have_size || e->id[0] == '\0' ||
			    e->sender == NULL || e->nrcpts == 0) {
				*error_r = xstrdup("incomplete envelope");
				goto fail;
			}
			*hdr_len_r = (size_t)(nl + 1 - buf);
			return 0;
		}
		sp = memchr(p, ' ', (size_t)(nl - p));
		if (sp == NULL)
			goto bad;
		klen = (size_t)(sp - p);
		v = sp + 1;
		vlen = (size_t)(nl - v);
#define KEY(k) (klen == strlen(k) && memcmp(p, k, klen) == 0)
		if (!have_magic) {
			if (!KEY(QUEUE_MAGIC) || vlen != 1 ||
			    v[0] != '0' + QUEUE_VERSION)
				goto bad;
			have_magic = true;
		} else if (KEY("id")) {
			if (vlen != QUEUE_ID_LEN)
				goto bad;
			memcpy(e->id, v, vlen);
			e->id[vlen] = '\0';
			if (!queue_id_valid(e->id))
				goto bad;
		} else if (KEY("arrival")) {
			char tmp[24];
			uint64_t t;
			if (vlen >= sizeof(tmp))
				goto bad;
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			if (parse_uint64(tmp, &t) < 0 || t > INT64_MAX)
				goto bad;
			e->arrival = (int64_t)t;
		} else if (KEY("client")) {
			if (field(&e->client_ip, v, vlen) < 0)
				goto bad;
		} else if (KEY("helo")) {
			if (field(&e->helo, v, vlen) < 0)
				goto bad;
		} else if (KEY("sender")) {
			if (field(&e->sender, v, vlen) < 0)
				goto bad;
		} else if (KEY("body")) {
			if (field(&e->body, v, vlen) < 0)
				goto bad;
		} else if (KEY("smtputf8")) {
			if (vlen != 1 || (v[0] != '0' && v[0] != '1'))
				goto bad;
			e->smtputf8 = v[0] == '1';
		} else if (KEY("ret")) {
			if (field(&e->ret, v, vlen) < 0)
				goto bad;
		} else if (KEY("envid")) {
			if (field(&e->envid, v, vlen) < 0)
				goto bad;
		} else if (KEY("rcpt")) {
			const char *s1 = memchr(v, ' ', vlen), *s2;
			char *addr, *orcpt, num[8];
			uint64_t notify;
			if (s1 == NULL)
				goto bad;
			s2 = memchr(s1 + 1, ' ', (size_t)(nl - s1 - 1));
			if (s2 == NULL || (size_t)(s2 - s1 - 1) >= sizeof(num))
				goto bad;
			memcpy(num, s1 + 1, (size_t)(s2 - s1 - 1));
			num[s2 - s1 - 1] = '\0';
			if (parse_uint64(num, &notify) < 0 || notify > 15)
				goto bad;
			addr = xtext_decode(v, (size_t)(s1 - v));
			orcpt = xtext_decode(s2 + 1, (size_t)(nl - s2 - 1));
			if (addr == NULL || orcpt == NULL || *addr == '\0') {
				free(addr);
				free(orcpt);
				goto bad;
			}
			queue_rcpt_add(e, addr, (unsigned)notify, orcpt);
			free(addr);
			free(orcpt);
		} else if (KEY("size")) {
			char tmp[24];
			if (vlen >= sizeof(tmp))
				goto bad;
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			if (parse_uint64(tmp, &e->size) < 0)
				goto bad;
			have_size = true;
		} else {
			goto bad;
		}
#undef KEY
		p = nl + 1;
	}
	*error_r = xstrdup("truncated envelope");
	goto fail;
bad:
	*error_r = xasprintf("malformed envelope line %d", lineno);
fail:
	queue_envelope_free(e);
	return -1;
}

#define ENVELOPE_MAX (1024 * 1024)

int
queue_envelope_read(const char *path, struct queue_envelope *e,
		    uint64_t *data_off_r, char **error_r)
{
	char *buf = NULL, endbuf[sizeof(QUEUE_END)];
	size_t hdr_len, want;
	struct stat st;
	ssize_t n;
	int fd;

	memset(e, 0, sizeof(*e));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		goto fail;
	}
	want = st.st_size < ENVELOPE_MAX ? (size_t)st.st_size : ENVELOPE_MAX;
	buf = xmalloc(want + 1);
	if ((n = pread(fd, buf, want, 0)) < 0 || (size_t)n != want) {
		*error_r = xasprintf("%s: short read", path);
		goto fail;
	}
	if (queue_envelope_parse(buf, want, e, &hdr_len, error_r) < 0)
		goto fail;
	if ((uint64_t)st.st_size !=
	    hdr_len + e->size + (sizeof(QUEUE_END) - 1)) {
		queue_envelope_free(e);
		*error_r = xasprintf("%s: size does not match (torn file?)",
				     path);
		goto fail;
	}
	if (pread(fd, endbuf, sizeof(QUEUE_END) - 1,
		  (off_t)(hdr_len + e->size)) != sizeof(QUEUE_END) - 1 ||
	    memcmp(endbuf, QUEUE_END, sizeof(QUEUE_END) - 1) != 0) {
		queue_envelope_free(e);
		*error_r = xasprintf("%s: end marker missing (torn file?)",
				     path);
		goto fail;
	}
	*data_off_r = hdr_len;
	free(buf);
	close(fd);
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

int
queue_dirs_create(const char *data_dir, char **error_r)
{
	static const char *const extra[] = {"tmp", NULL};
	const char *const *lists[] = {extra, queue_states};

	for (size_t l = 0; l < 2; l++) {
		for (const char *const *s = lists[l]; *s != NULL; s++) {
			char *path = xasprintf("%s/queue/%s", data_dir, *s);
			if (mkdir_p(path, 0750) < 0) {
				*error_r = xasprintf("%s: %s", path,
						     strerror(errno));
				free(path);
				return -1;
			}
			free(path);
		}
	}
	return 0;
}

/* ---- admin ---------------------------------------------------------- */

static int
queue_list(const struct config *config)
{
	int count = 0;

	printf("%-16s %-8s %-10s %-8s %s\n", "ID", "STATE", "AGE", "SIZE",
	       "SENDER -> RECIPIENTS");
	for (const char *const *s = queue_states; *s != NULL; s++) {
		char *dir = xasprintf("%s/queue/%s", config->data_dir, *s);
		DIR *d = opendir(dir);
		struct dirent *de;

		if (d == NULL) {
			free(dir);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			struct queue_envelope e;
			uint64_t off;
			char *path, *err = NULL;
			long long age;

			if (de->d_name[0] == '.')
				continue;
			path = xasprintf("%s/%s", dir, de->d_name);
			if (queue_envelope_read(path, &e, &off, &err) < 0) {
				fprintf(stderr, "godwit: %s\n", err);
				free(err);
				free(path);
				continue;
			}
			age = (long long)time(NULL) - e.arrival;
			printf("%-16s %-8s %-10lld %-8llu <%s> ->", e.id, *s,
			       age, (unsigned long long)e.size, e.sender);
			for (size_t i = 0; i < e.nrcpts; i++)
				printf(" <%s>", e.rcpts[i].addr);
			putchar('\n');
			count++;
			queue_envelope_free(&e);
			free(path);
		}
		closedir(d);
		free(dir);
	}
	printf("%d message%s in the queue\n", count, count == 1 ? "" : "s");
	return 0;
}

static int
queue_show(const struct config *config, const char *id)
{
	if (!queue_id_valid(id)) {
		fprintf(stderr, "godwit: %s: not a queue id\n", id);
		return 1;
	}
	for (const char *const *s = queue_states; *s != NULL; s++) {
		char *path = xasprintf("%s/queue/%s/%s", config->data_dir, *s,
				       id);
		struct queue_envelope e;
		uint64_t off;
		char *err = NULL;

		if (access(path, F_OK) != 0) {
			free(path);
			continue;
		}
		if (queue_envelope_read(path, &e, &off, &err) < 0) {
			fprintf(stderr, "godwit: %s\n", err);
			free(err);
			free(path);
			return 1;
		}
		printf("id: %s\nstate: %s\narrival: %lld\nclient: %s\n"
		       "helo: %s\nsender: <%s>\nsize: %llu\n",
		       e.id, *s, (long long)e.arrival, e.client_ip, e.helo,
		       e.sender, (unsigned long long)e.size);
		for (size_t i = 0; i < e.nrcpts; i++)
			printf("recipient: <%s>\n", e.rcpts[i].addr);
		/* the message header */
		FILE *f = fopen(path, "r");
		if (f != NULL && fseeko(f, (off_t)off, SEEK_SET) == 0) {
			char line[1024];
			putchar('\n');
			while (fgets(line, sizeof(line), f) != NULL &&
			       line[0] != '\n')
				fputs(line, stdout);
		}
		if (f != NULL)
			fclose(f);
		queue_envelope_free(&e);
		free(path);
		return 0;
	}
	fprintf(stderr, "godwit: %s: no such message in the queue\n", id);
	return 1;
}

int
queue_admin(const struct config *config, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc == 2)
		return queue_list(config);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_show(config, argv[2]);
	fprintf(stderr, "usage: godwit queue list\n"
			"       godwit queue show ID\n");
	return 2;
}
