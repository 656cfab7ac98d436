"""Project documents that the code and docs cite exist in the repository: a
``docs/<name>.md`` path resolves, and nothing cites design documents kept
outside it (ARCHITECTURE.md, STYLE.md). Venue documentation names (rest-api.md
and the like) are the venues' own files and are not checked."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITING = [*ROOT.glob("engine/**/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("docs/*.md"),
          ROOT / "README.md", ROOT / "config.yaml", ROOT / "run.py"]
DOC_PATH = re.compile(r"\bdocs/[\w/.-]+?\.md\b")
OUTSIDE = re.compile(r"\b(?:ARCHITECTURE|STYLE)\.md\b")


def test_every_cited_docs_path_exists():
    missing = sorted({(str(f.relative_to(ROOT)), ref) for f in CITING
                      for ref in DOC_PATH.findall(f.read_text(errors="replace"))
                      if not (ROOT / ref).is_file()})
    assert missing == []


def test_nothing_cites_design_documents_kept_outside_the_repository():
    cited = sorted(str(f.relative_to(ROOT)) for f in CITING
                   if OUTSIDE.search(f.read_text(errors="replace")))
    assert cited == []
    assert (ROOT / "docs" / "architecture.md").is_file()
