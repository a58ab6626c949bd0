#!/bin/bash
# control-plane.sh — a control-plane member joins the existing etcd quorum, or
# initialises it when it is the first member. Read verbatim with file().
set -euo pipefail
systemctl enable --now containerd
if /usr/local/bin/cluster-exists; then
  /usr/local/bin/join-control-plane --discover-peers
else
  kubeadm init --config /etc/kubernetes/kubeadm.yaml --upload-certs
fi
