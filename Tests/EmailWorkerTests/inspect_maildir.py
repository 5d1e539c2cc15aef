"""Parses every message of a Maildir with Python's email package; prints one JSON object a line:
to, message_id, job_id, subject, text, html, parts (content types in order), ok (RFC 8058 headers present,
multipart/alternative text then html, QP lines within 76), problems, received (the sink's Received header,
unfolded)."""
import email, json, os, sys
from email import policy

maildir = sys.argv[1]
for d in ("new", "cur"):
    path = os.path.join(maildir, d)
    if not os.path.isdir(path):
        continue
    for name in sorted(os.listdir(path)):
        raw = open(os.path.join(path, name), "rb").read()
        problems = []
        m = email.message_from_bytes(raw, policy=policy.default)
        if m.get_content_type() != "multipart/alternative":
            problems.append("not multipart/alternative")
        parts = [p.get_content_type() for p in m.iter_parts()]
        if parts != ["text/plain", "text/html"]:
            problems.append("parts %s" % parts)
        if not str(m.get("List-Unsubscribe", "")).startswith("<https://"):
            problems.append("List-Unsubscribe")
        if str(m.get("List-Unsubscribe-Post", "")) != "List-Unsubscribe=One-Click":
            problems.append("List-Unsubscribe-Post")
        for h in ("Date", "Message-ID", "List-ID", "From", "To", "Subject"):
            if m.get(h) is None:
                problems.append("no " + h)
        for line in raw.split(b"\n"):
            if len(line.rstrip(b"\r")) > 998:
                problems.append("line over 998")
        for p in m.iter_parts():
            if p.get("Content-Transfer-Encoding") != "quoted-printable":
                problems.append("not QP")
            for line in p.get_payload(decode=False).split("\n"):
                if len(line.rstrip("\r")) > 76:
                    problems.append("QP line over 76")
                    break
        text = m.get_body(("plain",)).get_content() if parts else ""
        html = m.get_body(("html",)).get_content() if parts else ""
        print(json.dumps({"to": str(m.get("To", "")), "message_id": str(m.get("Message-ID", "")),
                          "job_id": str(m.get("X-Fleet-Job-ID", "")), "subject": str(m.get("Subject", "")),
                          "text": text, "html": html, "parts": parts, "ok": not problems, "problems": problems,
                          "received": " ".join(str(m.get("Received", "")).split())}))
