#!/bin/sh
# The official haproxy image's entrypoint contract: options alone run haproxy with them; a command line that
# starts with haproxy gets -W -db: master-worker mode (the master survives worker restarts and reloads on
# SIGUSR2) and no daemonizing, so the master stays the container's PID 1 and takes `docker stop`'s SIGUSR1.
# Any other command runs as given. `exec`: no shell sits between Docker's signals and the process.
set -e

case "${1-}" in
  -*) set -- haproxy "$@" ;;
esac

if [ "${1-}" = haproxy ]; then
  shift
  set -- haproxy -W -db "$@"
fi

exec "$@"
