"""``chaosdemo demo``: one drill as a staged live show, driven through the ChaosDemo resource.

Stages: cluster health -> load -> fault injection -> live detection countdown -> the diagnosis
-> recovery -> cleanup (in a ``finally``: deleting the resource lets the finalizer restore).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from controller.operator.kube import Kube
from controller.operator.status import parse_rfc3339
from controller.pd import PDClient, PDError
from controller.prom import PrometheusClient
from controller.tickets import TicketDB
from controller.ui.client_load import ClientLoad, YcsbLoad
from controller.ui.drill_text import client_figures, drill_body, felt_text, sources_table, victim_text
from controller.ui.endpoints import Endpoints

TERMINAL = {"Completed", "Failed", "Aborted"}
LOAD_RPS = 200.0  # TiKV's client in the sandbox: reads a second over all regions


class Demo:
    def __init__(
        self,
        console: Console,
        kube: Kube,
        endpoints: Endpoints,
        *,
        namespace: str,
        manifest: Path,
        yes: bool,
        load_seconds: float = 5.0,
        ycsb_job: Path | None = None,
        fault: str = "",
        duration: int = 30,
    ) -> None:
        self.console = console
        self.kube = kube
        self.ep = endpoints
        self.namespace = namespace
        self.manifest = manifest
        self.interactive = not yes and sys.stdin.isatty()
        self.load_seconds = load_seconds
        self.name = f"demo-{time.strftime('%H%M%S')}"
        self.created = False
        self.client_load: ClientLoad | YcsbLoad | None = None
        self.ycsb_job = ycsb_job
        self.fault = fault
        self.duration = duration
        self.ycsb_job_name: str | None = None
        self.status: dict[str, Any] = {}
        self.prom: PrometheusClient | None = None

    # -- helpers -------------------------------------------------------------------------------------
    def stage(self, number: int, title: str) -> None:
        self.console.print()
        self.console.print(Rule(f"[bold cyan]Stage {number}: {title}[/]"))

    async def pause(self, prompt: str) -> None:
        if self.interactive:
            await asyncio.to_thread(self.console.input, f"[bold yellow]{prompt} (press Enter)[/] ")

    async def refresh(self) -> dict[str, Any]:
        obj = await self.kube.get_chaosdemo(self.namespace, self.name)
        self.status = (obj or {}).get("status") or {}
        return self.status

    async def clients(self) -> Text:
        if self.client_load is not None:
            return await self.client_load.figures()
        return await client_figures(self.prom) if self.prom else Text("")

    # -- stages ----------------------------------------------------------------------------------------
    async def health(self, pd: PDClient) -> bool:
        self.stage(1, "cluster health")
        try:
            stores = await pd.stores()
        except PDError as exc:
            self.console.print(f"[red]PD is not reachable at {self.ep.pd_url}: {exc}[/]")
            return False
        table = Table(title=f"TiKV stores (PD {self.ep.pd_url})")
        for col in ("store", "address", "state", "leaders", "regions", "capacity", "uptime"):
            table.add_column(col)
        for s in sorted(stores, key=lambda s: s.id):
            color = "green" if s.store.state_name == "Up" else "red"
            table.add_row(
                str(s.id),
                s.store.address,
                f"[{color}]{s.store.state_name}[/]",
                str(s.status.leader_count),
                str(s.status.region_count),
                f"{s.status.capacity / 2**30:.1f} GiB",
                f"{(s.status.uptime or 0):.0f}s",
            )
        self.console.print(table)
        return bool(stores)

    async def load(self, prom: PrometheusClient) -> None:
        self.stage(2, "client load")
        if self.ep.sandbox and self.ep.client_env:
            self.client_load = await self._sandbox_load()
        elif self.ycsb_job is not None and await asyncio.to_thread(self.ycsb_job.exists):
            manifest = yaml.safe_load(await asyncio.to_thread(self.ycsb_job.read_text))
            await self.kube.create_job(self.namespace, manifest)
            self.ycsb_job_name = manifest["metadata"]["name"]
            self.console.print(
                f"started go-ycsb Job [bold]{self.namespace}/{self.ycsb_job_name}[/] (workload A through PD); "
                "it is deleted at cleanup"
            )
        else:
            self.console.print("real cluster: start your load now (no go-ycsb Job manifest found)")
        deadline = time.monotonic() + self.load_seconds
        line = Text("")
        with Live(console=self.console, refresh_per_second=4, transient=True) as live:
            while time.monotonic() < deadline:
                line = await self.clients()
                live.update(Text.assemble(line, f"   ({deadline - time.monotonic():.0f}s)"))
                await asyncio.sleep(0.5)
        self.console.print(line)

    async def _sandbox_load(self) -> ClientLoad | YcsbLoad:
        # Only in the sandbox: the cluster image carries no sandbox package.
        from controller.sandbox.binaries import MissingBinaryError, go_ycsb_binary

        env = {**os.environ, **self.ep.client_env}
        try:
            ycsb = YcsbLoad(go_ycsb_binary(), self.ep.pd_url, env, LOAD_RPS)
            await ycsb.start()
            self.console.print(
                f"go-ycsb (workload A, TiKV's Go client, raw) at {LOAD_RPS:.0f} operations/s; its figures live"
            )
            return ycsb
        except (MissingBinaryError, OSError, TimeoutError) as exc:
            self.console.print(f"[yellow]go-ycsb unavailable ({exc}); TiKV's Python client is the load[/]")
        out = Path(tempfile.gettempdir()) / f"chaosdemo-{self.name}-load.jsonl"
        load = ClientLoad(self.ep.pd_url, env, out, LOAD_RPS)
        await load.start()
        self.console.print(f"TiKV's own client reads one key per region through PD, {LOAD_RPS:.0f}/s; live")
        return load

    async def inject(self) -> bool:
        self.stage(3, "fault injection")
        body = drill_body(yaml.safe_load(self.manifest.read_text()), self.fault, self.duration)
        if self.ep.sandbox and self.ep.client_env:
            # The drill's own prober too: status.impact.client, and the SLO judged on it.
            spec = body["spec"]
            spec["impact"] = {**(spec.get("impact") or {}), "probe": {"enabled": True}}
        body["metadata"] = {"name": self.name, "namespace": self.namespace}
        action = body["spec"]["fault"]["action"]
        if action in ("store-outage", "network-partition"):
            self.duration = int(body["spec"]["fault"].get("durationSeconds", 60))
        await self.pause(
            {
                "store-outage": f"Stop a random TiKV store for {self.duration}s?",
                "network-partition": f"Cut a random TiKV store off from PD and its peers for {self.duration}s?",
                "pd-leader-kill": "Kill PD's leader?",
            }.get(action, "Kill a random TiKV pod?")
        )
        await self.kube.create_chaosdemo(self.namespace, body)
        self.created = True
        self.console.print(
            f"created ChaosDemo [bold]{self.namespace}/{self.name}[/] from {self.manifest.name}"
        )
        while True:
            st = await self.refresh()
            if st.get("phase") in TERMINAL and not st.get("timeline", {}).get("injectedAt"):
                self.console.print(
                    Panel(
                        f"{st.get('reason')}: {st.get('message')}", title="drill refused", border_style="red"
                    )
                )
                return False
            if (st.get("timeline") or {}).get("injectedAt"):
                what = victim_text(st, self.duration)
                self.console.print(
                    Panel(
                        what,
                        title="victim",
                        border_style="red",
                    )
                )
                return True
            await asyncio.sleep(0.2)

    async def detect(self) -> None:
        self.stage(4, "detection")
        injected = parse_rfc3339(self.status["timeline"]["injectedAt"]) or time.time()
        with Live(console=self.console, refresh_per_second=8, transient=True) as live:
            while True:
                st = await self.refresh()
                if st.get("incident") or st.get("phase") in TERMINAL or st.get("phase") == "Recovering":
                    break
                waiting = Text.from_markup(
                    f"[yellow]Waiting for detection... {time.time() - injected:.0f}s[/] (the monitor knows nothing "
                    "about this drill)"
                )
                live.update(Group(waiting, await self.clients(), sources_table(st)))
                await asyncio.sleep(0.25)
        incident = self.status.get("incident")
        if incident:
            self.console.print(
                f"[green]detected[/] in [bold]{self.status['metrics']['timeToDetect']}[/] by ticket "
                f"#{incident['ticketId']} ({incident['invariant']}; signals "
                f"{', '.join(incident.get('signals') or [])})"
            )
        else:
            self.console.print("[red]the monitor did not open a ticket in time: undetected[/]")

    async def diagnose(self) -> None:
        self.stage(5, "diagnosis")
        while True:
            st = await self.refresh()
            if st.get("diagnosis") or st.get("phase") in TERMINAL or not st.get("incident"):
                break
            await asyncio.sleep(0.3)
        d = self.status.get("diagnosis")
        if not d:
            self.console.print("no diagnosis (nothing detected, or diagnosis disabled)")
            return
        markdown = d["summary"]
        ticket_id = (self.status.get("incident") or {}).get("ticketId")
        if ticket_id and await asyncio.to_thread(Path(self.ep.tickets_db).exists):
            async with TicketDB(self.ep.tickets_db) as db:
                ticket = await db.get(ticket_id)
                markdown = ticket.diagnosis_markdown if ticket and ticket.diagnosis_markdown else markdown
        by = d["diagnoser"] + (f" · {d['model']}" if d.get("model") else "")
        if d.get("fallbackReason"):
            by += f" · fallback: {d['fallbackReason']}"
        self.console.print(Panel(Markdown(markdown), title=f"Diagnosis ({by})", border_style="green"))
        verdict = "[green]matches[/]" if d["matchesInjectedFault"] else "[red]does not match[/]"
        self.console.print(f"the diagnosis {verdict} the injected fault ({d['gradeReason']})")

    async def recover(self) -> str:
        self.stage(6, "recovery")
        with Live(console=self.console, refresh_per_second=4, transient=True) as live:
            while True:
                st = await self.refresh()
                if st.get("phase") in TERMINAL:
                    break
                live.update(
                    Group(
                        Text.from_markup(
                            f"[yellow]waiting for the store to be whole again...[/] ({st.get('message')})"
                        ),
                        await self.clients(),
                        sources_table(st),
                    )
                )
                await asyncio.sleep(0.3)
        m = self.status.get("metrics") or {}
        verdict = self.status.get("verdict") or "?"
        color = "green" if verdict == "Pass" else "red"
        table = Table.grid(padding=(0, 2))
        table.add_row("verdict", f"[bold {color}]{verdict}[/] — {self.status.get('message')}")
        table.add_row("time to detect", str(m.get("timeToDetect", "-")))
        table.add_row("time to recover", str(m.get("timeToRecover", "-")))
        felt = felt_text(self.status.get("impact") or {})
        if felt:
            table.add_row("what clients felt", felt)
        self.console.print(
            Panel(Group(table, sources_table(self.status)), title="result", border_style=color)
        )
        return verdict

    async def cleanup(self) -> None:
        self.console.print()
        self.console.print(Rule("[bold cyan]cleanup[/]"))
        if self.client_load is not None:
            await self.client_load.stop()
        if self.ycsb_job_name:
            await self.kube.delete_job(self.namespace, self.ycsb_job_name)
            self.console.print(f"deleted the go-ycsb Job {self.ycsb_job_name}")
        if self.created:
            await self.kube.delete_chaosdemo(self.namespace, self.name)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if await self.kube.get_chaosdemo(self.namespace, self.name) is None:
                    break
                await asyncio.sleep(0.3)
            self.console.print(f"deleted ChaosDemo {self.name} (its finalizer restored the cluster)")

    async def run(self) -> int:
        self.console.print(
            Panel.fit(
                "[bold]ChaosDemo[/] — kill a TiKV pod, measure detection, diagnose, recover\n"
                f"cluster: {'sandbox' if self.ep.sandbox else 'current kubeconfig'} · namespace {self.namespace} · "
                f"PD {self.ep.pd_url}",
                border_style="cyan",
            )
        )
        pd = PDClient(self.ep.pd_url)
        prom = PrometheusClient(self.ep.prometheus_url)
        self.prom = prom
        try:
            if not await self.health(pd):
                return 2
            await self.pause("Start the load?")
            await self.load(prom)
            if not await self.inject():
                return 1
            await self.detect()
            await self.diagnose()
            verdict = await self.recover()
            return 0 if verdict == "Pass" else 1
        finally:
            try:
                await asyncio.shield(self.cleanup())
            finally:
                await pd.aclose()
                await prom.aclose()
