#!/usr/bin/env bash
# Build every package's wheel, then prove that a wheel works on its own: for each package named
# (default: all), make a fresh venv, install that one wheel with its in-repo dependencies taken
# only from the freshly built wheels in dist/ (third-party ones from the index, torch pinned to
# TORCH_SPEC, default ==2.13.0, the local CPU wheel), check that no other project package came
# along, and run the package's tests against the installed wheel (not the source tree). A package
# whose README example needs files (prohmr-model: a checkpoint, an image, an OpenPose file) also
# runs that example there, in an empty folder with those files made by the installed package.
#
#   bash tools/check_wheels.sh pose-geometry pose-metrics
#
# Needs hatch on PATH (for `hatch build`) and python3.11.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3.11}
torch_spec=${TORCH_SPEC:-==2.13.0}
all_packages=(pose-geometry pose-metrics pose-body pose-flows hmr-backbone pose-losses pose-data pose-fitting prohmr-model)
if [ "$#" -gt 0 ]; then packages=("$@"); else packages=("${all_packages[@]}"); fi

for pkg in "${packages[@]}"; do
  if [ ! -d "packages/$pkg" ]; then
    echo "check_wheels: unknown package '$pkg'; expected one of: ${all_packages[*]}" >&2
    exit 2
  fi
done

dist=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$dist" "$work"' EXIT
echo "== building wheels into $dist"
for pkg in "${all_packages[@]}"; do
  (cd "packages/$pkg" && hatch build -t wheel "$dist" >/dev/null)
done
ls "$dist"
n_wheels=$(ls "$dist"/*.whl | wc -l)
if [ "$n_wheels" -ne "${#all_packages[@]}" ]; then
  echo "check_wheels: expected ${#all_packages[@]} wheels, built $n_wheels" >&2
  exit 1
fi

for pkg in "${packages[@]}"; do
  mod=${pkg//-/_}
  echo "== $pkg: fresh venv, wheel install, tests"
  venv="$work/venv-$pkg"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q "torch$torch_spec" pytest hypothesis roma
  wheel=$(ls "$dist/${mod}"-*.whl)
  "$venv/bin/python" -m pip install -q --find-links "$dist" --report "$work/report-$pkg.json" "$wheel"
  # Every project distribution that pip installed must come from $dist, and be one the package
  # declares (directly or through a sibling): nothing else of the project.
  "$venv/bin/python" - "$pkg" "$dist" "$work/report-$pkg.json" "${all_packages[@]}" <<'PY'
import json, sys
from importlib.metadata import distribution, requires
from packaging.requirements import Requirement

pkg, dist, report, *project = sys.argv[1:]
installed = {i["metadata"]["name"]: i["download_info"]["url"] for i in json.load(open(report))["install"]}
closure, todo = set(), [pkg]
while todo:
    name = todo.pop()
    if name in closure:
        continue
    closure.add(name)
    todo += [Requirement(r).name for r in (requires(name) or []) if Requirement(r).name in project]
ours = {name for name in installed if name in project}
assert ours == closure, f"{pkg}: installed project packages {sorted(ours)}, declared closure {sorted(closure)}"
for name in ours:
    assert installed[name].startswith("file://" + dist), f"{name} came from {installed[name]}, not {dist}"
module = __import__(pkg.replace("-", "_"))
assert "site-packages" in module.__file__, f"{pkg} imported from {module.__file__}, not the wheel"
print(f"{pkg}: installed {sorted(ours)} from the built wheels; imports from {module.__file__}")
PY
  (cd "$work" && "$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" "$root/packages/$pkg/tests")
  if [ "$pkg" = prohmr-model ]; then
    echo "== $pkg: the README example with the installed wheel"
    example="$work/example-$pkg"
    mkdir "$example"
    (cd "$example" && "$venv/bin/python" -I - "$root/packages/$pkg/README.md" <<'PY'
import json, re, sys
from pathlib import Path

import cv2
import numpy as np

from prohmr_model.testing import save_checkpoint_of, stick_figure, tiny_model

assert "site-packages" in sys.modules["prohmr_model"].__file__
# What the example reads: a checkpoint (a tiny untrained model), a picture and its OpenPose file.
save_checkpoint_of("checkpoint.pt", tiny_model())
image, keypoints = stick_figure()
cv2.imwrite("im1010.jpg", np.ascontiguousarray(image[..., ::-1]))
people = {"people": [{"pose_keypoints_2d": keypoints.ravel().tolist()}]}
Path("im1010_openpose.json").write_text(json.dumps(people))
readme = Path(sys.argv[1])
namespace = {"__name__": "__readme__"}  # the blocks continue one another, as in a session
for i, block in enumerate(re.findall(r"^```python\n(.*?)^```", readme.read_text(), re.M | re.S)):
    exec(compile(block, f"{readme}[block {i}]", "exec"), namespace)
PY
    )
  fi
done
echo "== wheels OK: ${packages[*]}"
