/*
 * The milter protocol, version 6 (sendmail's libmilter, as Postfix speaks
 * it), as pure functions of bytes: the packets godwit sends (a 4-octet
 * length in network order, a command octet, the data), the option
 * negotiation, and the parser of the milter's replies. No I/O here: the
 * client is filter/milter.c. Fuzzed by fuzz/fuzz_milter_reply.c.
 */
#ifndef GODWIT_MILTER_PROTO_H
#define GODWIT_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/strbuf.h"

#define MILTER_VERSION 6
/* Body chunks and replbody pieces are at most this long (libmilter's
 * MILTER_CHUNK_SIZE). */
#define MILTER_CHUNK 65535
/* The largest reply packet accepted (length field: command + data). */
#define MILTER_REPLY_MAX (MILTER_CHUNK + 4096)

/* commands (client to milter) */
enum milter_cmd {
	MC_ABORT = 'A',
	MC_BODY = 'B',
	MC_CONNECT = 'C',
	MC_MACRO = 'D',
	MC_BODYEOB = 'E',
	MC_HELO = 'H',
	MC_HEADER = 'L',
	MC_MAIL = 'M',
	MC_EOH = 'N',
	MC_OPTNEG = 'O',
	MC_QUIT = 'Q',
	MC_RCPT = 'R',
	MC_DATA = 'T',
};

/* replies (milter to client) */
enum milter_reply_type {
	MR_ADDRCPT = '+',
	MR_DELRCPT = '-',
	MR_ADDRCPT_PAR = '2',
	MR_SHUTDOWN = '4',
	MR_ACCEPT = 'a',
	MR_REPLBODY = 'b',
	MR_CONTINUE = 'c',
	MR_DISCARD = 'd',
	MR_CHGFROM = 'e',
	MR_CONN_FAIL = 'f',
	MR_ADDHEADER = 'h',
	MR_INSHEADER = 'i',
	MR_SETSYMLIST = 'l',
	MR_CHGHEADER = 'm',
	MR_OPTNEG = 'O',
	MR_PROGRESS = 'p',
	MR_QUARANTINE = 'q',
	MR_REJECT = 'r',
	MR_SKIP = 's',
	MR_TEMPFAIL = 't',
	MR_REPLYCODE = 'y',
};

/* actions the milter may take (negotiated) */
#define MILTER_ACT_ADDHDRS 0x01
#define MILTER_ACT_CHGBODY 0x02
#define MILTER_ACT_ADDRCPT 0x04
#define MILTER_ACT_DELRCPT 0x08
#define MILTER_ACT_CHGHDRS 0x10
#define MILTER_ACT_QUARANTINE 0x20
#define MILTER_ACT_CHGFROM 0x40
#define MILTER_ACT_ADDRCPT_PAR 0x80
#define MILTER_ACT_SETSYMLIST 0x100
#define MILTER_ACT_ALL 0x1ff

/* protocol steps: stages the milter does not want, replies it will not
 * send (NR_*), and what the client can do (SKIP, HDR_LEADSPC) */
#define MILTER_P_NOCONNECT 0x01
#define MILTER_P_NOHELO 0x02
#define MILTER_P_NOMAIL 0x04
#define MILTER_P_NORCPT 0x08
#define MILTER_P_NOBODY 0x10
#define MILTER_P_NOHDRS 0x20
#define MILTER_P_NOEOH 0x40
#define MILTER_P_NR_HDR 0x80
#define MILTER_P_NOUNKNOWN 0x100
#define MILTER_P_NODATA 0x200
#define MILTER_P_SKIP 0x400
#define MILTER_P_RCPT_REJ 0x800
#define MILTER_P_NR_CONN 0x1000
#define MILTER_P_NR_HELO 0x2000
#define MILTER_P_NR_MAIL 0x4000
#define MILTER_P_NR_RCPT 0x8000
#define MILTER_P_NR_DATA 0x10000
#define MILTER_P_NR_UNKN 0x20000
#define MILTER_P_NR_EOH 0x40000
#define MILTER_P_NR_BODY 0x80000
#define MILTER_P_HDR_LEADSPC 0x100000
/* all the steps godwit offers (it never sends UNKNOWN commands, so
 * NOUNKNOWN is simply granted) */
#define MILTER_P_OFFER 0x1fffff

/* the macro stages of a symbol list (SETSYMLIST, in the negotiation) */
enum milter_macro_stage {
	MM_CONNECT,
	MM_HELO,
	MM_MAIL,
	MM_RCPT,
	MM_DATA,
	MM_EOM,
	MM_EOH,
	MM_NSTAGES
};

/* ---- packets godwit sends ------------------------------------------- */

/* A growable packet buffer (the encoder appends whole packets). */
struct milter_buf {
	struct strbuf out;	/* the packets, ready to write */
};

void milter_buf_clear(struct milter_buf *b);	/* frees */

/* A command with no data (ABORT, QUIT, DATA, EOH, BODYEOB). */
void milter_put_simple(struct milter_buf *b, enum milter_cmd cmd);
void milter_put_optneg(struct milter_buf *b, uint32_t actions,
		       uint32_t protocol);
/* family: '4', '6', 'L' (a UNIX socket: port 0) or 'U' (unknown: neither
 * port nor address is sent). */
void milter_put_connect(struct milter_buf *b, const char *hostname,
			char family, uint16_t port, const char *addr);
void milter_put_helo(struct milter_buf *b, const char *helo);
/* MAIL and RCPT: the address with its angle brackets, then each ESMTP
 * argument ("SIZE=100"). */
void milter_put_envaddr(struct milter_buf *b, enum milter_cmd cmd,
			const char *addr, const char *const *args,
			size_t nargs);
void milter_put_header(struct milter_buf *b, const char *name,
		       const char *value);
/* One BODY packet: len at most MILTER_CHUNK. */
void milter_put_body(struct milter_buf *b, const void *data, size_t len);
/* MACRO for the command cmd: names[i] = values[i]. */
void milter_put_macros(struct milter_buf *b, enum milter_cmd cmd,
		       const char *const *names, const char *const *values,
		       size_t n);

/* ---- replies ---------------------------------------------------------- */

/*
 * One reply, its strings pointing into the packet it was parsed from
 * (NUL-terminated there; valid while that buffer is).
 */
struct milter_reply {
	enum milter_reply_type type;
	/* OPTNEG */
	uint32_t version, actions, protocol;
	/* OPTNEG's symbol lists (and SETSYMLIST): names per stage, or NULL */
	const char *symlist[MM_NSTAGES];
	/* REPLYCODE: the code (400..599) and the whole text as sent
	 * ("550-5.7.1 a\r\n550 5.7.1 b") */
	int code;
	const char *text;
	/* ADDHEADER, INSHEADER, CHGHEADER: name, value; index (INSHEADER:
	 * the position; CHGHEADER: the nth field of that name, from 1) */
	const char *name, *value;
	uint32_t index;
	/* ADDRCPT(_PAR), DELRCPT, CHGFROM: the address, ESMTP args or NULL;
	 * QUARANTINE: the reason in addr */
	const char *addr, *args;
	/* REPLBODY: a piece of the new body */
	const unsigned char *body;
	size_t body_len;
};

/*
 * Parses one reply packet at the start of buf. Returns 1 with *r and
 * *used_r (the packet's length) set, 0 when buf holds only part of a
 * packet, -1 when it is not a valid reply (*error_r says why, a static
 * string). Every length is checked: a packet longer than
 * MILTER_REPLY_MAX, strings without their NUL, trailing octets, an
 * unknown type, and a REPLYCODE that is not a 4xx/5xx reply whose lines
 * all carry the same code and an enhanced code of the same class are
 * refused.
 */
int milter_reply_parse(const unsigned char *buf, size_t len,
		       struct milter_reply *r, size_t *used_r,
		       const char **error_r);

/* "accept", "replycode", ... for the log */
const char *milter_reply_name(int type);

/*
 * The negotiated values: what the milter asked for, within what godwit
 * offered. 0, or -1 (*error_r) when the milter's version is below 2 or
 * it asks for actions or steps godwit did not offer.
 */
int milter_negotiate(const struct milter_reply *r, uint32_t offer_actions,
		     uint32_t offer_protocol, uint32_t *actions_r,
		     uint32_t *protocol_r, const char **error_r);

#endif
