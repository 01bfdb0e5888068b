"""lib.utils.memory against hand-counted bytes."""
import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from lib.utils.memory import ParameterMemory, saved_tensor_bytes


def nbytes(t):
    return t.numel() * t.element_size()


def test_counts_what_the_ops_save_and_leaves_parameters_out():
    linear = nn.Linear(10, 20)
    x = torch.randn(4, 10, requires_grad=True)
    # Linear saves its input (for the weight's gradient) and the weight (for the input's);
    # sigmoid its output.
    out, saved = saved_tensor_bytes(lambda: torch.sigmoid(linear(x)),
                                    exclude=list(linear.parameters()))
    assert saved == (nbytes(x) + nbytes(out), 0)
    _, with_weights = saved_tensor_bytes(lambda: torch.sigmoid(linear(x)))
    assert with_weights.activations == saved.activations + nbytes(linear.weight)


def test_autocast_copies_of_the_weights_are_counted_apart_from_the_activations():
    linear = nn.Linear(10, 20)
    x = torch.randn(4, 10, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # Linear saves its input and (x needs a gradient) a transposed view of its weight, both
        # cast to bf16: the input's copy grows with the batch, the weight's (cached by autocast
        # for the forward) does not.
        _, saved = saved_tensor_bytes(lambda: linear(x), exclude=list(linear.parameters()))
    assert saved == (x.numel() * 2, linear.weight.numel() * 2)
    assert saved.total == saved.activations + saved.parameter_copies


def test_a_storage_saved_twice_counts_once():
    x = torch.randn(8, 8)
    w1, w2 = torch.randn(8, 8, requires_grad=True), torch.randn(8, 8, requires_grad=True)
    # Both products save x (for w's gradient) and their w (for x's, but x needs none: the
    # weights are then still saved by mul); a view of x shares its storage.
    _, saved = saved_tensor_bytes(lambda: x * w1 + x.view(64).view(8, 8) * w2,
                                  exclude=[w1, w2])
    assert saved.activations == nbytes(x)


def test_nothing_is_counted_without_grad():
    linear = nn.Linear(10, 20)
    with torch.no_grad():
        _, saved = saved_tensor_bytes(lambda: torch.sigmoid(linear(torch.randn(4, 10))))
    assert saved.total == 0


def test_a_checkpointed_segment_counts_its_inputs_only():
    w = torch.randn(16, 16, requires_grad=True)
    x = torch.randn(32, 16)

    def segment(t):
        return torch.sigmoid(torch.sigmoid(t @ w) @ w)

    plain_out, plain = saved_tensor_bytes(lambda: segment(x), exclude=[w])
    # x, the inner sigmoid's output (saved by sigmoid and by the second product), the output.
    assert plain.activations == nbytes(x) + 2 * nbytes(plain_out)
    out, saved = saved_tensor_bytes(lambda: checkpoint(segment, x, use_reentrant=False),
                                    exclude=[w])
    assert saved.activations == nbytes(x)
    out.sum().backward()  # the recompute still finds what it needs
    assert w.grad is not None


def test_parameter_memory_counts_gradients_and_the_optimiser_state():
    model = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 3))
    frozen = nn.Linear(5, 5).requires_grad_(False)
    model.append(frozen)
    trainable = sum(nbytes(p) for p in model.parameters() if p.requires_grad)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = ParameterMemory.of(model, sgd)  # what the backward and the step will make
    model[:2](torch.randn(4, 10)).sum().backward()
    sgd.step()
    after = ParameterMemory.of(model, sgd)  # what they made
    assert after == before == ParameterMemory(trainable, trainable, trainable)  # momentum
    assert after.total == 3 * trainable
    adam = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    expected = ParameterMemory.of(model, adam).optimizer_state
    adam.step()
    assert ParameterMemory.of(model, adam).optimizer_state == expected == 2 * trainable
    plain = torch.optim.SGD(model.parameters(), lr=0.1)
    assert ParameterMemory.of(model, plain).optimizer_state == 0
