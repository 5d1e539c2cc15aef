#!/usr/bin/env python3
"""Validate the job contract's examples, and real results, against its JSON Schemas.

    python3 Ops/scripts/check-contract.py [--results DIR ...] [--require-kinds email,crm]

Docs/contract/examples/*.json must be valid and Docs/contract/examples/invalid/*.json must be
invalid; the file name's prefix (`job-` or `result-`) picks the schema. Each kind with its own
schemas (`<kind>-job.schema.json` for its jobs, `<kind>-result.schema.json` for its results) keeps
its examples in Docs/contract/examples/<kind>/: there, `job-*.json` must be valid against both
job.schema.json (the envelope) and the kind's job schema, `result-*.json` against both
result.schema.json and the kind's result schema, and <kind>/invalid/*.json, if any, must be invalid
against at least one of them.

--results DIR: every *.json file in DIR is a result body a worker published (the test suite writes
them); each must be valid against result.schema.json and, when its kind has one, the kind's result
schema. --require-kinds: fail unless DIR held at least one result of each of these kinds.

Exits non-zero on any mismatch. Needs the `jsonschema` package (pip install jsonschema).
"""
import argparse
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
    """(kind, folder) for each examples/<kind>/ folder."""
    for folder in sorted(p for p in (CONTRACT / "examples").iterdir() if p.is_dir() and p.name != "invalid"):
        yield folder.name, folder


def kind_schema(kind, what):
    """The validator of <kind>-<what>.schema.json, or None when the kind has no such schema."""
    name = f"{kind}-{what}.schema.json"
    return (name, validator(name)) if (CONTRACT / name).is_file() else None


def check_real_results(directories, required_kinds, validators, counts):
    """Validates result bodies written by workers; returns the number of problems."""
    problems = 0
    seen = set()
    for directory in directories:
        files = sorted(pathlib.Path(directory).glob("*.json"))
        if not files:
            print(f"FAIL {directory}: no result files")
            problems += 1
        for path in files:
            try:
                instance = load(path)
            except (ValueError, UnicodeDecodeError) as e:
                print(f"FAIL {path}: not JSON: {e}")
                problems += 1
                continue
            kind = instance.get("kind") if isinstance(instance, dict) else None
            checks = [(SCHEMAS["result"], validators["result"])]
            extra = kind_schema(kind, "result") if isinstance(kind, str) else None
            if extra:
                checks.append(extra)
            errors = errors_of(checks, instance)
            counts[True] += 1
            label = " + ".join(name for name, _ in checks)
            if errors:
                for name, e in errors:
                    print(f"FAIL {path.name} (real {kind} result): {name}: {e.json_path}: {e.message}")
                problems += 1
            else:
                seen.add(kind)
                print(f"ok   {path.name} (real {kind}/{instance.get('status')} result: {label})")
    for kind in required_kinds:
        if kind not in seen:
            print(f"FAIL no valid real result of kind {kind} was checked")
            problems += 1
    return problems


def main():
    parser = argparse.ArgumentParser(description="Validate the contract's examples and real results.")
    parser.add_argument("--results", action="append", default=[], metavar="DIR",
                        help="a directory of result bodies published by workers (repeatable)")
    parser.add_argument("--require-kinds", default="", metavar="K1,K2",
                        help="with --results: fail unless a result of each of these kinds was checked")
    args = parser.parse_args()
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

    # Kinds with schemas of their own: their examples are valid against the envelope and the kind's schema.
    for kind, folder in kind_examples():
        files = sorted(folder.glob("*.json"))
        if not files:
            print(f"FAIL {folder.relative_to(CONTRACT)}: no examples")
            problems += 1
        for path in files:
            prefix = path.name.split("-", 1)[0]
            if prefix not in SCHEMAS:
                print(f"FAIL {path.relative_to(CONTRACT)}: name must start with job- or result-")
                problems += 1
                continue
            extra = kind_schema(kind, prefix)
            if extra is None:
                print(f"FAIL {path.relative_to(CONTRACT)}: no {kind}-{prefix}.schema.json for this example")
                problems += 1
                continue
            problems += check(path, [(SCHEMAS[prefix], validators[prefix]), extra], True, counts)
        for path in sorted((folder / "invalid").glob("*.json")):
            prefix = path.name.split("-", 1)[0]
            extra = kind_schema(kind, prefix) if prefix in SCHEMAS else None
            checks = [(SCHEMAS[prefix], validators[prefix])] + ([extra] if extra else []) if prefix in SCHEMAS else []
            if not checks:
                print(f"FAIL {path.relative_to(CONTRACT)}: name must start with job- or result-")
                problems += 1
                continue
            problems += check(path, checks, False, counts)
    # Every kind result schema has at least one example.
    for schema in sorted(CONTRACT.glob("*-result.schema.json")):
        kind = schema.name[: -len("-result.schema.json")]
        if not list((CONTRACT / "examples" / kind).glob("result-*.json")):
            print(f"FAIL {schema.name}: no examples/{kind}/result-*.json")
            problems += 1

    if args.results:
        required = [k for k in args.require_kinds.split(",") if k]
        problems += check_real_results(args.results, required, validators, counts)

    print(f"check-contract: {counts[True]} valid and {counts[False]} invalid examples and results checked, "
          f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
