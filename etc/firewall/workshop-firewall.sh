#!/usr/bin/env bash
# workshop-firewall.sh: the node's walls around participants (iptables, IPv4 and IPv6).
#
#   workshop-firewall.sh apply [--inbound PORTS]   set the rules (again); idempotent
#   workshop-firewall.sh remove                    take them out
#   workshop-firewall.sh status                    one line: what is in force
#
# Outbound, for participants' uids (their servers, kernels and terminals, in the hub's
# container or in containers of their own: all share the node's network):
#   - no connection to the cloud's metadata address (it serves the droplet's user data),
#     nor to link-local and private networks (the provider's VPC, other droplets);
#   - everything else (pip install, data downloads, DNS wherever the resolver is) is allowed.
# Inbound, with --inbound PORTS (a node on the internet): only loopback, replies to our
# own connections, ICMP and the given TCP ports (SSH, HTTP, HTTPS) answer; anything a
# participant listens on stays unreachable from outside.
#
# The rules live in chains of their own (WORKSHOP_FW_CHAIN, default WORKSHOP-IN/-OUT),
# jumped to from INPUT/OUTPUT, so Docker's and the provider's rules are left alone.
# WORKSHOP_METADATA_ADDR (169.254.169.254) and WORKSHOP_PARTICIPANT_UIDS (2000-59999, as
# services/workshop/accounts.py gives them) can be changed for tests.
set -euo pipefail

CHAIN=${WORKSHOP_FW_CHAIN:-WORKSHOP}
METADATA=${WORKSHOP_METADATA_ADDR:-169.254.169.254}
UIDS=${WORKSHOP_PARTICIPANT_UIDS:-2000-59999}
PRIVATE4="10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 169.254.0.0/16"
PRIVATE6="fc00::/7 fe80::/10"

die() { printf 'workshop-firewall: %s\n' "$*" >&2; exit 2; }

chain() {  # tool name parent: an empty chain of ours, jumped to once from parent
  local tool=$1 name=$2 parent=$3
  "$tool" -w -N "$name" 2>/dev/null || "$tool" -w -F "$name"
  "$tool" -w -C "$parent" -j "$name" 2>/dev/null || "$tool" -w -I "$parent" 1 -j "$name"
}

unchain() {  # tool name parent
  local tool=$1 name=$2 parent=$3
  while "$tool" -w -D "$parent" -j "$name" 2>/dev/null; do :; done
  "$tool" -w -F "$name" 2>/dev/null || true
  "$tool" -w -X "$name" 2>/dev/null || true
}

apply_outbound() {
  local tool=$1; shift
  chain "$tool" "$CHAIN-OUT" OUTPUT
  # Name lookups may go to a resolver in the provider's private network (AWS, some VPCs).
  "$tool" -w -A "$CHAIN-OUT" -p udp --dport 53 -j RETURN
  "$tool" -w -A "$CHAIN-OUT" -p tcp --dport 53 -j RETURN
  local net
  for net in "$@"; do
    "$tool" -w -A "$CHAIN-OUT" -d "$net" -m owner --uid-owner "$UIDS" -j REJECT
  done
}

apply_inbound() {
  local tool=$1 ports=$2 icmp=$3
  chain "$tool" "$CHAIN-IN" INPUT
  "$tool" -w -A "$CHAIN-IN" -i lo -j RETURN
  "$tool" -w -A "$CHAIN-IN" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  "$tool" -w -A "$CHAIN-IN" -p "$icmp" -j RETURN
  "$tool" -w -A "$CHAIN-IN" -p tcp -m multiport --dports "$ports" -j RETURN
  "$tool" -w -A "$CHAIN-IN" -j DROP
}

have_ip6() { command -v ip6tables >/dev/null && ip6tables -w -S OUTPUT >/dev/null 2>&1; }

cmd_apply() {
  local inbound=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --inbound) inbound=${2:?--inbound needs ports}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -z "$inbound" ] || [[ $inbound =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--inbound $inbound: expected ports like 22,80,443"
  command -v iptables >/dev/null || die "iptables is not installed"
  # shellcheck disable=SC2086  # word lists on purpose
  apply_outbound iptables "$METADATA" $PRIVATE4
  # shellcheck disable=SC2086
  have_ip6 && apply_outbound ip6tables $PRIVATE6
  if [ -n "$inbound" ]; then
    apply_inbound iptables "$inbound" icmp
    have_ip6 && apply_inbound ip6tables "$inbound" ipv6-icmp
  else
    unchain iptables "$CHAIN-IN" INPUT
    have_ip6 && unchain ip6tables "$CHAIN-IN" INPUT
  fi
  return 0
}

cmd_remove() {
  local tool
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null || continue
    unchain "$tool" "$CHAIN-OUT" OUTPUT
    unchain "$tool" "$CHAIN-IN" INPUT
  done
}

cmd_status() {
  local out="participants' outbound walls: off" in="inbound: open"
  if iptables -w -C OUTPUT -j "$CHAIN-OUT" 2>/dev/null; then
    out="participants (uids $UIDS) cannot reach $METADATA or private networks"
  fi
  if iptables -w -C INPUT -j "$CHAIN-IN" 2>/dev/null; then
    in="inbound only on TCP $(iptables -w -S "$CHAIN-IN" | sed -n 's/.*--dports \([0-9,]*\).*/\1/p')"
  fi
  printf '%s; %s\n' "$out" "$in"
}

case "${1:-}" in
  apply) shift; cmd_apply "$@" ;;
  remove) cmd_remove ;;
  status) cmd_status ;;
  *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
