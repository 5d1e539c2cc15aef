"""Writes the demo's data: profiles.ndjson (N people, de/fr/en, three time zones, an email each) and
consents.ndjson (crm jobs: every fifth person opts out of the newsletter). The campaign itself is sent by
`fleet campaign send` (Ops/scripts/demo.sh). Usage: demo_campaign.py OUT_DIR N. Deterministic."""
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
print(f"wrote {n} profiles and {len(range(0, n, 5))} consent jobs to {out}")
