"""Sequence-to-sequence: teacher-forced cross-entropy; token accuracy and exact match of decoding.

Batches are ``(source [B, S], target [B, T])`` of token ids padded with 0; targets start with
<bos>=1 and end with <eos>=2. The model sees ``target[:, :-1]`` and learns ``target[:, 1:]``
(padding ignored). Evaluation also decodes every source (greedy, or beam search when
``beam_size > 1``) and counts a sequence as an exact match when it equals the target entirely.
``predict`` returns decoded ids; ``translate`` turns texts into texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.data.translation import CharVocabulary, vocabulary_of
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError, DataError
from fathom.tasks.base import Batch, Task
from fathom.tasks.decoding import BOS, EOS, PAD, beam_search, greedy_decode

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

EXAMPLES_SHOWN = 8


class Seq2SeqMetrics:
    """Per-token loss and accuracy (teacher forcing), exact match of decoding, a few examples."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum, self.tokens, self.correct_tokens, self.exact = (
            torch.zeros((), dtype=torch.float64, device=device) for _ in range(4)
        )
        self.sequences = 0
        self.examples: list[list[str]] = []

    def compute(self) -> dict[str, Any]:
        tokens = max(1.0, float(self.tokens))
        return {
            "loss": float(self.loss_sum) / tokens,
            "token_accuracy": float(self.correct_tokens) / tokens,
            "exact_match": float(self.exact) / max(1, self.sequences),
        }

    def details(self) -> dict[str, Any]:
        return {"examples": self.examples}


class Seq2Seq(Task):
    name = "seq2seq"
    monitor = "exact_match"
    monitor_mode = "max"
    reads_text = True

    def __init__(self, info: DataInfo, beam_size: int = 1, length_penalty: float = 1.0,
                 max_length: int | None = None) -> None:  # fmt: skip
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ConfigError(f"task.beam_size must be a positive integer, got {beam_size!r}")
        self.info = info
        self.vocabulary: CharVocabulary = vocabulary_of(info)
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_length = max_length or int(info.extra.get("max_target_length", 64)) - 1

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> Seq2Seq:
        if info.task != "seq2seq":
            raise ConfigError(
                f"task 'seq2seq' needs a sequence-to-sequence dataset (dates, arithmetic), "
                f"not '{info.name}'"
            )
        return cls(info, **options)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        return [DecodedExamples(run_dir, self)] if run_dir is not None else []

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        missing = [
            name for name in ("encode", "decode") if not callable(getattr(model, name, None))
        ]
        if missing:
            raise ConfigError(
                f"task 'seq2seq' needs a model with encode() and decode() (e.g. gru_seq2seq); "
                f"{type(model).__name__} has no {' or '.join(missing)}"
            )
        if batch[1].dim() != 2 or batch[0].is_floating_point():
            raise DataError("seq2seq batches must be token ids: source [B, S] and target [B, T]")

    def _teacher_forced(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        source, target = batch
        logits = model(source, target[:, :-1]).float()
        return logits, target[:, 1:]

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, expected = self._teacher_forced(model, batch)
        loss = F.cross_entropy(logits.transpose(1, 2), expected, ignore_index=0)
        valid = expected != 0
        correct = (logits.detach().argmax(dim=-1) == expected) & valid
        return loss, {"token_accuracy": correct.sum() / valid.sum().clamp_min(1)}

    def new_metrics(self, device: torch.device) -> Seq2SeqMetrics:
        return Seq2SeqMetrics(device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: Seq2SeqMetrics) -> None:
        logits, expected = self._teacher_forced(model, batch)
        valid = expected != 0
        metrics.loss_sum += F.cross_entropy(
            logits.transpose(1, 2), expected, ignore_index=0, reduction="sum"
        ).double()
        metrics.tokens += valid.sum()
        metrics.correct_tokens += ((logits.argmax(dim=-1) == expected) & valid).sum()
        # The target holds <eos>, so matching all its positions is matching the whole sequence.
        decoded = self.decode(model, batch[0], expected.shape[1])
        metrics.exact += (decoded == expected).all(dim=1).sum()
        metrics.sequences += len(expected)
        for row in range(min(EXAMPLES_SHOWN - len(metrics.examples), len(expected))):
            metrics.examples.append([self.vocabulary.decode(ids) for ids in
                                     (batch[0][row].tolist(), expected[row].tolist(),
                                      decoded[row].tolist())])  # fmt: skip

    def decode(self, model: nn.Module, source: torch.Tensor, max_length: int | None = None,
               beam_size: int | None = None) -> torch.Tensor:  # fmt: skip
        """Decoded ids ``[B, max_length]`` (greedy, or beam search when ``beam_size > 1``)."""
        length = max_length or self.max_length
        beams = beam_size or self.beam_size
        if beams == 1:
            return greedy_decode(model, source, length)
        return beam_search(model, source, length, beams, self.length_penalty)

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Decoded token ids ``[B, max_length]`` for source ids (``vocabulary.decode`` reads them)."""
        return self.decode(model, inputs)

    def predict_texts(self, model: nn.Module, texts: list[str], beam_size: int | None = None
                      ) -> list[str]:  # fmt: skip
        """Texts in, decoded texts out: ``task.predict_texts(run.model, ["12 March 2021"])``
        (greedy, or beam search with ``beam_size > 1``)."""
        source = [self.vocabulary.encode(text, where="input") for text in texts]
        device = next(model.parameters()).device
        model.eval()
        decoded = self.decode(model, self.vocabulary.pad(source).to(device), beam_size=beam_size)
        return [self.vocabulary.decode(row.tolist()) for row in decoded]


class DecodedExamples(Callback):
    """At the end of training: validation sources, targets and decodings as a report section,
    and, for models with ``attention_maps``, the cross-attention of one decoded example."""

    def __init__(self, run_dir: Path, task: Seq2Seq) -> None:
        self.run_dir = Path(run_dir)
        self.task = task

    def fit_end(self, trainer: Trainer) -> None:
        examples = trainer.last_details.get("examples") or []
        if not examples:
            return
        from fathom.report import save_section

        metrics = trainer.last_evaluation
        text = (f"Validation exact match {metrics.get('exact_match', 0):.3f}, token accuracy "
                f"{metrics.get('token_accuracy', 0):.3f} (decoding: greedy unless task.beam_size > 1).")  # fmt: skip
        save_section(self.run_dir, "seq2seq", "Decoded validation examples", text=text,
                     headers=["source", "target", "decoded"], rows=examples)  # fmt: skip
        sources = trainer.validation_inputs(1)
        if hasattr(trainer.model, "attention_maps") and sources is not None and len(sources):
            self._cross_attention(trainer.model, sources[0], trainer.device)

    def _cross_attention(self, model: nn.Module, source: torch.Tensor, device: Any) -> None:
        """Which source characters each decoded character attends to (the last decoder layer)."""
        from fathom.report.attention import save_attention_section

        source = source[source != PAD][None].to(device)
        model.eval()
        output = [token for token in self.task.decode(model, source)[0].tolist() if token != PAD]
        produced = output[: output.index(EOS)] if EOS in output else output
        target_input = torch.tensor([[BOS, *produced]], device=device)
        vocabulary = self.task.vocabulary
        labels = [vocabulary.decode([token]) for token in source[0].tolist()]
        rows = [vocabulary.decode([token]) for token in produced] + ["<eos>"]
        save_attention_section(
            self.run_dir, model, (source, target_input), labels,
            "Cross-attention of the last decoder layer on a validation example",
            "Each panel is one head: row i shows which source characters the decoder looks at "
            "while it writes output character i (greedy decoding).", row_labels=rows,
        )  # fmt: skip
