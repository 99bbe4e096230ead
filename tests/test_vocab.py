"""Vocabulary and tokenizers: fixed specials, builders, unseen symbols, JSON round trip."""
from __future__ import annotations

import pytest

from seqgen.tokenizers import CharTokenizer, WordTokenizer, tokenizer_from_dict
from seqgen.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab


def test_specials_sit_at_fixed_indices():
    vocab = Vocab.build(["hello", "help"])
    assert vocab.itos[:4] == list(SPECIALS)
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert vocab.itos[4] in ("h", "e", "l")  # most frequent first


def test_min_freq_and_max_size():
    sequences = [["a", "a", "b", "c"], ["a", "b"]]
    assert Vocab.build(sequences, min_freq=2).itos[4:] == ["a", "b"]
    assert Vocab.build(sequences, max_size=1).itos[4:] == ["a"]
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(sequences, min_freq=0)


def test_unseen_symbols_map_to_unk_or_raise_when_strict():
    vocab = Vocab.build(["abc"])
    assert vocab.encode(list("abz")) == [vocab.stoi["a"], vocab.stoi["b"], UNK]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode(list("abz"), strict=True)


def test_decode_stops_at_eos_and_drops_padding():
    vocab = Vocab.build(["ab"])
    ids = [BOS, vocab.stoi["a"], PAD, vocab.stoi["b"], EOS, vocab.stoi["a"]]
    assert vocab.decode(ids) == ["a", "b"]
    assert len(vocab.decode(ids, keep_specials=True)) == len(ids)


def test_json_round_trip(tmp_path):
    vocab = Vocab.build(["Größe über", "naïve café"])
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == vocab


def test_char_and_word_tokenizers_round_trip():
    char = CharTokenizer()
    assert char.detokenize(char.tokenize(" Oil  hits $50! ")) == " Oil  hits $50! "
    word = WordTokenizer()
    assert word.tokenize("Oil hits $50, again (AP).") == ["Oil", "hits", "$", "50", ",", "again",
                                                          "(", "AP", ")", "."]
    assert word.detokenize(word.tokenize("Oil hits 50, again (AP).")) == "Oil hits 50, again (AP)."
    for tok in (char, word, WordTokenizer(lowercase=True)):
        assert tokenizer_from_dict(tok.to_dict()).to_dict() == tok.to_dict()
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokenizer_from_dict({"level": "bytes"})
