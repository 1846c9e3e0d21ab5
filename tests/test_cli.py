"""The `vram` command against the API: same numbers, same JSON, same error messages.

Every expected value here comes from /api/vram (through TestClient) or from the catalog files, never
from the CLI's own code; one test runs the real module entry point in a subprocess (the console script
itself is run from an installed wheel in tests/test_packaging.py)."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from app.catalog import Catalog
from app.cli import cli
from app.cli.options import option_name, request_data, request_parameters
from app.estimator import FORMATS, VramRequest
from app.problems import Refused
from app.units import parse_size
from tests import test_hub
from tests.test_hub import FakeHub
from tests.test_hub import fixture as hub_fixture

ROOT = Path(__file__).resolve().parent.parent
DONE_WHEN = ["estimate", "glm-4v-9b", "--quantization", "q4_k_m", "--context", "8192", "--json"]
RUNNER = CliRunner()
serve, hub = test_hub.serve, test_hub.fake  # the local Hub server fixtures (a real HTTP server on 127.0.0.1)


def vram(*args: str) -> Any:
    return RUNNER.invoke(cli, list(args), env={"COLUMNS": "200"})


def test_estimate_json_is_exactly_the_apis_json(client: TestClient):
    result = vram(*DONE_WHEN)
    api = client.get("/api/vram", params={"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == api.text  # the same bytes, so the same total_bytes
    assert json.loads(result.stdout)["total_bytes"] == api.json()["total_bytes"]


def test_module_entry_point_in_a_subprocess(client: TestClient):
    out = subprocess.run([sys.executable, "-m", "app.cli", *DONE_WHEN], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    api = client.post("/api/vram", json={"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == api.json()


@pytest.mark.parametrize("args", [
    {"batch": "2", "images": "1", "gpu": "rtx-4090", "gpu_count": "2"},
    {"quantization": "bf16", "runtime": "vllm", "context": "4096"},
    {"quantization": "q8_0", "kv_cache": "q8_0", "flash_attention": "true"},
    {"quantization": "q4_k_m", "flash_attention": "false"},
])
def test_request_options_reach_the_estimator_as_the_api_reads_them(client: TestClient, args: dict[str, str]):
    argv = []
    for name, value in args.items():
        flag = option_name(name)
        argv += [flag if value == "true" else f"--no-{flag[2:]}"] if value in ("true", "false") else [flag, value]
    result = vram("estimate", "glm-4v-9b", *argv, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == client.get("/api/vram", params={"model": "glm-4v-9b", **args}).json()


def test_every_request_field_is_an_option():
    command = typer.main.get_command(cli).commands["estimate"]
    names = {p.name for p in command.params}
    assert names == set(VramRequest.model_fields) - {"config"} | {"as_json"}  # MODEL stands for model and config
    fit = {p.name for p in typer.main.get_command(cli).commands["fit"].params}
    assert set(VramRequest.model_fields) - {"config"} <= fit


class _Toy(BaseModel):  # every kind of field a request may gain
    model: str
    n_ctx: int | None = Field(None, description="KV cells (see /api/models).")
    kv_unified: bool = Field(False, description="One pool.")
    mmproj: bool | None = Field(None, description="Projector.")
    cache_type_k: Literal["f16", "q8_0"] | None = Field(None, description="K type.")
    overrides: dict[str, Any] | None = Field(None, description="Config overrides.")
    dtype: Literal["float32", "float16", "bfloat16", "float8_e4m3"] | None = Field(None, description="Weights.")


def test_options_are_generated_from_the_fields_of_any_request_model():
    app = typer.Typer()

    def toy(**kw: Any) -> None:
        print(json.dumps(_Toy.model_validate({"model": "m", **request_data(kw, _Toy.model_fields)}).model_dump()))

    toy.__signature__ = inspect.Signature(request_parameters(fields=_Toy.model_fields))  # type: ignore[attr-defined]
    app.command()(toy)
    app.command("other")(lambda: None)
    run = RUNNER.invoke(app, ["toy", "--n-ctx", "4096", "--kv-unified", "--no-mmproj", "--cache-type-k", "q8_0",
                              "--overrides", '{"model_type": "llama"}', "--dtype", "bfloat16"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == {"model": "m", "n_ctx": 4096, "kv_unified": True, "mmproj": False,
                                      "cache_type_k": "q8_0", "overrides": {"model_type": "llama"}, "dtype": "bfloat16"}
    unset = RUNNER.invoke(app, ["toy"])
    assert json.loads(unset.stdout) == {"model": "m", "n_ctx": None, "kv_unified": False, "mmproj": None,
                                        "cache_type_k": None, "overrides": None, "dtype": None}
    helptext = RUNNER.invoke(app, ["toy", "--help"], env={"COLUMNS": "200"}).stdout
    assert "[f16|q8_0]" in helptext and "see `vram models`" in helptext and "Default: false." in helptext
    assert "One of: float32, float16, bfloat16, float8_e4m3." in " ".join(helptext.split())
    with pytest.raises(Refused) as bad:
        request_data({"overrides": "{oops"}, _Toy.model_fields)
    assert bad.value.problem.status == 422 and bad.value.problem.detail[0]["loc"] == ["query", "overrides"]


@pytest.mark.parametrize(("args", "params"), [
    (["--context", "0"], {"context": "0"}),
    (["--context", "many", "--batch", "0"], {"context": "many", "batch": "0"}),
    (["--quantization", "q9_k"], {"quantization": "q9_k"}),
    (["--images", "2"], {"images": "2"}),
    (["--gpu", "rtx-9999"], {"gpu": "rtx-9999"}),
    (["--quantization", "q4_k_m", "--kv-cache", "q4_0", "--no-flash-attention"],
     {"quantization": "q4_k_m", "kv_cache": "q4_0", "flash_attention": "false"}),
])
def test_invalid_input_is_the_apis_422(client: TestClient, args: list[str], params: dict[str, str]):
    api = client.get("/api/vram", params={"model": "glm-4v-9b", **params})
    assert api.status_code == 422
    as_json = vram("estimate", "glm-4v-9b", *args, "--json")
    assert as_json.exit_code == 2 and json.loads(as_json.stdout) == api.json()
    human = vram("estimate", "glm-4v-9b", *args)
    assert human.exit_code == 2 and human.stdout == ""
    for error in api.json()["detail"]:
        assert error["msg"] in " ".join(human.stderr.split()), human.stderr
        assert error["loc"][-1] in human.stderr


def test_unknown_model_is_the_apis_404(client: TestClient):
    api = client.get("/api/vram", params={"model": "gpt-5"})
    assert api.status_code == 404
    result = vram("estimate", "gpt-5")
    assert result.exit_code == 3 and api.json()["detail"] in result.stderr
    as_json = vram("estimate", "gpt-5", "--json")
    assert as_json.exit_code == 3 and json.loads(as_json.stdout) == api.json()
    assert vram("fit", "gpt-5", "--gpu", "rtx-4090").exit_code == 3


def test_missing_model_file_is_404_like(tmp_path: Path):
    result = vram("estimate", str(tmp_path / "config.json"))
    assert result.exit_code == 3 and "no such file" in result.stderr
    assert vram("estimate", str(tmp_path / "model.gguf")).exit_code == 3


def test_estimate_table_shows_the_apis_numbers(client: TestClient):
    params = {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192, "images": 1, "gpu": "rtx-4090"}
    api = client.get("/api/vram", params=params).json()
    result = vram("estimate", "glm-4v-9b", "--quantization", "q4_k_m", "--context", "8192", "--images", "1",
                  "--gpu", "rtx-4090")
    assert result.exit_code == 0, result.output
    for n in [*api["breakdown"].values(), api["total_bytes"]]:
        assert f"{n:,}" in result.stdout  # exact bytes beside each GiB figure
    assert f"{api['total_bytes'] / 2**30:,.2f}" in result.stdout
    assert api["model_name"] in result.stdout and api["fits"][0]["name"] in result.stdout
    assert all(w[:60] in " ".join(result.stdout.split()) for w in api["warnings"])


def _fits(client: TestClient, quantization: str, context: int) -> bool:
    body = client.get("/api/vram", params={"model": "llama-3.1-8b", "quantization": quantization,
                                           "context": context, "gpu": "rtx-4090"}).json()
    return body["fits"][0]["fits"]


def test_fit_agrees_with_the_api_at_the_boundary(client: TestClient):
    result = vram("fit", "llama-3.1-8b", "--gpu", "rtx-4090", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {"q4_k_m", "bf16", "fp32"} <= {r["quantization"] for r in rows}
    for r in rows:
        assert r["fits"] == _fits(client, r["quantization"], 1024), r
        if r["max_context"] is None:
            assert not _fits(client, r["quantization"], 1)
            continue
        assert _fits(client, r["quantization"], r["max_context"]), r
        if not r["capped"]:
            assert not _fits(client, r["quantization"], r["max_context"] + 1), r


def test_fit_in_a_typed_memory_size_equals_the_same_gpu(catalog: Catalog):
    rtx = next(g for g in catalog.gpus if g.slug == "rtx-4090")
    assert rtx.usable_fraction == 1.0
    by_gpu = vram("fit", "llama-3.1-8b", "--gpu", "rtx-4090", "--quantization", "q4_k_m",
                  "--quantization", "bf16", "--context", "8192", "--json")
    by_size = vram("fit", "llama-3.1-8b", "--memory", f"{rtx.memory_bytes}B", "--quantization", "q4_k_m",
                   "--quantization", "bf16", "--context", "8192", "--json")
    assert by_gpu.exit_code == by_size.exit_code == 0
    assert json.loads(by_gpu.stdout) == json.loads(by_size.stdout)
    assert [r["quantization"] for r in json.loads(by_gpu.stdout)] == ["q4_k_m", "bf16"]
    gib = vram("fit", "llama-3.1-8b", "--memory", "24GiB", "--quantization", "q4_k_m", "--json")
    size = vram("fit", "llama-3.1-8b", "--memory", "24", "--quantization", "q4_k_m", "--json")
    assert gib.stdout == size.stdout


def test_fit_table():
    result = vram("fit", "glm-4v-9b", "--gpu", "rtx-4090", "--images", "1")
    assert result.exit_code == 0, result.output
    assert all(s in result.stdout for s in ("NVIDIA GeForce RTX 4090", "q4_k_m", "largest context"))


@pytest.mark.parametrize(("args", "says"), [
    ([], "give one of --gpu"),
    (["--gpu", "rtx-4090", "--memory", "24GiB"], "give one of --gpu"),
    (["--gpu", "rtx-9999"], "rtx-4090"),
    (["--memory", "24XB"], "not a memory size"),
    (["--memory", "0GiB"], "not a positive memory size"),
    (["--gpu", "rtx-4090", "--quantization", "q9_k"], "q4_k_m"),
    (["--gpu", "rtx-4090", "--context", "0"], "greater than or equal to 1"),
])
def test_fit_errors_are_422(args: list[str], says: str):
    result = vram("fit", "glm-4v-9b", *args)
    assert result.exit_code == 2 and says in " ".join(result.stderr.split()), result.output
    as_json = vram("fit", "glm-4v-9b", *args, "--json")
    assert as_json.exit_code == 2 and json.loads(as_json.stdout)["detail"][0]["msg"]


@pytest.mark.parametrize(("command", "endpoint", "key"), [
    ("models", "/api/models", "slug"), ("gpus", "/api/gpus", "slug"), ("formats", "/api/quantizations", "slug"),
])
def test_listings_show_every_registry_entry(client: TestClient, command: str, endpoint: str, key: str):
    result = vram(command)
    assert result.exit_code == 0, result.output
    listed = {line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")}
    assert listed == {row[key] for row in client.get(endpoint).json()}


def test_help_and_no_arguments():
    assert vram("--help").exit_code == 0
    for command in ("estimate", "fit", "models", "gpus", "formats"):
        assert vram(command, "--help").exit_code == 0
    assert vram().exit_code == 2  # usage, as click answers a malformed command line
    assert vram("estimate", "glm-4v-9b", "--contxt", "5").exit_code == 2


def test_cli_needs_no_web_framework():
    code = "import sys, app.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert not {"fastapi", "starlette", "jinja2", "uvicorn", "torch"} & set(json.loads(loaded.replace("'", '"')))


@pytest.mark.parametrize(("text", "size"), [
    ("24GiB", 24 * 2**30), ("24 gib", 24 * 2**30), ("80GB", 80 * 10**9), ("12.5GiB", 12 * 2**30 + 2**29),
    ("512MiB", 2**29), ("1TB", 10**12), ("25757220864B", 25_757_220_864), ("24", 24 * 2**30),
])
def test_memory_sizes_in_iec_and_si_units(text: str, size: int):
    assert parse_size(text) == size


# --- MODEL as a local file or a Hub GGUF ---

def test_model_as_a_config_json_is_the_apis_config_request(client: TestClient):
    folder = ROOT / "model_specs" / "configs" / "llama-3.1-8b-instruct"
    config = json.loads((folder / "config.json").read_text())
    api = client.post("/api/vram", json={"config": config, "quantization": "q4_k_m", "context": 8192})
    assert api.status_code == 200, api.text
    for model in (folder / "config.json", folder):
        result = vram("estimate", str(model), "--quantization", "q4_k_m", "--context", "8192", "--json")
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == api.text
    # the catalog entry generated from the same file answers the same total
    catalog_entry = client.get("/api/vram", params={"model": "llama-3.1-8b-instruct", "quantization": "q4_k_m",
                                                    "context": 8192}).json()
    assert api.json()["total_bytes"] == catalog_entry["total_bytes"]
    fit = vram("fit", str(folder), "--memory", "24GiB", "--quantization", "q4_k_m", "--json")
    assert fit.exit_code == 0 and json.loads(fit.stdout)[0]["quantization"] == "q4_k_m"


def test_repo_ids_go_through_the_apis_door(client: TestClient):
    api = client.get("/api/vram", params={"model": "meta-llama/Llama-3.1-8B-Instruct", "context": 4096})
    result = vram("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--context", "4096", "--json")
    assert api.status_code == 200 and result.exit_code == 0 and result.stdout.strip() == api.text
    offline = client.get("/api/vram", params={"model": "acme/not-in-the-catalog"})  # tests run with VRAM_OFFLINE=1
    result = vram("estimate", "acme/not-in-the-catalog", "--json")
    assert offline.status_code == 404 and result.exit_code == 3 and json.loads(result.stdout) == offline.json()


def test_config_json_errors(tmp_path: Path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-arch"}')
    result = vram("estimate", str(tmp_path / "config.json"))
    assert result.exit_code == 2 and "config.model_type" in result.stderr, result.output
    (tmp_path / "config.json").write_text("[1, 2")
    assert vram("estimate", str(tmp_path)).exit_code == 2


def test_model_as_a_gguf_file_is_exactly_the_apis_gguf_answer(client: TestClient, catalog: Catalog, tmp_path: Path):
    from app.measure.llamacpp_gguf import write_sparse_gguf  # header-exact, data sparse (no disk)

    path = tmp_path / "llama.gguf"
    written = write_sparse_gguf(catalog.model("llama-3.1-8b"), "q4_k_m", path)
    with path.open("rb") as f:
        header = f.read(1 << 20)  # what a client sends /api/gguf: the first bytes
    api = client.post("/api/gguf", files={"file": ("llama.gguf", header)}, data={"context": "8192", "batch": "2"})
    assert api.status_code == 200, api.text
    result = vram("estimate", str(path), "--context", "8192", "--batch", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == api.json()
    assert api.json()["gguf_file"]["tensor_bytes"] == written.tensor_bytes
    assert vram("fit", str(path), "--gpu", "rtx-4090").exit_code == 2  # fit takes catalog models and configs


def test_gguf_file_errors(client: TestClient, tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + bytes(100))
    api = client.post("/api/gguf", files={"file": ("bad.gguf", bad.read_bytes())})
    result = vram("estimate", str(bad))
    assert api.status_code == 422 and result.exit_code == 2
    assert api.json()["detail"][0]["msg"] in " ".join(result.stderr.split())
    part = tmp_path / "model-00001-of-00002.gguf"
    part.write_bytes(b"GGUF")
    missing = vram("estimate", str(part))
    assert missing.exit_code == 3 and "model-00002-of-00002.gguf" in missing.stderr


def test_repo_id_fetched_from_a_local_hub_equals_the_api(client: TestClient, hub: FakeHub):
    """A repo id not in the catalog, served by a real HTTP server on 127.0.0.1 standing in for the Hub."""
    hub.files[("acme/tiny-llama", "config.json")] = hub_fixture("config.json")
    hub.files[("acme/tiny-llama", "model.safetensors.index.json")] = hub_fixture("model.safetensors.index.json")
    api = client.get("/api/vram", params={"model": "acme/tiny-llama", "context": 2048})
    assert api.status_code == 200, api.text
    result = vram("estimate", "acme/tiny-llama", "--context", "2048", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == api.text and api.json()["hub"]["repo"] == "acme/tiny-llama"
    assert vram("fit", "acme/tiny-llama", "--gpu", "rtx-4090").exit_code == 0
    missing = vram("estimate", "acme/absent", "--json")
    assert missing.exit_code == 3 and json.loads(missing.stdout) == client.get(
        "/api/vram", params={"model": "acme/absent"}).json()


def test_hub_gguf_reference_equals_the_apis_gguf_answer(client: TestClient, hub: FakeHub, catalog: Catalog,
                                                         tmp_path: Path):
    from app.measure.llamacpp_gguf import write_sparse_gguf

    path = tmp_path / "llama.gguf"
    write_sparse_gguf(catalog.model("llama-3.1-8b"), "q8_0", path)
    hub.files[("acme/llama-gguf", "llama.gguf")] = path  # served with range requests, as the Hub does
    api = client.get("/api/gguf", params={"hf": "acme/llama-gguf:llama.gguf", "context": "4096"})
    assert api.status_code == 200, api.text
    result = vram("estimate", "acme/llama-gguf:llama.gguf", "--context", "4096", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == api.json()


LOGS = ROOT / "tests" / "fixtures" / "logs"


@pytest.mark.parametrize("name", ["l1_ollama_0.5.4_llama31_8b_q4km.log", "l3_llamacpp_b2961_mistral7b_q2k_32k.log"])
def test_check_json_is_the_logs_apis_json(client: TestClient, name: str):
    text = (LOGS / name).read_text()
    result = vram("check", str(LOGS / name), "--json")
    api = client.post("/api/logs", content=text, headers={"content-type": "text/plain"})
    assert result.exit_code == 0 and api.status_code == 200, result.output
    assert json.loads(result.stdout) == api.json()


def test_check_prints_each_term_and_what_is_missing(tmp_path: Path):
    table = vram("check", str(LOGS / "l1_ollama_0.5.4_llama31_8b_q4km.log"))
    assert table.exit_code == 0 and "KV cache" in table.stdout and "1.00 GiB" in table.stdout  # printed 1024.00 MiB
    unknown = tmp_path / "unknown.log"
    unknown.write_text("hello\nnot a runtime log\n")
    result = vram("check", str(unknown))
    assert result.exit_code == 0 and "unrecognised log" in result.stdout and "not in the log" in result.stderr
    assert vram("check", str(tmp_path / "absent.log")).exit_code == 2


def test_catalog_listings_as_json(catalog: Catalog):
    """models, gpus and formats take --json like estimate and fit: the catalog's own slugs and figures."""
    models = json.loads(RUNNER.invoke(cli, ["models", "--json"]).output)
    assert [m["slug"] for m in models] == list(catalog.models)
    assert all(m["max_context"] == catalog.models[m["slug"]].language_model.max_context for m in models)
    gpus = json.loads(RUNNER.invoke(cli, ["gpus", "--json"]).output)
    assert [(g["slug"], g["memory_bytes"]) for g in gpus] == [(g.slug, g.memory_bytes) for g in catalog.gpus]
    formats = json.loads(RUNNER.invoke(cli, ["formats", "--json"]).output)
    assert {f["slug"] for f in formats} == set(FORMATS)


def test_the_commands_plugin_loader_answers_as_pydantics_own():
    """`vram` (app/cli/__init__.py) disables pydantic's plugins and, so that a start does not import
    importlib.metadata, stands in for pydantic's plugin loader with its answer under that setting. That answer is
    pydantic's own (its real loader, in a fresh interpreter, finds no plugin), the loader's one function is all
    pydantic imports from it, and a command started with plugins enabled (PYDANTIC_DISABLE_PLUGINS empty) gets the
    real loader."""
    import pydantic.plugin._schema_validator as schema_validator

    source = Path(schema_validator.__file__).read_text()
    assert re.findall(r"from \._loader import (.+)", source) == ["get_plugins"]
    own = ("import os; os.environ['PYDANTIC_DISABLE_PLUGINS'] = '__all__'; "
           "from pydantic.plugin import _loader; print(list(_loader.get_plugins()), _loader.__file__ is not None)")
    run = subprocess.run([sys.executable, "-c", own], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["[]", "True"]
    started = ("import sys, app.cli; m = sys.modules['pydantic.plugin._loader']; "
               "print(getattr(m, '__file__', None) is None, list(m.get_plugins()))")
    for setting, stub in (("__all__", "True"), ("", "False")):
        env = {**os.environ, "PYDANTIC_DISABLE_PLUGINS": setting}
        run = subprocess.run([sys.executable, "-c", started], capture_output=True, text=True, check=True, env=env)
        assert run.stdout.split() == [stub, "[]"], (setting, run.stdout)


def test_the_command_pauses_the_collector_only_while_it_imports():
    """app/cli/__init__.py pauses the cyclic collector while the command's modules load and freezes what they built:
    afterwards collection runs again (a long `vram check` or a GGUF read still frees its cycles), the imported
    objects sit in the permanent generation, and an interpreter that had the collector off keeps it off."""
    probe = ("import gc, sys; {before}; import app.cli; "
             "print(gc.isenabled(), gc.get_freeze_count() > 10_000, 'pydantic' in sys.modules)")
    for before, enabled in (("pass", "True"), ("gc.disable()", "False")):
        run = subprocess.run([sys.executable, "-c", probe.format(before=before)], capture_output=True, text=True,
                             check=True)
        assert run.stdout.split() == [enabled, "True", "True"], (before, run.stdout)
