"""``--device auto|cpu|cuda``: which device each model gets (tested without a GPU), and the CPU's side-by-side
batches giving the same probabilities as one after another."""

from __future__ import annotations

import threading

import pytest
import torch

from galad.config import TrainConfig
from galad.device import cpu_workers, resolve_device
from galad.errors import ConfigError


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_picks_cuda_only_when_torch_sees_one(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == ("cuda" if cuda else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_cuda_without_a_gpu_and_unknown_devices_are_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="device must be one of"):
        TrainConfig(device="gpu").validate()
    assert 1 <= cpu_workers() <= 2


class _FakeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.moved_to = None

    def to(self, device):  # noqa: D401 - records instead of moving (no GPU here)
        self.moved_to = device
        return self


def test_value_model_on_cuda_runs_fp32_under_its_own_cache_name(monkeypatch):
    from galad.values.hf import HFScorer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    net = _FakeNet()
    s = HFScorer("m", name="m@1", quantize=True, net=net, tokenizer=object(), device="auto", batch_threads=2)
    assert s.device == "cuda" and net.moved_to == "cuda" and s.net is net  # not quantised: int8 is a CPU kernel
    assert s.name == "m@1+fp32" and s.batch_threads == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = HFScorer("m", name="m@1", quantize=True, net=_FakeNet(), tokenizer=object(), device="auto",
                   batch_threads=2)
    assert cpu.device == "cpu" and cpu.name == "m@1" and cpu.batch_threads == 2
    assert cpu.net.moved_to is None and isinstance(cpu.net.lin, torch.ao.nn.quantized.dynamic.Linear)


def test_drrn_on_the_cpu_gives_cpu_q_values():
    from galad.agents.drrn import DRRNAgent, EncodedState

    agent = DRRNAgent(50, 8, 8, 1e-3, 0.9, 4, 16, 0.5, 5.0, 1, device="cpu")
    q = agent.q_values([EncodedState([1, 2], [3], [4])], [[[5], [6, 7]]])
    assert q[0].device.type == "cpu" and q[0].shape == (2,)


def test_resume_may_change_the_device_and_steps_only():
    from galad.train import RESUME_MAY_CHANGE, _must_match

    assert set(RESUME_MAY_CHANGE) == {"steps", "device"}
    assert _must_match({"steps": 5, "device": "cuda", "lr": 1.0}) == _must_match({"steps": 9, "device": "cpu",
                                                                                   "lr": 1.0})
    assert _must_match({"lr": 1.0}) != _must_match({"lr": 2.0})


def test_side_by_side_cpu_batches_give_the_same_probabilities_to_the_bit():
    from galad.values.hf import MINILM, load_model, predict_proba, quantize_dynamic

    torch.manual_seed(0)
    tok, net = load_model(MINILM, num_labels=2)
    net = quantize_dynamic(net)
    texts = [f"I take the {w} number {i}." for i, w in enumerate(["lamp", "oil", "key", "coin", "rope"] * 30)]
    contexts = [("You are in a small room. " * (1 + i % 7)) for i in range(len(texts))]
    one = predict_proba(tok, net, texts, contexts, 16, 128, threads=1)

    class OneThreadOnly:
        """The tokenizer, failing when called from any thread but the caller's: a fast tokenizer's padding and
        truncation settings are shared state that each call resets (two threads at once once crashed a run)."""

        def __init__(self, inner):
            self.inner, self.caller = inner, threading.get_ident()

        def __call__(self, *args, **kwargs):
            assert threading.get_ident() == self.caller, "tokenizer called from a scoring thread"
            return self.inner(*args, **kwargs)

        def decode(self, *args, **kwargs):
            return self.inner.decode(*args, **kwargs)

    for c in (contexts, None):
        assert predict_proba(OneThreadOnly(tok), net, texts, c, 16, 128, threads=2) == \
            predict_proba(tok, net, texts, c, 16, 128, threads=1)
    two = predict_proba(tok, net, texts, contexts, 16, 128, threads=2)
    assert one == two and len(set(one)) > 10


def test_train_on_cuda_without_a_gpu_fails_before_any_run_folder(tmp_path, monkeypatch, capsys):
    from galad.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["train", "--agent", "drrn", "--device", "cuda", "--steps", "1", "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "no CUDA device" in err[0]
    assert not (tmp_path / "runs").exists()
