"""The proxy's nginx.conf, rendered whole so that nothing in the image's defaults decides routing, and read
back: which colour a config routes to. Pure text, no Docker: `serving.proxy` owns the container,
`serving.traffic` loads a rendered config into it.
"""

from __future__ import annotations

import re

from serving.errors import InfrastructureError

REST_PORT = 8501  # inside the containers; TF Serving's defaults
GRPC_PORT = 8500
CONF_DIR = "/etc/nginx"
LIVE_CONF = f"{CONF_DIR}/nginx.conf"
NEXT_CONF = f"{CONF_DIR}/nginx.conf.next"
LOADED_CONF = f"{CONF_DIR}/nginx.conf.loaded"  # copy of the live file as of the last completed reload
_ACTIVE_MARKER = re.compile(r"^# active-colour: (\S+)$", re.MULTILINE)
NO_ACTIVE = "none"
COLOUR_HEADER = "X-Serving-Colour"  # which config answered a request: for operators and tests


def colour_container_name(model_name: str, colour: str) -> str:
    return f"{model_name}-{colour}"


def render(model_name: str, active: str | None) -> str:
    """A complete nginx.conf routing both protocols to `active`, or answering 503 when nothing is."""
    if active is None:
        rest_location = (
            'default_type application/json;\n            return 503 \'{"error": "no release deployed"}\';'
        )
        grpc_location = (
            'add_header grpc-status 14 always;\n            add_header grpc-message "no release deployed" always;\n'
            "            return 204;"
        )
        upstreams = ""
    else:
        host = colour_container_name(model_name, active)
        rest_location = (
            "proxy_pass http://rest_active;\n            proxy_http_version 1.1;\n"
            '            proxy_set_header Connection "";\n            proxy_read_timeout 60s;'
        )
        grpc_location = "grpc_pass grpc://grpc_active;\n            grpc_read_timeout 60s;"
        upstreams = f"""
    upstream rest_active {{
        server {host}:{REST_PORT};
        keepalive 32;
    }}
    upstream grpc_active {{
        server {host}:{GRPC_PORT};
        keepalive 32;
    }}
"""
    return f"""# Rendered by serving.nginx_config; replaced only by a config that passed `nginx -t`.
# active-colour: {active or NO_ACTIVE}
worker_processes auto;
pid /var/run/nginx.pid;
error_log /dev/stderr warn;
# Bounds how long old workers keep long-lived gRPC streams open after a reload.
worker_shutdown_timeout 30s;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_max_body_size 64m;
{upstreams}
    server {{
        listen {REST_PORT};
        # Lets a deploy see which config answered: reload only signals nginx, new workers start later.
        add_header {COLOUR_HEADER} {active or NO_ACTIVE} always;
        location / {{
            {rest_location}
        }}
    }}

    server {{
        listen {GRPC_PORT} http2;
        location / {{
            {grpc_location}
        }}
    }}
}}
"""


def active_from_config(text: str) -> str | None:
    """The colour a rendered config routes to. A config without the marker is not one we rendered, or a read
    that lost its content: never taken for "nothing is active", which would remove the running release."""
    match = _ACTIVE_MARKER.search(text)
    if not match:
        raise InfrastructureError(
            "the proxy's live config has no active-colour line: not rendered by serving.nginx_config"
        )
    return None if match.group(1) == NO_ACTIVE else match.group(1)
