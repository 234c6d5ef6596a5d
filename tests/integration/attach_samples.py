"""
Messages and files for the attachment rules (test_attachments.py; also the
seeds of fuzz/corpus/fuzz_mime_walk): built with Python's email package,
zipfile, tarfile and 7z (p7zip-full), from real files where a real file is
the point (/bin/true as an ELF executable) and minimal hand-made ones
where a small exact one is (a PE/MZ header, a PDF).
"""

import base64
import binascii
import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from email import encoders
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

SENDER = "sender@client.test"


def elf_bytes():
    """A real ELF executable."""
    with open("/bin/true", "rb") as f:
        return f.read()


def pe_bytes():
    """A minimal PE file: an MZ header whose e_lfanew points at a "PE\\0\\0"
    signature and a COFF header for i386 with an optional header (PE32),
    then zeros: what libmagic calls a PE32 executable."""
    mz = bytearray(0x80)
    mz[0:2] = b"MZ"
    mz[0x3C:0x40] = (0x80).to_bytes(4, "little")
    coff = bytearray(20)
    coff[0:2] = (0x14C).to_bytes(2, "little")      # i386
    coff[2:4] = (1).to_bytes(2, "little")          # one section
    coff[16:18] = (0xE0).to_bytes(2, "little")     # optional header size
    coff[18:20] = (0x0102).to_bytes(2, "little")   # executable, 32-bit
    opt = bytearray(0xE0)
    opt[0:2] = (0x10B).to_bytes(2, "little")       # PE32
    opt[68:70] = (2).to_bytes(2, "little")         # subsystem: GUI
    section = bytearray(40)
    section[0:5] = b".text"
    return bytes(mz) + b"PE\0\0" + bytes(coff) + bytes(opt) + bytes(section) \
        + bytes(512)


def pdf_bytes():
    """A minimal valid PDF: one empty page, a correct xref table."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1, xref)
    return bytes(out)


def png_bytes():
    """A 1x1 PNG."""
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(
            ">I", binascii.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0\xff\0\0")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) \
        + chunk(b"IEND", b"")


def zip_bytes(members, password=None):
    """members: {name: bytes}. With password, 7z makes a ZipCrypto zip."""
    if password is not None:
        return seven_zip(members, "zip", password)
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return b.getvalue()


def tar_gz_bytes(members, mode="w:gz"):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


def gz_bytes(data):
    return gzip.compress(data)


def seven_zip(members, fmt="7z", password=None, encrypt_names=False):
    """An archive made by 7z (p7zip-full): fmt 7z or zip."""
    d = tempfile.mkdtemp(prefix="attach7z-")
    try:
        names = []
        for name, data in members.items():
            p = os.path.join(d, "in", name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
            names.append(name)
        out = os.path.join(d, "out." + fmt)
        cmd = ["7z", "a", "-bd", "-y", f"-t{fmt}", out] + names
        if password is not None:
            cmd.insert(2, f"-p{password}")
            if encrypt_names:
                cmd.insert(2, "-mhe=on")
        subprocess.run(cmd, cwd=os.path.join(d, "in"), check=True,
                       capture_output=True, timeout=60)
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d)


# ---- messages ---------------------------------------------------------------


def base_message(to, subject, body="See the attachment.\n"):
    m = MIMEMultipart()
    m["From"] = SENDER
    m["To"] = to
    m["Subject"] = subject
    m.attach(MIMEText(body))
    return m


def with_attachment(to, subject, filename, data, ctype="application/octet-stream"):
    """A message with one base64 attachment named filename (Content-
    Disposition filename and Content-Type name, as mail clients write)."""
    m = base_message(to, subject)
    maintype, subtype = ctype.split("/", 1)
    part = MIMEBase(maintype, subtype, name=filename)
    part.set_payload(data)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    m.attach(part)
    return m.as_bytes()


def raw_attachment(to, subject, disposition, data, ctype_line=None,
                   cte="base64"):
    """A message whose attachment header lines are written by hand (for
    encoded names exactly as given)."""
    if cte == "base64":
        body = base64.encodebytes(data).decode()
    else:
        body = data.decode("latin-1")
    ctype_line = ctype_line or "Content-Type: application/octet-stream"
    return (
        f"From: {SENDER}\nTo: {to}\nSubject: {subject}\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\n\n"
        "--BOUNDARY\nContent-Type: text/plain\n\nSee the attachment.\n"
        f"--BOUNDARY\n{ctype_line}\n{disposition}\n"
        f"Content-Transfer-Encoding: {cte}\n\n{body}\n--BOUNDARY--\n"
    ).encode("latin-1")


def nested_rfc822(to, subject, inner_bytes):
    """inner_bytes (a message) attached as message/rfc822."""
    import email

    m = base_message(to, subject, "Forwarded.\n")
    m.attach(MIMEMessage(email.message_from_bytes(inner_bytes)))
    return m.as_bytes()


def uuencoded_text(to, subject, filename, data):
    """A plain text message with a uuencoded file in its body."""
    lines = [f"begin 644 {filename}"]
    for i in range(0, len(data), 45):
        lines.append(binascii.b2a_uu(data[i:i + 45]).decode().rstrip("\n"))
    lines += ["`", "end"]
    body = "Here it is:\n\n" + "\n".join(lines) + "\n\nBye.\n"
    m = EmailMessage()
    m["From"] = SENDER
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body, cte="7bit")
    return m.as_bytes()


def x_uuencode_part(to, subject, filename, data):
    """An attachment in Content-Transfer-Encoding: x-uuencode."""
    lines = [f"begin 644 {filename}"]
    for i in range(0, len(data), 45):
        lines.append(binascii.b2a_uu(data[i:i + 45]).decode().rstrip("\n"))
    lines += ["`", "end"]
    return raw_attachment(
        to, subject, f'Content-Disposition: attachment; filename="{filename}"',
        ("\n".join(lines)).encode(), cte="x-uuencode")


def deep_multipart(to, subject, depth):
    """depth multiparts nested in each other, a text part inside."""
    head = f"From: {SENDER}\nTo: {to}\nSubject: {subject}\nMIME-Version: 1.0\n"
    body = "Content-Type: text/plain\n\ndeep\n"
    for i in range(depth):
        b = f"b{i}"
        body = (f"Content-Type: multipart/mixed; boundary=\"{b}\"\n\n"
                f"--{b}\n{body}\n--{b}--\n")
    return (head + body).encode()


def deep_rfc822(to, subject, depth):
    """depth message/rfc822 parts nested in each other."""
    head = f"From: {SENDER}\nTo: {to}\nSubject: {subject}\nMIME-Version: 1.0\n"
    body = "Content-Type: text/plain\n\ndeep\n"
    for _ in range(depth):
        body = "Content-Type: message/rfc822\n\n" + body
    return (head + body).encode()


def many_parts(to, subject, n):
    head = (f"From: {SENDER}\nTo: {to}\nSubject: {subject}\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"B\"\n\n")
    parts = "".join(f"--B\nContent-Type: text/plain\n\npart {i}\n"
                    for i in range(n))
    return (head + parts + "--B--\n").encode()


def text_message(to, subject, body):
    m = EmailMessage()
    m["From"] = SENDER
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body)
    return m.as_bytes()


def application(data, subtype, filename):
    p = MIMEApplication(data, subtype, name=filename)
    p.add_header("Content-Disposition", "attachment", filename=filename)
    return p
