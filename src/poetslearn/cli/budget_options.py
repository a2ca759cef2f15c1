"""`retrain --time_budget` and `--plan_only`: the first options of `retrain --help`, since the
time a user has is the first thing a plan needs."""

from __future__ import annotations

from poetslearn.cli.common import option

BUDGET_OPTIONS = [
    option(
        "time_budget",
        metavar="DURATION",
        default=None,
        help="Train the most accurate model this machine can in this time (90s, 15m, 2h): "
        "measures the machine on the data, chooses the network, pooled blocks and fine-tuning "
        "(keeping any of those options you give), prints the plan, and exports on time.",
    ),
    option(
        "plan_only",
        is_flag=True,
        help="With --time_budget: print the plan and its estimates, and train nothing.",
    ),
]
