#!/bin/bash
# after-join.sh — the node group's own user data: cloud-init runs it after drydock's part,
# which wrote /etc/drydock/kubeadm-join.yaml and ran `kubeadm join` (the image has
# containerd, kubelet and kubeadm). drydock does not interpolate this file: ${...} is the shell's.
set -euo pipefail
echo "joined at $(date -u +%FT%TZ) as ${HOSTNAME:-unknown}" >> /var/log/drydock-bootstrap.log
