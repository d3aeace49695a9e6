"""Checkpoint metadata as an attacker writes it: a base file's header with fields replaced, the
costliest small files, and hypothesis strategies for any JSON a field may hold."""

import json
import struct

from hypothesis import strategies as st

K = 3
ROW = {"epoch": 1, "beta": 1.0, "recon": 40.0, "kl": 2.0, "elbo": -42.0, "kl_per_dim": [1.0, 0.5, 0.5]}



def worst_cases(base) -> dict[str, bytes]:
    """The costliest metadata a small file can carry: huge per-dimension rows, a 10 MB dataset spec,
    150,000 history rows."""
    return {
        "kl": with_meta(base, history=json.dumps([dict(ROW, kl_per_dim=[0.1] * 200_000)] * 5)),
        "spec": with_meta(base, dataset="images:/" + "a" * 10_000_000),
        "rows": with_meta(base, history=json.dumps([ROW] * 150_000)),
    }


def with_meta(base, **meta) -> bytes:
    header = json.loads(json.dumps(base[0]))
    header["__metadata__"].update({k: v for k, v in meta.items() if v is not None})
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + base[1]


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
rows = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={k: st.one_of(json_scalars, st.just(ROW[k])) for k in ROW if k != "kl_per_dim"}
                          | {"kl_per_dim": st.one_of(st.lists(json_scalars, max_size=5), st.just([0.1] * K)),
                             "extra": json_values}),
)
histories = st.one_of(st.lists(rows, max_size=20), json_values,
                      st.integers(0, 300_000).map(lambda n: [dict(ROW, kl_per_dim=[0.1] * n)]))
specs = st.one_of(st.text(max_size=60), st.sampled_from(["digits", "images:/", "npz:/dev/zero", "mnist:/proc"]),
                  st.integers(4000, 3_000_000).map(lambda n: "images:/" + "a" * n))
train_configs = st.one_of(st.dictionaries(st.sampled_from(["epochs", "lr", "beta", "seed", "batch_size", "threads"]),
                                          json_scalars, max_size=4),
                          json_values, st.just({"epochs": 10 ** 20}))
