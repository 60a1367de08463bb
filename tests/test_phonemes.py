"""A text encoder that reads phonemes (`model.condition.text_units="phonemes"`): espeak-ng's
IPA through phonemizer on espeakng-loader's library, its vocabulary, its checks, and a
phoneme model that trains and speaks through the one path."""

import concurrent.futures
import dataclasses
import os

import jax
import numpy as np
import pytest

from audiolm_jax import conditioning, config as C, data as data_lib, phonemes, tts
from audiolm_jax.data import voices
from audiolm_jax.model import init_params
from tests.helpers import first_batch_and_its_examples, tts_config


def _phoneme_config(workdir="/tmp/unused", steps=4, **condition_fields):
    cfg = tts_config(workdir, steps)
    condition = dataclasses.replace(cfg.model.condition, text_units="phonemes", **condition_fields)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=condition))


def test_phonemes_spell_pronunciation_not_letters():
    read = lambda text: conditioning.read_as(text, "phonemes")
    assert read("Knight") == read("night") and read("knight") != conditioning.read_as("night")
    assert read("read") != read("red") and read("through") != read("rough")
    hello = read("Hello,   World.")
    assert hello.startswith("h") and ", " in hello and hello.endswith(".") and "ˈ" in hello  # punctuation, stress kept
    assert not any(c.isdigit() for c in read("42 cats")) and len(read("42 cats").split()) == 3  # numbers read out
    assert read("  ") == "" and read("the cat") == f"{read('the')} {read('cat')}"  # one space between words


def test_reading_numbers_out_warns_nothing(caplog):
    phonemes.phonemise.cache_clear()
    with caplog.at_level("INFO"):
        assert len(conditioning.read_as("it is 42.", "phonemes").split()) == 4  # "42" is two words
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_every_symbol_espeak_writes_for_the_speech_sets_sentences_is_in_the_vocabulary():
    texts = voices.sentences("train", 200) + voices.sentences("validation", 20)
    ids, mask = conditioning.encode_texts(texts, 200, "phonemes")
    assert mask.sum() > 3000 and not (ids == conditioning.UNKNOWN).any()
    assert ids.max() < conditioning.vocabulary_size("phonemes")
    assert conditioning.vocabulary_size("phonemes") == 2 + len(set(phonemes.SYMBOLS))  # no symbol twice


def test_phoneme_ids_round_trip_and_are_cut_at_a_word_boundary():
    text = "the quiet river runs slowly"
    whole = conditioning.read_as(text, "phonemes")
    ids, mask = conditioning.encode_texts([text], 14, "phonemes")
    kept = conditioning.decode_ids(ids[0], "phonemes")
    assert len(whole) > 14 and len(kept) == mask.sum() <= 14
    assert whole.startswith(kept) and whole[len(kept)] == " "  # the words that fit, whole
    # the same ids read as characters are other symbols: the units name the vocabulary
    assert conditioning.decode_ids(ids[0]) != kept


def test_speaking_rates_in_phonemes_are_phonemes_per_second():
    text = "forty two"
    rate = conditioning.speaking_rates([text], [2.0], 96, "phonemes")[0]
    assert rate == pytest.approx(len(conditioning.read_as(text, "phonemes")) / 2.0)
    assert rate != pytest.approx(conditioning.speaking_rates([text], [2.0], 96)[0])


def test_phonemising_from_many_threads_gives_the_sequential_result():
    texts = voices.sentences("train", 64)
    phonemes.phonemise.cache_clear()
    sequential = [phonemes.phonemise(t) for t in texts]
    phonemes.phonemise.cache_clear()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(phonemes.phonemise, texts)) == sequential


def test_phoneme_fields_are_checked_before_anything_runs(monkeypatch):
    cfg = _phoneme_config()
    C.validate(cfg)
    untexted = dataclasses.replace(cfg.model.condition, text=False, guided_layers=0)
    for condition, field in ((untexted, "model.condition.text_units"),
                             (dataclasses.replace(cfg.model.condition, phoneme_language="xx-nowhere"),
                              "model.condition.phoneme_language")):
        with pytest.raises(C.ConfigError, match=field):
            C.validate(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=condition)))
    monkeypatch.setattr(phonemes, "missing_modules", lambda: ["espeakng_loader"])
    with pytest.raises(C.ConfigError, match=r"espeakng_loader.*pip install -e '\.\[phonemes\]'"):
        C.validate(cfg)
    with pytest.raises(phonemes.PhonemeError, match="espeakng_loader"):
        phonemes._backend.__wrapped__("en-us")


def test_a_phoneme_models_batches_carry_the_transcripts_phonemes(tmp_path):
    cfg = _phoneme_config(str(tmp_path / "run"))
    _, batch, examples = first_batch_and_its_examples(cfg)
    for row, example in enumerate(examples):
        expected = conditioning.read_as(example["text"].decode(), "phonemes")
        assert conditioning.decode_ids(batch["text"][row], "phonemes") == expected
        assert batch["text_mask"][row].sum() == len(expected)
    params = init_params(cfg.model, 16, jax.random.PRNGKey(0))
    tables = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if "char_embed" in jax.tree_util.keystr(path)]
    assert [t.shape[0] for t in tables] == [conditioning.vocabulary_size("phonemes")]


def test_a_phoneme_model_counts_its_texts_length_in_phonemes(tmp_path):
    stats = data_lib.NormStats(mean=np.full(16, -40.0, np.float32), std=np.full(16, 20.0, np.float32))
    cfg = _phoneme_config(max_text_chars=10)
    assert len("42") <= 10 < len(conditioning.read_as("42", "phonemes"))
    with pytest.raises(conditioning.ConditionError, match="phonemes.*model.condition.max_text_chars"):
        tts.speech_prompt(cfg, stats, "42")
    characters = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, condition=dataclasses.replace(
        cfg.model.condition, text_units="characters")))
    assert tts.speech_prompt(characters, stats, "42").text == "42"


@pytest.mark.slow
def test_a_phoneme_model_trains_and_speaks_through_the_tts_command(tmp_path):
    from audiolm_jax.run import run

    cfg = _phoneme_config(str(tmp_path / "run"))
    metrics = run(cfg)
    assert np.isfinite(metrics["val_mse"]) and metrics["val_mse"] > 0
    assert C.load_json(os.path.join(cfg.workdir, "config.json")).model.condition.text_units == "phonemes"  # the checkpoint says what it reads
    assert tts.main(["--workdir", cfg.workdir, "--text", "red blue", "--seconds", "0.5",
                     "--sample.griffin_lim_iters=2", "--out", str(tmp_path / "said")]) == 0
    assert (tmp_path / "said" / "index.html").exists()
    from audiolm_jax import continuation, sample

    sampler = sample.restore_sampler(cfg.workdir, ["--sample.seconds=0.5", "--sample.griffin_lim_iters=2"])
    prompt = tts.speech_prompt(sampler.config, sampler.stats, "Red blue")
    (said,) = continuation.continue_prompts(sampler.config, sampler.params, sampler.stats, [prompt],
                                            jax.random.PRNGKey(0))
    assert said.text == "red blue" and said.read == conditioning.read_as("red blue", "phonemes")  # the alignment's rows
