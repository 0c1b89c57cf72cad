"""The reference scripts' weight generator, which the Swift tests repeat
(TinyModelSpec.lcg): x = 1664525·x + 1013904223 mod 2^32, advanced before each value;
w = offset + scale·(2·x/2^32 − 1) in float64, rounded once to float32. Its own module so
that scripts without torch can import it."""
import numpy as np


def lcg(seed, count, scale, offset):
    x, values = seed, np.empty(count, dtype=np.float64)
    for i in range(count):
        x = (1664525 * x + 1013904223) % 4294967296
        values[i] = offset + scale * (2 * x / 4294967296 - 1)
    return values.astype(np.float32)
