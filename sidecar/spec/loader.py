"""Loading a spec root: find the files, classify them, parse each, merge one graph.

The loader reads every file once. The content hash of the spec tree is computed from the same
bytes the parsers see, so the hash always identifies exactly what was compiled.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.spec.graph import SpecGraph
from sidecar.spec.manifest import parse_manifest
from sidecar.spec.markdown import parse_markdown
from sidecar.spec.model import Problem, SpecFragment
from sidecar.spec.sds_yaml import parse_sds_yaml
from sidecar.spec.sea import parse_sea

#: Bumped whenever what the loader or compiler produces from the same files changes, so the
#: content hash of an unchanged tree moves with it and no replica serves a stale compilation.
SPEC_FORMAT_REVISION = "1"

Parser = Callable[[str, str], SpecFragment | None]


def classify(relpath: str) -> Parser | None:
    """The parser for a file, from its name; None for files the loader does not read."""
    name = relpath.rsplit("/", 1)[-1].lower()
    if name.endswith(".sea"):
        return parse_sea
    if name.endswith((".manifest.json", ".manifest.yaml", ".manifest.yml")):
        return parse_manifest
    if name.endswith((".sds.yaml", ".sds.yml")):
        return parse_sds_yaml
    if name.endswith(".md"):
        return parse_markdown
    return None


@dataclass(slots=True)
class LoadedSpec:
    """A parsed spec tree: its graph, the files read, the files ignored and its content hash."""

    root: Path
    graph: SpecGraph
    content_hash: str
    files: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        """Every problem found so far, sorted by file and line."""
        return sorted(self.graph.problems)


def discover(root: Path) -> list[str]:
    """All regular files below ``root`` as sorted POSIX relative paths (hidden entries skipped)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        out.extend(prefix + f for f in filenames if not f.startswith("."))
    return sorted(out)


def load_spec_tree(root: Path) -> LoadedSpec:
    """Read and parse every spec file below ``root`` into one graph (not yet validated)."""
    root = Path(root)
    graph = SpecGraph()
    digest = hashlib.sha256(f"spec-format:{SPEC_FORMAT_REVISION}\n".encode())
    loaded = LoadedSpec(root=root, graph=graph, content_hash="")
    if not root.is_dir():
        graph.problems.append(Problem(str(root), 0, "spec root is not a directory"))
        loaded.content_hash = digest.hexdigest()
        return loaded
    for rel in discover(root):
        parser = classify(rel)
        if parser is None:
            loaded.ignored.append(rel)
            continue
        data = (root / rel).read_bytes()
        text, problem = _decode(rel, data)
        if problem is not None:
            graph.problems.append(problem)
        fragment = parser(rel, text)
        if fragment is None:  # markdown that is not a spec document
            loaded.ignored.append(rel)
            continue
        loaded.files.append(rel)
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
        graph.add_fragment(fragment)
    graph.finish()
    loaded.content_hash = digest.hexdigest()
    return loaded


def _decode(rel: str, data: bytes) -> tuple[str, Problem | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        text = data.decode("utf-8", errors="replace")
        return text, Problem(
            rel,
            line,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); undecodable bytes were replaced",
        )
