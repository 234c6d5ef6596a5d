/*
 * Tests for the milter protocol codec (mail/milter_proto.c): the packets
 * godwit sends, byte for byte, and the reply parser, table-driven: every
 * reply, and the ways a reply can be wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/milter_proto.h"

/* ---- the encoder ------------------------------------------------------ */

static void
expect(struct milter_buf *b, const void *want, size_t n)
{
	assert_int_equal(b->out.len, n);
	assert_memory_equal(b->out.s, want, n);
	strbuf_reset(&b->out);
}

static void
test_encode(void **state)
{
	struct milter_buf b = {0};
	const char *args[] = {"SIZE=10", "BODY=8BITMIME"};
	const char *names[] = {"j", "{client_addr}"};
	const char *values[] = {"mx", "192.0.2.1"};
	unsigned char big[MILTER_CHUNK];

	(void)state;
	milter_put_optneg(&b, 0x1ff, 0x1fffff);
	expect(&b, "\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff", 17);
	milter_put_connect(&b, "[192.0.2.1]", '4', 2525, "192.0.2.1");
	expect(&b,
	       "\0\0\0\x1a"
	       "C[192.0.2.1]\0"
	       "4\x09\xdd"
	       "192.0.2.1\0",
	       30);
	milter_put_connect(&b, "h", 'U', 0, "ignored");
	expect(&b, "\0\0\0\x04" "Ch\0U", 8);
	milter_put_helo(&b, "client.test");
	expect(&b, "\0\0\0\x0dHclient.test\0", 17);
	milter_put_envaddr(&b, MC_MAIL, "<a@b>", args, 2);
	expect(&b, "\0\0\0\x1dM<a@b>\0SIZE=10\0BODY=8BITMIME\0", 33);
	milter_put_envaddr(&b, MC_RCPT, "<c@d>", NULL, 0);
	expect(&b, "\0\0\0\x07R<c@d>\0", 11);
	milter_put_header(&b, "Subject", "hi");
	expect(&b, "\0\0\0\x0cLSubject\0hi\0", 16);
	milter_put_simple(&b, MC_EOH);
	expect(&b, "\0\0\0\x01N", 5);
	milter_put_macros(&b, MC_CONNECT, names, values, 2);
	expect(&b, "\0\0\0\x1f" "DCj\0mx\0{client_addr}\0" "192.0.2.1\0", 35);
	memset(big, 'x', sizeof(big));
	milter_put_body(&b, big, sizeof(big));
	assert_int_equal(b.out.len, 5 + MILTER_CHUNK);
	assert_memory_equal(b.out.s, "\0\1\0\0B", 5);
	/* packets append */
	strbuf_reset(&b.out);
	milter_put_simple(&b, MC_ABORT);
	milter_put_simple(&b, MC_QUIT);
	expect(&b, "\0\0\0\1A\0\0\0\1Q", 10);
	milter_buf_clear(&b);
	assert_null(b.out.s);
}

/* ---- the parser ------------------------------------------------------- */

struct reply_case {
	const char *what;
	const char *pkt;	/* the packet's data: type and data */
	size_t len;
	int ret;		/* 1 or -1 */
	int type;
	const char *s1, *s2;	/* text/name/addr, value/args */
	uint32_t num;		/* index, code, actions */
};

#define P(s) (s), sizeof(s) - 1

static const struct reply_case cases[] = {
    {"accept", P("a"), 1, MR_ACCEPT},
    {"continue", P("c"), 1, MR_CONTINUE},
    {"discard", P("d"), 1, MR_DISCARD},
    {"reject", P("r"), 1, MR_REJECT},
    {"tempfail", P("t"), 1, MR_TEMPFAIL},
    {"progress", P("p"), 1, MR_PROGRESS},
    {"skip", P("s"), 1, MR_SKIP},
    {"shutdown", P("4"), 1, MR_SHUTDOWN},
    {"accept with data", P("ax"), -1},
    {"unknown type", P("Z"), -1},
    {"replycode", P("y550 5.7.1 go away\0"), 1, MR_REPLYCODE,
     "550 5.7.1 go away", NULL, 550},
    {"replycode bare code", P("y451\0"), 1, MR_REPLYCODE, "451", NULL, 451},
    {"replycode multi-line",
     P("y550-5.7.1 one\r\n550 5.7.1 two\0"), 1, MR_REPLYCODE,
     "550-5.7.1 one\r\n550 5.7.1 two", NULL, 550},
    {"replycode 2xx", P("y250 ok\0"), -1},
    {"replycode 6xx", P("y650 no\0"), -1},
    {"replycode letters", P("y5x0 no\0"), -1},
    {"replycode class disagrees", P("y550 4.7.1 no\0"), -1},
    {"replycode lines disagree", P("y550-a\r\n551 b\0"), -1},
    {"replycode last line continues", P("y550-a\0"), -1},
    {"replycode middle line ends", P("y550 a\r\n550 b\0"), -1},
    {"replycode bare LF", P("y550 a\nb\0"), -1},
    {"replycode no NUL", P("y550 a"), -1},
    {"replycode trailing", P("y550 a\0x"), -1},
    {"addheader", P("hX-Spam\0Yes\0"), 1, MR_ADDHEADER, "X-Spam", "Yes"},
    {"addheader empty name", P("h\0Yes\0"), -1},
    {"addheader no value", P("hX-Spam\0"), -1},
    {"addheader trailing", P("hX\0Y\0Z"), -1},
    {"insheader", P("i\0\0\0\x02X-I\0v\0"), 1, MR_INSHEADER, "X-I", "v", 2},
    {"insheader short index", P("i\0\0"), -1},
    {"chgheader", P("m\0\0\0\x01Subject\0new\0"), 1, MR_CHGHEADER,
     "Subject", "new", 1},
    {"chgheader delete", P("m\0\0\0\x01X-Del\0\0"), 1, MR_CHGHEADER,
     "X-Del", "", 1},
    {"addrcpt", P("+<bob@example.test>\0"), 1, MR_ADDRCPT,
     "<bob@example.test>"},
    {"addrcpt two strings", P("+<a@b>\0x\0"), -1},
    {"addrcpt_par", P("2<a@b>\0NOTIFY=NEVER\0"), 1, MR_ADDRCPT_PAR,
     "<a@b>", "NOTIFY=NEVER"},
    {"addrcpt_par no args", P("2<a@b>\0"), 1, MR_ADDRCPT_PAR, "<a@b>"},
    {"delrcpt", P("-<a@b>\0"), 1, MR_DELRCPT, "<a@b>"},
    {"chgfrom", P("e<new@x>\0"), 1, MR_CHGFROM, "<new@x>"},
    {"chgfrom args", P("e<>\0SIZE=1\0"), 1, MR_CHGFROM, "<>", "SIZE=1"},
    {"chgfrom three", P("e<>\0a\0b\0"), -1},
    {"quarantine", P("qspam\0"), 1, MR_QUARANTINE, "spam"},
    {"replbody", P("bnew body\r\n"), 1, MR_REPLBODY, "new body\r\n"},
    {"replbody empty", P("b"), 1, MR_REPLBODY, ""},
    {"setsymlist", P("l\0\0\0\x01{auth_type} j\0"), 1, MR_SETSYMLIST,
     "{auth_type} j", NULL, 1},
    {"setsymlist bad stage", P("l\0\0\0\x09j\0"), -1},
    {"optneg", P("O\0\0\0\x06\0\0\0\x01\0\0\0\x10"), 1, MR_OPTNEG, NULL,
     NULL, 1},
    {"optneg symlist", P("O\0\0\0\x06\0\0\x01\0\0\0\0\0\0\0\0\x02i\0"), 1,
     MR_OPTNEG, "i", NULL, 0x100},
    {"optneg short", P("O\0\0\0\x06\0\0"), -1},
    {"optneg symlist unknown stage", P("O\0\0\0\x06\0\0\0\0\0\0\0\0\0\0\0\x07i\0"),
     -1},
    {"optneg symlist no NUL", P("O\0\0\0\x06\0\0\0\0\0\0\0\0\0\0\0\x02i"),
     -1},
};

static void
check_case(const struct reply_case *c)
{
	unsigned char pkt[256];
	struct milter_reply r;
	size_t used = 0;
	const char *err = NULL;
	int ret;

	pkt[0] = pkt[1] = pkt[2] = 0;
	pkt[3] = (unsigned char)c->len;
	memcpy(pkt + 4, c->pkt, c->len);
	/* a packet and the start of the next: only the first is taken */
	memcpy(pkt + 4 + c->len, "\0\0\0\1c", 5);
	ret = milter_reply_parse(pkt, 4 + c->len + 5, &r, &used, &err);
	if (ret != c->ret)
		fail_msg("%s: returned %d (%s)", c->what, ret,
			 err != NULL ? err : "");
	if (ret < 0) {
		assert_non_null(err);
		return;
	}
	assert_int_equal(used, 4 + c->len);
	assert_int_equal(r.type, c->type);
	switch (c->type) {
	case MR_REPLYCODE:
		assert_string_equal(r.text, c->s1);
		assert_int_equal(r.code, c->num);
		break;
	case MR_ADDHEADER: case MR_INSHEADER: case MR_CHGHEADER:
		assert_string_equal(r.name, c->s1);
		assert_string_equal(r.value, c->s2);
		if (c->type != MR_ADDHEADER)
			assert_int_equal(r.index, c->num);
		break;
	case MR_ADDRCPT: case MR_ADDRCPT_PAR: case MR_DELRCPT:
	case MR_CHGFROM: case MR_QUARANTINE:
		assert_string_equal(r.addr, c->s1);
		if (c->s2 != NULL)
			assert_string_equal(r.args, c->s2);
		else
			assert_null(r.args);
		break;
	case MR_REPLBODY:
		assert_int_equal(r.body_len, strlen(c->s1));
		assert_memory_equal(r.body, c->s1, r.body_len);
		break;
	case MR_SETSYMLIST:
		assert_string_equal(r.symlist[c->num], c->s1);
		break;
	case MR_OPTNEG:
		assert_int_equal(r.version, 6);
		assert_int_equal(r.actions, c->num);
		if (c->s1 != NULL)
			assert_string_equal(r.symlist[MM_MAIL], c->s1);
		break;
	default:
		break;
	}
}

static void
test_replies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

static void
test_lengths(void **state)
{
	unsigned char pkt[16] = {0, 0, 0, 1, 'c'};
	struct milter_reply r;
	size_t used = 0;
	const char *err = NULL;

	(void)state;
	/* partial: the length, then part of the data */
	for (size_t n = 0; n < 5; n++)
		assert_int_equal(milter_reply_parse(pkt, n, &r, &used, &err), 0);
	assert_int_equal(milter_reply_parse(pkt, 5, &r, &used, &err), 1);
	/* zero length */
	memset(pkt, 0, 4);
	assert_int_equal(milter_reply_parse(pkt, 5, &r, &used, &err), -1);
	/* over the limit: refused before its data is there */
	pkt[0] = 0;
	pkt[1] = (MILTER_REPLY_MAX + 1) >> 16;
	pkt[2] = ((MILTER_REPLY_MAX + 1) >> 8) & 0xff;
	pkt[3] = (MILTER_REPLY_MAX + 1) & 0xff;
	assert_int_equal(milter_reply_parse(pkt, 5, &r, &used, &err), -1);
	pkt[0] = 0xff;
	assert_int_equal(milter_reply_parse(pkt, 5, &r, &used, &err), -1);
	assert_string_equal(err, "packet too large");
}

static void
test_negotiate(void **state)
{
	struct milter_reply r = {.type = MR_OPTNEG, .version = 6,
				 .actions = MILTER_ACT_ADDHDRS,
				 .protocol = MILTER_P_NOHELO |
					     MILTER_P_NR_CONN};
	uint32_t a = 0, p = 0;
	const char *err = NULL;

	(void)state;
	assert_int_equal(milter_negotiate(&r, MILTER_ACT_ALL, MILTER_P_OFFER,
					  &a, &p, &err), 0);
	assert_int_equal(a, MILTER_ACT_ADDHDRS);
	assert_int_equal(p, MILTER_P_NOHELO | MILTER_P_NR_CONN);
	r.actions = 0x200;
	assert_int_equal(milter_negotiate(&r, MILTER_ACT_ALL, MILTER_P_OFFER,
					  &a, &p, &err), -1);
	r.actions = 0;
	r.protocol = 0x400000;
	assert_int_equal(milter_negotiate(&r, MILTER_ACT_ALL, MILTER_P_OFFER,
					  &a, &p, &err), -1);
	r.protocol = 0;
	r.version = 1;
	assert_int_equal(milter_negotiate(&r, MILTER_ACT_ALL, MILTER_P_OFFER,
					  &a, &p, &err), -1);
	r.version = 6;
	r.type = MR_ACCEPT;
	assert_int_equal(milter_negotiate(&r, MILTER_ACT_ALL, MILTER_P_OFFER,
					  &a, &p, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_replies),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_negotiate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
