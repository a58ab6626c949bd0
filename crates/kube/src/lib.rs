//! drydock-kube (being written).
