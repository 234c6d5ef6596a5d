/*
 * Passwords for the admin commands (ops/secrets.h): read without echo or
 * from standard input, and turned into every form the user database
 * keeps.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/xalloc.h"
#include "net/sasl.h"
#include "ops/secrets.h"
#include "store/password.h"
#include "store/userdb.h"

/*
 * One line from fd, byte by byte so that nothing past the newline is
 * consumed and no copy lingers in a stdio buffer. Returns the length
 * without the newline (and a CR before it), or -1.
 */
static int
read_line(int fd, char *buf, size_t size, const char **error_r)
{
	size_t n = 0;
	ssize_t r;
	char c;

	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = strerror(errno);
			return -1;
		}
		if (r == 0 || c == '\n')
			break;
		if (c == '\0') {
			*error_r = "the password contains a NUL byte";
			return -1;
		}
		if (n + 1 >= size) {
			*error_r = "the password is too long";
			return -1;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static struct termios tty_saved;

/* Puts the terminal's echo back before dying of the signal. */
static void
tty_restore_and_die(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
read_tty(const char *prompt, char *buf, size_t size, const char **error_r)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
	struct sigaction sa, old[sizeof(sigs) / sizeof(sigs[0])];
	struct termios t;
	size_t i;
	int r;

	if (tcgetattr(STDIN_FILENO, &tty_saved) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_restore_and_die;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &old[i]);

	t = tty_saved;
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	r = read_line(STDIN_FILENO, buf, size, error_r);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &old[i], NULL);
	return r;
}

static void
wipe_free(char **p)
{
	if (*p == NULL)
		return;
	explicit_bzero(*p, strlen(*p));
	xfree(p);
}

void
secrets_clear(struct secrets *sc)
{
	wipe_free(&sc->hash);
	wipe_free(&sc->scram);
	wipe_free(&sc->cram);
}

/* SCRAM needs a printable US-ASCII password (no SASLprep, see sasl.h). */
static bool
scram_possible(const char *password)
{
	const unsigned char *p;

	for (p = (const unsigned char *)password; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

int
secrets_make(const struct config *config, const char *address,
	     const char *password, const char *prefix, struct secrets *r,
	     const char **error_r)
{
	struct sasl_scram_secret sec;

	memset(r, 0, sizeof(*r));
	if ((r->hash = password_hash(password, error_r)) == NULL)
		return -1;
	if (scram_possible(password)) {
		if (sasl_scram_generate(password, &sec) < 0 ||
		    (r->scram = sasl_scram_format(&sec)) == NULL) {
			explicit_bzero(&sec, sizeof(sec));
			*error_r = "cannot derive the SCRAM-SHA-256 secret";
			secrets_clear(r);
			return -1;
		}
		explicit_bzero(&sec, sizeof(sec));
	} else {
		fflush(stdout);
		fprintf(stderr,
			"%snote: the password of %s is not printable ASCII, "
			"so it cannot be used with SCRAM-SHA-256 (PLAIN and "
			"LOGIN work)\n",
			prefix, address);
	}
	if (config->auth.cram_md5)
		r->cram = xstrdup(password);
	return 0;
}

int
new_password_secrets(const struct config *config, const char *address,
		     bool from_stdin, struct secrets *r)
{
	char *pw = xmalloc(PASSWORD_MAX + 2), *again = NULL;
	const char *err = NULL;
	int n, ret = -1;

	memset(r, 0, sizeof(*r));
	if (!from_stdin && isatty(STDIN_FILENO)) {
		again = xmalloc(PASSWORD_MAX + 2);
		if ((n = read_tty("Password: ", pw, PASSWORD_MAX + 2, &err)) <
			    0 ||
		    (n > 0 && read_tty("Retype password: ", again,
				       PASSWORD_MAX + 2, &err) < 0))
			goto out;
		if (n > 0 && strcmp(pw, again) != 0) {
			err = "the passwords do not match";
			goto out;
		}
	} else if ((n = read_line(STDIN_FILENO, pw, PASSWORD_MAX + 2, &err)) <
		   0)
		goto out;
	if (n == 0) {
		err = "empty password refused";
		goto out;
	}
	ret = secrets_make(config, address, pw, "godwit: ", r, &err);
out:
	if (ret < 0) {
		fflush(stdout);
		fprintf(stderr, "godwit: %s\n",
			err != NULL ? err : "cannot read the password");
	}
	explicit_bzero(pw, PASSWORD_MAX + 2);
	free(pw);
	if (again != NULL) {
		explicit_bzero(again, PASSWORD_MAX + 2);
		free(again);
	}
	return ret;
}

int
store_new_user(struct userdb *db, const char *address,
	       const struct secrets *sc, char **err_r)
{
	char *err2 = NULL;

	if (db->ops->user_add(db, address, sc->hash, err_r) < 0)
		return -1;
	if (sc->scram == NULL && sc->cram == NULL)
		return 0;
	if (db->ops->user_set_secrets(db, address, sc->hash, sc->scram,
				      sc->cram, err_r) < 0) {
		if (db->ops->user_del(db, address, &err2) < 0)
			free(err2);
		return -1;
	}
	return 0;
}
