"""Federated learning: client splits, the client's local training (the ordinary Trainer), the
server's aggregation (FedAvg, FedProx, FedAvgM, FedAdam), an in-process simulation and a Flower
deployment (``fathom.federated.flower``: ServerApp and ClientApp; ``fathom.federated.deploy``:
``flwr run`` and a loopback SuperLink with SuperNodes). Both Flower modules import ``flwr`` and are
imported only when a deployment is asked for."""

from fathom.federated.client import ProximalTerm, train_client
from fathom.federated.server import ServerOptimizer, weighted_average
from fathom.federated.simulation import FederatedConfig, Simulation, sample_clients
from fathom.federated.splits import SPLITS, class_histogram, split_clients

__all__ = [
    "SPLITS", "FederatedConfig", "ProximalTerm", "ServerOptimizer", "Simulation",
    "class_histogram", "sample_clients", "split_clients", "train_client", "weighted_average",
]  # fmt: skip
