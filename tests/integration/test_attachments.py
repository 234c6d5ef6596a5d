"""
Attachment rules (filter.attachments, on by default) against the real
daemon: every rule both ways, with messages built by attach_samples.py
(Python's email package, zipfile, tarfile, 7z) and sent with smtplib.
A refusal must be the exact reply at the end of the data, and the
message must not be stored: each refused message is followed, on the same
connection, by an accepted one, and only once that one is in the Maildir
do we look for the refused one (the daemon has long decided by then).
"""

import re
import smtplib

import pytest

from attach_samples import (
    application, base_message,
    deep_multipart, deep_rfc822, elf_bytes, gz_bytes, many_parts, nested_rfc822,
    pdf_bytes, pe_bytes, png_bytes, raw_attachment, seven_zip, tar_gz_bytes,
    text_message, uuencoded_text, with_attachment, x_uuencode_part,
    zip_bytes, SENDER,
)
from conftest import free_port, to_yaml, wait_for, PASSWORD

TO = "alice@example.test"
REFUSED = "5.7.1 Message refused: "


@pytest.fixture(scope="module")
def g(request, godwit_root, cert):
    """One daemon with the default attachment rules, a submission
    listener, and ::1 as a trusted network (IPv4 clients are not)."""
    from conftest import Godwit, godwit_base, _finish

    crt, key = cert
    d = Godwit(godwit_base(godwit_root, "attachments_shared"), {
        "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
        "smtp": {"trusted_networks": ["::1/128"]},
    })
    d.sub_port = free_port()
    d.config["listeners"].append(
        {"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{d.sub_port}"], "plaintext_auth": True})
    d.write_config()
    d.start()
    yield d
    problems = _finish(d)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def crlf(msg):
    return msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def probe(g, s, uniq, to=TO, sender=SENDER):
    """Sends an accepted message on s and waits until it is stored."""
    mark = "probe-" + uniq[::-1]  # does not hold uniq
    msg = text_message(to, mark, "probe\n").replace(SENDER.encode(),
                                                     sender.encode())
    s.sendmail(sender, [to], crlf(msg))
    wait_for(lambda: g.find_messages(mark), 10, what="the probe delivered")


def send(g, msg, to=TO, family=4, port=None, login=None, sender=SENDER):
    """Sends msg; (code, text) of the reply to its end of data."""
    msg = crlf(msg)
    s = g.smtp(family=family, port=port)
    try:
        if login:
            s.login(login, PASSWORD)
        try:
            s.sendmail(sender, [to], msg)
            return 250, "", s
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode(), s
    except Exception:
        s.close()
        raise


def assert_refused(g, msg, text, uniq, code=554, prefix=False, **kw):
    """msg is refused with code and exactly text (or text as its start),
    and is not stored."""
    sender = kw.get("sender", SENDER)
    got, reply, s = send(g, msg, **kw)
    try:
        assert got == code, f"{got} {reply}"
        if prefix:
            assert reply.startswith(text), reply
        else:
            assert reply == text, reply
        probe(g, s, uniq, sender=sender)
    finally:
        s.quit()
    assert g.find_messages(uniq.encode()) == [], "a refused message was stored"
    return reply


def assert_accepted(g, msg, uniq, **kw):
    got, reply, s = send(g, msg, **kw)
    s.quit()
    assert got == 250, f"{got} {reply}"
    wait_for(lambda: g.find_messages(uniq), 10, what="the message stored")


# ---- names ----------------------------------------------------------------


def test_blocked_extension(g, uniq):
    assert_refused(g, with_attachment(TO, uniq, "setup.exe", b"hello"),
                   REFUSED + 'attachment "setup.exe" is a blocked file type '
                   "(.exe)", uniq)
    assert "reason=blocked-extension" in g.log_text()


@pytest.mark.parametrize("name,ext", [
    ("Invoice.JS", "js"), ("run.ps1", "ps1"), ("disk.iso", "iso"),
    ("link.lnk", "lnk"), ("page.hta", "hta"), ("setup.exe.", "exe"),
    ("setup.exe   ", "exe"), ("dir/sub\\tool.scr", "scr"),
])
def test_blocked_extension_variants(g, uniq, name, ext):
    reply = assert_refused(g, with_attachment(TO, uniq, name, b"hello"),
                           REFUSED + "attachment ", uniq, prefix=True)
    assert reply.endswith(f"is a blocked file type (.{ext})"), reply


def test_double_extension(g, uniq):
    assert_refused(g, with_attachment(TO, uniq, "invoice.pdf.exe", b"x"),
                   REFUSED + 'attachment "invoice.pdf.exe" is a blocked '
                   "file type (.exe)", uniq)
    assert re.search(r"event=reject .*reason=double-extension", g.log_text())


def test_double_extension_blanks(g, uniq):
    name = "invoice.pdf" + " " * 40 + ".exe"
    reply = assert_refused(g, with_attachment(TO, uniq, name, b"x"),
                           REFUSED + 'attachment "invoice.pdf', uniq,
                           prefix=True)
    assert reply.endswith("is a blocked file type (.exe)"), reply


def test_rtl_override_hides_extension(g, uniq):
    # shown as "invoiceexe.pdf" by a client that honours U+202E
    assert_refused(g, with_attachment(TO, uniq, "invoice\u202efdp.exe", b"x"),
                   REFUSED + 'attachment "invoice?fdp.exe" is a file whose '
                   "name hides its type", uniq)


def test_harmless_double_extensions_accepted(g, uniq):
    m = with_attachment(TO, uniq, "backup.tar.gz.txt", b"text\n", "text/plain")
    assert_accepted(g, m, uniq)


def test_rfc2231_name(g, uniq):
    m = raw_attachment(TO, uniq, "Content-Disposition: attachment; "
                       "filename*=UTF-8''r%C3%A9sum%C3%A9.exe", b"x")
    assert_refused(g, m, REFUSED + 'attachment "r?sum?.exe" is a blocked '
                   "file type (.exe)", uniq)


def test_rfc2231_continuations(g, uniq):
    m = raw_attachment(TO, uniq, "Content-Disposition: attachment;\n"
                       " filename*0*=UTF-8''r%C3%A9s;\n"
                       ' filename*1="um.pdf.e";\n filename*2="xe"', b"x")
    assert_refused(g, m, REFUSED + 'attachment "r?sum.pdf.exe" is a blocked '
                   "file type (.exe)", uniq)


def test_rfc2047_filename(g, uniq):
    m = raw_attachment(TO, uniq, "Content-Disposition: attachment; "
                       'filename="=?UTF-8?B?cmVwb3J0LmV4ZQ==?="', b"x")
    assert_refused(g, m, REFUSED + 'attachment "report.exe" is a blocked '
                   "file type (.exe)", uniq)


def test_rfc2047_content_type_name(g, uniq):
    m = raw_attachment(TO, uniq, "Content-Disposition: attachment", b"x",
                       "Content-Type: application/octet-stream; "
                       'name="=?ISO-8859-1?Q?r=E9sum=E9=2Escr?="')
    assert_refused(g, m, REFUSED + 'attachment "r?sum?.scr" is a blocked '
                   "file type (.scr)", uniq)


def test_encoded_names_accepted(g, uniq):
    m = raw_attachment(TO, uniq, "Content-Disposition: attachment; "
                       "filename*=UTF-8''r%C3%A9sum%C3%A9.txt", b"fine\n")
    assert_accepted(g, m, uniq)
    m = raw_attachment(TO, uniq + "-2047", "Content-Disposition: attachment; "
                       'filename="=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="', pdf_bytes())
    assert_accepted(g, m, uniq + "-2047")


# ---- content ----------------------------------------------------------------


def test_elf_disguised_as_pdf(g, uniq):
    m = with_attachment(TO, uniq, "invoice.pdf", elf_bytes(), "application/pdf")
    reply = assert_refused(g, m, REFUSED + 'attachment "invoice.pdf" is an '
                           "executable (application/x-", uniq, prefix=True)
    assert re.search(r"\(application/x-(pie-executable|sharedlib|executable)\)$",
                     reply), reply


def test_pe_disguised_as_pdf(g, uniq):
    m = with_attachment(TO, uniq, "invoice.pdf", pe_bytes(), "application/pdf")
    reply = assert_refused(g, m, REFUSED + 'attachment "invoice.pdf" is an '
                           "executable (", uniq, prefix=True)
    assert reply.endswith(("(application/vnd.microsoft.portable-executable)",
                           "(application/x-dosexec)")), reply


def test_nameless_executable(g, uniq):
    m = raw_attachment(TO, uniq, "Content-Disposition: inline", pe_bytes())
    assert_refused(g, m, REFUSED + "a part of the message is an executable (",
                   uniq, prefix=True)


@pytest.mark.parametrize("kind", ["pdf", "text", "png"])
def test_real_files_accepted(g, uniq, kind):
    name, data, ctype = {
        "pdf": ("report.pdf", pdf_bytes(), "application/pdf"),
        "text": ("notes.txt", b"Meeting notes\nline two\n", "text/plain"),
        "png": ("photo.png", png_bytes(), "image/png"),
    }[kind]
    assert_accepted(g, with_attachment(TO, uniq, name, data, ctype), uniq)
    stored = g.find_messages(uniq)[0].read_bytes()
    assert name.encode() in stored


# ---- archives ---------------------------------------------------------------


def test_zip_holding_exe(g, uniq):
    z = zip_bytes({"readme.txt": b"hi\n", "setup.exe": b"MZ"})
    assert_refused(g, with_attachment(TO, uniq, "docs.zip", z, "application/zip"),
                   REFUSED + 'attachment "docs.zip" holds "setup.exe", a '
                   "blocked file type (.exe)", uniq)


def test_zip_holding_disguised_executable(g, uniq):
    z = zip_bytes({"readme.txt": pe_bytes()})
    assert_refused(g, with_attachment(TO, uniq, "docs.zip", z, "application/zip"),
                   REFUSED + 'attachment "docs.zip" holds "readme.txt", an '
                   "executable (", uniq, prefix=True)


def office_zip(extra):
    """A zip that libmagic calls a Word document (its first members are
    the OOXML manifest and relations), with more members."""
    members = {"[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
               "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
               "word/document.xml": b'<?xml version="1.0"?><w:document/>',
               "docProps/core.xml": b'<?xml version="1.0"?><cp:core/>'}
    members.update(extra)
    return zip_bytes(members)


def test_office_document_is_listed_as_a_zip(g, uniq):
    # the zip signature decides, not libmagic's "a Word document": a docx
    # holding a blocked file is refused, a plain one passes
    docx = "application/vnd.openxmlformats-officedocument." \
        "wordprocessingml.document"
    assert_refused(g, with_attachment(
        TO, uniq, "report.docx", office_zip({"word/setup.exe": b"MZ"}), docx),
        REFUSED + 'attachment "report.docx" holds "word/setup.exe", a '
        "blocked file type (.exe)", uniq)
    u = uniq + "-plain"
    assert_accepted(g, with_attachment(TO, u, "report.docx", office_zip({}),
                                       docx), u)


def test_archive_formats_holding_executables(g, uniq):
    cases = [
        ("a.tar.gz", tar_gz_bytes({"bin/tool": elf_bytes()}),
         'holds "bin/tool", an executable ('),
        ("a.7z", seven_zip({"x.vbs": b"x"}),
         'holds "x.vbs", a blocked file type (.vbs)'),
        ("a.exe.gz", gz_bytes(b"hello"),
         'holds "a.exe", a blocked file type (.exe)'),
        ("outer.zip", zip_bytes({"inner.zip": zip_bytes({"deep/e.scr": b"x"})}),
         'holds "deep/e.scr", a blocked file type (.scr)'),
        ("outer.zip", zip_bytes({"inner.tgz": tar_gz_bytes({"t": elf_bytes()})}),
         'holds "t", an executable ('),
    ]
    for i, (name, data, what) in enumerate(cases):
        u = f"{uniq}-{i}"
        assert_refused(g, with_attachment(TO, u, name, data),
                       REFUSED + f'attachment "{name}" {what}', u, prefix=True)


def test_archives_of_documents_accepted(g, uniq):
    docs = {"report.pdf": pdf_bytes(), "notes.txt": b"notes\n",
            "photo.png": png_bytes()}
    cases = [
        ("docs.zip", zip_bytes(docs), "application/zip"),
        ("docs.7z", seven_zip(docs), "application/x-7z-compressed"),
        ("docs.tar.gz", tar_gz_bytes(docs), "application/gzip"),
        ("outer.zip", zip_bytes({"inner.zip": zip_bytes(docs)}),
         "application/zip"),
    ]
    for i, (name, data, ctype) in enumerate(cases):
        assert_accepted(g, with_attachment(TO, f"{uniq}-{i}", name, data, ctype),
                        f"{uniq}-{i}")


@pytest.mark.parametrize("kind", ["zip", "7z", "7z-headers"])
def test_encrypted_archive_refused_by_default(g, uniq, kind):
    if kind == "zip":
        name, data = "secret.zip", zip_bytes({"a.txt": b"hi"}, password="pw")
    else:
        name, data = "secret.7z", seven_zip({"a.txt": b"hi"}, password="pw",
                                            encrypt_names=kind == "7z-headers")
    assert_refused(g, with_attachment(TO, uniq, name, data),
                   REFUSED + f'attachment "{name}" is an encrypted archive',
                   uniq)
    assert "reason=encrypted-archive" in g.log_text()


def test_encrypted_archives_allowed(make_godwit, uniq):
    g = make_godwit({"filter": {"attachments": {"encrypted_archives": "allow"}}})
    for i, (name, data) in enumerate([
            ("secret.zip", zip_bytes({"a.txt": b"hi"}, password="pw")),
            ("secret.7z", seven_zip({"a.txt": b"hi"}, password="pw")),
            ("names.7z", seven_zip({"a.txt": b"hi"}, password="pw",
                                   encrypt_names=True))]):
        assert_accepted(g, with_attachment(TO, f"{uniq}-{i}", name, data),
                        f"{uniq}-{i}")
    # the names of an encrypted zip are not encrypted: still checked
    z = zip_bytes({"a.exe": b"hi"}, password="pw")
    u = uniq + "-refused"
    assert_refused(g, with_attachment(TO, u, "secret.zip", z),
                   REFUSED + 'attachment "secret.zip" holds "a.exe", a '
                   "blocked file type (.exe)", u)


# ---- structure --------------------------------------------------------------


def test_nested_message_holding_blocked_file(g, uniq):
    inner = with_attachment(TO, "inner", "evil.exe", b"x")
    assert_refused(g, nested_rfc822(TO, uniq, inner),
                   REFUSED + 'attachment "evil.exe" is a blocked file type '
                   "(.exe)", uniq)
    twice = nested_rfc822(TO, "middle", inner)
    assert_refused(g, nested_rfc822(TO, uniq + "-2", twice),
                   REFUSED + 'attachment "evil.exe" is a blocked file type '
                   "(.exe)", uniq + "-2")


@pytest.mark.parametrize("ctype", ["message/rfc822", "application/octet-stream"])
def test_encoded_message_holding_blocked_file(g, uniq, ctype):
    """A message attached base64-encoded (GMime leaves it a leaf) or as a
    .eml file: a mail client opens it, and its attachments with it."""
    inner = with_attachment(TO, "inner", "evil.exe", b"x")
    m = raw_attachment(TO, uniq, "Content-Disposition: attachment; "
                       "filename=fwd.eml", inner, f"Content-Type: {ctype}")
    assert_refused(g, m, REFUSED + 'attachment "evil.exe" is a blocked file '
                   "type (.exe)", uniq)


def test_nested_message_accepted(g, uniq):
    inner = with_attachment(TO, "inner", "fine.pdf", pdf_bytes(),
                            "application/pdf")
    assert_accepted(g, nested_rfc822(TO, uniq, inner), uniq)


def test_uuencode_in_text(g, uniq):
    assert_refused(g, uuencoded_text(TO, uniq, "evil.exe", b"hello world"),
                   REFUSED + 'attachment "evil.exe" is a blocked file type '
                   "(.exe)", uniq)
    assert_refused(g, uuencoded_text(TO, uniq + "-elf", "readme.txt",
                                     elf_bytes()),
                   REFUSED + 'attachment "readme.txt" is an executable (',
                   uniq + "-elf", prefix=True)


def test_x_uuencode_part(g, uniq):
    assert_refused(g, x_uuencode_part(TO, uniq, "file.bin", pe_bytes()),
                   REFUSED + 'attachment "file.bin" is an executable (',
                   uniq, prefix=True)


def test_uuencode_accepted(g, uniq):
    assert_accepted(g, uuencoded_text(TO, uniq, "notes.txt", b"fine\n"), uniq)


def test_limits_depth_and_parts(g, uniq):
    assert_refused(g, deep_multipart(TO, uniq, 30),
                   REFUSED + "too complex to check its attachments (nesting "
                   "depth over the limit)", uniq)
    assert_refused(g, many_parts(TO, uniq + "-parts", 1500),
                   REFUSED + "too complex to check its attachments (part "
                   "count over the limit)", uniq + "-parts")
    # as deep as the part count lets through to GMime, which recurses
    assert_refused(g, deep_rfc822(TO, uniq + "-822", 990),
                   REFUSED + "too complex to check its attachments (nesting "
                   "depth over the limit)", uniq + "-822")
    assert_refused(g, deep_multipart(TO, uniq + "-mp", 990),
                   REFUSED + "too complex to check its attachments (nesting "
                   "depth over the limit)", uniq + "-mp")
    # past the part count, GMime never sees it
    assert_refused(g, deep_rfc822(TO, uniq + "-822b", 5000),
                   REFUSED + "too complex to check its attachments (part "
                   "count over the limit)", uniq + "-822b")
    assert_accepted(g, deep_multipart(TO, uniq + "-ok", 15), uniq + "-ok")
    assert_accepted(g, many_parts(TO, uniq + "-ok2", 500), uniq + "-ok2")


def test_limit_decoded_size(make_godwit, uniq):
    g = make_godwit({"filter": {"attachments": {
        "max_decoded_size": "1M", "max_depth": 3, "max_parts": 20}}})
    # a tar of 3 MB of zeros in a zip: small on the wire, big unpacked
    # (a nested archive is read whole to be listed)
    tar = tar_gz_bytes({"zeros.bin": bytes(3 << 20)}, mode="w")
    z = zip_bytes({"inner.tar": tar})
    assert len(z) < 64 << 10
    assert_refused(g, with_attachment(TO, uniq, "big.zip", z),
                   "5.3.4 Message refused: too complex to check its "
                   "attachments (decoded size over the limit)", uniq, code=552)
    assert "reason=attach-limit-size" in g.log_text()
    # the configured depth and part count
    assert_refused(g, deep_multipart(TO, uniq + "-d", 4),
                   REFUSED + "too complex to check its attachments (nesting "
                   "depth over the limit)", uniq + "-d")
    assert_refused(g, many_parts(TO, uniq + "-p", 25),
                   REFUSED + "too complex to check its attachments (part "
                   "count over the limit)", uniq + "-p")
    assert_accepted(g, deep_multipart(TO, uniq + "-ok", 2), uniq + "-ok")


# ---- who and what -----------------------------------------------------------


def test_submission_and_trusted_clients_checked(g, uniq):
    m = with_attachment(TO, uniq, "setup.exe", b"x")
    text = REFUSED + 'attachment "setup.exe" is a blocked file type (.exe)'
    # trusted network (::1)
    assert_refused(g, m, text, uniq, family=6)
    # submission, authenticated
    m = with_attachment(TO, uniq + "-sub", "setup.exe", b"x")
    m = m.replace(SENDER.encode(), TO.encode())
    assert_refused(g, m, text, uniq + "-sub", port=g.sub_port,
                   login=TO, sender=TO)


def test_disabled_accepts_everything(make_godwit, uniq):
    g = make_godwit({"filter": {"attachments": {"enabled": False}}})
    for i, m in enumerate([
            with_attachment(TO, f"{uniq}-0", "setup.exe", b"x"),
            with_attachment(TO, f"{uniq}-1", "invoice.pdf", elf_bytes(),
                            "application/pdf"),
            with_attachment(TO, f"{uniq}-2", "docs.zip",
                            zip_bytes({"a.exe": b"x"})),
            deep_multipart(TO, f"{uniq}-3", 40)]):
        assert_accepted(g, m, f"{uniq}-{i}")


def test_configured_extensions(make_godwit, uniq):
    g = make_godwit({"filter": {"attachments": {
        "blocked_extensions": [".TXT", "docm"]}}})
    assert_refused(g, with_attachment(TO, uniq, "notes.txt", b"x\n"),
                   REFUSED + 'attachment "notes.txt" is a blocked file type '
                   "(.txt)", uniq)
    # .exe is no longer blocked by name; a real executable still is
    assert_accepted(g, with_attachment(TO, uniq + "-exe", "setup.exe", b"x"),
                    uniq + "-exe")
    assert_refused(g, with_attachment(TO, uniq + "-pe", "setup.exe",
                                      pe_bytes()),
                   REFUSED + 'attachment "setup.exe" is an executable (',
                   uniq + "-pe", prefix=True)


def test_config_check_reports_bad_extension(make_godwit):
    g = make_godwit({"filter": {"attachments": {
        "blocked_extensions": ["exe", "bad ext"],
        "encrypted_archives": "maybe"}}}, start=False)
    text = to_yaml(g.config) + "\n"
    g.write_config(raw=text)
    p = g.run("config", "check")
    assert p.returncode == 1, p
    out = p.stdout + p.stderr
    lines = text.splitlines()
    bad = next(i for i, l in enumerate(lines, 1) if "bad ext" in l)
    enc = next(i for i, l in enumerate(lines, 1) if "maybe" in l)
    assert f"{g.cfg_path}:{bad}: filter.attachments.blocked_extensions: " \
        "'bad ext'" in out, out
    assert f"{g.cfg_path}:{enc}: filter.attachments.encrypted_archives" in out, out


def test_client_leaves_during_the_walk(make_godwit, uniq):
    """The session goes while its message is walked: the thread's answer
    finds no one (ASan watches), and the next message is walked and
    delivered. One worker, so both go through the same thread, in order."""
    # no mail authentication: the end of the data goes straight to the
    # filters, while the client is still there
    g = make_godwit({"workers": 1, "log": {"level": "debug"},
                     "spf": {"enabled": False}, "dkim": {"verify": False},
                     "dmarc": {"enabled": False}})
    # slow to walk: hundreds of nested archives, each sniffed and listed
    z = zip_bytes({f"d{i}.zip": zip_bytes({f"n{i}.txt": b"x"})
                   for i in range(400)})
    msg = crlf(with_attachment(TO, uniq, "many.zip", z))
    c = g.raw()
    c.ehlo()
    assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
    assert c.cmd(f"RCPT TO:<{TO}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(msg + b".\r\n")
    c.close()
    after = uniq + "-after"
    assert_accepted(g, with_attachment(TO, after, "docs.zip",
                                       zip_bytes({"a.txt": b"x"})), after)
    assert g.find_messages(f"Subject: {uniq}\n".encode()) == []
    assert g.running()
    # it left while the walk ran (else this test tested nothing)
    assert re.search(r"event=disconnect .*reason=eof state=FILTER",
                     g.log_text()), g.log_text()


def test_bdat(g, uniq):
    """BDAT in two chunks: the walk sees the whole message."""
    msg = crlf(with_attachment(TO, uniq, "invoice.pdf.exe", b"x"))
    half = len(msg) // 2
    c = g.raw()
    try:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{TO}>").code == 250
        c.send(f"BDAT {half}\r\n".encode() + msg[:half])
        assert c.reply().code == 250
        c.send(f"BDAT {len(msg) - half} LAST\r\n".encode() + msg[half:])
        r = c.reply()
        assert (r.code, r.enh) == (554, "5.7.1"), r
        assert r.text.endswith('attachment "invoice.pdf.exe" is a blocked '
                               "file type (.exe)"), r
        # the session goes on: the next message is delivered
        ok = crlf(text_message(TO, uniq[::-1], "fine\n"))
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        assert c.cmd(f"RCPT TO:<{TO}>").code == 250
        c.send(f"BDAT {len(ok)} LAST\r\n".encode() + ok)
        assert c.reply().code == 250
    finally:
        c.close()
    wait_for(lambda: g.find_messages(uniq[::-1]), 10, what="the next message")
    assert g.find_messages(uniq) == []


def test_large_message_from_the_spool_file(g, uniq):
    """Past 256 KiB the spool is a file, which the walk's thread maps:
    the rules see all of it, the last part too."""
    import os

    big = pdf_bytes() + os.urandom(600 << 10)
    m = base_message(TO, uniq)
    m.attach(application(big, "pdf", "big.pdf"))
    m.attach(application(pe_bytes(), "octet-stream", "tail.dat"))
    assert len(m.as_bytes()) > 800 << 10
    assert_refused(g, m.as_bytes(), REFUSED + 'attachment "tail.dat" is an '
                   "executable (", uniq, prefix=True)
    ok = base_message(TO, uniq + "-ok")
    ok.attach(application(big, "pdf", "big.pdf"))
    assert_accepted(g, ok.as_bytes(), uniq + "-ok")


def test_large_parts_decoded_past_their_start(g, uniq):
    """A part that is neither text nor a message is decoded as far as its
    first 40 KiB, and on only when that start is an executable's or an
    archive's: a large executable and a large zip are still seen whole."""
    import os

    pad = os.urandom(200 << 10)
    m = base_message(TO, uniq)
    m.attach(application(pe_bytes() + pad, "octet-stream", "data.bin"))
    assert_refused(g, m.as_bytes(), REFUSED + 'attachment "data.bin" is an '
                   "executable (", uniq, prefix=True)
    u = uniq + "-zip"
    z = zip_bytes({"a.pdf": pdf_bytes() + pad, "z/last.exe": b"x"})
    m = base_message(TO, u)
    m.attach(application(z, "zip", "big.zip"))
    assert_refused(g, m.as_bytes(), REFUSED + 'attachment "big.zip" holds '
                   '"z/last.exe", a blocked file type (.exe)', u)
