#!/usr/bin/env python3
"""Checks the code blocks of README.md and docs/*.md against the repository.

  check_docs.py check   --root SRC
  check_docs.py extract --root SRC --out DIR

`check` verifies, for every Markdown page:
  - a ```cpp block right after a line `<!-- examples/NAME.cpp -->` is that file,
    byte for byte (the README quick start, the Beast server, ...);
  - shell blocks (sh, console, crontab) name only scripts that exist, and
    `smart-ratelimit <command>` lines name a real command and only flags that the
    command's source (tools/cmd_<command>.cpp or tools/cli_common.hpp) spells;
  - json blocks parse (a whole document, or one document per line);
  - sql blocks are complete statements (sqlite3.complete_statement);
  - yaml blocks parse (PyYAML when installed, else a sanity check of the indentation),
    and one holding `scrape_configs:` passes `promtool check config` when promtool is
    installed;
  - relative links point at files that exist, and #anchors at headings there;
  - no page cites the behaviour contract that lives outside the repository;
  - README.md starts with the two commands and stays under 400 lines.

`extract` writes every other ```cpp block as its own translation unit
(DIR/<page>_<n>.cpp) and DIR/blocks.cmake, which lists them with the adapters
their #includes need; tests/docs/CMakeLists.txt compiles them (-fsyntax-only).
"""
import argparse
import json
import tempfile
import subprocess
import shutil
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")
MARKER = re.compile(r"^<!-- (examples/[A-Za-z0-9_./-]+) -->$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
README_START = (
    "# smart_ratelimit\n\n```sh\n"
    "scripts/demo.sh    # fresh Debian 12 -> the example server with its dashboard, on SQLite\n"
    "scripts/test.sh    # fresh Debian 12 -> the whole test suite (starts PostgreSQL and Redis itself)\n"
    "```\n"
)
README_MAX_LINES = 400
# Words a page must not contain: the behaviour contract is written into the docs as
# behaviour, never cited. (Spelled in pieces so that this file does not match itself.)
FORBIDDEN = [re.compile(r"\b" + "SP" + r"EC\b"), re.compile(r"\.\./" + "shared")]
ADAPTERS = [  # (include prefix, adapter)
    ("smart_ratelimit/soci", "soci"),
    ("smart_ratelimit/beast/soci_dashboard_source", "soci"),
    ("smart_ratelimit/beast", "beast"),
    ("smart_ratelimit/redis", "redis"),
    ("smart_ratelimit/smtp", "smtp"),
]


def pages(root):
    out = [os.path.join(root, "README.md")]
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        out += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    return out


def blocks(text):
    """Yields (line number, language, marker or None, body) for each fenced block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        marker = None
        if i > 0:
            mm = MARKER.match(lines[i - 1])
            marker = mm.group(1) if mm else None
        j = i + 1
        while j < len(lines) and lines[j] != "```":
            j += 1
        if j == len(lines):
            raise SystemExit(f"unclosed code block at line {start + 1}")
        yield start + 1, lang, marker, "\n".join(lines[i + 1:j]) + "\n"
        i = j + 1


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(text):
    out, in_code = set(), False
    for line in text.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def commands(root):
    with open(os.path.join(root, "tools", "main.cpp"), encoding="utf-8") as f:
        return set(re.findall(r'\{"([a-z-]+)", "', f.read()))


def flags_of(root, command):
    text = ""
    for name in (f"cmd_{command.replace('-', '_')}.cpp", "cli_common.hpp"):
        path = os.path.join(root, "tools", name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                text += f.read()
    return set(re.findall(r'"(--[a-z][a-z0-9-]*)', text))


def check_shell(root, body, where, errors, known):
    logical = body.replace("\\\n", " ")
    for line in logical.split("\n"):
        line = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
        for script in re.findall(r"(?<![\w/.-])(scripts/[\w./-]+)", line):
            if not os.path.exists(os.path.join(root, script)):
                errors.append(f"{where}: no such script {script}")
        for m in re.finditer(r"smart-ratelimit\s+([a-z-]+)((?:\s+[^|>;&]*)?)", line):
            cmd, rest = m.group(1), m.group(2)
            if cmd not in known:
                errors.append(f"{where}: unknown command 'smart-ratelimit {cmd}'")
                continue
            spelled = flags_of(root, cmd)
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
                if flag not in spelled and flag != "--help":
                    errors.append(f"{where}: 'smart-ratelimit {cmd}' has no flag {flag}")


def check_yaml(body, where, errors):
    try:
        import yaml  # PyYAML, when installed
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            yaml.safe_load(body)
        except yaml.YAMLError as e:
            errors.append(f"{where}: invalid YAML: {e}")
            return
    else:
        for k, line in enumerate(body.split("\n"), 1):
            indent = len(line) - len(line.lstrip(" "))
            if "\t" in line[:indent + 1] or (line.strip() and indent % 2):
                errors.append(f"{where}+{k}: YAML indented with a tab or an odd number of spaces")
    promtool = shutil.which("promtool")
    if promtool and re.search(r"^scrape_configs:", body, re.M):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write(body)
        try:
            p = subprocess.run([promtool, "check", "config", f.name], capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                errors.append(f"{where}: promtool check config: {(p.stdout + p.stderr).strip()}")
        finally:
            os.remove(f.name)


def check(root):
    errors = []
    known = commands(root)
    texts = {}
    for page in pages(root):
        with open(page, encoding="utf-8") as f:
            texts[page] = f.read()
    for page, text in texts.items():
        rel = os.path.relpath(page, root)
        for rx in FORBIDDEN:
            for n, line in enumerate(text.split("\n"), 1):
                if rx.search(line):
                    errors.append(f"{rel}:{n}: cites the external behaviour contract: {line.strip()}")
        for n, lang, marker, body in blocks(text):
            where = f"{rel}:{n}"
            if marker:
                path = os.path.join(root, marker)
                if lang != "cpp":
                    errors.append(f"{where}: a block marked {marker} must be ```cpp")
                elif not os.path.exists(path):
                    errors.append(f"{where}: marked with {marker}, which does not exist")
                else:
                    with open(path, encoding="utf-8") as f:
                        if f.read() != body:
                            errors.append(f"{where}: the block differs from {marker}")
            elif lang in ("sh", "console", "crontab"):
                check_shell(root, body, where, errors, known)
            elif lang == "json":
                try:
                    json.loads(body)
                except ValueError:
                    for k, line in enumerate(body.strip().split("\n")):
                        try:
                            json.loads(line)
                        except ValueError as e:
                            errors.append(f"{where}+{k + 1}: invalid JSON: {e}")
            elif lang == "yaml":
                check_yaml(body, where, errors)
            elif lang == "sql":
                if not sqlite3.complete_statement(body):
                    errors.append(f"{where}: not a complete SQL statement")

            elif lang == "cpp" or lang == "":
                if lang == "":
                    errors.append(f"{where}: a code block needs a language")
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), file_part)) if file_part else page
            if not os.path.exists(dest):
                errors.append(f"{rel}: link to missing {target}")
            elif anchor and dest.endswith(".md"):
                with open(dest, encoding="utf-8") as f:
                    if anchor not in anchors(f.read()):
                        errors.append(f"{rel}: link to missing anchor {target}")
    readme = texts[os.path.join(root, "README.md")]
    if not readme.startswith(README_START):
        errors.append("README.md: must start with the title and the two commands")
    if readme.count("\n") > README_MAX_LINES:
        errors.append(f"README.md: {readme.count(chr(10))} lines, more than {README_MAX_LINES}")
    for e in errors:
        print(e, file=sys.stderr)
    n_blocks = sum(1 for t in texts.values() for _ in blocks(t))
    print(f"{len(texts)} pages, {n_blocks} code blocks, {len(errors)} problem(s)")
    return 1 if errors else 0


def extract(root, out):
    os.makedirs(out, exist_ok=True)
    entries, written = [], set()
    for page in pages(root):
        with open(page, encoding="utf-8") as f:
            text = f.read()
        stem = os.path.splitext(os.path.basename(page))[0].lower().replace("-", "_")
        for n, lang, marker, body in blocks(text):
            if lang != "cpp" or marker:
                continue
            name = f"{stem}_{n}.cpp"
            needs = sorted({a for prefix, a in ADAPTERS
                            for inc in re.findall(r"#include\s*<([^>]+)>", body)
                            if inc.startswith(prefix)})
            rel = os.path.relpath(page, root)
            content = f"// {rel}, line {n} (extracted by tests/docs/check_docs.py)\n#line {n + 1} \"{rel}\"\n" + body
            path = os.path.join(out, name)
            if not os.path.exists(path) or open(path, encoding="utf-8").read() != content:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(content)
            written.add(name)
            entries.append(f'  "{name}|{",".join(needs) or "core"}"')
    for stale in set(os.listdir(out)) - written - {"blocks.cmake"}:
        if stale.endswith(".cpp"):
            os.remove(os.path.join(out, stale))
    manifest = "set(SRL_DOC_BLOCKS\n" + "\n".join(entries) + ")\n"
    path = os.path.join(out, "blocks.cmake")
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != manifest:
        with open(path, "w", encoding="utf-8") as f:
            f.write(manifest)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["check", "extract"])
    p.add_argument("--root", required=True)
    p.add_argument("--out")
    a = p.parse_args()
    if a.mode == "check":
        return check(a.root)
    if not a.out:
        p.error("extract needs --out")
    return extract(a.root, a.out)


if __name__ == "__main__":
    sys.exit(main())
