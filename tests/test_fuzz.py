"""Fuzzing the readers of untrusted files: only documented exceptions, in bounded time and memory.

- IDX bytes (headers and payloads built, then mutated, and plain random bytes) fed to
  `read_idx_file`: a valid array or a `ValueError`, each read within `IDX_SECONDS`, its peak
  traced memory within `IDX_PEAK_SLACK` plus twice the smaller of what the header declares and
  what the file holds (some inputs are gzip bombs of `BOMB_BYTES`).
- `.keras` archives (a small saved model's `config.json` mutated field by field) fed to
  `lenet_blocks.load_model`: a model within the parameter budget or a `ValueError`, each load
  within `LOAD_SECONDS`, the process' peak memory growing by less than `LOAD_PEAK_GROWTH`.

The example counts are multiples of the Hypothesis profile's `max_examples` (see conftest.py):
`IDX_EXAMPLES_PER_PROFILE_EXAMPLE` and `KERAS_EXAMPLES_PER_PROFILE_EXAMPLE`, so a larger profile
(`HYPOTHESIS_PROFILE=dev`, or a longer one) runs a longer fuzz. docs/reliability.md gives the
figures.
"""

import gzip
import json
import resource
import struct
import time
import tracemalloc

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from idx_helpers import read_keras_config, write_keras_config

import lenet_blocks as lb
from lenet_blocks.datasets import read_idx_file
from lenet_blocks.limits import MAX_PARAMS_ENV_VAR

PROFILE_EXAMPLES = settings.default.max_examples
IDX_EXAMPLES_PER_PROFILE_EXAMPLE = 20
KERAS_EXAMPLES_PER_PROFILE_EXAMPLE = 4

IDX_SECONDS = 5.0
IDX_PEAK_SLACK = 4 * 2**20  # a read chunk (1 MiB) and what Python and NumPy use around it
# Zeros after the declared payload in a bomb, about 16 KiB once gzipped; a reader that inflates
# a bomb whole needs more than the slack.
BOMB_BYTES = 2**24
LOAD_SECONDS = 60.0
LOAD_PEAK_GROWTH = 2**30
FUZZ_MAX_PARAMS = 10**6  # the budget during the fuzz: an accepted model stays small

# Words of `read_idx_file`'s messages, to show which checks the fuzz reaches
# (`pytest --hypothesis-show-statistics`).
IDX_PROBLEMS = ("gzip", "magic", "images are", "short", "limit", "truncated", "trailing", "label")
MAGICS = {"images": 0x00000803, "labels": 0x00000801}
FUZZ_SETTINGS = {
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow explain
}


# IDX bytes.


def sometimes(draw, tenths: int) -> bool:
    """True in about `tenths` out of 10 draws."""
    return draw(st.integers(0, 9)) < tenths


@st.composite
def idx_cases(draw):
    """`(kind, file bytes, decompressed bytes, bomb)`: mostly an IDX header and payload,
    sometimes damaged (wrong magic or size, overwritten bytes, cut short, trailing zeros),
    gzipped or not; sometimes random bytes."""
    kind = draw(st.sampled_from(["images", "labels"]))
    if sometimes(draw, 1):
        content = b"\x1f\x8b" * draw(st.booleans()) + draw(st.binary(max_size=512))
        return kind, content, content, False
    any_size = st.integers(0, 40) | st.sampled_from([27, 2**31, 2**32 - 1])
    magic = draw(st.integers(0, 2**32 - 1)) if sometimes(draw, 1) else MAGICS[kind]
    shape = [draw(any_size)]
    if kind == "images":
        shape += [draw(any_size), draw(any_size)] if sometimes(draw, 1) else [28, 28]
    header = struct.pack(f">I{len(shape)}I", magic, *shape)
    size = min(int(np.prod(shape, dtype=object)), 40 * 28 * 28)
    if sometimes(draw, 2):
        size = max(size + draw(st.integers(-3, 3)), 0)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    highest = 9 if kind == "labels" and sometimes(draw, 8) else 255
    content = bytearray(header + rng.integers(0, highest + 1, size, np.uint8).tobytes())
    for position, value in draw(
        st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=2)
    ):
        content[position % len(content)] = value
    if sometimes(draw, 1):
        content = content[: draw(st.integers(0, len(content)))]
    bomb = sometimes(draw, 1)
    content = raw = bytes(content) + bytes(BOMB_BYTES if bomb else 0)
    if bomb or draw(st.booleans()):
        content = gzip.compress(raw, compresslevel=1)
        if sometimes(draw, 1):  # damage the compressed stream too
            content = content[: draw(st.integers(0, len(content)))]
    return kind, content, raw, bomb


def declared_bytes(raw: bytes, kind: str) -> int:
    """The payload size the IDX header at the start of `raw` declares (0 if it is cut short)."""
    ndim = 3 if kind == "images" else 1
    if len(raw) < 4 + 4 * ndim:
        return 0
    return int(np.prod(struct.unpack_from(f">{ndim}I", raw, 4), dtype=object))


@settings(max_examples=IDX_EXAMPLES_PER_PROFILE_EXAMPLE * PROFILE_EXAMPLES, **FUZZ_SETTINGS)
@given(case=idx_cases())
def test_idx_reader_returns_an_array_or_raises_value_error(tmp_path_factory, case):
    kind, content, raw, bomb = case
    path = tmp_path_factory.getbasetemp() / "fuzz.idx"
    path.write_bytes(content)

    tracemalloc.start()
    start = time.monotonic()
    try:
        array = read_idx_file(path, kind)
    except ValueError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        event(next((f"refused: {w}" for w in IDX_PROBLEMS if w in str(error)), "refused: other"))
        array = None
    finally:
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    assert elapsed < IDX_SECONDS
    assert peak < IDX_PEAK_SLACK + 2 * min(declared_bytes(raw, kind), len(raw))
    if array is not None:
        event("read")
        assert not bomb
        assert array.dtype == np.uint8 and not array.flags.writeable
        # Any image size and label value: the loaders check the labels against the classes.
        assert array.ndim == (3 if kind == "images" else 1)
        assert min(array.shape[1:], default=1) >= 1


# `.keras` archives.

DELETE = object()
# Half the mutations go to these fields (and the values in them): what sizes the weights.
SIZE_KEYS = {
    "filters",
    "kernel_size",
    "pool_size",
    "units",
    "classes",
    "batch_shape",
    "input_shape",
}
FUZZ_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 100),
    st.sampled_from([0, -1, 2**31, 2**63, 10**9, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["relu", "same", "max", "keras.layers", "Dense", "__lambda__", "Functional"]),
    st.lists(st.integers(-2, 2**31) | st.none(), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=3), max_size=2),
    st.just(DELETE),
)


def json_paths(node, prefix=()):
    """The path of every value in a JSON tree, as a tuple of keys and indices."""
    if isinstance(node, dict | list):
        items = node.items() if isinstance(node, dict) else enumerate(node)
    else:
        items = ()
    for key, value in items:
        yield (*prefix, key)
        yield from json_paths(value, (*prefix, key))


def mutate(config, path, value):
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A compiled `build_lenet()`, trained a step, saved to a `.keras` file; its config's paths."""
    path = tmp_path_factory.mktemp("fuzz-keras") / "lenet.keras"
    model = lb.build_lenet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.zeros((8, 28, 28, 1)), np.zeros(8), verbose=0)  # builds the optimizer state
    model.save(path)
    paths = sorted(json_paths(read_keras_config(path)), key=repr)
    sizes = [p for p in paths if set(p) & SIZE_KEYS]
    return path, paths, sizes


@pytest.mark.filterwarnings("ignore::UserWarning")  # Keras warns about some edited files
@settings(max_examples=KERAS_EXAMPLES_PER_PROFILE_EXAMPLE * PROFILE_EXAMPLES, **FUZZ_SETTINGS)
@given(data=st.data())
def test_mutated_keras_archive_loads_or_raises_value_error(saved_model, data):
    source, paths, sizes = saved_model
    config = read_keras_config(source)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        pool = sizes if data.draw(st.booleans(), label="a size field") else paths
        live = [path for path in pool if _exists(config, path)]
        if not live:  # an earlier mutation removed them all
            break
        mutate(config, data.draw(st.sampled_from(live), label="path"), data.draw(FUZZ_VALUES))
    target = source.with_name("mutated.keras")
    write_keras_config(source, target, json.dumps(config).encode())

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MAX_PARAMS_ENV_VAR, str(FUZZ_MAX_PARAMS))
        try:
            model = lb.load_model(target)
        except ValueError as error:
            assert str(target) in str(error)
            event(
                "refused: parameters" if "parameters, over the limit" in str(error) else "refused"
            )
            model = None
    elapsed = time.monotonic() - start
    peak_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before

    assert elapsed < LOAD_SECONDS
    assert peak_growth < LOAD_PEAK_GROWTH
    if model is not None:
        event("loaded")
        assert isinstance(model, keras.Model)
        assert model.count_params() <= FUZZ_MAX_PARAMS


def _exists(config, path) -> bool:
    """Whether `path` still leads somewhere in `config` (an earlier mutation may have cut it)."""
    node = config
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    return True
