"""One intra-op thread for the profiler tests.

On a shared 2-core machine torch's default of 2 OpenMP threads spin-waits
against other processes and runs small convs 10-20x slower than 1 thread.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
