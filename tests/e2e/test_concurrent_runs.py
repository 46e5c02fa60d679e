"""Three uploads dropped at once end as three independent SUCCEEDED runs."""

import pytest

from sandbox.runner import Sandbox
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_three_uploads_three_runs(mnist_sample):
    with Sandbox(ROOT / "template.yaml") as sandbox:
        bucket = sandbox.stack.physical("IngestBucket").name
        # Given three uploads before any event is delivered
        for index in range(3):
            sandbox.upload(mnist_sample, bucket, f"team-{index}/mnist.pkl.gz")

        # When the sandbox delivers every event until nothing is left
        sandbox.run_until_idle()

        # Then there are three runs, each SUCCEEDED with its own SageMaker resources
        runs = sandbox.ledger_items()
        summary = sandbox.summary()
    assert len(runs) == 3
    assert sorted(run["status"] for run in runs) == ["SUCCEEDED"] * 3
    assert len({run["tuning_job_name"] for run in runs}) == 3
    assert summary["tuning_jobs_created"] == 3
    assert summary["endpoints_created"] == 3
    assert summary["endpoints_alive_at_end"] == []
