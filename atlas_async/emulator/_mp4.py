"""
A small, valid, playable MP4, written by hand.

What the file contains, exactly:

* ``ftyp``: major brand ``isom``, compatible ``isom iso2 avc1 mp41``;
* ``moov``: ``mvhd`` (timescale 1000), one video ``trak``: ``tkhd`` (track 1,
  enabled, width x height), ``mdia`` (``mdhd`` timescale 1000, language
  ``und``; ``hdlr`` ``vide``; ``minf``: ``vmhd``, ``dinf/dref/url`` (self
  contained), ``stbl``: ``stsd`` with one ``avc1`` sample entry carrying an
  ``avcC`` record, ``stts`` (one run of equal durations), ``stsc`` (one chunk),
  ``stsz`` (each sample's size), ``stco`` (the chunk's offset into ``mdat``)).
  No ``stss``: every sample is a sync sample.
* ``mdat``: `FRAMES` samples, one per frame at `FPS` frames per second, each a
  4-byte length then one H.264 IDR slice NAL.

The video is real H.264 (Baseline profile, level 1.0, 4:2:0, 8-bit) that any
decoder plays, and it needs no encoder: every macroblock is coded as ``I_PCM``,
which carries its 256 luma and 2 x 64 chroma samples verbatim. The SPS sets
``pic_order_cnt_type`` 2 and one reference frame; the PPS uses CAVLC; each frame
is an IDR picture (``idr_pic_id`` alternates 0/1). Samples are kept inside the
video range (Y 16-235, Cb/Cr 16-240) and emulation-prevention bytes are inserted
as the standard requires. The picture is a flat colour from the key with a
brighter bar that moves one step per frame, so consecutive frames differ.
"""

from __future__ import annotations

import struct

__all__ = ["FPS", "FRAMES", "HEIGHT", "WIDTH", "mp4", "nal_unit"]

WIDTH = 48
HEIGHT = 32
FPS = 10
FRAMES = 10
_TIMESCALE = 1000
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


class _BitWriter:
    """MSB-first bit writer for H.264 RBSPs (``u(n)``, ``ue(v)``, ``se(v)``)."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._count = 0

    def u(self, bits: int, value: int) -> None:
        for shift in range(bits - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> shift) & 1)
            self._count += 1
            if self._count == 8:
                self._out.append(self._acc)
                self._acc = self._count = 0

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while self._count:
            self.u(1, 0)

    def raw(self, data: bytes) -> None:
        self._out += data  # callers align first

    def trailing(self) -> bytes:
        self.u(1, 1)
        self.align_zero()
        return bytes(self._out)


def nal_unit(header: int, rbsp: bytes) -> bytes:
    """
    Wrap an RBSP in a NAL unit: the one header byte, then the payload with an
    emulation-prevention byte (``0x03``) after every two zero bytes that are
    followed by a byte of at most 3, so no start code can appear inside.

    Example::

        nal_unit(0x65, bytes([0, 0, 1])) == bytes([0x65, 0, 0, 3, 1])
    """
    out = bytearray([header])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(width: int, height: int) -> bytes:
    bits = _BitWriter()
    bits.u(8, 66)  # profile_idc: Baseline
    bits.u(8, 0xC0)  # constraint_set0 and set1: also valid Main
    bits.u(8, 10)  # level_idc 1.0 (99 macroblocks a frame is plenty)
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(0)  # log2_max_frame_num_minus4
    bits.ue(2)  # pic_order_cnt_type 2: output order = decode order
    bits.ue(1)  # max_num_ref_frames
    bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    bits.ue(width // 16 - 1)  # pic_width_in_mbs_minus1
    bits.ue(height // 16 - 1)  # pic_height_in_map_units_minus1
    bits.u(1, 1)  # frame_mbs_only_flag
    bits.u(1, 1)  # direct_8x8_inference_flag
    bits.u(1, 0)  # frame_cropping_flag
    bits.u(1, 0)  # vui_parameters_present_flag
    return nal_unit(0x67, bits.trailing())


def _pps() -> bytes:
    bits = _BitWriter()
    bits.ue(0)  # pic_parameter_set_id
    bits.ue(0)  # seq_parameter_set_id
    bits.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    bits.ue(0)  # num_slice_groups_minus1
    bits.ue(0)  # num_ref_idx_l0_default_active_minus1
    bits.ue(0)  # num_ref_idx_l1_default_active_minus1
    bits.u(1, 0)  # weighted_pred_flag
    bits.u(2, 0)  # weighted_bipred_idc
    bits.se(0)  # pic_init_qp_minus26
    bits.se(0)  # pic_init_qs_minus26
    bits.se(0)  # chroma_qp_index_offset
    bits.u(1, 0)  # deblocking_filter_control_present_flag
    bits.u(1, 0)  # constrained_intra_pred_flag
    bits.u(1, 0)  # redundant_pic_cnt_present_flag
    return nal_unit(0x68, bits.trailing())


def _idr_slice(key: bytes, index: int, width: int, height: int) -> bytes:
    """One IDR picture whose macroblocks are all I_PCM."""
    base_y = 16 + key[0] % 150
    bar_y = min(235, base_y + 60)
    cb, cr = 16 + key[1] % 225, 16 + key[2] % 225
    mbs_wide = width // 16
    bar_x = (index * 4) % width
    bits = _BitWriter()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (all slices of the picture)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num (log2_max_frame_num = 4)
    bits.ue(index % 2)  # idr_pic_id: consecutive IDRs must differ
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    chroma = bytes([cb]) * 64 + bytes([cr]) * 64
    for mb in range((width // 16) * (height // 16)):
        bits.ue(25)  # mb_type I_PCM
        bits.align_zero()  # pcm_alignment_zero_bit
        mb_x = (mb % mbs_wide) * 16
        row = bytes(
            bar_y if bar_x <= mb_x + x < bar_x + 4 else base_y for x in range(16)
        )
        bits.raw(row * 16)
        bits.raw(chroma)
    return nal_unit(0x65, bits.trailing())


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _avc1(sps: bytes, pps: bytes, width: int, height: int) -> bytes:
    avcc = _box(
        b"avcC",
        bytes(
            [1, sps[1], sps[2], sps[3], 0xFF, 0xE1]
        ),  # version, profile, compat, level
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined and reserved
        struct.pack(">HHII", width, height, 0x480000, 0x480000),  # 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x18, -1),  # depth, pre_defined
        avcc,
    )


def _moov(
    sizes: list[int], sps: bytes, pps: bytes, width: int, height: int, offset: int
) -> bytes:
    delta = _TIMESCALE // FPS
    duration = delta * len(sizes)
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, _TIMESCALE, duration),
        struct.pack(">IH", 0x10000, 0x100),  # rate 1.0, volume 1.0
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", 2),  # next_track_ID
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        3,  # enabled, in movie
        struct.pack(">IIII", 0, 0, 1, 0),
        struct.pack(">I", duration),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),  # layer, alternate group, volume, reserved
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0)
    )
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    dinf = _box(
        b"dinf",
        _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)),
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(sps, pps, width, height)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, len(sizes), delta)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
        _full_box(
            b"stsz", 0, 0, struct.pack(f">II{len(sizes)}I", 0, len(sizes), *sizes)
        ),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, offset)),
    )
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


def mp4(
    key: bytes, width: int = WIDTH, height: int = HEIGHT, frames: int = FRAMES
) -> bytes:
    """
    Return a valid MP4 (H.264 in ISO BMFF) drawn from ``key``.

    Args:
        key: any bytes (use ``_media.digest``); different keys differ in colour.
        width: pixels, a multiple of 16.
        height: pixels, a multiple of 16.
        frames: how many frames, at `FPS` frames per second.
    """
    if width % 16 or height % 16 or width <= 0 or height <= 0:
        raise ValueError("width and height must be positive multiples of 16")
    sps, pps = _sps(width, height), _pps()
    samples = [_idr_slice(key, index, width, height) for index in range(frames)]
    payload = b"".join(struct.pack(">I", len(nal)) + nal for nal in samples)
    sizes = [4 + len(nal) for nal in samples]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    # moov's size does not depend on the offset value, so measure, then write.
    probe = _moov(sizes, sps, pps, width, height, 0)
    offset = len(ftyp) + len(probe) + 8
    moov = _moov(sizes, sps, pps, width, height, offset)
    return ftyp + moov + _box(b"mdat", payload)
