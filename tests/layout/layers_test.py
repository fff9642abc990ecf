#!/usr/bin/env python3
"""The layers include downwards only (SPEC, Layout): core/ <- actors/ <- adapters (http/, kafka/,
store/) <- main.cpp; nothing includes bench/ or tests/. Prints every include that points upwards
or sideways, and fails if there is one."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
# What each folder may include of the project, besides itself.
allowed = {
    "core": set(),
    "actors": {"core"},
    "http": {"core", "actors"},
    "kafka": {"core", "actors"},
    "store": {"core", "actors"},
}
include = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
wrong = []
for folder, below in allowed.items():
    for path in sorted((root / folder).glob("*.[ch]pp")):
        for target in include.findall(path.read_text()):
            top = target.split("/")[0]
            if "/" in target and top != folder and top not in below:
                wrong.append(f"{path.relative_to(root)} includes {target}")
for path in sorted(root.glob("*.cpp")):
    for target in include.findall(path.read_text()):
        if target.split("/")[0] in ("bench", "tests"):
            wrong.append(f"{path.relative_to(root)} includes {target}")
for line in wrong:
    print(line)
sys.exit(1 if wrong else 0)
