"""The end of a run: the student exported (SavedModel, .keras, TFLite), then evaluated, and
``report.json`` written."""

from __future__ import annotations

import json
import time

import keras

from kd_keras.context import RunContext
from kd_keras.distill.evaluation import evaluate, predict_logits
from kd_keras.distill.augment_check import augmentation_for
from kd_keras.distill.student import planned_epochs
from kd_keras.distill.unpaid import PART as UNPAID_PART
from kd_keras.errors import KdKerasError
from kd_keras.export import export_classifier
from kd_keras.export.tflite import FILES as TFLITE_FILES
from kd_keras.export.tflite import parse_formats, tflite_report, write_tflite


def write_report(ctx: RunContext, report: dict) -> None:
    report["stage_seconds"] = {k: round(v, 2) for k, v in ctx.timings.items()}
    report["wall_seconds"] = round(time.time() - ctx.started, 2)
    with open(ctx.workdir.claim("report.json"), "w") as f:
        json.dump(report, f, indent=2)


def finish(ctx: RunContext, student: keras.Model) -> dict:
    """Exports the student, then evaluates it and writes ``report.json``. The student is
    exported first, so an evaluation that fails (the teacher gone) loses nothing: the report
    then says what failed and the error is raised."""
    config, teacher, wd, labelled = ctx.config, ctx.teacher, ctx.workdir, ctx.labelled
    eval_set = ctx.eval_set
    sizes = labelled.sizes()
    report = {"name": config.name, "sources": config.synthesis.sources,
              "targets": config.student.targets, "n_real": len(ctx.unlabeled),
              "images_per_source": sizes, "n_train": sum(sizes.values()),
              "n_unpaid": sizes.get(UNPAID_PART, 0),  # answered by a first student
              "student_epochs": planned_epochs(config.student, len(labelled)),
              "teacher_queries": teacher.paid, "teacher_queries_this_process": teacher.stats.sent,
              "teacher_cache_hits": teacher.stats.cache_hits, "budget": config.query.budget,
              "augment": augmentation_for(config, labelled),
              "augment_agreement": labelled.agreement, **ctx.findings}
    with ctx.stage("export"):
        export_classifier(student, wd, "student")
    student_out = predict_logits(student, eval_set.images) if eval_set is not None else None
    formats = parse_formats(config.export.tflite)
    if formats:
        with ctx.stage("export_tflite"):
            for name in formats:
                wd.claim(TFLITE_FILES[name])
            files = write_tflite(wd.join("student"), formats, labelled.sample(
                int(config.export.calibration_images), config.seed), wd.path)
            report["tflite"] = tflite_report(
                files, *((eval_set.images, eval_set.labels, student_out) if eval_set is not None
                         else (None, None, None)))
    if eval_set is not None:
        try:
            with ctx.stage("eval"):
                evaluate(student, eval_set, ctx.eval_teacher, config.eval.teacher_sample,
                         config.seed, report, student_out)
        except KdKerasError as e:
            report["eval_error"] = str(e)
            write_report(ctx, report)
            raise type(e)(f"{e} (the student is saved in {wd.join('student')} and "
                          f"{wd.join('student.keras')}; {wd.join('report.json')} says what "
                          "evaluation did not finish)") from None
    write_report(ctx, report)
    summary = ", ".join(f"{k} {report[k]:.4f}" for k in ("student_accuracy", "teacher_accuracy",
                                                        "agreement") if k in report)
    print(f"done: {summary}; teacher answers {report['teacher_queries']} "
          f"(+{report.get('eval_queries', 0)} for eval); report in {wd.join('report.json')}\n"
          f"  student: {wd.join('student')} (SavedModel) and {wd.join('student.keras')}\n"
          f"  TensorBoard: tensorboard --logdir {wd.join('tb')}", flush=True)
    return report
