"""TRAIN.GRAD_CHECKPOINTING through the builder: the trained network recomputes, and trains as
it would without."""
import pytest
import torch

from lib.config import load_cfg
from lib.engine import step
from lib.engine.build import build_step_parts
from lib.models import build_eval_model
from lib.utils.errors import RunError
from tests.helpers import OFFSET_CFG


def _parts(*opts):
    cfg = load_cfg(OFFSET_CFG, ["LOSS.OHEMKEEP", "1000", *opts])
    torch.manual_seed(0)
    return build_step_parts(cfg, torch.device("cpu"), load_pretrained=False), cfg


def test_the_key_switches_checkpointing_on_and_a_step_trains_the_same_weights():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 32, 64, generator=g)
    labels = torch.randint(0, 19, (2, 32, 64), generator=g)
    results = []
    for on in (False, True):
        parts, _ = _parts("TRAIN.GRAD_CHECKPOINTING", str(on))
        assert parts.network.grad_checkpointing is on
        for _ in range(2):
            step.train_step(parts.model, parts.criterion, parts.optimizer, parts.scaler, images,
                            labels)
        results.append(parts.network.state_dict())
    plain, recomputed = results
    for name, value in plain.items():
        if value.is_floating_point():
            torch.testing.assert_close(recomputed[name], value, rtol=1e-5, atol=1e-7,
                                       msg=name)
        else:
            assert torch.equal(recomputed[name], value), name  # num_batches_tracked


def test_evaluation_builds_its_network_without_checkpointing(tmp_path):
    parts, cfg = _parts("TRAIN.GRAD_CHECKPOINTING", "True")
    path = str(tmp_path / "weights.pth")
    torch.save(parts.network.state_dict(), path)  # the keys do not change with the key
    model = build_eval_model(cfg, path, torch.device("cpu"))
    assert not model.grad_checkpointing
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(model(x).final, parts.network.eval()(x).final)


def test_checkpointing_with_compile_is_refused_naming_both_keys():
    with pytest.raises(RunError, match="TRAIN.GRAD_CHECKPOINTING True with TRAIN.COMPILE True"):
        _parts("TRAIN.GRAD_CHECKPOINTING", "True", "TRAIN.COMPILE", "True")
