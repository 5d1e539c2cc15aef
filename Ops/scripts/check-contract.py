#!/usr/bin/env python3
"""Validate the job contract's examples against its JSON Schemas.

Docs/contract/examples/*.json must be valid and Docs/contract/examples/invalid/*.json must be
invalid; the file name's prefix (`job-` or `result-`) picks the schema. Each kind with its own data
schema (`<kind>-job.schema.json`, e.g. crm) keeps its examples in Docs/contract/examples/<kind>/:
there, `job-*.json` must be valid against both job.schema.json (the envelope) and the kind's schema,
and <kind>/invalid/*.json, if any, must be invalid against at least one of them. Exits non-zero on
any mismatch. Needs the `jsonschema` package (pip install jsonschema).
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


def validator(name):
    schema = load(CONTRACT / name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors_of(validators, instance):
    """Every error of `instance` against each (label, validator), labelled when there are several schemas."""
    found = []
    for label, v in validators:
        for e in sorted(v.iter_errors(instance), key=lambda e: list(e.path)):
            found.append((label, e))
    return found


def check(path, validators, expect_valid, counts):
    """Checks one example; prints a line; returns the number of problems (0 or 1)."""
    rel = path.relative_to(CONTRACT)
    try:
        instance = load(path)
    except (ValueError, UnicodeDecodeError) as e:
        print(f"FAIL {rel}: not JSON: {e}")
        return 1
    errors = errors_of(validators, instance)
    counts[expect_valid] += 1
    schemas = " + ".join(label for label, _ in validators)
    if expect_valid and errors:
        for label, e in errors:
            print(f"FAIL {rel}: {label}: {e.json_path}: {e.message}")
        return 1
    if not expect_valid and not errors:
        print(f"FAIL {rel}: expected invalid, but it validates against {schemas}")
        return 1
    if expect_valid:
        print(f"ok   {rel} ({schemas})")
    else:
        label, e = errors[0]
        print(f"ok   {rel} (rejected by {label}: {e.json_path}: {e.message[:100]})")
    return 0


def kind_examples():
    """(kind, folder, kind schema file) for each examples/<kind>/ folder."""
    for folder in sorted(p for p in (CONTRACT / "examples").iterdir() if p.is_dir() and p.name != "invalid"):
        yield folder.name, folder, f"{folder.name}-job.schema.json"


def main():
    validators = {prefix: validator(name) for prefix, name in SCHEMAS.items()}

    problems = 0
    counts = {True: 0, False: 0}
    for expect_valid, folder in ((True, CONTRACT / "examples"),
                                 (False, CONTRACT / "examples" / "invalid")):
        files = sorted(folder.glob("*.json"))
        if not files:
            print(f"FAIL {folder.relative_to(CONTRACT)}: no examples")
            problems += 1
        for path in files:
            prefix = path.name.split("-", 1)[0]
            if prefix not in validators:
                print(f"FAIL {path.relative_to(CONTRACT)}: name must start with job- or result-")
                problems += 1
                continue
            problems += check(path, [(SCHEMAS[prefix], validators[prefix])], expect_valid, counts)

    # Kinds with a data schema: their examples are jobs, valid against the envelope and the kind's schema.
    for kind, folder, schema_name in kind_examples():
        if not (CONTRACT / schema_name).is_file():
            print(f"FAIL {folder.relative_to(CONTRACT)}: no {schema_name} for these examples")
            problems += 1
            continue
        both = [(SCHEMAS["job"], validators["job"]), (schema_name, validator(schema_name))]
        files = sorted(folder.glob("*.json"))
        if not files:
            print(f"FAIL {folder.relative_to(CONTRACT)}: no examples")
            problems += 1
        for path in files:
            if not path.name.startswith("job-"):
                print(f"FAIL {path.relative_to(CONTRACT)}: name must start with job-")
                problems += 1
                continue
            problems += check(path, both, True, counts)
        for path in sorted((folder / "invalid").glob("*.json")):
            problems += check(path, both, False, counts)

    print(f"check-contract: {counts[True]} valid and {counts[False]} invalid examples checked, "
          f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
