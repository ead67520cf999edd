"""Seeded synthetic sentences whose labels a small Transformer learns in seconds.

Words are made of syllables, so the tokenizer has sub-words to find. Each class owns a
few cue words; a sentence is filler words with one to three cues of its class and, half
of the time, one cue of another class, in random order: the label follows the majority,
so a model must weigh the words of a sentence, not spot one. Label noise flips a fraction.
"""

from __future__ import annotations

import numpy as np

from ...config import DataConfig, ModelConfig
from ..interface import Examples
from ..labels import balanced_labels, class_names, flip_labels
from .layout import as_texts, max_tokens

SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "za", "pe", "do", "gu")
FILLER_WORDS = 60
CUES_PER_CLASS = 6
# Words per sentence, before cues.
FILLER_RANGE = (4, 12)


def _words(rng: np.random.Generator, count: int) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(SYLLABLES, size=rng.integers(2, 4))))
    return sorted(words)


def synthetic_examples(model: ModelConfig, data: DataConfig, seed: int) -> Examples:
    """`data.synthetic_samples` sentences and their labels."""
    max_tokens(model)
    num_classes = model.num_classes
    # The vocabulary is fixed across seeds: another seed draws other sentences of the
    # same language.
    vocabulary = _words(np.random.default_rng(0), FILLER_WORDS + CUES_PER_CLASS * num_classes)
    filler = vocabulary[:FILLER_WORDS]
    cues = np.array(vocabulary[FILLER_WORDS:]).reshape(num_classes, CUES_PER_CLASS)
    rng = np.random.default_rng(seed)
    labels = balanced_labels(data.synthetic_samples, num_classes, rng)
    sentences = []
    for label in labels:
        words = list(rng.choice(filler, size=rng.integers(*FILLER_RANGE)))
        own = int(rng.integers(1, 4))
        words += list(rng.choice(cues[label], size=own))
        if num_classes > 1 and own > 1 and rng.random() < 0.5:
            other = (label + rng.integers(1, num_classes)) % num_classes
            words.append(str(rng.choice(cues[other])))
        rng.shuffle(words)
        # Typing noise: a word in another case now and then (the tokenizer lowercases).
        sentence = " ".join(
            w.upper() if rng.random() < data.synthetic_noise * 0.1 else w for w in words
        )
        sentences.append(sentence)
    noisy = flip_labels(labels, data.synthetic_label_noise, num_classes, rng)
    return Examples(as_texts(sentences), noisy, class_names(num_classes))
