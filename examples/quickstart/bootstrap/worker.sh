#!/bin/sh
# Joins the node to the cluster (the simulated cloud only records this script).
echo "joining ${CLUSTER:-demo}"
