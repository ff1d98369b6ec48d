"""kerasdnn.compare: the summary of run directories (checked against NumPy on
hand-made runs), the rows of missing backends, bad input, and one real
comparison on two backends (tox's cross env)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasdnn.evaluation.reports import comparison
from tests.conftest import REPO_ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _fake_run(run_dir: Path, rng: np.random.Generator, epochs: int) -> None:
    """The files of a finished run that a comparison reads."""
    run_dir.mkdir(parents=True)
    loss = np.sort(rng.uniform(0.1, 2.0, size=epochs))[::-1].tolist()
    lines = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    lines += [f"{e},{0.5 + e / 20},{loss[e]!r},{0.5 + e / 25},{loss[e] + 0.1!r}"
              for e in range(epochs)]
    (run_dir / "history.csv").write_text("\n".join(lines) + "\n")
    (run_dir / "epoch_times.json").write_text(
        json.dumps({"epoch_seconds": rng.uniform(0.1, 1.0, size=epochs).tolist()}))
    prob = rng.dirichlet(np.ones(4), size=30)
    np.savez(run_dir / "predictions.npz", y_true=np.arange(30) % 4, y_prob=prob)
    report = {"accuracy": rng.uniform(), "f1_macro": rng.uniform(),
              "roc_auc": {"ovr_macro": rng.uniform()}}
    (run_dir / "report.json").write_text(json.dumps(report))


def test_summary_matches_the_run_directories(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    _fake_run(tmp_path / "jax", rng, 4)
    _fake_run(tmp_path / "torch", rng, 3)  # stopped early: compared over 3 epochs
    outcomes = {
        "tensorflow": {"status": "failed", "reason": "out of memory | badly"},
        "jax": {"status": "finished", "wall_seconds": 12.5, "peak_rss_mib": 900.0},
        "torch": {"status": "finished", "wall_seconds": 20.0, "peak_rss_mib": 1100.0},
    }
    summary = comparison.summarize(tmp_path, outcomes)

    rows = summary["backends"]
    assert list(rows) == ["tensorflow", "jax", "torch"]
    assert rows["tensorflow"] == outcomes["tensorflow"]
    for backend in ("jax", "torch"):
        run = tmp_path / backend
        report = json.loads((run / "report.json").read_text())
        history = np.loadtxt(run / "history.csv", delimiter=",", skiprows=1, ndmin=2)
        seconds = json.loads((run / "epoch_times.json").read_text())["epoch_seconds"]
        row = rows[backend]
        assert row["accuracy"] == report["accuracy"]
        assert row["roc_auc_macro"] == report["roc_auc"]["ovr_macro"]
        assert row["final_loss"] == history[-1, 2] and row["final_val_loss"] == history[-1, 4]
        assert row["median_epoch_seconds"] == pytest.approx(np.median(seconds))
        assert row["wall_seconds"] == outcomes[backend]["wall_seconds"]
    jax_loss = np.loadtxt(tmp_path / "jax" / "history.csv", delimiter=",", skiprows=1)[:, 2]
    torch_loss = np.loadtxt(tmp_path / "torch" / "history.csv", delimiter=",", skiprows=1)[:, 2]
    loss = summary["differences"]["train_loss"]
    assert loss["pairs"] == {"jax vs torch": pytest.approx(np.abs(jax_loss[:3] - torch_loss).max())}
    prob = {b: np.load(tmp_path / b / "predictions.npz")["y_prob"] for b in ("jax", "torch")}
    assert summary["differences"]["test_probabilities"]["max"] == pytest.approx(
        np.abs(prob["jax"] - prob["torch"]).max())
    json.dumps(summary, allow_nan=False)

    markdown = comparison.comparison_markdown(summary, title="demo")
    assert "| tensorflow | failed: out of memory \\| badly |" in markdown
    assert f"| jax | {rows['jax']['accuracy']:.4f} |" in markdown
    assert "(compare.png)" in markdown
    figure = comparison.comparison_figure(tmp_path, summary)
    assert [len(ax.get_lines()) for ax in figure.axes[:2]] == [4, 4]  # 2 backends x train/val


def test_missing_backends_get_rows_and_nothing_finished_is_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import kerasdnn.training.crossbackend
    from kerasdnn.compare import main

    monkeypatch.setattr(kerasdnn.training.crossbackend, "installed", lambda backend: False)
    out = tmp_path / "cmp"
    status = main(["--dataset", "digits", "--backends", "jax,torch",
                                    "--out", str(out), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m kerasdnn.compare: error: no backend finished (jax: jax is not")
    assert "\n" not in err
    summary = json.loads((out / "compare.json").read_text())
    assert summary["backends"]["torch"]["status"] == "not installed"
    assert "kerasdnn[torch]" in summary["backends"]["torch"]["reason"]
    assert summary["differences"]["test_probabilities"]["max"] is None
    assert (out / "compare.png").read_bytes().startswith(PNG_SIGNATURE)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["train"]["dataset"] == "digits" and settings["train"]["out"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "jax,mxnet"], "--backends: backends must be some of"),
        (["--backends", "jax,jax"], "backends must be distinct"),
        (["--check", "-1"], "--check: must be a number >= 0"),
        (["--resume"], "--resume is not supported"),
        (["--epochs", "0"], "--epochs: must be an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from kerasdnn.compare import main

    with pytest.raises(SystemExit) as caught:
        main([*args, "--out", str(tmp_path / "cmp")])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "cmp").exists()


def test_a_folder_in_use_is_refused(tmp_path: Path) -> None:
    import kerasdnn
    from kerasdnn.core.errors import RunDirectoryError

    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(RunDirectoryError, match="not empty"):
        kerasdnn.compare(dataset="digits", out=str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]


def test_failure_reason_is_the_child_error_line() -> None:
    from kerasdnn.training.crossbackend import _failure_reason

    noise = "I0000 absl::InitializeLog() noise\n"
    assert _failure_reason(2, [noise, "kerasdnn.train: error: unknown dataset 'x'\n"]) == (
        "unknown dataset 'x'")
    assert _failure_reason(1, [noise, "Traceback\n", "RuntimeError: boom\n"]) == (
        "RuntimeError: boom (exit status 1)")
    assert _failure_reason(-9, []) == "killed by signal 9"


@pytest.mark.slow
@pytest.mark.cross_backend
def test_compare_two_backends_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = subprocess.run(
        [sys.executable, "-m", "kerasdnn.compare", "--dataset", "digits", "--epochs", "2",
         "--hidden", "16", "--backends", "jax,torch", "--check", "1e-4", "--out", str(out)],
        cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "[1/2] jax: training" in result.stdout and "[2/2] torch: finished" in result.stdout
    assert {"compare.json", "compare.md", "compare.png"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "compare.json").read_text())
    assert summary["check"] == {"tolerance": 1e-4, "passed": True, "unfinished": {},
                                "max_probability_difference": pytest.approx(
                                    summary["differences"]["test_probabilities"]["max"])}

    prob, loss = {}, {}
    for backend in ("jax", "torch"):
        run = out / backend
        record = json.loads((run / "config.json").read_text())
        assert record["backend"] == backend and record["model"]["hidden_units"] == [16]
        row = summary["backends"][backend]
        assert row["status"] == "finished" and row["peak_rss_mib"] > 100
        assert row["accuracy"] == json.loads((run / "report.json").read_text())["accuracy"]
        times = json.loads((run / "epoch_times.json").read_text())["epoch_seconds"]
        assert len(times) == 2 and row["median_epoch_seconds"] == pytest.approx(np.median(times))
        prob[backend] = np.load(run / "predictions.npz")["y_prob"]
        loss[backend] = np.loadtxt(run / "history.csv", delimiter=",", skiprows=1,
                                   usecols=_column(run, "loss"))
    differences = summary["differences"]
    assert differences["test_probabilities"]["max"] == pytest.approx(
        np.abs(prob["jax"] - prob["torch"]).max(), abs=1e-12)
    assert differences["train_loss"]["max"] == pytest.approx(
        np.abs(loss["jax"] - loss["torch"]).max(), abs=1e-12)
    assert differences["test_probabilities"]["max"] < 1e-4


def _column(run: Path, name: str) -> int:
    return (run / "history.csv").read_text().splitlines()[0].split(",").index(name)


@pytest.mark.parametrize(("tolerance", "status"), [("1e-9", 1), ("2", 0)])
def test_check_fails_when_probabilities_differ_more_than_the_tolerance(
    tolerance: str, status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    import kerasdnn.training.crossbackend
    from kerasdnn.compare import main

    rng = np.random.default_rng(9)

    def fake_backend(backend: str, out: Path, *, quiet: bool) -> dict:
        _fake_run(out / backend, rng, 2)
        return {"status": "finished", "wall_seconds": 1.0, "peak_rss_mib": 1.0}

    monkeypatch.setattr(kerasdnn.training.crossbackend, "_run_backend", fake_backend)
    out = tmp_path / "cmp"
    assert main(["--backends", "jax,torch", "--check", tolerance,
                                  "--out", str(out), "--quiet"]) == status
    summary = json.loads((out / "compare.json").read_text())
    largest = summary["differences"]["test_probabilities"]["max"]
    assert summary["check"] == {"tolerance": float(tolerance), "passed": status == 0,
                                "unfinished": {},
                                "max_probability_difference": largest}
    err = capsys.readouterr().err
    assert (f"check failed: test probabilities differ by {largest:.3g}" in err) == (status == 1)


@pytest.mark.parametrize("missing", ["not installed", "failed"])
def test_check_fails_when_a_requested_backend_did_not_finish(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Two backends agree, the third never finished: --check must not pass (CI would
    go green with a broken backend)."""
    import kerasdnn.training.crossbackend
    from kerasdnn.compare import main

    rng = np.random.default_rng(9)

    def fake_backend(backend: str, out: Path, *, quiet: bool) -> dict:
        if backend == "tensorflow":
            return {"status": missing, "reason": "it broke"}
        _fake_run(out / backend, rng, 2)
        return {"status": "finished", "wall_seconds": 1.0, "peak_rss_mib": 1.0}

    monkeypatch.setattr(kerasdnn.training.crossbackend, "_run_backend", fake_backend)
    out = tmp_path / "cmp"
    assert main(["--backends", "jax,torch,tensorflow", "--check", "2",
                                  "--out", str(out), "--quiet"]) == 1
    summary = json.loads((out / "compare.json").read_text())
    assert summary["check"]["passed"] is False
    assert summary["check"]["unfinished"] == {"tensorflow": f"{missing}: it broke"}
    err = capsys.readouterr().err.strip()
    assert err == ("python -m kerasdnn.compare: check failed: tensorflow did not finish "
                   f"({missing}: it broke)")
    markdown = (out / "compare.md").read_text()
    assert (f"- check: test probabilities within 2: FAILED (tensorflow did not finish: "
            f"{missing}: it broke)") in markdown
