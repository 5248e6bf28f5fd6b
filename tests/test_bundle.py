"""``custom_interface.py``: the package's interface and model code in one
file that SpeechBrain alone loads (``foreign_class``), tested in a process
where ``speechbrain_kd`` cannot be imported."""

import contextlib
import importlib
import inspect
import io
import json
import pathlib
import pkgutil
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from speechbrain_kd import lobes
from speechbrain_kd.lobes.rt_senet import RTSENet
from speechbrain_kd.pretrained import KDEnhancement, bundle, export_model
from speechbrain_kd.pretrained.bundle import (
    ADAPTER,
    INTERFACE,
    BundleError,
    bundle_source,
    imports_of_the_package,
)

#: Runs a script with every import of speechbrain_kd refused (the editable
#: install's finder removed, a finder that raises put first).
HIDDEN_PACKAGE = """
import sys
sys.meta_path[:] = [
    f for f in sys.meta_path if "speechbrain_kd" not in repr(f)
]


class RefuseThePackage:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] == "speechbrain_kd":
            raise ModuleNotFoundError(f"{name} is hidden in this test")


sys.meta_path.insert(0, RefuseThePackage)
"""


def run_without_package(script, cwd):
    """Runs ``script`` (after :data:`HIDDEN_PACKAGE`) in a new isolated
    interpreter; returns its stdout."""
    path = pathlib.Path(cwd) / "script.py"
    path.write_text(HIDDEN_PACKAGE + script)
    result = subprocess.run(
        [sys.executable, "-I", str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def public_lobe_classes():
    """``(module, name)`` of every public class of ``speechbrain_kd.lobes``."""
    found = []
    for info in pkgutil.iter_modules(lobes.__path__):
        module = importlib.import_module(f"{lobes.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found.append((module.__name__, name))
    return found


def test_every_lobe_bundles_with_the_interface():
    roots = public_lobe_classes()
    assert len(roots) > 30
    for root in roots:
        text = bundle_source([INTERFACE, ADAPTER, root])
        namespace = {"__name__": "custom_interface"}
        exec(compile(text, "custom_interface.py", "exec"), namespace)
        assert imports_of_the_package(text) == [], root
        assert inspect.isclass(namespace[root[1]]), root
        assert namespace["BUNDLED_FROM"][root[1]] == root[0]
        assert issubclass(namespace["KDEnhancement"], namespace["Pretrained"])


def test_lazy_imports_are_followed_and_removed():
    # StreamingEnhancer imports unwrap inside __init__.
    text = bundle_source(
        [("speechbrain_kd.pretrained.streaming", "StreamingEnhancer")]
    )
    assert imports_of_the_package(text) == []
    assert "def unwrap(" in text
    namespace = {"__name__": "custom_interface"}
    exec(compile(text, "custom_interface.py", "exec"), namespace)
    model = RTSENet(channels=4, depth=2, attention_layers=()).eval()
    streamer = namespace["StreamingEnhancer"](model)
    x = torch.randn(100)
    out = torch.cat([streamer.process(x), streamer.flush()])
    with torch.no_grad():
        assert torch.allclose(out, model(x[None])[0], atol=1e-5)


def test_the_package_only_hook_is_a_null_context_in_the_bundle():
    text = bundle_source([INTERFACE])
    assert "return contextlib.nullcontext()" in text
    assert "package_classes_resolved" not in text


def test_a_name_defined_twice_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def helper():\n    return 1\n")
    (package / "b.py").write_text(
        "from fakepkg.a import helper as other\n\n\n"
        "def helper():\n    return other() + 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bundle, "PACKAGE", "fakepkg")
    with pytest.raises(BundleError, match=r"helper \(fakepkg.a, fakepkg.b\)"):
        bundle_source([("fakepkg.b", "helper")])
    with pytest.raises(BundleError, match="fakepkg.a defines no 'missing'"):
        bundle_source([("fakepkg.a", "missing")])


def test_package_classes_stand_in_for_custom_interface():
    with bundle.package_classes_resolved():
        import custom_interface

        assert custom_interface.RTSENet is RTSENet
        with pytest.raises(AttributeError, match="has no class or function"):
            custom_interface.NoSuchModel  # noqa: B018
    assert "custom_interface" not in sys.modules


@pytest.fixture(scope="module")
def rt_senet_folder(tmp_path_factory):
    """A tiny random RT-SENet exported (streams; two models in a row)."""
    run = tmp_path_factory.mktemp("rt_senet_run")
    (run / "hyperparams.yaml").write_text(
        "sample_rate: 16000\n"
        "model: !new:speechbrain_kd.lobes.rt_senet.RTSENet\n"
        "    channels: 6\n    depth: 2\n    attention_layers: [1]\n"
    )
    torch.manual_seed(0)
    model = RTSENet(channels=6, depth=2, attention_layers=[1])
    torch.save(model.state_dict(), run / "model.ckpt")
    return export_model(
        run / "hyperparams.yaml",
        run / "model.ckpt",
        run / "exported",
        rtf_seconds=0.2,
    )


def test_foreign_class_loads_the_folder_without_the_package(
    rt_senet_folder, tmp_path
):
    folder = rt_senet_folder
    assert (folder / "custom_interface.py").is_file()
    assert not imports_of_the_package(
        (folder / "custom_interface.py").read_text()
    )
    hparams = (folder / "hyperparams.yaml").read_text()
    assert "enhance_model: !new:custom_interface.RTSENet" in hparams
    assert "!new:custom_interface.PairOutput" in hparams
    assert "speechbrain_kd" not in hparams.split("####\nsample_rate")[-1]
    config = json.loads((folder / "config.json").read_text())
    assert config["pymodule_file"] == "custom_interface.py"

    noisy = 0.1 * torch.randn(
        2, 8000, generator=torch.Generator().manual_seed(4)
    )
    np.save(tmp_path / "noisy.npy", noisy.numpy())
    out = run_without_package(
        f"""
import numpy as np
import torch
from speechbrain.inference.interfaces import foreign_class

enhancer = foreign_class(
    source={str(folder)!r},
    pymodule_file="custom_interface.py",
    classname="KDEnhancement",
    savedir="collected",
)
noisy = torch.from_numpy(np.load("noisy.npy"))
np.save("batch.npy", enhancer.enhance_batch(noisy).numpy())
np.save("stream.npy", enhancer.enhance_streaming(noisy[0]).numpy())
single = enhancer.enhance_file(
    {str(folder / "example.wav")!r}, output_filename="enhanced.wav"
)
print("file", tuple(single.shape))
print("loaded", sorted(m for m in sys.modules if m.split(".")[0] == "speechbrain_kd"))
""",
        tmp_path,
    )
    assert "loaded []" in out
    assert "file (48000,)" in out and (tmp_path / "enhanced.wav").is_file()
    ours = KDEnhancement.from_hparams(
        source=str(folder), savedir=str(tmp_path / "ours")
    )
    assert type(ours.model) is RTSENet  # the package's own class
    expected = ours.enhance_batch(noisy).numpy()
    np.testing.assert_allclose(
        np.load(tmp_path / "batch.npy"), expected, atol=1e-6
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "stream.npy"), expected[0], atol=1e-5
    )


def test_the_generated_file_passes_speechbrains_checks(
    rt_senet_folder, upstream, tmp_path
):
    """SpeechBrain's ruff settings (lint and format) and its docstring
    check, as on a recipe it accepts."""
    checked = tmp_path / "checked"
    checked.mkdir()
    shutil.copy(rt_senet_folder / "custom_interface.py", checked)
    config = tmp_path / "pyproject.toml"
    config.write_text(
        (upstream / "speechbrain_ruff_config.toml")
        .read_text()
        .replace('target-version = "py38"', 'target-version = "py311"')
    )
    ruff = pathlib.Path(sys.executable).parent / "ruff"
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(ruff), *command, "--config", str(config), str(checked)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:]
    sys.path.insert(0, str(upstream))
    import check_docstrings

    with contextlib.redirect_stdout(io.StringIO()) as report:
        ok = check_docstrings.check_docstrings(str(checked), [str(checked)])
    assert ok, report.getvalue()[-3000:]
