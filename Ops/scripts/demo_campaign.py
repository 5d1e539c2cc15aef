"""Writes the demo's data: profiles.ndjson (N people, de/fr/en, three time zones, an email each),
consents.ndjson (crm jobs: every fifth person opts out of the newsletter; every tenth, counting from 3, of push
offers), devices.ndjson (crm device jobs: 9 in 10 people have a phone, iOS or Android) and unregistered.txt (the
tokens of every twentieth person's phone, which the push emulator answers as unregistered). The campaigns
themselves are sent by `fleet campaign send` (Ops/scripts/demo.sh). Usage: demo_campaign.py OUT_DIR N.
Deterministic."""
import json, os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
random.seed(11)
names = ["anna", "ben", "chloé", "dmitri", "eva", "farid", "gustav", "hana", "jürgen", None]
with open(os.path.join(out, "profiles.ndjson"), "w") as f:
    for i in range(n):
        p = {"id": f"p{i}", "email": f"user{i}@example.com", "first_name": random.choice(names),
             "locale": random.choice(["de", "fr", "en"]), "timezone": random.choice(["Europe/Berlin", "Europe/Paris", "America/New_York"])}
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
with open(os.path.join(out, "consents.ndjson"), "w") as f:
    for i in range(0, n, 5):
        f.write(json.dumps({"id": f"demo-consent-{i}", "kind": "crm", "data": {
            "op": "consent", "op_id": f"demo-consent-{i}", "profile_id": f"p{i}", "timestamp": "2026-01-01T00:00:00Z",
            "channel": "email", "topic": "newsletter", "state": "opted_out"}}) + "\n")
with open(os.path.join(out, "consents.ndjson"), "a") as f:
    for i in range(3, n, 10):
        f.write(json.dumps({"id": f"demo-push-consent-{i}", "kind": "crm", "data": {
            "op": "consent", "op_id": f"demo-push-consent-{i}", "profile_id": f"p{i}", "timestamp": "2026-01-01T00:00:00Z",
            "channel": "push", "topic": "offers", "state": "opted_out"}}) + "\n")
devices = 0
with open(os.path.join(out, "devices.ndjson"), "w") as f, open(os.path.join(out, "unregistered.txt"), "w") as gone:
    for i in range(n):
        if i % 10 == 9:
            continue  # no phone
        ios = i % 2 == 0
        token = f"{0xD0000000 + i:064x}" if ios else f"demo-fcm-token-{i:08d}"
        f.write(json.dumps({"id": f"demo-device-{i}", "kind": "crm", "data": {
            "op": "device", "op_id": f"demo-device-{i}", "profile_id": f"p{i}", "timestamp": "2026-01-01T00:00:00Z",
            "token": token, "platform": "ios" if ios else "android", "app": "shop"}}) + "\n")
        devices += 1
        if i % 20 == 0:
            gone.write(token + "\n")
print(f"wrote {n} profiles, {len(range(0, n, 5)) + len(range(3, n, 10))} consent jobs and {devices} device registrations to {out}")
