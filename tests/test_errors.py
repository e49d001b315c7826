"""Bad input gets a clear ValueError/TypeError whose message names the shapes, dtypes or devices."""
import numpy as np
import pytest

import nnengine as nn
import nnengine.functional as F


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        nn.zeros((2, 3)) @ nn.zeros((4, 5))


def test_matmul_of_a_scalar_or_ints_is_refused():
    with pytest.raises(ValueError, match="scalar"):
        nn.tensor(2.0) @ nn.zeros((2, 2))
    with pytest.raises(TypeError, match="int64"):
        nn.tensor(np.ones((2, 2), np.int64)) @ nn.tensor(np.ones((2, 2), np.int64))


def test_non_broadcastable_operands_name_their_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        nn.zeros((2, 3)) + nn.zeros(4)
    with pytest.raises(ValueError, match=r"mul: shapes \(3,\) and \(2,\)"):
        nn.zeros(3) * np.zeros(2)


def test_log_of_an_integer_tensor_names_the_dtype():
    with pytest.raises(TypeError, match="log expects a float32 or float64 tensor, got int64"):
        nn.tensor(np.array([1, 2])).log()


def test_backward_on_non_scalar_without_gradient_names_the_shape():
    x = nn.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(1, 2\) needs a gradient argument"):
        (x * 2).backward()


def test_backward_gradient_of_wrong_shape():
    x = nn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), expected .* \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_tensors_on_two_devices_in_one_op():
    a, b = nn.tensor([1.0], device="cpu"), nn.tensor([1.0], device="numpy")
    with pytest.raises(ValueError, match="different devices, 'cpu' and 'numpy'"):
        a + b
    with pytest.raises(ValueError, match="different devices"):
        F.linear(nn.zeros((1, 2), device="numpy"), nn.zeros((2, 2), device="cpu"))


def test_unsupported_dtypes_and_data():
    with pytest.raises(TypeError, match="complex"):
        nn.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="float16 is not supported"):
        nn.tensor([1.0], dtype="float16")
    with pytest.raises(ValueError, match="cannot make a tensor"):
        nn.tensor([[1.0, 2.0], [3.0]])


def test_reduction_and_shape_errors():
    x = nn.zeros((2, 3))
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dims"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="repeated axis"):
        x.sum(axis=(0, 0))
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match="not a permutation"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match="empty"):
        nn.zeros((0, 3)).max(axis=0)
    with pytest.raises(ValueError, match="no elements"):
        nn.zeros((0,)).mean()
    with pytest.raises(ValueError, match=r"has 2 elements \(shape \(2,\)\), expected exactly 1"):
        nn.zeros((2,)).item()
    with pytest.raises(TypeError, match="index arrays must be integer or bool"):
        x[np.array([0.5])]


def test_linear_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"x has 3 features \(shape \(2, 3\)\) but w expects 4"):
        F.linear(nn.zeros((2, 3)), nn.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\), got \(4,\)"):
        F.linear(nn.zeros((2, 4)), nn.zeros((4, 5)), nn.zeros(4))
    with pytest.raises(ValueError, match="unknown activation 'swish'.*'relu'"):
        F.linear(nn.zeros((2, 4)), nn.zeros((4, 5)), activation="swish")


def test_softmax_cross_entropy_errors():
    logits = nn.zeros((2, 3))
    with pytest.raises(ValueError, match=r"float targets must have the logits' shape \(2, 3\), got \(2, 4\)"):
        F.softmax_cross_entropy(logits, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\)"):
        F.softmax_cross_entropy(logits, [0, 3])
    with pytest.raises(ValueError, match=r"integer class targets must have shape \(2,\)"):
        F.softmax_cross_entropy(logits, np.zeros((2, 1), np.int64))
    with pytest.raises(ValueError, match="reduction"):
        F.softmax_cross_entropy(logits, [0, 1], reduction="avg")
    with pytest.raises(ValueError, match=r"logits must be \(n, classes\)"):
        F.softmax_cross_entropy(nn.zeros(3), [0])
    with pytest.raises(ValueError, match="must not require grad"):
        F.softmax_cross_entropy(logits, nn.zeros((2, 3), requires_grad=True))


def test_optimizer_update_errors():
    p = nn.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="no gradient"):
        F.sgd_update(p, p.grad)
    g = nn.ones(3)
    with pytest.raises(ValueError, match="velocity"):
        F.sgd_update(p, g, momentum=0.9)
    with pytest.raises(ValueError, match=r"m must match the parameter's shape \(3,\)"):
        F.adam_update(p, g, nn.zeros(2), nn.zeros(3), step=1)
    with pytest.raises(ValueError, match="step counts updates from 1"):
        F.adam_update(p, g, nn.zeros(3), nn.zeros(3), step=0)
    with pytest.raises(ValueError, match="v_max"):
        F.adam_update(p, g, nn.zeros(3), nn.zeros(3), step=1, amsgrad=True)
    with pytest.raises(ValueError, match="mean_grad"):
        F.rmsprop_update(p, g, nn.zeros(3), centered=True)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.adagrad_update(nn.tensor(np.zeros(3, np.int64)), g, nn.zeros(3))
