#!/bin/sh
# The binary's name in the official image, for users who override the entrypoint.
exec python -m standin "$@"
