"""
Builds test/conformance/localstack-cases.json: Step Functions executions recorded on real AWS by
LocalStack's `aws.validated` snapshot tests (Apache-2.0, github.com/localstack/localstack,
tests/aws/services/stepfunctions/v2), as data: definition, input, and what AWS recorded.

It does not run LocalStack. It imports each test module with every `localstack.*` import stubbed
out, calls each validated test with a fake `aws_client` that only records the definitions and
inputs the test would send, and joins those with the `*.snapshot.json` recorded on AWS by test id
and snapshot key.

    git -C <localstack mirror> archive HEAD tests localstack-core/localstack/testing/pytest/stepfunctions | tar -x -C /tmp/ls
    pip install json5
    python3 test/conformance/extract/localstack_cases.py /tmp/ls > test/conformance/localstack-cases.json
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import itertools
import json
import os
import sys
import types
from unittest.mock import MagicMock

ROOT = sys.argv[1]
V2 = os.path.join(ROOT, "tests/aws/services/stepfunctions/v2")
UTILS = os.path.join(ROOT, "localstack-core/localstack/testing/pytest/stepfunctions/utils.py")

# ---------------------------------------------------------------- stubs


class Marker:
    """`markers.aws.validated` and friends: tag the function, keep it callable."""

    def __init__(self, tag):
        self.tag = tag

    def __call__(self, *a, **k):
        if len(a) == 1 and callable(a[0]) and not k:
            fn = a[0]
            setattr(fn, "_ls_" + self.tag, True)
            return fn
        return lambda fn: fn

    def __getattr__(self, name):
        return Marker(name)


class StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        full = f"{self.__name__}.{name}"
        if full in ("localstack.testing", "localstack.testing.pytest", "localstack.testing.pytest.markers") or full.startswith(
            "localstack.testing.pytest.stepfunctions"
        ):
            return importlib.import_module(full)
        m = MagicMock(name=full)
        setattr(self, name, m)
        return m


class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "localstack.testing.pytest.stepfunctions.utils":
            return importlib.util.spec_from_file_location(name, UTILS)
        if name.split(".")[0] in ("localstack", "localstack_snapshot"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = StubModule(spec.name)
        m.__path__ = []
        if spec.name == "localstack.testing.pytest.markers":
            m.aws = Marker("aws")
            m.snapshot = Marker("snapshot")
            m.requires_in_process = Marker("x")
            m.only_on_amd64 = Marker("x")
        return m

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, Finder())
sys.path.insert(0, ROOT)

import pytest  # noqa: E402  (real: parametrize marks are read from it)

# ---------------------------------------------------------------- capture


class Exec:
    def __init__(self, sm, inp):
        self.sm = sm
        self.input = inp


class FakeSfn:
    def __init__(self, cap):
        self.cap = cap

    def create_state_machine(self, **kw):
        n = len(self.cap["machines"])
        arn = f"arn:aws:states:us-east-1:111111111111:stateMachine:sm{n}"
        self.cap["machines"][arn] = kw
        self.cap["last_definition"] = kw.get("definition")
        return {"stateMachineArn": arn, "creationDate": "x"}

    def start_execution(self, **kw):
        arn = f"arn:aws:states:us-east-1:111111111111:execution:x:e{len(self.cap['execs'])}"
        self.cap["execs"][arn] = Exec(kw.get("stateMachineArn"), kw.get("input", "{}"))
        return {"executionArn": arn, "startDate": "x"}

    def get_execution_history(self, **kw):
        return {"__exec__": kw.get("executionArn")}

    def describe_execution(self, **kw):
        return {"__exec__": kw.get("executionArn")}

    def validate_state_machine_definition(self, **kw):
        return {"__validate__": kw.get("definition")}

    def __getattr__(self, name):
        return MagicMock(name=name)


class FakeAws:
    def __init__(self, cap):
        self.stepfunctions = FakeSfn(cap)
        self.sfn = self.stepfunctions

    def __getattr__(self, name):
        return MagicMock(name=name)


class FakeSnapshot:
    def __init__(self, cap):
        self.cap = cap
        self.transform = MagicMock()

    def match(self, key, value):
        self.cap["matches"].append((key, value, self.cap.get("last_definition")))

    def __getattr__(self, name):
        return MagicMock(name=name)


def param_sets(fn):
    """Expands @pytest.mark.parametrize marks into (id, kwargs), as pytest names them."""
    marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
    axes = []
    for m in marks:
        names = m.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        values = list(m.args[1])
        ids = m.kwargs.get("ids")
        axis = []
        for i, v in enumerate(values):
            marks_v = None
            if hasattr(v, "values") and hasattr(v, "marks") and hasattr(v, "id"):
                marks_v, pid, v = v.marks, v.id, v.values
                v = v if len(names) > 1 else v[0]
            else:
                pid = None
            vals = list(v) if len(names) > 1 else [v]
            if pid is None and ids is not None:
                pid = ids[i] if not callable(ids) else ids(v)
            if pid is None:
                parts = []
                for n, x in zip(names, vals):
                    if isinstance(x, (str, int, float, bool)) or x is None:
                        parts.append(str(x))
                    else:
                        parts.append(f"{n}{i}")
                pid = "-".join(parts)
            axis.append((str(pid), dict(zip(names, vals))))
        axes.append(axis)
    if not axes:
        return [("", {})]
    out = []
    # pytest applies the decorator closest to the function first: its ids come first.
    for combo in itertools.product(*reversed(axes)):
        pid = "-".join(c[0] for c in combo)
        kw = {}
        for c in combo:
            kw.update(c[1])
        out.append((pid, kw))
    return out


def run_test(cls, name, fn, kwargs):
    cap = {"machines": {}, "execs": {}, "matches": [], "last_definition": None}
    aws = FakeAws(cap)
    fixtures = {
        "aws_client": aws,
        "aws_client_no_retry": aws,
        "create_state_machine_iam_role": lambda *a, **k: "arn:aws:iam::111111111111:role/r",
        "create_state_machine": lambda client, **kw: client.stepfunctions.create_state_machine(**kw),
        "sfn_snapshot": FakeSnapshot(cap),
        "snapshot": FakeSnapshot(cap),
    }
    sig = inspect.signature(fn)
    args = {}
    foreign = []
    for p in list(sig.parameters)[1:]:
        if p in kwargs:
            args[p] = kwargs[p]
        elif p in fixtures:
            args[p] = fixtures[p]
        else:
            foreign.append(p)
            args[p] = MagicMock(name=p)
    err = None
    try:
        fn(cls(), **args)
    except BaseException as e:  # pytest.raises → Failed, asserts, stubs
        err = type(e).__name__
    return cap, foreign, err


def in_scope(c):
    """The engine's own semantics: no Task resources, no fixtures of other services, Standard type."""
    if c.get("fixtures") or not isinstance(c.get("definition"), str):
        return False
    if c["kind"] != "execution":
        return True
    return '"Resource"' not in c["definition"] and "EXPRESS" not in c["type"]


TERMINAL = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")


def slim(c):
    """Keeps what the harness compares: event types and previous ids, and the terminal event's details."""
    if c["kind"] != "execution":
        return c
    events = [{"type": e["type"], "previousEventId": e.get("previousEventId")} for e in c["events"]]
    last = c["events"][-1] if c["events"] else {}
    out = {k: v for k, v in c.items() if k not in ("events", "fixtures", "type")}
    out["types"] = [e["type"] for e in events]
    out["previous"] = [e["previousEventId"] for e in events]
    if last.get("type") in TERMINAL:
        key = last["type"][0].lower() + last["type"][1:] + "EventDetails"
        out["terminal"] = {"type": last["type"], **(last.get(key) or {})}
    return out


def main():
    snaps = {}
    cases = []
    for dirpath, _dirs, files in os.walk(V2):
        for f in sorted(files):
            if not (f.startswith("test_") and f.endswith(".py")):
                continue
            path = os.path.join(dirpath, f)
            snap_path = path[:-3] + ".snapshot.json"
            if not os.path.exists(snap_path):
                continue
            with open(snap_path) as fh:
                snaps = json.load(fh)
            rel = os.path.relpath(path, ROOT)
            modname = rel[:-3].replace("/", ".")
            try:
                mod = importlib.import_module(modname)
            except BaseException as e:
                print(f"skip {rel}: {type(e).__name__} {e}", file=sys.stderr)
                continue
            for cname, cls in inspect.getmembers(mod, inspect.isclass):
                if not cname.startswith("Test") or cls.__module__ != modname:
                    continue
                for mname, fn in inspect.getmembers(cls, inspect.isfunction):
                    if not mname.startswith("test_") or not getattr(fn, "_ls_validated", False):
                        continue
                    for pid, kw in param_sets(fn):
                        tid = f"{rel}::{cname}::{mname}" + (f"[{pid}]" if pid else "")
                        rec = snaps.get(tid, {}).get("recorded-content")
                        if rec is None:
                            continue
                        cap, foreign, err = run_test(cls, mname, fn, kw)
                        # `with pytest.raises(...)`: the fake accepted the definition, so the test
                        # stopped before it matched the error; the recorded error is the expectation.
                        matched = {k for k, _v, _d in cap["matches"]}
                        refused = [
                            (k, v)
                            for k, v in rec.items()
                            if k not in matched and isinstance(v, dict) and isinstance(v.get("Error"), dict) and v["Error"].get("Code") == "InvalidDefinition"
                        ]
                        if err == "Failed" and len(refused) == 1 and cap["last_definition"]:
                            k, v = refused[0]
                            cases.append({"id": tid, "key": k, "kind": "reject", "definition": cap["last_definition"], "error": v["Error"], "message": v.get("message")})
                        for key, value, last_def in cap["matches"]:
                            recorded = rec.get(key)
                            if recorded is None:
                                continue
                            base = {"id": tid, "key": key}
                            if foreign:
                                base["fixtures"] = foreign
                            if isinstance(value, dict) and "__exec__" in value:
                                ex = cap["execs"].get(value["__exec__"])
                                if not ex or "events" not in recorded:
                                    continue
                                sm = cap["machines"].get(ex.sm, {})
                                cases.append(
                                    {
                                        **base,
                                        "kind": "execution",
                                        "definition": sm.get("definition"),
                                        "type": str(sm.get("type", "STANDARD")),
                                        "input": ex.input,
                                        "events": recorded["events"],
                                    }
                                )
                            elif isinstance(value, dict) and "__validate__" in value:
                                cases.append({**base, "kind": "validate", "definition": value["__validate__"], "recorded": recorded})
                            elif isinstance(recorded, dict) and isinstance(recorded.get("Error"), dict) and last_def:
                                code = recorded["Error"].get("Code")
                                if code in ("InvalidDefinition", "ValidationException"):
                                    cases.append({**base, "kind": "reject", "definition": last_def, "error": recorded["Error"], "message": recorded.get("message")})
    json.dump([slim(c) for c in cases if in_scope(c)], sys.stdout, indent=0, separators=(",", ":"))
    print(f"{len(cases)} cases", file=sys.stderr)


main()
