"""The demo that ``python -m sk_stackae`` runs."""

import re

from sk_stackae.__main__ import few_labels, main


def test_the_demo_prints_both_tables(capsys):
    main(["--labels", "30"])
    output = capsys.readouterr().out
    names = [
        "StackedAutoencoder",
        "PCA",
        "StackedAutoencoderClassifier",
        "LabelSpreading(kNN)",
        "MLPClassifier",
        "PCA-16 + LogisticRegression",
    ]
    assert all(name in output for name in names)
    accuracies = [float(a) for a in re.findall(r"\s(0\.\d{3}|1\.000)\s", output)]
    # Two reducers, four few-label methods; all well above the 0.1 of chance.
    assert len(accuracies) == 6 and min(accuracies) > 0.3


def test_few_labels_trains_each_method_on_its_rows():
    ((n_labels, scores),) = few_labels([20], random_state=1)
    assert n_labels == 20
    assert set(scores) == {
        "StackedAutoencoderClassifier",
        "LabelSpreading(kNN)",
        "MLPClassifier",
        "PCA-16 + LogisticRegression",
    }
    for accuracy, seconds in scores.values():
        assert 0.1 < accuracy <= 1.0 and seconds > 0
