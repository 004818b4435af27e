"""`python -m standin`: the `tensorflow_model_server` equivalent."""

from standin.server import main

raise SystemExit(main())
