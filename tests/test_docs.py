"""The documentation stays true: the design page lists every module, and nothing in the
repository points outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]


def test_design_lists_every_module() -> None:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    table = text.split("<!-- modules:", 1)[1].split("<!-- /modules -->", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_.]+)` \|", table, flags=re.M))
    src = ROOT / "src" / "lrtrain"
    modules = set()
    for path in src.rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts))
    assert listed == modules


def test_design_lists_every_package_and_the_root_holds_only_them() -> None:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    table = text.split("## Packages and what they may import", 1)[1].split("<!-- modules:", 1)[0]
    listed = set(re.findall(r"`([a-z]+)`", "".join(re.findall(r"^\| (.*?) \|", table, re.M))))
    src = ROOT / "src" / "lrtrain"
    packages = {p.parent.name for p in src.glob("*/__init__.py")}
    assert packages <= listed and "api" in listed
    root = {p.stem for p in src.glob("*.py")}
    assert root == {"__init__", "__main__", "_version", "api", "errors"}
    for package in packages:  # each says what it may import
        assert "May import" in (src / package / "__init__.py").read_text(encoding="utf-8")


def test_nothing_points_outside_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"\.\./shared|DESIGN\.md|DESIGN §")
    found = []
    text_files = (".py", ".md", ".yaml", ".toml", ".txt", ".cfg", ".sh")
    for name in files:
        path = ROOT / name
        if path.suffix not in text_files or not path.is_file():
            continue
        if name == "tests/test_docs.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if outside.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert found == []


def test_the_readmes_python_example_runs(tmp_path, monkeypatch) -> None:
    """README.md's "From Python and notebooks" block, as written, in an empty directory."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### From Python and notebooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("progress=True", "progress=False"), "README.md", "exec"), {})
    assert any((tmp_path / "runs").iterdir())


def test_the_notebook_pages_example_runs(tmp_path: Path, monkeypatch) -> None:
    """docs/notebook.md's example, as written, from the repository's root (its CSV path), its
    run directory under tmp_path; the numbers its comments quote."""
    text = (ROOT / "docs" / "notebook.md").read_text(encoding="utf-8")
    code = text.split("```python", 1)[1].split("```", 1)[0]
    code = code.replace('"output.plots=[]"]', f'"output.plots=[]", "output.root={tmp_path}"]')
    monkeypatch.chdir(ROOT)
    scope: dict[str, Any] = {}
    exec(compile(code, "docs/notebook.md", "exec"), scope)
    run = scope["run"]
    assert (run.summary["status"], run.summary["steps"]) == ("converged", 226)
    assert run.summary["data"]["features"][:3] == ["age", "sex", "bmi"]
    assert run.summary["optimality_gap"]["relative"] < 1e-13


@pytest.mark.slow  # two bundled runs, ~11 s
def test_the_published_results_in_the_readme_are_what_the_bundled_configs_give(tmp_path) -> None:
    """README's "Beyond the quadratic" and docs/networks.md, rerun: every rate of
    `edge-of-stability` at the edge with the medians quoted, and `fit -c catapult`'s rise and
    fall of λ_max."""
    from lrtrain import api
    from lrtrain.config.schema import load_config

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sweep = api.sweep_lr(load_config("edge-of-stability"), out=tmp_path / "eos", draw=False)
    assert sweep.summary is not None
    rows = sweep.summary["results"]
    assert [row["verdict"] for row in rows] == ["edge of stability"] * 3
    medians = [float(re.search(r"median (\d\.\d+)×", row["rule"]).group(1)) for row in rows]
    assert medians == [1.003, 1.003, 1.000]
    for row in rows:
        assert f"{row['lr']:g}   edge of stability" in readme
        assert f"{row['final_loss']:.5g}" in readme
    fit = api.fit(load_config("catapult"), out=tmp_path / "catapult", draw=False)
    verdict, sharp = fit.summary["verdict"], fit.summary["sharpness"]
    assert verdict["observed"] == "catapult" and "rose to 178× its start" in verdict["rule"]
    assert round(sharp["initial"]) == 228 and round(sharp["final"]) == 86
    assert "rises 178-fold, λ_max falls from 228 to 86" in readme
