import subprocess
import sys

import pytest


@pytest.mark.slow
def test_docs_build_strict(repo_root, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=repo_root, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "index.html").exists()


def test_readme_first_section_has_the_two_commands(repo_root):
    readme = (repo_root / "README.md").read_text()
    first = readme.split("\n## ", 2)[1]
    commands = [line.strip() for line in first.splitlines() if line.startswith("    ")]
    assert commands == ["bash scripts/run.sh", "bash scripts/test.sh"]
    ci = (repo_root / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
