/* Small string, number, time and file helpers. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

void
ascii_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

int
ascii_strcasecmp_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix));
}

int
parse_uint64(const char *s, uint64_t *v_r)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*v_r = v;
	return 0;
}

static int
parse_scaled(const char *s, const char *units, const uint64_t *mult,
	     uint64_t *v_r)
{
	char num[32];
	size_t len = strlen(s);
	uint64_t v, m = 1;
	const char *u;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	if ((u = strchr(units, num[len - 1])) != NULL && num[len - 1] != '\0') {
		m = mult[u - units];
		num[len - 1] = '\0';
	}
	if (parse_uint64(num, &v) < 0)
		return -1;
	if (m != 0 && v > UINT64_MAX / m)
		return -1;
	*v_r = v * m;
	return 0;
}

int
parse_duration(const char *s, uint64_t *seconds_r, const char **error_r)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400, 604800};

	if (parse_scaled(s, "smhdw", mult, seconds_r) < 0) {
		*error_r = "invalid duration (use e.g. 30s, 5m, 2h, 7d)";
		return -1;
	}
	return 0;
}

int
parse_size(const char *s, uint64_t *bytes_r, const char **error_r)
{
	static const uint64_t mult[] = {1024, 1024 * 1024, 1024 * 1024 * 1024,
					1024, 1024 * 1024, 1024 * 1024 * 1024};

	if (parse_scaled(s, "KMGkmg", mult, bytes_r) < 0) {
		*error_r = "invalid size (use e.g. 512, 64K, 25M, 1G)";
		return -1;
	}
	return 0;
}

void
ascii_printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i < len && i + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[i] = '\0';
}

int
strlcpy_checked(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size == 0 || len >= size)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
utc_timestamp_ms(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000) % 1000);
}

void
local_date(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	snprintf(buf, size, "%04d-%02d-%02d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday);
}

void
rfc5322_date(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	/* English names regardless of locale. */
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fsync_dir(const char *path)
{
	int fd, r, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
mkdir_p(const char *path, unsigned mode)
{
	char tmp[PATH_MAX];
	char *p;

	if (strlcpy_checked(tmp, path, sizeof(tmp)) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

void
signals_unblock_all(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static char *title_area;
static size_t title_len;

void
proc_title_init(int argc, char **argv)
{
	char *end;

	if (argc < 1 || argv[0] == NULL)
		return;
	/* the arguments are contiguous: up to the end of the last one */
	end = argv[0] + strlen(argv[0]);
	for (int i = 1; i < argc && argv[i] == end + 1; i++)
		end = argv[i] + strlen(argv[i]);
	title_area = argv[0];
	title_len = (size_t)(end - argv[0]);
}

void
proc_title(const char *title)
{
	size_t n;

	if (title_area == NULL || title_len == 0)
		return;
	n = strlen(title);
	if (n > title_len)
		n = title_len;
	memset(title_area, '\0', title_len);
	memcpy(title_area, title, n);
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
