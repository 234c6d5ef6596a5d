/*
 * The attachment walk alone (filter/attach.h), a micro benchmark: each
 * message file given is walked N times on this thread with the default
 * rules and limits, and the CPU time per walk printed (the median of R
 * rounds), with the verdict of the first walk. No daemon, no thread
 * hand-off: what attach_scan() itself costs.
 *
 *   build/bench/attach_walk [-n N] [-r R] FILE...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filter/attach.h"
#include "mail/attach_name.h"

static double
cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static unsigned char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	do {
		if (len == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if ((buf = realloc(buf, cap)) == NULL)
				exit(1);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*len_r = len;
	return buf;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct attach_config cfg = {
	    .enabled = true,
	    .blocked_extensions = (char **)attach_default_extensions,
	    .encrypted_archives = ATTACH_ENCRYPTED_REFUSE,
	    .max_depth = 20,
	    .max_parts = 1000,
	    .max_decoded_size = 100u << 20,
	};
	struct attach_scanner *sc;
	char *error = NULL;
	long n = 2000, rounds = 5;
	int c;

	while ((c = getopt(argc, argv, "n:r:")) != -1) {
		if (c == 'n')
			n = atol(optarg);
		else if (c == 'r')
			rounds = atol(optarg);
		else
			return 2;
	}
	if (optind == argc || n < 1 || rounds < 1 || rounds > 99) {
		fprintf(stderr, "usage: attach_walk [-n N] [-r R] FILE...\n");
		return 2;
	}
	cfg.nblocked_extensions = attach_ndefault_extensions;
	setenv("TZ", ":/etc/localtime", 0);	/* as godwit does at start */
	if ((sc = attach_scanner_new(&error)) == NULL) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	for (int i = optind; i < argc; i++) {
		struct attach_result r;
		double t[99];
		size_t len;
		unsigned char *msg = slurp(argv[i], &len);

		attach_scan(sc, &cfg, msg, len, &r);	/* warm */
		for (long k = 0; k < rounds; k++) {
			double t0 = cpu_us();

			for (long j = 0; j < n; j++)
				attach_scan(sc, &cfg, msg, len, &r);
			t[k] = (cpu_us() - t0) / (double)n;
		}
		qsort(t, (size_t)rounds, sizeof(t[0]), cmp_double);
		printf("%s: %zu octets, %.1f us CPU per walk (median of %ld "
		       "x %ld; min %.1f, max %.1f), status %d, %u parts%s%s\n",
		       argv[i], len, t[rounds / 2], rounds, n, t[0],
		       t[rounds - 1], (int)r.status, r.parts,
		       r.text[0] != '\0' ? ": " : "", r.text);
		free(msg);
	}
	attach_scanner_free(&sc);
	return 0;
}
