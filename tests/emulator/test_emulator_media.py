"""The emulator's media files: real PNG, MP4 (H.264 in ISO BMFF) and WAV bytes."""

from __future__ import annotations

import io
import struct
import wave
import zlib

import pytest

from atlas_async.emulator import _media, _mp4


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        tag = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks.append((tag, body))
        offset += 12 + length
    return chunks


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, bytes]:
    """Parse sibling ISO BMFF boxes into {type: payload} (last one wins)."""
    end = len(data) if end is None else end
    boxes, offset = {}, start
    while offset < end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8
        assert offset + size <= end
        boxes[kind] = data[offset + 8 : offset + size]
        offset += size
    assert offset == end
    return boxes


class TestPng:
    def test_png_is_well_formed(self) -> None:
        """The PNG has IHDR/IDAT/IEND with valid CRCs and the right pixel count."""
        data = _media.png(_media.digest("a fox"), 40, 30)
        chunks = _png_chunks(data)
        assert [tag for tag, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
        width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
        assert (width, height, depth, colour) == (40, 30, 8, 2)
        assert len(zlib.decompress(chunks[1][1])) == 30 * (1 + 3 * 40)

    def test_two_prompts_give_different_pixels(self) -> None:
        """Different keys give different bytes; the same key gives the same."""
        fox, owl = _media.digest("a fox"), _media.digest("an owl")
        assert _media.png(fox) != _media.png(owl)
        assert _media.png(fox) == _media.png(fox)

    @pytest.mark.parametrize(
        ("size", "expected"),
        [
            pytest.param(None, (64, 64), id="absent"),
            pytest.param("1:1", (64, 64), id="not-w*h"),
            pytest.param("100*50", (100, 50), id="small"),
            pytest.param("2048*1024", (128, 64), id="scaled-down"),
            pytest.param("0*10", (1, 10), id="zero"),
        ],
    )
    def test_image_size_follows_the_request(
        self, size: object, expected: tuple[int, int]
    ) -> None:
        """size "W*H" keeps its aspect ratio within 128 px; anything else is 64x64."""
        assert _media.image_size(size) == expected


class TestMp4:
    def test_mp4_box_structure_is_valid(self) -> None:
        """ftyp, moov (mvhd, trak/tkhd/mdia/minf/stbl) and mdat parse and agree."""
        data = _mp4.mp4(_media.digest("waves"))
        top = _boxes(data)
        assert list(top) == [b"ftyp", b"moov", b"mdat"]
        assert top[b"ftyp"][:4] == b"isom"
        moov = _boxes(top[b"moov"])
        assert set(moov) == {b"mvhd", b"trak"}
        timescale, duration = struct.unpack(">II", moov[b"mvhd"][12:20])
        assert (timescale, duration) == (1000, 1000 * _mp4.FRAMES // _mp4.FPS)
        trak = _boxes(moov[b"trak"])
        assert set(trak) == {b"tkhd", b"mdia"}
        width, height = struct.unpack(">II", trak[b"tkhd"][-8:])
        assert (width >> 16, height >> 16) == (_mp4.WIDTH, _mp4.HEIGHT)
        mdia = _boxes(trak[b"mdia"])
        assert mdia[b"hdlr"][8:12] == b"vide"
        minf = _boxes(mdia[b"minf"])
        assert set(minf) == {b"vmhd", b"dinf", b"stbl"}
        stbl = _boxes(minf[b"stbl"])
        assert set(stbl) == {b"stsd", b"stts", b"stsc", b"stsz", b"stco"}
        entry = stbl[b"stsd"][8:]
        assert entry[4:8] == b"avc1"
        avcc = _boxes(entry[8 + 78 : struct.unpack(">I", entry[:4])[0]])
        assert avcc[b"avcC"][:2] == bytes([1, 66])  # version 1, Baseline
        count = struct.unpack(">I", stbl[b"stsz"][8:12])[0]
        sizes = struct.unpack(f">{count}I", stbl[b"stsz"][12:])
        assert count == _mp4.FRAMES
        (offset,) = struct.unpack(">I", stbl[b"stco"][8:12])
        mdat_start = data.index(b"mdat") + 4
        assert offset == mdat_start
        assert sum(sizes) == len(top[b"mdat"])

    def test_mdat_holds_one_idr_slice_per_frame(self) -> None:
        """Every sample is a length-prefixed IDR NAL (type 5) of its stsz size."""
        data = _mp4.mp4(_media.digest("waves"))
        mdat = data[data.index(b"mdat") + 4 :]
        offset, frames = 0, 0
        while offset < len(mdat):
            (length,) = struct.unpack(">I", mdat[offset : offset + 4])
            assert mdat[offset + 4] == 0x65  # nal_ref_idc 3, IDR slice
            offset += 4 + length
            frames += 1
        assert frames == _mp4.FRAMES

    def test_nal_units_never_contain_start_codes(self) -> None:
        """Emulation prevention keeps 00 00 0x (x <= 3) out of every NAL."""
        data = _mp4.mp4(_media.digest("dark"), frames=2)
        mdat = data[data.index(b"mdat") + 4 :]
        for forbidden in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
            assert forbidden not in mdat[4:]

    def test_emulation_prevention_escapes_zero_runs(self) -> None:
        """Two zero bytes followed by a byte <= 3 get a 0x03 in between."""
        assert _mp4.nal_unit(0x65, b"\x00\x00\x01\x00\x00\x05") == (
            b"\x65\x00\x00\x03\x01\x00\x00\x05"
        )

    def test_different_keys_give_different_videos(self) -> None:
        """Two prompts give two different files."""
        assert _mp4.mp4(_media.digest("a")) != _mp4.mp4(_media.digest("b"))

    def test_dimensions_must_be_macroblock_multiples(self) -> None:
        """Width and height that are not multiples of 16 are refused."""
        with pytest.raises(ValueError, match="multiples of 16"):
            _mp4.mp4(b"k" * 32, width=20)


class TestWav:
    def test_wav_header_and_length(self) -> None:
        """The WAV is 8 kHz 16-bit mono, one second long."""
        data = _media.wav(_media.digest("hello"))
        assert data[:4] == b"RIFF"
        assert data[8:12] == b"WAVE"
        with wave.open(io.BytesIO(data)) as audio:
            assert audio.getnchannels() == 1
            assert audio.getsampwidth() == 2
            assert audio.getframerate() == 8000
            assert audio.getnframes() == 8000

    def test_wav_pitch_depends_on_the_key(self) -> None:
        """Two keys give two different tones."""
        assert _media.wav(_media.digest("a")) != _media.wav(_media.digest("b"))
