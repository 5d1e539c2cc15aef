"""Writes the demo campaign: profiles.ndjson (2,000 people, de/fr/en, with an email each), consents.ndjson
(crm jobs: 20% opt out of the newsletter) and jobs.ndjson (N email jobs of the `monthly` template, campaign
with variants a/b and a 10% holdout). Usage: demo_campaign.py OUT_DIR N. Deterministic."""
import json, os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
random.seed(11)
names = ["anna", "ben", "chloé", "dmitri", "eva", "farid", "gustav", "hana", "jürgen", None]
with open(os.path.join(out, "profiles.ndjson"), "w") as f:
    for i in range(2000):
        p = {"id": f"p{i}", "email": f"user{i}@example.com", "first_name": random.choice(names),
             "locale": random.choice(["de", "fr", "en"]), "timezone": random.choice(["Europe/Berlin", "Europe/Paris", "America/New_York"])}
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
with open(os.path.join(out, "consents.ndjson"), "w") as f:
    for i in range(0, 2000, 5):
        f.write(json.dumps({"id": f"demo-consent-{i}", "kind": "crm", "data": {
            "op": "consent", "op_id": f"demo-consent-{i}", "profile_id": f"p{i}", "timestamp": "2026-01-01T00:00:00Z",
            "channel": "email", "topic": "newsletter", "state": "opted_out"}}) + "\n")
campaign = {"id": "monthly-demo", "name": "Monthly newsletter (demo)", "holdout": 0.1,
            "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]}
with open(os.path.join(out, "jobs.ndjson"), "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"demo-email-{i}", "kind": "email", "profile_id": f"p{i % 2000}", "template": "monthly",
                            "campaign": campaign}) + "\n")
print(f"wrote 2000 profiles, 400 consent jobs and {n} email jobs to {out}")
