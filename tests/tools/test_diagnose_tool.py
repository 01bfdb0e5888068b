"""tools/diagnose_offsets.py on a trained tiny offset network: the diagnostics file and the
history figure drawn from the validations the run recorded."""
import json
import os

from tests.helpers import run_tool


def test_training_records_each_validation_and_history_draws_them(trained_run, tmp_path):
    _, _, folder = trained_run
    records = sorted(os.listdir(os.path.join(folder, "validation")))
    assert records and all(r.startswith("iter") and r.endswith(".json") for r in records)
    with open(os.path.join(folder, "validation", records[-1])) as f:
        record = json.load(f)
    assert record["iteration"] == int(records[-1][4:11])
    assert set(record["predictions"]) == {"logits", "seed_logits", "fused_logits"}
    assert "offset_length" in record["fusion"]["fused_logits"]
    run_tool(["tools/diagnose_offsets.py", "--history", folder, "--out", str(tmp_path)])
    assert os.path.getsize(tmp_path / "history.png") > 10_000


def test_diagnostics_of_the_initial_and_trained_network(trained_run, tmp_path):
    cfg, opts, folder = trained_run
    proc = run_tool(["tools/diagnose_offsets.py", "--cfg", cfg, "--init", "--weights",
                     os.path.join(folder, "final_state.pth"), "--batches", "1",
                     "--out", str(tmp_path), *opts])
    with open(tmp_path / "diagnostics.json") as f:
        results = json.load(f)["results"]
    assert [r["weights"] for r in results][0] == "initialisation"
    for r in results:
        seeds = r["validation"]["seeds"]
        assert 0 <= seeds["same_class_seeds"] <= 1
        fixable = r["validation"]["fixable"]
        # a larger reach can only fix more of the same errors
        assert fixable["1px"] <= fixable["4px"] <= fixable["16px"]
        assert set(r["gradients"]) == {"seg", "seed", "fused", "confidence", "total"}
        assert abs(r["gradients"]["seg"]["cos_seg"] - 1.0) < 1e-9
    assert "grad norm on shared trunk: confidence" in proc.stdout
