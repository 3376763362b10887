"""The Flower deployment: a ``ServerApp`` and a ``ClientApp`` (Flower's Message API) that
``flower-superlink`` and ``flower-supernode`` processes run.

Each SuperNode is one client, started with ``--node-config "partition-id=P"``: its ClientApp loads
the dataset named in the run's config, keeps only split part P (the same seeded split as the
simulation) and trains it with ``train_client``, the simulation's code path. The ServerApp opens
the run folder that ``fathom federate --flower`` prepared (``run-dir`` in the run config), asks
every node which partition it holds, then runs the rounds as the simulation does: the same client
sampling, client seeds, weighted mean and server optimizer (``server.py``), one metrics line and a
checkpoint per round, and at the end the weights, test metrics, ``federated.json`` and report."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fathom.assemble import build_model, load_data
from fathom.config import FathomConfig, validate_config
from fathom.data.bundle import DataInfo, Split
from fathom.errors import ConfigError, FathomError
from fathom.federated.client import client_seed, train_client, with_train
from fathom.federated.record import after_round, finish_run
from fathom.federated.simulation import FederatedConfig, Simulation, round_plan
from fathom.federated.splits import class_histogram, split_clients
from fathom.runs.folder import load_weights, read_config, read_run_json, update_run_json

INITIAL_WEIGHTS = Path("checkpoints") / "initial.safetensors"
"""The global model before round 1, written by the launcher so the deployment and the simulation
start from the same weights."""
REPLY_POLL_SECONDS = 0.05  # the server's pull interval while it waits for clients' replies

client_app = ClientApp()
server_app = ServerApp()


# ------------------------------------------------------------------ the client's side
def fingerprint(indices: torch.Tensor) -> str:
    """A short digest of a client's training indices: shows which examples it held."""
    return hashlib.sha256(indices.long().numpy().tobytes()).hexdigest()[:16]


def own_examples(settings: ConfigRecord, partition: int) -> tuple[Split, DataInfo, torch.Tensor]:
    """This node's examples only: the dataset is loaded, split with the run's seed, and all but
    part ``partition`` dropped (Flower starts one ClientApp process per message)."""
    config = validate_config(json.loads(str(settings["config"])))
    bundle = load_data(config)
    parts = split_clients(bundle.train.targets, int(settings["clients"]), str(settings["split"]),
                          alpha=float(settings["alpha"]), seed=config.train.seed)  # fmt: skip
    if not 0 <= partition < len(parts):
        raise ConfigError(f"node-config partition-id={partition}: the run has {len(parts)} clients")
    return bundle.train.subset(parts[partition]), bundle.info, parts[partition].clone()


def partition_of(context: Context) -> int:
    if "partition-id" not in context.node_config:
        raise ConfigError("flower-supernode needs --node-config 'partition-id=P' (its client)")
    return int(context.node_config["partition-id"])


@client_app.query()
def describe(message: Message, context: Context) -> Message:
    """The node's partition, its size, class histogram, fingerprint and process id."""
    settings = message.content["fathom"]
    partition = partition_of(context)
    examples, info, indices = own_examples(settings, partition)
    classes = info.num_classes or int(examples.targets.max()) + 1
    histogram = class_histogram(examples.targets, [torch.arange(len(examples))], classes)[0]
    reply = ConfigRecord({"partition-id": partition, "examples": len(examples), "pid": os.getpid(),
                          "fingerprint": fingerprint(indices), "histogram": histogram})  # fmt: skip
    return Message(RecordDict({"node": reply}), reply_to=message)


@client_app.train()
def train(message: Message, context: Context) -> Message:
    """Local epochs from the global weights with ``train_client``; the new weights back."""
    settings = message.content["fathom"]
    partition = partition_of(context)
    examples, info, indices = own_examples(settings, partition)
    config = validate_config(json.loads(str(settings["local-config"])))
    network = build_model(config, info)
    global_state = message.content["arrays"].to_torch_state_dict()
    state, size, loss = train_client(network, dict(global_state), examples, info, config,
                                     seed=int(settings["client-seed"]), mu=float(settings["mu"]))  # fmt: skip
    metrics = MetricRecord({"num-examples": size, "train-loss": loss, "partition-id": partition})
    trained = ConfigRecord({"fingerprint": fingerprint(indices)})
    content = RecordDict({"arrays": ArrayRecord(state), "metrics": metrics, "trained": trained})
    return Message(content, reply_to=message)


# ------------------------------------------------------------------ the server's side
class FlowerServer(Simulation):
    """The simulation's server with the clients' training sent to SuperNodes through a Grid:
    the model, server optimizer, evaluation, history and checkpoints are the simulation's."""

    def __init__(self, config: FathomConfig, federated: FederatedConfig, run_dir: Path,
                 grid: Grid) -> None:  # fmt: skip
        bundle = load_data(config)  # the server evaluates on the test (or validation) split
        network = build_model(config, bundle.info)
        load_weights(run_dir / INITIAL_WEIGHTS, network)
        super().__init__(config, federated, bundle, network, run_dir)
        self.grid = grid
        self.nodes: dict[int, int] = {}  # partition -> SuperNode id
        self.reports: dict[int, dict[str, Any]] = {}  # partition -> what its node reported
        self.reply_timeout = 3600.0  # a hung client, not a slow one: generous
        self.settings = {"config": json.dumps(config.to_dict()), "clients": federated.clients,
                         "split": federated.split, "alpha": federated.alpha}  # fmt: skip

    def connect(self, timeout: float) -> None:
        """Wait for one SuperNode per client, then learn which partition each holds."""
        deadline = time.monotonic() + timeout
        while len(node_ids := sorted(self.grid.get_node_ids())) < self.federated.clients:
            if time.monotonic() > deadline:
                raise FathomError(f"only {len(node_ids)} of {self.federated.clients} SuperNodes "
                                  f"connected within {timeout:.0f} s")  # fmt: skip
            time.sleep(0.5)
        query = [self.message(node, "query", "connect", {}) for node in node_ids]
        reports = [{**reply.content["node"], "node": reply.metadata.src_node_id}
                   for reply in self.exchange(query)]  # fmt: skip
        held = sorted(int(report["partition-id"]) for report in reports)
        if held != list(range(self.federated.clients)):
            raise FathomError(f"the SuperNodes hold partitions {held}; each of "
                              f"0..{self.federated.clients - 1} must be held once")  # fmt: skip
        self.reports = {int(report["partition-id"]): report for report in reports}
        self.nodes = {partition: int(report["node"]) for partition, report in self.reports.items()}

    def message(self, node: int, kind: str, group: str, extra: dict[str, Any],
                arrays: ArrayRecord | None = None) -> Message:  # fmt: skip
        content = RecordDict({"fathom": ConfigRecord({**self.settings, **extra})})
        if arrays is not None:
            content["arrays"] = arrays
        return Message(content, dst_node_id=node, message_type=kind, group_id=group)

    def exchange(self, messages: list[Message]) -> list[Message]:
        """Send ``messages`` and wait for every reply. Not ``Grid.send_and_receive``: it sleeps
        3 s between pulls, several seconds of idle per round on loopback; this pulls every
        ``REPLY_POLL_SECONDS``."""
        waiting = set(self.grid.push_messages(messages))
        replies: list[Message] = []
        deadline = time.monotonic() + self.reply_timeout
        while waiting and time.monotonic() < deadline:
            pulled = list(self.grid.pull_messages(waiting))
            replies += pulled
            waiting -= {reply.metadata.reply_to_message_id for reply in pulled}
            if waiting:
                time.sleep(REPLY_POLL_SECONDS)
        failed = [reply.error.reason for reply in replies if reply.has_error()]
        if failed or len(replies) != len(messages):
            raise FathomError(f"a client failed: {failed[0] if failed else 'no reply'}")
        return replies

    def run_round(self) -> dict[str, Any]:
        """As ``Simulation.run_round``, with each chosen client's training on its SuperNode."""
        federated, seed = self.federated, self.config.train.seed
        plan = round_plan(seed, self.round, federated)
        mu = federated.mu if federated.strategy == "fedprox" else 0.0
        arrays = ArrayRecord({key: value.clone() for key, value in self.model.state_dict().items()})
        messages = [self.message(self.nodes[client], "train", str(self.round + 1), {
            "local-config": json.dumps(with_train(self.local, epochs=epochs).to_dict()), "mu": mu,
            "client-seed": client_seed(seed, self.round, client),
        }, arrays) for client, epochs in plan.items()]  # fmt: skip
        replies = self.trained_replies(messages)
        states = [dict(reply.content["arrays"].to_torch_state_dict()) for reply in replies]
        sizes = [int(reply.content["metrics"]["num-examples"]) for reply in replies]
        losses = [float(reply.content["metrics"]["train-loss"]) for reply in replies]
        for client in plan:
            self.participation[client] += 1
        return self.finish_round(plan, states, sizes, losses)

    def trained_replies(self, messages: list[Message]) -> list[Message]:
        """The replies in partition order (the simulation's order of summation), each checked to
        come from a node that trained on the examples it reported holding."""
        replies = sorted(
            self.exchange(messages), key=lambda r: r.content["metrics"]["partition-id"]
        )
        for reply in replies:
            partition = int(reply.content["metrics"]["partition-id"])
            if reply.content["trained"]["fingerprint"] != self.reports[partition]["fingerprint"]:
                raise FathomError(f"client {partition} trained on other examples than it holds")
        return replies

    def histogram(self) -> list[list[int]]:
        return [list(self.reports[client]["histogram"]) for client in sorted(self.reports)]

    def client_sizes(self) -> list[int]:
        return [int(self.reports[client]["examples"]) for client in sorted(self.reports)]


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Train the run prepared in ``run-dir`` on the connected SuperNodes."""
    run_dir = Path(str(context.run_config["run-dir"]))
    config = read_config(run_dir)
    federated = FederatedConfig(**read_run_json(run_dir)["federated"])
    server = FlowerServer(config, federated, run_dir, grid)
    server.reply_timeout = float(context.run_config.get("reply-timeout", 3600))
    server.connect(float(context.run_config.get("connect-timeout", 600)))
    update_run_json(run_dir, flower_nodes=[server.reports[c] for c in sorted(server.reports)])
    server.run(after_round(run_dir))
    finish_run(server, run_dir)
