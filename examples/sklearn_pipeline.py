"""kerasdnn.DNNClassifier inside scikit-learn: GridSearchCV over hidden_units in a
Pipeline with StandardScaler, then cross_val_score, on the bundled digits.

Run: KERAS_BACKEND=jax python examples/sklearn_pipeline.py
"""

from __future__ import annotations

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kerasdnn import DNNClassifier


def main(epochs: int = 10, cv: int = 3) -> dict[str, float]:
    """Search, refit, score; returns the numbers it prints."""
    X, y = load_digits(return_X_y=True)
    names = [f"digit {label}" for label in range(10)]
    y = [names[label] for label in y]  # any label type works
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    pipeline = make_pipeline(StandardScaler(),
                             DNNClassifier(epochs=epochs, batch_size=32, random_state=0))
    search = GridSearchCV(pipeline, {"dnnclassifier__hidden_units": [(32,), (64, 32)]}, cv=cv)
    search.fit(X_train, y_train)
    scores = cross_val_score(search.best_estimator_, X, y, cv=cv)
    result = {"best_cv_accuracy": search.best_score_,
              "test_accuracy": search.score(X_test, y_test),
              "cross_val_mean": scores.mean()}
    print(f"best hidden_units: {search.best_params_['dnnclassifier__hidden_units']}")
    for name, value in result.items():
        print(f"{name}: {value:.3f}")
    return result


if __name__ == "__main__":
    main()
