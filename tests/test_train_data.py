"""Training data sources: the prefetching synthetic source gives exactly the batches of the plain one."""

import torch

from sora3r.train.data import synthetic_source


def test_prefetching_workers_give_the_same_batches():
    plain = synthetic_source(9, 16, 24, "cpu")
    prefetching = synthetic_source(9, 16, 24, "cpu", workers=2)
    for step in (0, 1, 5, 2):  # in order, a jump forwards (resume), a jump backwards
        expected, got = plain(step, 2), prefetching(step, 2)
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), (step, key)
    assert not torch.equal(plain(0, 2)["rgb"], plain(1, 2)["rgb"])
