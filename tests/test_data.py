"""HDF5 layout, clip sampling (spec §4.1) and action normalisation (§4.2)."""

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from lewm.data.clips import ClipDataset, ClipLoader, clip_index, clip_split, episode_split
from lewm.data.hdf5 import DatasetInfo, DatasetWriter, inspect_dataset
from lewm.data.normalize import ActionNormalizer
from lewm.data.transforms import IMAGENET_MEAN, IMAGENET_STD, frames_to_pixels, pixels_to_frames
from lewm.errors import DatasetError


def write(path, lengths, a_dim=2, size=8, seed=0, **kw):
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, compression=kw.pop("compression", "none")) as w:
        for length in lengths:
            act = rng.normal(size=(length, a_dim)).astype(np.float32)
            act[-1] = np.nan
            w.add_episode(
                {
                    "pixels": rng.integers(0, 256, size=(length, size, size, 3), dtype=np.uint8),
                    "action": act,
                    "proprio": rng.normal(size=(length, 2)),
                }
            )
    return path


def test_round_trip_layout(tmp_path):
    path = write(tmp_path / "d.h5", [25, 30, 21])
    info = inspect_dataset(path)
    assert info.n_episodes == 3 and info.n_rows == 76 and info.action_dim == 2
    assert info.image_size == (8, 8)
    with h5py.File(path) as f:
        assert f["ep_len"].dtype == np.int32 and f["ep_offset"].dtype == np.int64
        assert list(f["ep_offset"][()]) == [0, 25, 55]
        assert list(f["step_idx"][25:28]) == [0, 1, 2] and f["ep_idx"][30] == 1
        nan_rows = np.flatnonzero(np.isnan(f["action"][()]).any(1))
        assert list(nan_rows) == [24, 54, 75]


@pytest.mark.parametrize("compression", ["gzip", "blosc"])
def test_compressed_files_read_back(tmp_path, compression):
    path = write(tmp_path / "d.h5", [22, 22], compression=compression)
    ref = write(tmp_path / "r.h5", [22, 22])
    with h5py.File(path) as f, h5py.File(ref) as g:
        assert np.array_equal(f["pixels"][()], g["pixels"][()])


def test_writer_is_crash_safe(tmp_path):
    target = tmp_path / "d.h5"
    with pytest.raises(RuntimeError):
        with DatasetWriter(target) as w:
            w.add_episode(
                {
                    "pixels": np.zeros((3, 4, 4, 3), np.uint8),
                    "action": np.array([[0, 0], [0, 0], [np.nan] * 2]),
                }
            )
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "episode, match",
    [
        (
            {
                "pixels": np.zeros((3, 4, 4, 3), np.float32),
                "action": np.array([[0.0], [0], [np.nan]]),
            },
            "uint8",
        ),
        (
            {"pixels": np.zeros((3, 4, 4, 3), np.uint8), "action": np.zeros((3, 1))},
            "last action row",
        ),
        (
            {
                "pixels": np.zeros((3, 4, 4, 3), np.uint8),
                "action": np.array([[np.nan], [0], [np.nan]]),
            },
            "finite",
        ),
        ({"pixels": np.zeros((3, 4, 4, 3), np.uint8), "action": np.zeros((2, 1))}, "rows"),
        ({"action": np.zeros((2, 1))}, "pixels"),
    ],
)
def test_writer_rejects_bad_episodes(tmp_path, episode, match):
    w = DatasetWriter(tmp_path / "d.h5")
    with pytest.raises(DatasetError, match=match):
        w.add_episode(episode)
    w.abort()
    assert not (tmp_path / "d.h5").exists()


def test_writer_missing_directory(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        DatasetWriter(tmp_path / "nope" / "d.h5")


def _mutate(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


@pytest.mark.parametrize(
    "mutation, match",
    [
        (lambda f: f.__delitem__("pixels"), "missing column"),
        (
            lambda f: (
                f.__delitem__("pixels"),
                f.create_dataset("pixels", data=np.zeros((47, 8, 8, 3), np.float32)),
            ),
            "uint8",
        ),
        (lambda f: f["action"].__setitem__(3, [np.nan, 1.0]), "non-terminal row 3"),
        (lambda f: f["action"].__setitem__(5, [np.inf, 1.0]), "NaN/inf"),
        (lambda f: f["ep_offset"].__setitem__(1, 3), "ep_offset"),
        (
            lambda f: (
                f.__delitem__("proprio"),
                f.create_dataset("proprio", data=np.zeros((10, 2))),
            ),
            "proprio",
        ),
    ],
)
def test_layout_errors(tmp_path, mutation, match):
    path = _mutate(write(tmp_path / "d.h5", [25, 22]), mutation)
    with pytest.raises(DatasetError, match=match):
        inspect_dataset(path)


def test_not_hdf5(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_text("hello")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        inspect_dataset(bad)
    with pytest.raises(DatasetError, match="no such"):
        inspect_dataset(tmp_path / "missing.h5")


def test_clip_sampling_is_exactly_the_reference(tmp_path):
    path = write(tmp_path / "d.h5", [25, 19, 30], a_dim=3)
    ds = ClipDataset(path, num_steps=4, frameskip=5)
    idx = ds.clip_index(np.arange(3))
    # starts 0..L-20: 6 for L=25, none for L=19, 11 for L=30
    assert len(idx) == 6 + 11 and set(idx[:, 0]) == {0, 2}
    with h5py.File(path) as f:
        px, act = f["pixels"][()], f["action"][()]
    ep, start = 2, 7
    row = 25 + 19 + start
    batch = ds.get(np.array([[ep, start]]))
    assert torch.equal(batch.pixels[0], torch.from_numpy(px[[row, row + 5, row + 10, row + 15]]))
    norm = ds.normalizer.normalize(act[row : row + 20]).astype(np.float32)
    # block k = [a_{s+5k} (all dims), a_{s+5k+1}, ...]: step-major
    for k in range(4):
        expected = np.nan_to_num(norm[5 * k : 5 * k + 5].reshape(-1), nan=0.0)
        np.testing.assert_allclose(batch.actions[0, k].numpy(), expected, rtol=1e-6)
    assert batch.actions.shape == (1, 4, 15) and batch.pixels.dtype == torch.uint8


def test_last_block_nan_is_zero_filled(tmp_path):
    path = write(tmp_path / "d.h5", [20])
    ds = ClipDataset(path, num_steps=4, frameskip=5)
    batch = ds.get(np.array([[0, 0]]))  # the episode's last row (NaN) lands in block 3
    assert torch.isfinite(batch.actions).all()
    assert (
        batch.actions[0, 3, -2:].abs().sum() == 0
    )  # NaN became the mean action (0 after z-scoring)


@pytest.mark.parametrize("profile", ["clean", "reference"])
def test_only_non_finite_entries_are_zero_filled(tmp_path, profile):
    """Spec §4.1: NaN becomes 0 after normalisation entry by entry, never the whole block."""
    path = write(tmp_path / "d.h5", [20, 24], a_dim=3)
    ds = ClipDataset(path, num_steps=4, frameskip=5, profile=profile)
    with h5py.File(path) as f:
        act = f["action"][()]
    for ep, start in [(0, 0), (1, 4), (1, 2)]:  # the first two end on the episode's NaN row
        row = ds.info.ep_offset[ep] + start
        norm = ds.normalizer.normalize(act[row : row + 20]).astype(np.float32)  # (20, 3)
        expected = np.nan_to_num(norm, nan=0.0).reshape(4, 15)  # every entry of every block
        got = ds.get(np.array([[ep, start]])).actions[0].numpy()
        np.testing.assert_array_equal(got, expected)
        assert np.count_nonzero(got[3]) == 15 - 3 * int(np.isnan(norm).any())


def test_a_partly_non_finite_row_keeps_its_finite_entries(tmp_path):
    path = write(tmp_path / "d.h5", [20], a_dim=2)
    with h5py.File(path, "a") as f:
        f["action"][7] = [np.nan, 0.5]  # inside block 1, a used block
    info = inspect_dataset(path, check_actions=False)
    ref = ClipDataset(path, 4, 5, profile="reference", info=info)
    block = ref.get(np.array([[0, 0]])).actions[0, 1].numpy()  # rows 5..9, dims (x, y)
    assert block[4] == 0.0  # row 7, dim 0: the NaN entry
    assert block[5] == pytest.approx((0.5 - ref.normalizer.mean[1]) / ref.normalizer.std[1])
    assert np.count_nonzero(block) == 9
    clean = ClipDataset(path, 4, 5, profile="clean", info=info)
    with pytest.raises(DatasetError, match="non-finite actions in a used block"):
        clean.get(np.array([[0, 0]]))


def test_clip_split_is_the_seeded_reference_split():
    clips = np.stack([np.repeat(np.arange(5), 4), np.tile(np.arange(4), 5)], axis=1)  # (20, 2)
    train, val = clip_split(clips, 0.1, 3072)
    perm = np.random.default_rng(3072).permutation(20)
    assert val.tolist() == clips[np.sort(perm[:2])].tolist()
    assert train.tolist() == clips[np.sort(perm[2:])].tolist()


def test_dataset_info_has_no_episode_index_column(tmp_path):
    names = {f.name for f in dataclasses.fields(DatasetInfo)}
    assert "episode_index_column" not in names  # was filled and never read


def test_writer_keeps_string_columns(tmp_path):
    path = tmp_path / "s.h5"
    with DatasetWriter(path, compression="none") as w:
        for length in (3, 4):
            act = np.zeros((length, 2), dtype=np.float32)
            act[-1] = np.nan
            w.add_episode(
                {
                    "pixels": np.zeros((length, 8, 8, 3), dtype=np.uint8),
                    "action": act,
                    "label": np.array(["a"] * length),
                }
            )
    with h5py.File(path) as f:
        assert [x.decode() for x in f["label"][()]] == ["a"] * 7


def test_normalizer_ignores_nan_rows_and_round_trips(tmp_path):
    a = np.array([[1.0, 2.0], [3.0, 6.0], [np.nan, np.nan], [5.0, 10.0]])
    n = ActionNormalizer.fit(a, ddof=1)
    assert np.allclose(n.mean, [3, 6]) and np.allclose(n.std, [2, 4])
    assert np.allclose(ActionNormalizer.fit(a, ddof=0).std, np.std([1, 3, 5]) * np.array([1, 2]))
    x = torch.randn(4, 2)
    torch.testing.assert_close(n.denormalize(n.normalize(x)), x)
    const = ActionNormalizer.fit(np.ones((5, 1)))
    assert const.std[0] == 1e-8  # clamped
    assert ActionNormalizer.from_dict(n.to_dict()) == n


def test_episode_split_is_seeded_and_disjoint():
    tr, va = episode_split(100, 0.1, 3072)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va)
    tr2, va2 = episode_split(100, 0.1, 3072)
    assert np.array_equal(va, va2)
    with pytest.raises(DatasetError):
        episode_split(1, 0.1, 0)


def test_in_memory_and_streamed_agree(tmp_path):
    path = write(tmp_path / "d.h5", [30, 26], compression="gzip")
    a = ClipDataset(path, 4, 5, in_memory="yes")
    b = ClipDataset(path, 4, 5, in_memory="no")
    assert a.in_memory and not b.in_memory
    clips = a.clip_index(np.arange(2))
    ba, bb = a.get(clips), b.get(clips)
    assert torch.equal(ba.pixels, bb.pixels) and torch.equal(ba.actions, bb.actions)


def test_loader_order_is_seeded_and_resumable(tmp_path):
    path = write(tmp_path / "d.h5", [40, 40])
    ds = ClipDataset(path, 4, 5)
    clips = ds.clip_index(np.arange(2))
    loader = ClipLoader(ds, clips, batch_size=4, seed=1)
    it = loader.batches()
    first = [next(it).actions for _ in range(20)]  # crosses epoch boundaries (10 batches/epoch)
    it.close()
    it = loader.batches(start_batch=13)
    torch.testing.assert_close(next(it).actions, first[13])
    it.close()


def test_all_episodes_too_short(tmp_path):
    path = write(tmp_path / "d.h5", [10, 12])
    with pytest.raises(DatasetError, match="shorter than one clip"):
        ClipDataset(path, 4, 5)


def test_pixel_transform():
    frames = np.zeros((2, 3, 8, 8, 3), dtype=np.uint8)
    frames[..., 0] = 255
    px = frames_to_pixels(frames)
    assert px.shape == (2, 3, 3, 8, 8) and px.dtype == torch.float32
    assert px[0, 0, 0, 0, 0].item() == pytest.approx(
        (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], rel=1e-5
    )
    assert px[0, 0, 1, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[1] / IMAGENET_STD[1], rel=1e-5)
    assert np.array_equal(pixels_to_frames(px), frames)
    assert frames_to_pixels(frames, size=4).shape == (2, 3, 3, 4, 4)
    with pytest.raises(ValueError, match="uint8"):
        frames_to_pixels(frames.astype(np.float32))


def test_clip_index_function():
    class Info:
        ep_len = np.array([20, 5, 21])

    idx = clip_index(Info, np.array([0, 1, 2]), 20)
    assert idx.tolist() == [[0, 0], [2, 0], [2, 1]]
