"""One place per fact: no code outside a task's or a family's own module branches on a task
kind or a family's name, and the library's packages import in one direction (no cycle)."""

import ast
import re
from pathlib import Path

from hsic_jax.models import FAMILIES
from hsic_jax.train.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "hsic_jax").rglob("*.py"), ROOT / "run.py", ROOT / "pretrain.py",
                  *(ROOT / "convert").rglob("*.py")])
OWN = {ROOT / "hsic_jax" / "train" / "tasks.py",
       *(ROOT / "hsic_jax" / "models" / f"{name}.py" for name in FAMILIES)}


def _compared_strings(tree: ast.AST):
    """`(line, string)` of every string literal compared (==, !=, in, not in) in a condition."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                for leaf in ast.walk(side):
                    if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                        yield node.lineno, leaf.value


def test_no_branch_on_a_task_kind_or_a_family_name_outside_their_modules():
    # 'scene' is also a window and a `data.fit_on` value, which are not task kinds: a
    # comparison with it counts when it is made on a task or a model.
    kinds, families = set(TASKS) - {"scene"}, set(FAMILIES)
    found = []
    for path in SOURCES:
        if path in OWN:
            continue
        text = path.read_text()
        for line, value in _compared_strings(ast.parse(text)):
            source = text.splitlines()[line - 1]
            scene_task = value == "scene" and re.search(r"task|model|shape", source)
            if value in kinds or value in families or scene_task:
                found.append(f"{path.relative_to(ROOT)}:{line}: {source.strip()}")
    assert found == []


def _imports(path: Path) -> set[str]:
    """The hsic_jax modules `path` imports at its top level (lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hsic_jax"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("hsic_jax"))
    return out


def test_the_library_has_no_import_cycle():
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "hsic_jax").rglob("*.py")}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    # Packages import their modules (`hsic_jax.models` → `hsic_jax.models.spectralgpt`); an
    # edge into a package's __init__ from one of its own modules is not a cycle of concerns.
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" → ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


# Packages from the bottom up: a module imports from its own layer or a lower one only.
LAYERS = {"hsic_jax.data": 0, "hsic_jax.hosts": 0, "hsic_jax.progress": 0,
          "hsic_jax.models": 1, "hsic_jax.adapters": 1, "hsic_jax.evaluation": 2,
          "hsic_jax.train": 3}


def _layer(module: str) -> int | None:
    return next((n for p, n in LAYERS.items() if module == p or module.startswith(p + ".")), None)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path in (ROOT / "hsic_jax").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        own = _layer(module)
        for imported in _imports(path):
            theirs = _layer(imported)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} → {imported}")
    assert sorted(set(upward)) == []


def test_no_function_in_train_is_longer_than_60_lines():
    long = []
    for path in sorted((ROOT / "hsic_jax" / "train").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1})")
    assert long == []


def test_a_module_that_names_a_display_name_is_a_family(tmp_path, monkeypatch):
    """A family is found from its own module: no list elsewhere to edit."""
    import hsic_jax.models as models
    paper = ("spectralgpt", "spectralformer", "mambahsi", "hypersigma", "svm", "rf")
    assert tuple(f for f in models.FAMILIES if f in paper) == paper  # in the report's order
    package = tmp_path / "models"
    package.mkdir()
    for name in ("common.py", "svm.py"):
        (package / name).write_text((ROOT / "hsic_jax" / "models" / name).read_text())
    (package / "toy.py").write_text('DISPLAY_NAME = "Toy"\n')
    monkeypatch.setattr(models, "__file__", str(package / "__init__.py"))
    assert models._discover() == ("svm", "toy")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants of `tree`'s module, classes and functions."""
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def _family_names(path: Path) -> list[str]:
    """The source line of each place in `path`'s code (docstrings aside) that names a model
    family: a string literal that is a family's name, or an import of a family's module."""
    text = path.read_text()
    tree, found = ast.parse(text), []
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        named = (isinstance(node, ast.Constant) and node.value in FAMILIES
                 and id(node) not in docs)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)])
            named = any(m.removeprefix("hsic_jax.models.") in FAMILIES for m in modules
                        if m.startswith("hsic_jax.models."))
        if named:
            found.append(text.splitlines()[node.lineno - 1].strip())
    return found


def test_no_code_outside_a_family_names_it():
    """A family's facts live in its module (and its converter, `convert/<name>.py`): nowhere
    else does code spell a family's name or import its module, but for the family of what was
    written before families were named and the package's re-exports of SpectralGPT's API."""
    converters = {ROOT / "convert" / f"{name}.py" for name in FAMILIES}
    found = {str(path.relative_to(ROOT)): names for path in SOURCES
             if path not in OWN | converters and (names := _family_names(path))}
    assert found == {
        "hsic_jax/models/__init__.py": [
            "from hsic_jax.models.spectralgpt import VARIANTS, SpectralGPT, model_from_config"],
        "hsic_jax/models/converted.py": ['FIRST_FAMILY = "spectralgpt"']}
