#!/usr/bin/env python3
"""Checks the module layers of src/: no import circle between the crate's top-level modules,
and the rules of the layout (README, "Layout"): which module may not import which.

Reads every `crate::module` path in src/ (in `use` lines, `use crate::{a, b::c}` groups and
paths written inline), test code included, and fails (exit 1) naming each circle and each
forbidden import with the file and line. Run from the repository root: `tools/check-layers.py`.
"""

import re
import sys
from pathlib import Path

SRC = Path("src")

# module -> modules it must not import (README, "Layout").
FORBIDDEN = {
    "http": {"policy", "provider", "plan", "executor", "journal", "daemon", "cli", "runner", "render"},
    "policy": {"http", "provider", "executor", "journal", "daemon", "cli", "runner", "render"},
    "retention": {"policy", "provider", "http", "plan", "executor", "journal", "daemon", "cli", "runner", "render"},
    "plan": {"provider", "http", "executor", "journal", "daemon", "cli", "runner", "render"},
    "daemon": {"cli"},
}

# What pure modules may not do: file, network or process I/O.
NO_IO = {"retention", "plan"}
IO_PATTERNS = [r"\bstd::fs\b", r"\bstd::net\b", r"\bstd::process\b", r"\btokio::", r"\breqwest::", r"\brusqlite::", r"\bFile::"]


def module_of(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def imports(text: str):
    """(line, module) for every crate::module reference."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", line):
            found.append((number, m.group(1)))
        # `use crate::{a, b::c}`: the modules inside the braces.
        for group in re.finditer(r"\bcrate::\{([^}]*)\}?", line):
            for item in group.group(1).split(","):
                name = item.strip().split("::")[0].strip("{ ")
                if re.fullmatch(r"[a-z_][a-z0-9_]*", name or ""):
                    found.append((number, name))
    return found


def main() -> int:
    modules = {module_of(p) for p in SRC.rglob("*.rs")} - {"lib", "main"}
    edges = {}  # (a, b) -> first "file:line"
    problems = []
    for path in sorted(SRC.rglob("*.rs")):
        module = module_of(path)
        if module in ("lib", "main"):
            continue
        text = strip_comments(path.read_text())
        for number, target in imports(text):
            if target not in modules or target == module:
                continue
            edges.setdefault((module, target), f"{path}:{number}")
            if target in FORBIDDEN.get(module, ()):
                problems.append(f"{path}:{number}: {module} imports {target}, which the layers forbid")
        if module in NO_IO:
            for number, line in enumerate(text.splitlines(), 1):
                if any(re.search(p, line) for p in IO_PATTERNS) and "#[cfg(test)]" not in line:
                    if not _in_tests(text, number):
                        problems.append(f"{path}:{number}: {module} must do no I/O: {line.strip()}")
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    for cycle in cycles(graph):
        steps = " -> ".join(cycle + [cycle[0]])
        where = "; ".join(edges[(cycle[i], cycle[(i + 1) % len(cycle)])] for i in range(len(cycle)))
        problems.append(f"import circle {steps} ({where})")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s)")
        return 1
    print(f"layers ok: {len(modules)} modules, {len(edges)} imports between them, no circle")
    return 0


def _in_tests(text: str, number: int) -> bool:
    """Whether line `number` is inside a `#[cfg(test)] mod tests { ... }` at the file's end."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:number], 1):
        if line.strip() == "#[cfg(test)]" and i + 1 <= len(lines) and lines[i].lstrip().startswith("mod "):
            return True
    return False


def cycles(graph):
    """Each elementary circle once (Tarjan's strongly connected components, then a path per
    component)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(find_circle(graph, sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def find_circle(graph, component):
    """A circle through the first node of a strongly connected component."""
    start, members = component[0], set(component)
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph.get(path[-1], ())):
            if w == start:
                return path
            if w in members and w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return component


if __name__ == "__main__":
    sys.exit(main())
