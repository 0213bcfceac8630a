"""docs/operations.md: its settings table is the one generated from `Settings`."""

from __future__ import annotations

from pathlib import Path

from gateway.http import settings_doc
from gateway.http.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def test_the_settings_table_is_generated_from_the_settings_class() -> None:
    text = DOC.read_text()
    assert settings_doc.section() in text, (
        "docs/operations.md's settings table is stale: run "
        "`python -m gateway.http.settings_doc --write`"
    )


def test_the_table_has_every_setting_with_its_default() -> None:
    table = settings_doc.markdown_table()
    for name in Settings.model_fields:
        assert f"| `TIDEGATE_{name.upper()}` | " in table
    assert "| `TIDEGATE_PORT` | `8080` |" in table
    assert "| `TIDEGATE_BOOTSTRAP_KEY` | unset |" in table  # secrets never shown


def test_writing_replaces_only_the_table(tmp_path: Path) -> None:
    doc = tmp_path / "operations.md"
    doc.write_text(f"before\n{settings_doc.BEGIN}\nold\n{settings_doc.END}\nafter\n")
    assert settings_doc.main(["--write", str(doc)]) == 0
    assert doc.read_text() == f"before\n{settings_doc.section()}\nafter\n"
