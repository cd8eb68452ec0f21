"""Dataset preparation and checking: videos to sequences, edge maps, label
helpers, pose rendering and the dataset checker (issue 7)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import flownet
from vid2vid.data.checker import check_sequence_dataset
from vid2vid.data.edges import canny_edges
from vid2vid.data.frames import VideoFile, iter_frames, write_video
from vid2vid.data.label_maps import CITYSCAPES_PALETTE, colors_to_ids, ids_to_colors, parse_remap, remap_labels
from vid2vid.data.images import DatasetError
from vid2vid.data.pose import BODY_COLORS, read_densepose_iuv, read_openpose, render_pose
from vid2vid.data.prepare import VideoPreparation, fit_frame, frame_stride, prepare_video_dataset

ROOT = Path(__file__).resolve().parent.parent


def moving_square_video(path, frames=13, size=(48, 64), fps=10):
    def frame(t):
        image = np.zeros((*size, 3), np.uint8)
        image[10:26, 4 + 2 * t: 20 + 2 * t] = 255
        return image

    write_video(path, (frame(t) for t in range(frames)), fps=fps)
    return path


# ----------------------------------------------------------------------------- frames


def test_video_reads_seek_to_the_frames_asked_for(tmp_path):
    import av

    path = tmp_path / "gop.mp4"
    with av.open(str(path), "w") as container:  # a keyframe every 5 frames, B-frames reordered between them
        stream = container.add_stream("libx264", rate=10, options={"g": "5", "bf": "2"})
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for t in range(23):
            image = np.full((32, 32, 3), 10 * t, np.uint8)
            image[:, t:t + 4] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    frames = list(iter_frames(path))
    video = VideoFile(path)
    assert len(video) == len(frames) == 23
    for start, count in ((0, 3), (7, 4), (10, 1), (14, 9), (21, 5), (23, 2)):
        clip = video.read(start, count)
        assert len(clip) == len(frames[start:start + count])
        assert all(np.array_equal(a, b) for a, b in zip(clip, frames[start:start + count])), (start, count)
    video.timestamps = [None] * len(video)  # a stream without timestamps is read in order
    assert all(np.array_equal(a, b) for a, b in zip(video.read(12, 3), frames[12:15]))


# ----------------------------------------------------------------------------- prepare


def test_videos_become_sequences_with_a_test_split(tmp_path):
    video = moving_square_video(tmp_path / "clip.mp4")
    written = prepare_video_dataset([video], tmp_path / "out", VideoPreparation(sequence_length=4, test_every=3,
                                                                                edges="canny"))
    # 13 frames: 4 + 4 + 4, and a remainder of 1 frame is too short to be a sequence
    assert [(s.name, s.split, s.frames) for s in written] == [
        ("clip_000", "train", 4), ("clip_001", "train", 4), ("clip_002", "test", 4)]
    assert sorted(p.name for p in (tmp_path / "out" / "train_B" / "clip_001").iterdir()) == [
        "00000.png", "00001.png", "00002.png", "00003.png"]
    assert len(list((tmp_path / "out" / "test_A" / "clip_002").iterdir())) == 4
    edges = np.asarray(Image.open(tmp_path / "out" / "train_A" / "clip_000" / "00000.png"))
    assert edges.shape == (48, 64) and edges.max() == 255 and edges[18, 12] == 0  # inside the square: no edge
    assert check_sequence_dataset(tmp_path / "out").ok


def test_face_landmarks_become_the_inputs_of_face_models(tmp_path):
    from vid2vid.data.face import read_landmarks

    video = moving_square_video(tmp_path / "clip.mp4", frames=6)
    landmarks = np.random.default_rng(0).uniform(10, 40, (6, 68, 2))
    prepare_video_dataset([video], tmp_path / "out", VideoPreparation(sequence_length=3, edges="face"), [landmarks])
    written = sorted((tmp_path / "out" / "train_A" / "clip_001").iterdir())
    assert [p.name for p in written] == ["00000.txt", "00001.txt", "00002.txt"]
    assert np.abs(read_landmarks(written[2]) - landmarks[5]).max() <= 0.005  # the frames' own, in order


def test_frame_rate_subsampling_and_resizing(tmp_path):
    video = moving_square_video(tmp_path / "clip.mp4", frames=13, fps=10)
    written = prepare_video_dataset([video], tmp_path / "out", VideoPreparation(fps=5, size=(32, 32),
                                                                                sequence_length=4))
    assert [s.frames for s in written] == [4, 3]  # every second frame: 7 of 13
    frame = Image.open(tmp_path / "out" / "train_B" / "clip_000" / "00000.png")
    assert frame.size == (32, 32)
    assert frame_stride(30, 10) == 3 and frame_stride(25, 30) == 1 and frame_stride(None, 10) == 1


def test_fit_frame_crops_the_centre_or_stretches():
    frame = np.zeros((10, 20, 3), np.uint8)
    frame[:, 5:15] = 200  # the centre 10 columns
    assert (fit_frame(frame, (10, 10), "crop") == 200).all()
    stretched = fit_frame(frame, (10, 10), "stretch")
    assert stretched.shape == (10, 10, 3) and stretched[:, 0].max() < 100


def test_prepare_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="sequence_length must be at least 2"):
        VideoPreparation(sequence_length=1)
    with pytest.raises(ValueError, match="one landmark array per video"):
        prepare_video_dataset([tmp_path / "a.mp4"], tmp_path / "out", VideoPreparation(edges="face"))


# ------------------------------------------------------------------------------- edges


def test_canny_edges_of_a_known_image():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:30, 10:30] = 255
    edges = canny_edges(image)
    assert edges[20, 20] == 0 and edges[2, 2] == 0  # inside and far outside
    border = edges[8:32, 8:32].copy()
    border[4:20, 4:20] = 0
    assert (border == 255).sum() >= 60  # the square's outline, 4 x 20 pixels give or take


def test_face_landmarks_are_read_per_video_and_written_per_frame(tmp_path):
    from vid2vid.data.face import read_landmarks, read_video_landmarks, write_landmarks

    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    landmarks = np.stack((32 + 12 * np.cos(t), 32 + 12 * np.sin(t)), 1)
    np.save(tmp_path / "lm.npy", landmarks[None].repeat(3, 0))
    assert read_video_landmarks(tmp_path / "lm.npy").shape == (3, 68, 2)
    (tmp_path / "txt").mkdir()
    np.savetxt(tmp_path / "txt" / "00000.txt", landmarks)  # "x y" rows
    write_landmarks(tmp_path / "txt" / "00001.txt", landmarks)  # "x,y" rows, as NVIDIA's face dataset
    assert read_video_landmarks(tmp_path / "txt").shape == (2, 68, 2)
    for name in ("00000.txt", "00001.txt"):
        assert np.abs(read_landmarks(tmp_path / "txt" / name) - landmarks).max() <= 0.005
    with pytest.raises(ValueError, match="expected \\(frames, 68, 2\\)"):
        np.save(tmp_path / "short.npy", landmarks[None, :10])
        read_video_landmarks(tmp_path / "short.npy")


# ------------------------------------------------------------------------------ labels


def test_cityscapes_ids_and_colours():
    ids = np.array([[7, 26], [21, 0]], np.uint8)
    colors = ids_to_colors(ids)
    assert tuple(colors[0, 0]) == (128, 64, 128) and tuple(colors[0, 1]) == (0, 0, 142)
    assert np.array_equal(colors_to_ids(colors), ids)
    assert colors_to_ids(ids_to_colors(np.array([[18]])))[0, 0] == 17  # shared colour: the first id
    with pytest.raises(ValueError, match=r"1 colours are not in the palette \(first: \(1, 2, 3\)\)"):
        colors_to_ids(np.array([[[1, 2, 3]]], np.uint8))
    with pytest.raises(ValueError, match="label ids must be 0 .. 33"):
        ids_to_colors(np.array([[40]]))
    assert len(CITYSCAPES_PALETTE) == 34


def test_remap_tables(tmp_path):
    assert parse_remap("11:21, 12:21") == {11: 21, 12: 21}
    (tmp_path / "remap.yaml").write_text("11: 21\n26: 24\n")
    assert parse_remap(str(tmp_path / "remap.yaml")) == {11: 21, 26: 24}
    swapped = remap_labels(np.array([1, 2, 3]), {1: 2, 2: 1})
    assert swapped.tolist() == [2, 1, 3]
    with pytest.raises(ValueError, match="must look like SRC:DST"):
        parse_remap("11-21")
    with pytest.raises(ValueError, match="integer label ids"):
        parse_remap("a:b")


# -------------------------------------------------------------------------------- pose


def openpose_file(path, points, kind="pose"):
    path.write_text(json.dumps({"people": [{f"{kind}_keypoints_2d": [v for p in points for v in p]}]}))
    return path


def test_pose_maps_are_drawn_as_nvidias_pose_models_saw_them(tmp_path):
    # against keypoint2img.read_keypoints as NVIDIA wrote it (tests/nvidia_layouts.py), pixel for pixel:
    # fitted lines, pen stamps averaging into drawn pixels, people summed modulo 256, keypoints on
    # whole pixels, beyond the frame, unconfident
    import nvidia_layouts as nv
    import pose_keypoints as pk

    rng = np.random.default_rng(5)
    for k in range(6):
        people = [pk.person((rng.uniform(-30, 190), rng.uniform(40, 100)), rng.uniform(0.3, 0.8), rng)
                  for _ in range(1 + k % 3)]
        path = pk.keypoint_file(tmp_path / f"{k}.json", people)
        ours = render_pose(read_openpose(path), (96, 160))
        assert np.array_equal(ours, nv.read_keypoints(path, (160, 96))), k
        assert (ours > 0).any(2).mean() > 0.02


def test_pose_rendering_of_a_known_skeleton(tmp_path):
    points = [[0, 0, 0.0]] * 18  # COCO's 18 keypoints, drawn as BODY_25's
    points[1] = [10, 20, 0.9]   # neck
    points[2] = [40, 20, 0.9]   # right shoulder: limb (1, 2)
    points[5] = [10, 50, 0.01]  # left shoulder at the threshold: limb (1, 5) not drawn
    path = openpose_file(tmp_path / "p.json", points)
    image = render_pose(read_openpose(path), (64, 64))
    assert tuple(image[20, 25]) == BODY_COLORS[2] and image[35, 10].max() == 0
    # the pen: rows 17 .. 22 (half-open, 3 each side); round ends reaching 5 pixels out
    assert image[17:23, 25].any(1).all() and not image[16, 25].any() and not image[23, 25].any()
    assert image[20, 5].any() and not image[20, 4].any()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DatasetError, match="cannot read OpenPose keypoints .*bad.json"):
        read_openpose(tmp_path / "bad.json")
    openpose_file(tmp_path / "short.json", [[1, 2, 0.5]] * 20)
    with pytest.raises(DatasetError, match="pose_keypoints_2d has 60 values, not 75 .BODY_25. or 54 .COCO."):
        read_openpose(tmp_path / "short.json")


def test_basic_points_leave_out_the_head_hands_and_face(tmp_path):
    import pose_keypoints as pk

    path = pk.keypoint_file(tmp_path / "p.json", [pk.person((80, 60), 0.5, np.random.default_rng(0), drop=0)])
    full, basic = render_pose(read_openpose(path), (96, 160)), render_pose(read_openpose(path), (96, 160), True)
    white = (full == 255).all(2)  # the face's lines
    assert white.any() and not (basic == 255).all(2).any()
    drawn, drawn_basic = full.any(2), basic.any(2)
    assert (drawn_basic <= drawn).all() and drawn.sum() > drawn_basic.sum()


def test_densepose_images_are_read_as_densepose_writes_them(tmp_path):
    iuv = np.zeros((8, 12, 3), np.uint8)
    iuv[..., 0], iuv[..., 1], iuv[..., 2] = 200, 100, 24  # V, U, then the part index (OpenCV's blue)
    Image.fromarray(iuv).save(tmp_path / "iuv.png")
    assert np.array_equal(read_densepose_iuv(tmp_path / "iuv.png", (8, 12)), iuv)
    with pytest.raises(DatasetError, match="is 12x8, the pose map 16x8"):
        read_densepose_iuv(tmp_path / "iuv.png", (8, 16))
    iuv[0, 0, 2] = 25
    Image.fromarray(iuv).save(tmp_path / "iuv.png")
    with pytest.raises(DatasetError, match="the blue channel .the part index I. holds 25"):
        read_densepose_iuv(tmp_path / "iuv.png", (8, 12))


# ----------------------------------------------------------------------------- checker


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)


def good_dataset(root, frames=4, size=(16, 24)):
    for seq in ("s1", "s2"):
        for i in range(frames):
            save(root / "train_B" / seq / f"{i:05d}.png", np.zeros((*size, 3), np.uint8))
            save(root / "train_A" / seq / f"{i:05d}.png", np.full(size, 3, np.uint8))
            save(root / "train_inst" / seq / f"{i:05d}.png", np.zeros(size, np.uint8))
        for i in range(frames - 1):
            (root / "train_flow" / seq).mkdir(parents=True, exist_ok=True)
            flownet.write_flo(root / "train_flow" / seq / f"{i:05d}.flo", np.zeros((*size, 2), np.float32))
    return root


def test_a_good_dataset_passes(tmp_path):
    report = check_sequence_dataset(good_dataset(tmp_path), label_nc=5, n_frames_total=4)
    assert report.ok, report.problems
    assert report.sequences == 2 and report.frames == 8 and report.sizes == {(24, 16)}
    assert "2 sequences, 8 frames" in report.summary() and "no problems" in report.summary()


@pytest.mark.parametrize(
    "damage, where, message",
    [
        (lambda r: save(r / "train_A" / "s1" / "00002.png", np.full((16, 24), 9, np.uint8)), "train_A/s1/00002.png",
         "label 9 >= label_nc 5"),
        (lambda r: (r / "train_A" / "s1" / "00003.png").unlink(), "train_A/s1",
         "3 frames, train_B/s1 has 4: missing 00003"),
        (lambda r: [save(r / "train_A" / "s2" / f"{i:05d}.png", np.where(np.eye(16, 24) > 0, 255, 0).astype(np.uint8))
                    for i in range(4)], "train_A/s2", "4 of 4 maps hold only 0 and 255: edge maps"),
        (lambda r: save(r / "train_B" / "s2" / "00001.png", np.zeros((16, 20, 3), np.uint8)), "train_B/s2/00001.png",
         "20x16, other frames of the sequence are 24x16"),
        (lambda r: (r / "train_B" / "s1" / "00000.png").write_bytes(b"garbage"), "train_B/s1/00000.png",
         "unreadable image"),
        (lambda r: (r / "train_inst" / "s3").mkdir(), "train_inst/s3", "extra sequence"),
        (lambda r: __import__("shutil").rmtree(r / "train_inst" / "s2"), "train_inst/s2", "missing"),
        (lambda r: (r / "train_flow" / "s1" / "00000.flo").write_bytes(b"xx"), "train_flow/s1/00000.flo",
         "too short"),
        (lambda r: (r / "train_flow" / "s2" / "00000.flo").unlink() or (r / "train_flow" / "s2" / "00001.flo").unlink(),
         "train_flow/s2", "1 flow files for 4 frames (expected 3 or 4)"),
        (lambda r: __import__("shutil").rmtree(r / "train_A"), "train_A", "missing folder"),
        (lambda r: save(r / "train_A" / "s1" / "00000.png", np.zeros((16, 24, 3), np.uint8)), "train_A/s1/00000.png",
         "an RGB image, but label_nc=5 expects label ids"),
    ],
)
def test_the_checker_names_every_problem(tmp_path, damage, where, message):
    root = good_dataset(tmp_path / "data")
    damage(root)
    problems = [str(p) for p in check_sequence_dataset(root, label_nc=5).problems]
    assert any(where in p and message in p for p in problems), problems


def test_short_sequences_and_the_script(tmp_path):
    root = good_dataset(tmp_path / "data", frames=3)
    result = subprocess.run([sys.executable, "scripts/check_dataset.py", str(root), "--n-frames-total", "4"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert "2 sequences, 6 frames" in result.stdout and "3 frames, fewer than n_frames_total 4" in result.stdout
    result = subprocess.run([sys.executable, "scripts/check_dataset.py", str(root)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout


def test_the_last_frames_of_a_video_can_be_the_test_sequence(tmp_path):
    video = moving_square_video(tmp_path / "clip.mp4")
    written = prepare_video_dataset([video], tmp_path / "out", VideoPreparation(sequence_length=5, test_tail=4))
    frames = sum(s.frames for s in written)
    assert [(s.name, s.split) for s in written][-1] == ("clip_tail", "test") and written[-1].frames == 4
    assert all(s.split == "train" for s in written[:-1]) and frames == len(list(iter_frames(video)))
    last = np.asarray(Image.open(tmp_path / "out" / "test_B" / "clip_tail" / "00003.png"))
    assert np.abs(last.astype(int) - fit_frame(list(iter_frames(video))[-1], None, "crop")).max() == 0
    with pytest.raises(ValueError, match="not given with test_every"):
        VideoPreparation(test_tail=4, test_every=2)


def test_prepare_script(tmp_path):
    video = moving_square_video(tmp_path / "clip.mp4")
    result = subprocess.run([sys.executable, "scripts/prepare_video_dataset.py", str(video), "--output",
                             str(tmp_path / "out"), "--sequence-length", "6", "--size", "32x48", "--edges",
                             "--flow", "dis"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "train: 2 sequences, 12 frames, flow in" in result.stdout
    assert Image.open(tmp_path / "out" / "train_A" / "clip_001" / "00005.png").size == (48, 32)
    flows = sorted((tmp_path / "out" / "train_flow" / "clip_001").glob("*.flo"))
    assert len(flows) == 5 and flownet.read_flo(flows[0]).shape == (32, 48, 2)
    result = subprocess.run([sys.executable, "scripts/prepare_video_dataset.py", str(tmp_path / "nope.mp4"),
                             "--output", str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1 and "nope.mp4 does not exist" in result.stderr
    # FlowNet2 (random weights here), two pairs a batch; without its checkpoint, where weights come from
    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    prepare = [sys.executable, "scripts/prepare_video_dataset.py", str(video), "--output", str(tmp_path / "fn"),
               "--sequence-length", "6", "--size", "64x64", "--flow", "flownet2"]
    result = subprocess.run(prepare + ["--flow-checkpoint", str(tmp_path / "s.pth.tar"), "--flow-batch-size", "2"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0 and "pairs/s)" in result.stdout, result.stderr
    assert len(list((tmp_path / "fn" / "train_flow" / "clip_001").glob("*.flo"))) == 5
    result = subprocess.run(prepare, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "--flow-checkpoint" in result.stderr
