"""What every ``bin/`` command shares: quiet TF start-up, common flags, clear errors."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from kd_keras.errors import Interrupted, KdKerasError  # noqa: E402


def _config_dir() -> str:
    """The shipped configs: installed as the package ``kd_keras.configs``, or the
    repository's ``configs/`` folder beside ``kd_keras/``."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("kd_keras.configs")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


CONFIG_DIR = _config_dir()


def resolve_config_arg(value: str) -> str:
    """``--config`` may name a shipped config (``fashion_mnist:quick``) from any folder:
    a name without a path or ``.py`` that is no file here becomes CONFIG_DIR/NAME.py."""
    name, sep, variant = value.partition(":")
    if ("/" in name or os.sep in name or name.endswith(".py") or os.path.exists(name)
            or not os.path.exists(os.path.join(CONFIG_DIR, name + ".py"))):
        return value
    return os.path.join(CONFIG_DIR, name + ".py") + sep + variant


def define_common_flags(default_config: str = "fashion_mnist.py") -> None:
    """``--config`` (ml_collections file, overridable as --config.a.b=v) and ``--workdir``."""
    config_flags.DEFINE_config_file(
        "config", os.path.join(CONFIG_DIR, default_config),
        "Experiment config file, optionally FILE:VARIANT (e.g. configs/fashion_mnist.py:quick), "
        "or a shipped config by name from any folder (e.g. fashion_mnist:quick); "
        "any field can be overridden, e.g. --config.student.epochs=5.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Folder for every output of the run.", required=True)
    flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "multi_worker", "default"],
                      "tf.distribute strategy: mirrored over local GPUs (one device or a "
                      "CPU: no mirroring, the same arithmetic), multi_worker from TF_CONFIG, "
                      "or default (none).")
    flags.DEFINE_float("heartbeat_seconds", 60.0,
                       "Multi-worker runs: how long a worker may go unheard (paused, busy) "
                       "before the others stop the run (TF's own default is 10 s).")


def define_teacher_flags() -> None:
    """``--teacher`` spec, what it answers, and where its bearer token lives."""
    flags.DEFINE_string("teacher", None,
                        "Teacher to query: savedmodel:DIR, keras:FILE.keras, "
                        "http(s)://host:port/v1/models/NAME[/versions/V] (TF Serving REST), "
                        "grpc://host:port/models/NAME[/versions/V] (TF Serving gRPC, faster), or "
                        "hf+http(s)://HOST/models/NAME (one image per request, answers class "
                        "names: give --teacher_classes).")
    flags.DEFINE_enum("teacher_output", None, ["probs", "logits", "label", "topk"],
                      "What the teacher answers (default: the config's query.output, probs).")
    flags.DEFINE_string("teacher_signature", None,
                        "Signature to call: for a SavedModel (default serving_default), or sent "
                        "as signature_name to a TF Serving endpoint.")
    flags.DEFINE_string("teacher_classes", None,
                        "File of the teacher's class names, one a line in index order, for "
                        "teachers answering names (hf+http(s)://HOST/models/NAME).")
    flags.DEFINE_string("teacher_token_env", None,
                        "Name of an environment variable holding a bearer token for an HTTP "
                        "or gRPC teacher; the token itself never appears in logs, configs or "
                        "reports.")


def apply_teacher_flags(config) -> None:
    """Copies --teacher_output and --teacher_classes into the config, so the resolved
    config records them."""
    with config.unlocked():
        if flags.FLAGS.teacher_output:
            config.query.output = flags.FLAGS.teacher_output
        if flags.FLAGS.teacher_classes:
            config.query.class_names = flags.FLAGS.teacher_classes


def _one_line(e: BaseException) -> str:
    """A parse-time exception as one readable line (KeyError reprs, escaped and multi-line
    messages): ``the config has no field lossx: Did you mean "loss" instead of "lossx"?``."""
    text = str(e.args[0] if isinstance(e, KeyError) and e.args else e).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # a repr, passed on
        text = text[1:-1].replace("\\n", "\n").replace("\\'", "'")
    missing = re.search(r"No such file or directory: '([^']+)'", text)
    if missing:
        return f"config file {missing.group(1)} not found"
    if "ConfigError: " in text:
        return text.rsplit("ConfigError: ", 1)[1].strip().splitlines()[0]
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        return repr(e)
    field = re.fullmatch(r"""['"]?([\w.]+)['"]?""", lines[0])
    if field and (isinstance(e, KeyError) or len(lines) > 1):
        lines[0] = f"the config has no field {field.group(1)}" + (":" if len(lines) > 1 else "")
    return " ".join(lines[:1] + lines[-1:]) if len(lines) > 1 else lines[0]


def _parse_or_exit(argv: list) -> list:
    """Parses flags and loads --config (with its overrides) now, so a missing config file,
    an unknown variant or a field typo is one ``error:`` line, not a traceback. Returns the
    arguments left after the flags."""
    app.define_help_flags()
    argv = [f"--config={resolve_config_arg(a[len('--config='):])}" if a.startswith("--config=")
            else a for a in argv]
    try:
        remaining = flags.FLAGS(argv)
        if "config" in flags.FLAGS:
            from kd_keras.validation import check_config

            check_config(flags.FLAGS.config)
    except (flags.Error, KdKerasError, KeyError, OSError, ValueError, AttributeError,
            TypeError) as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, KdKerasError):
            e = cause
        print(f"error: {_one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(1)
    return remaining


def _stop_signal(signum, frame):
    """SIGTERM (a scheduler, ``kill``) stops the run as Ctrl-C does: answers kept."""
    raise KeyboardInterrupt


HARD_STOP_SECONDS = 8.0  # the longest a stopped command may take to unwind


def _hard_stop() -> None:
    """Ends a command still alive HARD_STOP_SECONDS after Ctrl-C or SIGTERM (a thread stuck
    in a library's lock, say): every answer paid for is already committed to the answer
    cache, and the run goes on with --resume as after ``kill -9``."""
    print(_interrupted_line(), file=sys.stderr, flush=True)
    os._exit(130)


def _watch_interrupts() -> None:
    """On Ctrl-C or SIGTERM, aborts teacher requests in flight at once, even while the main
    thread is blocked inside TensorFlow (where Python's own handler cannot run until it
    returns)."""
    from kd_keras.teachers.backends import cancel_requests

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd)
        signal.signal(signal.SIGTERM, _stop_signal)
    except ValueError:  # not the main thread: nothing to watch
        return

    def watch():
        while True:
            byte = os.read(read_fd, 1)
            if byte and byte[0] in (signal.SIGINT, signal.SIGTERM):
                cancel_requests()
                threading.Timer(HARD_STOP_SECONDS, _hard_stop).start()

    threading.Thread(target=watch, daemon=True, name="kd-interrupt-watch").start()


def _print_help(module) -> None:
    """The command's docstring (with its example) and every flag it takes, with help text:
    its own and the shared ones defined here (absl alone lists only the main module's)."""
    print((module.__doc__ or "").strip() + "\n\nflags:")
    names = [module.__name__, __name__, "ml_collections.config_flags.config_flags"]
    seen = set()
    for name in names:
        for flag in flags.FLAGS.get_flags_for_module(name):
            if flag.name in seen or flag.name.startswith("config."):
                continue
            seen.add(flag.name)
            default = "" if flag.default is None else f" (default: {flag.default_as_str})"
            print(f"  --{flag.name}: {flag.help}{default}")
    print("\nAny config field can be overridden, e.g. --config.student.epochs=5.")


def _lost_a_worker(e: Exception) -> bool:
    """Whether ``e`` is TensorFlow aborting collectives because a peer worker went silent,
    or the chief found gone while this worker waited for it."""
    import tensorflow as tf

    from kd_keras.strategy import ChiefLost

    return isinstance(e, ChiefLost) or isinstance(e, tf.errors.UnavailableError) and (
        "heartbeat" in str(e) or "Collective ops is aborted" in str(e))


def _first_line(e: Exception) -> str:
    """The part of a TensorFlow error message a person needs: after the op name, one line."""
    text = getattr(e, "message", str(e))
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text)  # {{function_node ...}} prefix
    return text.strip().splitlines()[0][:300].rstrip(":") if text.strip() else type(e).__name__


def _interrupted_line() -> str:
    """What a stopped command tells the user: what is kept and how to go on."""
    if "resume" in flags.FLAGS:
        return ("interrupted: answers and checkpoints written so far are kept; "
                "run again with --resume to continue")
    return ("interrupted: answers paid so far are kept in the cache; the same command run "
            "again pays only for the rest")


def run(main: Callable[[list], None]) -> None:
    """Runs an absl main; a KdKerasError becomes one 'error:' line and exit status 1, and
    Ctrl-C stops within seconds, keeping what was paid for."""
    if any(a in ("--help", "-h", "--helpshort", "-?") for a in sys.argv[1:]):
        _print_help(sys.modules[main.__module__])
        sys.exit(0)
    try:
        from kd_keras.quiet import start_tensorflow

        start_tensorflow()
        remaining = _parse_or_exit(sys.argv)
    except KeyboardInterrupt:
        print("interrupted during start-up: nothing was sent", file=sys.stderr, flush=True)
        sys.exit(130)

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # keep TF's info chatter out of progress
        _watch_interrupts()
        try:
            main(argv)
        except (KeyboardInterrupt, Interrupted):
            print(_interrupted_line(), file=sys.stderr, flush=True)
            os._exit(130)  # worker threads may still be unwinding a cancelled request
        except KdKerasError as e:
            from kd_keras.teachers.backends import without_credentials

            print(f"error: {without_credentials(str(e))}", file=sys.stderr, flush=True)
            sys.exit(1)
        except Exception as e:
            from kd_keras.teachers.backends import CANCEL

            if _lost_a_worker(e):
                print(f"error: lost contact with another worker ({_first_line(e)}); answers "
                      "and checkpoints written so far are kept: restart every worker with "
                      "--resume (--heartbeat_seconds sets how long a silent worker is "
                      "waited for)", file=sys.stderr, flush=True)
                sys.exit(1)

            if isinstance(e, OSError) or "No space left on device" in str(e):
                what = (f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror
                        and e.filename else _first_line(e))
                print(f"error: {what}; answers and checkpoints written so far are kept",
                      file=sys.stderr, flush=True)
                sys.exit(1)
            if CANCEL.is_set():  # Ctrl-C surfaced inside TensorFlow as another error
                print(_interrupted_line(), file=sys.stderr, flush=True)
                os._exit(130)
            raise

    app.run(guarded, flags_parser=lambda _: remaining)  # parsed once, above
