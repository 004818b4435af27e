"""A stand-in for `tensorflow_model_server`: the same flags, REST and gRPC contract, in Python.

`python -m standin --model_name=NAME --model_base_path=DIR --rest_api_port=8501` behaves like the
official binary from the outside. Nothing here imports the project's packages (`serving/`, `ml/`).
"""
