/*
 * The IMAP command parser (imap_parse.h): pure and resumable.
 *
 * A command is read as a sequence of pieces: a line, then for each
 * literal announced at the end of a line ("{n}", "{n+}", "~{n}") the
 * literal's octets (held in memory, or consumed by the caller when
 * streamed) and the line that continues the command after it. Once a
 * line ends without a literal the whole command is there and is turned
 * into arguments by a small recursive-descent tokenizer over the pieces.
 *
 * Memory: the command's text (its lines and in-memory literals) is at
 * most limits.total_max octets, a literal that would not fit is streamed
 * instead; the parsed arguments live in an arena bounded by total_max
 * too, freed when the next command starts; one line outside literals is
 * at most limits.line_max octets. A text buffer grown past TEXT_KEEP by
 * a big command is given back then (an idle session stays small). After an
 * error the rest of the command is skipped, including the octets of a
 * non-synchronizing literal that ends a skipped line (a synchronizing
 * one never comes: its continuation request is not sent).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mail/imap_parse.h"

#define LITERAL_DIGITS 20	/* of the size in "{n}" */
#define TAIL_MAX 32		/* the end of a skipped line we remember */
#define ARENA_BLOCK 4096
#define TEXT_KEEP 4096		/* text buffer kept between commands */

enum pstate {
	P_LINE,		/* reading a line */
	P_LITERAL,	/* reading an in-memory literal's octets */
	P_STREAM,	/* the caller consumes a streamed literal */
	P_STREAM_WAIT,	/* STREAM is the next answer (after CONTINUE) */
	P_SKIP_LINE,	/* error: skipping the rest of a line */
	P_SKIP_LITERAL,	/* error: skipping a non-synchronizing literal */
};

/* A literal that ends a line of the command. */
struct piece {
	size_t line_off, line_len;	/* the line before the marker */
	bool has_literal;
	bool literal8;
	bool streamed;
	size_t lit_off;			/* in memory: in the arena text */
	uint64_t size;
	int fd;				/* streamed: the caller's handle */
};

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	char data[];
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum pstate state;
	/* the text of the command: lines and in-memory literals */
	char *text;
	size_t text_len, text_cap;
	size_t line_start;		/* of the line being read */
	struct piece *pieces;
	size_t npieces, pieces_cap;
	size_t mem;			/* counted against total_max */
	uint64_t lit_left;		/* octets of the literal still to come */
	uint64_t lit_size;		/* the literal announced last */
	bool lit_sync;
	char tail[TAIL_MAX];		/* the end of a skipped line */
	size_t tail_len;
	bool tag_known;
	struct imap_command partial;
	struct imap_command cmd;
	struct arena_block *arena;
	const char *error;
	/* the tokenizer */
	size_t tok_piece, tok_pos;
	unsigned depth;
};

/* ---- memory --------------------------------------------------------- */

static void *
arena_alloc(struct imap_parser *p, size_t n)
{
	struct arena_block *b = p->arena;
	void *r;

	n = (n + 7) & ~(size_t)7;
	if (p->mem + n > p->lim.total_max)
		return NULL;
	if (b == NULL || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + size);
		b->size = size;
		b->used = 0;
		b->next = p->arena;
		p->arena = b;
	}
	r = b->data + b->used;
	b->used += n;
	p->mem += n;
	return r;
}

static void
arena_free(struct imap_parser *p)
{
	struct arena_block *b, *next;

	for (b = p->arena; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	p->arena = NULL;
}

/* Room for n more octets of text; false past the bounds. */
static bool
text_room(struct imap_parser *p, size_t n)
{
	size_t cap;

	if (p->text_len + n > p->lim.total_max)
		return false;
	if (p->text_len + n <= p->text_cap)
		return true;
	cap = p->text_cap == 0 ? 256 : p->text_cap;
	while (cap < p->text_len + n)
		cap *= 2;
	if (cap > p->lim.total_max)
		cap = p->lim.total_max;
	p->text = xreallocarray(p->text, cap, 1);
	p->text_cap = cap;
	return true;
}

static struct piece *
piece_add(struct imap_parser *p)
{
	struct piece *pc;

	if (p->npieces == p->pieces_cap) {
		p->pieces_cap = p->pieces_cap == 0 ? 4 : p->pieces_cap * 2;
		p->pieces = xreallocarray(p->pieces, p->pieces_cap,
					  sizeof(*p->pieces));
	}
	pc = &p->pieces[p->npieces++];
	memset(pc, 0, sizeof(*pc));
	pc->fd = -1;
	return pc;
}

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *lim)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->lim = *lim;
	if (p->lim.line_max < 16)
		p->lim.line_max = 16;
	if (p->lim.total_max < p->lim.line_max)
		p->lim.total_max = p->lim.line_max;
	if (p->lim.depth_max == 0)
		p->lim.depth_max = 1;
	return p;
}

/* Forgets the command: the next octet starts a new one. */
static void
clear_command(struct imap_parser *p)
{
	arena_free(p);
	if (p->text_cap > TEXT_KEEP) {
		free(p->text);
		p->text = NULL;
		p->text_cap = 0;
	}
	p->text_len = 0;
	p->line_start = 0;
	p->npieces = 0;
	p->mem = 0;
	p->tag_known = false;
	memset(&p->partial, 0, sizeof(p->partial));
	memset(&p->cmd, 0, sizeof(p->cmd));
}

void
imap_parser_reset(struct imap_parser *p)
{
	clear_command(p);
	p->state = P_LINE;
	p->lit_left = 0;
	p->tail_len = 0;
	p->error = NULL;
}

void
imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	arena_free(p);
	free(p->text);
	free(p->pieces);
	free(p);
}

uint64_t
imap_parser_stream_size(const struct imap_parser *p)
{
	return p->lit_size;
}

const struct imap_command *
imap_parser_partial(const struct imap_parser *p)
{
	return &p->partial;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error != NULL ? p->error : "Syntax error";
}

/* ---- the tag and the name, as soon as the first line is there ------- */

static bool
tag_char(unsigned char c)
{
	/* ASTRING-CHAR except '+': no CTL, SP, ( ) { % * " \ */
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

static bool
atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){\"", c) == NULL;
}

/* Copies an atom of s into dst (upper case); its length, 0 if none. */
static size_t
word(const char *s, size_t len, char *dst, size_t size)
{
	size_t n = 0;

	while (n < len && atom_char((unsigned char)s[n]) && s[n] != '[' &&
	       s[n] != ']') {
		if (n + 1 < size)
			dst[n] = (char)toupper((unsigned char)s[n]);
		n++;
	}
	dst[n < size ? n : size - 1] = '\0';
	return n >= size ? 0 : n;
}

/*
 * The tag and the command name of the first line (for errors, and for
 * the caller's decisions on a literal); their end in *end_r.
 */
static void
learn_tag(struct imap_parser *p, const char *s, size_t len, size_t *end_r)
{
	struct imap_command *c = &p->partial;
	size_t n = 0, k;

	*end_r = 0;
	p->tag_known = true;
	while (n < len && tag_char((unsigned char)s[n]))
		n++;
	if (n == 0 || n > IMAP_TAG_MAX || (n < len && s[n] != ' ')) {
		strcpy(c->tag, "*");
		return;
	}
	memcpy(c->tag, s, n);
	c->tag[n] = '\0';
	if (n == len)
		return;
	n++;
	k = word(s + n, len - n, c->name, sizeof(c->name));
	if (k == 0)
		return;
	if (strcmp(c->name, "UID") == 0 && n + k < len && s[n + k] == ' ') {
		size_t k2 = word(s + n + k + 1, len - n - k - 1, c->name,
				 sizeof(c->name));
		if (k2 == 0) {
			c->name[0] = '\0';
			return;
		}
		c->uid = true;
		k += 1 + k2;
	}
	*end_r = n + k;
}

/* ---- reading -------------------------------------------------------- */

static enum imap_parse_result
fail(struct imap_parser *p, const char *error, enum pstate next)
{
	p->error = error;
	p->state = next;
	if (!p->tag_known) {
		p->tag_known = true;
		strcpy(p->partial.tag, "*");
	}
	if (next == P_LINE || next == P_SKIP_LITERAL) {
		/* the next command starts afresh; the partial tag stays
		 * readable until then */
		p->text_len = 0;
		p->line_start = 0;
		p->npieces = 0;
	}
	return IMAP_PARSE_ERROR;
}

/*
 * A literal marker at the end of the line s (len octets): its size,
 * whether synchronizing and literal8, and where it starts. 0 if the line
 * ends with none, -1 if it is malformed.
 */
static int
literal_marker(const char *s, size_t len, uint64_t *size_r, bool *sync_r,
	       bool *lit8_r, size_t *start_r)
{
	size_t i = len, digits = 0;
	uint64_t v = 0;

	if (len < 3 || s[len - 1] != '}')
		return 0;
	i = len - 1;
	*sync_r = true;
	if (s[i - 1] == '+') {
		/* RFC 7888: "{n+}" (LITERAL+ and LITERAL-) */
		*sync_r = false;
		i--;
	}
	while (i > 0 && isdigit((unsigned char)s[i - 1])) {
		i--;
		digits++;
	}
	/* "x}" is an atom; a malformed "{...}" is the tokenizer's error */
	if (i == 0 || s[i - 1] != '{' || digits == 0 ||
	    digits > LITERAL_DIGITS)
		return 0;
	for (size_t k = i; k < i + digits; k++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[k] - '0');
	}
	i--;
	*lit8_r = i > 0 && s[i - 1] == '~';
	if (*lit8_r)
		i--;
	*size_r = v;
	*start_r = i;
	return 1;
}

static enum imap_parse_result tokenize(struct imap_parser *p,
				       const struct imap_command **cmd_r);
static size_t read_literal(struct imap_parser *p, const char *buf,
			   size_t len);

/* An error in a whole line: a non-synchronizing literal after it is
 * skipped too. */
static enum imap_parse_result
fail_line(struct imap_parser *p, const char *error, const char *s,
	  size_t len)
{
	uint64_t size;
	bool sync, lit8;
	size_t start;

	if (literal_marker(s, len, &size, &sync, &lit8, &start) > 0 &&
	    !sync) {
		p->lit_left = size;
		p->tail_len = 0;
		return fail(p, error,
			    size > 0 ? P_SKIP_LITERAL : P_SKIP_LINE);
	}
	return fail(p, error, P_LINE);
}

/* The line that just ended (CRLF not in it, at text + line_start). */
static enum imap_parse_result
line_done(struct imap_parser *p, const struct imap_command **cmd_r)
{
	const char *s = p->text + p->line_start;
	size_t len = p->text_len - p->line_start, start, end;
	struct piece *pc;
	uint64_t size;
	bool sync, lit8;
	int r;

	if (!p->tag_known)
		learn_tag(p, s, len, &end);
	if (memchr(s, '\0', len) != NULL)
		return fail_line(p, "NUL in a command", s, len);
	r = literal_marker(s, len, &size, &sync, &lit8, &start);
	if (r < 0)
		return fail(p, "Invalid literal", P_LINE);
	pc = piece_add(p);
	pc->line_off = p->line_start;
	pc->line_len = r > 0 ? start : len;
	if (r == 0)
		return tokenize(p, cmd_r);
	pc->has_literal = true;
	pc->literal8 = lit8;
	pc->size = size;
	p->lit_size = size;
	p->lit_sync = sync;
	p->lit_left = size;
	p->text_len = p->line_start + pc->line_len;
	if (size <= p->lim.inline_max && text_room(p, (size_t)size + 1) &&
	    p->mem + p->text_len + size <= p->lim.total_max) {
		pc->lit_off = p->text_len;
		p->state = P_LITERAL;
		if (size == 0)
			read_literal(p, "", 0);
	} else {
		pc->streamed = true;
		p->state = P_STREAM_WAIT;
	}
	if (sync)
		return IMAP_PARSE_CONTINUE;
	return IMAP_PARSE_MORE;
}

/* Remembers the end of a skipped line, to see a literal marker there. */
static void
tail_add(struct imap_parser *p, const char *s, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(p->tail, s + n - TAIL_MAX, TAIL_MAX);
		p->tail_len = TAIL_MAX;
		return;
	}
	if (p->tail_len + n > TAIL_MAX) {
		size_t drop = p->tail_len + n - TAIL_MAX;
		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, s, n);
	p->tail_len += n;
}

/* P_SKIP_LINE: up to the line's end; a "{n+}" there is skipped too. */
static size_t
skip_line(struct imap_parser *p, const char *buf, size_t len)
{
	const char *lf = memchr(buf, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - buf) : len, start;
	uint64_t size;
	bool sync, lit8;

	tail_add(p, buf, n);
	if (lf == NULL)
		return len;
	if (p->tail_len > 0 && p->tail[p->tail_len - 1] == '\r')
		p->tail_len--;
	if (literal_marker(p->tail, p->tail_len, &size, &sync, &lit8,
			   &start) > 0 &&
	    !sync) {
		p->lit_left = size;
		p->state = P_SKIP_LITERAL;
	} else {
		clear_command(p);
		p->state = P_LINE;
	}
	p->tail_len = 0;
	return n + 1;
}

/* P_LINE: octets of the line; *done when it ended. */
static enum imap_parse_result
read_line(struct imap_parser *p, const char *buf, size_t len, size_t *used,
	  bool *done)
{
	const char *lf = memchr(buf, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - buf) : len, end;
	size_t line_len = p->text_len - p->line_start;

	*done = false;
	if (line_len + n > p->lim.line_max + 1 || !text_room(p, n + 1)) {
		/* keep what fits of the first line for the tag */
		if (!p->tag_known) {
			size_t k = p->lim.line_max - line_len;
			if (k > n)
				k = n;
			if (text_room(p, k)) {
				memcpy(p->text + p->text_len, buf, k);
				learn_tag(p, p->text + p->line_start,
					  line_len + k, &end);
			}
		}
		*used = 0;
		p->tail_len = 0;
		return fail(p, "Line too long", P_SKIP_LINE);
	}
	memcpy(p->text + p->text_len, buf, n);
	p->text_len += n;
	*used = n;
	if (lf == NULL)
		return IMAP_PARSE_MORE;
	(*used)++;
	if (p->text_len > p->line_start && p->text[p->text_len - 1] == '\r')
		p->text_len--;
	if (p->text_len - p->line_start > p->lim.line_max)
		return fail_line(p, "Line too long", p->text + p->line_start,
				 p->text_len - p->line_start);
	p->text[p->text_len] = '\0';
	*done = true;
	return IMAP_PARSE_MORE;
}

/* P_LITERAL: the literal's octets into the text. */
static size_t
read_literal(struct imap_parser *p, const char *buf, size_t len)
{
	size_t n = p->lit_left < len ? (size_t)p->lit_left : len;

	memcpy(p->text + p->text_len, buf, n);
	p->text_len += n;
	p->lit_left -= n;
	if (p->lit_left == 0) {
		p->text[p->text_len++] = '\0';
		p->line_start = p->text_len;
		p->state = P_LINE;
	}
	return n;
}

enum imap_parse_result
imap_parse(struct imap_parser *p, const char *buf, size_t len,
	   size_t *used_r, const struct imap_command **cmd_r)
{
	enum imap_parse_result r;
	size_t used = 0, n;
	bool done;

	*used_r = 0;
	while (used < len || p->state == P_STREAM_WAIT) {
		switch (p->state) {
		case P_LINE:
			if (p->npieces == 0 && p->line_start == 0 &&
			    p->text_len == 0 && p->tag_known)
				clear_command(p);
			r = read_line(p, buf + used, len - used, &n, &done);
			used += n;
			if (r == IMAP_PARSE_ERROR) {
				*used_r = used;
				return r;
			}
			if (!done)
				break;
			r = line_done(p, cmd_r);
			if (r != IMAP_PARSE_MORE) {
				*used_r = used;
				return r;
			}
			break;
		case P_LITERAL:
			used += read_literal(p, buf + used, len - used);
			break;
		case P_STREAM_WAIT:
			p->state = P_STREAM;
			*used_r = used;
			return IMAP_PARSE_STREAM;
		case P_STREAM:
			/* the caller has not called stream_done() */
			*used_r = used;
			return IMAP_PARSE_MORE;
		case P_SKIP_LINE:
			used += skip_line(p, buf + used, len - used);
			break;
		case P_SKIP_LITERAL:
			n = p->lit_left < len - used ? (size_t)p->lit_left
						     : len - used;
			used += n;
			p->lit_left -= n;
			if (p->lit_left == 0) {
				p->tail_len = 0;
				p->state = P_SKIP_LINE;
			}
			break;
		}
	}
	*used_r = used;
	return IMAP_PARSE_MORE;
}

void
imap_parser_stream_done(struct imap_parser *p, int fd)
{
	struct piece *pc;

	if (p->state != P_STREAM || p->npieces == 0)
		return;
	pc = &p->pieces[p->npieces - 1];
	pc->fd = fd;
	p->lit_left = 0;
	p->line_start = p->text_len;
	p->state = P_LINE;
}

/* ---- the tokenizer -------------------------------------------------- */

struct argv {
	struct imap_arg *v;
	size_t n, cap;
	struct imap_arg *mem;	/* the arena copy when done */
};

static const char *
tok_line(const struct imap_parser *p, size_t *len_r)
{
	const struct piece *pc = &p->pieces[p->tok_piece];

	*len_r = pc->line_len;
	return p->text + pc->line_off;
}

/* The next octet of the current line, or -1 at its end. */
static int
peek(const struct imap_parser *p)
{
	size_t len;
	const char *s = tok_line(p, &len);

	return p->tok_pos < len ? (unsigned char)s[p->tok_pos] : -1;
}

/* At the end of a line that a literal ends. */
static bool
at_literal(const struct imap_parser *p)
{
	return peek(p) < 0 && p->pieces[p->tok_piece].has_literal;
}

static bool
argv_push(struct imap_parser *p, struct argv *a, const struct imap_arg *arg)
{
	if (a->n == a->cap) {
		size_t cap = a->cap == 0 ? 8 : a->cap * 2,
		       most = p->lim.total_max / sizeof(*a->v);
		if (cap > most)
			cap = most;
		if (cap <= a->n)
			return false;
		a->v = xreallocarray(a->v, cap, sizeof(*a->v));
		a->cap = cap;
	}
	a->v[a->n++] = *arg;
	return true;
}

/* The list's elements into the arena; false past total_max. */
static bool
argv_finish(struct imap_parser *p, struct argv *a, struct imap_arg **v_r,
	    size_t *n_r)
{
	*v_r = NULL;
	*n_r = a->n;
	if (a->n > 0) {
		*v_r = arena_alloc(p, a->n * sizeof(*a->v));
		if (*v_r == NULL) {
			free(a->v);
			return false;
		}
		memcpy(*v_r, a->v, a->n * sizeof(*a->v));
	}
	free(a->v);
	return true;
}

static char *
arena_str(struct imap_parser *p, const char *s, size_t n)
{
	char *r = arena_alloc(p, n + 1);

	if (r == NULL)
		return NULL;
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

static bool parse_list(struct imap_parser *p, struct imap_arg *arg);

static bool
parse_quoted(struct imap_parser *p, struct imap_arg *arg)
{
	size_t len, n = 0;
	const char *s = tok_line(p, &len);
	char *out;

	p->tok_pos++;
	out = arena_alloc(p, len - p->tok_pos + 1);
	if (out == NULL) {
		p->error = "Command too big";
		return false;
	}
	while (p->tok_pos < len && s[p->tok_pos] != '"') {
		char c = s[p->tok_pos++];
		if (c == '\\') {
			if (p->tok_pos >= len || (s[p->tok_pos] != '\\' &&
						  s[p->tok_pos] != '"'))
				break;
			c = s[p->tok_pos++];
		}
		out[n++] = c;
	}
	if (p->tok_pos >= len || s[p->tok_pos] != '"') {
		p->error = "Invalid quoted string";
		return false;
	}
	p->tok_pos++;
	out[n] = '\0';
	arg->type = IMAP_ARG_STRING;
	arg->str = out;
	arg->len = n;
	return true;
}

/* The literal at the end of the current line; the next line follows. */
static void
take_literal(struct imap_parser *p, struct imap_arg *arg)
{
	const struct piece *pc = &p->pieces[p->tok_piece];

	arg->literal8 = pc->literal8;
	arg->size = pc->size;
	arg->len = (size_t)pc->size;
	arg->fd = -1;
	if (pc->streamed) {
		arg->type = IMAP_ARG_STREAMED;
		arg->fd = pc->fd;
		arg->str = NULL;
	} else {
		arg->type = IMAP_ARG_LITERAL;
		arg->str = p->text + pc->lit_off;
	}
	p->tok_piece++;
	p->tok_pos = 0;
}

/* An atom; "[...]" inside it (FETCH sections) may hold SP and lists. */
static bool
parse_atom(struct imap_parser *p, struct imap_arg *arg)
{
	size_t len, start = p->tok_pos, depth = 0;
	const char *s = tok_line(p, &len);
	bool quoted = false;

	while (p->tok_pos < len) {
		unsigned char c = (unsigned char)s[p->tok_pos];
		if (depth > 0) {
			if (c < 0x20 || c == 0x7f)
				break;
			if (c == '"' && (p->tok_pos == 0 ||
					 s[p->tok_pos - 1] != '\\'))
				quoted = !quoted;
			else if (c == ']' && !quoted)
				depth--;
			p->tok_pos++;
			continue;
		}
		if (c == '[')
			depth++;
		else if (!atom_char(c))
			break;
		p->tok_pos++;
	}
	if (depth > 0 || p->tok_pos == start) {
		p->error = depth > 0 ? "Missing ]" : "Invalid character";
		return false;
	}
	arg->str = arena_str(p, s + start, p->tok_pos - start);
	if (arg->str == NULL) {
		p->error = "Command too big";
		return false;
	}
	arg->len = p->tok_pos - start;
	arg->type = arg->len == 3 && strcasecmp(arg->str, "NIL") == 0
			    ? IMAP_ARG_NIL
			    : IMAP_ARG_ATOM;
	return true;
}

static bool
parse_arg(struct imap_parser *p, struct imap_arg *arg)
{
	int c = peek(p);

	memset(arg, 0, sizeof(*arg));
	arg->fd = -1;
	if (at_literal(p)) {
		take_literal(p, arg);
		return true;
	}
	if (c == '(')
		return parse_list(p, arg);
	if (c == '"')
		return parse_quoted(p, arg);
	if (c == '~' || c == '{') {
		p->error = "Invalid literal";
		return false;
	}
	return parse_atom(p, arg);
}

/*
 * Arguments separated by single spaces up to the end of the command, or
 * to ')' when in a list (close: that ')' is expected).
 */
static bool
parse_args(struct imap_parser *p, bool close, struct imap_arg **v_r,
	   size_t *n_r)
{
	struct argv a = {0};
	struct imap_arg arg;
	bool first = true;

	for (;;) {
		int c = peek(p);
		if (c < 0 && !at_literal(p)) {
			if (close) {
				p->error = "Missing )";
				goto fail;
			}
			break;
		}
		if (close && c == ')') {
			p->tok_pos++;
			break;
		}
		if (!first) {
			if (c != ' ') {
				p->error = "Missing space";
				goto fail;
			}
			p->tok_pos++;
			if (!close && peek(p) < 0 && !at_literal(p))
				break;	/* a trailing space: tolerated */
		}
		first = false;
		if (!parse_arg(p, &arg) || !argv_push(p, &a, &arg))
			goto fail;
	}
	if (!argv_finish(p, &a, v_r, n_r)) {
		p->error = "Command too big";
		return false;
	}
	return true;
fail:
	if (p->error == NULL)
		p->error = "Command too big";
	free(a.v);
	return false;
}

static bool
parse_list(struct imap_parser *p, struct imap_arg *arg)
{
	bool ok;

	if (++p->depth > p->lim.depth_max) {
		p->error = "Lists nested too deep";
		return false;
	}
	p->tok_pos++;
	arg->type = IMAP_ARG_LIST;
	ok = parse_args(p, true, &arg->list, &arg->nlist);
	p->depth--;
	return ok;
}

/* The whole command is there: tag, name, arguments. */
static enum imap_parse_result
tokenize(struct imap_parser *p, const struct imap_command **cmd_r)
{
	struct imap_command *c = &p->cmd;
	size_t len, end;
	const char *s;

	p->state = P_LINE;
	p->tok_piece = 0;
	p->depth = 0;
	p->error = NULL;
	s = p->text + p->pieces[0].line_off;
	len = p->pieces[0].line_len;
	learn_tag(p, s, len, &end);
	*c = p->partial;
	if (strcmp(c->tag, "*") == 0)
		return fail(p, "Invalid tag", P_LINE);
	if (c->name[0] == '\0' || end == 0)
		return fail(p, "Missing command", P_LINE);
	p->tok_pos = end;
	if (peek(p) < 0 && !at_literal(p)) {
		c->args = NULL;
		c->nargs = 0;
	} else if (peek(p) != ' ') {
		return fail(p, "Invalid command name", P_LINE);
	} else {
		p->tok_pos++;
		if (!parse_args(p, false, &c->args, &c->nargs))
			return fail(p, p->error, P_LINE);
	}
	/* the next command starts afresh (the arena lives until then) */
	p->text_len = 0;
	p->line_start = 0;
	p->npieces = 0;
	*cmd_r = c;
	return IMAP_PARSE_DONE;
}

/* ---- helpers -------------------------------------------------------- */

bool
imap_arg_astring(const struct imap_arg *a, const char **s, size_t *len)
{
	/* the grammar's astring is 1*ASTRING-CHAR / string: the atom NIL
	 * is the three letters where an astring is expected */
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING &&
	    a->type != IMAP_ARG_LITERAL && a->type != IMAP_ARG_NIL)
		return false;
	if (a->type == IMAP_ARG_ATOM && memchr(a->str, '[', a->len) != NULL)
		return false;
	*s = a->str;
	*len = a->len;
	return true;
}

bool
imap_arg_atom_is(const struct imap_arg *a, const char *word_)
{
	return a->type == IMAP_ARG_ATOM && a->len == strlen(word_) &&
	       strcasecmp(a->str, word_) == 0;
}
