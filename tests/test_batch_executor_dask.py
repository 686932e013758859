"""``Client.batch`` on a Dask ``distributed`` cluster: two worker processes against FakeServer (loopback).

Needs the ``dask`` extra (``pip install 'modelprov[dask]'``); skipped with a reason without it.
"""

import pytest
from test_batch_executor import check, echo_reply, http_client, prompts

from modelprov.batch import run_batch
from modelprov.testing import FakeServer

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed (pip install 'modelprov[dask]')")


@pytest.fixture
def fake():
    with FakeServer() as server:
        server.set_default(echo_reply())
        yield server


def test_dask_local_cluster_with_two_worker_processes(fake):
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=2, dashboard_address=None, worker_dashboard_address=None) as cluster:
        with distributed.Client(cluster) as dask_client:
            progress = []
            results = run_batch(http_client(fake), prompts(30), 2, lambda d, t: progress.append(d), True, executor=dask_client.get_executor(), chunk_size=5)
    check(results, 30)
    assert progress[-1] == 30 and len(progress) == 6
