"""Every ``fathom`` command, registered by name: one line each, in the order ``--help`` shows.

A command is a module with ``COMMAND = Command(help, add_arguments, run)`` (fathom.cli.options);
a new capability adds its module and one line here.
"""

from fathom.registry import COMMANDS

for _name, _module, _description in (
    ("train", "train", "train a model and write its run folder"),
    ("eval", "evaluate", "metrics of a run on a split"),
    ("predict", "predict", "predictions of a run for input files or texts"),
    ("resume", "resume", "continue an interrupted run exactly"),
    ("finetune", "finetune", "fine-tune a run or a pretrained model on new data"),
    ("probe", "probe", "kNN accuracy of a run's backbone features (self-supervised protocol)"),
    ("generate", "generate", "samples of a generative run"),
    ("report", "report", "re-draw a run's plots and HTML report"),
    ("doctor", "doctor", "what is wrong with a run, and the fix"),
    ("explain", "explain", "explanations of a run's predictions"),
    ("lr-find", "lr_find", "a learning-rate sweep with a suggestion"),
    ("export", "export", "a run's model as ONNX, TorchScript or safetensors"),
    ("compress", "compress", "prune, quantize or distil a run into a smaller run"),
    ("serve", "serve", "an HTTP server for a run or an ONNX file"),
    ("tune", "tune", "hyperparameter search with Optuna (samplers, pruners, workers)"),
    ("nas", "nas", "architecture search under a latency, MAC or parameter budget"),
    ("federate", "federate", "federated learning over clients that keep their data"),
    ("attack", "attack", "adversarial examples and accuracy under attack"),
    ("calibrate", "calibrate", "fit temperature scaling; write RUN-calibrated"),
    ("card", "card", "the report card: calibration, robustness, fairness, size"),
    ("list", "listing", "the names of one registry"),
):
    COMMANDS.register(_name, f"fathom.cli.{_module}:COMMAND", description=_description)
