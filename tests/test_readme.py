"""The README documents every command, setting and resource the archive has."""

from pathlib import Path

import click

from archive.config import Defaults
from archive.resources import RESOURCES

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
OWN_GROUPS = ("users", "audit", "demo", "files", "context", "search", "import")


def test_every_command_is_in_the_readme(app):
    for name in OWN_GROUPS:
        group = app.cli.get_command(None, name)
        assert isinstance(group, click.Group)
        for command in group.commands:
            assert f"`{name} {command}" in README, f"flask --app wsgi {name} {command}"


def test_every_setting_is_in_the_readme():
    settings = [k for k in vars(Defaults) if k.isupper() and not k.startswith("SQLALCHEMY_ENGINE")]
    settings += ["SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "FILES_DIR", "SEARCH_INDEX_DIR"]
    for name in settings:
        assert f"FLASK_{name}" in README, name


def test_every_resource_and_its_filters_are_in_the_readme():
    for resource in RESOURCES.values():
        assert f"`{resource.name}`" in README
        for name in resource.filters:
            assert f"`{name}`" in README, f"{resource.name} filter {name}"


def test_the_two_commands_are_in_the_readme():
    assert "make run" in README and "make test" in README
    assert "make test" in (Path(__file__).parent.parent / ".ci" / "run").read_text()
