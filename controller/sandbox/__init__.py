"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) run as local processes, plus the TiKV emulator and Prometheus.

Used by the test-suite and by ``chaosdemo sandbox``. Nothing here is deployed.
"""
