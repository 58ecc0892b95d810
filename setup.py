"""ament_python package plan_ga_ros: a learned local planner node (ONNX Runtime)."""

from glob import glob

from setuptools import find_packages, setup

package_name = "plan_ga_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, f"{package_name}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml")),
        # The model, its card and the card's images (the node needs only the .onnx).
        (f"share/{package_name}/models", glob("models/*.onnx") + glob("models/*.md") + glob("models/*.png")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="plan_ga_ros developers",
    maintainer_email="plan-ga-ros@example.com",
    description="Learned local planner: costmap + odometry + goal -> ONNX Runtime -> trajectory and cmd_vel.",
    license="Apache-2.0",
    # plan_ga_demo draws its picture with matplotlib; without it the demo runs and says so.
    extras_require={"test": ["pytest"], "demo": ["matplotlib"]},
    entry_points={
        "console_scripts": [
            f"planner_node = {package_name}.ros.planner_node:main",
            f"sim_node = {package_name}.sim.sim_node:main",
            f"plan_ga_demo = {package_name}.sim.demo:main",
            f"plan_ga_replay = {package_name}.sim.replay:main",
        ],
    },
)
