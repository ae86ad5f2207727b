"""The shape of the package: no import cycle between subpackages, no branching on the kind of input."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "astroreg"


def import_graph() -> nx.DiGraph:
    """Subpackage -> subpackage edges for every import in ``src/astroreg``, at module level or in a function."""
    graph = nx.DiGraph()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = rel.parts
        if len(parts) < 3:  # top-level modules (astroreg/__init__, _lazy, _threads) belong to no subpackage
            continue
        src = parts[1]
        graph.add_node(src)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                dst = name.split(".")[1] if name.startswith("astroreg.") else None
                if dst and dst != src and (SRC / dst).is_dir():
                    graph.add_edge(src, dst)
    return graph


def test_no_import_cycle_between_subpackages():
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, f"subpackages that import each other: {cycles}"


def test_the_base_packages_import_no_other_astroreg_package():
    graph = import_graph()
    assert not list(graph.successors("data")), sorted(graph.successors("data"))
    assert set(graph.successors("models")) <= {"data"}, sorted(graph.successors("models"))  # atomic model files
    # the recipe schema validates wavelength grids with the spectra module's parser, nothing more
    assert set(graph.successors("config")) <= {"preprocess"}, sorted(graph.successors("config"))


@pytest.mark.parametrize("pattern", [r"modality *(==|!=)", r"input_kind *(==|!=)"])
def test_no_file_outside_the_plug_ins_asks_which_kind_an_input_is(pattern):
    hits = [f"{path.relative_to(SRC)}:{i}: {line.strip()}"
            for path in SRC.rglob("*.py") if path.parent.name != "modalities"
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if re.search(pattern, line)]
    assert not hits, "\n".join(hits)
