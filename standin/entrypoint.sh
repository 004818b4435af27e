#!/bin/bash
# Same command line as the official image's /usr/bin/tf_serving_entrypoint.sh; extra `docker run` arguments
# are appended, so a repeated flag overrides the default (the last one wins). `exec` lets the server
# receive `docker stop`'s SIGTERM directly.
exec tensorflow_model_server --port=8500 --rest_api_port=8501 \
  --model_name="${MODEL_NAME}" --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" \
  "$@"
