#!/usr/bin/env python3
"""Lists the standard-only test executables that tests/<area>/CMakeLists.txt declares,
so meson.build builds exactly the same ones: every srl_add_test_executable() call
without LIBS (those need an adapter library and stay CMake-only).
Usage: meson_test_sources.py <source-tree> [area ...]
Prints one line per executable: <name>;<path>;<path>... (paths from the tree's root)."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1]).resolve()
areas = set(sys.argv[2:])
for cml in sorted((root / "tests").glob("*/CMakeLists.txt")):
    area = cml.parent.name
    if areas and area not in areas:
        continue
    text = re.sub(r"#[^\n]*", "", cml.read_text())
    for m in re.finditer(r"srl_add_test_executable\s*\(([^)]*)\)", text):
        tokens = m.group(1).split()
        if not tokens:
            continue
        parts = {"SOURCES": [], "LIBS": [], "LABELS": []}
        section = None
        for tok in tokens[1:]:
            if tok in parts:
                section = tok
            elif section:
                parts[section].append(tok)
        if parts["LIBS"] or not parts["SOURCES"]:
            continue
        if any("$" in s for s in parts["SOURCES"]):
            sys.exit(f"meson_test_sources: {cml}: {tokens[0]} uses variables in SOURCES; list the files")
        missing = [s for s in parts["SOURCES"] if not (cml.parent / s).is_file()]
        if missing:
            sys.exit(f"meson_test_sources: {cml}: {tokens[0]}: no such file {missing[0]}")
        print(";".join([tokens[0]] + [f"tests/{area}/{s}" for s in parts["SOURCES"]]))
