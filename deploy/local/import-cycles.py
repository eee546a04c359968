#!/usr/bin/env python3
"""File-level import graph of every crate's src/ and its cycles.

An edge a.rs -> b.rs means a.rs names an item of the module b.rs defines, through a
`use crate::...`, `use super::...`, a `crate::...` / `super::...` path in code, or a path
through a child module it declares (`child::item`). Declaring a child module (`mod x;`)
alone is containment, not an import. Test modules (`tests.rs`, and everything after
`#[cfg(test)] mod tests {`) are left out. A re-export
(`pub use`) counts as an import. Prints the cycles (strongly connected components of more
than one file) and exits 1 when there is one; with --tree, prints each crate's module tree.
"""
import os
import re
import sys

ROOTS = [d for d in sorted(os.listdir('.')) if os.path.isfile(os.path.join(d, 'Cargo.toml')) and os.path.isdir(os.path.join(d, 'src'))]


def module_files(src):
    """Map module path tuples to files, for one crate's src/."""
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if not name.endswith('.rs'):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel in (['lib'], ['main']):
                mod = ()
            elif rel[-1] == 'mod':
                mod = tuple(rel[:-1])
            else:
                mod = tuple(rel)
            if rel[0] == 'bin':
                continue
            files[mod] = path
    return files


PATH = re.compile(r'\b(crate|super)((?:::(?:super|[a-z_][a-z0-9_]*))+)')
USE_GROUP = re.compile(r'\buse\s+(crate|super)((?:::[a-z_][a-z0-9_]*)*)::\{([^;]*)\}', re.S)


def resolve(files, here, kind, parts):
    base = list(here) if kind == 'super' else []
    if kind == 'super':
        base = base[:-1]
    for p in parts:
        if p == 'super':
            base = base[:-1]
        else:
            base.append(p)
    # longest prefix that is a module file
    while tuple(base) not in files and base:
        base.pop()
    return tuple(base)


def strip(text):
    text = re.sub(r'//[^\n]*', '', text)
    # drop #[cfg(test)] mod tests { ... } bodies crudely: from the marker to the end of file
    m = re.search(r'#\[cfg\(test\)\]\s*mod\s+tests\s*\{', text)
    if m:
        text = text[:m.start()]
    return text


def graph(files):
    edges = {f: set() for f in files.values()}
    for mod, path in files.items():
        if os.path.basename(path) == 'tests.rs' or 'tests' in mod:
            continue
        text = strip(open(path).read())
        # `super` inside a file is relative to the file's module
        for m in USE_GROUP.finditer(text):
            kind, prefix, inner = m.group(1), m.group(2), m.group(3)
            parts = [p for p in prefix.split('::') if p]
            for item in re.split(r',', inner):
                first = item.strip().split('::')[0].strip()
                if re.fullmatch(r'[a-z_][a-z0-9_]*', first or '') and first != 'self':
                    target = resolve(files, mod, kind, parts + [first])
                else:
                    target = resolve(files, mod, kind, parts)
                if files.get(target) and files[target] != path:
                    edges[path].add(files[target])
        # a declared child module named by a relative path (`routes::router()`,
        # `use routes::x`) or re-exported (`pub use child::X`)
        for child in re.findall(r'^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;', text, re.M):
            if re.search(r'(?<![:\w])(?:self::)?' + child + r'::', text):
                target = files.get(mod + (child,))
                if target and target != path:
                    edges[path].add(target)
        for m in PATH.finditer(text):
            kind, rest = m.group(1), m.group(2)
            parts = [p for p in rest.split('::') if p]
            target = resolve(files, mod, kind, parts)
            if files.get(target) and files[target] != path:
                edges[path].add(files[target])
    return edges


def sccs(edges):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    cycles = []
    for root in ROOTS:
        files = module_files(os.path.join(root, 'src'))
        edges = graph(files)
        for comp in sccs(edges):
            cycles.append(sorted(comp))
        if '--tree' in sys.argv:
            print(root + '/')
            for mod in sorted(files):
                if mod and 'tests' not in mod:
                    print('  ' + '  ' * (len(mod) - 1) + mod[-1])
    for comp in cycles:
        print('cycle: ' + ' <-> '.join(comp))
    if cycles:
        sys.exit(1)
    print('no file-level import cycles in ' + ', '.join(ROOTS))


if __name__ == '__main__':
    main()
