"""The user's own dataset (``dataset = "package.module:function"``), the loss and metrics keys,
and the quick check of import references before any cell runs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import ROOT, cli_env, keras_script, run_cells, run_cli

from harness import scenario
from harness.scenario import ScenarioError

EXAMPLE = ROOT / "examples" / "own_model"


def _write(tmp_path, text: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loss_and_metrics_are_validated_keys_with_todays_defaults(tmp_path):
    (cell,) = scenario.load(_write(tmp_path, "[defaults]\n")).cells
    assert (cell.loss.name, cell.loss.kwargs, cell.metrics) == (
        "sparse_categorical_crossentropy",
        (),
        ("accuracy",),
    )
    sc = scenario.load(
        _write(
            tmp_path,
            '[defaults]\ndataset = "mine:data"\nmetrics = ["accuracy", "top_k_categorical_accuracy"]'
            '\n[matrix]\nloss = ["categorical_crossentropy", { name = "categorical_crossentropy", '
            "label_smoothing = 0.1 }]\n",
        )
    )
    assert [c.id for c in sc.cells] == [
        "categorical_crossentropy",
        "categorical_crossentropy-label_smoothing0.1",
    ]
    assert sc.cells[1].loss.kwargs == (("label_smoothing", 0.1),)
    assert sc.cells[1].metrics == ("accuracy", "top_k_categorical_accuracy")
    for cell in sc.cells:  # what a result holds, read back
        assert scenario.Cell.from_json(json.loads(json.dumps(cell.to_json()))) == cell
    older = sc.cells[0].to_json()  # a result from before the keys: today's defaults
    del older["loss"], older["metrics"]
    assert scenario.Cell.from_json(older) == dataclasses.replace(
        sc.cells[0], loss=scenario.Named("sparse_categorical_crossentropy"), metrics=("accuracy",)
    )
    for text, key, message in (
        ('loss = "mse"', "defaults.loss", "unknown loss 'mse'; accepted: "
         "sparse_categorical_crossentropy, categorical_crossentropy"),
        ("loss = { from_logits = true }", "defaults.loss", 'a loss table needs a "name"'),
        ('metrics = ["acuracy"]', "defaults.metrics", "unknown metric 'acuracy' (did you mean "
         "'accuracy'?)"),
        ("metrics = 3", "defaults.metrics", 'must be a list of metric names, e.g. ["accuracy"]'),
        ('dataset = "my_data.digits"', "defaults.dataset", "unknown dataset 'my_data.digits' (did "
         'you mean "my_data:digits"?); accepted: mnist, digits, synthetic, or an import reference "package.module:function"'),
    ):  # fmt: skip
        with pytest.raises(ScenarioError) as err:
            scenario.load(_write(tmp_path, f"[defaults]\n{text}\n", "bad.toml"))
        assert str(err.value).startswith(f"{tmp_path / 'bad.toml'}: key '{key}': {message}")


def test_import_references_remember_the_key_that_gave_them(tmp_path):
    sc = scenario.load(EXAMPLE / "own-model.toml")
    assert sc.where("dataset", "my_data:digits") == "defaults.dataset"
    assert sc.where("model", "my_models:build") == "matrix.model[0]"
    assert {c.dataset for c in sc.cells} == {"my_data:digits"}
    assert sc.cells[0].split_sizes() == (None, None)  # the user's function decides
    changed = scenario.override(sc, ["dataset=other:load"], "--candidate-set")
    assert changed.where("dataset", "other:load") == "--candidate-set"
    assert changed.where("model", "my_models:build") == "matrix.model[0]"


BAD = """\
import keras
import numpy as np

def five(input_shape, num_classes, settings):
    i = keras.Input(input_shape)
    return keras.Model(i, keras.layers.Dense(5)(keras.layers.Flatten()(i)))

def not_a_model(input_shape, num_classes, settings):
    return 42

def text(settings):
    return "nope"

def floats(settings):
    x = np.zeros((8, 4, 4), "float32")
    return (x, np.linspace(0, 1, 8)), (x, np.zeros(8, "int64"))

def short(settings):
    x = np.zeros((8, 4, 4), "float32")
    return (x, np.zeros(7, "int64")), (x, np.zeros(8, "int64"))

def raises(settings):
    raise OSError("no such file: /data/train.npz")

class Batches(keras.utils.PyDataset):
    def __init__(self, size):
        super().__init__()
        self.size = size
    def __len__(self):
        return 2
    def __getitem__(self, i):
        return np.zeros((self.size, 4, 4), "float32"), np.zeros(self.size, "int64")

def wrong_batches(settings):
    return Batches(16), Batches(16)

def tiny(settings):
    settings["batch_size"] = 1  # a copy: the cell's own settings stay as they are
    x = np.zeros((64, 4, 4), "float32")
    return (x, np.arange(64) % 3), (x[:8], np.arange(8) % 3)

def column(settings):  # class ids as (N, 1), as keras' cifar10 loader gives them
    x = np.zeros((64, 4, 4), "float32")
    print("loading...", end="")  # the user's own output must not garble the answer
    return (x, (np.arange(64) % 5)[:, None]), (x[:8], (np.arange(8) % 5)[:, None])

def one_class(settings):
    x = np.zeros((8, 4, 4), "float32")
    return (x, np.zeros(8, "int64")), (x, np.zeros(8, "int64"))

def scalar(settings):
    x = np.zeros((8, 4, 4), "float32")
    return (x, np.int64(3)), (x, np.zeros(8, "int64"))

def mixed(settings):
    x = np.zeros((8, 4, 4), "float32")
    return (x, np.eye(2)[np.arange(8) % 2]), (x, np.arange(8) % 2)

class Broken(Batches):
    def __getitem__(self, i):
        raise IndexError("batch 0 is on a disk that is not mounted")

def broken(settings):
    return Broken(8), Broken(8)

class Sub(keras.Model):  # subclassed: no graph, no compute_output_shape of its own
    def __init__(self, num_classes):
        super().__init__()
        self.flat = keras.layers.Flatten()
        self.out = keras.layers.Dense(num_classes, activation="softmax")
    def call(self, x):
        return self.out(self.flat(x))

def sub(input_shape, num_classes, settings):
    return Sub(num_classes)

def exits(settings):
    import sys
    sys.exit("no data file")
"""

CHECKS = [  # (model, dataset): what the quick check answers
    ("bad_models:five", "digits", "model", "model bad_models:five: its output shape (1, 5) does "
     "not match the labels: 10 classes, one probability each (softmax)"),
    ("bad_models:not_a_model", "digits", "model", "model bad_models:not_a_model: not_a_model "
     "returned int, not a keras.Model"),
    ("bad_models:missing", "digits", "model", "model bad_models:missing: bad_models has no "
     "function missing"),
    ("no_such_module:build", "digits", "model", "model no_such_module:build: cannot import "
     "no_such_module: ModuleNotFoundError: No module named 'no_such_module'"),
    ("mlp", "bad_models:text", "dataset", "dataset bad_models:text: text returned str; expected "
     "((x_train, y_train), (x_test, y_test)) arrays, or (train, test) as keras.utils.PyDataset "
     "or tf.data.Dataset batches of (x, y)"),
    ("mlp", "bad_models:floats", "dataset", "dataset bad_models:floats: train labels are "
     "float64, not class ids (integers) or one-hot"),
    ("mlp", "bad_models:short", "dataset", "dataset bad_models:short: train has 8 samples but "
     "7 labels"),
    ("mlp", "bad_models:raises", "dataset", "dataset bad_models:raises: raises raised OSError: "
     "no such file: /data/train.npz"),
    ("mlp", "bad_models:wrong_batches", "dataset", "dataset bad_models:wrong_batches: train "
     "batch 0 holds 16 samples, not batch_size 8: build the batches with "
     "settings['batch_size']"),
    ("cnn", "bad_models:tiny", "model", "model cnn cannot take samples of shape (4, 4) from "
     "dataset bad_models:tiny: "),
    ("mlp", "bad_models:one_class", "dataset", "dataset bad_models:one_class: its labels name "
     "1 class(es); a classifier needs 2 to 100,000"),
    ("mlp", "bad_models:scalar", "dataset", "dataset bad_models:scalar: train has 8 samples "
     "but no labels"),
    ("mlp", "bad_models:mixed", "dataset", "dataset bad_models:mixed: class ids in some labels, "
     "one-hot rows in others"),
    ("mlp", "bad_models:broken", "dataset", "dataset bad_models:broken: IndexError: batch 0 "
     "is on a disk that is not mounted"),
    ("mods:build", "digits", "model", "model mods:build: mods has no function build"),
    ("mlp", "bad_models:exits", "dataset", "dataset bad_models:exits: exits raised SystemExit: "
     "no data file"),
]  # fmt: skip


def test_the_quick_check_answers_for_every_kind_of_bad_reference(once, tmp_path):
    """One check worker, every task: the messages a user sees, word for word."""
    (tmp_path / "bad_models.py").write_text(BAD)

    # another scenario's module of the same name, in its own folder, checked by the same worker
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mods.py").write_text("def build(input_shape, num_classes, settings):"
                                                "\n    return 1\n")  # fmt: skip
    (tmp_path / "mods.py").write_text("# no build here\n")

    def task(model: str, dataset: str, folder=tmp_path, **settings) -> dict:
        cell = scenario.Cell("s", "c", model=model, dataset=dataset, batch_size=8,
                             python_path=(str(folder),), **settings)  # fmt: skip
        return {"cell": cell.to_json()}

    loss = scenario.Named("categorical_crossentropy")
    tasks = [task("mods:build", "digits", tmp_path / "other")]  # imported first
    tasks += [task(m, d) for m, d, _, _ in CHECKS] + [
        task("bad_models:sub", "digits"),
        task("mlp", "bad_models:tiny"),
        task("mlp", "bad_models:column"),
        task("mlp", "bad_models:tiny", loss=loss),  # one-hot loss, class ids
        task("mlp", "digits", loss=scenario.Named(loss.name, (("label_smoothin", 0.1),))),
    ]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    proc = subprocess.run(
        [sys.executable, "-m", "harness.worker.refcheck", str(tmp_path / "tasks.json")],
        env=cli_env({"KERAS_BACKEND": once, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(answers) == len(tasks), proc.stderr[-2000:]
    assert answers[0]["field"] == "model" and "returned int" in answers[0]["error"]
    for (_, _, field, message), answer in zip(CHECKS, answers[1:], strict=False):
        assert answer["field"] == field and answer["error"].startswith(message), answer
    sub, tiny, column, loss, typo = answers[-5:]
    assert sub["ok"], sub  # a subclassed model is built and checked too
    # the 3 classes of 4x4 float samples, fed as they are: the model is built for them
    assert tiny == {"index": len(CHECKS) + 2, "ok": True, "input_shape": [4, 4],
                    "num_classes": 3}  # fmt: skip
    assert column["ok"] and column["num_classes"] == 5  # (N, 1) class ids
    assert loss == {"index": len(tasks) - 2, "field": "loss", "error":
                    "categorical_crossentropy takes one-hot labels; dataset bad_models:tiny "
                    "gives class ids: use sparse_categorical_crossentropy"}  # fmt: skip
    assert typo["field"] == "loss" and typo["error"].startswith(
        "loss categorical_crossentropy-label_smoothin0.1: TypeError: "
    ), typo


def test_a_bad_reference_stops_the_run_before_anything_is_written(once, tmp_path):
    (tmp_path / "bad_models.py").write_text(BAD)
    sc = _write(
        tmp_path,
        'python_path = ["."]\n[defaults]\ntrain_samples = 256\n[matrix]\n'
        'model = ["mlp", "bad_models:five"]\n',
        "bad.toml",
    )
    out = tmp_path / "r"
    proc = run_cli("run", str(sc), "--backend", once, "--out", str(out))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"harness: {sc}: key 'matrix.model[1]': model bad_models:five: its output shape (1, 5) "
        "does not match the labels: 10 classes, one probability each (softmax)"
    )
    assert not out.exists()  # nothing written
    assert "Traceback" not in proc.stderr
    proc = run_cli("validate", str(sc), "--backend", once)  # the same check, without running
    assert proc.returncode == 2 and "key 'matrix.model[1]'" in proc.stderr


def test_the_users_own_pydataset_trains_and_other_pipelines_are_unsupported(once, tmp_path):
    """A dataset function that returns its own keras.utils.PyDataset batches: the cell runs
    with pipeline = "pydataset" on them, and says why it cannot with another pipeline."""
    sc = _write(
        tmp_path,
        f"python_path = [{str(EXAMPLE)!r}]\n[defaults]\n"
        'dataset = "my_data:digits_batches"\nbatch_size = 128\nrepeats = 1\nmin_time = 0\n'
        "warmup_steps = 1\n"
        'metrics = ["accuracy", "sparse_top_k_categorical_accuracy"]\n'
        '[matrix]\npipeline = ["pydataset", "numpy"]\n',
    )
    docs = {d["cell"]["pipeline"]: d for d in run_cells(sc, once, tmp_path / "r")[0]}
    ok, other = docs["pydataset"], docs["numpy"]
    assert ok["status"] == "ok", ok.get("reason")
    assert ok["data"]["form"] == "keras.utils.PyDataset"
    assert (ok["data"]["train_samples"], ok["data"]["input_shape"]) == (1347, [8, 8, 1])
    # 11 batches of 128 (the last 67): the warm-up fits the first and the last
    assert ok["train"]["steps_per_epoch"] == 11
    assert ok["train"]["warmup"]["samples"] == 128 + 1347 % 128
    assert set(ok["evaluate"]["metrics"]) == {"accuracy", "sparse_top_k_categorical_accuracy"}
    assert ok["save"]["keras"]["predictions_match"]
    assert other["status"] == "unsupported"
    assert other["reason"] == (
        "dataset my_data:digits_batches gives a keras.utils.PyDataset, its own pipeline: it "
        'runs with pipeline = "pydataset", not numpy'
    )


@pytest.mark.backend
def test_the_users_own_tf_data_dataset_trains_under_tensorflow(backend, tmp_path):
    """A dataset function that returns tf.data.Datasets, one-hot labels and the categorical
    loss; tested under tensorflow, whose environment has tf.data (the others need not)."""
    if backend != "tensorflow":
        pytest.skip("a tf.data dataset of the user's is tested under tensorflow only (CI time)")
    (tmp_path / "tfd.py").write_text(
        "import numpy as np\nimport tensorflow as tf\n"
        "def load(settings):\n"
        "    settings['id'] = 'someone-else'  # a copy: the recorded cell stays as it is\n"
        "    rng = np.random.default_rng(settings['seed'])\n"
        "    x = rng.random((300, 6), dtype=np.float32)\n"
        "    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 300)]\n"
        "    b = settings['batch_size']\n"
        "    train = tf.data.Dataset.from_tensor_slices((x[:200], y[:200])).shuffle(200, seed=0)"
        ".batch(b)\n"
        "    return train, tf.data.Dataset.from_tensor_slices((x[200:], y[200:])).batch(b)\n"
    )
    sc = _write(
        tmp_path,
        'python_path = ["."]\n[defaults]\ndataset = "tfd:load"\npipeline = "tf.data"\n'
        "batch_size = 64\nrepeats = 1\nmin_time = 0\nwarmup_steps = 1\nloss = "
        '"categorical_crossentropy"\n',
    )
    (d,), _ = run_cells(sc, backend, tmp_path / "r")
    assert (d["status"], d["cell"]["id"]) == ("ok", "default"), d.get("reason")
    assert d["data"]["form"] == "tf.data.Dataset" and d["data"]["labels"] == "one-hot"
    assert (d["data"]["input_shape"], d["data"]["num_classes"]) == ([6], 4)
    assert d["train"]["warmup"]["samples"] == 64 + 200 % 64
    assert d["train"]["flops_per_sample"] == 3 * 2 * (6 * 128 + 128 * 4)
    assert d["save"]["keras"]["predictions_match"]


def test_the_quick_check_names_what_it_could_not_check(tmp_path, monkeypatch, capsys):
    """A worker that crashed on one reference, printed junk, or timed out: the references it
    answered still count, the others are named, and the run goes on (they check their own)."""
    from harness.orchestrate import refcheck

    sc = scenario.load(
        _write(tmp_path, '[matrix]\nmodel = ["a:one", "a:two", "a:three"]\n', "three.toml")
    )
    replies = {}
    monkeypatch.setattr(refcheck, "run_module", lambda *a, **k: replies["now"])
    replies["now"] = ([{"index": 0, "ok": True}, {"index": 1, "crashed": "MemoryError"}], None)
    assert refcheck.check([sc], ["jax"]) == 1
    err = capsys.readouterr().err
    assert "could not finish (the check crashed on some; not checked: three/a_two: " in err
    assert "MemoryError; three/a_three)" in err
    # a timeout keeps what was answered before it: a bad reference still stops the run
    bad = {"index": 1, "field": "model", "error": "model a:two: a has no function two"}
    replies["now"] = ([{"index": 0, "ok": True}, bad], "timed out after 600 s")
    with pytest.raises(ScenarioError) as err:
        refcheck.check([sc], ["jax"])
    assert str(err.value) == (
        f"{sc.path}: key 'matrix.model[1]': model a:two: a has no function two"
    )
    replies["now"] = ([], "cannot start /no/python: No such file or directory")
    assert refcheck.check([sc], ["jax"]) == 0
    assert "(cannot start /no/python" in capsys.readouterr().err


WARMUP_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from harness.worker import userdata
ds = userdata.load("my_data:digits_batches", (), {"seed": 0, "batch_size": 128}, batch_size=128)
feed, samples = userdata.warmup_feed(ds, 1)
print(json.dumps({"batches": ds.train_batches, "warm": [len(feed[i][0]) for i in range(len(feed))],
                  "samples": samples, "y_test": list(ds.y_test.shape)}))
"""


def test_the_warm_up_of_a_dataset_object_fits_its_first_and_last_batches(once):
    got = keras_script(WARMUP_SCRIPT, once, str(EXAMPLE))
    assert got == {"batches": [128] * 10 + [67], "warm": [128, 67], "samples": 195,
                   "y_test": [450]}  # fmt: skip
