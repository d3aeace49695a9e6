"""Hostile diffusers folders: pickles reached through an index, decoy and truncated weights, configs
of a gigabyte, deeply nested or asking for huge models. Each is refused in one sentence before
diffusers reads anything, and nothing in it is ever unpickled."""

import json
import pickle

import pytest
from hostile_io import GB, measured, sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentlab.core.errors import LatentLabError
from latentlab.core.files.model_spec import load_model

diffusers = pytest.importorskip("diffusers")
from tiny_autoencoder import tiny_autoencoder  # noqa: E402 - once diffusers is known to be there

# Every argument of AutoencoderKL: what a config.json may set.
FIELDS = sorted(set(__import__("inspect").signature(diffusers.AutoencoderKL.__init__).parameters) - {"self"})


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good_ae")
    tiny_autoencoder().save_pretrained(str(path))
    return path


@pytest.fixture
def copy(good, tmp_path):
    """A fresh copy of the good folder to spoil."""
    import shutil

    return shutil.copytree(good, tmp_path / "ae")


@pytest.fixture
def diffusers_never_reads(monkeypatch):
    """Fails the test if diffusers is asked to load the folder (the refusal must come first)."""
    def refuse(*_a, **_k):
        raise AssertionError("diffusers was asked to read the folder")

    monkeypatch.setattr(diffusers.AutoencoderKL, "from_pretrained", refuse)


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def refused(folder, *fragments) -> str:
    with pytest.raises(LatentLabError) as info:
        load_model(f"diffusers:{folder}")
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


def make_index(folder, shard: str):
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"encoder.conv_in.weight": shard, "decoder.conv_out.bias": shard}}))


@pytest.mark.parametrize("shard, fragment", [
    ("evil.bin", "not .safetensors"),
    ("evil.safetensors", "pickle"),
    ("../evil.safetensors", "outside its folder"),
    ("diffusion_pytorch_model.safetensors", "too short"),   # the 0-byte decoy itself
])
def test_an_index_reaching_a_pickle_is_refused_unread(copy, tmp_path, diffusers_never_reads, shard, fragment):
    marker = tmp_path / "pwned"
    (copy / "diffusion_pytorch_model.safetensors").write_bytes(b"")   # the decoy beside the index
    (copy / "evil.bin").write_bytes(pickle.dumps({"w": Payload(marker)}))
    (copy / "evil.safetensors").write_bytes(pickle.dumps({"w": Payload(marker)}))
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps({"w": Payload(marker)}))
    make_index(copy, shard)
    refused(copy, fragment)
    assert not marker.exists()


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: p.write_bytes(b""), "too short"),
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated"),
    (lambda p: p.write_bytes(b"\x80\x04" + b"\0" * 64), "pickle"),
    (lambda p: p.unlink(), "no .safetensors weights"),
])
def test_empty_truncated_or_missing_weights_are_no_weights(copy, diffusers_never_reads, damage, fragment):
    damage(copy / "diffusion_pytorch_model.safetensors")
    refused(copy, fragment)


def test_weights_that_do_not_fit_the_config_are_named(copy, diffusers_never_reads):
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(dict(config, latent_channels=3)))
    refused(copy, "do not fit its config.json", "shape")


def test_a_config_of_a_gigabyte_or_nested_deeply_is_refused_reading_a_megabyte(copy, tmp_path):
    sparse(copy / "config.json", GB, b'{"a": "')
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "config.json").write_text('{"a": ' + "[" * 400_000 + "]" * 400_000 + "}")
    result = measured(f"""
        for key, folder in (("big", {str(copy)!r}), ("deep", {str(deep)!r})):
            try:
                load_model("diffusers:" + folder)
            except LatentLabError as exc:
                result[key] = str(exc)
    """, prelude="""
        import diffusers
        from latentlab.core.errors import LatentLabError
        from latentlab.core.files.model_spec import load_model
    """, timeout=180)
    assert "larger than 1,024 KB" in result["big"] and "nested too deeply" in result["deep"], result
    assert result["growth_mb"] < 64, result


@pytest.mark.parametrize("field, value, fragment", [
    ("layers_per_block", 200_000, "layers_per_block"),
    ("layers_per_block", 20_000, "layers_per_block"),
    ("norm_num_groups", 0, "norm_num_groups"),
    ("norm_num_groups", 3, "does not divide"),
    ("block_out_channels", "abc", "block_out_channels"),
    ("block_out_channels", [8, 16, 32], "they must match"),
    ("latent_channels", 10 ** 9, "latent_channels"),
    ("down_block_types", ["CrossAttnDownBlock2D"] * 2, "down_block_types"),
    ("act_fn", "os.system", "act_fn"),
    ("_class_name", "UNet2DConditionModel", "UNet2DConditionModel"),
])
def test_a_config_asking_for_what_cannot_be_built_is_one_sentence(copy, diffusers_never_reads, field, value, fragment):
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(dict(config, **{field: value})))
    refused(copy, fragment)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 40), 2 ** 40), st.floats(),
                                     st.text(max_size=12)),
                           lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1, max_size=3))
def test_fuzzed_configs_are_checked_or_refused_in_one_sentence(good, tmp_path_factory, changes):
    from latentlab.core.files.diffusers_folder import check_folder

    folder = tmp_path_factory.mktemp("fuzz")
    config = json.loads((good / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, **changes)))
    (folder / "diffusion_pytorch_model.safetensors").symlink_to(good / "diffusion_pytorch_model.safetensors")
    try:
        check_folder(folder)
    except LatentLabError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()


def test_unknown_config_fields_are_not_echoed(copy, capfd):
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(dict(config, junk="j" * 500_000)))
    model = load_model(f"diffusers:{copy}")
    assert model.net.config.latent_channels == 2
    err = capfd.readouterr().err
    assert "jjjj" not in err and len(err) < 2000, err[:500]
