"""Run the corpus from tests.corpus.make_bad_files through load_dataset and check_classes."""

import gzip
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest

from learner_pipeline.dataset import LoadLimits, check_classes, load_dataset
from learner_pipeline.errors import InvalidDatasetError
from tests.corpus.make_bad_files import (
    CANARY_NAME,
    CORPUS_MAX_COMPRESSED_BYTES,
    CORPUS_MAX_DECOMPRESSED_BYTES,
    CORPUS_POSITIVE_LABEL,
    build_canary_pickle,
    build_corpus,
    build_valid_variants,
    expected_splits,
)

LIMITS = LoadLimits(CORPUS_MAX_COMPRESSED_BYTES, CORPUS_MAX_DECOMPRESSED_BYTES, deadline=None)

# Every code a file alone can cause. DATASET_TIMEOUT depends on the deadline, not on the file.
FILE_CODES = {
    "DATASET_NOT_GZIP",
    "DATASET_CORRUPT",
    "DATASET_TOO_LARGE",
    "DATASET_NOT_PICKLE",
    "DATASET_FORBIDDEN_OBJECT",
    "DATASET_BAD_STRUCTURE",
    "DATASET_COUNT_MISMATCH",
    "DATASET_BAD_SHAPE",
    "DATASET_DIM_MISMATCH",
    "DATASET_NOT_NUMERIC",
    "DATASET_NOT_FINITE",
    "DATASET_BAD_LABELS",
    "DATASET_EMPTY_SPLIT",
    "DATASET_NO_POSITIVE",
    "DATASET_NO_NEGATIVE",
}

# Facts each message must state: the offending value or location.
MESSAGE_FACTS = {
    "forbidden_os_system": ["posix.system"],
    "forbidden_eval_protocol5": ["builtins.eval"],
    "forbidden_pandas_dataframe": ["pandas.core.frame.DataFrame"],
    "not_finite_nan": ["validation", "row 17, column 5"],
    "not_finite_inf": ["train", "row 3, column 0"],
    "not_finite_float32_overflow": ["test", "row 9, column 400"],
    "labels_negative": ["train", "index 5"],
    "labels_fractional": ["test", "2.5 at index 3"],
    "count_mismatch": ["train", "200 images but 199 labels"],
    "dim_mismatch": ["validation", "783"],
    "empty_test_protocol2": ["test split has no rows"],
    "not_gzip_raw_pickle": ["uncompressed pickle"],
    "train_no_positive": ["train split", "positive label 0"],
    "validation_no_negative": ["validation split"],
}


VALID_VARIANTS = [
    "big_endian", "float64_pixels", "fortran_order", "images_3d", "int64_pixels",
    "labels_column", "labels_float", "labels_int32", "labels_numpy_scalars", "lists_not_tuples",
    "numpy1_paths_protocol2", "numpy1_paths_protocol5", "protocol_0", "protocol_1", "protocol_2",
    "protocol_3", "protocol_4", "protocol_5", "python2_latin1", "uint8_pixels",
]

# The corpus is built once at import, because its case names parametrize the tests.
# TemporaryDirectory removes the files when the test process exits.
_CORPUS_DIR = tempfile.TemporaryDirectory(prefix="dataset-corpus-")
CORPUS = build_corpus(Path(_CORPUS_DIR.name))


@pytest.fixture(scope="module")
def corpus_dir():
    return Path(_CORPUS_DIR.name)


@pytest.fixture(scope="module")
def corpus():
    return CORPUS


@pytest.fixture(scope="module")
def outcomes(corpus):
    """Load every corpus file once and map each case to the error it raised (None if none)."""
    errors = {}
    for name, (path, _) in corpus.items():
        try:
            with path.open("rb") as stream:
                dataset = load_dataset(stream, LIMITS)
            check_classes(dataset, CORPUS_POSITIVE_LABEL)
            errors[name] = None
        except InvalidDatasetError as error:
            errors[name] = error
    return errors


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    return build_valid_variants(tmp_path_factory.mktemp("valid"))


def test_corpus_covers_codes(corpus):
    assert {code for _, code in corpus.values()} == FILE_CODES


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_corpus_case_code(case, corpus, outcomes):
    error = outcomes[case]

    assert error is not None, f"{case} loaded without an error"
    assert error.code == corpus[case][1], error.message


@pytest.mark.parametrize("case", sorted(MESSAGE_FACTS))
def test_corpus_message_facts(case, outcomes):
    message = outcomes[case].message

    for fact in MESSAGE_FACTS[case]:
        assert fact in message


def test_corpus_canary_absent(corpus_dir, outcomes):
    assert not (corpus_dir / CANARY_NAME).exists()


def test_canary_created_by_plain_pickle(tmp_path):
    # Given the os.system case, loaded the unsafe way in a separate directory
    path = build_canary_pickle(tmp_path)

    # When plain pickle reads it, the file runs its command
    with gzip.open(path, "rb") as stream:
        pickle.load(stream, encoding="latin1")

    # Then the canary exists, so the canary test above can fail
    assert (tmp_path / CANARY_NAME).exists()


@pytest.mark.parametrize("name", VALID_VARIANTS)
def test_valid_variant_loads(name, valid_files):
    expected = expected_splits()

    with valid_files[name].open("rb") as stream:
        dataset = load_dataset(stream, LIMITS)
    check_classes(dataset, CORPUS_POSITIVE_LABEL)

    assert dataset.feature_dim == 784
    assert dataset.image_shape == (28, 28)
    for split in dataset.splits:
        images, labels = expected[split.name]
        assert split.images.dtype == np.float32
        assert split.labels.dtype == np.int64
        assert split.images.shape == images.shape
        assert split.images.flags.c_contiguous
        np.testing.assert_allclose(split.images, images, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(split.labels, labels)


def test_valid_variants_listed(valid_files):
    assert sorted(valid_files) == VALID_VARIANTS


def test_valid_uint8_note(valid_files):
    with valid_files["uint8_pixels"].open("rb") as stream:
        dataset = load_dataset(stream, LIMITS)

    assert "integer pixels in [0, 255] were scaled to [0, 1]" in dataset.notes
