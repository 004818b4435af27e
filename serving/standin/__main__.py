"""`python -m serving.standin`: the `tensorflow_model_server` equivalent."""

from serving.standin.server import main

raise SystemExit(main())
