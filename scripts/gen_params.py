"""Regenerate config/planner.yaml and the README's parameter table from the node's PARAMETERS.

`make params` runs it; test_package checks both files equal what it would write.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
YAML = REPO / "config" / "planner.yaml"
README = REPO / "README.md"
TABLE_HEAD = "| name | default | meaning |\n|---|---|---|\n"
QOS_ROW = ("| `qos.<topic>.reliability` / `.durability` / `.depth` | see topic table | QoS per topic "
           "(`costmap`, `odom`, `goal`, `trajectory`, `local_plan`, `cmd_vel`); read at configure. |\n")


def _yaml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else "''"
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return json.dumps(v)


def _table_value(v: Any) -> str:
    if isinstance(v, str):
        return v if v else '""'
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _range(rng: Any) -> str:
    if rng is None:
        return ""
    return f" Range [{rng.from_value}, {rng.to_value}]."


def render_yaml() -> str:
    from plan_ga_ros.ros.planner_node import PARAMETERS, QOS_DEFAULTS

    lines = ["# plan_ga_planner parameters (defaults). Every key is documented in README.md.",
             "plan_ga_planner:", "  ros__parameters:"]
    for name, (default, text, _) in PARAMETERS.items():
        lines += [f"    # {text}", f"    {name}: {_yaml_value(default)}"]
    lines += ["    # QoS per topic: reliability (reliable|best_effort), durability (volatile|transient_local), depth",
              "    qos:"]
    for role, (rel, dur, depth) in QOS_DEFAULTS.items():
        lines.append(f"      {role}: {{reliability: {rel}, durability: {dur}, depth: {depth}}}")
    return "\n".join(lines) + "\n"


def render_table() -> str:
    from plan_ga_ros.ros.planner_node import PARAMETERS

    rows = [f"| `{name}` | `{_table_value(default)}` | {text}{_range(rng)} |\n"
            for name, (default, text, rng) in PARAMETERS.items()]
    return TABLE_HEAD + "".join(rows) + QOS_ROW


def readme_with_table(readme: str) -> str:
    start = readme.index(TABLE_HEAD)
    end = readme.index(QOS_ROW, start) + len(QOS_ROW)
    return readme[:start] + render_table() + readme[end:]


def main() -> int:
    YAML.write_text(render_yaml())
    README.write_text(readme_with_table(README.read_text()))
    print(f"wrote {YAML.relative_to(REPO)} and the parameter table in {README.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
