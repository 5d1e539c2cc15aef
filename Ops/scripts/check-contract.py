#!/usr/bin/env python3
"""Validate the job contract's examples against its JSON Schemas.

Docs/contract/examples/*.json must be valid and Docs/contract/examples/invalid/*.json must be
invalid; the file name's prefix (`job-` or `result-`) picks the schema. Exits non-zero on any
mismatch. Needs the `jsonschema` package (pip install jsonschema).
"""
import json
import pathlib
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    sys.exit("check-contract: the Python package 'jsonschema' is missing; install it with: "
             "python3 -m pip install jsonschema")

CONTRACT = pathlib.Path(__file__).resolve().parents[2] / "Docs" / "contract"
SCHEMAS = {"job": "job.schema.json", "result": "result.schema.json"}


def load(path):
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def main():
    validators = {}
    for prefix, name in SCHEMAS.items():
        schema = load(CONTRACT / name)
        Draft202012Validator.check_schema(schema)
        validators[prefix] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER)

    problems = 0
    counts = {True: 0, False: 0}
    for expect_valid, folder in ((True, CONTRACT / "examples"),
                                 (False, CONTRACT / "examples" / "invalid")):
        files = sorted(folder.glob("*.json"))
        if not files:
            print(f"FAIL {folder.relative_to(CONTRACT)}: no examples")
            problems += 1
        for path in files:
            rel = path.relative_to(CONTRACT)
            prefix = path.name.split("-", 1)[0]
            if prefix not in validators:
                print(f"FAIL {rel}: name must start with job- or result-")
                problems += 1
                continue
            try:
                instance = load(path)
            except (ValueError, UnicodeDecodeError) as e:
                print(f"FAIL {rel}: not JSON: {e}")
                problems += 1
                continue
            errors = sorted(validators[prefix].iter_errors(instance), key=lambda e: list(e.path))
            counts[expect_valid] += 1
            if expect_valid and errors:
                problems += 1
                for e in errors:
                    print(f"FAIL {rel}: {e.json_path}: {e.message}")
            elif not expect_valid and not errors:
                problems += 1
                print(f"FAIL {rel}: expected invalid, but it validates")
            elif expect_valid:
                print(f"ok   {rel}")
            else:
                e = errors[0]
                print(f"ok   {rel} (rejected: {e.json_path}: {e.message[:100]})")

    print(f"check-contract: {counts[True]} valid and {counts[False]} invalid examples checked, "
          f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
