"""The notebooks run top to bottom without errors on the demo database.

They are executed with nbclient in a ``python3`` kernel of this virtual environment (the
kernelspec is installed into ``sys.prefix`` when missing: ``python -m ipykernel install
--sys-prefix``), with ``GEOGRID_DATABASE_URL`` pointing at the ``demo_db_url`` fixture.
Outputs are not written back (the committed notebooks carry none). They run in the
``notebooks/`` folder, as a user would, with ``GEOGRID_NOTEBOOK_OUT`` pointing at a scratch
folder: nothing may appear in the working tree (the default scratch folder,
``notebooks/out/``, is git-ignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel_env(demo_db_url, tmp_path_factory):
    specs = KernelSpecManager().find_kernel_specs()
    spec = Path(specs.get("python3", "")) / "kernel.json"
    if "python3" not in specs or sys.prefix not in str(spec):
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
            check=True,
            capture_output=True,
        )
    out = tmp_path_factory.mktemp("notebook_out")
    env = {
        "GEOGRID_NOTEBOOK_OUT": str(out),
        "GEOGRID_DATABASE_URL": demo_db_url,
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    yield out
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_notebooks_exist_without_outputs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_getting_started.ipynb",
        "02_hotspots_and_trends.ipynb",
        "03_workload_and_staffing.ipynb",
    ]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_env):
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    # no litter: nothing new next to the notebooks (outputs go to GEOGRID_NOTEBOOK_OUT)
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before
    assert not (NOTEBOOK_DIR / "yulin_leader_map.html").exists()
    assert not (NOTEBOOK_DIR / "leader_map.html").exists()
    # maps are shown with Leaflet inlined (no CDN), figures drawn without missing glyphs
    shown = [
        o.get("data", {}).get("text/html", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    ]
    maps_shown = [h for h in shown if "srcdoc=" in h]
    assert all("cdn.jsdelivr.net" not in h for h in maps_shown)
    warnings = [
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o.get("name") == "stderr"
    ]
    assert not [w for w in warnings if "missing from font" in w], warnings
    if path.name == "01_getting_started.ipynb":
        saved = kernel_env / "yulin_leader_map.html"
        assert saved.exists() and "cdn.jsdelivr.net" not in saved.read_text(encoding="utf-8")
        assert maps_shown
