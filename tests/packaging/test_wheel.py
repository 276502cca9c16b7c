"""A real wheel, installed in a fresh venv, works from an empty directory (issue 19).

The wheel is built from this checkout (hatchling, no editable install) and
installed with ``--no-deps`` into a new venv; the venv sees the test venv's
dependencies through one ``.pth`` line (so nothing is downloaded), but not the
checkout: ``import rag`` must come from the installed wheel. From an empty
temporary directory it runs ``hoprag ingest``, ``hoprag ask --json`` and
``hoprag ui``, whose page answers a question in a real Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from servers import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
NOTES = "# Field notes\n\nThe launch code is BLUE-42. It is kept in the vault under the lighthouse.\n"
QUESTION = "What is the launch code?"

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        cwd=tmp)
    wheel = next(dist.glob("hoprag-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("rag/webui/__main__.py", "rag/prompts/answer.txt", "rag/sample_docs/README.md",
                   "rag/sample_docs/docs/configuration.md", "rag/sample_docs/sample/hoprag-guide.pdf",
                   "ingest/pipeline.py"):
        assert needed in names, f"{needed} is not in the wheel"
    assert not any(n.startswith(("tests/", "app.py")) for n in names)

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=tmp)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp)
                .stdout.strip())
    # The dependencies of the test venv, without its editable hoprag (a path line runs no .pth inside it).
    (site / "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp / "empty-work-dir"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOPRAG_", "OPENAI_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(XDG_DATA_HOME=str(tmp / "share"), XDG_CONFIG_HOME=str(tmp / "config"), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", HOPRAG_MAX_NEW_TOKENS="16",
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return SimpleNamespace(venv=venv, python=python, hoprag=venv / "bin" / "hoprag", site=site, work=work, env=env,
                           tmp=tmp)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    probe = ("import json, sys, rag, rag.sample, rag.prompts; "
             "print(json.dumps({'rag': rag.__file__, 'path': sys.path, 'sample': [str(p) for p in "
             "rag.sample.sample_paths()], 'prompts': str(rag.prompts.prompts_dir())}))")
    seen = json.loads(run([str(installed.python), "-c", probe], cwd=installed.work, env=installed.env).stdout)
    assert Path(seen["rag"]).is_relative_to(installed.site), seen["rag"]
    assert not any(p and Path(p).resolve() == ROOT for p in seen["path"]), "the checkout is on sys.path"
    assert Path(seen["prompts"]).is_relative_to(installed.site)
    sample = [Path(p) for p in seen["sample"]]
    assert all(p.is_relative_to(installed.site) for p in sample)
    assert {p.name for p in sample} >= {"README.md", "configuration.md", "hoprag-guide.pdf"}
    version = run([str(installed.hoprag), "--version"], cwd=installed.work, env=installed.env).stdout
    assert version.startswith("hoprag ")


def test_ingest_then_ask_from_an_empty_directory(installed):
    notes = installed.tmp / "field-notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    added = run([str(installed.hoprag), "ingest", str(notes), "--json"], cwd=installed.work, env=installed.env)
    assert json.loads(added.stdout)["files"][0]["status"] == "added"
    asked = run([str(installed.hoprag), "ask", QUESTION, "--json"], cwd=installed.work, env=installed.env)
    answer = json.loads(asked.stdout)
    assert answer["passages"][0]["source"].endswith("field-notes.md")
    assert answer["answer"].strip() and not answer["error"], answer
    assert list(installed.work.iterdir()) == [], "hoprag wrote into the working directory"
    assert (installed.tmp / "share" / "hoprag" / "index").is_dir()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM or not os.path.exists(CHROMEDRIVER),
                    reason="Debian's chromium and chromium-driver are not installed (bash scripts/ensure_test_deps.sh)")
def test_hoprag_ui_answers_in_chromium(installed, tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "ui"))
    from test_ui_browser import ARTIFACTS, ask, chromium, finished_answer, wait_for  # the suite's Chromium helpers

    if not (installed.tmp / "share" / "hoprag" / "index").is_dir():  # run alone: ingest first
        test_ingest_then_ask_from_an_empty_directory(installed)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving([str(installed.hoprag), "ui", "--port", str(port)], ready_url=f"{url}/_stcore/health",
                 ready=lambda body: body == b"ok", log_path=tmp_path / "ui.log", timeout_s=120, what="hoprag ui",
                 cwd=installed.work, env=installed.env):
        driver = chromium(tmp_path / "profile")
        try:
            driver.get(url)
            wait_for(driver, lambda d: "1 document in" in d.find_element("tag name", "body").text,
                     what="the knowledge base the CLI built")
            ask(driver, QUESTION)
            answer = finished_answer(driver, QUESTION)
            assert "field-notes.md" in answer.text, answer.text
            assert answer.text.split("Sources")[0].strip(), "the assistant message has no answer text"
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "wheel-ui-answer.png"))
        finally:
            driver.quit()
