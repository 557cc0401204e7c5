"""AOT compile of the pinned Triton configs for sm_80 and sm_90 without a GPU,
the resource columns from cuobjdump, and the config registry. Compiling needs
real triton.jit functions, so it runs in a subprocess without TRITON_INTERPRET."""
import os
import subprocess
import sys
import textwrap

import pytest

from bigkernels.aot import compiler, registry
from bigkernels.aot.resources import cuobjdump_path, occupancy

pytest.importorskip("triton")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Measured on the 2-core CI machine: 28 pinned configs x 2 targets in ~15 s of
# compiling plus imports when quiet, ~55 s at load 6. The budget only catches a
# pathological compile (a config that blows up ptxas), not a slow machine.
BUDGET_S = 300


def test_pinned_configs_compile_for_sm80_and_sm90(tmp_path):
    # A fresh Triton cache: the compile is real, not a cache hit.
    code, report, err = compiler.run_in_subprocess(env={"TRITON_CACHE_DIR": str(tmp_path)}, timeout=300)
    assert report is not None, err[-3000:]
    assert code == 0 and report["failed"] == [], report["failed"]
    pinned = {c["name"] for c in registry.discover(pinned_only=True)}
    assert len(pinned) >= 18  # bias_act: 3 dtypes x 3 activations x fwd/bwd
    compiled = {(r["name"], r["arch"]) for r in report["results"] if r["shared"] >= 0 and not r["error"]}
    assert compiled == {(n, a) for n in pinned for a in (80, 90)}
    print(f"AOT: {len(compiled)} compiles in {report['seconds']} s")
    assert report["seconds"] < BUDGET_S


_SCRIPT = textwrap.dedent("""
    import json, sys
    import triton, triton.language as tl
    from bigkernels.aot import compiler
    from bigkernels.aot.resources import render_table, row

    @triton.jit
    def mm(a, b, c, M: tl.constexpr):
        i = tl.arange(0, M)
        x = tl.load(a + i[:, None] * M + i[None, :])
        y = tl.load(b + i[:, None] * M + i[None, :])
        tl.store(c + i[:, None] * M + i[None, :], tl.dot(x, y))

    @triton.jit
    def bad(a, M: tl.constexpr):
        i = tl.arange(0, M)
        tl.store(a + i, tl.dot(tl.load(a + i), tl.load(a + i)))  # 1-D dot does not lower

    def cfg(kernel, name):
        return dict(name=name, module="t", kernel=kernel, signature={"a": "*bf16", "b": "*bf16", "c": "*fp32",
                    "M": "constexpr"} if kernel is mm else {"a": "*fp32", "M": "constexpr"},
                    constexprs={"M": 64}, num_warps=4, num_stages=2)

    rows = [row(compiler.compile_config(cfg(mm, "mm"), arch)) for arch in (80, 90)]
    bad_result = compiler.compile_config(cfg(bad, "bad"), 80)
    compiler.MAX_SHARED[80] = 1024  # a pretend target with 1 KB: the 64x64 bf16 tiles need 16 KB
    small = compiler.compile_config(cfg(mm, "mm"), 80)
    json.dump({"rows": rows, "bad": bad_result.error, "small": small.error, "text": render_table(rows)}, sys.stdout)
""")


@pytest.mark.skipif(cuobjdump_path() is None, reason="cuobjdump not found")
def test_resources_errors_and_shared_memory_limit(tmp_path):
    import json

    script = tmp_path / "aot_check.py"
    script.write_text(_SCRIPT)
    env = {**compiler.subprocess_env(), "PYTHONPATH": ROOT, "TRITON_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    sm80, sm90 = out["rows"]
    # mma.sync -> HMMA on sm_80; wgmma -> HGMMA on sm_90 (and no HMMA there).
    assert sm80["mma"] > 0 and sm80["wgmma"] == 0
    assert sm90["wgmma"] > 0
    for r in (sm80, sm90):
        assert r["error"] == "" and 0 < r["regs"] <= 255 and r["shared"] >= 16384 and 0 < r["occupancy"] <= 1
    assert out["bad"], "a kernel that does not lower must report an error"
    assert "shared memory" in out["small"] and "1024" in out["small"]
    assert "sm_80" in out["text"] and "mm" in out["text"]


def test_occupancy_matches_hand_computation():
    # H100: 64 regs x 32 lanes = 2048 per warp -> 8 blocks of 4 warps = 32 of 64 warps.
    assert occupancy(90, 64, 0, 4) == 0.5
    # 48 regs -> 1536 per warp -> 10 blocks of 4 warps = 40 warps.
    assert occupancy(90, 48, 0, 4) == 40 / 64
    # 100 KB of shared memory per block: 2 blocks fit in 228 KB, 1 in A100's 164 KB.
    assert occupancy(90, 32, 100 * 1024, 8) == 16 / 64
    assert occupancy(80, 32, 100 * 1024, 8) == 8 / 64


def test_registry_validates_entries():
    good = dict(name="k", kernel=None, signature={"a": "*fp32", "B": "constexpr"}, constexprs={"B": 4})
    assert registry.validate(good, "m")["num_warps"] == 4
    with pytest.raises(ValueError, match="missing \\['signature'\\]"):
        registry.validate({k: v for k, v in good.items() if k != "signature"}, "m")
    with pytest.raises(ValueError, match="unknown \\['warps'\\]"):
        registry.validate({**good, "warps": 4}, "m")
    with pytest.raises(ValueError, match="constexprs \\['a'\\]"):
        registry.validate({**good, "constexprs": {"a": 1}}, "m")


def test_compile_refuses_interpreted_kernels():
    configs = registry.discover(pinned_only=True)
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("only meaningful under the interpreter")
    result = compiler.compile_config(configs[0], 80)
    assert "TRITON_INTERPRET=1" in result.error and not result.cubin


def test_committed_table_covers_every_declared_config():
    """benchmarks/results/triton_aot.json is the committed output of
    benchmarks/triton_aot.py: rerun it when a family adds or changes configs."""
    from bigkernels.aot import render_table, static_table
    from bigkernels.aot.resources import default_results_path

    if not os.path.exists(default_results_path()):
        pytest.skip("no committed table (run python benchmarks/triton_aot.py)")
    rows = static_table()
    declared = {c["name"] for c in registry.discover()}
    have = {(r["name"], r["arch"]) for r in rows if not r["error"] and r["regs"]}
    missing = sorted(f"{n}@sm_{a}" for n in declared for a in (80, 90) if (n, f"sm_{a}") not in have)
    assert not missing, f"not in the committed table (rerun python benchmarks/triton_aot.py): {missing[:10]}"
    assert "bias_act_bf16_gelu_b_r_fwd" in render_table(rows)


def test_aligned_defaults_to_pointers_and_is_validated():
    good = dict(name="k", kernel=None, signature={"a": "*fp32", "n": "i32", "B": "constexpr"}, constexprs={"B": 4})
    assert registry.validate(good, "m")["aligned"] == ["a"]
    assert registry.validate({**good, "aligned": ["a", "n"]}, "m")["aligned"] == ["a", "n"]
    with pytest.raises(ValueError, match="aligned names non-runtime arguments \\['B'\\]"):
        registry.validate({**good, "aligned": ["B"]}, "m")


def test_attention_fp32_smem_model_matches_the_compiled_configs():
    """The forward's autotune pruning predicts fp32 shared memory within 1 % of
    what the committed AOT table measured (sm_80) for every fp32 forward config."""
    import json

    import triton

    from bigkernels.triton.attention import _fwd_smem_bytes

    with open(os.path.join(ROOT, "benchmarks", "results", "triton_aot.json")) as f:
        rows = json.load(f)["rows"]
    checked = 0
    for config in registry.discover():
        if not (config["name"].startswith("attn_fwd_fp32") and not config["constexprs"]["MASK_KIND"]):
            continue
        measured = next(r["shared"] for r in rows if r["name"] == config["name"] and r["arch"] == "sm_80")
        c = config["constexprs"]
        model = _fwd_smem_bytes(triton.Config({"BLOCK_M": c["BLOCK_M"], "BLOCK_N": c["BLOCK_N"]},
                                              num_stages=config["num_stages"]), c["BLOCK_D"], 4)
        assert abs(model - measured) <= 0.01 * measured, (config["name"], model, measured)
        checked += 1
    assert checked >= 2
