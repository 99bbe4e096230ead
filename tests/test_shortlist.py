"""Vocabulary shortlists: the lexical table, restricted steps, and searches over the candidates."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from seqgen.decoding.search import build_searcher, generate
from seqgen.decoding.shortlist import Shortlist, ShortlistedModel, generate_shortlisted, output_rows
from seqgen.nn.int8 import quantize_linear_layers
from seqgen.tasks.translation.data import source_batch
from seqgen.vocab import PAD

VOCAB = 12


def test_model1_aligns_each_source_word_to_its_translation():
    # source word 4 always comes with target 8, 5 with 9, 6 with 10; the pairs mix them
    sources = [[4, 5], [4, 6], [5, 6], [4], [5], [6]] * 3
    targets = [[8, 9], [8, 10], [9, 10], [8], [9], [10]] * 3
    shortlist = Shortlist.learn(sources, targets, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB,
                                per_source=2, frequent=0)
    assert shortlist.table[4, 0] == 8 and shortlist.table[5, 0] == 9 and shortlist.table[6, 0] == 10
    assert (shortlist.table[7] == PAD).all()  # never seen: nothing beyond the specials
    assert shortlist.candidates(torch.tensor([[4]])).tolist()[:4] == [0, 1, 2, 3]  # specials
    assert 8 in shortlist.candidates(torch.tensor([[4]])).tolist()
    assert 9 not in Shortlist.learn(sources, targets, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB,
                                    per_source=1, frequent=0).candidates(torch.tensor([[4]]))


def test_frequent_targets_are_always_candidates():
    shortlist = Shortlist.learn([[4]] * 3, [[5, 11], [11], [11]], src_vocab_size=VOCAB,
                                tgt_vocab_size=VOCAB, per_source=1, frequent=1)
    assert shortlist.frequent.tolist() == [11]
    assert 11 in shortlist.candidates(torch.tensor([[7]])).tolist()


def test_round_trip_and_bad_input():
    shortlist = Shortlist.learn([[4, 5]], [[6, 7]], src_vocab_size=VOCAB, tgt_vocab_size=VOCAB)
    again = Shortlist.from_dict(shortlist.to_dict())
    assert torch.equal(again.table, shortlist.table)
    assert torch.equal(again.frequent, shortlist.frequent)
    with pytest.raises(ValueError, match="malformed shortlist"):
        Shortlist.from_dict({"table": torch.zeros(3)})
    with pytest.raises(ValueError, match="same, non-zero number"):
        Shortlist.learn([[4]], [], src_vocab_size=VOCAB, tgt_vocab_size=VOCAB)
    with pytest.raises(ValueError, match="within the vocabulary"):
        Shortlist.learn([[40]], [[5]], src_vocab_size=VOCAB, tgt_vocab_size=VOCAB)


def test_restricted_step_scores_exactly_the_candidate_rows():
    model = tiny_model(encoder="rnn", attention="general", vocab=VOCAB, seed=3)
    batch = source_batch([[4, 5, 6], [7, 8]])
    candidates = torch.tensor([0, 1, 2, 3, 5, 9, 11])
    restricted = ShortlistedModel(model, candidates)
    state, first = model.init_state(batch)
    state_r, first_r = restricted.init_state(batch)
    assert torch.equal(first_r, first)  # BOS keeps its id
    full, _ = model.step(first, state)
    part, _ = restricted.step(first_r, state_r)
    torch.testing.assert_close(part, full[:, candidates])
    # a candidate position (4) steps the model with its vocabulary id (5)
    full, _ = model.step(torch.tensor([5, 5]), state)
    part, _ = restricted.step(torch.tensor([4, 4]), state_r)
    torch.testing.assert_close(part, full[:, candidates])


@pytest.mark.parametrize("beam", [1, 3])
def test_search_over_every_id_matches_the_full_search(beam):
    model = tiny_model(encoder="rnn", attention="general", vocab=VOCAB, seed=4)
    batch = source_batch([[4, 5, 6], [7, 8], [9]])
    everything = Shortlist(table=torch.arange(VOCAB)[:, None].expand(VOCAB, VOCAB).clone().T,
                           frequent=torch.zeros(0, dtype=torch.long))
    searcher = build_searcher(beam=beam, max_len=6)
    full = generate(model, batch, searcher)
    short = generate_shortlisted(model, batch, searcher, everything)
    assert [h[0].tokens for h in short] == [h[0].tokens for h in full]


def test_search_never_leaves_the_shortlist():
    model = tiny_model(encoder="rnn", attention="general", vocab=VOCAB, seed=5)
    batch = source_batch([[4, 5], [6]])
    table = torch.full((VOCAB, 1), PAD, dtype=torch.long)
    table[4], table[6] = 7, 9
    shortlist = Shortlist(table=table, frequent=torch.tensor([10]))
    allowed = {0, 1, 2, 3, 7, 9, 10}
    for beam in (1, 3):
        hyps = generate_shortlisted(model, batch, build_searcher(beam=beam, max_len=8), shortlist)
        assert all(set(h[0].tokens) <= allowed for h in hyps)


def test_rows_of_an_int8_output_layer():
    model = quantize_linear_layers(tiny_model(vocab=VOCAB, seed=6))
    rows = torch.tensor([0, 2, 5, 11])
    x = torch.randn(3, 8)
    full = model.decoder.output(x)
    torch.testing.assert_close(output_rows(model.decoder.output, rows)(x), full[:, rows])
    with pytest.raises(TypeError, match="cannot take rows"):
        output_rows(torch.nn.Identity(), rows)


def test_export_adds_a_shortlist_that_translate_and_evaluate_use(tmp_path):
    """`seqgen export --shortlist-data` learns one for an existing translator; translation and
    evaluation then decode over it, and --no-shortlist scores every word again."""
    import json

    from test_translation import DE, EN, tiny_config, tiny_translator, write_pairs

    from seqgen.cli.main import main as cli_main
    from seqgen.io.checkpoint import make_checkpoint
    from seqgen.io.fileio import atomic_save
    from seqgen.io.loaded import LoadedModel
    from seqgen.tasks.translation.data import TranslationData

    folder = tmp_path / "m30k"
    write_pairs(folder, "train", DE * 3, EN * 3)
    write_pairs(folder, "val", DE[:3], EN[:3])
    data = TranslationData(tiny_config(folder))
    plain = tmp_path / "plain.pt"
    atomic_save(make_checkpoint(tiny_translator(data), task="translation",
                                tgt_vocab=data.tgt_vocab, tgt_tokenizer=data.tgt_tokenizer,
                                src_vocab=data.src_vocab, src_tokenizer=data.src_tokenizer,
                                task_config={"data": {"src": "de", "tgt": "en"}}), plain)
    assert LoadedModel.from_file(plain).shortlist is None
    listed = tmp_path / "listed.pt"
    assert cli_main(["export", "--ckpt", str(plain), "--out", str(listed),
                     "--shortlist-data", str(folder)]) == 0
    shortlist = LoadedModel.from_file(listed).shortlist
    assert shortlist is not None and shortlist.table.size(0) == len(data.src_vocab)
    man = data.src_vocab.encode(["Mann"])[0]
    assert data.tgt_vocab.encode(["man"])[0] in shortlist.table[man].tolist()

    def evaluate(*extra: str) -> dict:
        from contextlib import redirect_stdout
        from io import StringIO

        out = StringIO()
        with redirect_stdout(out):
            assert cli_main(["evaluate", "--ckpt", str(listed), "--data-dir", str(folder),
                             "--split", "val", *extra]) == 0
        return json.loads(out.getvalue())

    assert evaluate()["shortlist"] is True
    assert evaluate("--no-shortlist")["shortlist"] is False


def test_shortlist_data_is_refused_for_other_tasks(tiny_checkpoints, tmp_path, capsys):
    from seqgen.cli.main import main as cli_main

    code = cli_main(["export", "--ckpt", str(tiny_checkpoints["headlines"]), "--out",
                     str(tmp_path / "x.pt"), "--shortlist-data", str(tmp_path)])
    assert code == 2 and "for tasks with a source text" in capsys.readouterr().err


def test_a_shortlist_that_does_not_fit_the_model_is_a_checkpoint_error(tiny_checkpoints, tmp_path):
    from seqgen.io.checkpoint import CheckpointError, load_checkpoint
    from seqgen.io.fileio import atomic_save
    from seqgen.io.loaded import LoadedModel

    ckpt = load_checkpoint(tiny_checkpoints["translation"])
    rows = len(ckpt["src_vocab"])
    ckpt["shortlist"] = {"table": torch.full((rows, 2), 10_000), "frequent": torch.zeros(0)}
    atomic_save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="unusable shortlist.*target ids beyond"):
        LoadedModel.from_file(tmp_path / "bad.pt")
    ckpt["shortlist"] = {"table": torch.zeros(rows, 2, dtype=torch.int32),
                         "frequent": torch.tensor([4], dtype=torch.int32)}
    atomic_save(ckpt, tmp_path / "good.pt")
    assert LoadedModel.from_file(tmp_path / "good.pt").shortlist.frequent.tolist() == [4]
