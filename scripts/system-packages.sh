#!/usr/bin/env bash
# Debian packages the tests and the benchmark use: iproute2/iptables/util-linux for the
# network-namespace data path, shellcheck for the bootstrap script, graphviz for `plan
# --diagram`, iperf3 for the benchmark, node and npm for the check of the TypeScript example,
# cloud-init to read the user data as the instance does, conntrackd and conntrack for the
# connection handover between NATs.
# Installs only what is missing; needs root to install.
set -euo pipefail
declare -A package_of=([ip]=iproute2 [iptables]=iptables [nft]=nftables [sysctl]=procps [unshare]=util-linux
                       [shellcheck]=shellcheck [dot]=graphviz [iperf3]=iperf3 [node]=nodejs [npm]=npm
                       [cloud-init]=cloud-init [conntrackd]=conntrackd [conntrack]=conntrack)
missing=()
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    echo "without them the data-path tests are skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
