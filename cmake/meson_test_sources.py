#!/usr/bin/env python3
"""Lists the standard-only test executables that tests/<area>/CMakeLists.txt declares,
so meson.build builds exactly the same ones: every srl_add_test_executable() call
without LIBS, and without a later target_link_libraries() on it (those need an adapter
library and stay CMake-only). target_compile_definitions() on the executable carry
over, with ${CMAKE_CURRENT_SOURCE_DIR}, ${PROJECT_SOURCE_DIR} and ${CMAKE_SOURCE_DIR}
replaced; an executable that uses any other variable is left to CMake.
Usage: meson_test_sources.py <source-tree> [area ...]
Prints one line per executable: <name>|<path>;<path>...|<define>;<define>..."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1]).resolve()
areas = set(sys.argv[2:])


def calls(text, command):
    for m in re.finditer(command + r"\s*\(([^)]*)\)", text):
        yield m.group(1).split()


for cml in sorted((root / "tests").glob("*/CMakeLists.txt")):
    area = cml.parent.name
    if areas and area not in areas:
        continue
    text = re.sub(r"#[^\n]*", "", cml.read_text())
    variables = {
        "CMAKE_CURRENT_SOURCE_DIR": str(cml.parent),
        "PROJECT_SOURCE_DIR": str(root),
        "CMAKE_SOURCE_DIR": str(root),
    }
    for tokens in calls(text, r"\bsrl_add_test_executable"):
        if not tokens:
            continue
        name = tokens[0]
        parts = {"SOURCES": [], "LIBS": [], "LABELS": []}
        section = None
        for tok in tokens[1:]:
            if tok in parts:
                section = tok
            elif section:
                parts[section].append(tok)
        if parts["LIBS"] or not parts["SOURCES"]:
            continue
        if any(t and t[0] == name for t in calls(text, r"\btarget_link_libraries")):
            continue
        defines, usable = [], True
        for t in calls(text, r"\btarget_compile_definitions"):
            if not t or t[0] != name:
                continue
            for d in t[1:]:
                if d in ("PRIVATE", "PUBLIC", "INTERFACE"):
                    continue
                d = re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), d)
                if "${" in d or "$<" in d:
                    usable = False
                defines.append(d)
        if not usable or any("$" in s for s in parts["SOURCES"]):
            print(f"meson_test_sources: {name} uses CMake variables; CMake only", file=sys.stderr)
            continue
        missing = [s for s in parts["SOURCES"] if not (cml.parent / s).is_file()]
        if missing:
            sys.exit(f"meson_test_sources: {cml}: {name}: no such file {missing[0]}")
        sources = [f"tests/{area}/{s}" for s in parts["SOURCES"]]
        print("|".join([name, ";".join(sources), ";".join(defines)]))
