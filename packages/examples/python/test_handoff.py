"""Tests of the PyTorch side of the hand-off: the safetensors fallback, the losses and the layers,
against values worked out by hand. Run with `python3 -m unittest discover -s packages/examples/python`."""

import json
import math
import os
import struct
import tempfile
import unittest

import torch

from losses import focal_sum, object_anchors, smooth_l1_sum
from retinanet import RetinaNet, SameConv2d, groups_for
import safetensors_io
from safetensors_io import SafetensorsError, decode, encode, load_file, save_file


def file_of(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


class SafetensorsFallback(unittest.TestCase):
    def test_reads_bytes_written_by_hand(self):
        # [1.0, -2.0] as little-endian float32 is 00 00 80 3f, 00 00 00 c0; int32 7 is 07 00 00 00.
        data = bytes.fromhex("0000803f000000c0") + bytes.fromhex("07000000") + b"\x01\x00"
        header = {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "n": {"dtype": "I32", "shape": [], "data_offsets": [8, 12]},
            "m": {"dtype": "BOOL", "shape": [1, 2], "data_offsets": [12, 14]},
            "__metadata__": {"format": "pt"},
        }
        tensors, metadata = decode(file_of(header, data))
        self.assertEqual(tensors["a"].tolist(), [1.0, -2.0])
        self.assertEqual(tensors["n"].dtype, torch.int32)
        self.assertEqual(tensors["n"].item(), 7)
        self.assertEqual(tensors["m"].tolist(), [[True, False]])
        self.assertEqual(metadata, {"format": "pt"})

    def test_round_trip_of_every_dtype_shape_and_metadata(self):
        tensors = {
            "f64": torch.tensor([[1.5, -0.25], [1e300, -0.0]], dtype=torch.float64),
            "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3, 1) / 7,
            "i64": torch.tensor([-(2**40), 3]),
            "i32": torch.tensor(-5, dtype=torch.int32),
            "u8": torch.tensor([0, 255], dtype=torch.uint8),
            "bool": torch.tensor([True, False, True]),
            "empty": torch.zeros(0, 4),
        }
        raw = encode(tensors, {"step": "12"})
        # The data starts 8-byte aligned.
        self.assertEqual((8 + struct.unpack("<Q", raw[:8])[0]) % 8, 0)
        back, metadata = decode(raw)
        self.assertEqual(metadata, {"step": "12"})
        self.assertEqual(set(back), set(tensors))
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(back[name].shape, t.shape, name)
            self.assertTrue(torch.equal(back[name], t), name)

    def test_save_file_is_atomic_and_loads_back(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.safetensors")
            save_file({"w": torch.ones(3)}, path, {"a": "b"}, use_library=False)
            tensors, metadata = load_file(path, use_library=False)
            self.assertEqual(tensors["w"].tolist(), [1.0, 1.0, 1.0])
            self.assertEqual(metadata, {"a": "b"})
            with self.assertRaises(SafetensorsError):
                save_file({"w": torch.ones(1, dtype=torch.complex64)}, path, use_library=False)
            # The failed write left the old file and no temporary behind.
            self.assertEqual(os.listdir(d), ["w.safetensors"])
            self.assertEqual(load_file(path, use_library=False)[0]["w"].tolist(), [1.0, 1.0, 1.0])

    def test_malformed_files_are_errors_that_say_what_is_wrong(self):
        good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
        cases = [
            (b"\x01\x00", "too short"),
            (struct.pack("<Q", 100) + b"{}", "claims 100 bytes"),
            (struct.pack("<Q", 2) + b"{x", "not JSON"),
            (file_of({"a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}, b"\x00"), "unknown dtype 'Q8'"),
            (file_of(good, b"\x00" * 4), "expected 8 bytes"),
            (file_of({"a": {"dtype": "F32", "shape": [2]}}, b"\x00" * 8), "exactly dtype, shape and data_offsets"),
            (
                file_of(
                    {
                        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                        "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
                    },
                    b"\x00" * 8,
                ),
                "overlap",
            ),
        ]
        for data, message in cases:
            with self.assertRaises(SafetensorsError) as caught:
                decode(data, where="f")
            self.assertIn(message, str(caught.exception))

    @unittest.skipUnless(safetensors_io.HAVE_SAFETENSORS, "safetensors is not installed here")
    def test_agrees_with_the_library(self):  # pragma: no cover - depends on the machine
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.safetensors")
            save_file({"w": torch.arange(4.0)}, path, {"k": "v"}, use_library=True)
            self.assertEqual(load_file(path, use_library=False)[0]["w"].tolist(), [0.0, 1.0, 2.0, 3.0])


class Losses(unittest.TestCase):
    def test_focal_on_an_object_a_background_and_an_ignored_anchor(self):
        # One class, alpha 0.25, gamma 2. Object anchor, y = 1, p = 0.9:
        #   0.25 · 0.1² · −ln 0.9 = 0.0025 · 0.105360516 = 0.000263401
        # Background anchor, p = 0.2: 0.75 · 0.2² · −ln 0.8 = 0.03 · 0.223143551 = 0.006694307
        # The ignored anchor's NaN is never read. Sum 0.006957708, one object anchor.
        labels = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [0.0, -1.0]]])
        p = torch.tensor([[[0.9], [0.2], [float("nan")]]], dtype=torch.float64)
        self.assertAlmostEqual(focal_sum(labels, p).item(), 0.000263401 + 0.006694307, places=8)
        self.assertEqual(object_anchors(labels).item(), 1)

    def test_focal_negative_label_of_an_object_anchor_and_the_clip(self):
        # Object anchor with y = 0 (another class's column), p = 0.3: (1 − 0.25) · 0.3² · −ln 0.7
        # = 0.0675 · 0.356674944 = 0.024075559. p = 1 is clipped to 1 − 1e-7: y = 1 gives
        # 0.25 · 0² · … = 0 (finite, not NaN).
        labels = torch.tensor([[[0.0, 1.0, 1.0]]])
        p = torch.tensor([[[0.3, 1.0]]], dtype=torch.float64)
        self.assertAlmostEqual(focal_sum(labels, p).item(), 0.024075559, places=8)

    def test_smooth_l1_both_branches_and_the_object_anchors_only(self):
        # sigma 3, bend at 1/9: d = 0.05 gives 0.5 · 9 · 0.0025 = 0.01125; d = 0.3 gives
        # 0.3 − 0.5/9 = 0.244444444. The background anchor's targets are never read.
        targets = torch.tensor([[[0.05, 0.3, 0.0, 0.0, 1.0], [9.0, 9.0, 9.0, 9.0, 0.0]]], dtype=torch.float64)
        regression = torch.zeros(1, 2, 4, dtype=torch.float64)
        self.assertAlmostEqual(smooth_l1_sum(targets, regression).item(), 0.01125 + 0.244444444, places=8)


class Layers(unittest.TestCase):
    def test_same_padding_at_stride_2_puts_the_odd_zero_after(self):
        # 4 × 4 ones, a 3 × 3 kernel of ones, stride 2: 2 × 2 out, (2 − 1)·2 + 3 − 4 = 1 zero row
        # and column, after. Windows: rows 0–2 × cols 0–2 = 9, rows 0–2 × cols 2–3 = 6, and so on.
        conv = SameConv2d(1, 1, 3, stride=2, bias=False)
        with torch.no_grad():
            conv.weight.fill_(1.0)
            out = conv(torch.ones(1, 1, 4, 4))
        self.assertEqual(out.reshape(-1).tolist(), [9.0, 6.0, 6.0, 4.0])

    def test_group_counts(self):
        self.assertEqual([groups_for(c) for c in (16, 24, 36, 7, 11, 1)], [8, 8, 6, 7, 1, 1])

    def test_p2_to_p4_on_a_four_stage_backbone(self):
        # Levels 2–4 on stages C1–C4: laterals on C2, C3, C4 (channels 8, 8, 16), no extra levels.
        # 64 × 64 images: P2–P4 are 16, 8 and 4 positions a side, 1 anchor each.
        config = {
            "numClasses": 3,
            "numAnchors": 1,
            "backboneChannels": [4, 8, 8, 16],
            "stageDepth": 1,
            "norm": "group",
            "levels": [2, 3, 4],
            "fpnChannels": 8,
            "headDepth": 1,
            "headWidth": 8,
            "headNorm": "group",
            "priorProbability": 0.01,
            "seed": 0,
        }
        model = RetinaNet(config)
        names = model.state_dict()
        self.assertEqual([list(names[f"fpn.lateral.{i}.weight"].shape)[1] for i in range(3)], [8, 8, 16])
        self.assertNotIn("fpn.lateral.3.weight", names)
        self.assertEqual(len(model.fpn.extra), 0)
        logits, _ = model.eval()(torch.zeros(1, 3, 64, 64))
        self.assertEqual(list(logits.shape), [1, 16 * 16 + 8 * 8 + 4 * 4, 3])

    def test_state_dict_names_of_a_config_with_batch_norm_and_p6_p7(self):
        config = {
            "numClasses": 2,
            "numAnchors": 3,
            "backboneChannels": [4, 4, 8, 8, 8],
            "stageDepth": 0,
            "norm": "batch",
            "levels": [3, 4, 5, 6, 7],
            "fpnChannels": 8,
            "headDepth": 1,
            "headWidth": 8,
            "headNorm": "none",
            "priorProbability": 0.01,
            "seed": 0,
        }
        names = RetinaNet(config).state_dict()
        self.assertIn("backbone.stages.0.0.1.num_batches_tracked", names)
        self.assertIn("fpn.extra.1.weight", names)
        self.assertEqual(list(names["classification.layers.2.weight"].shape), [6, 8, 3, 3])
        # 64 × 64 images: P3–P7 are 8, 4, 2, 1 and 1 positions a side, 3 anchors each.
        logits, regression = RetinaNet(config).eval()(torch.zeros(1, 3, 64, 64))
        anchors = 3 * (64 + 16 + 4 + 1 + 1)
        self.assertEqual(list(logits.shape), [1, anchors, 2])
        self.assertEqual(list(regression.shape), [1, anchors, 4])
        self.assertTrue(math.isfinite(regression.sum().item()))


if __name__ == "__main__":
    unittest.main()
