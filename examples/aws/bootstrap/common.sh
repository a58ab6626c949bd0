# common.sh — inlined into every node's user data by file() (drydock does not
# interpolate it: ${...} here is left to the shell).
sysctl -w net.ipv4.ip_forward=1
modprobe br_netfilter
systemctl enable --now containerd
echo "booted at $(date -u +%FT%TZ) on ${HOSTNAME:-unknown}" >> /var/log/drydock-bootstrap.log
