"""The whole bad-file corpus and the valid variants through one sandbox stack."""

import pytest

from sandbox.runner import Sandbox
from tests.corpus.make_bad_files import (CANARY_NAME, CORPUS_MAX_COMPRESSED_BYTES, CORPUS_MAX_DECOMPRESSED_BYTES,
                                         build_corpus, build_valid_variants)
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

MIB = 1 << 20
PARAMETERS = {"MaxUploadMiB": CORPUS_MAX_COMPRESSED_BYTES // MIB, "MaxDecompressedMiB": CORPUS_MAX_DECOMPRESSED_BYTES // MIB}
TRAINED_VARIANTS = ("uint8_pixels", "images_3d", "protocol_2", "protocol_5")


def test_corpus_through_sandbox(tmp_path):
    bad = build_corpus(tmp_path / "bad")
    valid = build_valid_variants(tmp_path / "valid")
    trained = {name: valid[name] for name in TRAINED_VARIANTS}

    with Sandbox(ROOT / "template.yaml", parameters=PARAMETERS) as sandbox:
        bucket = sandbox.stack.physical("IngestBucket").name
        # Given every bad file and the valid variants dropped into the ingest bucket
        for name, (path, _code) in bad.items():
            sandbox.upload(path, bucket, f"bad/{name}.pkl.gz")
        for name, path in trained.items():
            sandbox.upload(path, bucket, f"valid/{name}.pkl.gz")

        # When the chain runs until nothing is left
        sandbox.run_until_idle()

        runs = {run["source"]["key"]: run for run in sandbox.ledger_items()}
        summary = sandbox.summary()

    # Then each bad file is a FAILED run with its code, and each valid variant SUCCEEDED
    for name, (_path, code) in bad.items():
        run = runs[f"bad/{name}.pkl.gz"]
        assert (run["status"], run.get("error_code")) == ("FAILED", code), name
    for name in trained:
        assert runs[f"valid/{name}.pkl.gz"]["status"] == "SUCCEEDED", name
    assert summary["tuning_jobs_created"] == len(trained)
    assert summary["endpoints_alive_at_end"] == []
    assert not list(tmp_path.rglob(f"*{CANARY_NAME}*"))
