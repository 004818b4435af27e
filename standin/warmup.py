"""Replays `assets.extra/tf_serving_warmup_requests` (TFRecord of PredictionLog) while a version loads."""

from __future__ import annotations

import logging
import time

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from standin.servable import Servable
from standin.status import Code, ServingError, invalid_argument

_LOG = logging.getLogger(__name__)
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_RECORDS = 1000


def replay(servable: Servable, iterations: int) -> None:
    """Runs every recorded predict request `iterations` times; any failure fails the version's load."""
    path = servable.path / WARMUP_FILE
    if not path.exists():
        _LOG.info("No warmup data file found at %s", path)
        return
    _LOG.info("Starting to read warmup data for model at %s with model-warmup-options ", path)
    start = time.perf_counter()
    count = 0
    try:
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except DecodeError:
                raise invalid_argument(f"Failed to parse warmup record: {record!r} from {path}") from None
            kind = log.WhichOneof("log_type")
            if kind != "predict_log":
                raise ServingError(
                    Code.UNIMPLEMENTED,
                    f"Unsupported log_type for warmup: {kind} (this server replays predict only)",
                )
            for _ in range(iterations):
                servable.predict_proto(log.predict_log.request)
            count += 1
            if count > MAX_RECORDS:
                raise invalid_argument(
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
                )
    except tf.errors.OpError as error:
        raise ServingError(Code(error.error_code), error.message) from None
    _LOG.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
        "Elapsed time (microseconds): %d.",
        path,
        count,
        int((time.perf_counter() - start) * 1e6),
    )
