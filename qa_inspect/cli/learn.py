"""`qa-inspect rules learn`: train a learned rule condition from labelled calls."""
from __future__ import annotations

import click

from qa_inspect.cli.common import CONTEXT, fail
from qa_inspect.cli.rules import rules
from qa_inspect.errors import InputError, QAError


@rules.command("learn", context_settings=CONTEXT)
@click.option("--transcripts", "transcripts_path", default=None, type=click.Path(),
              help="Transcripts JSONL of the labelled calls (as for `run` / `rules eval`).")
@click.option("--db", default=None, help="Or the calls as stored by `run` (SQLite file or postgresql:// URL), "
              "e.g. with the reviewers' verdicts from `qa-inspect review labels`.")
@click.option("--labels", "labels_path", required=True, type=click.Path(),
              help="Labels JSONL: call id, `ITEM: true|false` and `evidence: {ITEM: [turn index]}`.")
@click.option("--item", required=True, help="The label item to learn (e.g. agent_impolite).")
@click.option("--role", default="agent", show_default=True, type=click.Choice(["agent", "customer", "any"]),
              help="Whose turns the model scores.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The model file to write (next to the pack; a rule names it with `learned: PATH`).")
@click.option("--last-turns", default=0, type=click.IntRange(min=0),
              help="Only the role's last N turns (match the rule's window: {last_turns: N}); 0: all.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20),
              help="Cross-validation folds that choose the threshold.")
def rules_learn(transcripts_path, db, labels_path, item, role, out_path, last_turns, folds):
    """Train a learned condition for one label ITEM: a linear classifier over sentence
    embeddings of the ROLE's turns. Positive examples are the evidence turns of the calls
    labelled true, negatives every turn of the calls labelled false; the threshold maximises
    F1 over out-of-fold call scores (printed: a dev figure on the training calls). A changed
    model changes the hash of every pack that uses it. With --db and the labels of
    `qa-inspect review labels`, the reviewers' verdicts train it (reviews make the machine
    better); measure the result with `rules eval` on verdicts recorded later (`--since`).

    Exit code 0 on success, 2 when the inputs cannot be read or hold too few labelled calls."""
    from qa_inspect.cli.rules import labelled_transcripts
    from qa_inspect.rules.learned import labelled_calls, read_label_records, save_model, train_item

    try:
        labels = read_label_records(labels_path)
        transcripts = {cid: tr for cid, (tr, _m) in labelled_transcripts(transcripts_path, db, labels).items()}
        calls = labelled_calls(transcripts, labels, item, role, last_turns=last_turns or None)
        if not calls:
            raise InputError(f"no labelled call has a transcript and a label for {item!r}", labels_path)
        model = save_model(train_item(calls, item, role, folds=folds), out_path)
    except QAError as e:
        fail(e)
    t = model.training
    click.echo(f"learned {item} ({role} turns): {t['calls']} calls, {t['positives']} positive, "
               f"{t['evidence_turns']} evidence turns; threshold {model.threshold:.3f}, "
               f"cross-validated F1 {t['cv_f1']:.3f} (dev: on the training calls)")
    click.echo(f"model:  {out_path} (hash {model.hash}, data {t['data_id']})")
