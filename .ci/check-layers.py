#!/usr/bin/env python3
"""Checks the layering that ARCHITECTURE.md describes, from the source.

1. The pure core (src/core) imports none of the crates that do I/O or run
   tasks: tokio, reqwest, sled, lettre, axum (nor their helpers).
2. No import cycles between the top-level modules of src/: every module
   uses only modules of lower layers, in the order of LAYERS.
3. No source file holds more than 900 lines outside its tests.

Exits 1 and names the file and line of every breach.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
# Lower layers first; a module may use only modules listed before it.
LAYERS = ["core", "config", "fetch", "store", "mail", "web", "service", "eval", "cli"]
IMPURE = ["tokio", "tokio_util", "reqwest", "sled", "lettre", "axum", "hyper", "tower"]
MAX_CODE_LINES = 900

failures = []


def top_module(path):
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def code_lines(text):
    """Lines outside `#[cfg(test)]` items, comments and blank lines
    included: what a reader has to get through."""
    count = 0
    skipping = False
    depth = 0
    opened = False
    for line in text.split("\n"):
        stripped = line.strip()
        if not skipping and stripped.startswith("#[cfg(test)]"):
            skipping, depth, opened = True, 0, False
            continue
        if skipping:
            depth += line.count("{") - line.count("}")
            opened = opened or "{" in line
            if (opened and depth <= 0) or (not opened and stripped.endswith(";")):
                skipping = False
            continue
        count += 1
    return count


use_path = re.compile(r"\bcrate::(\{[^}]*\}|[a-z_]+)")
for path in sorted(SRC.rglob("*.rs")):
    text = path.read_text()
    module = top_module(path)
    rel = path.relative_to(SRC.parent)
    if module == "core":
        for number, line in enumerate(text.split("\n"), 1):
            words = re.match(r"\s*(pub(\([a-z]+\))?\s+)?use\s+([a-z_]+)", line)
            if words and words.group(3) in IMPURE:
                failures.append(f"{rel}:{number}: the pure core imports `{words.group(3)}`")
                continue
            for crate in IMPURE:
                if re.search(rf"(^|[^a-z_:]){crate}::", line) and not line.strip().startswith("//"):
                    failures.append(f"{rel}:{number}: the pure core uses `{crate}::`")
    if module in LAYERS:
        rank = LAYERS.index(module)
        for number, line in enumerate(text.split("\n"), 1):
            if line.strip().startswith("//"):
                continue
            for match in use_path.finditer(line):
                names = re.findall(r"[a-z_]+", match.group(1)) if match.group(1).startswith("{") else [match.group(1)]
                for name in names:
                    if name in LAYERS and LAYERS.index(name) > rank:
                        failures.append(f"{rel}:{number}: `{module}` uses `{name}`, a higher layer")
    lines = code_lines(text)
    if lines > MAX_CODE_LINES:
        failures.append(f"{rel}: {lines} lines outside its tests (limit {MAX_CODE_LINES})")

loose = [p.name for p in SRC.glob("*.rs") if p.name not in ("lib.rs", "main.rs")]
if len(loose) > 8:
    failures.append(f"src/: {len(loose)} loose modules (limit 8): {', '.join(loose)}")

for failure in failures:
    print(failure, file=sys.stderr)
if failures:
    print(f"layer check: {len(failures)} problem(s)", file=sys.stderr)
    sys.exit(1)
print("layer check: core is pure, no cycles between top-level modules, no file over 900 lines of code")
