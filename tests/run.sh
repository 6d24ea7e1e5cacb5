#!/usr/bin/env bash
# The test command (Readme.md and .ci/run both call exactly this):
#
#   bash tests/run.sh [pytest arguments]
#
# On a fresh Debian/Ubuntu machine as root it installs what the tests need, starts what
# is missing (Docker engine), builds the base image where no registry is reachable, then
# runs the whole suite: unit tests first (seconds), then end-to-end tests against the
# real Docker stack, a real browser, nginx + certbot + pebble and a real sshd.
# It stops what it started, by PID; a Docker engine that was already running is reused.
#
# The end-to-end tests run beside the README's appliance (the one already running here,
# or one started the README's way for the run and removed after) on ports of their own,
# and fail if they changed it (tests/e2e/readme_appliance.py).
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD
STEP=start
say() { STEP=$1; shift; printf '\n=== [%s] %s\n' "$STEP" "$*"; }

started_engine=""
cleanup() {
  local rc=$?
  if [ -n "$started_engine" ] && kill -0 "$started_engine" 2>/dev/null; then
    say cleanup "stopping the Docker engine this run started (pid $started_engine)"
    kill "$started_engine"
    for _ in $(seq 60); do kill -0 "$started_engine" 2>/dev/null || break; sleep 1; done
  fi
  [ $rc -eq 0 ] || printf 'tests/run.sh: failed at step %s (exit %d)\n' "$STEP" "$rc" >&2
  exit $rc
}
trap cleanup EXIT

say packages "system packages the tests use"
want=(mmdebstrap chromium openssh-server pebble openssl curl git iproute2 iptables)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

say python "test environment in .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt

# The appliance's own installer provides nginx, certbot, Docker and compose: the tests
# exercise the same steps an instructor's node runs.
say engine "nginx, certbot, Docker engine and base image (setup-node.sh)"
engine_was_running=0
docker info >/dev/null 2>&1 && engine_was_running=1
bash setup-node.sh --only packages,engine,base-image
if [ $engine_was_running = 0 ]; then
  # Started either by our fallback (its pidfile) or by the distribution's init script.
  started_engine=$(cat /run/workshop-dockerd.pid 2>/dev/null || cat /var/run/docker.pid)
fi

say lint "ruff"
.venv/bin/ruff check .

say pytest "unit tests, then end-to-end"
# Unit tests first (seconds), then end to end; each e2e package has a stack of its own.
.venv/bin/python -m pytest tests/unit tests/e2e "$@"
