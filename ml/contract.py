"""What training, the images and the deploy agree on, defined once and free of TensorFlow so that every part
(the deploy host's CLI included) can import it: the export's layout and file names, its signature, the image
labels the deploy reads, and the stand-in base images `make bases` builds.

TF Serving's own names (the signature key `serving_default`, `assets.extra/`, the warmup file) are its
public contract; the rest is this project's.
"""

from __future__ import annotations

from pathlib import PurePosixPath

# The export: <root>/<model name>/<model version>/ holding the SavedModel and these.
SIGNATURE = "serving_default"  # TF Serving's default signature key
INPUT = "image"  # the signature's one input tensor
EXTRA_DIR = "assets.extra"  # TF Serving reads warmup requests from here; it serves nothing else in it
WARMUP_FILE = "tf_serving_warmup_requests"
SMOKE_FILE = "smoke_set.json"  # golden inputs and outputs the deploy's parity check replays
CARD_FILE = "model_card.json"
SMOKE_SET_PATH = PurePosixPath(EXTRA_DIR, SMOKE_FILE)  # relative to a version directory
CARD_PATH = PurePosixPath(EXTRA_DIR, CARD_FILE)

# Beside the export, in the artifacts directory: the card again, and what training measured.
TRAINING_HISTORY_FILE = "history.json"  # per-epoch loss and accuracy, plotted in the gate report
MEASUREMENTS_FILE = "measurements.json"  # latency of the exported model, merged into the card

# Labels of the serving image that the deploy and the registry commands read.
MODEL_VERSION_LABEL = "ml.model.version"  # the integer TF Serving version inside
SEMVER_LABEL = "ml.model.semver"
CARD_LABEL = "ml.model.card"  # the whole model card, JSON
REVISION_LABEL = "org.opencontainers.image.revision"  # the commit an image was built from

# Stand-ins `make bases` builds where the official images cannot be pulled.
SERVING_STANDIN = "local/tensorflow-serving:standin"
TRAINING_STANDIN = "local/python:3.11"
PROXY_STANDIN = "local/nginx:standin"
