"""kerasdnn.core.rundir: the one owner of the run-directory layout (every file name
written in that module only), what a finished run holds, the predictions file
checked against NumPy's own reader, and the folders it names."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from kerasdnn.core import rundir
from tests.conftest import REPO_ROOT

# The layout as the README states it, and the settings.json of a comparison
# (written out here, independent of the module's constants).
README_FILES = {
    "model.keras", "config.json", "history.csv", "report.json", "report.md", "roc.png",
    "confusion_matrix.png", "history.png", "pr.png", "calibration.png", "misclassified.png",
    "epoch_times.json", "predictions.npz", "backup", "tensorboard", "saved_model",
    "model.onnx", "compare.json", "compare.md", "compare.png", "settings.json",
    "preprocessing.json",
}
PACKAGES = ("kerasdnn", "pipelines", "tuning", "benchmarks")


def _layout_names() -> set[str]:
    names = {value for name, value in vars(rundir).items()
             if name.isupper() and isinstance(value, str)}
    return names | set(rundir.EXPORT_NAMES.values())


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module, docstrings and dict keys (setting names
    such as ``"tensorboard"``) left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)):
            skipped.add(id(body[0].value))
        if isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skipped]


def test_the_layout_is_the_readme_s() -> None:
    assert _layout_names() == README_FILES


def test_a_run_directory_file_name_is_written_in_rundir_only() -> None:
    names = _layout_names()
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if path == REPO_ROOT / "kerasdnn" / "core" / "rundir.py":
                continue
            found += [f"{path.relative_to(REPO_ROOT)}:{line}: {value!r}"
                      for line, value in _string_literals(path) if value in names]
    assert found == []


def test_finished_means_a_model_and_no_checkpoint(tmp_path: Path) -> None:
    assert not rundir.is_finished(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"x")
    (tmp_path / "backup").mkdir()
    assert not rundir.is_finished(tmp_path)  # killed before the checkpoint was removed
    (tmp_path / "backup").rmdir()
    assert rundir.is_finished(tmp_path)


def test_predictions_round_trip_through_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_true, y_prob = rng.integers(0, 3, 7), rng.dirichlet(np.ones(3), 7)
    rundir.write_predictions(tmp_path, y_true, y_prob)
    with np.load(tmp_path / "predictions.npz") as saved:  # NumPy's own reader
        assert sorted(saved.files) == ["y_prob", "y_true"]
        np.testing.assert_array_equal(saved["y_true"], y_true)
        np.testing.assert_array_equal(saved["y_prob"], y_prob)
    got_true, got_prob = rundir.read_predictions(tmp_path)
    np.testing.assert_array_equal(got_true, y_true)
    np.testing.assert_array_equal(got_prob, y_prob)
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.npz"]  # no temporary left


def test_an_evaluation_folder_is_never_reused(tmp_path: Path) -> None:
    first = rundir.evaluation_dir(tmp_path, "torch")
    first.mkdir()
    second = rundir.evaluation_dir(tmp_path, "torch")
    assert second != first and second.name.startswith(first.name + "-")
    assert first.name.startswith("eval-torch-")


def test_a_comparison_s_folders() -> None:
    assert rundir.backend_run_dir(Path("cmp"), "jax") == Path("cmp/jax")
    assert rundir.backend_stderr_file(Path("cmp"), "jax") == Path("cmp/jax.stderr.txt")


@pytest.mark.slow
def test_a_finished_run_holds_every_finished_file(tmp_path: Path) -> None:
    import kerasdnn

    result = kerasdnn.train(dataset="digits", epochs=1, hidden_units=(8,), verbose=0,
                            out=str(tmp_path / "run"))
    names = {path.name for path in result.out_dir.iterdir()}
    assert set(rundir.FINISHED_FILES) <= names
    assert names <= set(README_FILES), names - set(README_FILES)
    assert rundir.is_finished(result.out_dir)
