#!/usr/bin/env python3
"""Generate test credentials for push_emulator.py.

Writes into --out:
  AuthKey_<KID>.p8            APNs token-signing key: EC P-256 private key, PKCS#8 PEM
                              (same shape as the .p8 file Apple lets you download once)
  AuthKey_<KID>_public.pem    its public key (SubjectPublicKeyInfo PEM) -> --apns-public-key
  service_account.json        FCM / Google service-account key file (RSA 2048, PKCS#8 PEM
                              private key), token_uri = <base-url>/token -> --fcm-credentials
  credentials.json            a summary (key id, team id, project id, client e-mail, paths)

The summary is also printed on stdout as JSON.
"""
import argparse
import json
import os
import secrets
import string
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _rand_id(n=10):
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _write(path, data, mode=0o600):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def make_credentials(out, key_id=None, team_id=None, project_id="emulator-project",
                     client_email=None, base_url="https://127.0.0.1:8443"):
    os.makedirs(out, exist_ok=True)
    key_id = key_id or _rand_id()
    team_id = team_id or _rand_id()
    client_email = client_email or f"firebase-adminsdk-emu@{project_id}.iam.gserviceaccount.com"
    base_url = base_url.rstrip("/")

    # APNs: ES256 (P-256) key, PKCS#8 PEM like Apple's AuthKey_<KID>.p8
    ec_key = ec.generate_private_key(ec.SECP256R1())
    p8 = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    pub = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    p8_path = os.path.join(out, f"AuthKey_{key_id}.p8")
    pub_path = os.path.join(out, f"AuthKey_{key_id}_public.pem")
    _write(p8_path, p8)
    _write(pub_path, pub, 0o644)

    # FCM: Google service-account JSON key file
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
    client_id = "".join(secrets.choice(string.digits) for _ in range(21))
    sa = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": rsa_pem,
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": base_url + "/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                + client_email.replace("@", "%40"),
        "universe_domain": "googleapis.com",
    }
    sa_path = os.path.join(out, "service_account.json")
    _write(sa_path, json.dumps(sa, indent=2) + "\n")

    summary = {
        "apns_key_id": key_id,
        "apns_team_id": team_id,
        "apns_private_key": os.path.abspath(p8_path),
        "apns_public_key": os.path.abspath(pub_path),
        "fcm_credentials": os.path.abspath(sa_path),
        "fcm_project_id": project_id,
        "fcm_client_email": client_email,
        "fcm_private_key_id": sa["private_key_id"],
        "fcm_token_uri": sa["token_uri"],
    }
    _write(os.path.join(out, "credentials.json"), json.dumps(summary, indent=2) + "\n", 0o644)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate APNs/FCM test credentials for push_emulator.py")
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--key-id", help="APNs key id (default: random 10 chars, like Apple's)")
    ap.add_argument("--team-id", help="APNs team id (default: random 10 chars)")
    ap.add_argument("--project-id", default="emulator-project", help="FCM project id")
    ap.add_argument("--client-email", help="service account e-mail "
                    "(default firebase-adminsdk-emu@<project>.iam.gserviceaccount.com)")
    ap.add_argument("--base-url", default="https://127.0.0.1:8443",
                    help="emulator base URL; token_uri = BASE/token (default %(default)s)")
    a = ap.parse_args(argv)
    summary = make_credentials(a.out, a.key_id, a.team_id, a.project_id, a.client_email, a.base_url)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
