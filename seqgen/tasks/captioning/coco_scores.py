"""The caption metrics the field reports (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE) through the
COCO caption evaluation code (``pycocoevalcap``, an optional extra), so seqgen's captioners can be
set beside Show, Attend and Tell's and self-critical.pytorch's tables.

METEOR, SPICE and the PTB tokenizer are Java programs that are known to hang or die with "broken
pipe"; each runs in a child process with a time limit, and one that cannot run is skipped with a
line saying why while the others are still reported. SPICE also needs Stanford CoreNLP's models,
which ``pycocoevalcap`` downloads on first use."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

def coco_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *,
                timeout: float = 600.0) -> tuple[dict, list[str]]:
    """``({metric: score, 0-100 like BLEU elsewhere, CIDEr-D as a ratio}, [skip notes])``."""
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        return {}, ["COCO caption metrics skipped: pip install pycocoevalcap"]
    gts = {str(i): [{"caption": r} for r in refs] for i, refs in enumerate(references)}
    res = {str(i): [{"caption": h}] for i, h in enumerate(hypotheses)}
    notes: list[str] = []
    java = shutil.which("java")
    if java is None:
        notes.append("METEOR and SPICE skipped: they need Java (Debian: apt-get install "
                     "default-jre-headless); tokenized without the PTB tokenizer")
    tokenized = _java_step("tokenize", {"gts": gts, "res": res}, timeout, notes) if java else None
    if tokenized is None:
        gts_t = {k: [simple_tokens(c["caption"]) for c in v] for k, v in gts.items()}
        res_t = {k: [simple_tokens(c["caption"]) for c in v] for k, v in res.items()}
    else:
        gts_t, res_t = tokenized["gts"], tokenized["res"]
    bleu, _ = Bleu(4).compute_score(gts_t, res_t, verbose=0)
    scores = {f"bleu{n}": round(100 * b, 2) for n, b in enumerate(bleu, start=1)}
    scores["rouge_l"] = round(100 * float(Rouge().compute_score(gts_t, res_t)[0]), 2)
    scores["cider_d"] = round(float(Cider().compute_score(gts_t, res_t)[0]), 4)
    for step in ("meteor", "spice") if java else ():
        found = _java_step(step, {"gts": gts_t, "res": res_t}, timeout, notes)
        if found is not None:
            scores[step] = round(100 * found["score"], 2)
    return scores, notes


def simple_tokens(caption: str) -> str:
    """Lower case, punctuation dropped: what the PTB tokenizer's output looks like for captions."""
    kept = "".join(c if c.isalnum() or c.isspace() or c == "'" else " " for c in caption.lower())
    return " ".join(kept.split())


def _java_step(step: str, payload: dict, timeout: float, notes: list[str]) -> dict | None:
    """Runs one Java-backed step in a child process; None (and a note) when it cannot."""
    what = {"tokenize": "PTB tokenizer", "meteor": "METEOR", "spice": "SPICE"}[step]
    try:
        done = subprocess.run([sys.executable, "-m", __name__, step], input=json.dumps(payload),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        notes.append(f"{what} skipped: no answer within {timeout:.0f} s")
        return None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        notes.append(f"{what} skipped: {last[:200]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spice_models_present() -> bool:
    import pycocoevalcap.spice as spice
    return any((Path(spice.__file__).parent / "lib").glob("stanford-corenlp-3.6.0*.jar"))


def _child(step: str) -> None:
    """The child process's side: read the captions, run one Java step, print JSON on one line."""
    payload = json.loads(sys.stdin.read())
    gts, res = payload["gts"], payload["res"]
    quiet = sys.stdout
    sys.stdout = sys.stderr  # the scorers print progress; only the answer goes to stdout
    if step == "tokenize":
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
        tokenizer = PTBTokenizer()
        answer = {"gts": tokenizer.tokenize(gts), "res": tokenizer.tokenize(res)}
    elif step == "meteor":
        from pycocoevalcap.meteor.meteor import Meteor
        answer = {"score": float(Meteor().compute_score(gts, res)[0])}
    else:
        from pycocoevalcap.spice.spice import Spice
        present = _spice_models_present()
        try:
            spice = Spice()  # downloads Stanford CoreNLP 3.6.0 the first time
        except OSError as error:
            if present:
                raise
            sys.exit(f"Stanford CoreNLP 3.6.0 could not be downloaded (needs internet once): "
                     f"{type(error).__name__}: {error}")
        answer = {"score": float(spice.compute_score(gts, res)[0])}
    sys.stdout = quiet
    print(json.dumps(answer))


if __name__ == "__main__":
    _child(sys.argv[1])
