"""README's layout names every tool script and every document that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Layout"):]


def test_readme_layout_lists_every_tool_and_doc():
    block = layout()
    tools = {p.name for p in (ROOT / "tools").glob("*.py") if not p.name.startswith("bench_")}
    tools |= {"ci_setup.sh"}
    docs = {p.name for p in (ROOT / "docs").glob("*.md")}
    named = set(re.findall(r"[\w.]+\.(?:py|sh|md)", block))
    assert sorted(tools - named) == [] and sorted(docs - named) == []
