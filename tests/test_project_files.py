"""The project's own files agree with each other: dependencies, README commands, CI, template docs."""

from __future__ import annotations

import re
import tomllib

import yaml

from analysis import config

ROOT = config.PROJECT_ROOT


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return _norm(m[1]), m[2].replace(" ", "")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = dict(_split(d) for d in env["dependencies"]
                 if isinstance(d, str) and d != "pip" and not re.match(r"^python[<>=]", d))
    assert conda == wanted
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_block == ['-e ".[test]"']
    assert env["channels"] == ["conda-forge"]
    py = next(d for d in env["dependencies"] if isinstance(d, str) and re.match(r"^python[<>=]", d))
    assert py == f"python{project['requires-python']}"


def test_lock_file_pins_every_dependency_within_its_bounds():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_norm(name)] = version.strip()
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        r = Requirement(req)
        assert _norm(r.name) in pins, r.name
        assert r.specifier.contains(pins[_norm(r.name)]), (r, pins[_norm(r.name)])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make reports" in readme and "make test" in readme
    assert readme.index("make reports") < readme.index("make lab")
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_makefile_help_lists_the_main_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("help", "reports", "test", "lab"):
        assert re.search(rf"^{target}:.*## ", text, re.M), target
