"""The trainer's protocol semantics, as in the Jiminy Cricket code: env seeds, the priority-memory rule, the early
stop, and where CMPS's penalty goes (the agent-level maths is in ``test_agents.py``)."""

import json

import pytest

import _train_stub
from galad.agents.drrn import DRRNAgent, EncodedState, Transition
from galad.config import TrainConfig
from galad.env.vector import env_seeds
from galad.runs import RunFolder
from test_train import SMALL, lines, only_run, run_cli


def test_every_env_gets_the_run_seed_by_default(monkeypatch):
    import galad.train as train

    got = {}
    monkeypatch.setattr(train, "EnvPool", lambda seeds, **kw: got.setdefault("seeds", list(seeds)))
    train.make_pool(TrainConfig(envs=8, seed=1))
    assert got["seeds"] == [1] * 8  # upstream: all 8 envs at seed 1
    assert env_seeds(3, 5, distinct=True) == [5, 6, 7]


def _bare_trainer(envs: int = 2):
    """A Trainer's bookkeeping alone (no envs): enough for the priority-memory rule."""
    from galad.train import Trainer, TrainerState

    tr = Trainer.__new__(Trainer)
    tr.state = TrainerState(envs)
    tr.agent = DRRNAgent(10, 4, 4, 1e-3, 0.9, 4, 100, 0.5, 5.0, seed=0)
    return tr


def _transition(tag: float) -> Transition:
    s = EncodedState([1], [1], [1])
    return Transition(s, [1], tag, s, [], [], True)


def test_priority_memory_rule_max_score_and_clear_on_new_high():
    """An episode enters alpha when its max score (not its final score) is >= the highest score any env has
    reached at any step; every new high empties alpha; the best starts at 0 (upstream's ``max_score``)."""
    tr = _bare_trainer()
    st, mem = tr.state, tr.agent.memory
    ep0, ep1 = st.episodes
    # env 0: reaches 5 then ends at 2 (max 5, final 2) -> new high 5, enters alpha
    for score in (0, 5, 2):
        tr._track_score(ep0, score)
    st.finished[0] = (ep0.max_score, [_transition(0.0), _transition(1.0)])
    # env 1: an episode whose max is 3 < 5 -> stays out
    for score in (1, 3):
        tr._track_score(ep1, score)
    st.finished[1] = (ep1.max_score, [_transition(2.0)])
    tr._decide_priority(0)
    tr._decide_priority(1)
    assert [t.reward for t in mem.alpha] == [0.0, 1.0] and st.max_score_seen == 5
    assert st.finished == [None, None]
    # a tie with the best enters too
    st.finished[1] = (5, [_transition(3.0)])
    tr._decide_priority(1)
    assert [t.reward for t in mem.alpha] == [0.0, 1.0, 3.0]
    # a new high at any step of any env clears alpha
    tr._track_score(ep1, 6)
    assert mem.alpha == [] and st.max_score_seen == 6
    # no score above 0 yet: an episode at max 0 ties upstream's initial best of 0 and enters
    tr2 = _bare_trainer()
    tr2._track_score(tr2.state.episodes[0], -1)
    tr2.state.finished[0] = (tr2.state.episodes[0].max_score, [_transition(4.0)])
    tr2._decide_priority(0)
    assert [t.reward for t in tr2.agent.memory.alpha] == [4.0] and tr2.state.max_score_seen == 0


def test_early_stop_when_no_env_scored_above_the_start(tmp_path):
    """At ``early_stop_step`` a run in which no env has scored above the starting score stops there (upstream: step
    5,000); one that has scored, or with 0, runs to the end."""
    def run(name, *extra):
        r = run_cli("train", "--agent", "drrn", "--steps", "12", "--run-dir", str(tmp_path / name), "--seed", "2",
                    *SMALL, *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        return only_run(tmp_path / name)

    stopped = run("stop", "--early-stop-step", "4")
    recs = [json.loads(x) for env in (0, 1) for x in lines(stopped, env)]
    assert max(r["score"] for r in recs) == 0  # the demo gives no point in 4 random steps at this seed
    assert len(lines(stopped, 0)) == 4 and len(lines(stopped, 1)) == 4
    assert json.loads((stopped / "summary.json").read_text())["stopped_early_at"] == 4
    full = run("full", "--early-stop-step", "0")
    assert len(lines(full, 0)) == 12 and json.loads((full / "summary.json").read_text())["stopped_early_at"] is None
    assert lines(full, 0)[:4] == lines(stopped, 0)  # the same run up to the stop


def _cmps_run(tmp_path, monkeypatch, agent: str, weight: float):
    """15 steps of 2 envs; the transcripts' chosen lines and the transitions stored in replay."""
    from galad.train import make_trainer

    import galad.train as train

    monkeypatch.setattr(train, "make_candidate_source", lambda cfg, disk_cache=False: _FlaggedFirst())
    monkeypatch.setattr(train, "prepare_value_model", lambda cfg: None)
    monkeypatch.setattr(train, "load_value_model", lambda cfg, score_cache=True: _train_stub.KeywordScorer())
    cfg = TrainConfig(agent=agent, cmps_weight=weight, steps=15, envs=2, embedding_dim=16, hidden_dim=16,
                      batch_size=8, memory_size=200, max_tokens=24, episode_steps=20, run_dir=str(tmp_path),
                      seed=3).validate()
    tr = make_trainer(cfg, RunFolder.new(cfg), disk_cache=False)
    try:
        for _ in range(cfg.steps):
            tr.train_step()
        stored = list(tr.agent.memory.beta)
    finally:
        tr.close()
    chosen = [json.loads(x) for env in (0, 1) for x in lines(only_run(tmp_path), env)]
    flagged = [c for c in chosen if c["penalties"][c["candidates"].index(c["action"])] > 0]
    return chosen, flagged, stored


@pytest.mark.parametrize("agent", ["cmps", "cmps-persistent"])
def test_cmps_acts_on_q_minus_penalty(tmp_path, monkeypatch, agent):
    """Both CMPS forms act on softmax(Q − 10·flag): with Q near 0 a flagged action is (almost) never taken (2 of
    the 4 candidates are flagged, so unshaped sampling would take one about 15 times in 30)."""
    chosen, flagged, _ = _cmps_run(tmp_path, monkeypatch, agent, 10.0)
    assert len(chosen) == 30 and len(flagged) <= 1


@pytest.mark.parametrize("agent", ["cmps", "cmps-persistent"])
def test_cmps_stores_the_penalties_the_td_update_uses(tmp_path, monkeypatch, agent):
    """cmps stores the taken action's penalty (the update regresses Q − penalty), cmps-persistent stores 0; both
    store the next state's penalties for the target. A small weight lets flagged actions be taken."""
    chosen, flagged, stored = _cmps_run(tmp_path, monkeypatch, agent, 0.5)
    assert flagged, "a flagged action should be taken at weight 0.5"
    assert all(t.next_penalties == [0.5, 0.5, 0.0, 0.0] for t in stored if not t.done)
    # every step's transition is stored but the last step's, still waiting for its next state's candidates
    done = [c for c in chosen if c["step"] < 14 or c["terminated"] or c["truncated"]]
    assert len(stored) == len(done)
    n_flagged = sum(c in flagged for c in done) if agent == "cmps" else 0
    assert sorted(t.penalty for t in stored) == [0.0] * (len(done) - n_flagged) + [0.5] * n_flagged


class _FlaggedFirst:
    """Two harmful and two harmless candidates in every state (the keyword scorer flags kick and break)."""

    def propose(self, states):
        return [["kick cat", "break door", "wait", "look"] for _ in states]


def test_value_model_text_writes_go_before_a_bare_direction():
    """As upstream's CMPS input: ``go`` before an action that is exactly one of its 12 direction words."""
    from galad.values.base import action_text

    assert action_text("north") == "I go north." and action_text("out") == "I go out."
    assert action_text("n") == "I n." and action_text("go north") == "I go north."
    assert action_text("north door") == "I north door." and action_text("kill troll") == "I kill troll."
