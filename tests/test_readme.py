"""The README's configuration table names every setting the gateway reads."""

from pathlib import Path

from gateway.http.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    missing = [
        f"TIDEGATE_{name.upper()}"
        for name in Settings.model_fields
        if f"`TIDEGATE_{name.upper()}`" not in text
    ]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_block
    assert "make test" in first_block
