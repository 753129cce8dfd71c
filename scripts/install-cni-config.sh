#!/bin/sh
# Writes crid's default pod network into a CNI configuration directory, but
# only when the directory holds no network configuration yet: a cluster's
# own network add-on (Flannel, Calico, Cilium) writes its file there, and
# what is there is never touched.
# Usage: scripts/install-cni-config.sh DIR [IPMASQ]
#   DIR     the CNI configuration directory (crid's cni_conf_dir)
#   IPMASQ  true to masquerade pod traffic leaving the node (default false)
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 DIR [true|false]" >&2
	exit 2
fi
dir=$1
masq=${2:-false}
case "$masq" in
true | false) ;;
*)
	echo "install-cni-config: IPMASQ must be true or false, not '$masq'" >&2
	exit 2
	;;
esac
mkdir -p "$dir"
for f in "$dir"/*.conflist "$dir"/*.conf "$dir"/*.json; do
	if [ -e "$f" ]; then
		echo "install-cni-config: $dir already holds a network configuration ($f): left as it is"
		exit 0
	fi
done
# loopback; a bridge crid0 with host-local addresses from 10.85.0.0/16 and
# pods' default route through it; portmap for hostPorts.
tmp=$(mktemp "$dir/.crid-bridge.XXXXXX")
cat >"$tmp" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "crid",
  "plugins": [
    {
      "type": "loopback"
    },
    {
      "type": "bridge",
      "bridge": "crid0",
      "isGateway": true,
      "ipMasq": $masq,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.85.0.0/16" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
CONF
chmod 0644 "$tmp"
mv "$tmp" "$dir/10-crid-bridge.conflist"
echo "install-cni-config: wrote $dir/10-crid-bridge.conflist"
