#!/bin/sh
# What the official redis image's entrypoint does: `redis-server` for bare options or a .conf
# file, the files in /data handed to the user redis and the server run as redis, and
# --protected-mode no unless a configuration file says otherwise.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
  if ! { [ -f "$2" ] && grep -q '^protected-mode' "$2"; }; then
    set -- "$@" --protected-mode no
  fi
fi
exec "$@"
