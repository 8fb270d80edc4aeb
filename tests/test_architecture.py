"""The house rules of the package, checked: one folder per stage, no import cycle, small
modules, database drivers only in the store, click/rich only in the CLI, and a rule engine that
never pulls in audio, ASR, database or CLI libraries (what keeps re-scoring cheap)."""
import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "qa_inspect"
MAX_LINES = 620  # "no module over ~600 lines"
MAX_ROOT_MODULES = 8


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        name = ".".join(p.relative_to(PKG.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node, except what sits under ``if TYPE_CHECKING:`` (never imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file that runs, at any depth (function-level
    included)."""
    found = []
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            found.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for mod, names in _imports(p):
            if not mod.startswith("qa_inspect"):
                continue
            targets = [f"{mod}.{n}" if f"{mod}.{n}" in mods else mod for n in names] or [mod]
            graph[m].update(t for t in targets if t in mods and t != m)
    return graph


def test_no_import_cycle_between_modules():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_modules_are_small_and_the_root_is_thin():
    big = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}
    root_modules = [p.name for p in PKG.glob("*.py") if p.name != "__init__.py"]
    assert len(root_modules) <= MAX_ROOT_MODULES, root_modules


def _users_of(*libs: str) -> set[str]:
    out = set()
    for m, p in _modules().items():
        for mod, _names in _imports(p):
            if mod.split(".")[0] in libs:
                out.add(m)
    return out


def test_database_drivers_only_in_the_store():
    assert {m for m in _users_of("sqlite3", "psycopg") if not m.startswith("qa_inspect.store")} == set()


def test_click_and_rich_only_in_the_cli():
    assert {m for m in _users_of("click", "rich") if not m.startswith("qa_inspect.cli")} == set()


def test_no_torch_or_librosa_in_the_package():
    """Diarization runs resemblyzer's encoder in numpy (``speech/voice.py``): torch and librosa
    cost a worker ~350 MiB and ~5 s of start-up (issue 18). They are test references only."""
    assert _users_of("torch", "librosa", "numba", "resemblyzer") == set()


def test_no_private_name_imported_across_modules():
    bad = []
    for m, p in _modules().items():
        for mod, names in _imports(p):
            if mod.startswith("qa_inspect"):
                bad += [f"{m}: {mod}.{n}" for n in names if n.startswith("_")]
    assert bad == []


FORBIDDEN_FOR_RULES = ("soundfile", "av", "librosa", "faster_whisper", "ctranslate2", "torch", "resemblyzer",
                       "webrtcvad", "sqlite3", "psycopg", "click", "rich", "ray", "openpyxl", "jinja2")


def test_rule_engine_runs_without_audio_asr_db_or_cli_libraries(root):
    """Load a pack, evaluate a call with every kind of condition (phrases, pinyin, fuzzy,
    regex, metrics, similar_to) and score it: none of those libraries gets imported."""
    code = f"""
import sys
from qa_inspect.records import Transcript, Turn
from qa_inspect.rules import evaluate, load_pack
from qa_inspect.scoring import score
for name in ("telecom_zh", "customer_service_zh"):
    pack = load_pack({str(root)!r} + "/rules/" + name + ".yaml")
    tr = Transcript(call_id="c", language="zh", turns=(
        Turn(role="agent", text="您好，工号1234，很高兴为您服务", start=0.0, end=2.0),
        Turn(role="customer", text="我要投诉，你们太差了，我去工信部", start=2.5, end=5.0),
        Turn(role="agent", text="非常抱歉给您带来不便，还有什么可以帮您", start=5.2, end=8.0)))
    results = evaluate(pack, tr, {{"duration_s": 8.0, "customer_sentiment_end": -0.5}})
    score(pack, results)
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = set(out.stdout.split())
    assert "qa_inspect" in loaded
    assert loaded.isdisjoint(FORBIDDEN_FOR_RULES), sorted(loaded & set(FORBIDDEN_FOR_RULES))
