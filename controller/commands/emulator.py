"""``chaosdemo emulator``: run the PD/TiKV emulator (sandbox and tests only)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from controller.logsetup import configure


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("emulator", help="run the PD/TiKV emulator bound to a namespace's pods (sandbox only)")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--namespace", default="tikv")
    p.add_argument("--headless-service", default="tikv-peer")
    p.add_argument("--pd-port", type=int, default=2379)
    p.add_argument("--pd-host", default="127.0.0.1", help="the address PD's port listens on")
    p.add_argument(
        "--operator-v2",
        action="store_true",
        help="play tidb-operator v2: create each TiKV/PD instance's pod, recreate it, re-apply its image",
    )
    p.add_argument(
        "--pd-name",
        action="append",
        default=[],
        help="a name PD is reached by (its Service, e.g. basic-pd.tikv.svc), resolved to --pd-host "
        "through --hosts-file; repeatable",
    )
    p.add_argument("--admin-port", type=int, default=0)
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every TiKV/PD duration by this (0.1 = ten times faster)",
    )
    p.add_argument(
        "--status-ip-prefix", default="127.0.10", help="stores serve their status port on PREFIX.<store id>"
    )
    p.add_argument(
        "--targets-file", type=Path, default=None, help="write Prometheus file_sd targets for the stores here"
    )
    p.add_argument("--regions", type=int, default=24, help="how many regions the cluster holds (scale runs)")
    p.add_argument(
        "--hosts-file",
        type=Path,
        default=None,
        help="write the stores' advertised names and their loopback addresses here (the sandbox's DNS)",
    )
    p.add_argument(
        "--tls-ca",
        type=Path,
        default=None,
        help="serve PD over TLS: the CA client certificates must chain to",
    )
    p.add_argument("--tls-cert", type=Path, default=None, help="PD's serving certificate (with --tls-ca)")
    p.add_argument("--tls-key", type=Path, default=None, help="its key (with --tls-ca)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.emulator.server import Emulator, EmulatorSettings
    from controller.emulator.tls import ServerTLS

    configure()
    if args.time_scale <= 0:
        raise SystemExit("chaosdemo emulator: --time-scale must be > 0")
    tls_files = (args.tls_ca, args.tls_cert, args.tls_key)
    if any(tls_files) and not all(tls_files):
        raise SystemExit("chaosdemo emulator: --tls-ca, --tls-cert and --tls-key go together")
    settings = EmulatorSettings(
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        headless_service=args.headless_service,
        pd_port=args.pd_port,
        pd_host=args.pd_host,
        pd_names=tuple(args.pd_name),
        operator_v2=args.operator_v2,
        admin_port=args.admin_port,
        time_scale=args.time_scale,
        status_ip_prefix=args.status_ip_prefix,
        targets_file=args.targets_file,
        regions=args.regions,
        hosts_file=args.hosts_file,
        tls=ServerTLS(args.tls_ca, args.tls_cert, args.tls_key) if args.tls_ca else None,
    )
    asyncio.run(Emulator(settings).run())
    return 0
