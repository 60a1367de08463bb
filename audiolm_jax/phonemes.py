"""Text → IPA phonemes with espeak-ng, for a text encoder that reads phonemes (`model.condition.text_units`).

phonemizer's espeak backend runs on the espeak-ng library and voice data that the
`espeakng-loader` wheel ships (no system package, no download): the `phonemes` extra,
`pip install -e '.[phonemes]'`. Phonemes are written as espeak-ng's IPA, one symbol per
Unicode code point (a diphthong such as "oʊ" is two), words separated by one space,
punctuation kept where the text has it, primary and secondary stress marked ("ˈ", "ˌ"):
"hello, world." → "həlˈoʊ, wˈɜːld.". Numbers are read out ("42" → "fˈɔːɹɾi tˈuː").

Tacotron 2 and ESPnet's recipes read phonemes for the same reason: English spelling says
little about pronunciation, which a model trained on little speech must otherwise learn
word by word. espeak-ng is not thread-safe: one backend per language, called under a lock.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading

# The IPA symbols espeak-ng writes for English and its neighbours, then the punctuation
# phonemizer keeps; anything else becomes the encoder's unknown id.
SYMBOLS = ("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪɯɵɶʉʊʌʏøœᵻ"  # vowels
           "bcdfghjklmnpqrstvwxzçðħŋɟɡɣɥɦɫɬɭɮɰɱɲɳɴɸɹɺɻɽɾʀʁʂʃʈʋʎʐʑʒʔʕʝθχβ"  # consonants
           "ˈˌːˑʰʲʷ\u0303\u0329\u032a\u0325"  # stress, length, aspiration, palatal/labial, nasal, syllabic, dental, voiceless
           " '.,;:?!-")  # word break and punctuation
REQUIRED_MODULES = ("phonemizer", "espeakng_loader")


class PhonemeError(ValueError):
    """Phonemes were asked for but cannot be made (the extra is not installed, an unknown language)."""


def missing_modules() -> list[str]:
    """The modules phonemising needs that are not installed ([] when it can run)."""
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def supports(language: str) -> bool:
    """Whether espeak-ng (espeakng-loader's) can phonemise `language`; False without the extra."""
    if missing_modules():
        return False
    _load_library()
    from phonemizer.backend import EspeakBackend
    return bool(EspeakBackend.is_supported_language(language))


@functools.lru_cache(maxsize=None)
def _load_library() -> None:
    """Points phonemizer at the espeak-ng library and data inside espeakng-loader's wheel (once)."""
    import espeakng_loader
    from phonemizer.backend.espeak.wrapper import EspeakWrapper
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    EspeakWrapper.set_data_path(espeakng_loader.get_data_path())


@functools.lru_cache(maxsize=None)
def _backend(language: str):
    """(phonemizer's espeak backend for `language` on espeakng-loader's library and data, a
    lock to call it under); PhonemeError when the extra is missing or espeak-ng has no such language."""
    missing = missing_modules()
    if missing:
        raise PhonemeError(f"phonemes need {' and '.join(missing)}: pip install -e '.[phonemes]'")
    if not supports(language):  # loads the library
        raise PhonemeError(f"espeak-ng has no language {language!r} (model.condition.phoneme_language; "
                           "e.g. en-us, en-gb, fr-fr)")
    # phonemizer warns when a line's word count changes, which reading out is expected to do
    # ("42" is two words): its notes go to a logger of ours that keeps errors only.
    quiet = logging.getLogger(f"{__name__}.phonemizer")
    quiet.setLevel(logging.ERROR)
    from phonemizer.backend import EspeakBackend
    backend = EspeakBackend(language, preserve_punctuation=True, with_stress=True, language_switch="remove-flags",
                            logger=quiet)  # a foreign word's "(fr)" flags would read as letters
    return backend, threading.Lock()


@functools.lru_cache(maxsize=1 << 16)
def phonemise(text: str, language: str = "en-us") -> str:
    """`text` (normalised: lower case, single spaces) as espeak-ng's IPA in `language`:
    words separated by one space, punctuation kept, stress marked ("" for no words)."""
    if not text.strip():
        return ""
    from phonemizer.separator import Separator
    backend, lock = _backend(language)
    with lock:
        out = backend.phonemize([text], separator=Separator(phone="", word=" ", syllable=""), strip=True)
    return " ".join(" ".join(out).split())
