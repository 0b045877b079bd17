"""Multi-armed bandit routing: choose which version (arm) of a model answers a request, and
learn from a reward the application reports later (a click, a rating, a conversion).

Two policies, both over rewards in [0, 1]: epsilon-greedy (the best mean so far, and a random
arm with probability ``epsilon``) and Thompson sampling (a draw from each arm's Beta(1 + reward
sum, 1 + failures) posterior, the highest wins). Pure: seeded, no clock, no I/O; the
``BanditRouter`` deployment in ``examples/bandit`` puts one in front of the arms' handles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from serve_core.errors import ConfigError

POLICIES = ("epsilon_greedy", "thompson")


@dataclass
class ArmStats:
    pulls: int = 0  # requests sent to the arm
    rewards: int = 0  # rewards reported for it
    reward_sum: float = 0.0

    @property
    def mean(self) -> float:
        return self.reward_sum / self.rewards if self.rewards else 0.0


@dataclass
class Bandit:
    arms: list[str]
    policy: str = "thompson"
    epsilon: float = 0.1
    seed: int | None = None
    stats: dict[str, ArmStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise ConfigError("arms", self.arms, "give two or more distinct arm names")
        if self.policy not in POLICIES:
            raise ConfigError("policy", self.policy, f"use one of {', '.join(POLICIES)}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError("epsilon", self.epsilon, "give a probability between 0 and 1")
        self._rng = random.Random(self.seed)
        self.stats = {a: ArmStats() for a in self.arms}

    def choose(self) -> str:
        if self.policy == "epsilon_greedy":
            untried = [a for a in self.arms if self.stats[a].rewards == 0]
            if untried:
                arm = self._rng.choice(untried)
            elif self._rng.random() < self.epsilon:
                arm = self._rng.choice(self.arms)
            else:
                arm = max(self.arms, key=lambda a: (self.stats[a].mean, self._rng.random()))
        else:
            arm = max(self.arms, key=lambda a: self._rng.betavariate(
                1.0 + self.stats[a].reward_sum, 1.0 + self.stats[a].rewards - self.stats[a].reward_sum))
        self.stats[arm].pulls += 1
        return arm

    def reward(self, arm: str, value: float) -> None:
        if arm not in self.stats:
            raise ConfigError("arm", arm, f"reward one of the arms: {', '.join(self.arms)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise ConfigError("reward", value, "report a number between 0 and 1")
        s = self.stats[arm]
        s.rewards += 1
        s.reward_sum += float(value)

    def summary(self) -> dict[str, dict[str, float]]:
        return {a: {"pulls": s.pulls, "rewards": s.rewards, "mean_reward": round(s.mean, 4)} for a, s in self.stats.items()}
