"""The report of a real sandbox run, rendered by headless Chromium, and a run on a serverless endpoint."""

import json
import re

import boto3
import numpy as np
import pytest
from scipy import ndimage

from learner_pipeline.report import GALLERY_LIMIT
from sandbox.cli import DEFAULT_TEMPLATE as TEMPLATE
from sandbox.runner import Sandbox
from tests.unit.test_report import CHROMIUM, black_mask, heatmap_mask, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Gallery pictures are 84 x 84 CSS pixels inside a 1 px border of #d0d7de, so each border is an 86 x 86 ring.
TILE_BORDER = np.array([208, 215, 222]) / 255
TILE_SIZE = 86
DIGIT_IMAGE = re.compile(r"<img class='digit'[^>]*>")


def _run_dir(results):
    run_dirs = [path for path in results.iterdir() if path.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    return run_dirs[0]


def tile_boxes(pixels: np.ndarray) -> list[tuple[slice, slice]]:
    """Return the bounding boxes of the gallery's tile borders: connected rings of the border colour."""
    border = np.all(np.abs(pixels - TILE_BORDER) < 0.01, axis=2)
    labels, _count = ndimage.label(border)
    return [box for box in ndimage.find_objects(labels)
            if (box[0].stop - box[0].start, box[1].stop - box[1].start) == (TILE_SIZE, TILE_SIZE)]


@pytest.fixture(scope="module")
def sandbox_run(mnist_sample, run_cli, tmp_path_factory):
    results = tmp_path_factory.mktemp("report-results")
    run = run_cli("run", mnist_sample, "--results", results)
    assert run.exit_status == 0, run.output
    return _run_dir(results)


@pytest.fixture(scope="module")
def screenshots(sandbox_run, tmp_path_factory):
    """Render the run's report.html, and the same page without its gallery pictures as a baseline."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = (sandbox_run / "report.html").read_text(encoding="utf-8")
    bare_page, removed = DIGIT_IMAGE.subn("", page)
    assert removed > 0, "report.html has no gallery picture to remove"

    directory = tmp_path_factory.mktemp("report-screenshots")
    return screenshot(page, directory, "full"), screenshot(bare_page, directory, "bare")


def test_sandbox_report_shows_heatmap(screenshots):
    full, _bare = screenshots

    # The largest confusion matrix cell is drawn in the darkest "Blues" colour, as a solid block.
    heatmap_rows = np.flatnonzero(heatmap_mask(full).any(axis=1))
    assert heatmap_mask(full).sum() > 3_000
    assert heatmap_rows.size > 50


def test_sandbox_report_shows_gallery(sandbox_run, screenshots):
    full, bare = screenshots
    metrics = json.loads((sandbox_run / "metrics.json").read_text())["metrics"]
    errors = metrics["false_positives"] + metrics["false_negatives"]

    # Given the rows the bare page draws, the gallery is what the full page adds below them
    gallery_top = np.flatnonzero(black_mask(bare).any(axis=1)).max() + 1
    gallery_strokes = black_mask(full)[gallery_top:]
    tiles = tile_boxes(full[gallery_top:])

    # Then one framed picture per misclassified row appears, up to the gallery's limit
    assert errors > 0
    assert len(tiles) == min(errors, GALLERY_LIMIT)

    # And every picture contains digit strokes
    for rows, columns in tiles:
        assert gallery_strokes[rows, columns].sum() > 50, (rows, columns)

    # And the gallery sits below the heatmap and above the window's bottom edge
    assert gallery_top > np.flatnonzero(heatmap_mask(full).any(axis=1)).max()
    assert max(rows.stop for rows, _ in tiles) + gallery_top < full.shape[0] - 100


# --- serverless endpoint --------------------------------------------------------------------


def test_serverless_run_succeeds(mnist_sample, run_cli, tmp_path):
    # Given a stack whose endpoints are serverless with 3 GiB of memory
    run = run_cli("run", mnist_sample, "--results", tmp_path,
                  "--parameter", "EndpointType=serverless", "--parameter", "ServerlessMemoryMiB=3072")

    # Then the run succeeds
    assert run.exit_status == 0, run.output
    assert json.loads((_run_dir(tmp_path) / "status.json").read_text())["status"] == "SUCCEEDED"


def test_serverless_endpoint_config(mnist_sample):
    # Given a serverless stack that keeps its endpoint, so its config can be described after the run
    parameters = {"EndpointType": "serverless", "ServerlessMemoryMiB": "3072", "ServerlessMaxConcurrency": "4",
                  "KeepEndpoint": "true"}

    # When the sample runs to its end
    with Sandbox(TEMPLATE, parameters=parameters) as sandbox:
        sandbox.upload(mnist_sample, sandbox.stack.physical("IngestBucket").name, mnist_sample.name)
        sandbox.run_until_idle()
        sagemaker = boto3.client("sagemaker", region_name=sandbox.stack.context.region)
        endpoints = sagemaker.list_endpoints()["Endpoints"]
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoints[0]["EndpointName"])
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])

    # Then the endpoint is in service on one serverless variant that has no instances
    assert len(endpoints) == 1
    assert endpoint["EndpointStatus"] == "InService"
    variants = config["ProductionVariants"]
    assert len(variants) == 1
    assert variants[0]["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 4}
    assert "InstanceType" not in variants[0]
    assert "InitialInstanceCount" not in variants[0]
