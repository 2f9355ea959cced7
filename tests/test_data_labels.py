"""Label encoding: one-hot (with don't care), instance boundaries, colourising, range checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixtrans.data.labels import boundary_map, check_label_range, colorize, decolorize, one_hot
from pixtrans.errors import DataError


def test_boundary_two_instances_side_by_side():
    inst = torch.tensor([[1, 1, 2, 2]] * 3)[None, None]
    edge = boundary_map(inst)[0, 0]
    expected = torch.tensor([[0, 1, 1, 0]] * 3, dtype=torch.float32)
    assert torch.equal(edge, expected)


def test_boundary_single_pixel_island_and_uniform_map():
    inst = torch.zeros(1, 1, 5, 5, dtype=torch.long)
    inst[0, 0, 2, 2] = 26001
    edge = boundary_map(inst)[0, 0]
    cross = {(2, 2), (1, 2), (3, 2), (2, 1), (2, 3)}
    for y in range(5):
        for x in range(5):
            assert edge[y, x] == float((y, x) in cross), (y, x)
    assert boundary_map(torch.full((2, 1, 4, 6), 7)).sum() == 0


def test_boundary_same_class_different_instances():
    # two cars (class 26) touching: ids 26000 | 26001 -> a boundary even though the class is the same
    inst = torch.tensor([[26000, 26000, 26001], [26000, 26000, 26001]])[None, None]
    edge = boundary_map(inst)[0, 0]
    assert edge[:, 1:].eq(1).all() and edge[:, 0].eq(0).all()


def test_one_hot_plain_and_dontcare():
    ids = torch.tensor([[0, 2], [1, 255]])[None, None]
    with pytest.raises(ValueError):
        one_hot(ids, 3)
    oh = one_hot(ids, 3, contain_dontcare=True)
    assert oh.shape == (1, 4, 2, 2)
    assert torch.equal(oh.sum(1), torch.ones(1, 2, 2))
    assert oh.argmax(1).tolist() == [[[0, 2], [1, 3]]]
    oh = one_hot(ids.clamp(max=2), 3)
    assert oh.shape == (1, 3, 2, 2) and oh.argmax(1).tolist() == [[[0, 2], [1, 2]]]


def test_colorize_and_decolorize_round_trip():
    pal = [[10, 20, 30], [200, 0, 0], [0, 200, 0]]
    ids = np.array([[0, 1], [2, 255]])
    rgb = colorize(torch.from_numpy(ids)[None], pal)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[0, 1].tolist() == [200, 0, 0] and rgb[1, 1].tolist() == [0, 0, 0]
    back = decolorize(rgb[:1], pal)
    assert back.tolist() == [[0, 1]]
    with pytest.raises(DataError, match=r"drawing\.png.*\(0, 0, 0\).*not in the label palette"):
        decolorize(rgb, pal, path="drawing.png")
    assert decolorize(rgb, pal, dontcare=255).tolist() == ids.tolist()


def test_check_label_range_messages():
    check_label_range(np.array([[0, 34]]), 35)
    check_label_range(np.array([[0, 255]]), 35, contain_dontcare=True)
    with pytest.raises(DataError, match=r"a\.png: label id 40 >= label_nc 35") as e:
        check_label_range(np.array([[3, 40]]), 35, path="a.png")
    assert "label_nc" in e.value.hint and e.value.path == "a.png"
    with pytest.raises(DataError, match="contain_dontcare"):
        check_label_range(np.array([[3, 255]]), 35, path="b.png")
    with pytest.raises(DataError, match="negative"):
        check_label_range(np.array([[-1, 2]]), 35)
