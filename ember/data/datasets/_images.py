"""Decoding image files: .npy (NumPy), NetPBM .pgm/.ppm (parsed here), .png (via Pillow)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ember._core.errors import EmberError

_NETPBM = {b"P2": (1, False), b"P3": (3, False), b"P5": (1, True), b"P6": (3, True)}


def _header(raw: bytes, path) -> tuple[list[int], int]:
    """Width, height, maxval and the offset just past the header's last field."""
    fields, position = [], 2
    while len(fields) < 3:
        while position < len(raw) and raw[position:position + 1].isspace():
            position += 1
        if raw[position:position + 1] == b"#":  # a comment runs to the end of its line
            position = raw.find(b"\n", position)
            if position < 0:
                break
            continue
        start = position
        while position < len(raw) and not raw[position:position + 1].isspace():
            position += 1
        if start == position:
            break
        fields.append(int(raw[start:position]))
    if len(fields) < 3:
        raise EmberError(f"{path}: truncated NetPBM header")
    return fields, position


def read_netpbm(path) -> np.ndarray:
    """Grey (P2/P5 .pgm) -> (H, W), colour (P3/P6 .ppm) -> (H, W, 3); uint8, or uint16 if
    maxval > 255."""
    raw = Path(path).read_bytes()
    if raw[:2] not in _NETPBM:
        raise EmberError(f"{path}: not a greymap or pixmap NetPBM file (magic {raw[:2]!r}; "
                         f"supported P2, P3, P5, P6)")
    channels, binary = _NETPBM[raw[:2]]
    try:
        (width, height, maxval), position = _header(raw, path)
    except ValueError as error:
        raise EmberError(f"{path}: bad NetPBM header ({error})") from None
    if not 0 < maxval < 65536:
        raise EmberError(f"{path}: NetPBM maxval must lie in [1, 65535], got {maxval}")
    count = width * height * channels
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    try:
        if binary:  # exactly one whitespace byte separates the header from the pixels
            pixels = np.frombuffer(raw, dtype=dtype, count=count, offset=position + 1)
        else:
            pixels = np.array(raw[position:].split()[:count], dtype=np.int64)
            if pixels.size != count:
                raise ValueError(f"{pixels.size} values for {count} samples")
    except ValueError as error:
        raise EmberError(f"{path}: NetPBM pixel data does not fit {width}x{height}x{channels} "
                         f"({error})") from None
    pixels = pixels.astype(np.uint8 if maxval < 256 else np.uint16)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return pixels.reshape(shape)


def read_png(path) -> np.ndarray:
    """(H, W) or (H, W, C) array of a PNG, decoded by Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise EmberError(f"{path}: reading PNG needs Pillow (`pip install pillow`); or store the "
                         f"images as .npy or .pgm/.ppm, which ember reads by itself") from None
    with Image.open(path) as image:
        return np.asarray(image)


def load_image(path) -> np.ndarray:
    """Decode an image file by its extension: .npy, .pgm/.ppm/.pnm, or .png (Pillow)."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension == ".npy":
        return np.load(path, allow_pickle=False)  # no pickle: a data file never runs code
    if extension in (".pgm", ".ppm", ".pnm"):
        return read_netpbm(path)
    if extension == ".png":
        return read_png(path)
    raise EmberError(f"{path}: no decoder for {extension!r} images; supported are .npy, .pgm, "
                     f".ppm, .pnm and .png (with Pillow); pass loader= for others")
