"""Every setting of a training run, in typed dataclasses with their defaults in ONE place.

    RunConfig      what to train on, where the run goes, evaluation cadence, hardware: shared by every algorithm
    BCConfig, TD3BCConfig, CQLConfig, IQLConfig
                   each algorithm's own hyper-parameters and update budget (subclasses of AlgoConfig, which holds
                   what all four share: budget, batch, network size, actor learning rate; the three with critics
                   also share CriticConfig: critic learning rate, discount, target rate, LayerNorm, reward scale)
    TrainConfig    one run = RunConfig + the chosen algorithm's config; saved flat as runs/NAME/config.json

The command line (`python -m learn`), the sweep and the quickstart are generated from / read these dataclasses and
never restate a default. Field metadata carries the help text and the valid range; every value is checked when a
config is built (a NaN alpha or a zero batch size fails at once, naming the flag, not at the first evaluation).

Budgets: every algorithm gets the same number of updates in total (pretraining included), the same evaluation
cadence and the same best-checkpoint selection, so the results table compares like with like.
"""
from __future__ import annotations

import json
import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from racecar_env.cli import MAX_SEED


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the field (and the file)."""


def opt(default, help: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
        choices: tuple | None = None):
    """A config field with its help text and valid range (lo..hi inclusive unless lo_open)."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "lo_open": lo_open,
                                            "choices": choices})


TOTAL_UPDATES = 9_000   # the common budget (pretraining + algorithm updates) of every algorithm's defaults
EVAL_EVERY = 500


STEER_DROPOUT_HELP = ("probability that a training sample hides the measured steering angle from the actor "
                      "(ChauffeurNet's past-motion dropout): on keyboard data the wheel's angle predicts the next key "
                      "press, and a clone that learns to copy it misses corners (learn/README.md: 0.2 and 0.5 on "
                      "the S track and on many roads)")


RETURN_WEIGHTING_HELP = ("return-weighted sampling at this temperature T (0 = off: every transition "
                         "alike): a drive's steps are drawn in proportion to exp((A - A_best) / "
                         "(T * max |G|)), A its return G above a finished drive's on a road of its "
                         "length (Hong et al. 2023 use T = 0.1): the good drives of mixed data "
                         "weigh more, the others are drawn rarely but none is dropped (at 0.1 "
                         "a crash on the S track ~1e-5 times as often as a finished drive)")


@dataclass(kw_only=True)
class AlgoConfig:
    """What every learner shares. Subclasses set `name`, their budgets and their own hyper-parameters."""
    name: typing.ClassVar[str] = ""
    steps: int = opt(TOTAL_UPDATES, "updates after the BC pretraining phase", lo=0)
    bc_steps: int = opt(0, "actor BC pretraining updates first (critics already learn during it); 0 = none", lo=0)
    batch_size: int = opt(256, "transitions per update", lo=1)
    hidden: tuple[int, ...] = opt((256, 256), "hidden layer widths of every network, e.g. 256,256")
    actor_lr: float = opt(3e-4, "actor learning rate", lo=0, lo_open=True)
    steer_dropout: float = opt(0.0, STEER_DROPOUT_HELP, lo=0, hi=1)
    return_weighting: float = opt(0.0, RETURN_WEIGHTING_HELP, lo=0)

    @property
    def total_steps(self) -> int:
        return self.bc_steps + self.steps


@dataclass(kw_only=True)
class CriticConfig(AlgoConfig):
    """What the learners with critics (TD3+BC, CQL, IQL) share; BC has none of these."""
    critic_lr: float = opt(3e-4, "critic / value learning rate", lo=0, lo_open=True)
    gamma: float = opt(0.99, "discount", lo=0, hi=1)
    tau: float = opt(0.005, "target network soft-update rate", lo=0, hi=1, lo_open=True)
    critic_layernorm: bool = opt(False, "LayerNorm in every hidden layer of the critics (ReBRAC, RLPD): bounds how "
                                        "far Q extrapolates from the data")
    reward_scale: float = opt(1.0, "rewards are multiplied by this in the critics' targets: CQL's penalty weight and "
                                   "entropy temperature and IQL's beta act in the units of Q (TD3+BC normalises its "
                                   "Q term)", lo=0, lo_open=True)


@dataclass(kw_only=True)
class BCConfig(AlgoConfig):
    """Behaviour cloning: the actor regresses the data's actions (MSE)."""
    name: typing.ClassVar[str] = "bc"

    def __post_init__(self):
        if self.bc_steps:
            raise ConfigError("bc_steps is pretraining before td3bc/cql/iql; for --algo bc set --steps")


@dataclass(kw_only=True)
class TD3BCConfig(CriticConfig):
    """TD3+BC (Fujimoto & Gu 2021)."""
    name: typing.ClassVar[str] = "td3bc"
    steps: int = opt(7_000, "TD3+BC updates after the BC pretraining phase", lo=0)
    bc_steps: int = opt(2_000, "BC pretraining updates (the critics learn the cloned policy's value meanwhile); "
                               "cloning keyboard data past ~3k updates overfits it, and TD3+BC would start there",
                        lo=0)
    alpha: float = opt(0.2, "weight of Q against BC, lambda = alpha / mean|Q|; the paper's 2.5 drives into the "
                            "walls on this task's expert data; lower = closer to the data", lo=0)
    policy_noise: float = opt(0.2, "target policy smoothing noise (std)", lo=0)
    noise_clip: float = opt(0.5, "clip of the smoothing noise", lo=0)
    policy_freq: int = opt(2, "actor (and target) update every N critic updates", lo=1)
    n_critics: int = opt(2, "critic ensemble size; > 2 = the actor follows the pessimistic min over all", lo=2)
    # 0.2: on keyboard data the BC term copies the wheel's angle (76-80% -> 97-100% on the S track's keyboard
    # families); 0.5 did as well there but cost 25 points on many roads, where the angle also tells the actor
    # something (0.2 cost 4, within the seeds' spread: learn/README.md)
    steer_dropout: float = opt(0.2, STEER_DROPOUT_HELP, lo=0, hi=1)
    steer_dropout_fade: bool = opt(False, "lower the steering dropout linearly from --steer-dropout at the first "
                                          "update to 0 at the last (measured: many-roads agents then finish more "
                                          "of the shipped hairpin and fewer hard generated roads; README)")

    def steer_dropout_at(self, update: int) -> float:
        """The steering dropout's share at this update (counting the BC pretraining's)."""
        if not self.steer_dropout_fade:
            return self.steer_dropout
        return self.steer_dropout * max(0.0, 1.0 - update / max(self.total_steps, 1))


@dataclass(kw_only=True)
class CriticDrivenConfig(CriticConfig):
    """CQL and IQL, whose actors follow the critic with no BC term: the critic has to learn what a crash 100+ steps
    after a corner approach is worth within the common 9k-update budget."""
    gamma: float = opt(0.97, "discount (effective horizon ~33 steps, 1.7 s)", lo=0, hi=1)
    tau: float = opt(0.02, "target network soft-update rate (~180 Bellman iterations in 9k updates; 0.005 makes "
                           "~45)", lo=0, hi=1, lo_open=True)


@dataclass(kw_only=True)
class CQLConfig(CriticDrivenConfig):
    """CQL (Kumar et al. 2020), SAC-based as in CORL's cql.py."""
    name: typing.ClassVar[str] = "cql"
    steps: int = opt(8_000, "CQL updates after the BC pretraining phase", lo=0)
    # 0.3: the penalty's density term counts the drives that got through rather than the data's commonest habit
    # (S track keyboard-sloppy data 69% -> 95%, expert and noisy data as before or better; 0.1 swung more: README)
    return_weighting: float = opt(0.3, RETURN_WEIGHTING_HELP, lo=0)
    bc_steps: int = opt(1_000, "BC pretraining updates of the actor (likelihood of the data actions)", lo=0)
    actor_lr: float = opt(1e-4, "actor learning rate", lo=0, lo_open=True)
    cql_weight: float = opt(5.0, "conservative penalty weight (with --cql-target-gap: its initial value)",
                            lo=0, lo_open=True)
    cql_lagrange: bool = opt(False, "Lagrange variant: tune the penalty weight to hold the conservative gap (soft "
                                    "maximum of Q over actions - Q at the data's action) at --cql-target-gap")
    cql_target_gap: float = opt(-1.0, "the gap the Lagrange variant holds (a Q flat over the action box has gap "
                                      "log 4 = 1.39; lower = Q peaked more tightly at the data's actions)")
    cql_weight_lr: float = opt(3e-4, "learning rate of the Lagrange penalty weight", lo=0)
    cql_temperature: float = opt(1.0, "temperature of the soft maximum over sampled actions", lo=0, lo_open=True)
    cql_importance_sample: bool = opt(False, "weigh sampled actions by 1/density in the soft maximum (the paper's "
                                              "estimate of log integral exp Q; a narrow policy's own actions then "
                                              "barely count and the actor exploits them). Off (CORL's "
                                              "cql_importance_sample=False): every sample counts alike, so Q is "
                                              "pushed down wherever the policy goes")
    cql_max_target_backup: bool = opt(False, "the paper's max-backup: the TD target takes the best of the "
                                              "--cql-n-actions policy samples at s' (under the critics' minimum) "
                                              "instead of one sample, offsetting the downward drift of a target "
                                              "that bootstraps from actions the penalty pushes down")
    cql_calibrated: bool = opt(False, "Cal-QL (Nakamoto et al. 2023): the penalty does not push Q at the policy's "
                                       "sampled actions below the recorded drive's discounted reward-to-go, so "
                                       "conservatism cannot sink Q under what the data earned")
    cql_proposal: str = opt("mixed", "where the soft maximum's sampled actions come from: mixed = the paper's and "
                                     "CORL's n uniform + n policy at s + n policy at s'; uniform = 3n uniform "
                                     "actions only (no floor from policy samples sitting on the data's action, "
                                     "but on keyboard-sloppy data the actor found bumps between the samples: "
                                     "learn/README.md)",
                            choices=("mixed", "uniform"))
    cql_n_actions: int = opt(10, "sampled actions per state and proposal (uniform, policy at s, policy at s') for "
                                 "the soft maximum", lo=1)
    temperature_lr: float = opt(3e-4, "entropy temperature learning rate (tuned in the CQL phase only; 3e-3 let "
                                      "alpha climb past Q's scale within 2k updates)", lo=0)
    actor_average: float = opt(0.005, "Polyak rate of an averaged copy of the actor that evaluations and checkpoints "
                                      "use as the policy (0.005: an average over ~200 updates; on imperfect data the "
                                      "live actor hops between Q's peaks at data actions); 0 = the actor itself",
                               lo=0, hi=1)
    policy_bc: float = opt(0.0, "behaviour-constrained policy extraction (DDPG+BC, as TD3+BC's actor; Park et al. "
                                "2024 found the extraction step, more than the value function, to limit offline RL): "
                                "> 0 = the actor minimises alpha log pi - w Q / mean|Q| + |pi - a_data|^2 with w = "
                                "this (TD3+BC's alpha here: 0.2) and the TD target bootstraps from its mean action; "
                                "0 = the paper's SAC actor, alpha log pi - Q (learn/README.md: it did not help)",
                           lo=0)
    init_temperature: float = opt(0.02, "entropy temperature of the BC warm-up and the start of the CQL phase "
                                        "(in the units of Q: rewards here are ~0.1 a step)", lo=0, lo_open=True)
    cql_reds: float = opt(0.0, "ReDS (Singh et al. 2023, CQL for data whose quality varies by state): > 0 = a "
                               "second policy rho learns the data's actions weighted by exp(-this * A / std A), A = "
                               "the drive's reward-to-go over the data's value, i.e. the data's worst actions, and "
                               "its n samples per state join the soft maximum that is pushed down, so Q is raised "
                               "only at the data actions rho does not cover; 0 = plain CQL", lo=0)
    cql_reds_form: str = opt("rho", "how --cql-reds acts: rho = ReDS's (rho's samples pushed down); push_up = the "
                                    "data actions are pushed up in proportion to exp(beta * A / std A) instead of "
                                    "alike, so Q is raised at the good drives' actions only",
                             choices=("rho", "push_up"))
    cql_data_noise: float = opt(0.0, "kernel-smoothed push-up: > 0 = the penalty raises Q at the data action jittered "
                                     "by Gaussian noise of this std (a kernel estimate of the behaviour policy) instead "
                                     "of at the point, so actions near the data's are not pushed down by the full "
                                     "conservative margin; the TD target stays at the data action (0.3 widened the "
                                     "policy and did worse on keyboard-sloppy data: learn/README.md); 0 = the paper's",
                                lo=0)
    cql_floor: float = opt(0.0, "> 0 = sampled actions whose Q is more than this below Q at the data action leave the "
                                "penalty's soft maximum, so the penalty stops pushing an action down once it is that "
                                "far below the data's (plain CQL sinks actions the data rarely took, braking before a "
                                "corner included, 10-60 below it: learn/README.md); 0 = the paper's", lo=0)
    cql_support_radius: float = opt(0.0, "> 0 = sampled actions within this distance (Euclidean, in the [-1, 1]^2 "
                                         "action box) of the data action leave the penalty's soft maximum: near the "
                                         "data Q follows its TD targets alone, so the data's actions rank by their "
                                         "outcome instead of by how often they were taken (with --cql-floor 1 "
                                         "--temperature-lr 0: 87-99%% on three keyboard-sloppy recordings and 100%% "
                                         "on expert data, but 72%% on noisy autopilot data, whose commonest action is "
                                         "the right one: learn/README.md); 0 = the paper's", lo=0)

    def __post_init__(self):
        if self.cql_calibrated and self.cql_proposal == "uniform":
            raise ConfigError("cql_calibrated bounds Q at the policy's sampled actions; cql_proposal=uniform has none")
        if self.cql_support_radius and self.cql_importance_sample:
            raise ConfigError("cql_support_radius needs the soft maximum's data column, which the importance-sampled "
                              "estimate (cql_importance_sample) leaves out: use one of the two")


@dataclass(kw_only=True)
class IQLConfig(CriticDrivenConfig):
    """IQL (Kostrikov et al. 2021): expectile value regression, advantage-weighted actor."""
    name: typing.ClassVar[str] = "iql"
    expectile: float = opt(0.7, "expectile of the value regression (0.5 = mean; higher = more optimistic)",
                           lo=0.5, hi=1, )
    beta: float = opt(3.0, "inverse temperature of the advantage weights exp(beta * A)", lo=0)
    max_weight: float = opt(100.0, "cap of the advantage weights", lo=0, lo_open=True)
    reward_scale: float = opt(10.0, "rewards are multiplied by this in the critic's target: beta acts on advantages "
                                    "in the units of Q, and at this task's ~0.1 a step (x1) every weight exp(beta A) "
                                    "is ~1, i.e. IQL = BC; x10 is D4RL's ~1 a step, where beta = 3 comes from",
                              lo=0, lo_open=True)
    actor_cosine: bool = opt(True, "anneal the actor's learning rate to 0 over the run on a cosine (CORL's IQL "
                                   "default), so late checkpoints change slowly")


ALGO_CONFIGS: dict[str, type[AlgoConfig]] = {c.name: c for c in (BCConfig, TD3BCConfig, CQLConfig, IQLConfig)}
ALGOS = tuple(ALGO_CONFIGS)
#: The settings CriticConfig adds to AlgoConfig (what BC does not have).
CRITIC_SETTINGS = frozenset(f.name for f in fields(CriticConfig)) - frozenset(f.name for f in fields(AlgoConfig))

#: Settings that earlier versions saved for an algorithm that never read them (BC carried the critics' settings
#: before they moved to CriticConfig): dropped when a saved config is read, refused when given.
NEVER_READ = {"bc": CRITIC_SETTINGS}
#: What a saved config that lacks a setting meant, where the setting's default is not the behaviour runs had before
#: it existed (CQL evaluated its live actor until actor_average came, and then its default changed to 0.005, and
#: sampled every transition alike until return_weighting came; TD3+BC's actor saw the steering angle in every sample
#: until steer_dropout came with its 0.2 default).
BEFORE_IT_EXISTED = {"cql": {"actor_average": 0.0, "return_weighting": 0.0}, "td3bc": {"steer_dropout": 0.0}}


@dataclass(kw_only=True)
class RunConfig:
    """What to train on, where results go, how it is evaluated and on what hardware."""
    dataset: str = opt("s_expert", "dataset name (e.g. s_expert) or full Minari id racecar/NAME-v0")
    algo: str = opt("td3bc", "learner", choices=ALGOS)
    seed: int = opt(0, "random seed of the run (network init, batch sampling)", lo=0, hi=MAX_SEED)   # as teleop's
    out: str = opt("", "run folder (default runs/<dataset>_<algo>_s<seed>)")
    eval_every: int = opt(EVAL_EVERY, "updates between periodic evaluations (they pick best.pt); 0 = only at the "
                                      "end", lo=0)
    eval_episodes: int = opt(10, "episodes per periodic evaluation (selection seeds 10000+i)", lo=1, hi=10_000)
    eval_after_pretrain: bool = opt(True, "also evaluate at the end of the BC pretraining (logged, never best.pt: how "
                                          "good the clone is before the algorithm's own updates); off saves its "
                                          "episodes' time")
    stop_at_success: float = opt(0.0, "end training early once --stop-patience periodic evaluations in a row (after "
                                      "pretraining) reach this success rate, e.g. 1.0; 0 = always the full budget",
                                 lo=0, hi=1)
    stop_patience: int = opt(2, "evaluations in a row that must reach --stop-at-success", lo=1)
    final_eval_episodes: int = opt(50, "test episodes of best.pt at the end (seeds 20000+i); 0 = skip", lo=0,
                                   hi=10_000)
    eval_track: str = opt("", "track of the evaluations (a name, path, gen:SEED, random:test); default: the "
                              "dataset's track, or random:test when the dataset holds many tracks")
    eval_workers: str = opt("auto", "env processes for evaluation: auto (one per CPU), or a number (1 = serial)")
    threads: int = opt(0, "torch intra-op threads; 0 = auto: the faster of 1 and one per CPU this process may use, "
                          "timed while training runs (all: x1.4 updates/s on 2 idle cores; one: x3 to x50 faster "
                          "than all beside another busy process); a sweep runs each trial on 1 unless --set", lo=0)
    compile: bool = opt(False, "torch.compile the critics and the value network (inductor; needs a C++ compiler, "
                               "falls back to eager without one): fused element-wise kernels, +4-7%% CQL and IQL "
                               "updates/s alone and +10-17%% beside another job here, after 5-20 s of compiling")
    precision: str = opt("auto", "bf16 autocasts hidden layers (outputs stay fp32); auto = bf16 where the CPU has "
                                 "native bf16 (AVX512-BF16/AMX)", choices=("auto", "fp32", "bf16"))
    device: str = opt("auto", "where networks, data and sampling live: auto (cuda if available), cpu or cuda",
                      choices=("auto", "cpu", "cuda"))
    log_every: int = opt(250, "updates between TensorBoard scalar writes", lo=1)
    save_every_s: float = opt(60.0, "seconds between last.pt saves besides evaluations (a kill loses at most this "
                                    "much)", lo=1)

    def __post_init__(self):
        if self.eval_workers != "auto" and not (self.eval_workers.isdigit() and int(self.eval_workers) >= 1):
            raise ConfigError(f"eval_workers must be auto or a number >= 1, got {self.eval_workers!r}")


#: RunConfig fields a resumed run may change: they steer the run, not what it learns.
RUN_CONTROL = ("steps", "eval_every", "eval_episodes", "eval_after_pretrain", "stop_at_success", "stop_patience",
               "final_eval_episodes", "eval_workers", "threads", "compile", "device", "log_every", "save_every_s")


@dataclass
class TrainConfig:
    run: RunConfig
    algo: AlgoConfig

    def __post_init__(self):
        if self.algo.name != self.run.algo:
            raise ConfigError(f"algo config is for {self.algo.name}, run says {self.run.algo}")
        if not self.run.out:
            self.run.out = f"runs/{self.run.dataset.replace('/', '_')}_{self.run.algo}_s{self.run.seed}"

    @classmethod
    def build(cls, **values) -> "TrainConfig":
        """From flat field values (as the CLI, the sweep and config.json give them); unknown fields and fields of
        another algorithm are refused by name."""
        return cls.from_dict(values, source="config")

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object of settings")
        algo = d.get("algo", RunConfig.algo)
        if algo not in ALGO_CONFIGS:
            raise ConfigError(f"{source}: algo must be one of {', '.join(ALGOS)}, got {algo!r}")
        run_names, algo_cls = _names(RunConfig), ALGO_CONFIGS[algo]
        algo_names = _names(algo_cls)
        unknown = sorted(set(d) - run_names - algo_names)
        if unknown:
            owners = {k: [a for a, c in ALGO_CONFIGS.items() if k in _names(c)] for k in unknown}
            parts = [f"{k} (a setting of {', '.join(o)}, not {algo})" if o else f"{k} (unknown)"
                     for k, o in owners.items()]
            raise ConfigError(f"{source}: {'; '.join(parts)}")
        run_values = {k: _check(RunConfig, k, v, source) for k, v in d.items() if k in run_names}
        algo_values = {k: _check(algo_cls, k, v, source) for k, v in d.items() if k in algo_names}
        try:
            return cls(RunConfig(**run_values), algo_cls(**algo_values))
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_saved(cls, d: dict, source: str) -> "TrainConfig":
        """A config written by a run (config.json, a checkpoint), possibly by an earlier version."""
        if isinstance(d, dict):
            algo = d.get("algo", RunConfig.algo)
            stale = NEVER_READ.get(algo, frozenset())
            d = {**BEFORE_IT_EXISTED.get(algo, {}), **{k: v for k, v in d.items() if k not in stale}}
        return cls.from_dict(d, source)

    def to_dict(self) -> dict:
        d = {**asdict(self.run), **asdict(self.algo)}
        d["hidden"] = list(self.algo.hidden)
        return d

    def replace(self, **values) -> "TrainConfig":
        return self.from_dict({**self.to_dict(), **values})

    def save(self, path: Path) -> None:
        from racecar_env.files import write_json
        write_json(path, self.to_dict(), durable=True)

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read config ({type(e).__name__}: {e})") from None
        return cls.from_saved(data, source=str(path))

    # conveniences the training loop reads
    @property
    def total_steps(self) -> int:
        return self.algo.total_steps

    @property
    def bf16(self) -> bool:
        return self.run.precision == "bf16" or (self.run.precision == "auto" and cpu_has_native_bf16()
                                                 and self.device == "cpu")

    @property
    def device(self) -> str:
        if self.run.device == "auto":
            import torch
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.run.device


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def default_of(cls, name: str):
    f = next(f for f in fields(cls) if f.name == name)
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def _check(cls, name: str, value, source: str):
    """Coerce `value` to the field's type and check its range; ConfigError names the field."""
    f = next(f for f in fields(cls) if f.name == name)
    kind = typing.get_type_hints(cls)[name]
    meta = f.metadata
    try:
        if kind is bool:
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:   # --set cql_lagrange=true
                value = _BOOL_WORDS[value.strip().lower()]
            if not isinstance(value, bool):
                raise TypeError
        elif kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            value = int(value)
        elif kind is float:
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        elif kind is str:
            value = str(value)
        else:  # tuple[int, ...]
            items = value.split(",") if isinstance(value, str) else list(value)
            value = tuple(int(v) for v in items)
            if not value or min(value) < 1:
                raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} must be {_kind_name(kind)}, got {value!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {name} must be a finite number, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        raise ConfigError(f"{source}: {name} must be {'>' if meta.get('lo_open') else '>='} {_num(lo)}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{source}: {name} must be <= {_num(hi)}, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{source}: {name} must be one of {', '.join(meta['choices'])}, got {value!r}")
    return value


def _num(bound) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)   # an int bound whole (2**63 - 1, not 9.2e+18)


def same_value(name: str, a, b) -> bool:
    """Whether two values of setting `name` mean the same, compared as a config holds them: in the field's type
    (--hidden 256,256 is config.json's [256, 256]) and a dataset name as the dataset loader resolves it (ks4 is
    racecar/ks4-v0). A missing (None) or invalid value equals only itself."""
    if a is None or b is None:
        return a is b
    try:
        return _canonical(name, a) == _canonical(name, b)
    except (ConfigError, StopIteration):   # invalid, or a setting no config has
        return a == b


def _canonical(name: str, value):
    owner = RunConfig if name in _names(RunConfig) else next(c for c in ALGO_CONFIGS.values() if name in _names(c))
    value = _check(owner, name, value, "config")
    if name == "dataset":
        from racecar_env.storage import DatasetError, dataset_id
        try:
            return dataset_id(value)
        except DatasetError:
            return value
    return value


def _kind_name(kind) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        kind, "comma-separated positive integers (e.g. 256,256)")


def cpu_has_native_bf16() -> bool:
    """bf16 matmuls only pay off with hardware support; elsewhere autocast emulates them and is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
