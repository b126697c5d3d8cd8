"""learn: encoder features and standardization, episode -> transition semantics, TD targets at terminations."""
import json
import math
import re

import numpy as np
import pytest
import torch

from learn.algos import CQL, TD3BC, cql_penalty, poor_action_weights
from learn.config import ALGO_CONFIGS, ConfigError, TrainConfig
from learn.data import Batch, ReplayBuffer, effective_drives, return_weights
from learn.encoding import FEATURE_DIM, FEATURE_NAMES, Encoder, features
from racecar_env import spec
from racecar_env.episode import Episode


def obs_at(x, y, yaw, **fields):
    o = np.zeros(spec.OBS_DIM, np.float32)
    o[spec.OBS_INDEX["x"]], o[spec.OBS_INDEX["y"]] = x, y
    o[spec.OBS_INDEX["sin_yaw"]], o[spec.OBS_INDEX["cos_yaw"]] = math.sin(yaw), math.cos(yaw)
    for k, v in fields.items():
        o[spec.OBS_INDEX[k]] = v
    return o


def feat(f, name):
    return f[..., FEATURE_NAMES.index(name)]


def test_policy_features_are_the_non_pose_fields_by_name():
    o = obs_at(3.0, 4.0, 0.3, v_forward=1.5, yaw_rate=-0.2, lidar_05=2.5, route_3_left=-0.7, goal_fwd=4.0)
    f = features(o)
    assert set(FEATURE_NAMES).isdisjoint(f.name for f in spec.GROUPS["pose"])   # no absolute position or heading
    assert FEATURE_NAMES == spec.POLICY_FIELDS
    assert feat(f, "v_forward") == pytest.approx(1.5) and feat(f, "yaw_rate") == pytest.approx(-0.2)
    assert feat(f, "lidar_05") == pytest.approx(2.5) and feat(f, "route_3_left") == pytest.approx(-0.7)
    assert feat(f, "goal_fwd") == pytest.approx(4.0)


def test_batched_features_equal_row_by_row():
    obs = np.random.default_rng(0).uniform(-5, 5, (7, spec.OBS_DIM)).astype(np.float32)
    batched = features(obs)
    assert batched.shape == (7, FEATURE_DIM)
    for i in range(7):
        np.testing.assert_array_equal(batched[i], features(obs[i]))
    with pytest.raises(ValueError, match="last dim"):
        features(obs[:, :-1])


def test_encoder_standardizes_and_leaves_constant_features_unscaled():
    rng = np.random.default_rng(1)
    raw = rng.normal(3.0, 2.0, (500, FEATURE_DIM)).astype(np.float32)
    raw[:, 5] = 7.0                                  # a feature that never varies
    enc = Encoder.fit(raw)
    z = enc.normalize(raw)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(z[:, 5], 0.0)
    others = np.delete(z, 5, axis=1)
    np.testing.assert_allclose(others.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(others.std(0), 1.0, atol=1e-3)
    back = Encoder.from_state_dict(enc.state_dict())
    np.testing.assert_array_equal(back.normalize(raw), z)
    # constant in training, varying at evaluation: a change of 0.5 stays 0.5, it is not blown up by a tiny std
    test = raw[:3].copy()
    test[:, 5] = [7.5, 6.5, 7.0]
    np.testing.assert_allclose(enc.normalize(test)[:, 5], [0.5, -0.5, 0.0], atol=1e-6)


def test_encoder_refuses_other_feature_sets():
    d = Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)).state_dict()
    d["feature_names"] = d["feature_names"][::-1]
    with pytest.raises(ValueError, match="retrain"):
        Encoder.from_state_dict(d, source="x.pt")


@pytest.mark.parametrize("key, value, needle", [
    ("mean", np.full(FEATURE_DIM, np.nan), "encoder.mean is not finite"),
    ("mean", np.full(FEATURE_DIM, 1e300), "encoder.mean is not finite"),    # beyond float32
    ("std", np.zeros(FEATURE_DIM), "encoder.std must be > 0"),
    ("std", np.full(FEATURE_DIM, -1.0), "encoder.std must be > 0"),
    ("std", np.full(FEATURE_DIM, np.inf), "encoder.std is not finite"),
    ("std", np.ones(FEATURE_DIM + 1), f"encoder.std must be {FEATURE_DIM} numbers, got shape ({FEATURE_DIM + 1},)"),
    ("mean", None, "encoder.mean must be"),
])
def test_encoder_refuses_statistics_that_would_blind_the_policy(key, value, needle):
    d = Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)).state_dict()
    d[key] = None if value is None else torch.from_numpy(value)
    with pytest.raises(ValueError, match="^x.pt: " + re.escape(needle)):
        Encoder.from_state_dict(d, source="x.pt")


def make_episode(T, terminated, start=0.0):
    obs = np.stack([obs_at(start + t, 0.0, 0.0, goal_fwd=100.0 - start - t) for t in range(T + 1)])
    goal = np.tile(np.array([100.0, 0.0], np.float32), (T + 1, 1))
    term, trunc = np.zeros(T, bool), np.zeros(T, bool)
    (term if terminated else trunc)[-1] = True
    return Episode(observations={"observation": obs, "achieved_goal": obs[:, :2], "desired_goal": goal},
                   actions=np.full((T, 2), 0.5, np.float32), rewards=np.arange(T, dtype=np.float64),
                   terminations=term, truncations=trunc, infos={})


def test_transitions_pair_obs_with_next_obs_and_mark_only_terminations_done():
    eps = [make_episode(4, terminated=True), make_episode(3, terminated=False, start=50.0)]
    tr = ReplayBuffer.from_episodes(eps, gamma=0.5)
    assert len(tr) == 7
    so, sa, sr, sn, sd, sm = tr._sl
    d = tr.data
    np.testing.assert_array_equal(d[:, sd].numpy(), [0, 0, 0, 1, 0, 0, 0])   # truncation bootstraps
    np.testing.assert_array_equal(d[:, sr].numpy(), [0, 1, 2, 3, 0, 1, 2])
    # Cal-QL's bound: each drive's own discounted reward-to-go, never summed across the episode boundary
    np.testing.assert_allclose(d[:, sm].numpy(), [1.375, 2.75, 3.5, 3, 1, 2, 2])
    assert not ReplayBuffer.from_episodes(eps).all().mc_return.any()          # BC: no discount, no bound
    # next_obs of step t is obs of step t+1, also across the last step (T+1 rows), never the next episode's
    raw_next = d[:, sn].numpy() * tr.encoder.std + tr.encoder.mean
    np.testing.assert_allclose(feat(raw_next, "goal_fwd"), [99, 98, 97, 96, 49, 48, 47], atol=1e-3)
    b = tr.sample(32, torch.Generator().manual_seed(0))
    assert b.obs.shape == (32, FEATURE_DIM) and b.action.shape == (32, 2) and b.done.shape == (32,)


def test_transitions_refuse_t_rows_of_observations():
    ep = make_episode(4, terminated=True)
    ep.observations = {k: v[:-1] for k, v in ep.observations.items()}
    with pytest.raises(ValueError, match="expected T\\+1"):
        ReplayBuffer.from_episodes([ep])


def drive(track, ret, T=5, finished=None):
    """A T-step episode on `track` whose rewards sum to `ret`; it reached the goal (by default: if ret > 0) or
    crashed."""
    ep = make_episode(T, terminated=True)
    ep.rewards = np.full(T, ret / T)
    ep.infos = {"is_success": (np.arange(T + 1) == T) & (ret > 0 if finished is None else finished)}
    ep.track = track
    return ep


def test_return_weighting_draws_the_good_drives_more_and_keeps_the_crashes():
    from racecar_env.tracks import load_track
    s = load_track("s_curve")
    eps = [drive(s, 27.0), drive(s, -3.0), drive(s, 27.2), drive(s, -8.0)]
    w = return_weights(eps, 0.1).reshape(4, 5)
    assert (w == w[:, :1]).all()                                       # every step of a drive alike
    per = w[:, 0] / w[:, 0].max()
    assert per[0] == pytest.approx(math.exp(-0.2 / 2.72))               # near-equal drives stay near equal
    assert per[1] == pytest.approx(math.exp(-30.2 / 2.72))              # a crash: rarely, but still drawn
    assert 0 < per[3] < per[1] < 1e-4
    assert effective_drives(eps, 0.1) == pytest.approx(2.0, abs=0.01)   # the two good drives
    assert effective_drives(eps, 0.0) == 4
    # an expert data set (returns within 0.2 of each other) keeps ~every drive
    assert effective_drives([drive(s, 27.2 + 0.02 * i) for i in range(10)], 0.1) > 9.9


def test_return_weighting_compares_drives_on_roads_of_their_own_length():
    from racecar_env.tracks import generate
    long_road, short_road = generate(0), generate(1)                   # 37.4 m and 25.3 m of centre-line
    eps = []
    for road, length in ((long_road, 37.4), (short_road, 25.3)):
        eps += [drive(road, length + 10 - 4), drive(road, 0.5 * length - 10, finished=False),
                drive(road, 0.2 * length - 10, finished=False)]
    per = return_weights(eps, 0.1).reshape(6, 5)[:, 0]
    # the goal on the short road weighs as much as on the long one, where raw returns would put it e^2.4 below
    assert per[3] / per[0] == pytest.approx(1.0, abs=0.01)
    assert per[1] / per[0] < 0.01 and per[4] / per[3] < 0.01            # and both far above the crashes


def test_weighted_sampling_draws_in_proportion_and_never_a_zero_weight():
    rng = np.random.default_rng(0)
    n = 6
    arrays = (rng.standard_normal((n, FEATURE_DIM)).astype(np.float32), np.zeros((n, 2), np.float32),
              np.arange(n, dtype=np.float32), np.zeros((n, FEATURE_DIM), np.float32), np.zeros(n, np.float32))
    enc = Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM))
    weights = np.array([1.0, 0.0, 2.0, 0.0, 1.0, 4.0])
    buf = ReplayBuffer(*arrays, encoder=enc, weights=weights)
    rows = buf.sample(200_000, torch.Generator().manual_seed(1)).reward.numpy().astype(int)
    share = np.bincount(rows, minlength=n) / len(rows)
    np.testing.assert_allclose(share, weights / weights.sum(), atol=0.005)
    assert share[1] == share[3] == 0
    again = buf.sample(64, torch.Generator().manual_seed(7)).reward
    assert torch.equal(again, buf.sample(64, torch.Generator().manual_seed(7)).reward)   # seeded: reproducible
    for bad in (np.zeros(n), np.array([1.0, -1, 1, 1, 1, 1]), np.ones(n - 1), np.array([1.0, np.nan, 1, 1, 1, 1])):
        with pytest.raises(ValueError, match="^sampling weights: expected 6 finite non-negative"):
            ReplayBuffer(*arrays, encoder=enc, weights=bad)


def _constant_critic(critic, value):
    with torch.no_grad():
        for layer in critic.layers:
            layer.weight.zero_()
            layer.bias.zero_()
        critic.layers[-1].bias.fill_(value)


@pytest.mark.parametrize("algo_cls, algo", [(TD3BC, "td3bc"), (CQL, "cql")])
@pytest.mark.parametrize("done", [0.0, 1.0])
def test_td_target_stops_at_terminations_and_bootstraps_otherwise(algo_cls, algo, done):
    agent = algo_cls(ALGO_CONFIGS[algo](gamma=0.9), FEATURE_DIM)
    _constant_critic(agent.critic_target, 5.0)
    b = Batch(torch.zeros(1, FEATURE_DIM), torch.zeros(1, 2), torch.tensor([2.0]), torch.zeros(1, FEATURE_DIM),
              torch.tensor([done]))
    m = agent.update(b)
    expected = 2.0 if done else 2.0 + 0.9 * 5.0
    assert float(m["q/target"]) == pytest.approx(expected, rel=1e-6)


def test_config_rejects_bad_values_with_the_field_name():
    with pytest.raises(ConfigError, match="algo must be one of"):
        TrainConfig.build(algo="ppo")
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        TrainConfig.build(batch_size=0)
    with pytest.raises(ConfigError, match="alpha must be a finite number"):
        TrainConfig.build(algo="td3bc", alpha=float("nan"))
    with pytest.raises(ConfigError, match="expectile must be <= 1"):
        TrainConfig.build(algo="iql", expectile=1.5)
    with pytest.raises(ConfigError, match="lr_typo \\(unknown\\)"):
        TrainConfig.from_dict({"lr_typo": 1})
    with pytest.raises(ConfigError, match="n_critics \\(a setting of td3bc, not cql\\)"):
        TrainConfig.build(algo="cql", n_critics=4)
    with pytest.raises(ConfigError, match="hidden must be comma-separated"):
        TrainConfig.build(hidden="256,x")
    with pytest.raises(ConfigError, match="final_eval_episodes must be <= 10000"):   # not an endless test at the end
        TrainConfig.build(final_eval_episodes=10 ** 8)
    with pytest.raises(ConfigError, match="steer_dropout must be <= 1"):
        TrainConfig.build(algo="bc", steer_dropout=1.5)


def test_settings_compare_in_the_configs_types_and_canonical_dataset_names():
    from learn.config import same_value
    assert same_value("hidden", "256, 256", [256, 256]) and same_value("hidden", (256, 256), [256, 256])
    assert same_value("dataset", "racecar/ks4-v0", "ks4") and not same_value("dataset", "ks4", "e4")
    assert same_value("alpha", "0.20", 0.2) and not same_value("alpha", 0.9, 0.2)
    assert same_value("cql_lagrange", "true", True) and same_value("seed", "3", 3)
    assert not same_value("alpha", 0.2, None) and same_value("alpha", None, None)
    assert not same_value("batch_size", "0", 1)      # an invalid value equals only itself


def test_seed_range_is_the_other_commands_one():
    from racecar_env.cli import MAX_SEED
    assert TrainConfig.build(seed=MAX_SEED).run.seed == MAX_SEED
    with pytest.raises(ConfigError, match=f"seed must be <= {MAX_SEED}, got {MAX_SEED + 1}"):
        TrainConfig.build(seed=MAX_SEED + 1)
    with pytest.raises(ConfigError, match="seed must be >= 0"):
        TrainConfig.build(seed=-1)


def test_memory_estimate_grows_with_the_networks_and_the_batch():
    from learn.train import memory_needed
    small = TrainConfig.build(algo="td3bc", hidden="256,256", batch_size=256)
    nets, batch = memory_needed(small)
    assert 1e6 < nets < 1e8 and batch < 1e7           # the defaults: a few MB
    wide = memory_needed(small.replace(hidden="3000000,3000000"))[0]
    assert wide > 4e14                                  # 2 critics + actor, 3e6 x 3e6 each, x16 bytes
    assert memory_needed(small.replace(batch_size=10 ** 12))[1] > 1e15


def test_every_algorithm_gets_the_same_budget_and_cadence():
    totals = {a: TrainConfig.build(algo=a).total_steps for a in ALGO_CONFIGS}
    assert len(set(totals.values())) == 1, totals
    assert len({TrainConfig.build(algo=a).run.eval_every for a in ALGO_CONFIGS}) == 1


def test_early_stop_needs_patience_evaluations_in_a_row_after_pretraining():
    from learn.train import _stop_early

    def hist(*pairs):
        return [{"step": s, "success_rate": r} for s, r in pairs]

    cfg = TrainConfig.build(algo="td3bc", bc_steps=1000, stop_at_success=0.9, stop_patience=2)
    assert not _stop_early(cfg, hist((1000, 1.0), (1500, 1.0)))     # the BC-phase evaluation is not the algorithm's
    assert _stop_early(cfg, hist((1000, 1.0), (1500, 0.9), (2000, 1.0)))
    assert not _stop_early(cfg, hist((1500, 1.0), (2000, 0.8), (2500, 1.0)))   # the run of good ones was broken
    assert not _stop_early(TrainConfig.build(algo="td3bc", bc_steps=1000),            # off by default
                           hist((1500, 1.0), (2000, 1.0), (2500, 1.0)))
    bc = TrainConfig.build(algo="bc", stop_at_success=1.0, stop_patience=1)
    assert _stop_early(bc, hist((500, 1.0)))                           # BC's own evaluations count from the start
    with pytest.raises(ConfigError, match="stop_at_success"):
        TrainConfig.build(stop_at_success=1.5)


def test_bc_has_no_critic_settings_but_reads_configs_that_carried_them(tmp_path):
    with pytest.raises(ConfigError, match="gamma \\(a setting of td3bc, cql, iql, not bc\\)"):
        TrainConfig.build(algo="bc", gamma=0.9)
    old = {**TrainConfig.build(algo="bc", seed=2).to_dict(), "gamma": 0.99, "tau": 0.005, "critic_lr": 3e-4,
           "critic_layernorm": False, "reward_scale": 1.0}     # as BC runs saved them before CriticConfig
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = TrainConfig.load(tmp_path / "config.json")
    assert cfg == TrainConfig.build(algo="bc", seed=2) and not hasattr(cfg.algo, "gamma")
    with pytest.raises(ConfigError, match="gamma"):            # a config given (not saved) is still refused
        TrainConfig.from_dict(old)


@pytest.mark.parametrize("algo, setting, then, now", [("cql", "actor_average", 0.0, 0.005),
                                                      ("cql", "return_weighting", 0.0, 0.3),
                                                      ("td3bc", "steer_dropout", 0.0, 0.2)])
def test_a_saved_config_without_a_later_setting_keeps_the_behaviour_it_was_trained_with(algo, setting, then, now,
                                                                                        tmp_path):
    """Runs from before actor_average existed evaluated CQL's live actor, CQL sampled every transition alike before
    return_weighting, and TD3+BC's actor saw the steering angle in every sample before steer_dropout; today's
    defaults must not be read into their config.json (a sweep would call them done with today's settings; a resume
    would expect two actors, or change what the actor sees)."""
    old = TrainConfig.build(algo=algo).to_dict()
    del old[setting]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert getattr(TrainConfig.load(tmp_path / "config.json").algo, setting) == then
    assert getattr(TrainConfig.build(algo=algo).algo, setting) == now    # what a new run gets


def test_config_round_trips_flat_json():
    cfg = TrainConfig.build(algo="td3bc", alpha=0.5, hidden="64,64", seed=3)
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.algo.hidden == (64, 64) and again.run.out == "runs/s_expert_td3bc_s3"


def test_expectile_loss_weighs_underestimates_by_tau():
    from learn.algos import expectile_loss
    diff = torch.tensor([2.0, -2.0])                    # target - prediction: one under-, one over-estimate
    assert float(expectile_loss(diff, 0.7)) == pytest.approx((0.7 * 4 + 0.3 * 4) / 2)
    assert float(expectile_loss(torch.tensor([2.0]), 0.9)) == pytest.approx(0.9 * 4)
    assert float(expectile_loss(torch.tensor([-2.0]), 0.9)) == pytest.approx(0.1 * 4)
    # minimising it over a constant v gives the tau-expectile of the samples: above the mean for tau > 0.5
    samples = torch.tensor([0.0, 1.0, 2.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        expectile_loss(samples - v, 0.9).backward()
        opt.step()
    assert float(v.detach()) > float(samples.mean()) + 1.0


def test_advantage_weights_are_exponential_and_capped():
    from learn.algos import advantage_weights
    w = advantage_weights(torch.tensor([-1.0, 0.0, 1.0, 10.0]), beta=2.0, max_weight=50.0)
    np.testing.assert_allclose(w.numpy(), [math.exp(-2), 1.0, math.exp(2), 50.0], rtol=1e-6)


@pytest.mark.parametrize("layernorm", [False, True])
def test_ensemble_critic_equals_separate_critics(layernorm):
    from learn.nets import EnsembleCritic
    torch.manual_seed(0)
    ens = EnsembleCritic(FEATURE_DIM, 2, (32, 32), n=3, layernorm=layernorm)
    if layernorm:   # members with their own gains and biases, not the initial ones
        with torch.no_grad():
            for norm in ens.norms:
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.5, 0.5)
    obs, act = torch.randn(5, FEATURE_DIM), torch.rand(5, 2) * 2 - 1
    q = ens(obs, act)
    assert q.shape == (3, 5)
    x = torch.cat([obs, act], -1)
    for m in range(3):   # member m as an ordinary MLP (torch's own LayerNorm) with its own slice of the weights
        h = x
        for i, layer in enumerate(ens.layers):
            h = h @ layer.weight[m] + layer.bias[m]
            if i < len(ens.layers) - 1:
                if layernorm:
                    ln = torch.nn.LayerNorm(h.shape[-1])
                    with torch.no_grad():
                        ln.weight.copy_(ens.norms[i].weight[m, 0])
                        ln.bias.copy_(ens.norms[i].bias[m, 0])
                    h = ln(h)
                h = torch.relu(h)
        torch.testing.assert_close(q[m], h.squeeze(-1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ens(obs, act, members=1)[0], q[0])
    many = torch.rand(5, 4, 2) * 2 - 1   # K actions per state (CQL's sampled actions): Q of each, per state
    torch.testing.assert_close(ens(obs, many), torch.stack([ens(obs, many[:, k]) for k in range(4)], -1))


def test_cql_max_backup_bootstraps_from_the_best_policy_sample():
    """Q'(s', a) = a_0 (the steering): the max-backup target takes the largest of the n samples, the default one
    sample; both stop at terminations."""
    torch.manual_seed(0)
    cfgs = [ALGO_CONFIGS["cql"](gamma=0.5, cql_n_actions=8, cql_max_target_backup=mb) for mb in (False, True)]
    b = Batch(torch.zeros(64, FEATURE_DIM), torch.zeros(64, 2), torch.zeros(64), torch.zeros(64, FEATURE_DIM),
              torch.zeros(64))
    targets = []
    for cfg in cfgs:
        torch.manual_seed(1)
        agent = CQL(cfg, FEATURE_DIM)
        _constant_critic(agent.critic_target, 0.0)
        with torch.no_grad():
            agent.critic_target.layers[0].weight[:, FEATURE_DIM, 0] = 1.0   # h0 = relu(steering), Q' = h0
            agent.critic_target.layers[1].weight[:, 0, 0] = 1.0
            agent.critic_target.layers[2].weight[:, 0, 0] = 1.0
        targets.append(float(agent.update(b)["q/target"]))
    one, best = targets
    assert 0 < one < best < 0.5        # the mean of max(0, a) over one sample < over the best of 8, all < gamma


def _steering_critic(critic):
    """Q(s, a) = steering on [-1, 1], in every member."""
    _constant_critic(critic, 0.0)
    with torch.no_grad():
        critic.layers[0].weight[:, FEATURE_DIM, 0] = 1.0    # h0 = relu(steering + 1)
        critic.layers[0].bias[:, :, 0] = 1.0
        critic.layers[1].weight[:, 0, 0] = 1.0
        critic.layers[2].weight[:, 0, 0] = 1.0
        critic.layers[2].bias.fill_(-1.0)


def test_cql_uniform_proposal_takes_the_soft_maximum_over_uniform_actions_only():
    """Q(s, a) = steering: with the uniform proposal the soft maximum runs over the data action (steering 0) and 3n
    uniform actions, so the gap is log((1 + 3n E[exp U]) / (1 + 3n)), U ~ U(-1, 1), E[exp U] = sinh 1, wherever the
    policy is; with the mixed proposal it moves with the policy (here pushed to full right lock, Q = -1). Calibration
    needs policy samples, so it is refused with the uniform proposal."""
    n = 10
    b = Batch(torch.zeros(512, FEATURE_DIM), torch.zeros(512, 2), torch.zeros(512), torch.zeros(512, FEATURE_DIM),
              torch.zeros(512))
    gaps = {}
    for proposal in ("uniform", "mixed"):
        torch.manual_seed(0)
        agent = CQL(ALGO_CONFIGS["cql"](cql_n_actions=n, cql_proposal=proposal, actor_average=0.0), FEATURE_DIM)
        _steering_critic(agent.critic)
        with torch.no_grad():
            agent.actor_live.head.weight.zero_()                       # the policy: steering ~ -1, narrow
            agent.actor_live.head.bias.copy_(torch.tensor([-8.0, 0.0, -5.0, -5.0]))
        gaps[proposal] = float(agent.update(b)["cql/penalty"])
    expected = math.log((1 + 3 * n * math.sinh(1.0)) / (1 + 3 * n))
    assert gaps["uniform"] == pytest.approx(expected, abs=0.02)
    assert gaps["mixed"] < expected - 0.1    # 2n of its 3n samples sit at Q = -1
    with pytest.raises(ConfigError, match="cql_calibrated.*uniform"):
        ALGO_CONFIGS["cql"](cql_proposal="uniform", cql_calibrated=True)


def test_cql_policy_bc_pulls_the_actor_to_the_data_against_q():
    """Q = steering, every data action steers straight, the critic frozen. The paper's SAC actor climbs Q to full
    left lock; the DDPG+BC extraction (--policy-bc w) stops where the pull to the data balances Q's gradient scaled
    by w / mean|Q| (the squared error is averaged over the 2 action dimensions): a = w / a, a = sqrt(w) = 0.45 for
    w = 0.2. Its TD target bootstraps from the actor's mean action."""
    b = Batch(torch.zeros(64, FEATURE_DIM), torch.zeros(64, 2), torch.zeros(64), torch.zeros(64, FEATURE_DIM),
              torch.zeros(64))
    steer = {}
    for w in (0.0, 0.2):
        torch.manual_seed(0)
        cfg = ALGO_CONFIGS["cql"](policy_bc=w, cql_n_actions=1, critic_lr=0.0, actor_lr=3e-3, temperature_lr=0.0,
                                  init_temperature=1e-4, actor_average=0.0)
        agent = CQL(cfg, FEATURE_DIM)
        _steering_critic(agent.critic)
        _steering_critic(agent.critic_target)
        for _ in range(300):
            out = agent.update(b)
        with torch.no_grad():
            steer[w] = float(agent.actor(b.obs[:1])[0, 0])
        if w:   # Q' at the mean action, gamma * steering (no reward): the target is deterministic
            assert float(out["q/target"]) == pytest.approx(agent.cfg.gamma * steer[w], abs=0.02), out["q/target"]
    assert steer[0.0] > 0.9, steer
    assert steer[0.2] == pytest.approx(math.sqrt(0.2), abs=0.06), steer


def test_iql_value_targets_stop_at_terminations():
    from learn.algos import IQL
    agent = IQL(ALGO_CONFIGS["iql"](gamma=0.9, reward_scale=1.0), FEATURE_DIM)
    with torch.no_grad():
        for layer in (*agent.value.trunk, agent.value.head):
            if hasattr(layer, "weight"):
                layer.weight.zero_()
                layer.bias.zero_()
        agent.value.head.bias.fill_(5.0)
    for done, expected in ((0.0, 2.0 + 0.9 * 5.0), (1.0, 2.0)):
        b = Batch(torch.zeros(1, FEATURE_DIM), torch.zeros(1, 2), torch.tensor([2.0]), torch.zeros(1, FEATURE_DIM),
                  torch.tensor([done]))
        m = agent.update(b)
        assert float(m["q/target"]) == pytest.approx(expected, rel=1e-2)   # V moved a little in the same update


def test_cql_penalty_is_the_soft_maximum_over_sampled_actions_minus_data_q():
    from learn.algos import cql_penalty
    # 1 critic, 2 states, 3 sampled actions each
    q_s = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])
    log_mu = torch.tensor([[[-1.0, 0.0, 0.5], [math.log(0.25)] * 3]])
    q_d = torch.tensor([[2.5, -1.0]])
    by_hand_0 = math.log((math.exp(1 + 1) + math.exp(2 - 0) + math.exp(3 - 0.5)) / 3) - 2.5
    by_hand_1 = math.log(4.0) + 1.0        # a flat Q under a uniform proposal on [-1, 1]^2: log(volume) - Q_data
    got = cql_penalty(q_s, log_mu, q_d)
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx((by_hand_0 + by_hand_1) / 2, rel=1e-6)
    # temperature T: T * log mean exp(x / T); T -> 0 tends to the hard maximum
    hot = cql_penalty(q_s[:, :1], log_mu[:, :1], q_d[:, :1], temperature=2.0)
    x = np.array([2.0, 2.0, 2.5])
    assert float(hot[0]) == pytest.approx(2.0 * math.log(np.exp(x / 2).mean()) - 2.5, rel=1e-5)
    cold = cql_penalty(q_s[:, :1], log_mu[:, :1], q_d[:, :1], temperature=1e-3)
    assert float(cold[0]) == pytest.approx(2.5 - 2.5, abs=1e-2)
    # gradient: pushes sampled Q down (softmax weights) and the data's Q up (-1 per state)
    q_s2, q_d2 = q_s.clone().requires_grad_(), q_d.clone().requires_grad_()
    cql_penalty(q_s2, log_mu, q_d2).sum().backward()
    assert (q_s2.grad > 0).all() and torch.allclose(q_d2.grad, torch.full_like(q_d2, -0.5))
    torch.testing.assert_close(q_s2.grad.sum(-1), torch.full((1, 2), 0.5))


def test_cql_penalty_pushes_data_actions_up_in_proportion_to_their_weights():
    q_d = torch.zeros(1, 4, requires_grad=True)
    w = torch.tensor([0.0, 0.5, 1.5, 2.0])
    cql_penalty(torch.zeros(1, 4, 3), torch.zeros(()), q_d, data_weight=w).sum().backward()
    torch.testing.assert_close(q_d.grad, -w[None] / 4)   # a weight-0 action is not raised at all


def test_calibrated_penalty_lifts_only_policy_actions_below_the_data_return():
    """Cal-QL: policy-sample Q below the drive's reward-to-go enter the soft maximum at the bound, without gradient;
    the data and uniform columns, and policy Q above the bound, pass unchanged."""
    from learn.algos import calibrated
    q = torch.tensor([[[5.0, -9.0, 1.0, 3.0], [0.0, 0.0, -2.0, 4.0]]], requires_grad=True)   # (1 critic, B=2, K=4)
    out = calibrated(q, torch.tensor([2.0, -1.0]), first_policy=2)
    assert out.tolist() == [[[5.0, -9.0, 2.0, 3.0], [0.0, 0.0, -1.0, 4.0]]]
    out.sum().backward()
    assert q.grad.tolist() == [[[1, 1, 0, 1], [1, 1, 0, 1]]]


def test_floored_penalty_drops_sampled_actions_far_below_the_data_action():
    """cql_floor: sampled Q more than `floor` below Q(data) leave the soft maximum (-inf, no gradient); the data
    column and sampled Q above the bound pass unchanged, so the penalty is plain CQL's over the rest."""
    from learn.algos import cql_penalty, floored
    q = torch.tensor([[[5.0, -9.0, 4.5, 3.0], [0.0, 0.0, -2.0, 4.0]]], requires_grad=True)   # (1 critic, B=2, K=4)
    out = floored(q, q[..., 0], floor=1.0)
    inf = float("-inf")
    assert out.tolist() == [[[5.0, inf, 4.5, inf], [0.0, 0.0, inf, 4.0]]]
    gap = cql_penalty(out, out.new_zeros(()), q[..., 0])
    kept = [torch.tensor([5.0, 4.5]), torch.tensor([0.0, 0.0, 4.0])]
    expected = sum(torch.logsumexp(k, 0) - math.log(4) - k[0] for k in kept) / 2
    assert gap.item() == pytest.approx(expected.item(), abs=1e-6)
    gap.sum().backward()
    assert q.grad[0, 0, 1] == 0 and q.grad[0, 0, 3] == 0 and q.grad[0, 1, 2] == 0 and q.grad[0, 1, 3] > 0


def test_cql_penalty_ranks_data_actions_by_density_once_its_weight_outgrows_the_bellman_gap():
    """CQL's fixed point (learn/README.md, 'Why the penalty encodes density'): at one state the data took a common
    action 78% of the time and a rare one 22% of the time, and the rare one's TD target is higher by 1. Minimising
    E_data[(Q - T)^2] + w * gap gives Q(a) = T(a) - (w / 2)(mu(a) / beta(a) - 1), mu = softmax Q, so the ranking
    follows log beta(a) + (2 / w) T(a): the better action stays first only while w < 2 * 1 / log(0.78 / 0.22) = 1.58."""
    beta, target = torch.tensor([0.78, 0.22]), torch.tensor([0.0, 1.0])

    def fixed_point(weight: float) -> list[float]:
        q = torch.zeros(1, 1, 2, requires_grad=True)   # (1 critic, 1 state, the two actions)
        opt = torch.optim.Adam([q], lr=5e-2)
        for _ in range(2000):
            td = (beta * (q[0, 0] - target).pow(2)).sum()
            gap = sum(beta[a] * cql_penalty(q, torch.zeros(()), q[:, :, a]) for a in range(2)).sum()
            opt.zero_grad()
            (td + weight * gap).backward()
            opt.step()
        return q.detach()[0, 0].tolist()

    common, rare = fixed_point(1.0)
    assert rare > common + 0.05          # below the crossover the Bellman target decides
    common, rare = fixed_point(2.0)
    assert common > rare + 0.05          # above it, how often the data took the action
    common, rare = fixed_point(5.0)      # the default weight: the worse, commoner action ~0.7 above
    assert common - rare == pytest.approx(0.68, abs=0.05)


def test_support_radius_ranks_data_actions_by_their_targets_at_the_default_weight():
    """cql_support_radius: the two data actions of the fixed-point test above (78% / 22%, the rare one's target
    higher by 1) sit 0.2 apart, and a third action far from both (1.0) is never taken. Plain CQL at the default
    weight 5 ranks the commoner action first; with sampled actions within 0.3 of the data action left out of the
    soft maximum the better, rarer one is first (the density term is gone near the data), while the action the
    data never took is still pushed far below both."""
    from learn.algos import near_data_excluded
    beta, target = torch.tensor([0.78, 0.22]), torch.tensor([0.0, 1.0])
    where = torch.tensor([0.0, 0.2, 1.0])   # the three actions' positions on a 1-D action axis

    def fixed_point(radius: float) -> list[float]:
        q = torch.zeros(1, 1, 3, requires_grad=True)   # (1 critic, 1 state, common / rare / never taken)
        opt = torch.optim.Adam([q], lr=5e-2)
        for _ in range(2000):
            td = (beta * (q[0, 0, :2] - target).pow(2)).sum()
            gap = 0
            for a in range(2):   # a row per data action: [data | the three sampled actions]
                cols = torch.tensor([a, 0, 1, 2])
                q_all, actions = q[..., cols], where[cols].view(1, 4, 1)
                q_pen = near_data_excluded(q_all, actions, radius) if radius else q_all
                gap = gap + beta[a] * cql_penalty(q_pen, torch.zeros(()), q_all[..., 0]).sum()
            opt.zero_grad()
            (td + 5.0 * gap).backward()
            opt.step()
        return q.detach()[0, 0].tolist()

    common, rare, never = fixed_point(0.0)
    assert common > rare + 0.3                 # plain CQL: how often the data took it
    common, rare, never = fixed_point(0.3)
    assert rare > common + 0.5                 # near the data: the Bellman target
    assert never < min(common, rare) - 2.0     # away from it: still pushed down
    with pytest.raises(ConfigError, match="cql_support_radius needs the soft maximum's data column"):
        ALGO_CONFIGS["cql"](cql_support_radius=0.3, cql_importance_sample=True)
    # in the agent's update: a radius that covers the whole action box leaves only the data column in the soft
    # maximum, so the gap is exactly -log(1 + 3n) whatever the critic (here Q = steering)
    b = Batch(torch.zeros(256, FEATURE_DIM), torch.tensor([[1.0, 0.0]]).repeat(256, 1), torch.zeros(256),
              torch.zeros(256, FEATURE_DIM), torch.zeros(256))
    agent = CQL(ALGO_CONFIGS["cql"](cql_support_radius=3.0, cql_n_actions=4), FEATURE_DIM)
    _steering_critic(agent.critic)
    assert float(agent.update(b)["cql/penalty"]) == pytest.approx(-math.log(1 + 3 * 4), abs=1e-4)


def test_cql_data_noise_pushes_up_the_jittered_data_action():
    """Q(s, a) = steering, data action at full left lock (+1): jittered copies are clipped to the box, so the
    pushed-up Q is E[min(1, 1 + sigma e)] = 1 - sigma / sqrt(2 pi) and the gap grows by sigma / sqrt(2 pi) over the
    same update without jitter (the same uniform and policy samples: the jitter is drawn after them)."""
    b = Batch(torch.zeros(2048, FEATURE_DIM), torch.tensor([[1.0, 0.0]]).repeat(2048, 1), torch.zeros(2048),
              torch.zeros(2048, FEATURE_DIM), torch.zeros(2048))
    gaps = []
    for noise in (0.0, 0.4):
        torch.manual_seed(0)
        agent = CQL(ALGO_CONFIGS["cql"](cql_data_noise=noise, actor_average=0.0), FEATURE_DIM)
        _steering_critic(agent.critic)
        gaps.append(float(agent.update(b)["cql/penalty"]))
    assert gaps[1] - gaps[0] == pytest.approx(0.4 / math.sqrt(2 * math.pi), abs=0.01)


def test_lagrange_weight_grows_above_the_target_gap_and_shrinks_below():
    from learn.algos import lagrange_loss
    for gap, direction in ((5.0, 1), (0.5, -1)):
        log_w = torch.tensor(0.0, requires_grad=True)
        opt = torch.optim.SGD([log_w], lr=0.1)
        lagrange_loss(log_w, torch.tensor([gap, gap]), target_gap=2.0).backward()
        opt.step()
        assert direction * log_w.item() > 0, (gap, log_w.item())


def test_cql_lagrange_update_moves_the_weight_and_its_state_round_trips():
    torch.manual_seed(0)
    cfg = ALGO_CONFIGS["cql"](hidden=(16, 16), cql_lagrange=True, cql_target_gap=100.0, cql_n_actions=2)   # far below
    agent = CQL(cfg, FEATURE_DIM)
    b = Batch(torch.randn(8, FEATURE_DIM), torch.rand(8, 2) * 2 - 1, torch.randn(8), torch.randn(8, FEATURE_DIM),
              torch.zeros(8))
    w0 = float(agent.update(b)["cql/weight"])
    w1 = float(agent.update(b)["cql/weight"])
    assert w1 < w0 == pytest.approx(cfg.cql_weight)
    again = CQL(cfg, FEATURE_DIM)
    again.load_state_dict(agent.state_dict())
    assert float(again.log_cql_weight.detach()) == float(agent.log_cql_weight.detach())


def test_cql_averaged_actor_follows_the_live_one_and_is_the_saved_policy():
    """With actor_average the policy that is evaluated and saved ("actor") is a Polyak average of the actor the
    updates train: after one update it sits at rate * (live - initial) from where both started; the checkpoint keeps
    both, so a resumed run continues the same two."""
    torch.manual_seed(0)
    rate = 0.25
    cfg = ALGO_CONFIGS["cql"](hidden=(16, 16), cql_n_actions=2, actor_average=rate)
    agent = CQL(cfg, FEATURE_DIM)
    start = [p.clone() for p in agent.actor.parameters()]
    torch.testing.assert_close(start, [p.detach() for p in agent.actor_live.parameters()])
    b = Batch(torch.randn(8, FEATURE_DIM), torch.rand(8, 2) * 2 - 1, torch.randn(8), torch.randn(8, FEATURE_DIM),
              torch.zeros(8))
    agent.update(b)
    live = [p.detach() for p in agent.actor_live.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(live, start))   # the live actor moved
    torch.testing.assert_close([p.detach() for p in agent.actor.parameters()],
                               [s + rate * (l - s) for s, l in zip(start, live)])
    again = CQL(cfg, FEATURE_DIM)
    again.load_state_dict(agent.state_dict())
    torch.testing.assert_close(list(again.actor.parameters()), list(agent.actor.parameters()))
    torch.testing.assert_close(list(again.actor_live.parameters()), list(agent.actor_live.parameters()))
    plain = CQL(ALGO_CONFIGS["cql"](hidden=(16, 16), cql_n_actions=2, actor_average=0.0), FEATURE_DIM)
    assert plain.actor is plain.actor_live and "actor_live" not in plain.state_dict()


def test_poor_action_weights_favour_low_advantages_whatever_the_scale_of_q():
    adv = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    w = poor_action_weights(adv, beta=1.0)
    assert torch.all(w[:-1] > w[1:]) and float(w.mean()) == pytest.approx(1.0)
    torch.testing.assert_close(poor_action_weights(10 * adv + 3, beta=1.0), w)   # read in units of their spread
    assert torch.all(poor_action_weights(adv, beta=0.0) == 1.0)                  # beta 0: a plain clone
    adv = torch.tensor([-100.0] + [0.0] * 99)   # one outlier: its weight exp(5 * 9.9) is capped at 10
    z_rest = float((adv[1] - adv.mean()) / adv.std())
    capped = poor_action_weights(adv, beta=5.0, max_weight=10.0)
    assert float(capped[0] / capped[1]) == pytest.approx(10.0 / math.exp(-5.0 * z_rest), rel=1e-4)


def test_cql_reds_rho_learns_the_datas_poor_actions_and_joins_the_pushed_down_set():
    """One state, two recorded actions: half the drives steer right (+0.8) and go on (reward-to-go +1), half steer
    left (-0.8) and crash (-1). rho, weighted toward actions whose reward-to-go is below the state's value, moves
    its mean to the left one (a plain clone would sit between them); its samples are in the critic pass the
    penalty pushes down (Q = steering there), and it is saved and restored with the agent."""
    torch.manual_seed(0)
    n = 4
    cfg = ALGO_CONFIGS["cql"](hidden=(16, 16), cql_n_actions=n, cql_reds=1.0, actor_average=0.0)
    agent = CQL(cfg, FEATURE_DIM)
    _steering_critic(agent.critic)
    for g in agent.critic_opt.param_groups:   # the critic frozen: Q = steering
        g["lr"] = 0.0
    for g in agent.reds_opt.param_groups:
        g["lr"] = 3e-3
    action = torch.tensor([[0.8, 0.0], [-0.8, 0.0]]).repeat(128, 1)
    mc_return = torch.tensor([1.0, -1.0]).repeat(128)
    b = Batch(torch.zeros(256, FEATURE_DIM), action, torch.zeros(256), torch.zeros(256, FEATURE_DIM),
              torch.zeros(256), mc_return)
    for _ in range(300):
        out = agent.update(b)
    steer = float(agent.rho(torch.zeros(1, FEATURE_DIM))[0, 0])
    assert steer < -0.4, steer
    assert float(agent.data_value(torch.zeros(1, FEATURE_DIM))) == pytest.approx(0.0, abs=0.1)  # the data's value
    assert float(out["q/rho"]) == pytest.approx(steer, abs=0.2)    # Q = steering at rho's samples
    again = CQL(cfg, FEATURE_DIM)
    again.load_state_dict(agent.state_dict())
    torch.testing.assert_close(list(again.rho.parameters()), list(agent.rho.parameters()))
    torch.testing.assert_close(list(again.data_value.parameters()), list(agent.data_value.parameters()))


def test_gaussian_actor_log_prob_is_the_squashed_gaussian_density():
    from torch.distributions import Normal, TanhTransform, TransformedDistribution
    from learn.nets import GaussianActor
    torch.manual_seed(0)
    actor = GaussianActor(FEATURE_DIM, 2, (16,))
    obs, a = torch.randn(5, FEATURE_DIM), torch.rand(5, 2) * 1.6 - 0.8
    mean, log_std = actor.dist_params(obs)
    ref = TransformedDistribution(Normal(mean, log_std.exp()), TanhTransform()).log_prob(a).sum(-1)
    torch.testing.assert_close(actor.log_prob(obs, a), ref, rtol=1e-4, atol=1e-4)
    assert torch.isfinite(actor.log_prob(obs, torch.ones(5, 2))).all()   # a keyboard's full lock is scored too


@pytest.mark.slow   # compiles (inductor, ~10-30 s)
def test_compiled_critics_learn_the_same_as_eager():
    """--compile changes how the critics run, not what they compute: the same updates from the same state give
    the same losses and the same weights (fp32), and checkpoints keep their keys."""
    from learn.algos import IQL, compile_critics
    cfg = ALGO_CONFIGS["iql"](hidden=(32, 32))
    torch.manual_seed(0)
    eager = IQL(cfg, FEATURE_DIM)
    compiled = IQL(cfg, FEATURE_DIM)
    compiled.load_state_dict(eager.state_dict())
    assert compile_critics(compiled) == ["critic", "critic_target", "value"]
    g = torch.Generator().manual_seed(1)
    batches = [Batch(torch.randn(16, FEATURE_DIM, generator=g), torch.rand(16, 2, generator=g) * 2 - 1,
                     torch.randn(16, generator=g), torch.randn(16, FEATURE_DIM, generator=g),
                     (torch.rand(16, generator=g) < 0.1).float()) for _ in range(3)]
    for b in batches:
        m_e, m_c = eager.update(b), compiled.update(b)
        for k in m_e:
            torch.testing.assert_close(m_c[k], m_e[k], rtol=1e-4, atol=1e-5)
    for (k, v), (k2, v2) in zip(eager.critic.state_dict().items(), compiled.critic.state_dict().items()):
        assert k == k2
        torch.testing.assert_close(v2, v, rtol=1e-4, atol=1e-5)


def test_logged_means_average_each_metric_over_the_updates_that_reported_it():
    """TD3+BC reports its actor's metrics (q/policy, lambda, BC loss) on every policy_freq-th update only; dividing
    their sums by all updates logged half the true value to TensorBoard (q/policy at half of q/data)."""
    from learn.algos import make_agent
    from learn.train import Updater
    rng = np.random.default_rng(0)
    n = 512
    buffer = ReplayBuffer(rng.standard_normal((n, FEATURE_DIM)).astype(np.float32),
                          np.tanh(rng.standard_normal((n, 2))).astype(np.float32),
                          (rng.standard_normal(n) * 0.1).astype(np.float32),
                          rng.standard_normal((n, FEATURE_DIM)).astype(np.float32),
                          np.zeros(n, np.float32), encoder=Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)))
    cfg = TrainConfig.build(algo="td3bc", out="-", precision="fp32", device="cpu", threads=1)
    torch.manual_seed(0)
    agent = make_agent(cfg.algo, FEATURE_DIM, "cpu")
    reported: dict[str, list[float]] = {}
    update = agent.update

    def recording_update(batch, pretrain=False):
        out = update(batch, pretrain)
        for k, v in out.items():
            reported.setdefault(k, []).append(float(v))
        return out
    agent.update = recording_update
    updater = Updater(agent, buffer, cfg, torch.Generator().manual_seed(0))
    for _ in range(6):
        updater(pretrain=False)
    means = updater.pop_means()
    assert len(reported["lambda"]) == 3 and len(reported["q/data"]) == 6
    for k, values in reported.items():
        assert means[k] == pytest.approx(np.mean(values), rel=1e-5), k


def test_steer_dropout_hides_only_the_steering_angle_in_about_p_of_the_rows():
    from learn.algos import STEER_FEATURE, hide_steer
    torch.manual_seed(0)
    obs = torch.randn(4000, FEATURE_DIM)
    assert hide_steer(obs, 0.0) is obs
    out = hide_steer(obs, 0.3)
    changed = out != obs
    assert not changed[:, [i for i in range(FEATURE_DIM) if i != STEER_FEATURE]].any()
    assert FEATURE_NAMES[STEER_FEATURE] == "steer_angle"
    hidden = out[:, STEER_FEATURE] == 0
    assert 0.26 < hidden.float().mean() < 0.34 and changed[:, STEER_FEATURE].sum() == hidden.sum()


def test_td3bc_steer_dropout_fades_to_zero_over_the_run_when_asked():
    cfg = ALGO_CONFIGS["td3bc"](bc_steps=1000, steps=3000, steer_dropout=0.2, steer_dropout_fade=True)
    assert [cfg.steer_dropout_at(u) for u in (0, 2000, 4000, 5000)] == pytest.approx([0.2, 0.1, 0.0, 0.0])
    assert ALGO_CONFIGS["td3bc"](steer_dropout=0.2).steer_dropout_at(8000) == 0.2   # constant by default


@pytest.mark.parametrize("algo", ["bc", "td3bc", "cql", "iql"])
def test_every_actor_trains_without_the_steering_angle_at_steer_dropout_1(algo):
    """--steer-dropout reaches every learner's actor: at 1 the actor's cloning step cannot depend on the steering
    angle (two batches that differ only there give the same actor), at 0 it does."""
    from learn.algos import STEER_FEATURE, make_agent
    rng = np.random.default_rng(0)
    n = 64
    obs = rng.standard_normal((n, FEATURE_DIM)).astype(np.float32)
    other = obs.copy()
    other[:, STEER_FEATURE] = rng.standard_normal(n)
    action = np.tanh(rng.standard_normal((n, 2))).astype(np.float32) * 0.9
    zeros = np.zeros(n, np.float32)

    def actor_after_one_update(o, dropout):
        cfg = TrainConfig.build(algo=algo, out="-", precision="fp32", device="cpu", steer_dropout=dropout)
        torch.manual_seed(0)
        agent = make_agent(cfg.algo, FEATURE_DIM, "cpu")
        t = lambda x: torch.from_numpy(x)   # noqa: E731
        batch = Batch(t(o), t(action), t(zeros), t(o), t(zeros), t(zeros))
        agent.update(batch, pretrain=algo != "bc")
        return torch.cat([p.detach().flatten() for p in agent.actor.parameters()])

    assert torch.equal(actor_after_one_update(obs, 1.0), actor_after_one_update(other, 1.0))
    assert not torch.equal(actor_after_one_update(obs, 0.0), actor_after_one_update(other, 0.0))


def test_encoder_names_what_a_policy_acts_on_when_given_a_bare_array():
    """policy.act(raw 44-float array) raised numpy's IndexError from deep inside the encoder."""
    enc = Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM))
    for bad in (np.zeros(spec.OBS_DIM), np.zeros((3, spec.OBS_DIM))):
        with pytest.raises(ValueError, match="observation dict"):
            enc(bad)


def test_encoder_refuses_a_non_finite_observation_naming_the_field():
    enc = Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM))
    o = np.zeros(spec.OBS_DIM, np.float32)
    o[spec.OBS_INDEX["yaw_rate"]] = np.nan
    with pytest.raises(ValueError, match="observation field yaw_rate is not finite"):
        enc({"observation": o})
    with pytest.raises(ValueError, match="yaw_rate"):
        enc({"observation": np.stack([np.zeros(spec.OBS_DIM, np.float32), o])})
