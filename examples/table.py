"""Your own table: a messy CSV (ids, dates, text, booleans, a few integer codes,
missing values spelled "", NA and ?, string labels) → ``kerasdnn.train`` → a run
directory that names the classes → a SavedModel that takes raw rows; beside it a
scikit-learn ``LogisticRegression`` with standard imputation and one-hot encoding
on exactly the same split.

Run: KERAS_BACKEND=jax python examples/table.py [--out runs/table] [--epochs 40]

The table is written by :func:`make_table` (no download): customers of a made-up
subscription service, whether they stay, downgrade or leave.  Who leaves depends
on interactions (young customers without autopay, basic-plan customers who call
support often) that a linear model cannot express.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CLASSES = ("stays", "downgrades", "leaves")


def make_table(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """The example's messy customer table (about 5 % of each feature missing)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(42, 13, rows).clip(18, 90).round(0)
    income = rng.lognormal(10.5, 0.6, rows).round(-2)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    region = rng.choice([f"region-{i}" for i in range(8)], rows)
    calls = rng.poisson(1.5, rows).clip(0, 6)
    autopay = rng.random(rows) < 0.6
    tenure = rng.integers(1, 73, rows)
    risk = (1.6 * ((age < 32) ^ autopay) + 1.4 * ((plan == "basic") & (calls >= 3))
            - 0.8 * (tenure > 36) + 0.5 * np.sin(income / 8000) + rng.normal(0, 0.25, rows))
    label = np.where(risk > 1.4, "leaves", np.where(risk > 0.5, "downgrades", "stays"))
    frame = pd.DataFrame({
        "customer_id": np.arange(100001, 100001 + rows), "age": age, "income": income,
        "plan": plan, "region": region, "support_calls": calls, "autopay": autopay,
        "tenure_months": tenure,
        "signup": pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows),
                                                                "D"),
        "churn": label,
    }).astype(object)
    frame["signup"] = frame["signup"].map(lambda day: day.strftime("%Y-%m-%d"))
    for column in ("age", "income", "plan", "region", "support_calls", "autopay",
                   "tenure_months"):
        holes = rng.random(rows) < 0.05
        frame.loc[holes, column] = rng.choice(["", "NA", "?"], int(holes.sum()))
    return frame


def logistic_regression_accuracy(csv: Path, seed: int = 1337) -> float:
    """Test accuracy of scikit-learn's standard pipeline (median imputation + scaling,
    most-frequent imputation + one-hot, LogisticRegression) on the run's own split and
    the columns the run kept."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from pipelines.tables.load import split_table

    parts = split_table(f"csv:{csv}", target="churn", seed=seed)
    kinds = {c["name"]: c["kind"] for c in parts.state["schema"]}
    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    categorical = [name for name, kind in kinds.items() if kind == "categorical"]

    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[numeric].apply(pd.to_numeric, errors="coerce")
        for name in categorical:
            out[name] = frame[name].map(lambda v: np.nan if pd.isna(v) else str(v))
        return out

    model = make_pipeline(
        ColumnTransformer([
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             numeric),
            ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                          OneHotEncoder(handle_unknown="ignore")), categorical),
        ]),
        LogisticRegression(max_iter=2000))
    model.fit(prepared(pd.concat([parts.frames["train"], parts.frames["validation"]])),
              np.concatenate([parts.labels["train"], parts.labels["validation"]]))
    return float(model.score(prepared(parts.frames["test"]), parts.labels["test"]))


def main(out: str = "runs/table", epochs: int = 40, rows: int = 3000) -> dict[str, Any]:
    """Write the table, train on it, export it, compare; returns what it prints."""
    import kerasdnn
    from kerasdnn.serving.table_export import serve_rows

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "customers.csv"
    make_table(rows).to_csv(csv, index=False)
    result = kerasdnn.train(dataset=f"csv:{csv}", target="churn", epochs=epochs,
                            hidden_units=(32, 16), dropout=0.1, optimizer="adam",
                            learning_rate=0.003, batch_size=64, early_stopping=8,
                            out=str(folder / "run"), verbose=0)
    saved_model = kerasdnn.export(result.out_dir, format="tf_saved_model")
    raw_row = {"age": [27.0], "income": [float("nan")], "plan": ["basic"],
               "region": ["region-9"], "support_calls": ["4"], "autopay": ["false"],
               "tenure_months": [5.0]}  # a missing income, a region never seen
    probabilities = serve_rows(saved_model, raw_row)[0]
    numbers = {
        "kerasdnn_accuracy": float(result.report["accuracy"]),
        "logistic_regression_accuracy": logistic_regression_accuracy(csv),
        "raw_row": dict(zip(result.info.class_names, probabilities.round(3).tolist(),
                            strict=True)),
        "run": str(result.out_dir),
    }
    for key, value in numbers.items():
        print(f"{key}: {value}")
    return numbers


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/table")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    main(args.out, args.epochs, args.rows)
