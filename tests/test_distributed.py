"""One fit across processes with torch.distributed: two CPU processes and gloo."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import leave_process_group
from sklearn.datasets import load_digits

from sk_stackae import StackedAutoencoder

WORLD_SIZE = 2


def _fit_on_shard(rank, init_file, params, out_dir):
    """What each process runs, as under torchrun: join the group, fit on its own shard."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        X = _data()
        shard = X[rank::WORLD_SIZE]
        model = StackedAutoencoder(**params, distributed=True).fit(shard)
        fitted_codes = model.transform(X)
        model.partial_fit(shard)
        np.savez(
            out_dir / f"rank{rank}.npz",
            codes=fitted_codes,
            codes_after_partial_fit=model.transform(X),
            loss_curve=np.array(model.loss_curve_),
            pretrain_loss=np.array(model.pretrain_loss_curves_[0]),
            n_iter=model.n_iter_,
        )
    except BaseException:
        leave_process_group(succeeded=False)
        raise
    leave_process_group(succeeded=True)


def _data():
    X, _ = load_digits(return_X_y=True)
    return (X[:240] / 16.0).astype(np.float32)


def fit_in_processes(params, tmp_path):
    mp.spawn(_fit_on_shard, args=(tmp_path / "init", params, tmp_path), nprocs=WORLD_SIZE, join=True)
    return [dict(np.load(tmp_path / f"rank{rank}.npz")) for rank in range(WORLD_SIZE)]


def test_full_batch_training_across_processes_matches_one_process(tmp_path):
    # Each process holds half of the rows and takes its whole shard as its
    # batch: the averaged gradient is the gradient of the whole set, which
    # one process with one batch of all the rows takes too.
    X = _data()
    params = {"hidden_layer_sizes": (16, 4), "pretrain_epochs": 3, "finetune_epochs": 5, "random_state": 0}
    ranks = fit_in_processes({**params, "batch_size": len(X) // WORLD_SIZE}, tmp_path)
    single = StackedAutoencoder(**params, batch_size=len(X)).fit(X)
    # The float tolerance: one process fitting the same rows in another
    # order moves the codes by float rounding, which Adam amplifies where a
    # gradient is near zero (its first steps have the size of the learning
    # rate, whatever the gradient's).
    reordered = StackedAutoencoder(**params, batch_size=len(X)).fit(np.concatenate([X[0::2], X[1::2]]))
    rounding = np.abs(reordered.transform(X) - single.transform(X)).max()
    assert rounding < 5e-3
    for result in ranks:
        assert np.abs(result["codes"] - single.transform(X)).max() <= max(10 * rounding, 1e-5)
        np.testing.assert_allclose(result["loss_curve"][:5], single.loss_curve_, rtol=1e-5)
        np.testing.assert_allclose(result["pretrain_loss"], single.pretrain_loss_curves_[0], rtol=1e-5)


def test_minibatch_training_leaves_every_process_with_the_same_network(tmp_path):
    params = {
        "hidden_layer_sizes": (16, 4),
        "pretrain_epochs": 2,
        "finetune_epochs": 4,
        "batch_size": 16,
        "dropout": 0.1,
        "noise": "gaussian",
        # no seed: each process draws its own, and rank 0's weights win
        "random_state": None,
    }
    first, second = fit_in_processes(params, tmp_path)
    np.testing.assert_array_equal(first["codes"], second["codes"])
    np.testing.assert_array_equal(first["codes_after_partial_fit"], second["codes_after_partial_fit"])
    # Both report the loss over all the rows, so their curves agree too.
    np.testing.assert_array_equal(first["loss_curve"], second["loss_curve"])
    assert first["n_iter"] == 5
    assert first["loss_curve"][3] < first["loss_curve"][0]


def test_distributed_without_a_process_group_is_a_clear_error():
    assert not dist.is_initialized()
    model = StackedAutoencoder((4,), distributed=True)
    with pytest.raises(ValueError, match=r"process group, but none is initialised: launch with torchrun"):
        model.fit(_data())
    assert not hasattr(model, "n_features_in_")
