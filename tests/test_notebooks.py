"""The notebooks run top to bottom without errors on the demo database.

They are executed with nbclient in a ``python3`` kernel of this virtual environment (the
kernelspec is installed into ``sys.prefix`` when missing: ``python -m ipykernel install
--sys-prefix``), with ``GEOGRID_DATABASE_URL`` pointing at the ``demo_db_url`` fixture.
Outputs are not written back (the committed notebooks carry none).
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

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


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
    env = {
        "GEOGRID_DATABASE_URL": demo_db_url,
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    yield tmp_path_factory.mktemp("notebooks")
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
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(kernel_env)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
