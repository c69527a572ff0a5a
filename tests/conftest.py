"""Shared pytest configuration: the ``gpu`` marker skips cleanly without CUDA."""

import pytest
import torch


def pytest_configure(config):
    # The suite is thousands of tiny ops: one intra-op thread is faster and avoids OpenMP
    # oversubscription (measured: a (2048, 1) @ (1, 4) matmul takes 7 ms with 2 threads on a
    # busy 2-core machine, 9 us with 1; MKL's FFT pays ~14 ms per call to start its pool).
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Run a test on the CPU and, where CUDA exists, on the GPU."""
    return torch.device(request.param)
