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
# The shop: 8 products in each of 6 categories; each person has a taste for two categories and viewed, put in the
# cart or bought a few products, mostly of their taste (crm track jobs); then one content job per person asks for
# their `email_hero` block (after the content worker trained on these events).
categories = ["running", "hiking", "yoga", "cycling", "swimming", "tennis"]
with open(os.path.join(out, "catalog.ndjson"), "w") as f:
    for c, cat in enumerate(categories):
        for k in range(8):
            f.write(json.dumps({"sku": f"{cat[:3]}-{k}", "name": f"{cat.title()} item {k}", "price": 10 + 7 * k + c,
                                "currency": "EUR", "category": cat, "tags": [cat, ["budget", "mid", "premium"][k % 3]],
                                "url": f"https://shop.example.com/p/{cat[:3]}-{k}"}) + "\n")
events = 0
with open(os.path.join(out, "events.ndjson"), "w") as f:
    for i in range(n):
        taste = random.sample(categories, 2)
        for e in range(random.randint(2, 6)):
            cat = random.choice(taste) if random.random() < 0.85 else random.choice(categories)
            sku = f"{cat[:3]}-{min(7, int(random.expovariate(0.45)))}"
            name = random.choice(["product_viewed", "product_viewed", "add_to_cart", "purchase"])
            data = {"op": "track", "op_id": f"demo-ev-{i}-{e}", "profile_id": f"p{i}", "event_id": f"demo-ev-{i}-{e}",
                    "event": name, "occurred_at": f"2026-11-{1 + e:02d}T12:00:00Z", "properties": {"sku": sku},
                    "items": [{"sku": sku, "quantity": 1}]}
            if name == "purchase":
                data["amount"] = 29.0
                data["currency"] = "EUR"
            f.write(json.dumps({"id": f"demo-ev-{i}-{e}", "kind": "crm", "data": data}) + "\n")
            events += 1
with open(os.path.join(out, "content_jobs.ndjson"), "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"demo-rec-{i}", "kind": "content", "profile_id": f"p{i}",
                            "data": {"op": "recommend", "slot": "email_hero", "n": 4, "rules": {"max_per_category": 2}}}) + "\n")
print(f"wrote {n} profiles, {len(range(0, n, 5)) + len(range(3, n, 10))} consent jobs, {devices} device registrations, "
      f"{events} shop events, 48 products and {n} content jobs to {out}")
