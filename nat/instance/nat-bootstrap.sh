#!/bin/bash
# nat-bootstrap.sh: turn an Amazon Linux 2023 / Amazon Linux 2 instance into a NAT instance.
#
#   nat-bootstrap.sh install       first boot (from user data): install the boot unit, apply, and
#                                  start the agent if user data installed one (metrics, HA)
#   nat-bootstrap.sh apply         idempotent: forwarding, MASQUERADE, FORWARD policy, MSS clamp,
#                                  conntrack tuning; the boot unit runs this at every boot
#   nat-bootstrap.sh print-tuning  the tuning values apply would use on this machine
#
# Settings come from /etc/nat-instance/nat.env and tuning.env (written by user data):
#   NAT_VPC_CIDRS (required)       the VPC's IPv4 CIDRs, space-separated (primary and secondary):
#                                  only new flows from them to outside them are forwarded and
#                                  masqueraded
#   NAT_MSS=1460                   clamp forwarded TCP SYN MSS to this; 0 disables
#   NAT_CONNTRACK_MAX, NAT_TCP_ESTABLISHED_TIMEOUT=7440, NAT_TCP_TIME_WAIT_TIMEOUT=30
#   NAT_PUBLIC_ADDRESSES=1         the interface's private addresses, each with an Elastic IP:
#                                  with more than 1, new connections take them in turn (SNAT),
#                                  so one destination can take ~64,512 connections per address
# Any failed step stops the script with a non-zero exit and a "FAILED" line in the log and on
# the console: a NAT half configured (say, MASQUERADE on an empty interface name) is worse
# than one that visibly failed.
set -Eeuo pipefail
umask 022

NAT_ETC=${NAT_ETC:-/etc/nat-instance}
NAT_LOG=${NAT_LOG:-/var/log/nat-instance.log}
NAT_CONSOLE=${NAT_CONSOLE:-/dev/console}
NAT_STATE_DIR=${NAT_STATE_DIR:-/var/lib/nat-instance}
NAT_PROC_MEMINFO=${NAT_PROC_MEMINFO:-/proc/meminfo}
NAT_SCRIPT_PATH=/usr/local/sbin/nat-bootstrap.sh
NAT_UNIT=/etc/systemd/system/nat-instance.service
# with monitoring or high availability
NAT_AGENT=/usr/local/sbin/nat-agent
NAT_AGENT_UNIT=/etc/systemd/system/nat-agent.service
# the guide's file name
SYSCTL_FILE=/etc/sysctl.d/custom-ip-forwarding.conf

for settings_file in "$NAT_ETC/nat.env" "$NAT_ETC/tuning.env"; do
    # shellcheck disable=SC1090
    if [ -r "$settings_file" ]; then . "$settings_file"; fi
done
NAT_MSS=${NAT_MSS:-1460}
NAT_PUBLIC_ADDRESSES=${NAT_PUBLIC_ADDRESSES:-1}
# seconds for the secondary addresses to show up
NAT_ADDRESS_WAIT=${NAT_ADDRESS_WAIT:-120}
# seconds to wait for a default route at boot
NAT_ROUTE_WAIT=${NAT_ROUTE_WAIT:-60}
NAT_INSTALL_ATTEMPTS=${NAT_INSTALL_ATTEMPTS:-10}
NAT_RETRY_DELAY=${NAT_RETRY_DELAY:-6}

log() {
    local line="nat-instance: $*"
    echo "$line" >&2
    mkdir -p "$(dirname "$NAT_LOG")" && echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $line" >>"$NAT_LOG"
    if [ -w "$NAT_CONSOLE" ]; then echo "$line" >"$NAT_CONSOLE" 2>/dev/null || true; fi
}
die() { log "FAILED: $*"; exit 1; }
on_error() { log "FAILED: exit $1 at line $2: $3"; }
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

# --- tuning: sized from memory unless overridden -------------------------------------------
memory_mib() { awk '/^MemTotal:/ {print int($2 / 1024); exit}' "$NAT_PROC_MEMINFO"; }

compute_tuning() {
    # The kernel's default is about 1 entry per 64 KiB of RAM (4096 on a 0.5 GiB t4g.nano):
    # far below NAT Gateway's 55,000 per destination. 256 entries per MiB costs ~8% of RAM
    # (an entry is ~320 bytes) and gives 131,072 on 0.5 GiB.
    [ -r "$NAT_PROC_MEMINFO" ] || die "cannot read MemTotal from $NAT_PROC_MEMINFO"
    local mib; mib=$(memory_mib)
    if [ -z "$mib" ] || [ "$mib" -le 0 ]; then die "cannot read MemTotal from $NAT_PROC_MEMINFO"; fi
    local sized=$((mib * 256)) least=65536
    # With several public addresses, room for each one's 64,512 ports to one destination.
    if [[ $NAT_PUBLIC_ADDRESSES =~ ^[1-9][0-9]?$ ]] && [ "$NAT_PUBLIC_ADDRESSES" -gt 1 ]; then
        least=$(((NAT_PUBLIC_ADDRESSES + 1) * 65536))
    fi
    [ "$sized" -ge "$least" ] || sized=$least
    [ "$sized" -le 2097152 ] || sized=2097152
    CONNTRACK_MAX=${NAT_CONNTRACK_MAX:-$sized}
    # One bucket per entry, the kernel's own ratio (chains of ~2): 8 bytes each, 1 MiB here.
    CONNTRACK_BUCKETS=$(( CONNTRACK_MAX > 1024 ? CONNTRACK_MAX : 1024 ))
    # RFC 5382: at least 2h4m
    TCP_ESTABLISHED_TIMEOUT=${NAT_TCP_ESTABLISHED_TIMEOUT:-7440}
    TCP_TIME_WAIT_TIMEOUT=${NAT_TCP_TIME_WAIT_TIMEOUT:-30}
}

print_tuning() {
    compute_tuning
    echo "memory_mib=$(memory_mib)"
    echo "nf_conntrack_max=$CONNTRACK_MAX"
    echo "nf_conntrack_buckets=$CONNTRACK_BUCKETS"
    echo "nf_conntrack_tcp_timeout_established=$TCP_ESTABLISHED_TIMEOUT"
    echo "nf_conntrack_tcp_timeout_time_wait=$TCP_TIME_WAIT_TIMEOUT"
}

# Set a kernel value where this kernel allows it (conntrack size is read-only outside the
# initial network namespace, and absent before the module loads): say so, never fail on it.
set_kernel_value() {
    local key=$1 value=$2 path=/proc/sys/${1//.//}
    if [ -e "$path" ] && echo "$value" 2>/dev/null >"$path"; then
        log "set $key=$value"
    else
        log "kept $key=$(cat "$path" 2>/dev/null || echo absent) (not settable here)"
    fi
}

# --- packages: prefer what the AMI has ---------------------------------------------------------
ensure_iptables() {
    if command -v iptables >/dev/null 2>&1; then return 0; fi
    local installer package
    # AL2023, then AL2
    if command -v dnf >/dev/null 2>&1; then installer=dnf; package=iptables-nft
    elif command -v yum >/dev/null 2>&1; then installer=yum; package=iptables
    else die "iptables is missing and neither dnf nor yum is available to install it"; fi
    # cloud-init may still hold the package lock; a 0.5 GiB instance can't afford weak deps.
    local attempt
    for attempt in $(seq 1 "$NAT_INSTALL_ATTEMPTS"); do
        if "$installer" -y -q --setopt=install_weak_deps=False install "$package"; then
            log "installed $package with $installer (attempt $attempt)"
            command -v iptables >/dev/null 2>&1 || die "$package installed but no iptables"
            return 0
        fi
        log "$installer install $package failed (attempt $attempt/$NAT_INSTALL_ATTEMPTS), retrying"
        sleep "$NAT_RETRY_DELAY"
    done
    die "could not install $package after $NAT_INSTALL_ATTEMPTS attempts"
}

# --- the primary interface, from the default route (never assume eth0) ----------------------
primary_interface() {
    local waited=0 interface=""
    while :; do
        interface=$(ip -o -4 route show to default 2>/dev/null |
            awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
        if [ -n "$interface" ] || [ "$waited" -ge "$NAT_ROUTE_WAIT" ]; then break; fi
        sleep 1; waited=$((waited + 1))
    done
    [ -n "$interface" ] || die "no IPv4 default route after ${NAT_ROUTE_WAIT}s: cannot tell \
the primary interface (check the public subnet's route table and DHCP)"
    echo "$interface"
}

# Create chain $2 in table $1 if missing, and empty it: re-running rebuilds the same rules.
fresh_chain() { iptables -t "$1" -N "$2" 2>/dev/null || true; iptables -t "$1" -F "$2"; }
jump_once() { iptables -t "$1" -C "$2" -j "$3" 2>/dev/null || iptables -t "$1" -A "$2" -j "$3"; }

# The VPC's CIDRs, each checked: a typo must stop the script, not become a rule.
vpc_cidrs() {
    [ -n "${NAT_VPC_CIDRS:-}" ] || die "NAT_VPC_CIDRS is not set in $NAT_ETC/nat.env"
    local cidr octet='(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])' listed
    read -r -a listed <<<"$NAT_VPC_CIDRS"
    for cidr in "${listed[@]}"; do
        [[ $cidr =~ ^$octet\.$octet\.$octet\.$octet/([0-9]|[12][0-9]|3[0-2])$ ]] ||
            die "NAT_VPC_CIDRS: '$cidr' is not an IPv4 CIDR"
    done
    echo "${listed[*]}"
}

# With NAT_PUBLIC_ADDRESSES > 1: the interface's addresses, once all are there (AL2023's
# amazon-ec2-net-utils adds the secondary ones from the instance metadata within a minute).
translation_addresses() {
    local waited=0 found=()
    [[ $NAT_PUBLIC_ADDRESSES =~ ^[1-9][0-9]?$ ]] ||
        die "NAT_PUBLIC_ADDRESSES: '$NAT_PUBLIC_ADDRESSES' is not a count from 1 to 99"
    if [ "$NAT_PUBLIC_ADDRESSES" = 1 ]; then return 0; fi
    while read -r -a found < <(ip -o -4 addr show dev "$1" scope global |
        awk '{sub("/.*", "", $4); printf "%s ", $4} END {print ""}'); do
        if [ "${#found[@]}" -ge "$NAT_PUBLIC_ADDRESSES" ] ||
            [ "$waited" -ge "$NAT_ADDRESS_WAIT" ]; then break; fi
        sleep 1; waited=$((waited + 1))
    done
    [ "${#found[@]}" -eq "$NAT_PUBLIC_ADDRESSES" ] || die "$1 has ${#found[@]} IPv4 \
address(es) (${found[*]}), expected NAT_PUBLIC_ADDRESSES=$NAT_PUBLIC_ADDRESSES"
    echo "${found[*]}"
}

# Translate new flows from $1 leaving on $2: MASQUERADE (the primary address), or to the
# addresses $3... in turn (the nat table sees a flow's first packet only: every Nth of the
# rest). The kernel's own choice over a range hashes source and destination to ONE address
# and never falls back to another when its ports run out: a busy destination would use one.
translate() {
    local cidr=$1 interface=$2 left; shift 2
    if [ $# -eq 0 ]; then
        iptables -t nat -A NAT_POSTROUTING -s "$cidr" -o "$interface" -j MASQUERADE; return
    fi
    for ((left = $#; left > 1; left--)); do
        iptables -t nat -A NAT_POSTROUTING -s "$cidr" -o "$interface" -m statistic \
            --mode nth --every "$left" --packet 0 -j SNAT --to-source "$1"
        shift
    done
    iptables -t nat -A NAT_POSTROUTING -s "$cidr" -o "$interface" -j SNAT --to-source "$1"
}

apply() {
    local cidrs cidr; cidrs=$(vpc_cidrs)
    ensure_iptables
    local interface; interface=$(primary_interface)
    local addresses; addresses=$(translation_addresses "$interface")
    log "primary interface: $interface, VPC CIDRs: $cidrs, translating to: \
${addresses:-its primary address}"

    mkdir -p "$(dirname "$SYSCTL_FILE")"
    cat >"$SYSCTL_FILE" <<EOF
# Written by nat-bootstrap.sh (nat-instance-vpc). Forwarding survives reboots;
# a NAT with one interface must not tell hosts to bypass it with ICMP redirects.
net.ipv4.ip_forward=1
net.ipv4.conf.all.send_redirects=0
net.ipv4.conf.default.send_redirects=0
net.ipv4.conf.all.accept_redirects=0
net.ipv4.conf.default.accept_redirects=0
EOF
    sysctl -q -p "$SYSCTL_FILE"
    sysctl -q -w "net.ipv4.conf.$interface.send_redirects=0"

    # Translate only what comes from the VPC and leaves it.
    fresh_chain nat NAT_POSTROUTING
    for cidr in $cidrs; do iptables -t nat -A NAT_POSTROUTING -d "$cidr" -j RETURN; done
    # shellcheck disable=SC2086  # the addresses: one word each
    for cidr in $cidrs; do translate "$cidr" "$interface" $addresses; done
    jump_once nat POSTROUTING NAT_POSTROUTING

    # The guide flushes FORWARD (iptables-services' default ends it with REJECT); we then
    # forward replies, and new flows only from the VPC to outside it: no open relay, and
    # nothing from the internet reaches private hosts through us.
    fresh_chain filter NAT_FORWARD
    # replies in a rule of their own: the agent reads bytes out and in from the counters
    local direction
    for direction in ORIGINAL REPLY; do
        iptables -A NAT_FORWARD -m conntrack --ctstate RELATED,ESTABLISHED \
            --ctdir "$direction" -j ACCEPT
    done
    iptables -A NAT_FORWARD -m conntrack --ctstate INVALID -j DROP
    for cidr in $cidrs; do iptables -A NAT_FORWARD -d "$cidr" -j DROP; done
    for cidr in $cidrs; do iptables -A NAT_FORWARD -s "$cidr" -j ACCEPT; done
    iptables -A NAT_FORWARD -j DROP
    iptables -F FORWARD
    iptables -A FORWARD -j NAT_FORWARD

    # VPC hosts use MTU 9001, the internet path 1500: clamp the MSS both SYN and SYN-ACK
    # carry, as NAT Gateway does, so large transfers don't stall where PMTUD is blocked.
    fresh_chain mangle NAT_MSS
    if [ "$NAT_MSS" != 0 ]; then
        iptables -t mangle -A NAT_MSS -p tcp --tcp-flags SYN,RST SYN \
            -m tcpmss --mss "$((NAT_MSS + 1)):65535" -j TCPMSS --set-mss "$NAT_MSS"
    fi
    jump_once mangle FORWARD NAT_MSS

    compute_tuning
    set_kernel_value net.netfilter.nf_conntrack_max "$CONNTRACK_MAX"
    set_kernel_value net.netfilter.nf_conntrack_buckets "$CONNTRACK_BUCKETS"
    set_kernel_value net.netfilter.nf_conntrack_tcp_timeout_established "$TCP_ESTABLISHED_TIMEOUT"
    set_kernel_value net.netfilter.nf_conntrack_tcp_timeout_time_wait "$TCP_TIME_WAIT_TIMEOUT"

    mkdir -p "$NAT_STATE_DIR"
    echo "$interface" >"$NAT_STATE_DIR/ready"
    log "NAT ready on $interface"
}

install_unit() {
    if [ "$(readlink -f "$0")" != "$NAT_SCRIPT_PATH" ]; then
        install -D -m 0755 "$0" "$NAT_SCRIPT_PATH"
    fi
    mkdir -p "$(dirname "$NAT_UNIT")"
    # Re-applying at every boot (rather than the guide's `service iptables save`) re-detects
    # the interface, which can change name with the instance type, and needs no package.
    cat >"$NAT_UNIT" <<EOF
[Unit]
Description=NAT instance: forwarding, MASQUERADE and tuning (nat-instance-vpc)
Wants=network-online.target
After=network-online.target iptables.service nftables.service firewalld.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$NAT_SCRIPT_PATH apply

[Install]
WantedBy=multi-user.target
EOF
    systemctl daemon-reload
    systemctl enable nat-instance.service
    log "installed $NAT_UNIT"
}

# Monitoring or high availability: user data also installs the agent (nat/instance/agent.py); run it
# under systemd, after the NAT rules are in place, restarted whenever it stops.
install_agent() {
    [ -e "$NAT_AGENT" ] || return 0
    command -v python3 >/dev/null 2>&1 ||
        die "the NAT agent (metrics, high availability) needs python3, which Amazon Linux 2023 has"
    cat >"$NAT_AGENT_UNIT" <<EOF
[Unit]
Description=NAT instance agent: metrics; with high availability, failover and rollout (nat-instance-vpc)
Requires=nat-instance.service
After=nat-instance.service network-online.target

[Service]
ExecStart=/usr/bin/env python3 $NAT_AGENT run
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF
    systemctl daemon-reload
    systemctl enable nat-agent.service
    systemctl start --no-block nat-agent.service
    log "installed and started $NAT_AGENT_UNIT"
}

case "${1:-}" in
    install) install_unit; apply; install_agent ;;
    apply) apply ;;
    print-tuning) print_tuning ;;
    *) echo "usage: $0 install|apply|print-tuning" >&2; exit 2 ;;
esac
