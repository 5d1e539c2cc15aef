"""Renders one golden-liquid benchmark fixture (DIR/data.json, DIR/templates/index.liquid and the partials
next to it) N times with python-liquid and prints renders/s, and whether the output equals
DIR/expected_result.txt. `"now" | date` sees 2025-06-01 12:00 (the year the expected results were made).

Usage: python3 python_fixture.py FIXTURE_DIR [N]"""
import datetime, json, os, sys, time, types

import liquid
from liquid import Environment, FileSystemLoader

try:  # freeze "now" for the date filter (python-liquid 2: liquid.builtin.filters.misc uses `dt.datetime.now()`)
    from liquid.builtin.filters import misc

    class _Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=tz)

    shim = types.SimpleNamespace(**{k: getattr(datetime, k) for k in dir(datetime) if not k.startswith("__")})
    shim.datetime = _Frozen
    misc.dt = shim
except Exception:  # another python-liquid layout: "now" stays the clock's
    pass

d = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
templates = os.path.join(d, "templates")
env = Environment(loader=FileSystemLoader(templates))
t = env.get_template("index.liquid")
data = json.load(open(os.path.join(d, "data.json"), encoding="utf-8"))
expected = open(os.path.join(d, "expected_result.txt"), "rb").read()
first = t.render(**data).encode()
t0 = time.perf_counter()
out = 0
for _ in range(n):
    out += len(t.render(**data).encode())
dt = time.perf_counter() - t0
# expected_result.txt files of 001 and 002 end with a newline their templates do not print.
if first == expected:
    status = "match"
elif first.rstrip(b"\n") == expected.rstrip(b"\n"):
    status = "match except the final newline"
else:
    status = "mismatch"
print(f"python-liquid {liquid.__version__}: {n / dt:.0f} renders/s ({n} renders, {out} bytes, {status})")
