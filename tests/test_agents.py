import random

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from galad.agents import policies
from galad.agents.drrn import DRRNAgent, DRRNNetwork, EncodedState, PrioritizedReplay, Transition


class WordScorer:
    """A HarmScorer whose P(harm) of an action is the first listed value of a word it contains (else 0.1)."""

    threshold = 0.5

    def __init__(self, *word_harm: tuple[str, float], name: str = "word-scorer@1"):
        self.word_harm, self.name = word_harm, name

    def score(self, actions, contexts=None):
        return np.array([next((h for w, h in self.word_harm if w in a), 0.1) for a in actions])


def test_padded_encoding_equals_packed_sequence():
    torch.manual_seed(0)
    net = DRRNNetwork(100, 16, 16)
    rng = random.Random(0)
    seqs = [[rng.randint(1, 99) for _ in range(rng.randint(1, 20))] for _ in range(12)]
    ours = net.encode(seqs, net.obs_encoder)
    lengths = torch.tensor([len(s) for s in seqs])
    padded = pad_sequence([torch.tensor(s) for s in seqs], batch_first=True)
    _, h = net.obs_encoder(pack_padded_sequence(net.embedding(padded), lengths, batch_first=True,
                                                enforce_sorted=False))
    assert torch.allclose(ours, h[-1], atol=1e-6)


def test_q_values_shape_per_state():
    net = DRRNNetwork(50, 8, 8)
    s = EncodedState([1, 2, 3], [4], [5, 6])
    q = net([s, s], [[[1], [2, 3]], [[4]]])
    assert [x.shape[0] for x in q] == [2, 1]


def test_td_update_learns_a_reward():
    torch.manual_seed(0)
    agent = DRRNAgent(20, 8, 8, 1e-2, 0.9, 8, 64, 0.0, 5.0, seed=0)
    s = EncodedState([1, 2], [3], [4])
    for a, r in (([5], 1.0), ([6], 0.0)):
        for _ in range(16):
            agent.memory.push(Transition(s, a, r, s, [], [], True))
    for _ in range(150):
        agent.update()
    q = agent.q_values([s], [[[5], [6]]])[0]
    assert q[0] > q[1] + 0.5


def test_galad_filter_keeps_least_harmful_when_all_flagged():
    p = policies.GaladPolicy(WordScorer(("kill", 0.9), ("hit", 0.5)), 0.39)
    r1, r2 = p.restrict(["o1", "o2"], [["kill troll", "go north"], ["kill troll", "hit troll"]])
    assert r1.kept == ["go north"] and r1.removed == ["kill troll"] and r1.removed_harm == [0.9]
    assert r2.kept == ["hit troll"] and r2.removed == ["kill troll"]


def test_cmps_penalises_flagged_actions():
    (r,) = policies.CMPSPolicy(WordScorer(("kill", 0.9)), 0.39, 10.0).restrict(["o"], [["kill troll", "go north"]])
    assert r.kept == ["kill troll", "go north"] and r.penalties == [10.0, 0.0] and not r.removed


def test_oracle_drops_ground_truth_harm():
    (r,) = policies.OraclePolicy(lambda cands: [[2.0, 0.0]]).restrict(["o"], [["kill troll", "go north"]])
    assert r.kept == ["go north"] and r.removed == ["kill troll"]


def test_cmps_and_galad_flag_at_the_same_tau():
    """Both value-model policies flag at the run's tau (0.39 unless told otherwise), whatever the model card says;
    the policy reports the scorer's identity as its value model."""
    from galad.config import TrainConfig
    from galad.train import make_policy

    scorer = WordScorer(("hit", 0.45), name="card-threshold-0.5")  # P(harm) 0.45: above tau, under the card's 0.5
    cmps = make_policy(TrainConfig(agent="cmps"), scorer=scorer)
    galad = make_policy(TrainConfig(agent="galad"), scorer=scorer)
    assert cmps.threshold == galad.threshold == 0.39
    assert cmps.restrict(["o"], [["hit man"]])[0].penalties == [10.0]
    assert galad.restrict(["o"], [["hit man", "wait"]])[0].removed == ["hit man"]
    assert cmps.value_model == galad.value_model == "card-threshold-0.5"
    assert make_policy(TrainConfig(agent="galad", harm_threshold=0.6), scorer=scorer).threshold == 0.6
    assert make_policy(TrainConfig(agent="drrn")).value_model is None


def test_tests_get_one_torch_thread():
    assert torch.get_num_threads() == 1


@pytest.mark.torch_threads(2)
def test_the_torch_threads_marker_gives_a_test_more():
    assert torch.get_num_threads() == 2


def _t(reward: float, penalty: float = 0.0, action=(1,), next_actions=(), next_penalties=(), done=True):
    s = EncodedState([1, 2], [3], [4])
    return Transition(s, list(action), reward, EncodedState([2, 1], [3], [4]), [list(a) for a in next_actions],
                      list(next_penalties), done, penalty)


def test_replay_batch_is_short_while_priority_memory_is_nearly_empty():
    """As upstream: int(0.5 · 64) from alpha, capped by what alpha holds, and 32 from beta: no top-up."""
    mem = PrioritizedReplay(1000, 0.5)
    for _ in range(100):
        mem.push(_t(0.0))
    for _ in range(3):
        mem.push(_t(1.0), priority=True)
    batch = mem.sample(64, random.Random(0))
    assert len(batch) == 35 and sum(x.reward == 1.0 for x in batch) == 3
    for _ in range(37):
        mem.push(_t(1.0), priority=True)
    batch = mem.sample(64, random.Random(0))  # a full batch once alpha holds its share: 32 + 32
    assert len(batch) == 64 and sum(x.reward == 1.0 for x in batch) == 32
    mem.clear_alpha()
    assert len(mem.alpha) == 0 and len(mem.sample(64, random.Random(0))) == 32
    mem.push(_t(1.0), priority=True)  # refills from the start
    assert mem.alpha_pos == 1 and len(mem.alpha) == 1


@pytest.mark.parametrize("penalty", [10.0, 0.0])
def test_td_loss_regresses_q_minus_penalty_onto_the_penalised_target(penalty):
    """target = r + γ·max(Q(s′,·) − next penalties); regressed = Q(s, a) − penalty (cmps) or Q(s, a) (variant)."""
    torch.manual_seed(0)
    agent = DRRNAgent(20, 8, 8, 1e-3, 0.9, 1, 4, 0.0, 5.0, seed=0)
    t = _t(0.5, penalty, action=(5,), next_actions=((6,), (7, 8)), next_penalties=(10.0, 0.0), done=False)
    agent.memory.push(t)
    nq = agent.q_values([t.next_state], [t.next_actions])[0]
    target = 0.5 + 0.9 * max(float(nq[0]) - 10.0, float(nq[1]))
    q = float(agent.q_values([t.state], [[t.action]])[0][0]) - penalty
    expected = abs(q - target) - 0.5 if abs(q - target) > 1 else 0.5 * (q - target) ** 2
    loss, mean_q = agent.update()
    assert loss == pytest.approx(expected, rel=1e-5) and mean_q == pytest.approx(q, rel=1e-5)


@pytest.mark.parametrize("agent_name, p_flagged", [("cmps", 0.5), ("cmps-persistent", 0.0)])
def test_cmps_fixed_point_in_a_one_state_toy(agent_name, p_flagged):
    """One state, two terminal actions of equal reward, one flagged. Upstream's CMPS regresses Q − 10·flag, so the
    flagged action's raw Q learns the penalty away and softmax(Q − 10·flag) ends near 50/50; the persistent
    variant regresses the raw Q, so the flagged action stays 10 below and is (almost) never taken."""
    from galad.config import TrainConfig
    from galad.train import make_policy

    policy = make_policy(TrainConfig(agent=agent_name), scorer=WordScorer(("kick", 0.9)))
    (r,) = policy.restrict(["o"], [["kick cat", "wait"]])
    assert r.penalties == [10.0, 0.0]
    torch.manual_seed(0)
    agent = DRRNAgent(20, 16, 16, 1e-2, 0.9, 16, 64, 0.0, 5.0, seed=0)
    actions = [[5], [6]]
    for a, pen in zip(actions, r.penalties):
        for _ in range(16):
            agent.memory.push(_t(1.0, pen if policy.penalise_prediction else 0.0, action=a))
    for _ in range(600):
        agent.update()
    q = agent.q_values([EncodedState([1, 2], [3], [4])], [actions])[0]
    p = torch.softmax(q - torch.tensor(r.penalties), 0)
    assert float(p[0]) == pytest.approx(p_flagged, abs=0.1)
    assert float(q[1]) == pytest.approx(1.0, abs=0.3)


def test_repeated_sequences_are_encoded_once_with_the_same_values_and_gradients():
    torch.manual_seed(0)
    net = DRRNNetwork(50, 8, 8)
    seqs = [[1, 2, 3], [4], [1, 2, 3], [], [4], [5, 6]]
    calls = []
    net.act_encoder.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    together = net.encode(seqs, net.act_encoder)
    assert calls == [4]  # four distinct sequences
    one_by_one = torch.cat([net.encode([s], net.act_encoder) for s in seqs])
    assert torch.allclose(together, one_by_one, atol=1e-6)
    together.sum().backward()
    grad_together = net.embedding.weight.grad.clone()
    net.zero_grad()
    one_by_one = torch.cat([net.encode([s], net.act_encoder) for s in seqs])
    one_by_one.sum().backward()
    assert torch.allclose(grad_together, net.embedding.weight.grad, atol=1e-5)
