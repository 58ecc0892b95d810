"""The ament_python package: colcon build into a workspace, run the installed node, load the launch files."""

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import onnx_models as om
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name("colcon")
OVERLAY_ENV = REPO / ".venv" / "ros_overlay" / "env.bash"
PACKAGE_FILES = ["setup.py", "setup.cfg", "package.xml", "resource", "launch", "config", "models", "plan_ga_ros"]
EXECUTABLES = ["planner_node", "sim_node", "plan_ga_demo"]


def build_install(tmp_path_factory) -> Path:
    """colcon build of a copy of the package, once per test session; returns the install/plan_ga_ros prefix."""
    ws = tmp_path_factory.getbasetemp() / "colcon_ws"
    prefix = ws / "install" / "plan_ga_ros"
    if (ws / "built").exists():
        return prefix
    shutil.rmtree(ws, ignore_errors=True)
    src = ws / "src" / "plan_ga_ros"
    src.mkdir(parents=True)
    for name in PACKAGE_FILES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, src / name)
    if not (src / "models" / "planner.onnx").exists():  # before the trained model ships
        om.go_to_goal(str(src / "models" / "planner.onnx"))
    out = subprocess.run([str(COLCON), "build", "--base-paths", "src"], cwd=ws, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (ws / "built").touch()
    return prefix


def installed_env(install: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default os.environ) with the installed package first on the ament and Python paths."""
    env = dict(os.environ if base is None else base)
    site = install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in [str(install), env.get("AMENT_PREFIX_PATH", "")] if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(site), env.get("PYTHONPATH", "")] if p)
    return env


def launch_env() -> tuple[dict[str, str] | None, str]:
    """(an environment where ``launch_ros`` imports, '') or (None, why not): this process's environment
    when it has launch_ros (a ROS 2 install, or the overlay sourced), else the built overlay's."""
    if importlib.util.find_spec("launch_ros") is not None:
        return dict(os.environ), ""
    if not OVERLAY_ENV.is_file():
        return None, ("launch_ros is not importable and no overlay is built: run "
                      "../shared/ros2-src/build.sh ../shared/ros2-src/tarballs .venv, or use a ROS 2 install")
    out = subprocess.run(["bash", "-c", f"source '{OVERLAY_ENV}' >/dev/null 2>&1 && env -0"], capture_output=True,
                         timeout=60, env=dict(os.environ))
    env = dict(kv.split("=", 1) for kv in out.stdout.decode().split("\0") if "=" in kv)
    check = subprocess.run([sys.executable, "-c", "import launch_ros.actions"], env=env, capture_output=True,
                           text=True, timeout=60)
    if out.returncode != 0 or check.returncode != 0:
        return None, f"launch_ros is not importable, not even with {OVERLAY_ENV}: {check.stderr[-300:]}"
    return env, ""


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    return build_install(tmp_path_factory)


def test_install_tree(install):
    share = install / "share" / "plan_ga_ros"
    for rel in ["package.xml", "config/planner.yaml", "config/nav2_local_costmap.yaml",
                "launch/planner.launch.py", "launch/demo.launch.py", "models/planner.onnx", "models/MODEL_CARD.md"]:
        assert (share / rel).is_file(), rel
    for image in (REPO / "models").glob("*.png"):  # the model card's images
        assert (share / "models" / image.name).is_file(), image.name
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "plan_ga_ros").is_file()
    for exe in EXECUTABLES:
        assert os.access(install / "lib" / "plan_ga_ros" / exe, os.X_OK), exe


def test_installed_modules_import(install):
    """The installed tree holds every module (sim, ros, core) and the node imports without torch."""
    code = ("import sys, plan_ga_ros.ros.planner_node, plan_ga_ros.ros.goals, plan_ga_ros.sim.sim_node, "
            "plan_ga_ros.sim.demo; import plan_ga_ros; print(plan_ga_ros.__file__); "
            "assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], env=installed_env(install), capture_output=True, text=True,
                         timeout=120, cwd=install)
    assert out.returncode == 0, out.stderr
    assert str(install) in out.stdout, out.stdout


def test_package_xml_declares_runtime_dependencies():
    """Every ROS package the runtime code imports is an exec_depend (and nothing unused at run time)."""
    root = ET.parse(REPO / "package.xml").getroot()
    exec_deps = {e.text for e in root.iter("exec_depend")}
    imported = set()
    for path in (REPO / "plan_ga_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
    ros_python = {"rclpy", "rcl_interfaces", "builtin_interfaces", "lifecycle_msgs", "std_msgs", "nav_msgs",
                  "geometry_msgs", "diagnostic_msgs", "rosgraph_msgs", "ament_index_python"}
    missing = {m for m in imported & ros_python if m not in exec_deps}
    assert not missing, f"imported but not declared: {missing}"
    if "tf2_ros" in imported:
        assert "tf2_ros_py" in exec_deps  # the Python tf2_ros module's package
    assert {"python3-numpy", "python3-onnxruntime-pip", "launch", "launch_ros"} <= exec_deps
    if "yaml" not in imported:
        assert "python3-yaml" not in exec_deps, "python3-yaml is declared but the runtime code does not import it"
    assert "lifecycle_msgs" in exec_deps  # rclpy.lifecycle needs it at run time


def test_installed_node_publishes(install):
    """lib/plan_ga_ros/planner_node --ros-args --params-file share/.../planner.yaml plans over DDS."""
    import numpy as np
    from harness import ExternalPlanner

    exe = install / "lib" / "plan_ga_ros" / "planner_node"
    params = install / "share" / "plan_ga_ros" / "config" / "planner.yaml"
    ext = ExternalPlanner([str(exe), "--ros-args", "--params-file", str(params)], installed_env(install))
    h = ext.harness
    try:
        grid = np.zeros((133, 97), np.int8)  # any size and resolution
        grid[:, 80] = 100
        h.set_costmap(grid, 0.07, (-3.0, -4.0, 0.3))
        h.send_goal(1.0, 1.0)
        ok = h.wait_for(lambda: len(h.messages("trajectory")) >= 10, 30)
        h.clear()
        time.sleep(1.0)
        n = len(h.messages("trajectory"))
        last_traj, last_path = h.messages("trajectory")[-1].msg, h.messages("local_plan")[-1].msg
    finally:
        log = ext.close()
    assert ok, log
    assert 14 <= n <= 26, f"{n} trajectories in 1 s"
    assert f"{install}/share/plan_ga_ros/models/planner.onnx" in log, log
    assert len(last_traj.data) == 60 and len(last_path.poses) == 21


def _calls(tree: ast.AST) -> dict[str, list[ast.Call]]:
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            calls.setdefault(name, []).append(node)
    return calls


@pytest.mark.parametrize("launch_file", ["planner.launch.py", "demo.launch.py"])
def test_launch_file_statically(install, launch_file):
    """Without launch: the file parses and names the installed package, executables and files."""
    path = install / "share" / "plan_ga_ros" / "launch" / launch_file
    tree = ast.parse(path.read_text())
    calls = _calls(tree)
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              for t in n.targets if isinstance(t, ast.Name)}

    def value(node: ast.AST):
        return consts[node.id] if isinstance(node, ast.Name) else ast.literal_eval(node)

    assert "def generate_launch_description" in path.read_text()
    nodes = calls.get("Node", [])
    assert nodes, "no launch_ros Node"
    for node in nodes:
        kw = {k.arg: k.value for k in node.keywords}
        assert value(kw["package"]) == "plan_ga_ros"
        exe = value(kw["executable"])
        assert os.access(install / "lib" / "plan_ga_ros" / exe, os.X_OK), exe
    joined = [ast.literal_eval(a) for c in calls.get("join", []) for a in c.args[1:] if isinstance(a, ast.Constant)]
    for f in (j for j in joined if "." in j):
        assert (install / "share" / "plan_ga_ros" / "config" / f).is_file() or \
               (install / "share" / "plan_ga_ros" / "models" / f).is_file(), f


def _load_launch_description(install: Path, launch_file: str, env: dict[str, str]) -> dict:
    """Load the installed launch file with the real launch library in a subprocess; its arguments and
    the node actions it makes (an OpaqueFunction is performed with the default arguments)."""
    code = r"""
import importlib.util, json, sys
import launch
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage
spec = importlib.util.spec_from_file_location("lf", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
ld = module.generate_launch_description()
assert isinstance(ld, launch.LaunchDescription), type(ld)
context = launch.LaunchContext()
args, nodes, todo = {}, [], list(ld.entities)
while todo:
    entity = todo.pop(0)
    if isinstance(entity, DeclareLaunchArgument):
        args[entity.name] = launch.utilities.perform_substitutions(context, entity.default_value)
        context.launch_configurations[entity.name] = args[entity.name]
    elif isinstance(entity, OpaqueFunction):
        todo[:0] = entity.execute(context) or []
    elif isinstance(entity, Node):
        entity._perform_substitutions(context)  # names, parameter files and remappings, as launching does
        package, executable = (v if isinstance(v, str) else launch.utilities.perform_substitutions(context, v)
                               for v in (entity._Node__package, entity.node_executable))
        params = getattr(entity, "_Node__expanded_parameter_arguments", None)
        nodes.append({"package": package, "name": entity.node_name,
                      "executable": ExecutableInPackage(executable, package).perform(context),
                      "remappings": entity.expanded_remapping_rules or [],
                      "parameters": None if params is None else [list(p) for p in params]})
print(json.dumps({"args": args, "nodes": nodes}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(install / "share" / "plan_ga_ros" / "launch" / launch_file)],
                         env=installed_env(install, env), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("launch_file", ["planner.launch.py", "demo.launch.py"])
def test_launch_file_loads(install, launch_file):
    """With the real launch library: the launch description is made and its nodes resolve."""
    env, why = launch_env()
    if env is None:
        pytest.skip(why)
    described = _load_launch_description(install, launch_file, env)
    assert described["nodes"], described
    for node in described["nodes"]:
        exe = Path(node["executable"])
        assert node["package"] == "plan_ga_ros" and exe.is_file() and os.access(exe, os.X_OK), node
        assert str(install) in str(exe), node
    if launch_file == "planner.launch.py":
        args = described["args"]
        assert {"params_file", "model_path", "use_sim_time", "log_level", "path_topic"} <= set(args)
        assert Path(args["params_file"]).is_file()
        (node,) = described["nodes"]
        assert node["name"].endswith("/plan_ga_planner") and node["remappings"] == [], node
        if node["parameters"] is not None:  # with default arguments the params file alone: nothing overrides it
            assert node["parameters"] == [[args["params_file"], True]], node


def test_params_file_matches_declared_parameters():
    from plan_ga_ros.parameters import PARAMETERS, QOS_DEFAULTS

    params = yaml.safe_load((REPO / "config" / "planner.yaml").read_text())["plan_ga_planner"]["ros__parameters"]
    qos = params.pop("qos")
    plain = {name: p.default for name, p in PARAMETERS.items() if not name.startswith("qos.")}
    assert params == plain
    assert {r: (q["reliability"], q["durability"], q["depth"]) for r, q in qos.items()} == QOS_DEFAULTS
    readme = (REPO / "README.md").read_text()
    for name in plain:
        assert f"`{name}`" in readme, f"parameter {name} missing from the README table"
    sys.path.insert(0, str(REPO / "scripts"))
    import gen_params

    hint = "run `make params` to regenerate it from plan_ga_ros.parameters.PARAMETERS"
    assert (REPO / "config" / "planner.yaml").read_text() == gen_params.render_yaml(), hint
    assert readme == gen_params.readme_with_table(readme), hint
