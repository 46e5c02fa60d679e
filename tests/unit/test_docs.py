"""The READMEs and docs/: the same commands in both languages, working links, every parameter documented."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_FR = ROOT / "README.fr.md"
DOCS = ROOT / "docs"
TEMPLATE = ROOT / "template.yaml"

COMMAND_PREFIXES = ("make ", "sam ", "python -m")
FENCE = re.compile(r"^```.*?$(.*?)^```", re.MULTILINE | re.DOTALL)
# Inline links and images: [text](target) or ![alt](target), with an optional "title".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


class CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short-form tags (!Ref, !Sub, ...) as None."""


CloudFormationLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def fenced_commands(path: Path) -> set[str]:
    """Return the command lines of the file's fenced code blocks, without trailing comments."""
    commands = set()
    for block in FENCE.findall(path.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command.startswith(COMMAND_PREFIXES):
                commands.add(" ".join(command.split()))
    return commands


def section_titles(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]


def relative_links(markdown: str) -> list[str]:
    """Return the link targets that point into the repository, without their #fragment.

    Brackets inside code blocks and code spans are not links, so they are skipped.
    """
    prose = INLINE_CODE.sub("", FENCE.sub("", markdown))
    targets = []
    for target in LINK.findall(prose):
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def links_of(path: Path) -> list[str]:
    return relative_links(path.read_text(encoding="utf-8"))


def documents() -> list[Path]:
    return sorted(ROOT.glob("README*.md")) + sorted(DOCS.glob("*.md"))


def template() -> dict:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=CloudFormationLoader)


def test_readmes_exist():
    assert README.is_file()
    assert README_FR.is_file()


def test_readme_commands_in_french():
    english = fenced_commands(README)
    assert english, "README.md has no make, sam or python -m command in a fenced block"
    assert english - fenced_commands(README_FR) == set()


def test_french_commands_in_readme():
    french = fenced_commands(README_FR)
    assert french, "README.fr.md has no make, sam or python -m command in a fenced block"
    assert french - fenced_commands(README) == set()


def test_readmes_same_section_count():
    english = section_titles(README)
    french = section_titles(README_FR)
    assert len(english) == len(french), f"README.md: {english}\nREADME.fr.md: {french}"


def test_readmes_link_each_other():
    assert "README.fr.md" in links_of(README)
    assert "README.md" in links_of(README_FR)


def test_docs_pages_exist():
    for name in ("architecture.md", "operations.md", "limits.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(document):
    missing = [target for target in links_of(document) if not (document.parent / target).exists()]
    assert missing == [], f"{document.relative_to(ROOT)} links to missing files: {missing}"


def test_link_finder_sees_links():
    # Given a page with a relative link, an anchor, an external link, and brackets in code
    text = ("[a](docs/x.md#part) [b](#top) [c](https://example.com) ![d](img/e.png) `[0-9](-*[a-z])*`\n"
            "```\n[f](g.md)\n```\n")

    # When the links are extracted from it
    targets = relative_links(text)

    # Then only the repository paths outside code remain
    assert targets == ["docs/x.md", "img/e.png"]


def test_operations_lists_every_parameter():
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    parameters = template()["Parameters"]
    assert parameters, "template.yaml declares no parameters"
    missing = [name for name in parameters if f"`{name}`" not in operations]
    assert missing == [], f"docs/operations.md does not document {missing}"


def test_operations_lists_every_output():
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    missing = [name for name in template()["Outputs"] if f"`{name}`" not in operations]
    assert missing == [], f"docs/operations.md does not document the outputs {missing}"


def test_architecture_names_every_function():
    architecture = (DOCS / "architecture.md").read_text(encoding="utf-8")
    functions = [name for name, resource in template()["Resources"].items()
                 if resource["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 5
    missing = [name for name in functions if name not in architecture]
    assert missing == [], f"docs/architecture.md does not describe {missing}"
